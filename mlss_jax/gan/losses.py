"""StyleGAN2 training objectives and helpers, as pure jittable functions.

Non-saturating logistic loss, R1 regularisation, style-mixing latents, the EMA of
generator weights and the running W average: the pieces of NVIDIA's training
loop (``docs/formats.md`` for ``w_avg``), written from
their definitions.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp


def generator_loss(fake_logits: jax.Array) -> jax.Array:
    """Non-saturating generator loss: mean softplus(-D(G(z)))."""
    return jnp.mean(jax.nn.softplus(-fake_logits))


def discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """Logistic discriminator loss: mean softplus(D(fake)) + mean softplus(-D(real))."""
    return jnp.mean(jax.nn.softplus(fake_logits)) + jnp.mean(jax.nn.softplus(-real_logits))


def r1_penalty(logits_fn: Callable[[jax.Array], jax.Array], real_images: jax.Array) -> jax.Array:
    """R1: mean over real images of the squared norm of dD(x)/dx (multiply by gamma / 2)."""
    grads = jax.grad(lambda x: jnp.sum(logits_fn(x)))(real_images)
    return jnp.mean(jnp.sum(jnp.square(grads), axis=tuple(range(1, grads.ndim))))


def mixing_cutoffs(rng: jax.Array, n: int, num_ws: int, probability: float) -> jax.Array:
    """Per sample, the first layer whose style comes from the second latent.

    With ``probability`` a cutoff uniform in [1, num_ws), otherwise ``num_ws`` (no
    mixing). Drawn for the whole batch at once, so a data-parallel run can shard
    the same cutoffs whatever its device count.
    """
    mix_key, cut_key = jax.random.split(rng)
    mix = jax.random.uniform(mix_key, (n,)) < probability
    cutoff = jax.random.randint(cut_key, (n,), 1, num_ws)
    return jnp.where(mix, cutoff, num_ws)


def mix_styles(ws_a: jax.Array, ws_b: jax.Array, cutoffs: jax.Array) -> jax.Array:
    """Style mixing: sample i takes ws_a below layer ``cutoffs[i]`` and ws_b from it on.

    This is what makes adjacent layers' styles independent, and so the coarse /
    medium / fine levels separable.
    """
    layer = jnp.arange(ws_a.shape[1])[None, :, None]
    return jnp.where(layer < cutoffs[:, None, None], ws_a, ws_b)


def ema_beta(batch_size: int, half_life_images: float | jax.Array) -> jax.Array:
    """EMA decay per step so that a weight's influence halves every ``half_life_images``."""
    return 0.5 ** (batch_size / jnp.maximum(half_life_images, 1e-8))


def ema_update(ema_params, params, beta: float | jax.Array):
    """``ema <- beta * ema + (1 - beta) * params``, leaf by leaf."""
    return jax.tree_util.tree_map(lambda e, p: beta * e + (1.0 - beta) * p, ema_params, params)


def update_w_avg(w_avg: jax.Array, ws: jax.Array, beta: float) -> jax.Array:
    """NVIDIA's running W average: ``w_avg <- beta * w_avg + (1 - beta) * mean_batch(w)``."""
    return beta * w_avg + (1.0 - beta) * jnp.mean(ws[:, 0], axis=0)


def blur_images(images: jax.Array, sigma: jax.Array, radius: int) -> jax.Array:
    """A Gaussian blur of NHWC images of standard deviation ``sigma`` pixels (traced, so that a
    fading blur compiles once), over taps -radius..radius on each axis with edge-reflected
    borders. ``sigma`` 0 (or ``radius`` 0) leaves the images as they are: every tap but the
    centre weighs exp(-huge) = 0."""
    if radius == 0:
        return images
    taps = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
    weights = jnp.exp(-0.5 * jnp.square(taps / jnp.maximum(sigma, 1e-3)))
    weights = weights / jnp.sum(weights)
    pad = ((0, 0), (radius, radius), (radius, radius), (0, 0))
    padded = jnp.pad(images, pad, mode="reflect")
    height, width = images.shape[1], images.shape[2]
    rows = sum(weights[i] * padded[:, i:i + height] for i in range(2 * radius + 1))
    return sum(weights[i] * rows[:, :, i:i + width] for i in range(2 * radius + 1))
