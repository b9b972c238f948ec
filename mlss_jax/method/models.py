"""The learned parts of one level: Gaussian mixture, mapper M_l, W critic D_l, classifier C_l.

All are pure functions of their parameters. The mapper has exactly the
architecture (and parameter tree) of the generator's mapping network f, so it is
applied through f's own module and can start from f's weights.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from mlss_jax.networks.config import GeneratorConfig
from mlss_jax.networks.generator import MappingNetwork

# ---- mixture of K Gaussians in Z --------------------------------------------


def init_mixture(rng: jax.Array, num_clusters: int, z_dim: int, sigma_init: float) -> dict:
    """Means drawn from the prior N(0, I); every std ``sigma_init`` (stored as log)."""
    return {"mu": jax.random.normal(rng, (num_clusters, z_dim)),
            "log_sigma": jnp.full((num_clusters, z_dim), jnp.log(sigma_init))}


def sample_mixture(mixture: dict, clusters: jax.Array, eps: jax.Array) -> jax.Array:
    """Reparameterised ``z = mu[k] + sigma[k] * eps``; gradients reach mu and log sigma."""
    return mixture["mu"][clusters] + jnp.exp(mixture["log_sigma"][clusters]) * eps


# ---- mapper M_l ---------------------------------------------------------------


def apply_mapper(g_cfg: GeneratorConfig, mapper_params: dict, z: jax.Array) -> jax.Array:
    """``M_l(z)``: one w [N, w_dim] per sample (f's architecture, these weights)."""
    variables = {"params": mapper_params, "buffers": {"w_avg": jnp.zeros((g_cfg.w_dim,))}}
    return MappingNetwork(g_cfg).apply(variables, z)[:, 0]


# ---- critic D_l on W ------------------------------------------------------------


class WCritic(nn.Module):
    """MLP critic on w: ``layers`` hidden lrelu layers of ``hidden`` units, no normalisation."""

    hidden: int = 512
    layers: int = 3

    @nn.compact
    def __call__(self, w: jax.Array) -> jax.Array:
        x = w
        for i in range(self.layers):
            x = nn.leaky_relu(nn.Dense(self.hidden, name=f"fc{i}")(x), 0.2)
        return nn.Dense(1, name="out")(x)[:, 0]


# ---- classifier C_l -------------------------------------------------------------


class ImageClusterClassifier(nn.Module):
    """Convnet on generated images [N, R, R, C] in [-1, 1] -> K logits.

    Images larger than ``max_resolution`` are average-pooled down to it first
    (the images are the cost of training).
    """

    num_clusters: int
    width: int = 32
    max_resolution: int = 64

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        x = images
        while x.shape[1] > self.max_resolution:
            x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        stage = 0
        while x.shape[1] > 4:
            x = nn.leaky_relu(nn.Conv(self.width * 2 ** min(stage, 3), (3, 3), name=f"conv{stage}")(x), 0.2)
            x = nn.avg_pool(x, (2, 2), strides=(2, 2))
            stage += 1
        x = nn.leaky_relu(nn.Dense(256, name="fc")(x.reshape(x.shape[0], -1)), 0.2)
        return nn.Dense(self.num_clusters, name="logits")(x)


class LatentClusterClassifier(nn.Module):
    """MLP on the level's w [N, w_dim] -> K logits (the cheaper ``--classifier latent``)."""

    num_clusters: int
    hidden: int = 256

    @nn.compact
    def __call__(self, w: jax.Array) -> jax.Array:
        x = nn.leaky_relu(nn.Dense(self.hidden, name="fc0")(w), 0.2)
        x = nn.leaky_relu(nn.Dense(self.hidden, name="fc1")(x), 0.2)
        return nn.Dense(self.num_clusters, name="logits")(x)
