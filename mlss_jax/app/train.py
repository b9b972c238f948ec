"""``train.py``: train one level or all three against a frozen generator, each into its own
run directory, with the final C_l accuracy on fresh samples.

Every level's directory is checked before any training starts, so ``--level all`` never
trains coarse and medium only to fail at fine.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from mlss_jax.app.cli import UsageError, check_fits_in_memory, flag_message
from mlss_jax.app.paths import DEMO_CHECKPOINT, LEVELS_DIR, require_generator, require_output_dir
from mlss_jax.config import check_choice, choices
from mlss_jax.errors import ConfigError
from mlss_jax.method.levels import LEVELS, LevelSplit
from mlss_jax.method.config import MLSSConfig
from mlss_jax.runtime import distributed
from mlss_jax.runtime.distributed import DistributedConfig
from mlss_jax.runtime.files import write_atomic
from mlss_jax.runtime.run_state import RUN_CONFIG, check_run_dir


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """What ``train.py`` trains, from which generator, into where; each level's own settings
    are ``training``'s (its ``level`` is set for each level in turn).

    Attributes:
      level: level to train, or all three in turn.
      generator: converted generator checkpoint or network pickle.
      out: directory of the level runs, one subdirectory per level.
      eval_samples: fresh samples for the final classifier accuracy (0: none).
    """

    level: str = choices(*LEVELS, "all", default="fine")
    generator: Path = DEMO_CHECKPOINT
    out: Path = LEVELS_DIR
    eval_samples: int = 2000
    training: MLSSConfig = dataclasses.field(default=MLSSConfig(), metadata={"skip": ("level",)})

    def __post_init__(self) -> None:
        check_choice(self, "level", (*LEVELS, "all"))
        if self.eval_samples < 0:
            raise ConfigError(f"eval_samples must be >= 0, got {self.eval_samples}")

    @property
    def levels(self) -> tuple[str, ...]:
        return LEVELS if self.level == "all" else (self.level,)


@dataclasses.dataclass
class LevelSummary:
    """What one level's run produced."""

    level: str
    run_dir: Path
    step: int
    steps_per_second: float
    preview: Path
    classifier_accuracy: float | None


def train_levels(config: TrainConfig, resume: bool = False, force: bool = False,
                 cluster: DistributedConfig = DistributedConfig(),
                 deadline: float | None = None) -> list[LevelSummary]:
    """Train ``config.levels`` in turn into ``config.out/<level>``; with ``resume``, a level that
    has no run yet starts one. Writes each level's ``metrics.json`` and records it in its manifest.

    ``cluster``: the processes that share the work (every one calls this); process 0 writes
    the metrics and manifests. ``deadline``: a ``time.monotonic()`` time at which training
    pauses (:class:`~mlss_jax.runtime.loop.TrainingPaused`) in whichever level it has reached."""
    generator_path, out, levels = config.generator, config.out, config.levels
    require_generator(generator_path)
    require_output_dir(out)
    started = {level: (out / level / RUN_CONFIG).is_file() for level in levels}
    for level in levels:
        check_run_dir(out / level, resume and started[level], force)

    created = not out.exists()
    try:
        return _train_levels(config.training, generator_path, out, levels, resume, force,
                             config.eval_samples, cluster, deadline, started)
    finally:   # a failed first level leaves no empty folder behind either
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()


def _train_levels(config, generator_path, out, levels, resume, force, eval_samples, cluster,
                  deadline, started) -> list[LevelSummary]:
    from mlss_jax.app.manifest import record_outputs
    from mlss_jax.method.models import classifier_accuracy
    from mlss_jax.method.runs import check_level_generator, read_level_config
    from mlss_jax.method.training import train_level
    from mlss_jax.weights.load import load_generator

    distributed.join(cluster)
    generator = load_generator(generator_path)
    # the mixture's means and log standard deviations, with their two Adam moments
    check_fits_in_memory("--num-clusters", f"--num-clusters {config.num_clusters}: the mixture",
                         24 * config.num_clusters * generator.z_dim, device=True)
    if config.split is not None:  # its boundaries fit the generator's inputs
        try:
            LevelSplit.parse(config.split, generator.num_ws)
        except ConfigError as err:
            raise UsageError(flag_message(str(err), "split")) from None
    for level in levels:
        if resume and started[level]:
            check_level_generator(out / level, read_level_config(out / level), generator,
                                  "resume them with that generator, or replace them with --force")
    summaries = []
    for level in levels:
        level_config = dataclasses.replace(config, level=level)
        result = train_level(level_config, generator_path, out / level,
                             resume=resume and started[level], generator=generator, force=force,
                             deadline=deadline)
        metrics = {"level": level, "step": result.step,
                   "steps_per_second": round(result.steps_per_second, 3)}
        accuracy = None
        if not distributed.is_main():
            continue
        if eval_samples:
            accuracy = classifier_accuracy(result.model, generator.variables,
                                           eval_samples, seed=level_config.seed + 1)
            metrics.update(classifier_accuracy=accuracy, eval_samples=eval_samples)
        path = write_atomic(result.run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        record_outputs(result.run_dir, "train", {"metrics": path, "preview": result.preview})
        summaries.append(LevelSummary(level, result.run_dir, result.step, result.steps_per_second,
                                      result.preview, accuracy))
    distributed.leave()
    return summaries
