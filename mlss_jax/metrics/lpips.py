"""LPIPS (VGG) between two sets of uint8 images, in fixed-size jitted batches.

Images larger than ``max_resolution`` are area-downsampled to it first, as the
StyleGAN2 projector does (LPIPS was calibrated on 64-256 px patches).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from mlss_jax.networks.sampling import map_in_batches
from mlss_jax.networks.vgg16 import lpips_distance
from mlss_jax.weights.load import load_vgg16


def downsample_to(images: jax.Array, max_resolution: int) -> jax.Array:
    """Average-pool float images [N, H, W, C] by an integer factor to at most ``max_resolution``."""
    factor = max(1, images.shape[1] // max_resolution)
    if factor == 1:
        return images
    n, h, w, c = images.shape
    return images.reshape(n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


def lpips_images(batch_size: int = 100, max_resolution: int = 256
                 ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A function (uint8 [N, H, W, 3], uint8 [N, H, W, 3]) -> LPIPS distances [N]."""
    params, lin = load_vgg16()

    @jax.jit
    def distance(a: jax.Array, b: jax.Array) -> jax.Array:
        to_float = lambda x: downsample_to(x.astype(jnp.float32) / 127.5 - 1.0, max_resolution)
        return lpips_distance(params, lin, to_float(a), to_float(b))

    def batched(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if a.shape != b.shape or a.ndim != 4 or a.shape[3] != 3:
            raise ValueError(f"LPIPS compares two equal batches of RGB images, got {a.shape} "
                             f"and {b.shape}")
        return map_in_batches(distance, batch_size, a, b)

    return batched
