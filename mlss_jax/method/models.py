"""One level's model: Gaussian mixture, mapper M_l, W critic D_l, classifier C_l, and a trained
level (:class:`LevelModel`) with its images, cluster assignments and accuracy.

All are pure functions of their parameters. The mapper has exactly the
architecture (and parameter tree) of the generator's mapping network f, so it is
applied through f's own module and can start from f's weights.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mlss_jax.errors import ConfigError
from mlss_jax.method.config import MLSSConfig
from mlss_jax.method.levels import LevelSplit
from mlss_jax.networks.config import GeneratorConfig
from mlss_jax.networks.generator import Generator, MappingNetwork

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


# ---- a level: composing ws and images, a trained level -----------------------------

def classifier_module(config: MLSSConfig) -> ImageClusterClassifier | LatentClusterClassifier:
    if config.classifier == "image":
        return ImageClusterClassifier(config.num_clusters, max_resolution=config.classifier_resolution)
    return LatentClusterClassifier(config.num_clusters)


def compose_ws(f_ws: jax.Array, level_w: jax.Array, level_range: tuple[int, int]) -> jax.Array:
    """``f_ws`` [N, num_ws, w_dim] with inputs ``start:stop`` replaced by ``level_w`` [N, w_dim]."""
    start, stop = level_range
    layer = jnp.arange(f_ws.shape[1])[None, :, None]
    inside = (layer >= start) & (layer < stop)
    return jnp.where(inside, level_w[:, None, :], f_ws)


@functools.partial(jax.jit, static_argnums=(0,))
def _mapped_level_w(g_cfg: GeneratorConfig, gen: dict, clusters: jax.Array, eps: jax.Array) -> jax.Array:
    return apply_mapper(g_cfg, gen["mapper"], sample_mixture(gen["mixture"], clusters, eps))


def level_images(config: MLSSConfig, g_cfg: GeneratorConfig, g_vars: dict, gen: dict,
                 clusters: np.ndarray, eps: np.ndarray, z_other: np.ndarray) -> jax.Array:
    """Images with the level's inputs from ``M_l(mu[k] + sigma[k] eps)`` and ``f(z_other)`` elsewhere."""
    return _level_images(config, g_cfg, g_vars, gen, jnp.asarray(clusters), jnp.asarray(eps),
                         jnp.asarray(z_other))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _level_images(config, g_cfg, g_vars, gen, clusters, eps, z_other):
    generator = Generator(g_cfg)
    level_range = LevelSplit.parse(config.split, g_cfg.num_ws).range(config.level)
    level_w = _mapped_level_w(g_cfg, gen, clusters, eps)
    f_ws = generator.apply(g_vars, z_other, method=Generator.map_latents)
    return generator.apply(g_vars, compose_ws(f_ws, level_w, level_range), "const",
                           method=Generator.synthesize)


def cluster_grid_latents(num_clusters: int, z_dim: int, columns: int, seed: int
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Latents of a control grid: row k = cluster k; column j shares eps_j and z_other_j."""
    rng = np.random.default_rng(seed)
    eps = rng.standard_normal((columns, z_dim)).astype(np.float32)
    z_other = rng.standard_normal((columns, z_dim)).astype(np.float32)
    clusters = np.repeat(np.arange(num_clusters), columns)
    return clusters, np.tile(eps, (num_clusters, 1)), np.tile(z_other, (num_clusters, 1))


def save_cluster_grid(path: Path, config: MLSSConfig, g_cfg: GeneratorConfig, g_vars: dict,
                      gen: dict, columns: int = 8, seed: int = 0) -> Path:
    """PNG with one row per cluster; the other levels stay fixed down each column."""
    from mlss_jax.viz.grid import save_image_grid

    clusters, eps, z_other = cluster_grid_latents(config.num_clusters, g_cfg.z_dim, columns, seed)
    images = level_images(config, g_cfg, g_vars, gen, clusters, eps, z_other)
    return save_image_grid(np.asarray(images), path, ncols=columns)


@functools.partial(jax.jit, static_argnums=0)
def _cluster_logits(config: MLSSConfig, classifier: dict, images: jax.Array, level_w: jax.Array):
    x = images if config.classifier == "image" else level_w
    return classifier_module(config).apply({"params": classifier}, x)


@dataclasses.dataclass
class LevelModel:
    """A trained level: its config, the generator's config and the learned parameters.

    Load one with :func:`mlss_jax.method.runs.load_levels` (or ``load_level``).
    """

    config: MLSSConfig
    generator_config: GeneratorConfig
    split: LevelSplit
    step: int
    gen: dict            # {'mixture': {'mu', 'log_sigma'}, 'mapper': f-shaped params}
    classifier: dict

    @property
    def level_range(self) -> tuple[int, int]:
        return self.split.range(self.config.level)

    def level_w(self, clusters: np.ndarray, eps: np.ndarray) -> jax.Array:
        """``M_l(z)`` with z drawn from Gaussian ``clusters[i]`` by noise ``eps[i]``: [N, w_dim]."""
        k = self.config.num_clusters
        clusters = np.asarray(clusters)
        if clusters.size and (clusters.min() < 0 or clusters.max() >= k):
            raise ConfigError(f"{self.config.level} cluster index out of range 0..{k - 1}")
        return _mapped_level_w(self.generator_config, self.gen, jnp.asarray(clusters),
                               jnp.asarray(eps))

    def assign(self, images: jax.Array, ws: jax.Array) -> np.ndarray:
        """``argmax C_l`` of samples: images [N, R, R, C] in [-1, 1] and their ws [N, num_ws, w_dim]."""
        level_w = ws[:, self.level_range[0]]
        return np.asarray(jnp.argmax(_cluster_logits(self.config, self.classifier, images, level_w), -1))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _classify_level_images(config, g_cfg, g_vars, gen, classifier, clusters, eps, z_other):
    if config.classifier == "image":
        x = _level_images(config, g_cfg, g_vars, gen, clusters, eps, z_other)
    else:
        x = _mapped_level_w(g_cfg, gen, clusters, eps)
    return jnp.argmax(classifier_module(config).apply({"params": classifier}, x), -1)


def classifier_accuracy(model: LevelModel, g_vars: dict, num_samples: int, seed: int,
                        batch_size: int = 256) -> float:
    """How often C_l recovers k on fresh samples (k uniform; other levels random)."""
    rng = np.random.default_rng(seed)
    z_dim, correct = model.generator_config.z_dim, 0
    for start in range(0, num_samples, batch_size):
        m = min(batch_size, num_samples - start)
        clusters = rng.integers(0, model.config.num_clusters, m)
        eps = rng.standard_normal((m, z_dim)).astype(np.float32)
        z_other = rng.standard_normal((m, z_dim)).astype(np.float32)
        predicted = _classify_level_images(model.config, model.generator_config, g_vars, model.gen,
                                           model.classifier, jnp.asarray(clusters),
                                           jnp.asarray(eps), jnp.asarray(z_other))
        correct += int(np.sum(np.asarray(predicted) == clusters))
    return correct / num_samples
