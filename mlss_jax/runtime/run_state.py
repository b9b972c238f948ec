"""Checkpoints of a training run's full state, for ``--resume``.

A run directory holds ``config.json`` (the run's configuration, written once)
and ``checkpoints/<step>/`` (orbax, written atomically: orbax builds each step in
a temporary directory and renames it when complete, so a run killed while saving
leaves the previous checkpoint intact). Resuming restores the newest complete
step into the structure of a freshly initialised state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax

from mlss_jax.weights.checkpoint import CheckpointError

RUN_CONFIG = "config.json"
CHECKPOINTS = "checkpoints"


class RunCheckpointer:
    """Save and restore ``(step, state)`` of a training run; keeps the newest ``keep``."""

    def __init__(self, run_dir: str | Path, keep: int = 2) -> None:
        import orbax.checkpoint as ocp

        self.run_dir = Path(run_dir).absolute()
        self._manager = ocp.CheckpointManager(
            self.run_dir / CHECKPOINTS,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                                 enable_async_checkpointing=False))

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state: Any) -> None:
        import orbax.checkpoint as ocp

        self._manager.save(step, args=ocp.args.StandardSave(state), force=True)
        self._manager.wait_until_finished()

    def restore(self, template: Any, step: int | None = None) -> tuple[int, Any]:
        """The state at ``step`` (default: the newest), shaped like ``template`` (arrays or
        ``jax.ShapeDtypeStruct``s, e.g. from ``jax.eval_shape``)."""
        import orbax.checkpoint as ocp

        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"{self.run_dir} has no checkpoint to resume from")
        abstract = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),
                                          template)
        try:
            state = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
        except Exception as err:  # orbax raises many types for damaged data
            raise CheckpointError(f"cannot restore step {step} from {self.run_dir / CHECKPOINTS}: "
                                  f"{type(err).__name__}: {str(err)[:200]}") from None
        return step, state

    def close(self) -> None:
        self._manager.close()


def prepare_run_dir(run_dir: str | Path, config: dict, resume: bool,
                    mutable: tuple[str, ...] = ()) -> Path:
    """Create a run directory with ``config.json``, or check it on ``resume``.

    A new run refuses a directory that already holds a run; a resumed run must
    have the same config except for the keys in ``mutable`` (dotted paths into
    nested dicts, such as ``"mlss.steps"``), whose new values are written back.
    """
    run_dir = Path(run_dir).absolute()
    path = run_dir / RUN_CONFIG
    if not resume:
        if path.exists() or (run_dir / CHECKPOINTS).exists():
            raise FileExistsError(f"{run_dir} already holds a run (use --resume to continue it, "
                                  "or choose another --out)")
        run_dir.mkdir(parents=True, exist_ok=True)
    else:
        if not path.exists():
            raise CheckpointError(f"nothing to resume: {path} does not exist")
        try:
            saved = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise CheckpointError(f"{path} is corrupt ({err})") from None
        old, new = _flatten(saved), _flatten(config)
        changed = sorted(k for k in set(old) | set(new)
                         if k not in mutable and old.get(k) != new.get(k))
        if changed:
            key = changed[0]
            raise ValueError(f"--resume with a different {key} ({old.get(key)!r} in {path}, "
                             f"{new.get(key)!r} now)")
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(config, indent=2) + "\n")
    tmp.replace(path)
    return run_dir


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def open_run(run_dir: str | Path, config: dict, resume: bool, mutable: tuple[str, ...],
             fresh_state: Any) -> tuple[Path, RunCheckpointer, int, Any]:
    """Prepare ``run_dir`` and return ``(run_dir, checkpointer, start_step, state)``.

    ``state`` is ``fresh_state`` for a new run, or the newest checkpoint on resume.
    """
    run_dir = prepare_run_dir(run_dir, config, resume, mutable)
    checkpointer = RunCheckpointer(run_dir)
    if resume and checkpointer.latest_step() is not None:
        start, state = checkpointer.restore(fresh_state)
        return run_dir, checkpointer, start, state
    return run_dir, checkpointer, 0, fresh_state
