"""Checkpoint directories of converted (or trained) StyleGAN2 networks.

Layout of a checkpoint directory::

    config.json     readable: format version, network configs, source, parameter counts
    variables/      orbax checkpoint of {'generator': {...}, 'discriminator': {...}}
    (preview.png and other files the writer adds)

Writing is atomic: everything goes to a hidden temporary directory beside the
target, which is renamed into place only when complete.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

from mlss_jax.config import quote_error
from mlss_jax.errors import CheckpointError
from mlss_jax.networks.config import DiscriminatorConfig, GeneratorConfig
from mlss_jax.runtime.files import check_replaceable, mark_dir

CONFIG_FILE = "config.json"
VARIABLES_DIR = "variables"
FORMAT_VERSION = 1
CHECKPOINT_KIND = "checkpoint"
# what a checkpoint directory written before marker files held: --force may replace those too
_LEGACY_ENTRIES = frozenset({CONFIG_FILE, VARIABLES_DIR, "preview.png"})


def check_checkpoint_target(out_dir: str | Path, force: bool) -> None:
    """Fail before any work where a checkpoint cannot be written: ``out_dir`` exists and
    ``force`` is not given, or ``force`` is given but ``out_dir`` is not a checkpoint directory
    this project wrote (a user's folder, a file, a training run)."""
    out_dir = Path(out_dir)
    if not force:
        if out_dir.exists() or out_dir.is_symlink():
            raise FileExistsError(f"{out_dir} already exists (use --force to replace it)")
        return
    check_replaceable(out_dir, CHECKPOINT_KIND, "a checkpoint directory", _LEGACY_ENTRIES)


def count_params(variables: dict) -> int:
    """Trainable parameters (the ``params`` collection) of a variable tree."""
    return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(variables.get("params", {}))))


def save_networks(out_dir: str | Path, *, generator_config: GeneratorConfig, generator_vars: dict,
                  discriminator_config: DiscriminatorConfig | None = None,
                  discriminator_vars: dict | None = None, metadata: dict | None = None,
                  force: bool = False,
                  write_extra: Callable[[Path], None] | None = None) -> Path:
    """Write a checkpoint directory atomically; refuse an existing one unless ``force``.

    ``write_extra(tmp_dir)`` may add files (a preview image) before the directory
    is moved into place.
    """
    import orbax.checkpoint as ocp

    out_dir = Path(out_dir).absolute()
    check_checkpoint_target(out_dir, force)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    tree = {"generator": generator_vars}
    config: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "generator": generator_config.to_dict(),
        "generator_params": count_params(generator_vars),
    }
    if discriminator_vars is not None:
        tree["discriminator"] = discriminator_vars
        config["discriminator"] = discriminator_config.to_dict()
        config["discriminator_params"] = count_params(discriminator_vars)
    config["metadata"] = metadata or {}
    try:
        tmp_dir.mkdir()
        checkpointer = ocp.StandardCheckpointer()
        checkpointer.save(tmp_dir / VARIABLES_DIR, jax.tree_util.tree_map(np.asarray, tree))
        checkpointer.wait_until_finished()
        (tmp_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        mark_dir(tmp_dir, CHECKPOINT_KIND)
        if write_extra is not None:
            write_extra(tmp_dir)
        _replace_dir(tmp_dir, out_dir)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return out_dir


def _replace_dir(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``; an existing ``dst`` is removed only after the move."""
    old = None
    if dst.exists():
        old = dst.parent / f".{dst.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(dst, old)
    try:
        os.rename(src, dst)
    except OSError:
        if old is not None:
            os.rename(old, dst)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_config(ckpt_dir: str | Path) -> dict:
    ckpt_dir = Path(ckpt_dir)
    path = ckpt_dir / CONFIG_FILE
    if not ckpt_dir.is_dir():
        raise CheckpointError(f"checkpoint directory {ckpt_dir} does not exist "
                              "(convert a pickle first: python convert/from_pkl.py)")
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{ckpt_dir} is not a checkpoint (no {CONFIG_FILE})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is corrupt ({err})") from None
    if not isinstance(config, dict) or config.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: unknown checkpoint format")
    return config


def load_networks(ckpt_dir: str | Path) -> tuple[dict, dict]:
    """Read ``(config, variables)``; ``variables`` has 'generator' and maybe 'discriminator'."""
    import orbax.checkpoint as ocp

    config = read_config(ckpt_dir)
    var_dir = Path(ckpt_dir).absolute() / VARIABLES_DIR
    if not var_dir.is_dir():
        raise CheckpointError(f"{ckpt_dir} is incomplete (no {VARIABLES_DIR}/)")
    try:
        variables = ocp.StandardCheckpointer().restore(var_dir)
    except Exception as err:  # orbax raises many types for damaged data
        raise CheckpointError(f"cannot read {var_dir}: {quote_error(err)}") from None
    return config, variables


PARAMS_FILE = "params.msgpack"
META_FILE = "config.json"


def save_params_folder(directory: str | Path, params: dict, meta: dict) -> Path:
    """A small trained network as a folder: its parameters (flax msgpack) and ``meta`` (its
    config and report, JSON). The factor classifier and the feature encoder are kept so."""
    from flax import serialization

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / PARAMS_FILE).write_bytes(serialization.to_bytes(params))
    (directory / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return directory


def load_params_meta(directory: str | Path, what: str) -> dict:
    """The ``meta`` a folder of :func:`save_params_folder` holds; ``what`` names the network in
    the error when it is missing."""
    directory = Path(directory)
    try:
        return json.loads((directory / META_FILE).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no {what} in {directory} ({META_FILE} missing)") from None


def load_params(directory: str | Path, what: str, init: Callable[[], dict]) -> dict:
    """The parameters of a folder of :func:`save_params_folder`, in the structure ``init``
    gives (only its shapes are traced: nothing is initialised or compiled)."""
    import jax.numpy as jnp
    from flax import serialization

    try:
        raw = (Path(directory) / PARAMS_FILE).read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"no {what} in {directory} ({PARAMS_FILE} missing)") from None
    params = serialization.from_state_dict(jax.eval_shape(init), serialization.msgpack_restore(raw))
    return jax.tree_util.tree_map(jnp.asarray, params)
