"""The trainers' shared loop: how far the host runs ahead of the device, and how a signal
stops it."""

import os
import signal

import pytest

from mlss_jax.runtime.loop import TrainingInterrupted, run_training_loop


class _Checkpoints:
    def __init__(self) -> None:
        self.saved: list[int] = []

    def latest_step(self) -> int | None:
        return self.saved[-1] if self.saved else None

    def save(self, step: int, state) -> None:
        self.saved.append(step)


class _Pending:
    """A step's metric, like a dispatched jax array: its step counts as finished once the loop
    waits for it (or reads it)."""

    def __init__(self, step: int, finished: list[int]) -> None:
        self.step, self.finished = step, finished

    def block_until_ready(self) -> "_Pending":
        self.finished.append(self.step)
        return self

    def __float__(self) -> float:
        self.block_until_ready()
        return 0.0


def _loop(tmp_path, step_fn, checkpoints):
    return run_training_loop(state=0, start=0, steps=120, step_fn=step_fn,
                             checkpointer=checkpoints, run_dir=tmp_path, log_every=50,
                             snapshot_every=1000, progress=False)


def test_the_host_runs_at_most_one_step_ahead_of_the_device(tmp_path):
    finished: list[int] = []
    finished_at_dispatch = {}

    def step_fn(state, step):
        finished_at_dispatch[step] = set(finished)
        return state + 1, {"loss": _Pending(step, finished)}

    checkpoints = _Checkpoints()
    state = _loop(tmp_path, step_fn, checkpoints)
    assert state == 120 and checkpoints.saved == [120]
    # step k is dispatched only once step k - 2 has finished, not just at logging steps
    late = [k for k in range(2, 120) if k - 2 not in finished_at_dispatch[k]]
    assert late == []


def test_a_signal_says_so_and_stops_after_the_step_in_flight(tmp_path, capsys):
    def step_fn(state, step):
        if step == 5:
            os.kill(os.getpid(), signal.SIGTERM)
        return state + 1, {"loss": 0.0}

    with pytest.raises(TrainingInterrupted) as stopped:
        _loop(tmp_path, step_fn, _Checkpoints())
    assert stopped.value.step == 6 and stopped.value.exit_code == 128 + signal.SIGTERM
    assert "SIGTERM received: stopping after the step in flight" in capsys.readouterr().err


def test_a_second_signal_stops_at_once_without_saving(tmp_path):
    dispatched = []

    def step_fn(state, step):
        if step == 5:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)   # raises here
        dispatched.append(step)
        return state + 1, {"loss": 0.0}

    checkpoints = _Checkpoints()
    with pytest.raises(KeyboardInterrupt):
        _loop(tmp_path, step_fn, checkpoints)
    assert checkpoints.saved == [] and dispatched == list(range(5))
