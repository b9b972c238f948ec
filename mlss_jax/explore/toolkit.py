"""The latent-space tools behind ``explore.py``: each returns images (uint8) or arrays;
the script writes them. Every function is deterministic in its seed(s)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from mlss_jax.errors import ConfigError
from mlss_jax.explore.latent_ops import (edit_along, lerp, mix_levels, pca_directions, slerp,
                                         svm_boundary)
from mlss_jax.method.control import compose, control_grid_latents
from mlss_jax.method.models import LevelModel
from mlss_jax.networks.stylegan2 import StyleGAN2Generator
from mlss_jax.networks.sampling import latents, mapped_w, seed_latents, synthesize


def control_images(generator: StyleGAN2Generator, levels: list[LevelModel], level_index: int,
                   columns: int, seed: int) -> np.ndarray:
    """Rows: the chosen level's clusters; columns: everything else fixed."""
    clusters, eps, z = control_grid_latents(levels, level_index, columns, seed)
    return synthesize(generator, compose(generator, levels, clusters, eps, z))


def composed_images(generator: StyleGAN2Generator, levels: list[LevelModel],
                    clusters: tuple[int, ...], num: int, seed: int) -> np.ndarray:
    """``num`` images with level i drawn from its cluster ``clusters[i]``."""
    rng = np.random.default_rng(seed)
    z_dim = generator.z_dim
    chosen = np.tile(np.asarray(clusters)[None], (num, 1))
    eps = rng.standard_normal((num, len(levels), z_dim)).astype(np.float32)
    z = rng.standard_normal((num, z_dim)).astype(np.float32)
    return synthesize(generator, compose(generator, levels, chosen, eps, z))


@dataclasses.dataclass
class LevelEmbedding:
    level: str
    clusters: np.ndarray     # [N], the Gaussian each mixture sample came from
    z_tsne: np.ndarray       # [N, 2]: the level's own latents z ~ mixture
    mapped_tsne: np.ndarray  # [N, 2]: the same samples mapped into W, M_l(z)
    assigned: np.ndarray     # [N], C_l's cluster of each generator sample f(z')
    w_tsne: np.ndarray       # [N, 2]: the generator's own W samples f(z')


def tsne_embeddings(generator: StyleGAN2Generator, levels: list[LevelModel], samples: int,
                    perplexity: float, seed: int) -> list[LevelEmbedding]:
    """Per level, t-SNE of: mixture samples z and their M_l(z), coloured by Gaussian; and
    f(z') samples in W coloured by the cluster C_l assigns to their images."""
    from mlss_jax.method.models import sample_mixture
    from mlss_jax.explore.tsne import tsne

    rng = np.random.default_rng(seed)
    key = jax.random.PRNGKey(seed)
    z_prime = rng.standard_normal((samples, generator.z_dim)).astype(np.float32)
    ws = generator.mapping(z_prime)
    images = jnp.concatenate([generator.synthesis(ws[i:i + 256]) for i in range(0, samples, 256)])
    w_tsne = np.asarray(tsne(ws[:, 0], key, perplexity))
    out = []
    for model in levels:
        k = model.config.num_clusters
        clusters = np.repeat(np.arange(k), -(-samples // k))[:samples]
        eps = rng.standard_normal((samples, model.generator_config.z_dim)).astype(np.float32)
        z = sample_mixture(model.gen["mixture"], jnp.asarray(clusters), jnp.asarray(eps))
        mapped = model.level_w(clusters, eps)
        out.append(LevelEmbedding(model.config.level, clusters, np.asarray(tsne(z, key, perplexity)),
                                  np.asarray(tsne(mapped, key, perplexity)),
                                  model.assign(images, ws), w_tsne))
    return out


# ---- StyleGAN tools -----------------------------------------------------------------

def interpolation_images(generator: StyleGAN2Generator, seed_a: int, seed_b: int, steps: int,
                         space: str, mode: str) -> np.ndarray:
    """Images along the path from seed_a to seed_b: in Z (lerp or slerp) or in W (lerp)."""
    z = seed_latents(generator, [seed_a, seed_b])
    t = jnp.linspace(0.0, 1.0, steps)
    if space == "z":
        path = slerp(z[0], z[1], t) if mode == "slerp" else lerp(z[0], z[1], t)
        return synthesize(generator, generator.mapping(path))
    if mode != "lerp":
        raise ConfigError("W is not Gaussian: interpolate in W with lerp")
    ws = generator.mapping(z)
    return synthesize(generator, lerp(ws[0], ws[1], t))


def mixing_images(generator: StyleGAN2Generator, seeds: list[int], level_range: tuple[int, int]
                  ) -> np.ndarray:
    """A style-mixing table: row i takes seed i's ws with the level's inputs from seed j
    (column j). Returns [len(seeds) + 1, len(seeds) + 1] images with the sources along the
    top and the destinations down the left (the corner blank)."""
    n = len(seeds)
    ws = generator.mapping(seed_latents(generator, seeds))
    dest, src = np.repeat(np.arange(n), n), np.tile(np.arange(n), n)
    # ranges: the level's inputs from the source, all other inputs from the destination
    mixed = mix_levels(ws, jnp.stack([jnp.asarray(src), jnp.asarray(dest)], 1), (level_range,))
    originals = synthesize(generator, ws)
    table = synthesize(generator, mixed).reshape(n, n, *originals.shape[1:])
    blank = np.full_like(originals[0], 255)
    rows = [np.concatenate([blank[None], originals])]
    rows += [np.concatenate([originals[i:i + 1], table[i]]) for i in range(n)]
    return np.concatenate(rows)


def edit_images(generator: StyleGAN2Generator, seeds: list[int], direction: np.ndarray,
                strengths: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Rows: seeds; columns: strengths along the direction on the masked inputs."""
    ws = generator.mapping(seed_latents(generator, seeds))
    edited = edit_along(ws, jnp.asarray(direction, jnp.float32), jnp.asarray(strengths, jnp.float32),
                        jnp.asarray(mask))
    return synthesize(generator, edited.reshape(-1, *ws.shape[1:]))


def pca_direction(generator: StyleGAN2Generator, component: int, samples: int, seed: int
                  ) -> tuple[np.ndarray, float]:
    """GANSpace: the ``component``-th principal direction of W, scaled to one standard deviation."""
    w = mapped_w(generator, latents(generator, samples, seed))
    directions, stds = pca_directions(w, component + 1)
    return directions[component] * stds[component], float(stds[component])


def interfacegan_direction(generator: StyleGAN2Generator, factor: str, value: str, samples: int,
                           seed: int, classifier_dir=None) -> tuple[np.ndarray, dict]:
    """InterFaceGAN on the demo: label f(z) samples by the factor classifier (``factor ==
    value``), fit a linear SVM in W; returns its unit normal and the fit's statistics."""
    from mlss_jax.demo.world import FACTORS, factor_predictor

    if factor not in FACTORS or value not in FACTORS[factor]:
        known = "; ".join(f"{f}: {', '.join(v)}" for f, v in FACTORS.items())
        raise ConfigError(f"unknown attribute {factor}={value} (known: {known})")
    w = mapped_w(generator, latents(generator, samples, seed))
    images = synthesize(generator, np.repeat(w[:, None], generator.num_ws, axis=1))
    labels = factor_predictor(classifier_dir).labels(images)[factor] == FACTORS[factor].index(value)
    direction, accuracy = svm_boundary(w, labels)
    return direction, {"samples": samples, "positive_share": float(labels.mean()),
                       "svm_train_accuracy": accuracy}
