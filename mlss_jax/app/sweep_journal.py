"""Resuming a sweep: the sets measured so far, kept under a fingerprint of what their rows
depend on, so that a sweep stopped by Ctrl-C, SIGTERM or a crash continues when the same
command runs again, and ends with the rows an uninterrupted run gives."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from mlss_jax.runtime.files import write_atomic
from mlss_jax.runtime.loop import RunStopped


class SweepJournal:
    """The sets of a sweep measured so far, in ``<out>/.sweep-journal.jsonl``: a header with the
    sweep's fingerprint, then one line per set (its row, and the bootstrap generator's state
    after it). Run again with the same fingerprint, the sweep continues after those sets and
    ends with the rows an uninterrupted run gives; with another, it starts again.
    """

    NAME = ".sweep-journal.jsonl"

    def __init__(self, out: Path, fingerprint: str) -> None:
        self.path, self.fingerprint = Path(out) / self.NAME, fingerprint
        self.entries: list[dict] = []
        self._written = False

    def load(self) -> list[dict]:
        """The sets kept under this fingerprint: [{"row": ..., "rng": ...}] (a line cut short by
        a crash, and everything after it, is dropped)."""
        lines = self.path.read_text().splitlines() if self.path.is_file() else []
        entries = []
        try:
            if not lines or json.loads(lines[0]).get("fingerprint") != self.fingerprint:
                return []
            for line in lines[1:]:
                entry = json.loads(line)
                entries.append({"row": entry["row"], "rng": entry["rng"]})
        except (json.JSONDecodeError, KeyError, AttributeError, TypeError):
            pass
        self.entries = entries
        return entries

    def add(self, row: dict, rng_state: dict) -> None:
        """Keep one more set (its line is appended whole, after the header and the kept sets)."""
        self.entries.append({"row": row, "rng": rng_state})
        if not self._written:  # the first new set: the header and the kept sets, then append
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, "".join(json.dumps(line) + "\n" for line in
                                            [{"fingerprint": self.fingerprint}, *self.entries]))
            self._written = True
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(self.entries[-1]) + "\n")

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


class SweepInterrupted(RunStopped):
    """SIGINT or SIGTERM stopped the sweep; the sets it finished are kept in its journal."""

    def __init__(self, signum: int, done: int, total: int, out: Path) -> None:
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name} before the first set of {total}" if not done else
                         f"stopped by {name} after {done} of {total} sets; they are kept in "
                         f"{out / SweepJournal.NAME} (run the same command again to continue)")
