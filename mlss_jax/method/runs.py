"""Level run directories (``train.py``'s output): one loader for one level or all three."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jax

from mlss_jax.method.config import MLSSConfig
from mlss_jax.method.levels import LEVELS, LevelSplit
from mlss_jax.method.models import LevelModel
from mlss_jax.method.training import init_level_state
from mlss_jax.networks.config import GeneratorConfig
from mlss_jax.runtime.run_state import RUN_CONFIG, RunCheckpointer
from mlss_jax.weights.checkpoint import CheckpointError


def _abstract_state(config: MLSSConfig, g_cfg: GeneratorConfig) -> Any:
    fresh = dataclasses.replace(config, init_mapper_from_f=False)
    return jax.eval_shape(lambda: init_level_state(fresh, g_cfg, {}))


def load_level(run_dir: str | Path) -> LevelModel:
    """The newest checkpoint of a level run written by ``train_level`` (``train.py``)."""
    run_dir = Path(run_dir)
    try:
        saved = json.loads((run_dir / RUN_CONFIG).read_text())
        config = MLSSConfig(**saved["mlss"])
        g_cfg = GeneratorConfig.from_dict(saved["generator"])
    except FileNotFoundError:
        raise CheckpointError(f"{run_dir} is not a level checkpoint (no {RUN_CONFIG}; "
                              "train one with python train.py)") from None
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise CheckpointError(f"{run_dir / RUN_CONFIG} is not a level config ({err})") from None
    step, state = RunCheckpointer(run_dir).restore(_abstract_state(config, g_cfg))
    return LevelModel(config, g_cfg, LevelSplit.parse(config.split, g_cfg.num_ws), step,
                      state["gen"], state["classifier"])




def check_levels_dir(levels_dir: str | Path, levels: tuple[str, ...] = LEVELS) -> None:
    """Every one of ``levels`` has a run directory under ``levels_dir``."""
    missing = [level for level in levels if not (Path(levels_dir) / level).is_dir()]
    if missing:
        raise FileNotFoundError(f"no trained {missing[0]} level in {levels_dir} "
                                f"(train them: python train.py --level all --out {levels_dir})")


def load_levels(levels_dir: str | Path, levels: tuple[str, ...] = LEVELS) -> list[LevelModel]:
    """The trained ``levels`` under ``levels_dir`` (one subdirectory each), checked before loading."""
    check_levels_dir(levels_dir, levels)
    return [load_level(Path(levels_dir) / level) for level in levels]
