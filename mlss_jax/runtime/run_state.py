"""Checkpoints of a training run's full state, for ``--resume``.

A run directory holds ``config.json`` (the run's configuration, written once)
and ``checkpoints/<step>/`` (orbax, written atomically: orbax builds each step in
a temporary directory and renames it when complete, so a run killed while saving
leaves the previous checkpoint intact). Resuming restores the newest readable
step into the structure of a freshly initialised state; a step that cannot be read is
moved aside to ``corrupt-checkpoints/`` and the next older one is used, with a warning.
While a process trains in a run directory it holds a lock on it (``.lock``, removed when the
lock is released), so a second process cannot train there at the same time. A run directory is
marked as the project's (``.mlss-jax``), and ``--force`` empties only a marked one; a new run
that fails before its first checkpoint removes what it wrote.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, TextIO

import jax

from mlss_jax.config import quote_error
from mlss_jax.errors import CheckpointError, ConfigError, ResourceError
from mlss_jax.runtime import distributed
from mlss_jax.runtime.files import check_replaceable, check_writable_dir, mark_dir, write_atomic

RUN_CONFIG = "config.json"
CHECKPOINTS = "checkpoints"
CORRUPT = "corrupt-checkpoints"
LOCK = ".lock"
# the GAN trainer's --snapshot-pickles outputs (not needed to resume)
SNAPSHOTS = "snapshots"
RUN_KIND = "run"
# what the project's trainers write into a run directory: one written before marker files
# existed, holding these names only, may be replaced by --force too
_RUN_ENTRIES = frozenset({RUN_CONFIG, CHECKPOINTS, CORRUPT, LOCK, SNAPSHOTS, "log.jsonl",
                          "samples", "previews", "network.pkl", "metrics.json", "manifest.json"})


class RunDirInUse(ResourceError):
    """Another live process holds the run directory."""


class RunLock:
    """A held lock on a run directory; ``close()`` releases it and removes the lock file."""

    def __init__(self, path: Path, handle: TextIO) -> None:
        self.path, self._handle = path, handle

    def close(self) -> None:
        if self._handle is None:
            return
        try:   # unlinked while held, so no other process holds the same file meanwhile
            if _same_file(self.path, self._handle):
                self.path.unlink()
        except OSError:
            pass
        self._handle.close()
        self._handle = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _same_file(path: Path, handle: TextIO) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False


def lock_run_dir(run_dir: Path) -> RunLock:
    """Hold ``run_dir``'s lock until the returned lock is closed (or the process ends)."""
    path = run_dir / LOCK
    for _ in range(3):
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise RunDirInUse(f"{run_dir} is in use by another process (pid {owner}); wait for "
                              "it to finish or stop it") from None
        if _same_file(path, handle):
            break
        handle.close()   # its holder removed it as we opened it: lock the new file instead
    else:
        raise RunDirInUse(f"{run_dir}: its lock file keeps changing; is another process "
                          "starting there?")
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return RunLock(path, handle)


class RunCheckpointer:
    """Save and restore ``(step, state)`` of a training run; keeps the newest ``keep``."""

    def __init__(self, run_dir: str | Path, keep: int = 2, lock: RunLock | None = None,
                 kept: frozenset[str] | None = None, created: bool = False) -> None:
        """``kept``: for a new run, the entries ``run_dir`` held before it started (and
        ``discard()`` keeps); None for a resumed run, which ``discard()`` leaves alone.
        ``created``: the new run created ``run_dir``, so ``discard()`` removes it."""
        self.run_dir = Path(run_dir).absolute()
        self._keep = keep
        self._lock = lock   # the run directory's lock, released by close()
        self._kept, self._created = kept, created
        self._manager = self._open_manager()

    def _open_manager(self):
        import orbax.checkpoint as ocp

        return ocp.CheckpointManager(
            self.run_dir / CHECKPOINTS,
            options=ocp.CheckpointManagerOptions(max_to_keep=self._keep, create=True,
                                                 enable_async_checkpointing=False))

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state: Any) -> None:
        import orbax.checkpoint as ocp

        self._manager.save(step, args=ocp.args.StandardSave(state), force=True)
        self._manager.wait_until_finished()

    def restore(self, template: Any, step: int | None = None,
                sharding: jax.sharding.Sharding | None = None) -> tuple[int, Any]:
        """The state at ``step`` (default: the newest readable one), shaped like ``template``
        (arrays or ``jax.ShapeDtypeStruct``s, e.g. from ``jax.eval_shape``), placed with
        ``sharding`` (default: this process's first device)."""
        # an explicit placement: a checkpoint saved over other devices restores here too
        sharding = sharding or jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        abstract = jax.tree_util.tree_map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), template)
        if step is not None:
            return step, self._restore_step(step, abstract)
        steps = sorted(self._manager.all_steps(), reverse=True)
        if not steps:
            raise CheckpointError(f"{self.run_dir} has no checkpoint to resume from")
        for newest in steps:
            try:
                return newest, self._restore_step(newest, abstract)
            except CheckpointError as err:
                if newest == steps[-1]:
                    raise
                self._set_aside(newest, err)
        raise AssertionError("unreachable")

    def _restore_step(self, step: int, abstract: Any) -> Any:
        import orbax.checkpoint as ocp

        try:
            return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
        except Exception as err:  # orbax raises many types for damaged data
            raise CheckpointError(f"cannot restore step {step} from {self.run_dir / CHECKPOINTS}: "
                                  f"{quote_error(err)}") from None

    def _set_aside(self, step: int, err: Exception) -> None:
        """Move an unreadable step out of the way (kept for inspection), so training can
        continue from an older one and save this step again."""
        aside = self.run_dir / CORRUPT / str(step)
        self._manager.close()
        if distributed.is_main():
            aside.parent.mkdir(exist_ok=True)
            shutil.rmtree(aside, ignore_errors=True)
            shutil.move(str(self.run_dir / CHECKPOINTS / str(step)), aside)
            print(f"warning: {err}; moved it to {aside} and resuming from an older step",
                  file=sys.stderr)
        distributed.barrier(f"set aside step {step}")
        self._manager = self._open_manager()

    def close(self) -> None:
        self._manager.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def discard(self) -> None:
        """Close; a new run that saved no checkpoint leaves nothing behind: what it wrote is
        removed, and its directory too if the run created it. Call it when training failed."""
        new_and_empty = self._kept is not None and self.latest_step() is None
        if new_and_empty and distributed.is_main():
            for entry in self.run_dir.iterdir():
                if entry.name not in self._kept and entry.name != LOCK:
                    shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() \
                        else entry.unlink()
        self.close()
        if new_and_empty and distributed.is_main() and self._created:
            with contextlib.suppress(OSError):
                self.run_dir.rmdir()


@contextlib.contextmanager
def releasing(checkpointer: RunCheckpointer):
    """Hold a run open for the block: closed when it ends, discarded (see
    :meth:`RunCheckpointer.discard`) when it raises."""
    try:
        yield checkpointer
    except BaseException:
        checkpointer.discard()
        raise
    checkpointer.close()


def check_run_dir(run_dir: str | Path, resume: bool, force: bool = False) -> Path:
    """Fail before any work on a run directory that cannot be used as asked."""
    run_dir = Path(run_dir).absolute()
    if run_dir.exists() and not run_dir.is_dir():
        raise NotADirectoryError(f"{run_dir} is a file, not a run directory")
    check_writable_dir(run_dir)
    if resume and force:
        raise ConfigError("--resume continues a run and --force replaces it: pass one of them")
    holds_run = (run_dir / RUN_CONFIG).exists() or (run_dir / CHECKPOINTS).exists()
    if holds_run and not resume and not force:
        raise FileExistsError(f"{run_dir} already holds a run (--resume continues it, --force "
                              "replaces it, or choose another --out)")
    if force and run_dir.exists() and any(run_dir.iterdir()):
        check_replaceable(run_dir, RUN_KIND, "a training run", _RUN_ENTRIES)
    return run_dir


def prepare_run_dir(run_dir: str | Path, config: dict, resume: bool,
                    mutable: tuple[str, ...] = (), force: bool = False
                    ) -> tuple[Path, RunLock, frozenset[str] | None, bool]:
    """Lock a run directory and create its ``config.json``, or check it on ``resume``.

    A new run refuses a directory that already holds a run unless ``force``, which
    empties it first; a resumed run must have the same config except for the keys in
    ``mutable`` (dotted paths into nested dicts, such as ``"mlss.steps"``), whose new
    values are written back. Returns the directory, its held lock, (for a new run) the entries
    it held before, which a failed start leaves in place, and whether it was created here.
    """
    run_dir = check_run_dir(run_dir, resume, force)
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = lock_run_dir(run_dir)
    try:
        path = run_dir / RUN_CONFIG
        if force:
            for entry in run_dir.iterdir():
                if entry.name != LOCK:
                    shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() \
                        else entry.unlink()
        elif resume:
            _check_resumed_config(path, config, mutable)
        kept = None if resume else frozenset(
            () if created else (e.name for e in run_dir.iterdir() if e.name != LOCK))
        write_atomic(path, json.dumps(config, indent=2) + "\n")
        mark_dir(run_dir, RUN_KIND)
    except BaseException:
        lock.close()
        if created:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return run_dir, lock, kept, created


def _check_resumed_config(path: Path, config: dict, mutable: tuple[str, ...]) -> None:
    if not path.exists():
        raise CheckpointError(f"nothing to resume: {path} does not exist")
    try:
        saved = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is corrupt ({err})") from None
    old, new = _flatten(saved), _flatten(config)
    changed = sorted(k for k in set(old) | set(new) if k not in mutable and old.get(k) != new.get(k))
    if changed:
        key = changed[0]
        raise ConfigError(f"--resume with a different {key} ({old.get(key)!r} in {path}, "
                          f"{new.get(key)!r} now)")


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def open_run(run_dir: str | Path, config: dict, resume: bool, mutable: tuple[str, ...],
             fresh_state: Any, force: bool = False, mesh: jax.sharding.Mesh | None = None
             ) -> tuple[Path, RunCheckpointer, int, Any]:
    """Prepare ``run_dir`` and return ``(run_dir, checkpointer, start_step, state)``.

    ``state`` is ``fresh_state`` for a new run, or the newest checkpoint on resume, replicated
    over ``mesh`` when given. The checkpointer holds the run directory's lock until it is
    closed. With several processes, process 0 prepares the directory and holds the lock;
    the others check it alike, and all read the same checkpoint.
    """
    lock, kept, created = None, None, False
    if distributed.multi_process():  # every process checks before process 0 changes anything
        run_dir = check_run_dir(run_dir, resume, force)
        if resume:
            _check_resumed_config(run_dir / RUN_CONFIG, config, mutable)
        distributed.barrier("run directory checked")
    if distributed.is_main():
        run_dir, lock, kept, created = prepare_run_dir(run_dir, config, resume, mutable, force)
    distributed.barrier("run directory ready")
    checkpointer = RunCheckpointer(run_dir, lock=lock, kept=kept, created=created)
    sharding = (jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
                if mesh is not None else None)
    if resume and checkpointer.latest_step() is not None:
        try:
            start, state = checkpointer.restore(fresh_state, sharding=sharding)
        except BaseException:
            checkpointer.close()
            raise
        return run_dir, checkpointer, start, state
    return run_dir, checkpointer, 0, (distributed.replicate(fresh_state, mesh)
                                      if mesh is not None else fresh_state)
