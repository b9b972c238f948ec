"""The sweep's untruncated samples, and a sample's nearest centre by image."""

from __future__ import annotations

from typing import Callable

import numpy as np

from mlss_jax.batching import map_in_batches
from mlss_jax.method.models import LevelModel
from mlss_jax.networks.generator import to_uint8
from mlss_jax.networks.sampling import latents, synthesize
from mlss_jax.networks.stylegan2 import StyleGAN2Generator
from mlss_jax.runtime import parallel


def untruncated_samples(generator: StyleGAN2Generator, levels: list[LevelModel], num: int,
                        seed: int, batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ws [N, num_ws, w_dim], uint8 images and cluster assignments [N, L] of f(z) samples
    (the rows shared out over the processes of a multi-process run)."""
    def batch_samples(z: np.ndarray) -> dict[str, np.ndarray]:
        w = generator.mapping(z)
        img = generator.synthesis(w)
        assignments = (np.stack([m.assign(img, w) for m in levels], axis=1) if levels
                       else np.zeros((len(z), 0), np.int32))
        return {"ws": w, "images": to_uint8(img), "assignments": assignments.astype(np.int32)}

    samples = lambda z: map_in_batches(batch_samples, batch, z)
    out = parallel.split_rows(samples, latents(generator, num, seed))
    return out["ws"], out["images"], out["assignments"]


def nearest_by_image(generator: StyleGAN2Generator, images: np.ndarray, centres: np.ndarray,
                     perceptual: Callable[[np.ndarray, np.ndarray], np.ndarray],
                     batch_size: int) -> np.ndarray:
    """[N] the centre whose image (its w on every input) is nearest to each image in the
    ``perceptual`` distance, as the Self-Distilled StyleGAN demo assigns centres by LPIPS."""
    centre_ws = np.broadcast_to(centres[:, None], (len(centres), generator.num_ws, centres.shape[1]))
    centre_images = synthesize(generator, centre_ws, batch_size)

    def nearest(part: np.ndarray) -> np.ndarray:
        distances = np.stack([perceptual(part, np.broadcast_to(c, part.shape))
                              for c in centre_images], 1)
        return np.argmin(distances, axis=1).astype(np.int32)

    return parallel.split_rows(nearest, images)
