"""The ``shapes`` world: 32x32 RGB images drawn procedurally, with factors at three levels.

Every example is a pure function of ``(seed, index)``, so the dataset needs no
download and any example can be regenerated. The factors, by semantic level:

* coarse: object ``shape``, ``scale`` and ``position`` (geometry);
* medium: background ``layout`` (plain, stripes, checker, gradient ...);
* fine: object ``hue`` and background ``tint`` (colour).

Colours are chosen so that the levels do not leak into each other: objects are
saturated hues at full brightness, backgrounds low-saturation tints whose layout
only changes their brightness.
"""

from __future__ import annotations

import colorsys
import dataclasses

import numpy as np

RESOLUTION = 32
SUPERSAMPLE = 4  # anti-aliasing: draw at 4x, then average

FACTORS: dict[str, tuple[str, ...]] = {
    "shape": ("circle", "square", "triangle", "cross"),
    "scale": ("small", "medium", "large"),
    "position": ("top-left", "top-right", "bottom-left", "bottom-right", "centre"),
    "layout": ("plain", "h-stripes", "v-stripes", "checker", "gradient", "diagonal"),
    "hue": ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "magenta"),
    "tint": ("grey", "warm", "cool", "olive"),
}
LEVELS: dict[str, tuple[str, ...]] = {
    "coarse": ("shape", "scale", "position"),
    "medium": ("layout",),
    "fine": ("hue", "tint"),
}

_SCALE_PX = {"small": 10.0, "medium": 14.0, "large": 19.0}  # object size in output pixels
_POSITION = {"top-left": (0.32, 0.32), "top-right": (0.32, 0.68), "bottom-left": (0.68, 0.32),
             "bottom-right": (0.68, 0.68), "centre": (0.5, 0.5)}  # (row, col) as a fraction
_HUE = {"red": 0.0, "orange": 0.08, "yellow": 0.16, "green": 0.33, "cyan": 0.5, "blue": 0.63,
        "purple": 0.75, "magenta": 0.86}
_TINT = {"grey": (0.5, 0.5, 0.5), "warm": (0.62, 0.5, 0.42), "cool": (0.42, 0.5, 0.62),
         "olive": (0.5, 0.55, 0.38)}


@dataclasses.dataclass(frozen=True)
class ShapesExample:
    image: np.ndarray             # [32, 32, 3] uint8
    labels: dict[str, int]        # factor name -> class index into FACTORS[name]


def sample_labels(rng: np.random.Generator) -> dict[str, int]:
    return {name: int(rng.integers(len(classes))) for name, classes in FACTORS.items()}


def _object_mask(shape: str, size: float, centre: tuple[float, float], n: int) -> np.ndarray:
    """Coverage of the object on an n x n grid (n = 32 * SUPERSAMPLE)."""
    ys, xs = (np.mgrid[0:n, 0:n] + 0.5) / n
    half = size / RESOLUTION / 2
    dy, dx = (ys - centre[0]) / half, (xs - centre[1]) / half  # [-1, 1] inside the bounding box
    if shape == "circle":
        return dy ** 2 + dx ** 2 <= 1.0
    if shape == "square":
        return (np.abs(dy) <= 0.85) & (np.abs(dx) <= 0.85)
    if shape == "triangle":  # apex up
        return (dy <= 0.9) & (dy >= -0.9) & (np.abs(dx) <= (dy + 0.9) / 1.8)
    if shape == "cross":
        return ((np.abs(dy) <= 1.0) & (np.abs(dx) <= 0.33)) | ((np.abs(dx) <= 1.0) & (np.abs(dy) <= 0.33))
    raise ValueError(f"unknown shape {shape!r}")


def _background_brightness(layout: str, n: int) -> np.ndarray:
    """Brightness multiplier in [0.55, 1.25] on an n x n grid for each layout."""
    ys, xs = (np.mgrid[0:n, 0:n] + 0.5) / n
    period = 8 / RESOLUTION  # 8-pixel stripes and checks
    if layout == "plain":
        pattern = np.full((n, n), 0.5)
    elif layout == "h-stripes":
        pattern = (np.floor(ys / (period / 2)) % 2).astype(float)
    elif layout == "v-stripes":
        pattern = (np.floor(xs / (period / 2)) % 2).astype(float)
    elif layout == "checker":
        pattern = ((np.floor(ys / (period / 2)) + np.floor(xs / (period / 2))) % 2).astype(float)
    elif layout == "gradient":
        pattern = ys
    elif layout == "diagonal":
        pattern = (np.floor((ys + xs) / (period / 2)) % 2).astype(float)
    else:
        raise ValueError(f"unknown layout {layout!r}")
    return 0.55 + 0.7 * pattern


def render(labels: dict[str, int]) -> np.ndarray:
    """The image [32, 32, 3] uint8 for a dict of factor indices."""
    name = {k: FACTORS[k][v] for k, v in labels.items()}
    n = RESOLUTION * SUPERSAMPLE
    tint = np.asarray(_TINT[name["tint"]])
    canvas = _background_brightness(name["layout"], n)[..., None] * tint
    colour = np.asarray(colorsys.hsv_to_rgb(_HUE[name["hue"]], 0.9, 1.0))
    mask = _object_mask(name["shape"], _SCALE_PX[name["scale"]], _POSITION[name["position"]], n)
    canvas = np.where(mask[..., None], colour, canvas)
    image = canvas.reshape(RESOLUTION, SUPERSAMPLE, RESOLUTION, SUPERSAMPLE, 3).mean(axis=(1, 3))
    return np.clip(np.round(image * 255), 0, 255).astype(np.uint8)


def example(seed: int, index: int) -> ShapesExample:
    """Example ``index`` of the dataset drawn with ``seed``: deterministic, order-independent."""
    if index < 0 or seed < 0:
        raise ValueError("seed and index must be non-negative")
    labels = sample_labels(np.random.default_rng([seed, index]))
    return ShapesExample(render(labels), labels)


# Splits of the named dataset configs: example indices [start, stop) drawn with seed 0.
SPLITS: dict[str, dict[str, tuple[int, int]]] = {
    "default": {"train": (0, 50_000), "test": (50_000, 55_000)},
    "tiny": {"train": (0, 512), "test": (512, 640)},
}


def split_range(split: str = "train", config: str = "default") -> tuple[int, int]:
    """``(start, stop)`` example indices of a split of a dataset config."""
    if config not in SPLITS:
        raise ValueError(f"unknown shapes config {config!r} (one of {', '.join(SPLITS)})")
    if split not in SPLITS[config]:
        raise ValueError(f"unknown shapes split {split!r} (one of {', '.join(SPLITS[config])})")
    return SPLITS[config][split]


def _render_range(seed: int, start: int, stop: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    examples = [example(seed, i) for i in range(start, stop)]
    images = np.stack([ex.image for ex in examples]) if examples else \
        np.zeros((0, RESOLUTION, RESOLUTION, 3), np.uint8)
    return images, {k: np.asarray([ex.labels[k] for ex in examples], np.int64) for k in FACTORS}


def render_examples(start: int, stop: int, seed: int = 0, workers: int | None = None,
                    progress: bool | None = None, chunk: int = 1000
                    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Examples ``start .. stop-1``: images [N, 32, 32, 3] uint8 and labels {factor: [N]}.

    The same images as the tfds builder's splits (``train[i] == example(0, i)``), rendered in
    this process, or over ``workers`` processes (default: every core) in tasks of ``chunk``
    examples when there are more than two tasks.
    """
    import os

    from tqdm import tqdm

    chunks = [(a, min(a + chunk, stop)) for a in range(start, stop, chunk)]
    workers = workers or len(os.sched_getaffinity(0))
    bar = dict(desc="render shapes", unit="chunk", disable=(not progress) if progress is not None else None)
    if workers <= 1 or len(chunks) <= 2:
        parts = [_render_range(seed, a, b) for a, b in tqdm(chunks, **bar)]
    else:
        import concurrent.futures
        import multiprocessing

        # spawn, not fork: forking a process that runs XLA's threads can deadlock
        with concurrent.futures.ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_render_range, seed, a, b) for a, b in chunks]
            parts = [f.result() for f in tqdm(futures, **bar)]
    if not parts:
        return _render_range(seed, start, start)
    return (np.concatenate([p[0] for p in parts]),
            {k: np.concatenate([p[1][k] for p in parts]) for k in FACTORS})


def load_shapes(split: str = "train", config: str = "default", data_dir=None,
                progress: bool | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """All images and labels of a split: through tensorflow-datasets where it is installed (built
    once into its data directory), else rendered here. Both give the same arrays."""
    start, stop = split_range(split, config)
    try:
        from mlss_jax.demo.shapes_tfds import load_tfds_shapes
    except ImportError:  # no TensorFlow (e.g. a GPU machine): render in-process
        return render_examples(start, stop, progress=progress)
    return load_tfds_shapes(split, config, data_dir)
