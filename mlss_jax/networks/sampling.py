"""Latents from seeds, and batched calls of jitted functions (generation, features).

Every batch has one shape, so each jitted function compiles once (or twice, for a
shorter last batch where padding would waste work).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from mlss_jax.networks.config import GeneratorConfig
from mlss_jax.networks.stylegan2 import StyleGAN2Generator
from mlss_jax.networks.generator import to_uint8


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


def generate_images(generator: StyleGAN2Generator, z: np.ndarray, batch_size: int = 256,
                    truncation_psi: float = 1.0, noise_mode: str = "const",
                    progress: bool | None = None, desc: str = "generate") -> np.ndarray:
    """uint8 images [N, R, R, C] for latents ``z``, ``batch_size`` at a time.

    Every batch but the last has the same shape, so the jitted networks compile
    at most twice.
    """
    from tqdm import tqdm

    out = []
    starts = range(0, len(z), batch_size)
    disable = (not progress) if progress is not None else None
    for start in tqdm(starts, desc=desc, unit="batch", disable=disable):
        images = generator(z[start:start + batch_size], truncation_psi=truncation_psi,
                           noise_mode=noise_mode)
        out.append(to_uint8(np.asarray(images)))
    return np.concatenate(out) if out else np.zeros((0, generator.resolution, generator.resolution,
                                                     generator.img_channels), np.uint8)


def mapped_w(generator: StyleGAN2Generator, z: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """w = f(z) [N, w_dim], ``batch_size`` latents at a time (f's ws [N, num_ws, w_dim] are
    num_ws copies of it)."""
    return np.concatenate([np.asarray(generator.mapping(z[i:i + batch_size])[:, 0])
                           for i in range(0, len(z), batch_size)])


def synthesize(generator: StyleGAN2Generator, ws, batch_size: int = 256) -> np.ndarray:
    """uint8 images [N, R, R, C] of latents ws [N, num_ws, w_dim], ``batch_size`` at a time."""
    return np.concatenate([to_uint8(np.asarray(generator.synthesis(ws[i:i + batch_size])))
                           for i in range(0, len(ws), batch_size)])


def map_in_batches(fn: Callable[..., object], batch_size: int, *arrays: np.ndarray) -> np.ndarray:
    """``fn`` applied to aligned chunks of ``arrays`` (the last chunk zero-padded to
    ``batch_size`` and its padding dropped from the output); outputs concatenated."""
    n = len(arrays[0])
    out = []
    for start in range(0, n, batch_size):
        chunks = [a[start:start + batch_size] for a in arrays]
        count = len(chunks[0])
        if count < batch_size:
            chunks = [np.concatenate([c, np.zeros((batch_size - count, *c.shape[1:]), c.dtype)])
                      for c in chunks]
        out.append(np.asarray(fn(*chunks))[:count])
    return np.concatenate(out)
