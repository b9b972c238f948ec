"""Multi-level control (the paper's Fig. 8): choose a cluster per level and compose the image.

Each level's inputs take ``M_l(mu[l, k_l] + sigma[l, k_l] eps_l)``; the inputs of
no level (the last one) and of levels not given take ``f(z)``.
"""

from __future__ import annotations

import jax
import numpy as np

from mlss_jax.method.models import LevelModel, compose_ws
from mlss_jax.networks.stylegan2 import StyleGAN2Generator


def compose(generator: StyleGAN2Generator, levels: list[LevelModel], clusters: np.ndarray,
            eps: np.ndarray, z: np.ndarray) -> jax.Array:
    """ws [N, num_ws, w_dim]: level i's inputs from its cluster ``clusters[:, i]`` (noise
    ``eps[:, i]``), every other input from ``f(z)``."""
    ws = generator.mapping(z)
    for i, model in enumerate(levels):
        ws = compose_ws(ws, model.level_w(clusters[:, i], eps[:, i]), model.level_range)
    return ws


def control_grid_latents(levels: list[LevelModel], level_index: int, columns: int, seed: int
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(clusters [K*C, L], eps [K*C, L, z_dim], z [K*C, z_dim]) of a control grid: row k sets the
    chosen level to cluster k; down each column everything else stays fixed (the other
    levels' clusters, drawn per column, their noise, and z)."""
    rng = np.random.default_rng(seed)
    num_levels, z_dim = len(levels), levels[0].generator_config.z_dim
    k = levels[level_index].config.num_clusters
    column_clusters = np.stack([rng.integers(0, m.config.num_clusters, columns) for m in levels], 1)
    eps = rng.standard_normal((columns, num_levels, z_dim)).astype(np.float32)
    z = rng.standard_normal((columns, z_dim)).astype(np.float32)
    clusters = np.tile(column_clusters, (k, 1))
    clusters[:, level_index] = np.repeat(np.arange(k), columns)
    return clusters, np.tile(eps, (k, 1, 1)), np.tile(z, (k, 1))
