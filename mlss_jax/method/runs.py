"""Level run directories (``train.py``'s output): one loader for one level or all three.

A level is trained against one frozen generator, and its run's ``config.json`` records which:
the generator's config (``generator``), the SHA-256 of its weights (``generator_sha256``; runs
written before it was recorded have only the config) and its path. The loaders check that
record against the generator a command uses before they read any checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jax

from mlss_jax.errors import CheckpointError
from mlss_jax.method.config import MLSSConfig
from mlss_jax.method.levels import LEVELS, LevelSplit
from mlss_jax.method.models import LevelModel
from mlss_jax.method.training import init_level_state
from mlss_jax.networks.config import GeneratorConfig
from mlss_jax.runtime.run_state import RUN_CONFIG, RunCheckpointer

# generator settings that change how it computes, not what: levels serve every value of these
_COMPUTE_SETTINGS = ("fused_modconv", "bf16_resolutions", "w_avg_beta")


def _abstract_state(config: MLSSConfig, g_cfg: GeneratorConfig) -> Any:
    fresh = dataclasses.replace(config, init_mapper_from_f=False)
    return jax.eval_shape(lambda: init_level_state(fresh, g_cfg, {}))


def read_level_config(run_dir: str | Path) -> dict:
    """A level run's ``config.json``: ``mlss`` (the level's settings), ``generator`` (the
    generator's config), ``generator_path`` and, in runs written since, ``generator_sha256``."""
    run_dir = Path(run_dir)
    try:
        saved = json.loads((run_dir / RUN_CONFIG).read_text())
        MLSSConfig(**saved["mlss"])
        GeneratorConfig.from_dict(saved["generator"])
    except FileNotFoundError:
        raise CheckpointError(f"{run_dir} is not a level checkpoint (no {RUN_CONFIG}; "
                              "train one with python train.py)") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{run_dir / RUN_CONFIG} is not a level config ({err})") from None
    return saved


def generator_difference(saved: dict, generator) -> str | None:
    """How the generator a level run was trained for (its ``config.json``: ``saved``) differs
    from ``generator`` (a :class:`~mlss_jax.networks.stylegan2.StyleGAN2Generator`), or None:
    the config (but for how it computes) and, where the run recorded them, the weights."""
    def described(config: GeneratorConfig) -> dict:
        values = {k: v for k, v in dataclasses.asdict(config).items() if k not in _COMPUTE_SETTINGS}
        return {**values, "mapping_hidden": config.mapping_hidden or config.w_dim}

    trained = described(GeneratorConfig.from_dict(saved["generator"]))
    given = described(generator.config)
    differ = [key for key in trained if trained[key] != given[key]][:4]
    if differ:
        text = lambda config: ", ".join(f"{key} {config[key]}" for key in differ)
        return f"{text(trained)}; this one has {text(given)}"
    if saved.get("generator_sha256") not in (None, generator.weights_sha256):
        return "the same architecture, other weights"
    return None


def trained_for(levels_dir: str | Path, generator, levels: tuple[str, ...] = LEVELS) -> bool:
    """Whether every one of ``levels`` under ``levels_dir`` was trained for ``generator``."""
    return all(generator_difference(read_level_config(Path(levels_dir) / level), generator) is None
               for level in levels)


def check_level_generator(run_dir: str | Path, saved: dict, generator,
                          advice: str = "train them for this one or pass its --levels-dir") -> None:
    """The level run in ``run_dir`` (its ``config.json``: ``saved``) was trained for
    ``generator`` (:func:`generator_difference`); ``advice`` ends the error's line."""
    reason = generator_difference(saved, generator)
    if reason is None:
        return
    trained_on = saved.get("generator_path")
    raise CheckpointError(f"levels in {Path(run_dir).parent} were trained for a different "
                          f"generator ({trained_on + ': ' if trained_on else ''}{reason}); {advice}")


def load_level(run_dir: str | Path, generator=None) -> LevelModel:
    """The newest checkpoint of a level run written by ``train_level`` (``train.py``);
    with ``generator``, checked first to have been trained for it."""
    run_dir = Path(run_dir)
    saved = read_level_config(run_dir)
    if generator is not None:
        check_level_generator(run_dir, saved, generator)
    config = MLSSConfig(**saved["mlss"])
    g_cfg = GeneratorConfig.from_dict(saved["generator"])
    checkpointer = RunCheckpointer(run_dir)
    if checkpointer.latest_step() is None:
        raise CheckpointError(f"{run_dir} has no checkpoint yet (its training stopped before the "
                              f"first; continue it: python train.py --level {config.level} "
                              f"--resume --out {run_dir.parent})")
    step, state = checkpointer.restore(_abstract_state(config, g_cfg))
    return LevelModel(config, g_cfg, LevelSplit.parse(config.split, g_cfg.num_ws), step,
                      state.gen, state.classifier)


def check_levels_dir(levels_dir: str | Path, levels: tuple[str, ...] = LEVELS) -> None:
    """Every one of ``levels`` has a run directory under ``levels_dir``, of that level, and they
    share one split of the inputs (cheap: only the runs' ``config.json`` are read)."""
    levels_dir = Path(levels_dir)
    if (levels_dir / RUN_CONFIG).is_file():  # one level's run, not the directory of all three
        try:
            level = read_level_config(levels_dir)["mlss"]["level"]
        except CheckpointError:
            level = "a level"
        raise FileNotFoundError(f"--levels-dir {levels_dir} is the run directory of one level "
                                f"({level}): pass its parent, {levels_dir.parent}")
    if levels_dir.exists() and not levels_dir.is_dir():
        raise NotADirectoryError(f"--levels-dir {levels_dir} is a file, not a directory")
    missing = [level for level in levels if not (levels_dir / level).is_dir()]
    if missing:
        raise FileNotFoundError(f"no trained {missing[0]} level in {levels_dir} "
                                f"(train them: python train.py --level all --out {levels_dir})")
    splits = {}
    for level in levels:
        saved = read_level_config(levels_dir / level)
        if saved["mlss"]["level"] != level:
            raise CheckpointError(f"{levels_dir / level} holds the {saved['mlss']['level']} level, "
                                  f"not {level}")
        num_ws = GeneratorConfig.from_dict(saved["generator"]).num_ws
        splits[level] = LevelSplit.parse(saved["mlss"].get("split"), num_ws).text()
    if len(set(splits.values())) > 1:
        raise CheckpointError(f"levels in {levels_dir} were trained with different --split ("
                              + "; ".join(f"{lv} {text}" for lv, text in splits.items())
                              + "); train all of them with one")


def load_levels(levels_dir: str | Path, levels: tuple[str, ...] = LEVELS,
                generator=None) -> list[LevelModel]:
    """The trained ``levels`` under ``levels_dir`` (one subdirectory each), checked before
    loading; with ``generator``, checked first to have been trained for it."""
    check_levels_dir(levels_dir, levels)
    if generator is not None:
        for level in levels:
            run_dir = Path(levels_dir) / level
            check_level_generator(run_dir, read_level_config(run_dir), generator)
    return [load_level(Path(levels_dir) / level) for level in levels]
