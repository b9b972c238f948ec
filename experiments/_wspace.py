"""Pieces the W-space experiments share: an image encoder to one w, a fit of G's mapping to a
set of w codes with a critic on w, and the factor classifier's reading of a set of images.

Research code behind docs/experiment-log.md; nothing in ``mlss_jax`` imports it.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlss_jax.gan.feature_encoder import FeatureEncoder
from mlss_jax.gan.losses import discriminator_loss, generator_loss, r1_penalty
from mlss_jax.networks.config import GeneratorConfig
from mlss_jax.networks.generator import Generator


class WEncoder(nn.Module):
    """images [N, R, R, C] in [-1, 1] -> one w [N, w_dim]: the feature encoder's four stages, then
    two dense layers; with ``normalize``, each w scaled to zero mean and unit second moment."""

    w_dim: int
    normalize: bool = False

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        features = FeatureEncoder((32, 64, 128, 128))(images)[-1]
        h = nn.leaky_relu(nn.Dense(512)(features.reshape(features.shape[0], -1)), 0.2)
        w = nn.Dense(self.w_dim)(h)
        if self.normalize:
            w = w - w.mean(-1, keepdims=True)
            w = w * jax.lax.rsqrt(jnp.mean(w * w, -1, keepdims=True) + 1e-8)
        return w


def broadcast_ws(g_cfg: GeneratorConfig, w: jax.Array | np.ndarray) -> jax.Array:
    """One w per image [N, w_dim] -> the synthesis network's ws [N, num_ws, w_dim]."""
    return jnp.broadcast_to(jnp.asarray(w)[:, None], (len(w), g_cfg.num_ws, g_cfg.w_dim))


class WCritic(nn.Module):
    """A critic on standardised w: three dense layers of 512 with leaky ReLU."""

    @nn.compact
    def __call__(self, w: jax.Array) -> jax.Array:
        for _ in range(3):
            w = nn.leaky_relu(nn.Dense(512)(w), 0.2)
        return nn.Dense(1)(w)[:, 0]


def fit_mapping(g_cfg: GeneratorConfig, g_vars: dict, codes: np.ndarray, steps: int,
                learning_rate: float, batch_size: int = 256, seed: int = 0,
                log=print) -> dict:
    """G's mapping parameters trained so that f(z) matches the distribution of ``codes``
    [N, w_dim] (non-saturating GAN losses, R1 of weight 1 on the critic at the codes). Starts
    from ``g_vars``' mapping. ``learning_rate`` is Adam's on the stored parameters, which the
    mapping's equalised layers scale by its learning-rate multiplier."""
    generator, critic = Generator(g_cfg), WCritic()
    mean, std = codes.mean(0), codes.std(0) + 1e-6
    standardise = lambda w: (w - mean) / std   # the critic, and its R1, in the codes' units
    key = jax.random.PRNGKey(seed)
    critic_params = critic.init(key, jnp.zeros((1, g_cfg.w_dim)))["params"]
    mapping = g_vars["params"]["mapping"]
    tx_map = optax.adam(learning_rate, b1=0.0, b2=0.99, eps=1e-8)
    tx_critic = optax.adam(1e-3, b1=0.0, b2=0.99, eps=1e-8)
    map_opt, critic_opt = tx_map.init(mapping), tx_critic.init(critic_params)

    def mapped(mapping: dict, z: jax.Array) -> jax.Array:
        variables = {"params": {**g_vars["params"], "mapping": mapping}, "buffers": g_vars["buffers"]}
        return generator.apply(variables, z, method=Generator.map_latents)[:, 0]

    def critic_loss(params: dict, real: jax.Array, fake: jax.Array) -> jax.Array:
        score = lambda w: critic.apply({"params": params}, w)
        real = standardise(real)
        return (discriminator_loss(score(real), score(standardise(fake)))
                + 0.5 * r1_penalty(score, real))

    @jax.jit
    def step(mapping, map_opt, critic_params, critic_opt, real, key):
        k_map, k_critic = jax.random.split(key)
        z = jax.random.normal(k_map, (real.shape[0], g_cfg.z_dim))
        map_loss, grads = jax.value_and_grad(lambda m: generator_loss(
            critic.apply({"params": critic_params}, standardise(mapped(m, z)))))(mapping)
        updates, map_opt = tx_map.update(grads, map_opt)
        mapping = optax.apply_updates(mapping, updates)
        fake = mapped(mapping, jax.random.normal(k_critic, (real.shape[0], g_cfg.z_dim)))
        c_loss, grads = jax.value_and_grad(critic_loss)(critic_params, real, fake)
        updates, critic_opt = tx_critic.update(grads, critic_opt)
        return (mapping, map_opt, optax.apply_updates(critic_params, updates), critic_opt,
                map_loss, c_loss)

    rng = np.random.default_rng(seed)
    for i in range(steps):
        real = codes[rng.integers(0, len(codes), batch_size)]
        mapping, map_opt, critic_params, critic_opt, map_loss, c_loss = step(
            mapping, map_opt, critic_params, critic_opt, real, jax.random.fold_in(key, i))
        if i % 500 == 0 or i == steps - 1:
            log(f"mapping fit {i}: mapping loss {float(map_loss):.3f}, critic loss {float(c_loss):.3f}")
    return mapping


def with_mapping(g_cfg: GeneratorConfig, g_vars: dict, mapping: dict, z: np.ndarray,
                 num_samples: int = 2000) -> tuple[dict, np.ndarray]:
    """G's variables with ``mapping`` and its W average over latents ``z``, and the uint8
    images of the first ``num_samples`` of them (psi 1)."""
    from mlss_jax.networks.sampling import mapped_w, synthesize
    from mlss_jax.networks.stylegan2 import StyleGAN2Generator

    variables = {"params": {**g_vars["params"], "mapping": mapping}, "buffers": g_vars["buffers"]}
    generator = StyleGAN2Generator(g_cfg, variables)
    w = mapped_w(generator, z)
    samples = synthesize(generator, broadcast_ws(g_cfg, w[:num_samples]))   # psi 1: no W average
    variables["buffers"] = {**variables["buffers"], "mapping": {"w_avg": jnp.asarray(w.mean(0))}}
    return variables, samples


def world2_data(test_images: int = 2000):
    """World 2's factor classifier (the measure), its training images and labels, and its first
    ``test_images`` held-out images and labels."""
    from mlss_jax.demo.dataset import load_shapes
    from mlss_jax.demo.world import FACTOR_CLASSIFIERS, factor_predictor

    train, train_labels = load_shapes("train", world=2)
    test, test_labels = load_shapes("test", world=2)
    return (factor_predictor(FACTOR_CLASSIFIERS[2]), (train, train_labels),
            (test[:test_images], {k: v[:test_images] for k, v in test_labels.items()}))


def print_report(report: dict, out, names: tuple[str, ...]) -> None:
    """The report, then the path of every file written to ``out``."""
    import json

    print(json.dumps(report, indent=2))
    for name in names:
        print(f"wrote {out / name}")


def factor_reading(predictor, images: np.ndarray, data_labels: dict[str, np.ndarray],
                   labels: dict[str, np.ndarray] | None = None) -> dict:
    """What the factor classifier reads in ``images``: the share with every factor confident
    (>= 0.9) and each factor's total variation from the data's class frequencies; given the
    images' true ``labels``, also the share read right on every factor."""
    from mlss_jax.demo.quality import factor_quality

    probs = predictor.probabilities(images)
    quality = factor_quality(probs, data_labels, 0.9, predictor.world)
    out = {"images": len(images), "all_confident": round(quality.confident_share, 4),
           "total_variation": {k: round(v, 3) for k, v in quality.total_variation.items()}}
    if labels is not None:
        right = [probs[k].argmax(-1) == labels[k] for k in probs]
        out["all_right"] = round(float(np.all(np.stack(right), 0).mean()), 4)
    return out
