"""The host-side loop shared by the trainers: progress, JSONL log, NaN guard, checkpoints, and
stopping cleanly on SIGINT or SIGTERM.

Per-step randomness lives inside the jitted step (``fold_in(seed, step)``), so the
loop only counts steps; a resumed run repeats an uninterrupted one exactly.
Metrics are fetched from the device only every ``log_every`` steps (no copy to the
host per step); NaN/inf propagates through parameters, so checking then
and before every checkpoint is enough to never save a diverged state.

JAX dispatches steps asynchronously, so the loop waits for each step's metrics after
dispatching the next one: the host runs at most one step ahead of the device. Otherwise it
would run up to ``log_every`` steps ahead, and a stop or a deadline would only take effect
once all of them had run.

A signal only sets a flag (an exception raised inside XLA's callbacks would be lost) and says
so on stderr; the loop sees it after the step in flight, saves that step and raises
:class:`TrainingInterrupted`. A second signal stops at once, without saving. A ``deadline``
(``--time-limit``) stops the same way with :class:`TrainingPaused`, so that a long run fits in
calls of bounded length (a batch job's time slot, a lent accelerator's ten minutes) and
resumes exactly. With several processes, they agree on stopping every ``log_every`` steps (a
signal to any of them stops all at the same step), and only process 0 logs, shows progress
and writes snapshots.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import jax

from mlss_jax.errors import ConfigError
from mlss_jax.runtime import distributed
from mlss_jax.runtime.files import write_atomic
from mlss_jax.runtime.memory import OutOfMemory, names_setting

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingDiverged(ConfigError):
    """A loss became NaN or inf (settings to change, such as the learning rate); no checkpoint of
    the diverged state is written."""


class RunStopped(Exception):
    """A run stopped before its end with its work so far kept: the command ends with this
    message and ``exit_code``, and the same command continues it."""

    exit_code: int


class TrainingInterrupted(RunStopped):
    """SIGINT or SIGTERM stopped training; the last finished step was saved first."""

    def __init__(self, signum: int, step: int, run_dir: Path) -> None:
        self.signum, self.step, self.run_dir = signum, step, run_dir
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name} at step {step}; checkpoint saved in {run_dir} "
                         "(continue with --resume)")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class TrainingPaused(RunStopped):
    """The run's time limit passed; the last finished step was saved. ``state`` is that step's
    state, for the trainer to write its outputs from; ``outputs`` lists them for the message."""

    # sysexits.h's EX_TEMPFAIL ("try again later"): the run is fine but not finished, so a
    # shell loop can tell it from success and from an error
    exit_code = 75

    def __init__(self, step: int, steps: int, run_dir: Path, state: Any = None,
                 outputs: tuple[Path, ...] = ()) -> None:
        self.step, self.steps, self.run_dir, self.state = step, steps, run_dir, state
        self.outputs = outputs
        written = "".join(f"; wrote {path}" for path in outputs)
        super().__init__(f"time limit reached at step {step} of {steps}; checkpoint saved in "
                         f"{run_dir}{written} (continue with --resume)")


@contextlib.contextmanager
def stop_requests() -> Iterator[list[int]]:
    """While open, SIGINT and SIGTERM append their number to the yielded list (and say so on
    stderr) instead of raising; a second one raises ``KeyboardInterrupt`` at once. Elsewhere
    than the main thread (signals cannot be caught there) the list stays empty."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def request_stop(signum: int, _frame) -> None:
        if received:
            raise KeyboardInterrupt
        received.append(signum)
        print(f"{signal.Signals(signum).name} received: stopping after the step in flight "
              "(a second one stops at once, without saving)", file=sys.stderr, flush=True)

    previous = {s: signal.signal(s, request_stop) for s in STOP_SIGNALS}
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def finite_metrics(metrics: dict, step: int, run_dir: Path, last_saved: int | None) -> dict[str, float]:
    """Metrics as floats; raises :class:`TrainingDiverged` on NaN or inf."""
    values = {k: float(v) for k, v in metrics.items()}
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    if bad:
        kept = (f"the last good checkpoint (step {last_saved}) is kept in "
                f"{run_dir / 'checkpoints'}; lower the learning rate and --resume"
                if last_saved is not None else
                "nothing was saved; start again with other settings")
        raise TrainingDiverged(f"{bad[0]} is {values[bad[0]]} at step {step}; stopped, {kept}")
    return values


def trim_log(log_path: Path, step: int) -> None:
    """Drop log lines after ``step``, so that a resumed run's log continues where its checkpoint
    was instead of repeating steps."""
    if not log_path.is_file():
        return
    kept = []
    for line in log_path.read_text(errors="replace").splitlines(keepends=True):
        try:
            if line.strip() and json.loads(line)["step"] <= step:
                kept.append(line if line.endswith("\n") else line + "\n")
        except (json.JSONDecodeError, KeyError, TypeError):
            break   # a line cut short by a crash: the log ends before it
    write_atomic(log_path, "".join(kept))


def run_training_loop(*, state: Any, start: int, steps: int,
                      step_fn: Callable[[Any, int], tuple[Any, dict]], checkpointer,
                      run_dir: Path, log_every: int, snapshot_every: int,
                      on_snapshot: Callable[[Any, int], None] | None = None,
                      postfix: tuple[str, ...] = (), desc: str = "train",
                      progress: bool | None = None, items_per_step: int = 1,
                      deadline: float | None = None, work: str = "training") -> Any:
    """Run steps ``start .. steps-1``; log, check and checkpoint; return the final state.

    ``deadline``: a ``time.monotonic()`` time after which the loop saves the step it finished
    and raises :class:`TrainingPaused` (checked after every step; with several processes, at
    logging steps). A device out of memory raises :class:`~mlss_jax.runtime.memory.OutOfMemory`
    naming ``work`` and the batch size (``items_per_step``).
    """
    try:
        with names_setting(work, "batch_size", items_per_step):
            return _run_steps(state, start, steps, step_fn, checkpointer, run_dir, log_every,
                              snapshot_every, on_snapshot, postfix, desc, progress,
                              items_per_step, deadline)
    except OutOfMemory as err:
        if checkpointer.latest_step() is None:   # and the trainer removes what it wrote
            err.advice = " (nothing was saved)"
        raise


def _run_steps(state, start, steps, step_fn, checkpointer, run_dir, log_every, snapshot_every,
               on_snapshot, postfix, desc, progress, items_per_step, deadline):
    from tqdm import tqdm

    main, shared = distributed.is_main(), distributed.multi_process()
    log_path = run_dir / "log.jsonl"
    if main:
        trim_log(log_path, start)
    last_saved = checkpointer.latest_step()
    t0 = time.perf_counter()
    hide = True if not main else None if progress is None else not progress
    bar = tqdm(range(start, steps), initial=start, total=steps, desc=desc, unit="step",
               disable=hide)
    with stop_requests() as stop, open(log_path if main else os.devnull, "a") as log:
        previous_metrics = None
        for step in bar:
            state, metrics = step_fn(state, step)
            jax.block_until_ready(previous_metrics)  # the host stays one step ahead
            previous_metrics = metrics
            done = step + 1
            last = done == steps
            out_of_time = deadline is not None and not last and time.monotonic() >= deadline
            asked = bool(stop) or out_of_time
            # several processes must stop at the same step: they agree at logging steps
            stopping = (distributed.any_process(asked) if done % log_every == 0 or last
                        else False) if shared else asked
            snapshot = done % snapshot_every == 0 or last or stopping
            if done % log_every == 0 or snapshot:
                values = finite_metrics(metrics, done, run_dir, last_saved)
                if done % log_every == 0 or last:
                    elapsed = time.perf_counter() - t0
                    log.write(json.dumps({"step": done, "items": done * items_per_step,
                                          "seconds": round(elapsed, 2), **values}) + "\n")
                    log.flush()
                    bar.set_postfix({k: f"{values[k]:.3f}" for k in postfix if k in values})
            if snapshot:
                checkpointer.save(done, state)
                last_saved = done
                interrupted = stopping and (stop or deadline is None)  # a signal, here or elsewhere
                if interrupted:
                    bar.close()
                    raise TrainingInterrupted(stop[0] if stop else signal.SIGTERM, done, run_dir)
                if on_snapshot is not None and main:
                    on_snapshot(state, done)
                if stopping:   # a planned stop: its snapshot is written, like at the end
                    bar.close()
                    raise TrainingPaused(done, steps, run_dir, state)
    bar.close()
    return state
