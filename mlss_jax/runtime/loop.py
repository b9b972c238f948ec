"""The host-side loop shared by the trainers: progress, JSONL log, NaN guard, checkpoints.

Per-step randomness lives inside the jitted step (``fold_in(seed, step)``), so the
loop only counts steps; a resumed run repeats an uninterrupted one exactly.
Metrics are fetched from the device only every ``log_every`` steps (no host
round trip per step); NaN/inf propagates through parameters, so checking then
and before every checkpoint is enough to never save a diverged state.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Callable


class TrainingDiverged(ValueError):
    """A loss became NaN or inf; the last good checkpoint is kept."""


def finite_metrics(metrics: dict, step: int, run_dir: Path) -> dict[str, float]:
    """Metrics as floats; raises :class:`TrainingDiverged` on NaN or inf."""
    values = {k: float(v) for k, v in metrics.items()}
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    if bad:
        raise TrainingDiverged(f"{bad[0]} is {values[bad[0]]} at step {step}; stopped, last good "
                               f"checkpoint kept in {run_dir / 'checkpoints'}")
    return values


def run_training_loop(*, state: Any, start: int, steps: int,
                      step_fn: Callable[[Any, int], tuple[Any, dict]], checkpointer,
                      run_dir: Path, log_every: int, snapshot_every: int,
                      on_snapshot: Callable[[Any, int], None] | None = None,
                      postfix: tuple[str, ...] = (), desc: str = "train",
                      progress: bool | None = None, items_per_step: int = 1) -> Any:
    """Run steps ``start .. steps-1``; log, check and checkpoint; return the final state."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    bar = tqdm(range(start, steps), initial=start, total=steps, desc=desc, unit="step",
               disable=(not progress) if progress is not None else None)
    with open(run_dir / "log.jsonl", "a") as log:
        for step in bar:
            state, metrics = step_fn(state, step)
            done = step + 1
            last = done == steps
            if done % log_every == 0 or done % snapshot_every == 0 or last:
                values = finite_metrics(metrics, done, run_dir)
                if done % log_every == 0 or last:
                    elapsed = time.perf_counter() - t0
                    log.write(json.dumps({"step": done, "items": done * items_per_step,
                                          "seconds": round(elapsed, 2), **values}) + "\n")
                    log.flush()
                    bar.set_postfix({k: f"{values[k]:.3f}" for k in postfix if k in values})
            if done % snapshot_every == 0 or last:
                checkpointer.save(done, state)
                if on_snapshot is not None:
                    on_snapshot(state, done)
    bar.close()
    return state
