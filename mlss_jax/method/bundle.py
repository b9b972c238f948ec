"""Trained levels in an inference-only form: a few MB that ship with a generator.

A bundle keeps what drawing and classifying need (each level's mixture, mapper M_l and
classifier C_l) and drops the critic and the optimiser states. ``levels.json`` records the
levels' settings and the generator they were trained for (its config and the SHA-256 of its
weights), so a bundle is refused for any other generator; each level's arrays are one
``<level>.npz``.

    make_bundle(levels_dir, generator, out)   # from train.py's run directories
    load_any_levels(path, generator)          # a bundle or a levels directory
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
from flax import traverse_util

from mlss_jax.method.config import MLSSConfig
from mlss_jax.method.levels import LEVELS, LevelSplit
from mlss_jax.method.models import LevelModel
from mlss_jax.method.runs import generator_difference, load_levels
from mlss_jax.networks.config import GeneratorConfig
from mlss_jax.runtime.files import write_atomic
from mlss_jax.weights.checkpoint import CheckpointError

BUNDLE_INDEX = "levels.json"
BUNDLE_FORMAT = 1


def is_bundle(path: str | Path) -> bool:
    return (Path(path) / BUNDLE_INDEX).is_file()


def _flat(tree: dict) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in traverse_util.flatten_dict(tree, sep="/").items()}


def make_bundle(levels_dir: str | Path, generator, out: str | Path) -> Path:
    """Write the inference-only bundle of the levels in ``levels_dir`` (trained for
    ``generator``, checked first) to the folder ``out``; returns its index file."""
    levels = load_levels(levels_dir, generator=generator)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    index = {"format": BUNDLE_FORMAT, "generator": generator.config.to_dict(),
             "generator_sha256": generator.weights_sha256, "levels": {}}
    for model in levels:
        level = model.config.level
        arrays = {**{f"gen/{k}": v for k, v in _flat(model.gen).items()},
                  **{f"classifier/{k}": v for k, v in _flat(model.classifier).items()}}
        np.savez_compressed(out / f"{level}.npz", **arrays)
        index["levels"][level] = {"mlss": dataclasses.asdict(model.config), "step": model.step}
    return write_atomic(out / BUNDLE_INDEX, json.dumps(index, indent=1) + "\n")


def _read_index(bundle: Path) -> dict:
    try:
        index = json.loads((bundle / BUNDLE_INDEX).read_text())
        GeneratorConfig.from_dict(index["generator"])
        if index.get("format") != BUNDLE_FORMAT or set(index["levels"]) != set(LEVELS):
            raise ValueError(f"format {index.get('format')}, levels {sorted(index['levels'])}")
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{bundle / BUNDLE_INDEX} is not a levels bundle ({err})") from None
    return index


def load_bundle(bundle: str | Path, generator) -> list[LevelModel]:
    """The three levels of a bundle, refused in one line unless made for ``generator``."""
    bundle = Path(bundle)
    index = _read_index(bundle)
    reason = generator_difference(index, generator)
    if reason is not None:
        raise CheckpointError(f"the levels in {bundle} were made for another generator ({reason}); "
                              "pass that generator, or --levels-dir levels trained for this one")
    g_cfg = GeneratorConfig.from_dict(index["generator"])
    out = []
    for level in LEVELS:
        entry = index["levels"][level]
        config = MLSSConfig(**entry["mlss"])
        with np.load(bundle / f"{level}.npz", allow_pickle=False) as data:
            flat = {k: data[k] for k in data.files}
        tree = traverse_util.unflatten_dict(flat, sep="/")
        out.append(LevelModel(config, g_cfg, LevelSplit.parse(config.split, g_cfg.num_ws),
                              int(entry["step"]), tree["gen"], tree["classifier"]))
    return out


def load_any_levels(path: str | Path, generator) -> list[LevelModel]:
    """Levels from a bundle or from train.py's levels directory, checked against ``generator``."""
    return load_bundle(path, generator) if is_bundle(path) else load_levels(path, generator=generator)


__all__ = ["BUNDLE_INDEX", "is_bundle", "load_any_levels", "load_bundle",
           "make_bundle"]
