"""Image grids written as PNG."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[-1, 1] float images -> uint8, as NVIDIA's ``generate.py`` (x * 127.5 + 128, clipped)."""
    return np.clip(np.asarray(images, np.float32) * 127.5 + 128, 0, 255).astype(np.uint8)


def image_grid(images: np.ndarray, ncols: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile [N, H, W, C] images (float in [-1, 1] or uint8) into one uint8 image."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"expected [N, H, W, C] images, got shape {images.shape}")
    if images.dtype != np.uint8:
        images = to_uint8(images)
    n, h, w, c = images.shape
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), 255, np.uint8)
    for i in range(n):
        r, col = divmod(i, ncols)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y:y + h, x:x + w] = images[i]
    return grid


def grid_bytes(count: int, resolution: int, channels: int, ncols: int, min_cell: int = 64,
               pad: int = 2) -> int:
    """Host memory that ``count`` uint8 images and their grid take in :func:`save_image_grid`
    (the images, the grid, and the grid enlarged to ``min_cell`` px cells)."""
    scale = max(1, math.ceil(min_cell / resolution))
    ncols = min(ncols, count)
    rows = math.ceil(count / max(ncols, 1))
    grid = (rows * (resolution + pad) + pad) * (ncols * (resolution + pad) + pad) * channels
    return count * resolution * resolution * channels + grid * (1 + scale * scale)


def save_image_grid(images: np.ndarray, path: str | Path, ncols: int | None = None,
                    min_cell: int = 64) -> Path:
    """Write a grid PNG; cells smaller than ``min_cell`` px are enlarged (nearest) to be seen."""
    grid = image_grid(images, ncols)
    if grid.shape[-1] == 1:
        grid = grid[..., 0]
    scale = max(1, math.ceil(min_cell / np.asarray(images).shape[1]))
    img = Image.fromarray(grid)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    path = Path(path)
    img.save(path)
    return path


def save_gif(frames: np.ndarray, path: str | Path, frame_ms: int = 120, min_cell: int = 128,
             bounce: bool = True) -> Path:
    """An animated GIF of uint8 frames [T, H, W, C] (enlarged, nearest, to ``min_cell`` px);
    ``bounce`` plays forward then back, so the loop has no jump."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames [T, H, W, C], got {frames.dtype} {frames.shape}")
    if bounce and len(frames) > 2:
        frames = np.concatenate([frames, frames[-2:0:-1]])
    scale = max(1, math.ceil(min_cell / frames.shape[1]))
    images = [Image.fromarray(f[..., 0] if f.shape[-1] == 1 else f) for f in frames]
    if scale > 1:
        images = [im.resize((im.width * scale, im.height * scale), Image.NEAREST) for im in images]
    path = Path(path)
    images[0].save(path, save_all=True, append_images=images[1:], duration=frame_ms, loop=0)
    return path
