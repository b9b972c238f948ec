"""A trainer's run from start to end: open the run directory, run the host loop, close it, and
measure the throughput. Both trainers (``method/training.py``, ``gan/training.py``) use it.

The run is held open for a ``with`` block (:func:`training_run`): its lock is released when
the block ends, and a new run that fails before its first checkpoint leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax

from mlss_jax.runtime.loop import run_training_loop
from mlss_jax.runtime.run_state import RunCheckpointer, open_run, releasing


@dataclasses.dataclass
class Trained:
    """What one session of a run's loop did: its final state, the steps it ran and how long."""

    state: Any
    start: int     # the step the session started from (0, or the checkpoint resumed)
    step: int      # the step the run has reached
    seconds: float

    def per_second(self, items_per_step: int = 1) -> float:
        """Steps (or items, ``items_per_step`` per step) per second of this session; 0 when it
        ran no step."""
        done = self.step - self.start
        return done * items_per_step / self.seconds if done else 0.0


@dataclasses.dataclass
class TrainingRun:
    """An open run: its directory, checkpointer, the step it starts from and its state then."""

    run_dir: Path
    checkpointer: RunCheckpointer
    start: int
    state: Any

    def train(self, state: Any, steps: int, step_fn: Callable[[Any, int], tuple[Any, dict]],
              **loop: Any) -> Trained:
        """Run ``step_fn`` from ``start`` to ``steps`` in the host loop
        (:func:`~mlss_jax.runtime.loop.run_training_loop`, which takes ``loop``'s settings)."""
        t0 = time.perf_counter()
        state = run_training_loop(state=state, start=self.start, steps=steps, step_fn=step_fn,
                                  checkpointer=self.checkpointer, run_dir=self.run_dir, **loop)
        return Trained(state, self.start, max(self.start, steps), time.perf_counter() - t0)


@contextlib.contextmanager
def training_run(run_dir: str | Path, config: dict, resume: bool, mutable: tuple[str, ...],
                 fresh_state: Any, force: bool = False,
                 mesh: jax.sharding.Mesh | None = None) -> Iterator[TrainingRun]:
    """Open the run in ``run_dir`` (:func:`~mlss_jax.runtime.run_state.open_run`, which takes
    these arguments) and hold it for the block: closed when the block ends, discarded when it
    raises."""
    run_dir, checkpointer, start, state = open_run(run_dir, config, resume, mutable, fresh_state,
                                                   force, mesh)
    with releasing(checkpointer):
        yield TrainingRun(run_dir, checkpointer, start, state)
