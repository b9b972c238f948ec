"""The level report stage (``tools/level_report.py``): each trained level's C_l accuracy and the
NMI of its clusters with the demo world's factors, written as level_report.json and .md."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from mlss_jax.app import cli
from mlss_jax.app.paths import DEMO_CHECKPOINT, LEVELS_DIR, require_generator, require_output_dir
from mlss_jax.demo.world import FACTOR_CLASSIFIER
from mlss_jax.config import check_positive, check_seed
from mlss_jax.errors import InputFileError


@dataclasses.dataclass(frozen=True)
class LevelReportConfig:
    """What the level report measures, and where it writes.

    Attributes:
      levels_dir: directory with one level run per subdirectory.
      generator: generator checkpoint or pickle.
      samples: samples per level.
      seed: seed of the samples.
      classifier: factor classifier directory (the default is the one shipped in assets/).
      out: output directory.
    """

    levels_dir: Path = LEVELS_DIR
    generator: Path = DEMO_CHECKPOINT
    samples: int = 5000
    seed: int = 1
    classifier: Path = FACTOR_CLASSIFIER
    out: Path = Path("out/level_report")

    def __post_init__(self) -> None:
        check_positive(self, ("samples",))
        check_seed(self)


def write_level_report(config: LevelReportConfig) -> tuple[list[str], dict[str, Path]]:
    """Measure every level found in ``config.levels_dir`` (``samples`` per level from ``seed``,
    the factors read by the factor classifier in ``classifier``) and write the report to
    ``out``; returns the Markdown table's lines and the files written."""
    levels_dir, generator_path, samples, seed, classifier, out = (
        config.levels_dir, config.generator, config.samples, config.seed, config.classifier,
        config.out)
    from mlss_jax.app.manifest import write_outputs
    from mlss_jax.demo.shapes import FACTORS
    from mlss_jax.demo.world import factor_predictor, is_demo_world
    from mlss_jax.method.levels import LEVELS
    from mlss_jax.method.runs import check_levels_dir, load_level
    from mlss_jax.metrics.level_report import level_row, markdown_table
    from mlss_jax.weights.load import load_generator

    require_generator(generator_path)
    require_output_dir(out)
    levels = tuple(lv for lv in LEVELS if (levels_dir / lv).is_dir())
    check_levels_dir(levels_dir, levels or LEVELS)  # some of the three, not one level's run
    generator = load_generator(generator_path)
    res = generator.resolution
    if not is_demo_world(image_shape=(res, res, generator.img_channels)):
        raise InputFileError(f"{generator_path} makes {res}x{res} px images: the level report "
                             "reads the demo world's factors, whose classifier takes 32x32 RGB images")
    cli.check_fits_in_memory("--samples", f"--samples {samples}: {samples:,} images "
                             f"of {res}x{res} px",
                             samples * (3 * res * res + 8 * generator.z_dim))
    models = [load_level(levels_dir / level, generator) for level in levels]
    predictor = factor_predictor(classifier)
    rows = [level_row(generator, model, predictor.labels, FACTORS, samples, seed)
            for model in models]
    lines = markdown_table(rows, FACTORS)
    settings = {"generator": str(generator_path), "samples": samples, "seed": seed}

    def write(name: str, text: str):
        def writer(folder: Path) -> Path:
            (folder / name).write_text(text)
            return folder / name
        return writer

    written = write_outputs(out, "level_report", {
        "level_report": write("level_report.json",
                              json.dumps({**settings, "levels": rows}, indent=2) + "\n"),
        "level_report_md": write("level_report.md", "\n".join(lines) + "\n")}, settings)
    return lines, written
