"""Latents from seeds, and generation in batches (:func:`mlss_jax.batching.map_in_batches`:
every batch one shape, so the generator compiles once)."""

from __future__ import annotations

import numpy as np

from mlss_jax.batching import map_in_batches
from mlss_jax.networks.config import GeneratorConfig
from mlss_jax.networks.stylegan2 import StyleGAN2Generator
from mlss_jax.networks.generator import to_uint8

GENERATION_BATCH = 256  # images per generator call, unless a caller says otherwise


def latents(generator: StyleGAN2Generator | GeneratorConfig, num: int, seed: int) -> np.ndarray:
    """``num`` standard-normal z [num, z_dim] from ``seed``, for a generator or its config.

    The project's one seed convention: ``np.random.default_rng(seed)`` (PCG64, host-side).
    NVIDIA's generate.py draws a seed's z with ``RandomState(seed)`` instead, so seed 42
    here is not NVIDIA's seed 42.
    """
    return np.random.default_rng(seed).standard_normal((num, generator.z_dim)).astype(np.float32)


def seed_latents(generator: StyleGAN2Generator, seeds: list[int]) -> np.ndarray:
    """One z per seed [len(seeds), z_dim]: seed s gives ``latents(generator, 1, s)[0]``."""
    return np.concatenate([latents(generator, 1, seed) for seed in seeds])


def generate_images(generator: StyleGAN2Generator, z: np.ndarray,
                    batch_size: int = GENERATION_BATCH,
                    truncation_psi: float = 1.0, noise_mode: str = "const",
                    progress: bool | None = None, desc: str = "generate") -> np.ndarray:
    """uint8 images [N, R, R, C] for latents ``z``, ``batch_size`` at a time."""
    def images(z_batch: np.ndarray) -> np.ndarray:
        return to_uint8(generator(z_batch, truncation_psi=truncation_psi, noise_mode=noise_mode))

    return map_in_batches(images, batch_size, z, progress=progress, desc=desc)


def mapped_w(generator: StyleGAN2Generator, z: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """w = f(z) [N, w_dim], ``batch_size`` latents at a time (f's ws [N, num_ws, w_dim] are
    num_ws copies of it)."""
    return map_in_batches(lambda z_batch: generator.mapping(z_batch)[:, 0], batch_size, z)


def synthesize(generator: StyleGAN2Generator, ws, batch_size: int = GENERATION_BATCH) -> np.ndarray:
    """uint8 images [N, R, R, C] of latents ws [N, num_ws, w_dim], ``batch_size`` at a time."""
    return map_in_batches(lambda ws_batch: to_uint8(generator.synthesis(ws_batch)), batch_size, ws)
