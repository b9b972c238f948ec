"""Operations on latents for exploration (pure functions of arrays).

Interpolation in Z (lerp, slerp) and W, style mixing by level, and editing along
a direction in W with a per-layer mask; directions from PCA in W (GANSpace) or
from a linear SVM boundary fitted on labelled latents (InterFaceGAN).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlss_jax.errors import ConfigError

INTERPOLATIONS = ("lerp", "slerp")


def lerp(a: jax.Array, b: jax.Array, t: jax.Array) -> jax.Array:
    """``a + t (b - a)`` for each t: a, b [..., D], t [T] -> [T, ..., D]."""
    t = jnp.reshape(t, (-1,) + (1,) * a.ndim)
    return a + t * (b - a)


def slerp(a: jax.Array, b: jax.Array, t: jax.Array, eps: float = 1e-7) -> jax.Array:
    """Spherical interpolation of vectors [D] (the norm is interpolated linearly), for each t.

    Gaussian latents live near a sphere, where lerp's midpoints are atypically short.
    """
    norm_a, norm_b = jnp.linalg.norm(a), jnp.linalg.norm(b)
    ua, ub = a / norm_a, b / norm_b
    omega = jnp.arccos(jnp.clip(jnp.dot(ua, ub), -1.0, 1.0))
    t = jnp.reshape(t, (-1, 1))
    sin_omega = jnp.sin(omega)
    # (nearly) parallel vectors: the spherical weights tend to the linear ones
    wa = jnp.where(sin_omega > eps, jnp.sin((1 - t) * omega) / jnp.maximum(sin_omega, eps), 1 - t)
    wb = jnp.where(sin_omega > eps, jnp.sin(t * omega) / jnp.maximum(sin_omega, eps), t)
    return (wa * ua + wb * ub) * (norm_a + t * (norm_b - norm_a))


def layer_mask(num_ws: int, layers: tuple[int, int] | None) -> np.ndarray:
    """[num_ws] float mask of the inputs ``start..stop`` (inclusive); None: all inputs."""
    if layers is None:
        return np.ones(num_ws, np.float32)
    start, stop = layers
    if not 0 <= start <= stop < num_ws:
        raise ConfigError(f"layer range {start}-{stop} is outside 0..{num_ws - 1}")
    mask = np.zeros(num_ws, np.float32)
    mask[start:stop + 1] = 1.0
    return mask


def edit_along(ws: jax.Array, direction: jax.Array, strengths: jax.Array,
               mask: jax.Array) -> jax.Array:
    """ws [N, num_ws, w_dim] moved by ``s * direction`` on the masked inputs, for each strength:
    -> [N, S, num_ws, w_dim]."""
    step = strengths[None, :, None, None] * mask[None, None, :, None] * direction
    return ws[:, None] + step


def mix_levels(ws_by_source: jax.Array, sources: jax.Array, ranges: tuple[tuple[int, int], ...]
               ) -> jax.Array:
    """Compose ws from several samples: the inputs in ``ranges[i]`` come from sample
    ``sources[:, i]``, every other input from sample ``sources[:, -1]``.

    ws_by_source: [M, num_ws, w_dim]; sources: [N, len(ranges) + 1] indices into M
    -> [N, num_ws, w_dim].
    """
    num_ws = ws_by_source.shape[1]
    owner = np.full(num_ws, len(ranges))
    for i, (start, stop) in enumerate(ranges):
        owner[start:stop] = i
    return ws_by_source[sources[:, owner], jnp.arange(num_ws)[None, :]]


def pca_directions(w: np.ndarray, num: int) -> tuple[np.ndarray, np.ndarray]:
    """GANSpace: the top ``num`` principal directions of W samples [N, w_dim] (unit rows)
    and their standard deviations, so strengths can be given in standard deviations."""
    centred = w - w.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    return vt[:num], s[:num] / np.sqrt(max(len(w) - 1, 1))


@functools.partial(jax.jit, static_argnames=("steps",))
def _fit_linear_svm(x: jax.Array, y: jax.Array, c: float, steps: int) -> tuple[jax.Array, jax.Array]:
    """Soft-margin linear SVM (squared hinge, L2) by full-batch Adam: returns (w, b)."""
    params = {"w": jnp.zeros(x.shape[1]), "b": jnp.zeros(())}
    opt = optax.adam(0.05)

    def loss(p):
        margin = y * (x @ p["w"] + p["b"])
        return 0.5 * jnp.sum(p["w"] ** 2) / (c * len(y)) + jnp.mean(jnp.maximum(0.0, 1 - margin) ** 2)

    def step(carry, _):
        p, state = carry
        updates, state = opt.update(jax.grad(loss)(p), state)
        return (optax.apply_updates(p, updates), state), None

    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    return params["w"], params["b"]


def svm_boundary(w: np.ndarray, positive: np.ndarray, c: float = 1.0,
                 steps: int = 2000) -> tuple[np.ndarray, float]:
    """InterFaceGAN: the unit normal (in W) of a linear SVM separating ``positive`` latents
    from the rest, and the SVM's training accuracy. Latents are standardised for the fit."""
    positive = np.asarray(positive, bool)
    if positive.all() or not positive.any():
        raise ConfigError("the attribute labels are all the same: no boundary to fit")
    mean, std = w.mean(axis=0), w.std(axis=0) + 1e-8
    x = jnp.asarray((w - mean) / std, jnp.float32)
    y = jnp.where(jnp.asarray(positive), 1.0, -1.0)
    normal, bias = _fit_linear_svm(x, y, c, steps)
    accuracy = float(jnp.mean((x @ normal + bias > 0) == jnp.asarray(positive)))
    direction = np.asarray(normal) / std  # back to W's own coordinates
    return direction / np.linalg.norm(direction), accuracy
