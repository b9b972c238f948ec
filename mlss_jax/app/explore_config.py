"""``explore.py``'s subcommands as configs: one frozen dataclass per command, whose fields are
its flags (``app/cli.py`` builds them) and whose ``__post_init__`` checks each rule once;
:data:`COMMANDS` lists them. What needs the generator is checked by the command itself
(``app/explore.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path
from typing import NamedTuple

from mlss_jax.app import cli
from mlss_jax.app.cli import UsageError
from mlss_jax.app.paths import DEMO_CHECKPOINT
from mlss_jax.app.serve import ServeConfig
from mlss_jax.config import check_positive, check_seed
from mlss_jax.errors import ConfigError
from mlss_jax.explore.latent_ops import INTERPOLATIONS
from mlss_jax.explore.projection import ProjectConfig
from mlss_jax.method.levels import LEVELS
from mlss_jax.method.truncation import (METHODS as TRUNCATION_METHODS, check_psi, format_level_psis,
                                        parse_level_psis, parse_methods)


# Parsers of list and range flags (argparse shows their ArgumentTypeError as a flag's error).
def _ints(text: str) -> tuple[int, ...]:
    return tuple(cli.int_list(text))


def _floats(text: str) -> tuple[float, ...]:
    return tuple(cli.float_list(text))


def layer_range(text: str) -> tuple[int, int]:
    """'2-5' -> (2, 5); '3' -> (3, 3)."""
    found = re.fullmatch(r"(\d+)(?:-(\d+))?", text.strip())
    if not found:
        raise argparse.ArgumentTypeError(f"expected a layer range like 2-5, got {text!r}")
    a, b = int(found.group(1)), int(found.group(2) or found.group(1))
    if a > b:
        raise argparse.ArgumentTypeError(f"range {text} runs backwards: write {b}-{a}")
    return a, b


def _component(text: str) -> int:
    """--pca's principal component: an integer >= 0 (checked against w_dim once it is known)."""
    if not re.fullmatch(r"\d+", text.strip()):
        raise argparse.ArgumentTypeError(f"expected a component 0, 1, 2, ..., got {text!r}")
    return int(text)


def _level_psis(text: str) -> tuple[tuple[str, float], ...]:
    return tuple(parse_level_psis(text, LEVELS).items())


def _psi(text: str) -> float | tuple[tuple[str, float], ...]:
    """--psi: one strength (0.5), or one per level (coarse=0.5,medium=0.8,fine=1)."""
    return _level_psis(text) if "=" in text else cli.finite_float(text)


def _format_psi(value: float | tuple) -> str:
    return format_level_psis(value) if isinstance(value, tuple) else repr(value)


def _choice(config: object, name: str, options: tuple[str, ...]) -> None:
    value = getattr(config, name)
    if value not in options:
        raise ConfigError(f"{name} must be one of {', '.join(options)}, got {value!r}")


def _check_seeds(config: object, name: str = "seeds") -> None:
    if not getattr(config, name):
        raise ConfigError(f"{name} must list at least one seed")


@dataclasses.dataclass(frozen=True)
class ExploreFiles:
    """What a command reads and where it writes.

    Attributes:
      generator: generator checkpoint or pickle.
      levels_dir: trained levels, one subdirectory per level (train.py's folder; default:
        runs/demo/levels).
      out: output directory.
    """

    generator: Path = DEMO_CHECKPOINT
    levels_dir: Path | None = None
    out: Path = Path("out/explore")


NO_LEVELS = {"skip": ("levels_dir",)}   # the files of a command that reads no levels


@dataclasses.dataclass(frozen=True)
class ControlConfig:
    """``explore.py control``: one row per cluster of a level, the other levels fixed down each
    column; or, with ``clusters``, samples composed from one cluster per level.

    Attributes:
      level: level whose clusters the rows go through.
      clusters: compose from one cluster per level, c,m,f (instead of a grid).
      columns: samples per row.
      seed: the samples' randomness.
    """

    level: str = dataclasses.field(default="fine", metadata={"choices": LEVELS})
    clusters: tuple[int, ...] | None = dataclasses.field(default=None, metadata={"parse": _ints})
    columns: int = 8
    seed: int = 0
    files: ExploreFiles = ExploreFiles()

    def __post_init__(self) -> None:
        _choice(self, "level", LEVELS)
        if self.clusters is not None and len(self.clusters) != len(LEVELS):
            raise ConfigError(f"clusters must give one cluster per level, c,m,f (got "
                              f"{len(self.clusters)})")
        check_positive(self, ("columns",))
        check_seed(self)


@dataclasses.dataclass(frozen=True)
class TsneConfig:
    """``explore.py tsne``: per-level t-SNE maps of the levels' latents (the paper's Fig. 9).

    Attributes:
      samples: points per map.
      perplexity: t-SNE's effective number of neighbours, at least 1 and below samples - 1.
      seed: the samples' randomness.
    """

    samples: int = 1000
    perplexity: float = 30.0
    seed: int = 0
    files: ExploreFiles = ExploreFiles()

    def __post_init__(self) -> None:
        check_positive(self, ("samples",))
        if not 1 <= self.perplexity < self.samples - 1:
            raise ConfigError(f"perplexity must be at least 1 and below --samples - 1 "
                              f"({self.samples - 1}), got {self.perplexity:g}")
        check_seed(self)


@dataclasses.dataclass(frozen=True)
class InterpolateConfig:
    """``explore.py interpolate``: frames between two seeds' images, as a strip and a GIF.

    Attributes:
      seeds: the two seeds.
      space: interpolate in Z or in W.
      mode: lerp or slerp (W takes lerp only).
      steps: frames, at least 2.
    """

    seeds: tuple[int, ...] = dataclasses.field(default=(1, 2), metadata={"parse": _ints})
    space: str = dataclasses.field(default="z", metadata={"choices": ("z", "w")})
    mode: str = dataclasses.field(default="slerp", metadata={"choices": INTERPOLATIONS})
    steps: int = 10
    files: ExploreFiles = dataclasses.field(default=ExploreFiles(), metadata=NO_LEVELS)

    def __post_init__(self) -> None:
        if len(self.seeds) != 2:
            raise ConfigError(f"seeds must be two seeds, e.g. 1,2 (got {len(self.seeds)})")
        if self.seeds[0] == self.seeds[1]:
            raise ConfigError(f"seeds must differ: {self.seeds[0]},{self.seeds[1]} names one "
                              "seed twice, and there is nothing between them")
        _choice(self, "space", ("z", "w"))
        _choice(self, "mode", INTERPOLATIONS)
        if self.space == "w" and self.mode == "slerp":
            raise ConfigError("mode must be lerp in W, which is not Gaussian: use --mode lerp "
                              "with --space w")
        if self.steps < 2:
            raise ConfigError(f"steps must be at least 2 (the two seeds' own frames), got "
                              f"{self.steps}")


@dataclasses.dataclass(frozen=True)
class MixConfig:
    """``explore.py mix``: style mixing by level, the level's inputs from the column's seed and
    the rest from the row's.

    Attributes:
      seeds: seeds of the rows and columns.
      level: the level whose inputs come from the column's seed (all: one grid each).
    """

    seeds: tuple[int, ...] = dataclasses.field(default=(1, 2, 3, 4, 5), metadata={"parse": _ints})
    level: str = dataclasses.field(default="all", metadata={"choices": (*LEVELS, "all")})
    files: ExploreFiles = ExploreFiles()

    def __post_init__(self) -> None:
        _check_seeds(self)
        _choice(self, "level", (*LEVELS, "all"))


@dataclasses.dataclass(frozen=True)
class EditConfig:
    """``explore.py edit``: images moved along one direction in W, given by exactly one of
    ``direction``, ``pca`` and ``interfacegan``.

    Attributes:
      direction: a .npy file with a [w_dim] direction.
      pca: the COMPONENT-th principal direction of W (GANSpace).
      interfacegan: SVM boundary of a demo factor's class, FACTOR=CLASS, e.g. hue=red
        (InterFaceGAN).
      layers: inputs to edit, e.g. 2-5 (default: all).
      strengths: steps along the direction, e.g. --strengths=-2,0,2 (with --pca: standard
        deviations of that component; otherwise units of W).
      seeds: seeds, one row each.
      samples: f(z) samples for PCA or the SVM.
    """

    direction: Path | None = None
    pca: int | None = dataclasses.field(default=None, metadata={"parse": _component})
    interfacegan: str | None = None
    layers: tuple[int, int] | None = dataclasses.field(default=None, metadata={
        "parse": layer_range, "format": lambda span: f"{span[0]}-{span[1]}"})
    strengths: tuple[float, ...] = dataclasses.field(default=(-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0),
                                                     metadata={"parse": _floats})
    seeds: tuple[int, ...] = dataclasses.field(default=(1, 2, 3, 4), metadata={"parse": _ints})
    samples: int = 5000
    files: ExploreFiles = dataclasses.field(default=ExploreFiles(), metadata=NO_LEVELS)

    def __post_init__(self) -> None:
        given = [name for name in ("direction", "pca", "interfacegan")
                 if getattr(self, name) is not None]
        if len(given) > 1:
            raise ConfigError(f"{given[0]} must be the only direction: give one of --direction, "
                              "--pca and --interfacegan")
        if self.interfacegan is not None:
            interfacegan_attribute(self.interfacegan)
        _check_seeds(self)
        if not self.strengths:
            raise ConfigError("strengths must list at least one step")
        check_positive(self, ("samples",))

    def check_direction_given(self) -> None:
        """A command line must name the direction (the defaults name none)."""
        if not any(getattr(self, name) is not None for name in ("direction", "pca", "interfacegan")):
            raise UsageError("edit needs a direction: --direction, --pca or --interfacegan")


def interfacegan_attribute(text: str) -> tuple[str, str]:
    """--interfacegan FACTOR=CLASS of the demo world's factors."""
    from mlss_jax.demo.world import FACTORS

    factor, _, value = text.partition("=")
    if factor not in FACTORS or value not in FACTORS[factor]:
        known = "; ".join(f"{f}: {', '.join(v)}" for f, v in FACTORS.items())
        raise ConfigError(f"interfacegan must name a demo factor's class: unknown attribute "
                          f"{text} (known: {known})")
    return factor, value


@dataclasses.dataclass(frozen=True)
class TruncateConfig:
    """``explore.py truncate``: one row per truncation method at one strength, the untruncated
    images on top, one column per seed.

    Attributes:
      seeds: seeds, one column each.
      psi: strength of every method, in [0, 1]; or multi-level truncation's strength per level,
        e.g. coarse=0.5,medium=0.8,fine=1 (a level left out: 1, untruncated; --methods then
        defaults to multilevel).
      level_psi: multi-level truncation's strength per level instead, e.g.
        coarse=0.5,medium=0.8,fine=1 (a level left out: --psi).
      methods: rows, comma-separated (default: all four; with --psi per level, multilevel).
      centres: centres.npz of an evaluate.py sweep (default: cluster --samples f(z) here).
      samples: f(z) samples for the centres.
      multimodal_k: multimodal clusters of W.
      seed: seed of the centres' samples.
    """

    seeds: tuple[int, ...] = dataclasses.field(default=tuple(range(8)), metadata={"parse": _ints})
    psi: float | tuple[tuple[str, float], ...] = dataclasses.field(default=0.5, metadata={
        "parse": _psi, "format": _format_psi})
    level_psi: tuple[tuple[str, float], ...] = dataclasses.field(default=(), metadata={
        "parse": _level_psis, "format": format_level_psis})
    methods: tuple[str, ...] | None = dataclasses.field(default=None, metadata={
        "parse": parse_methods, "choices": TRUNCATION_METHODS})
    centres: Path | None = None
    samples: int = 2000
    multimodal_k: int = 64
    seed: int = 0
    files: ExploreFiles = ExploreFiles()

    def __post_init__(self) -> None:
        _check_seeds(self)
        if self.per_level:
            if self.level_psi:
                raise ConfigError("level_psi must be left out: --psi gives each level's "
                                  "strength already")
            if self.methods not in (None, ("multilevel",)):
                raise ConfigError("methods must be multilevel with --psi per level (it applies "
                                  "to multi-level truncation only), or give one --psi for every "
                                  "method")
        else:
            check_psi(self.psi)
        check_positive(self, ("samples", "multimodal_k"))
        check_seed(self)

    @property
    def per_level(self) -> bool:
        """Whether ``psi`` gives one strength per level."""
        return isinstance(self.psi, tuple)

    @property
    def chosen_methods(self) -> tuple[str, ...]:
        return self.methods or (("multilevel",) if self.per_level else TRUNCATION_METHODS)

    def level_strengths(self) -> tuple[dict[str, float], float]:
        """{level: strength} of multi-level truncation, and every other method's strength."""
        if self.per_level:
            return {lv: dict(self.psi).get(lv, 1.0) for lv in LEVELS}, 1.0
        return dict(self.level_psi), self.psi


@dataclasses.dataclass(frozen=True)
class ProjectCommandConfig:
    """``explore.py project``: find the latents of an image, or of generated images.

    Attributes:
      image: an image file (fitted to the resolution).
      seeds: project generated images of these seeds and report how well they are recovered
        (default: 0-19).
    """

    image: Path | None = None
    seeds: tuple[int, ...] | None = dataclasses.field(default=None, metadata={"parse": _ints})
    projection: ProjectConfig = ProjectConfig()
    files: ExploreFiles = dataclasses.field(default=ExploreFiles(), metadata=NO_LEVELS)

    def __post_init__(self) -> None:
        if self.image is not None and self.seeds is not None:
            raise ConfigError("image must be left out with --seeds: project an image or "
                              "generated images")
        if self.seeds is not None:
            _check_seeds(self)


@dataclasses.dataclass(frozen=True)
class ServeCommandConfig:
    """``explore.py serve``: the explorer in a browser.

    Attributes:
      generator: generator checkpoint or pickle (default: the bundled demo).
      levels_dir: trained levels (train.py's folder, or a bundle from tools/bundle_levels.py;
        default: the demo's bundled levels).
    """

    generator: Path | None = None
    levels_dir: Path | None = None
    server: ServeConfig = ServeConfig()


@dataclasses.dataclass(frozen=True)
class RenderConfig:
    """``explore.py render``: the explorer's image of a state as a full-resolution PNG.

    Attributes:
      state: the page's state, its URL query, e.g. 'c=3,0,7&s=1,2,3&z=0&p=0.5,0.8,1' (the
        page's Copy command gives it; default: the page's opening view).
      generator: generator checkpoint or pickle (default: the bundled demo).
      levels_dir: trained levels (default: the demo's bundled levels).
      out: output directory.
    """

    state: str = ""
    generator: Path | None = None
    levels_dir: Path | None = None
    out: Path = Path("out/explore")


class Command(NamedTuple):
    config: type
    help: str


COMMANDS = {
    "control": Command(ControlConfig, "multi-level control grids"),
    "tsne": Command(TsneConfig, "per-level t-SNE maps"),
    "interpolate": Command(InterpolateConfig, "interpolate between two seeds"),
    "mix": Command(MixConfig, "style mixing by level"),
    "edit": Command(EditConfig, "move along a direction in W"),
    "truncate": Command(TruncateConfig, "truncation methods side by side at one strength"),
    "project": Command(ProjectCommandConfig, "find the latent of an image"),
    "serve": Command(ServeCommandConfig,
                     "the explorer in a browser: clusters, per-level truncation, edits"),
    "render": Command(RenderConfig, "the explorer's image of a state (its URL query) as a PNG"),
}
