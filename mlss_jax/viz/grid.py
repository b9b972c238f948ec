"""Image grids written as PNG."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from mlss_jax.networks.generator import to_uint8


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
                    min_cell: int = 64, row_labels: list[str] | None = None,
                    col_labels: list[str] | None = None) -> Path:
    """Write a grid PNG; cells smaller than ``min_cell`` px are enlarged (nearest) to be seen.
    ``row_labels`` (one per row) are written left of the rows, ``col_labels`` (one per column)
    above them."""
    images = np.asarray(images)
    grid = image_grid(images, ncols)
    if grid.shape[-1] == 1:
        grid = grid[..., 0]
    scale = max(1, math.ceil(min_cell / images.shape[1]))
    img = Image.fromarray(grid)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    if row_labels or col_labels:
        img = label_grid(img, (images.shape[1] * scale, images.shape[2] * scale), 2 * scale,
                         row_labels, col_labels)
    path = Path(path)
    img.save(path)
    return path


def label_grid(grid: Image.Image, cell: tuple[int, int], pad: int, row_labels: list[str] | None = None,
               col_labels: list[str] | None = None) -> Image.Image:
    """``grid`` (cells of ``cell`` = (height, width) px, ``pad`` px apart and around) with a white
    band of row labels on its left and one of column labels on top, each label centred on its
    row or column; the grid's own pixels are unchanged."""
    from PIL import ImageDraw, ImageFont

    (h, w), row_labels, col_labels = cell, list(row_labels or []), list(col_labels or [])
    rows, cols = (grid.height - pad) // (h + pad), (grid.width - pad) // (w + pad)
    for labels, count, name in ((row_labels, rows, "row"), (col_labels, cols, "column")):
        if labels and len(labels) != count:
            raise ValueError(f"{len(labels)} {name} labels for a grid of {count} {name}s")
    font = ImageFont.load_default(size=max(12, h // 5))
    margin = font.size // 2
    left = max((font.getlength(t) for t in row_labels), default=-2 * margin) + 2 * margin
    top = font.size + 2 * margin if col_labels else 0
    out = Image.new(grid.mode, (grid.width + math.ceil(left), grid.height + top), "white")
    out.paste(grid, (out.width - grid.width, top))
    draw = ImageDraw.Draw(out)
    for r, text in enumerate(row_labels):
        draw.text((left - margin, top + pad + r * (h + pad) + h / 2), text, "black", font, anchor="rm")
    for c, text in enumerate(col_labels):
        draw.text((out.width - grid.width + pad + c * (w + pad) + w / 2, top / 2), text, "black", font,
                  anchor="mm")
    return out


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
