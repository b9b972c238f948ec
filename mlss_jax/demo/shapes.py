"""The ``shapes`` world: 32x32 RGB images drawn procedurally, with factors at three levels.

Every example is a pure function of ``(seed, index)``, so the dataset needs no
download and any example can be regenerated. There are two versions of the world:

* **world 1**: every factor is discrete and nothing varies inside a class, so the world is a
  finite set of 11,520 images.
  coarse: object ``shape``, ``scale`` and ``position``; medium: background ``layout`` (8 px
  stripes and checks, a gradient); fine: object ``hue`` and background ``tint``.
* **world 2** (the default; the bundled generator, its levels and the factor classifier are
  world 2's): the same labels, drawn the same way, plus continuous variation inside every
  class, drawn from ``(seed, index)`` too: the object's size within its band, its position within
  its region, a rotation, jitter of hue, saturation and brightness, of the tint, and of the
  background pattern's period, phase and contrast. A generator is a continuous map and cannot
  put its mass on a finite set of images; real data varies continuously within each class, and
  now so does this world. Its medium factor is a background ``texture`` of 3.5-4.5 px period,
  the scale that the medium level's inputs lay out at 32 px (the 8 and 16 px layers), where
  world 1's 8 px layout was drawn by the coarse layers. Classes stay apart by a margin (see
  ``variation``), so the labels stay exact.

Colours are chosen so that the levels do not leak into each other: objects are
saturated hues at full brightness, backgrounds low-saturation tints whose layout
only changes their brightness.
"""

from __future__ import annotations

import colorsys
import dataclasses
import re

import numpy as np

from mlss_jax.errors import ConfigError

RESOLUTION = 32
SUPERSAMPLE = 4  # anti-aliasing: draw at 4x, then average

WORLDS = (1, 2)
DEFAULT_WORLD = 2   # the bundled generator, its levels and the factor classifier are world 2's

_COMMON = {
    "shape": ("circle", "square", "triangle", "cross"),
    "scale": ("small", "medium", "large"),
    "position": ("top-left", "top-right", "bottom-left", "bottom-right", "centre"),
}
_COLOUR = {
    "hue": ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "magenta"),
    "tint": ("grey", "warm", "cool", "olive"),
}
FACTORS_BY_WORLD: dict[int, dict[str, tuple[str, ...]]] = {
    1: {**_COMMON, "layout": ("plain", "h-stripes", "v-stripes", "checker", "gradient", "diagonal"),
        **_COLOUR},
    2: {**_COMMON, "texture": ("plain", "h-stripes", "v-stripes", "checker", "diagonal", "dots"),
        **_COLOUR},
}
LEVELS_BY_WORLD: dict[int, dict[str, tuple[str, ...]]] = {
    world: {"coarse": ("shape", "scale", "position"),
            "medium": tuple(f for f in factors if f in ("layout", "texture")),
            "fine": ("hue", "tint")}
    for world, factors in FACTORS_BY_WORLD.items()}
FACTORS = FACTORS_BY_WORLD[DEFAULT_WORLD]
LEVELS = LEVELS_BY_WORLD[DEFAULT_WORLD]


def check_world(world: int) -> int:
    if world not in WORLDS:
        raise ConfigError(f"unknown shapes world {world!r} (one of {', '.join(map(str, WORLDS))})")
    return world


def world_factors(world: int = DEFAULT_WORLD) -> dict[str, tuple[str, ...]]:
    """The factors of a world version and their classes."""
    return FACTORS_BY_WORLD[check_world(world)]


# Each world's version of the tensorflow-datasets builder (shapes_tfds.py): world N is the tfds
# name ``shapes/<config>:<TFDS_VERSIONS[N]>``, and a name without a version (``shapes/tiny``) is
# DEFAULT_WORLD's. The one place a world meets its tfds name.
TFDS_VERSIONS: dict[int, str] = {1: "1.0.0", 2: "2.0.0"}
DATASET = "shapes"


def tfds_name(config: str = "default", world: int = DEFAULT_WORLD) -> str:
    """The tfds name of a config of a world: ``shapes/tiny:2.0.0`` for world 2's ``tiny``."""
    split_range("train", config)
    return f"{DATASET}/{config}:{TFDS_VERSIONS[check_world(world)]}"


def tfds_world(version: str) -> int:
    """The world a version of the tfds builder holds."""
    worlds = [w for w, v in TFDS_VERSIONS.items() if v == str(version)]
    if not worlds:
        raise ConfigError(f"unknown shapes version {version!r} (one of "
                          f"{', '.join(f'{v} (world {w})' for w, v in TFDS_VERSIONS.items())})")
    return worlds[0]


def is_shapes_name(name: str) -> bool:
    """Whether ``name`` names the ``shapes`` dataset (``shapes``, ``shapes/tiny``,
    ``shapes:2.0.0``, ``shapes/tiny:2.0.0``), not another tfds dataset or a folder."""
    return re.split("[/:]", str(name), maxsplit=1)[0] == DATASET


def parse_shapes_name(name: str) -> tuple[str, int]:
    """``(config, world)`` of a shapes name ``shapes[/config][:version]`` (tfds's form): the
    config defaults to ``default``, the version to DEFAULT_WORLD's (``shapes/tiny`` is world
    DEFAULT_WORLD, ``shapes/tiny:2.0.0`` world 2)."""
    match = re.fullmatch(rf"{DATASET}(?:/(?P<config>[^/:]+))?(?::(?P<version>[^/:]+))?", str(name))
    if match is None:
        raise ConfigError(f"{name!r} is not a shapes name (shapes[/CONFIG][:VERSION], e.g. "
                          f"{tfds_name('tiny', max(WORLDS))})")
    config = match["config"] or "default"
    split_range("train", config)
    return config, DEFAULT_WORLD if match["version"] is None else tfds_world(match["version"])


_SCALE_PX = {"small": 10.0, "medium": 14.0, "large": 19.0}  # object size in output pixels
_POSITION = {"top-left": (0.32, 0.32), "top-right": (0.32, 0.68), "bottom-left": (0.68, 0.32),
             "bottom-right": (0.68, 0.68), "centre": (0.5, 0.5)}  # (row, col) as a fraction
_HUE = {"red": 0.0, "orange": 0.08, "yellow": 0.16, "green": 0.33, "cyan": 0.5, "blue": 0.63,
        "purple": 0.75, "magenta": 0.86}
_TINT = {"grey": (0.5, 0.5, 0.5), "warm": (0.62, 0.5, 0.42), "cool": (0.42, 0.5, 0.62),
         "olive": (0.5, 0.55, 0.38)}


@dataclasses.dataclass(frozen=True)
class Variation:
    """Continuous variation inside an example's classes; the defaults are world 1's (none).

    The ranges ``variation`` draws from keep every class apart: sizes stay inside disjoint
    bands (small 9.2-10.8, medium 12.9-15.1, large 17.5-20.5 px), a position moves at most 2 px
    per axis (region centres are at least 5.8 px apart per axis), hues move at most 0.02 (classes
    are at least 0.08 apart), tints at most 0.03 per channel (at least 0.12 apart), and a
    texture's contrast never falls below 0.5 (plain has none).

    Attributes:
      size: factor on the scale class's object size.
      offset: (row, col) shift of the object's centre, in output pixels.
      rotation: of the object about its centre, in degrees.
      hue: added to the hue class's hue; saturation, value: the object's HSV S and V.
      tint: added to each channel of the tint class's colour.
      period: of the background texture, in output pixels; phase: (row, col) shift of the
        pattern, as a fraction of the period; contrast: brightness swing of the pattern.
    """

    size: float = 1.0
    offset: tuple[float, float] = (0.0, 0.0)
    rotation: float = 0.0
    hue: float = 0.0
    saturation: float = 0.9
    value: float = 1.0
    tint: tuple[float, float, float] = (0.0, 0.0, 0.0)
    period: float = 4.0
    phase: tuple[float, float] = (0.0, 0.0)
    contrast: float = 0.6


NO_VARIATION = Variation()


def variation(rng: np.random.Generator, shape: str) -> Variation:
    """World 2's draw of an example's variation (``rng`` seeded by ``(seed, index, 7)``)."""
    u = rng.uniform
    return Variation(
        size=float(u(0.92, 1.08)), offset=(float(u(-2, 2)), float(u(-2, 2))),
        rotation=0.0 if shape == "circle" else float(u(-15, 15)),
        hue=float(u(-0.02, 0.02)), saturation=float(u(0.8, 1.0)), value=float(u(0.9, 1.0)),
        tint=tuple(float(x) for x in u(-0.03, 0.03, 3)),
        period=float(u(3.5, 4.5)), phase=(float(u(0, 1)), float(u(0, 1))),
        contrast=float(u(0.5, 0.7)))


@dataclasses.dataclass(frozen=True)
class ShapesExample:
    image: np.ndarray             # [32, 32, 3] uint8
    labels: dict[str, int]        # factor name -> class index into the world's factors


def sample_labels(rng: np.random.Generator, world: int = DEFAULT_WORLD) -> dict[str, int]:
    """Every factor's class; both worlds draw the same indices from the same ``rng``."""
    return {name: int(rng.integers(len(classes))) for name, classes in world_factors(world).items()}


def _grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) of the centres of an n x n grid's cells, as a fraction of the image."""
    ys, xs = (np.mgrid[0:n, 0:n] + 0.5) / n
    return ys, xs


def _object_mask(shape: str, size: float, centre: tuple[float, float], n: int,
                 rotation: float = 0.0) -> np.ndarray:
    """Coverage of the object on an n x n grid (n = 32 * SUPERSAMPLE)."""
    ys, xs = _grid(n)
    half = size / RESOLUTION / 2
    dy, dx = (ys - centre[0]) / half, (xs - centre[1]) / half  # [-1, 1] inside the bounding box
    if rotation:
        c, s = np.cos(np.deg2rad(rotation)), np.sin(np.deg2rad(rotation))
        dy, dx = c * dy - s * dx, s * dy + c * dx
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
    """World 1: brightness multiplier in [0.55, 1.25] on an n x n grid for each layout."""
    ys, xs = _grid(n)
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


def _texture_brightness(texture: str, n: int, var: Variation) -> np.ndarray:
    """World 2: brightness multiplier on an n x n grid, 0.9 +- contrast / 2, for each texture."""
    ys, xs = _grid(n)
    u = ys * RESOLUTION / var.period + var.phase[0]   # position in periods
    v = xs * RESOLUTION / var.period + var.phase[1]
    if texture == "plain":
        pattern = np.full((n, n), 0.5)
    elif texture == "h-stripes":
        pattern = np.floor(2 * u) % 2
    elif texture == "v-stripes":
        pattern = np.floor(2 * v) % 2
    elif texture == "checker":
        pattern = (np.floor(2 * u) + np.floor(2 * v)) % 2
    elif texture == "diagonal":   # the period measured across the stripes
        pattern = np.floor(2 * (u + v) / np.sqrt(2)) % 2
    elif texture == "dots":       # discs of 0.6 periods on a square lattice
        pattern = ((u % 1 - 0.5) ** 2 + (v % 1 - 0.5) ** 2 <= 0.3 ** 2).astype(float)
    else:
        raise ValueError(f"unknown texture {texture!r}")
    return 0.9 + var.contrast * (pattern - 0.5)


def render(labels: dict[str, int], world: int = DEFAULT_WORLD,
           var: Variation = NO_VARIATION) -> np.ndarray:
    """The image [32, 32, 3] uint8 for a dict of factor indices and the variation inside them."""
    name = {k: world_factors(world)[k][v] for k, v in labels.items()}
    n = RESOLUTION * SUPERSAMPLE
    tint = np.asarray(_TINT[name["tint"]]) + np.asarray(var.tint)
    brightness = (_background_brightness(name["layout"], n) if world == 1
                  else _texture_brightness(name["texture"], n, var))
    canvas = brightness[..., None] * tint
    colour = np.asarray(colorsys.hsv_to_rgb((_HUE[name["hue"]] + var.hue) % 1.0,
                                            var.saturation, var.value))
    row, col = _POSITION[name["position"]]
    centre = (row + var.offset[0] / RESOLUTION, col + var.offset[1] / RESOLUTION)
    mask = _object_mask(name["shape"], _SCALE_PX[name["scale"]] * var.size, centre, n, var.rotation)
    canvas = np.where(mask[..., None], colour, canvas)
    image = canvas.reshape(RESOLUTION, SUPERSAMPLE, RESOLUTION, SUPERSAMPLE, 3).mean(axis=(1, 3))
    return np.clip(np.round(image * 255), 0, 255).astype(np.uint8)


def example(seed: int, index: int, world: int = DEFAULT_WORLD) -> ShapesExample:
    """Example ``index`` of the dataset drawn with ``seed``: deterministic, order-independent."""
    if index < 0 or seed < 0:
        raise ConfigError("seed and index must be non-negative")
    labels = sample_labels(np.random.default_rng([seed, index]), world)
    var = NO_VARIATION if world == 1 else variation(
        np.random.default_rng([seed, index, 7]), FACTORS_BY_WORLD[world]["shape"][labels["shape"]])
    return ShapesExample(render(labels, world, var), labels)


# Splits of the named dataset configs: example indices [start, stop) drawn with seed 0.
SPLITS: dict[str, dict[str, tuple[int, int]]] = {
    "default": {"train": (0, 50_000), "test": (50_000, 55_000)},
    "tiny": {"train": (0, 512), "test": (512, 640)},
}


def split_range(split: str = "train", config: str = "default") -> tuple[int, int]:
    """``(start, stop)`` example indices of a split of a dataset config."""
    if config not in SPLITS:
        raise ConfigError(f"unknown shapes config {config!r} (one of {', '.join(SPLITS)})")
    if split not in SPLITS[config]:
        raise ConfigError(f"unknown shapes split {split!r} (one of {', '.join(SPLITS[config])})")
    return SPLITS[config][split]


def _render_range(seed: int, start: int, stop: int, world: int = DEFAULT_WORLD
                  ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    examples = [example(seed, i, world) for i in range(start, stop)]
    images = np.stack([ex.image for ex in examples]) if examples else \
        np.zeros((0, RESOLUTION, RESOLUTION, 3), np.uint8)
    return images, {k: np.asarray([ex.labels[k] for ex in examples], np.int64)
                    for k in world_factors(world)}


def render_examples(start: int, stop: int, seed: int = 0, workers: int | None = None,
                    progress: bool | None = None, chunk: int = 1000, world: int = DEFAULT_WORLD
                    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Examples ``start .. stop-1``: images [N, 32, 32, 3] uint8 and labels {factor: [N]}.

    The same images as the tfds builder's splits (``train[i] == example(0, i)``), rendered in
    this process, or over ``workers`` processes (default: every core) in tasks of ``chunk``
    examples when there are more than two tasks.
    """
    import os

    from tqdm import tqdm

    check_world(world)
    chunks = [(a, min(a + chunk, stop)) for a in range(start, stop, chunk)]
    workers = workers or len(os.sched_getaffinity(0))
    bar = dict(desc="render shapes", unit="chunk", disable=(not progress) if progress is not None else None)
    if workers <= 1 or len(chunks) <= 2:
        parts = [_render_range(seed, a, b, world) for a, b in tqdm(chunks, **bar)]
    else:
        import concurrent.futures
        import multiprocessing

        # spawn, not fork: forking a process that runs XLA's threads can deadlock
        with concurrent.futures.ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_render_range, seed, a, b, world) for a, b in chunks]
            parts = [f.result() for f in tqdm(futures, **bar)]
    if not parts:
        return _render_range(seed, start, start, world)
    return (np.concatenate([p[0] for p in parts]),
            {k: np.concatenate([p[1][k] for p in parts]) for k in world_factors(world)})
