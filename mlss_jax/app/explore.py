"""``explore.py``'s commands: each takes its config (``app/explore_config.py``), checks what needs
the generator, draws its images and returns what it wrote.

Every command takes an :class:`ExploreContext` (generator, trained levels, output folder,
loaded on first use) and its config; outputs go to the context's folder, written only once all
the work is done, and are recorded in its manifest with the settings that made them (under
``explore <command>``). :func:`run` runs the command a config describes.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from mlss_jax.app import cli
from mlss_jax.app.cli import UsageError, check_fits_in_memory
from mlss_jax.app.explore_config import (ControlConfig, EditConfig, InterpolateConfig,
                                         MixConfig, ProjectCommandConfig, RenderConfig,
                                         ServeCommandConfig, TruncateConfig, TsneConfig,
                                         interfacegan_attribute)
from mlss_jax.app.manifest import write_outputs
from mlss_jax.app.paths import LEVELS_DIR, require_generator, require_output_dir
from mlss_jax.errors import InputFileError
from mlss_jax.method.levels import LEVELS

PRODUCER = "explore"


class Outcome(NamedTuple):
    """What a command wrote, and the lines it reports before the paths."""

    written: list[Path]
    lines: list[str] = []


def run(config) -> Outcome:
    """Run the command ``config`` describes (one of ``explore_config.COMMANDS``)."""
    if isinstance(config, ServeCommandConfig):
        from mlss_jax.app.serve import serve

        serve(config.generator, config.levels_dir, config.server)
        return Outcome([])
    if isinstance(config, RenderConfig):
        return Outcome(render(config))
    files = config.files
    reads_levels = "levels_dir" not in _skipped_files(type(config))
    ctx = ExploreContext(files.generator, files.out,
                         files.levels_dir or (LEVELS_DIR if reads_levels else None),
                         levels_dir_given=files.levels_dir is not None)
    if isinstance(config, ProjectCommandConfig):
        written, info = project(ctx, config)
        return Outcome(written, [f"mean LPIPS {info['mean_lpips']:.4f}" + (
            f", all factors unchanged for {info['same_factors_all']:.0%}"
            if "same_factors_all" in info else "")])
    if isinstance(config, EditConfig):
        written, info = edit(ctx, config)
        return Outcome(written, [f"{key.replace('_', ' ')}: {value:.4g}" if isinstance(value, float)
                                 else f"{key.replace('_', ' ')}: {value}"
                                 for key, value in info.items()])
    command = {ControlConfig: control, TsneConfig: tsne, InterpolateConfig: interpolate,
               MixConfig: mix, TruncateConfig: truncate}[type(config)]
    return Outcome(command(ctx, config))


def _skipped_files(config_class: type) -> tuple[str, ...]:
    field = next(f for f in dataclasses.fields(config_class) if f.name == "files")
    return field.metadata.get("skip", ())


def settings_of(config) -> dict:
    """The settings a command records beside its outputs: its flags' values, less the output
    folder (where the manifest is) and the files it does not read."""
    values = cli.config_values(config)
    values.pop("out", None)
    return values


@dataclasses.dataclass
class ExploreContext:
    """Where a command reads the generator and levels and writes its files."""

    generator_path: Path
    out: Path
    levels_dir: Path | None = None
    levels_dir_given: bool = True   # False: the default folder, which may hold another's levels

    def __post_init__(self) -> None:
        require_generator(self.generator_path)
        require_output_dir(self.out)

    @functools.cached_property
    def generator(self):
        from mlss_jax.weights.load import load_generator

        return load_generator(self.generator_path)

    @functools.cached_property
    def levels(self) -> list:
        from mlss_jax.method.runs import load_levels

        return load_levels(self.levels_dir, generator=self.generator)

    def levels_trained(self) -> bool:
        return self.levels_dir is not None and all((self.levels_dir / lv).is_dir() for lv in LEVELS)

    def write(self, command: str, files: dict[str, Callable[[Path], Path]], settings: dict) -> list[Path]:
        """Write each ``key -> writer(folder)`` all or nothing, and record them in the manifest
        with ``command``'s ``settings`` and the networks it read."""
        networks = {"generator": str(self.generator_path)}
        if self.levels_dir is not None:
            networks["levels_dir"] = str(self.levels_dir)
        return list(write_outputs(self.out, f"{PRODUCER} {command}", files,
                                  {**settings, **networks}).values())   # the files it did read


def _check_images(flag: str, given: str, count: int, ncols: int, generator,
                  extra_bytes: int = 0) -> None:
    """Refuse, before any is drawn, ``count`` images (a grid of ``ncols`` columns) that would not
    fit in memory: ``given`` (``flag``'s value) asks for them."""
    from mlss_jax.viz.grid import grid_bytes

    res, channels = generator.resolution, generator.img_channels
    check_fits_in_memory(flag, f"{given}: {count:,} images of {res}x{res} px",
                         grid_bytes(count, res, channels, ncols) + extra_bytes)


def _grid(name: str, images: np.ndarray, ncols: int, **labels) -> Callable[[Path], Path]:
    from mlss_jax.viz.grid import save_image_grid

    return lambda out: save_image_grid(images, out / f"{name}.png", ncols=ncols, **labels)


def control(ctx: ExploreContext, config: ControlConfig) -> list[Path]:
    """One row per cluster of ``config.level`` (the rest fixed down each column), or, with
    ``config.clusters`` (one per level), samples composed from those clusters."""
    from mlss_jax.explore import toolkit as ex

    level, clusters, columns, seed = config.level, config.clusters, config.columns, config.seed
    levels, generator = ctx.levels, ctx.generator
    if clusters is not None:
        for lv, k, model in zip(LEVELS, clusters, levels, strict=True):
            if not 0 <= k < model.config.num_clusters:
                raise UsageError(f"--clusters: {lv} cluster {k} is out of range "
                                 f"0..{model.config.num_clusters - 1}")
    rows = 1 if clusters is not None else levels[LEVELS.index(level)].config.num_clusters
    _check_images("--columns", f"--columns {columns}", rows * columns, columns, generator)
    if clusters is not None:
        images = ex.composed_images(ctx.generator, levels, tuple(clusters), columns, seed)
        name = "compose-" + "-".join(map(str, clusters))
        rows = [", ".join(f"{lv} {k}" for lv, k in zip(LEVELS, clusters))]
    else:
        images = ex.control_images(ctx.generator, levels, LEVELS.index(level), columns, seed)
        name = f"control-{level}"
        rows = [f"cluster {k}" for k in range(len(images) // columns)]
    return ctx.write("control", {name: _grid(name, images, columns, row_labels=rows,
                                             col_labels=[f"sample {i + 1}" for i in range(columns)])},
                     settings_of(config))


def tsne(ctx: ExploreContext, config: TsneConfig) -> list[Path]:
    """Per-level t-SNE maps of the levels' latents, coloured by cluster."""
    from mlss_jax.explore import toolkit as ex
    from mlss_jax.viz.plots import tsne_plot

    samples, perplexity, seed = config.samples, config.perplexity, config.seed
    levels, generator = ctx.levels, ctx.generator
    # on the device: the samples' images in float32, and t-SNE's N x N matrices
    res, channels = generator.resolution, generator.img_channels
    check_fits_in_memory("--samples", f"--samples {samples}: t-SNE of {samples:,} points",
                         4 * samples * (res * res * channels + 8 * samples), device=True)
    embeddings = ex.tsne_embeddings(generator, levels, samples, perplexity, seed)
    return ctx.write("tsne", {"tsne": lambda out: tsne_plot(embeddings, out / "tsne.png")},
                     settings_of(config))


def interpolate(ctx: ExploreContext, config: InterpolateConfig) -> list[Path]:
    """Frames between two seeds' images, in Z or W, as a strip and a GIF."""
    from mlss_jax.explore import toolkit as ex
    from mlss_jax.viz.grid import save_gif

    seeds, space, mode, steps = config.seeds, config.space, config.mode, config.steps
    generator = ctx.generator
    gif_cell = generator.resolution * max(1, -(-128 // generator.resolution))  # save_gif's
    _check_images("--steps", f"--steps {steps}", steps, steps, generator,
                  2 * steps * gif_cell * gif_cell * generator.img_channels)
    frames = ex.interpolation_images(generator, *seeds, steps, space, mode)
    stem = f"interpolate-{space}-{mode}-{seeds[0]}-{seeds[1]}"
    return ctx.write("interpolate", {stem: _grid(stem, frames, len(frames)),
                                     f"{stem}-gif": lambda out: save_gif(frames, out / f"{stem}.gif")},
                     settings_of(config))


def mix(ctx: ExploreContext, config: MixConfig) -> list[Path]:
    """Style mixing by level: the level's inputs from the column's seed, the rest from the row's."""
    from mlss_jax.explore import toolkit as ex
    from mlss_jax.method.levels import LevelSplit

    from mlss_jax.method.runs import trained_for

    # the split the levels were trained with, if there are levels (in the default folder: for
    # this generator); else the default
    use_levels = ctx.levels_trained() and (ctx.levels_dir_given
                                           or trained_for(ctx.levels_dir, ctx.generator))
    seeds, level = config.seeds, config.level
    split = ctx.levels[0].split if use_levels else LevelSplit.parse(None, ctx.generator.num_ws)
    chosen = LEVELS if level == "all" else (level,)
    n = len(seeds) + 1
    _check_images("--seeds", f"--seeds of {len(seeds):,} seeds", len(chosen) * n * n, n,
                  ctx.generator)
    grids = {f"mix-{lv}": _grid(f"mix-{lv}", ex.mixing_images(ctx.generator, list(seeds), split.range(lv)),
                                len(seeds) + 1) for lv in chosen}
    return ctx.write("mix", grids, {**settings_of(config), "split": split.text()})


def edit(ctx: ExploreContext, config: EditConfig) -> tuple[list[Path], dict]:
    """Images moved along a direction in W (a file, a PCA component, or an InterFaceGAN boundary);
    returns the files and the direction's statistics."""
    from mlss_jax.explore import toolkit as ex
    from mlss_jax.explore.latent_ops import layer_mask

    config.check_direction_given()
    direction, pca, interfacegan, layers = (config.direction, config.pca, config.interfacegan,
                                            config.layers)
    strengths, seeds, samples = config.strengths, config.seeds, config.samples
    if interfacegan is not None:
        factor, value = interfacegan_attribute(interfacegan)
    generator = ctx.generator
    if layers is not None and not layers[1] < generator.num_ws:
        raise UsageError(f"--layers {layers[0]}-{layers[1]} is outside 0..{generator.num_ws - 1}, "
                         "the generator's inputs")
    mask = layer_mask(generator.num_ws, layers)
    if pca is not None and not 0 <= pca < min(generator.w_dim, samples):
        raise UsageError(f"--pca must be in 0..{generator.w_dim - 1}" if pca >= generator.w_dim else
                         f"--pca {pca} needs more than {samples} --samples")
    if interfacegan is not None:
        from mlss_jax.demo.world import is_demo_world

        if not is_demo_world(image_shape=(generator.resolution, generator.resolution,
                                          generator.img_channels)):
            raise UsageError("--interfacegan labels images with the demo world's factor "
                             "classifier (32x32 RGB); this generator makes "
                             f"{generator.resolution}x{generator.resolution} px images: "
                             "pass --pca or --direction")
        res, ws = generator.resolution, generator.num_ws * generator.w_dim
        check_fits_in_memory("--samples", f"--samples {samples}: the SVM's {samples:,} labelled "
                             "images", samples * (3 * res * res + 4 * ws))  # uint8, and float32 ws
    _check_images("--seeds or --strengths", f"{len(seeds):,} --seeds x {len(strengths):,} "
                  "--strengths", len(seeds) * len(strengths), len(strengths), generator)
    info: dict = {}
    if direction is not None:
        vector = read_direction(direction, generator.w_dim)
        name = direction.stem
    elif pca is not None:
        vector, std = ex.pca_direction(generator, pca, samples, 0)
        name, info = f"pca{pca}", {"component_std": std}
    else:
        vector, info = ex.interfacegan_direction(generator, factor, value, samples, 0)
        name = f"interfacegan-{factor}-{value}"
    images = ex.edit_images(generator, list(seeds), vector, np.asarray(strengths), mask)
    span = "all" if layers is None else f"{layers[0]}-{layers[1]}"
    stem = f"edit-{name}-layers-{span}"
    files = {stem: _grid(stem, images, len(strengths))}
    if direction is None:  # a computed direction is kept, to reuse with --direction
        vector = np.asarray(vector, np.float32)
        files[f"direction-{name}"] = lambda out: _save_npy(out / f"direction-{name}.npy", vector)
    return ctx.write("edit", files, settings_of(config)), info


def _save_npy(path: Path, array: np.ndarray) -> Path:
    np.save(path, array)
    return path


NPY_MAGIC = b"\x93NUMPY"


def read_direction(path: Path, w_dim: int) -> np.ndarray:
    """A [w_dim] finite direction of non-zero length from a .npy file."""
    if not path.is_file():
        raise FileNotFoundError(f"no direction file {path}")
    with open(path, "rb") as f:
        if f.read(len(NPY_MAGIC)) != NPY_MAGIC:
            raise InputFileError(f"{path} is not a .npy file (one array written by numpy.save)")
    try:
        vector = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise InputFileError(f"cannot read {path} as a .npy array ({err})") from None
    if vector.dtype.kind not in "iuf":
        raise InputFileError(f"{path}: a direction of {vector.dtype} values, expected numbers")
    if vector.shape != (w_dim,):
        raise InputFileError(f"{path}: direction of shape {vector.shape}, expected ({w_dim},)")
    if not np.all(np.isfinite(vector)):
        raise InputFileError(f"{path}: the direction has NaN or infinite entries")
    if not np.any(vector):
        raise InputFileError(f"{path}: the direction is all zeros (it moves nothing)")
    return vector.astype(np.float32)


def project(ctx: ExploreContext, command: ProjectCommandConfig) -> tuple[list[Path], dict]:
    """Find the latents of an image file, or of generated images of ``seeds`` (default 0-19),
    and score the reconstruction (LPIPS; on the demo world, the factors it keeps)."""
    from mlss_jax.data.real_images import load_image_file
    from mlss_jax.demo.world import factor_predictor, is_demo_world
    from mlss_jax.explore import toolkit as ex
    from mlss_jax.explore.projection import project as run_projection
    from mlss_jax.networks.generator import to_uint8

    image, seeds, config = command.image, command.seeds, command.projection
    generator = ctx.generator
    if image is None:  # each target's row of the progress strip and of the reconstructions
        seeds = seeds or list(range(20))
        _check_images("--seeds", f"--seeds of {len(seeds):,} seeds", 12 * len(seeds), 9, generator)
    if image is not None:
        targets = load_image_file(image, generator.resolution)[None]
        stem = image.stem
    else:
        targets = ex.synthesize(generator, generator.mapping(ex.seed_latents(generator, seeds)))
        stem = f"seeds-{seeds[0]}-{seeds[-1]}"
    snapshot_steps = tuple(int(round(i * config.steps / 8)) for i in range(8))
    result = run_projection(generator, targets, config, snapshot_steps)
    recon = to_uint8(result.images)
    # progress: one row per target, columns along the optimisation, the target last
    steps = np.stack([to_uint8(images) for _, images in result.snapshots], axis=1)
    strip = np.concatenate([steps, targets[:, None]], axis=1).reshape(-1, *targets.shape[1:])
    report = {"targets": len(targets), "steps": config.steps, "w_plus": config.w_plus,
              "mean_lpips": float(result.lpips.mean()), "lpips": result.lpips.tolist()}
    if image is None and is_demo_world(image_shape=targets.shape[1:]):
        predictor = factor_predictor()
        before, after = predictor.labels(targets), predictor.labels(recon)
        same = {k: before[k] == after[k] for k in before}
        report["same_factors_all"] = float(np.mean(np.all(np.stack(list(same.values())), axis=0)))
        report["same_factor"] = {k: float(v.mean()) for k, v in same.items()}

    def save_latents(out: Path) -> Path:
        path = out / f"projected-{stem}.npz"
        np.savez(path, ws=result.ws, lpips=result.lpips,
                 **{f"noise_{b}_{layer}": v for b, layers in result.noise.items()
                    for layer, v in layers.items()})
        return path

    def save_report(out: Path) -> Path:
        path = out / f"project-{stem}.json"
        path.write_text(json.dumps(report, indent=2) + "\n")
        return path

    files = {f"projected-{stem}": save_latents,
             f"reconstruction-{stem}": _grid(f"reconstruction-{stem}",
                                             np.concatenate([targets, recon]), len(targets)),
             f"progress-{stem}": _grid(f"progress-{stem}", strip, steps.shape[1] + 1),
             f"project-{stem}": save_report}
    return ctx.write("project", files, settings_of(command)), report


def truncate(ctx: ExploreContext, config: TruncateConfig) -> list[Path]:
    """One row per truncation method at the same strength ``psi`` (multi-level: one per level
    with ``level_psi``), the untruncated images on top; one column per seed.

    ``psi`` may also be one strength per level (a level left out untruncated): that is
    multi-level truncation's alone, so ``methods`` then defaults to ``multilevel``."""
    from mlss_jax.explore import toolkit as ex
    from mlss_jax.method.truncation import truncate as truncated_ws
    from mlss_jax.metrics.sweep_centres import SweepCentres, sweep_centres, truncation_targets
    from mlss_jax.metrics.sweep_config import SweepConfig

    seeds, centres, samples = config.seeds, config.centres, config.samples
    chosen = config.chosen_methods
    per_level, psi = config.level_strengths()
    if centres is not None and not centres.is_file():
        raise FileNotFoundError(f"no centres file {centres}")
    generator, levels = ctx.generator, ctx.levels
    _check_images("--seeds", f"--seeds of {len(seeds):,} seeds", len(seeds) * (len(chosen) + 1),
                  len(seeds), generator)
    if centres is None:  # the centres' samples: uint8 images and float32 ws
        res = generator.resolution
        check_fits_in_memory("--samples", f"--samples {samples}: {samples:,} samples for the "
                             "centres", samples * (res * res * generator.img_channels
                                                   + 4 * generator.num_ws * generator.w_dim))
    clusters = (SweepCentres.load(centres, levels, generator.w_dim) if centres is not None else
                sweep_centres(generator, levels, SweepConfig(num_samples=samples, seed=config.seed,
                                                             multimodal_k=config.multimodal_k)))
    ws = generator.mapping(ex.seed_latents(generator, list(seeds)))
    images = generator.synthesis(ws)
    assignments = np.stack([m.assign(images, ws) for m in levels], axis=1)
    targets = truncation_targets(generator, levels, np.asarray(ws), assignments, clusters)
    level_strengths = tuple(per_level.get(m.config.level, psi) for m in levels)
    rows = [ex.synthesize(generator, ws)]
    for method in chosen:
        strength = level_strengths if method == "multilevel" else psi
        rows.append(ex.synthesize(generator, truncated_ws(method, np.asarray(ws), strength, targets)))
    if config.per_level:
        stem = "truncate-psi-" + "-".join(f"{lv}{v:g}" for lv, v in per_level.items())
    else:
        stem = f"truncate-psi{psi:g}" + "".join(f"-{lv}{v:g}" for lv, v in config.level_psi)
    settings = {**settings_of(config), "methods": list(chosen),
                "psi": dict(config.psi) if config.per_level else psi,
                "level_psi": dict(config.level_psi) or None}
    return ctx.write("truncate", {stem: _grid(stem, np.concatenate(rows), len(seeds))}, settings)


def render(config: RenderConfig) -> list[Path]:
    """The explorer's image of ``config.state`` (the page's URL query) as a full-resolution PNG,
    the same pixels the page downloads (default: the bundled demo generator and its levels)."""
    from mlss_jax.app.serve import encode, load_explorer
    from mlss_jax.explore.view_state import from_query, to_query

    out, state, generator, levels_dir = config.out, config.state, config.generator, config.levels_dir
    require_output_dir(out)
    try:
        view = from_query(state)
    except ValueError as err:
        raise UsageError(f"--state: {err}") from None
    explorer = load_explorer(generator, levels_dir)
    try:
        explorer.check(view)
    except ValueError as err:
        raise UsageError(f"--state: {err}") from None
    image, _ = explorer.frame(view)
    stem = "render-" + "-".join(map(str, view.sample.clusters))
    settings = {"state": to_query(view), "generator": str(generator or "bundled demo"),
                "levels_dir": str(levels_dir or "bundled demo levels")}

    def save(folder: Path) -> Path:
        path = folder / f"{stem}.png"
        path.write_bytes(encode(image, "PNG"))
        return path

    return list(write_outputs(out, f"{PRODUCER} render", {stem: save}, settings).values())
