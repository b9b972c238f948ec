"""``evaluate.py --pr-curve``: the truncation methods compared on one generator, written out.

:func:`evaluate` checks its inputs, runs the psi sweep (:mod:`mlss_jax.metrics.truncation_sweep`),
writes ``sweep.json``, ``sweep.csv``, the two plots, a grid of truncated images and the centres
the clustering methods used (``centres.npz``), records them in the output's manifest, and
returns what it wrote. Each set the sweep measures is kept as it finishes
(:class:`mlss_jax.app.sweep_journal.SweepJournal`),
so a sweep stopped by Ctrl-C, SIGTERM or a crash continues when the same command runs again.
"""

from __future__ import annotations

import csv
import hashlib
import dataclasses
import json
import os
import signal
import sys
from pathlib import Path

import numpy as np

from mlss_jax.errors import ConfigError, InputFileError
from mlss_jax.app.cli import Terminated, UsageError, check_fits_in_memory, config_values
from mlss_jax.app.manifest import write_outputs
from mlss_jax.app.sweep_journal import SweepInterrupted, SweepJournal
from mlss_jax.app.paths import DEMO_CHECKPOINT, LEVELS_DIR, require_generator, require_output_dir
from mlss_jax.data.real_images import (IMAGE_SUFFIXES, image_files, load_real_images,
                                       real_image_warnings)
from mlss_jax.demo.world import FACTOR_CLASSIFIERS, factor_predictor, is_demo_world, real_world
from mlss_jax.method.runs import check_levels_dir, load_levels
from mlss_jax.metrics.features import FeatureConfig, feature_network
from mlss_jax.metrics.lpips import lpips_images
from mlss_jax.metrics.sweep_centres import SweepCentres, centre_settings
from mlss_jax.metrics.sweep_config import SweepConfig
from mlss_jax.metrics.sweep_curves import pairwise_summary
from mlss_jax.metrics.truncation_sweep import SweepResult, run_sweep, sweep_size
from mlss_jax.networks.sampling import synthesize
from mlss_jax.networks.stylegan2 import StyleGAN2Generator
from mlss_jax.weights.load import load_generator
from mlss_jax.networks.vgg16 import lpips_weights_file
from mlss_jax.viz.grid import save_image_grid
from mlss_jax.viz.plots import sweep_plot
from mlss_jax.runtime import distributed
from mlss_jax.runtime.distributed import DistributedConfig
from mlss_jax.runtime.memory import names_setting, naming_setting

GRID_PSIS = (0.7, 0.5, 0.3)
GRID_COLUMNS = 8
PRODUCER = "evaluate"


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    """What the truncation sweep compares, and where it writes: the inputs here, the sweep's
    settings in ``sweep`` and the feature network in ``embedding`` (their flags are flat:
    ``--k``, ``--features``).

    Attributes:
      generator: generator checkpoint directory or network pickle.
      levels_dir: the trained level runs, one subdirectory per level.
      real: real images: a tfds dataset name (e.g. lsun/car, shapes/tiny) or a folder of images,
        fitted to the generator's resolution; shapes is the demo world (its version names the
        world: shapes/tiny is world 2, the default, shapes/tiny:1.0.0 world 1). At least k + 1
        images; fewer than --samples, or more than 10% exact copies, are a warning, kept in sweep.json.
      data_dir: tfds data directory (None: tfds's own).
      centres: a centres.npz written by an earlier sweep, reused instead of clustering again.
      bf16_resolutions: compute the generator's this many highest resolutions in bfloat16
        (faster on GPUs, about 1% off float32's images; 0: float32, exact).
      out: output directory.
    """

    generator: Path = DEMO_CHECKPOINT
    levels_dir: Path = LEVELS_DIR
    real: str = "shapes"
    data_dir: str | None = None
    sweep: SweepConfig = SweepConfig()
    embedding: FeatureConfig = FeatureConfig()
    centres: Path | None = None
    bf16_resolutions: int = 0
    out: Path = Path("out/evaluate")

    def __post_init__(self) -> None:
        if self.bf16_resolutions < 0:
            raise ConfigError(f"bf16_resolutions must be >= 0, got {self.bf16_resolutions}")
        if self.sweep.num_samples is None and self.num_samples <= self.sweep.k:
            raise ConfigError(f"num_samples must exceed k ({self.sweep.k}); the default here is "
                              f"{self.num_samples}")

    @property
    def demo_world(self) -> bool:
        return is_demo_world(self.real)

    @property
    def num_samples(self) -> int:
        """--samples, or its default: 2000 on the demo's shapes world, else 10,000."""
        given = self.sweep.num_samples
        return given if given is not None else 2000 if self.demo_world else 10_000

    @property
    def resolved_sweep(self) -> SweepConfig:
        """The sweep's settings with its sample count decided."""
        return dataclasses.replace(self.sweep, num_samples=self.num_samples)


@dataclasses.dataclass
class EvaluateResult:
    """The sweep's rows, its summary, and the files written (key -> path)."""

    rows: list[dict]
    summary: dict
    outputs: dict[str, Path]


def sweep_fingerprint(config: EvaluateConfig, levels: list) -> str:
    """What the sweep's rows depend on: its settings, the generator file and the trained levels."""
    stat = os.stat(config.generator)
    identity = {"settings": {k: v for k, v in config_values(config).items()
                             if k not in ("out", "data_dir")},
                "generator": [str(config.generator), stat.st_size, stat.st_mtime_ns],
                "levels": [[m.step, m.config.to_dict()] for m in levels]}
    if config.centres is not None:
        centres = os.stat(config.centres)
        identity["centres"] = [centres.st_size, centres.st_mtime_ns]
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def check_inputs(config: EvaluateConfig) -> None:
    """Fail fast, before any model is loaded, on what would fail later."""
    if config.centres is not None and not config.centres.is_file():
        raise FileNotFoundError(f"no centres file {config.centres}")
    embedding, lpips = config.embedding, config.sweep.lpips
    if embedding.features == "inception" and not Path(embedding.inception_weights).is_file():
        raise FileNotFoundError(f"no Inception weights file {embedding.inception_weights}")
    if lpips or embedding.features == "vgg16":
        try:
            lpips_weights_file()
        except FileNotFoundError as err:
            uses = " and ".join(name for name, used in (("LPIPS", lpips),
                                                        ("--features vgg16",
                                                         embedding.features == "vgg16"))
                                if used)
            raise FileNotFoundError(f"{uses} need{'s' if ' and ' not in uses else ''} VGG16: "
                                    f"{err}{' (or pass --no-lpips)' if lpips else ''}"
                                    ) from None

    require_generator(config.generator)
    check_levels_dir(config.levels_dir)
    require_output_dir(config.out)
    real = Path(config.real)
    if real.is_dir():
        count = len(image_files(real))
        if not count:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {real}")
        check_real_count(count, config)
    elif real.exists():
        raise InputFileError(f"--real {config.real}: not a directory of images")
    elif config.demo_world:
        real_world(config.real)   # a shapes config and version that exist


def check_real_count(count: int, config: EvaluateConfig) -> None:
    """Precision and recall need more real images than --k (each one's k-th nearest neighbour)."""
    k = config.sweep.k
    if count < k + 1:
        raise InputFileError(f"--real {config.real} gives {count} image{'s' * (count != 1)}; precision "
                             f"and recall with --k {k} need at least {k + 1}")


def check_sizes(config: EvaluateConfig, generator) -> None:
    """What needs the generator to check: --cutoff within its inputs, and --samples within memory
    (the real and generated images of a set, uint8, and their ws, float32)."""
    cutoff = config.sweep.cutoff
    if cutoff is not None and cutoff > generator.num_ws:
        raise UsageError(f"--cutoff must be in 1..{generator.num_ws} (the generator's inputs), "
                         f"got {cutoff}")
    res, n = generator.resolution, config.num_samples
    check_fits_in_memory("--samples", f"--samples {n}: {n:,} real and generated samples of "
                         f"{res}x{res} px", n * (3 * res * res * generator.img_channels
                                                 + 8 * generator.num_ws * generator.w_dim))


def evaluate(config: EvaluateConfig, progress: bool | None = None,
             cluster: DistributedConfig = DistributedConfig()) -> EvaluateResult | None:
    """Run the sweep of ``config`` and write its outputs under ``config.out``.

    ``cluster``: the processes that share the sweep (every one calls this); process 0 writes
    the outputs and gets the result, the others None.
    """
    check_inputs(config)
    distributed.join(cluster)
    inputs = load_inputs(config)
    journal, result = measure(config, inputs, progress)
    distributed.leave()
    if not distributed.is_main():
        return None
    outputs = write_results(config, inputs, journal, result)
    journal.remove()
    return outputs


@dataclasses.dataclass
class SweepInputs:
    """What the sweep reads: the generator, its trained levels, the real images (and the
    warnings they gave)."""

    generator: StyleGAN2Generator
    levels: list
    real_images: np.ndarray
    warnings: list[str]


def load_inputs(config: EvaluateConfig) -> SweepInputs:
    """The generator (in bfloat16 where asked), its levels and the real images, checked."""
    generator = load_generator(config.generator)
    if config.bf16_resolutions:
        generator = StyleGAN2Generator(dataclasses.replace(
            generator.config, bf16_resolutions=config.bf16_resolutions), generator.variables)
    check_sizes(config, generator)
    levels = load_levels(config.levels_dir, generator=generator)
    real_images = load_real_images(config.real, generator.resolution, config.num_samples,
                                   data_dir=config.data_dir)
    check_real_count(len(real_images), config)
    warnings = real_image_warnings(real_images, config.num_samples, not config.demo_world)
    if distributed.is_main():
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
    return SweepInputs(generator, levels, real_images, warnings)


def measure(config: EvaluateConfig, inputs: SweepInputs, progress: bool | None
            ) -> tuple[SweepJournal, SweepResult]:
    """Every set of the sweep, each kept in the journal as it finishes (process 0); a sweep
    that ran before under the same fingerprint continues after the sets it kept."""
    generator, levels = inputs.generator, inputs.levels
    # an allocation the device cannot make names the flag that sizes the work
    embedding = config.embedding
    embed = naming_setting(feature_network(embedding.features, embedding.inception_weights,
                                           embedding.feature_batch),
                           f"{embedding.features} features", "feature_batch",
                           embedding.feature_batch)
    perceptual = (naming_setting(lpips_images(**({} if embedding.feature_batch is None else
                                                 {"batch_size": embedding.feature_batch})),
                                 "LPIPS", "feature_batch", embedding.feature_batch)
                  if config.sweep.lpips else None)
    # the bundled classifier of the world that --real names
    factors = (factor_predictor(FACTOR_CLASSIFIERS[real_world(config.real)]).labels
               if config.demo_world else None)
    sweep = config.resolved_sweep
    centres = (SweepCentres.load(config.centres, levels, generator.w_dim,
                                 expect=centre_settings(generator, levels, sweep))
               if config.centres is not None else None)
    # process 0 keeps the sets as they finish; every process skips the ones it kept
    journal = SweepJournal(config.out, sweep_fingerprint(config, levels))
    kept = journal.load() if distributed.is_main() else []
    skip, total = distributed.main_value(len(kept)), sweep_size(sweep, levels)
    if kept:
        print(f"continuing the sweep in {config.out}: {skip} of {total} sets were measured before")
    try:
        with names_setting("image generation", "batch_size", sweep.batch_size):
            result = run_sweep(generator, levels, inputs.real_images, embed, sweep,
                               factors=factors, perceptual=perceptual,
                               progress=progress if distributed.is_main() else False,
                               centres=centres, skip=skip,
                               rng_state=kept[-1]["rng"] if kept else None,
                               on_row=journal.add if distributed.is_main() else None)
    except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM (the CLI's Terminated)
        signum = signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT
        raise SweepInterrupted(signum, len(journal.entries), total, config.out) from None
    return journal, result


def write_results(config: EvaluateConfig, inputs: SweepInputs, journal: SweepJournal,
                  result: SweepResult) -> EvaluateResult:
    """sweep.json and sweep.csv (every set the journal kept), the two plots, the grid of
    truncated images and the centres, with the settings that made them."""
    generator, methods = inputs.generator, config.sweep.methods
    rows = [entry["row"] for entry in journal.entries]
    summary = pairwise_summary(rows)
    settings = {**config_values(config), "samples": config.num_samples,
                "real_samples": len(inputs.real_images), "warnings": inputs.warnings,
                "grid_psis": list(GRID_PSIS), "grid_methods": list(methods),
                "centres_settings": result.centres.settings}
    # rows: untruncated, then each method at GRID_PSIS; the same latents in every column
    grid = [synthesize(generator, result.ws[:GRID_COLUMNS], GRID_COLUMNS)]
    for method in methods:
        grid += [synthesize(generator, result.truncated(method, psi, GRID_COLUMNS), GRID_COLUMNS)
                 for psi in GRID_PSIS]

    def sweep_json(folder: Path) -> Path:
        path = folder / "sweep.json"
        path.write_text(json.dumps({**settings, "rows": rows, "summary": summary}, indent=2) + "\n")
        return path

    def sweep_csv(folder: Path) -> Path:
        with open(folder / "sweep.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return folder / "sweep.csv"

    features = f"({config.embedding.features} features)"
    outputs = write_outputs(config.out, PRODUCER, {
        "sweep_json": sweep_json, "sweep_csv": sweep_csv,
        "pr_curve": lambda f: sweep_plot(rows, "recall", f / "pr_curve.png",
                                         f"precision vs recall {features}"),
        "precision_fid": lambda f: sweep_plot(rows, "fid", f / "precision_fid.png",
                                              f"precision vs FID {features}"),
        "truncation_grid": lambda f: save_image_grid(
            np.concatenate(grid), f / "truncation_grid.png", ncols=GRID_COLUMNS,
            row_labels=["untruncated", *(f"{m} psi {p:g}" for m in methods for p in GRID_PSIS)],
            col_labels=[f"sample {i + 1}" for i in range(GRID_COLUMNS)]),
        "centres": lambda f: result.centres.save(f / "centres.npz"),
    }, settings)
    return EvaluateResult(rows, summary, outputs)


def summary_lines(result: EvaluateResult) -> list[str]:
    """The console table (each value with its 95% interval), then every pair of methods compared
    at equal recall and at equal FID."""
    lines = [f"{'method':<17} {'psi':>4} {'precision':>17} {'recall':>17} {'FID':>20} {'LPIPS':>6} "
             f"{'faithful':>8}"]
    for r in result.rows:
        cell = lambda k, w, f, r=r: f"{r[k]:{f}} [{r[k + '_lo']:{f}},{r[k + '_hi']:{f}}]".rjust(w)
        lines.append(f"{r['method']:<17} {r['psi']:>4g} {cell('precision', 17, '.3f')} "
                     f"{cell('recall', 17, '.3f')} {cell('fid', 20, '.2f')} "
                     f"{r.get('lpips', float('nan')):>6.3f} {r.get('faithful', float('nan')):>8.3f}")
    for s in result.summary:
        if s["mean_gap"] is None:
            lines.append(f"{s['a']} vs {s['b']} at equal {s['x']}: the curves do not overlap")
            continue
        significant = ("" if s["significant_share"] is None else
                       f"; intervals apart on {s['significant_share']:.0%}")
        lines.append(f"{s['a']} vs {s['b']} at equal {s['x']}: precision {s['mean_gap']:+.3f} on "
                     f"average, higher on {s['a_higher_share']:.0%} of the shared range{significant}")
    return lines
