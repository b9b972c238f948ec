"""benchmarks/run_all.py: parts run in order within a budget, and the summary tells what ran."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.slow
def test_a_budget_keeps_what_finished_and_stops_and_skips_the_rest(tmp_path):
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run_all.py"), "--out", str(out), "--small",
         "--minutes", "0.75", "--only", "precision_recall", "paper_scale", "level_training"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]   # not every part finished
    summary = json.loads((out / "summary.json").read_text())
    assert summary["platform"] == "cpu" and summary["jax"]
    status = {row["part"]: row["status"] for row in summary["parts"]}
    # the small paper_scale run takes minutes on a CPU, far beyond what is left of 45 s
    assert status == {"precision_recall": "ok", "paper_scale": "stopped: the budget was spent",
                      "level_training": "skipped: the budget was spent"}
    rows = json.loads((out / "precision_recall.json").read_text())
    assert rows[0]["n"] == 2000 and rows[0]["identical"] is True
    assert (out / "paper_scale.log").read_text().startswith("$ ")
    assert not (out / "paper_scale.json").exists() and not (out / "level_training.log").exists()


def test_an_unknown_part_is_refused_before_any_work(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "run_all.py"),
                           "--out", str(tmp_path / "bench"), "--only", "fid"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "invalid choice: 'fid'" in proc.stderr
    assert not (tmp_path / "bench").exists()
