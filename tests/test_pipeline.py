"""run.py end to end on the bundled demo generator with a tiny schedule, with TensorFlow made
unimportable: stages, skipping, failures, and the report (rendered in headless Chromium with
every image decoded)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, env_without

TINY = ["--quick", "--steps", "2", "--samples", "40", "--sweep-level", "fine", "--psis", "0,1"]
STAGES = ["convert", "train-coarse", "train-medium", "train-fine", "level-report", "evaluate",
          "control", "report"]


# the demo pipeline needs no TensorFlow (GPU machines often lack it): every run here is
# made without it (tests/blocked_imports)
WITHOUT_TENSORFLOW = env_without("tensorflow", "tensorflow_datasets")


def run_pipeline(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "run.py", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=1200, env=WITHOUT_TENSORFLOW)


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipeline") / "run"
    result = run_pipeline(*TINY, "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    return out, result


@pytest.mark.slow
def test_pipeline_runs_every_stage_and_times_it(pipeline_run):
    out, result = pipeline_run
    stages = json.loads((out / "stages.json").read_text())
    assert list(stages) == STAGES
    assert all(stages[s]["seconds"] > 0 for s in STAGES)
    summary = result.stdout[result.stdout.rindex("stage "):]
    for stage in STAGES:
        assert re.search(rf"^{stage}\s+\d+\.\d\s+ran$", summary, re.M), summary
    for path in ["generator/config.json", "levels/fine/metrics.json", "level_report/level_report.json",
                 "evaluate/sweep.json", "control/control-coarse.png", "control/compose-0-0-0.png",
                 "logs/train-fine.log", "report.md"]:
        assert (out / path).is_file(), path
    config = json.loads((out / "config.json").read_text())
    assert config["quick"] and config["pipeline"]["steps"] == 2
    assert json.loads((out / "levels/medium/metrics.json").read_text())["step"] == 2


@pytest.mark.slow
def test_report_embeds_its_images_and_has_a_markdown_twin(pipeline_run):
    out, _ = pipeline_run
    page = (out / "report.html").read_text()
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 7  # 3 level grids, 1 composition, 2 curves, 1 truncation grid
    assert "src=\"http" not in page and "not produced by this run" not in page
    for heading in ("Environment", "Timings", "Levels", "Cluster grids", "Per-level truncation",
                    "Faithfulness"):
        assert heading in page
    assert re.search(r"<td>jax</td><td>\d+\.\d+", page)
    md = (out / "report.md").read_text()
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", md)
    assert len(links) == 7 and all((out / link).is_file() for link in links)


@pytest.mark.slow
def test_report_renders_in_headless_chromium_without_missing_images(pipeline_run, tmp_path):
    out, _ = pipeline_run
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium package is required (apt-get install chromium)"
    # the page plus a probe that, once loaded, records how many images decoded
    probe = ("<script>window.addEventListener('load',()=>{const imgs=[...document.images];"
             "document.body.setAttribute('data-images',imgs.length+'/'+imgs.filter("
             "i=>i.complete&&i.naturalWidth>0).length);});</script>")
    page = (out / "report.html").read_text().replace("</body>", probe + "</body>")
    (tmp_path / "probe.html").write_text(page)
    result = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                             "--virtual-time-budget=10000", "--dump-dom",
                             (tmp_path / "probe.html").as_uri()],
                            capture_output=True, text=True, timeout=120)
    found = re.search(r'data-images="(\d+)/(\d+)"', result.stdout)
    assert found, result.stderr[-2000:]
    assert found.group(1) == found.group(2) == "7"


@pytest.mark.slow
def test_rerun_skips_finished_stages(pipeline_run):
    out, _ = pipeline_run
    result = run_pipeline(*TINY, "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    for stage in STAGES[:-1]:
        assert re.search(rf"^{stage}\s+\d+\.\d\s+done earlier$", result.stdout, re.M), result.stdout
    assert "=== train-fine ===" not in result.stdout


def test_relative_paths_mean_the_same_from_any_folder(tmp_path):
    """--out and --pkl are relative to where run.py is started, though its stages run in the
    repository; a --real that names nothing is refused before any stage runs."""
    (tmp_path / "broken.pkl").write_bytes(b"\x80\x04 not a pickle")
    run = lambda *args: subprocess.run([sys.executable, str(REPO / "run.py"), "--quick", *args],
                                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    result = run("--pkl", "broken.pkl", "--out", "here")
    assert result.returncode == 1 and "corrupt or truncated pickle" in result.stderr  # found
    assert (tmp_path / "here" / "logs" / "convert.log").is_file() and not (REPO / "here").exists()
    result = run("--out", "there", "--real", "no-such-folder/x")
    assert result.returncode == 1 and "no-such-folder/x" in result.stderr
    assert "neither an image folder nor a tfds dataset" in result.stderr
    assert not (tmp_path / "there").exists() and not (REPO / "there").exists()


def test_failing_stage_names_itself_and_its_log(tmp_path):
    broken = tmp_path / "broken.pkl"
    broken.write_bytes(b"\x80\x04 not a pickle")
    result = run_pipeline("--quick", "--pkl", str(broken), "--out", str(tmp_path / "run"))
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()
    assert len(line) == 1, result.stderr
    log = tmp_path / "run" / "logs" / "convert.log"
    # the stage's own one-line error is repeated, so the cause shows without opening the log
    assert "stage 'convert' failed (exit 1: from_pkl.py: error: corrupt or truncated pickle" in line[0]
    assert line[0].endswith(f"; log: {log}")
    assert "error" in log.read_text()
    assert not (tmp_path / "run" / "stages.json").exists()


def test_pipeline_flag_errors_are_one_line(tmp_path):
    for args, message in [(["--steps", "0"], "--steps must be positive"),
                          (["--pkl", str(tmp_path / "none.pkl")], "no network pickle at"),
                          (["--bogus"], "unrecognized arguments")]:
        result = run_pipeline(*args, "--out", str(tmp_path / "r"))
        assert result.returncode in (1, 2) and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.slow
def test_changed_settings_rerun_the_stages_they_affect(pipeline_run):
    out, _ = pipeline_run
    result = run_pipeline(*TINY, "--no-lpips", "--out", str(out))  # one evaluation setting changed
    assert result.returncode == 0, result.stderr[-2000:]
    for stage in STAGES[:-1]:
        status = "ran" if stage == "evaluate" else "done earlier"
        assert re.search(rf"^{stage}\s+\d+\.\d\s+{status}$", result.stdout, re.M), result.stdout
    assert "evaluate: its settings or inputs changed since it ran" in result.stdout
    sweep = json.loads((out / "evaluate" / "sweep.json").read_text())
    assert sweep["lpips"] is False and all("lpips" not in r for r in sweep["rows"])


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and text in (proc / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(proc.name))
        except OSError:  # it ended meanwhile
            pass
    return found


def _wait_for(condition, seconds: float, proc: subprocess.Popen) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.multiprocess
def test_stopping_run_py_stops_its_stage_and_leaves_no_process(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "run.py", "--quick", "--steps", "100000", "--out", str(out)]
    training = lambda: (out / "levels" / "coarse" / "config.json").is_file()
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        _wait_for(training, 600, proc)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert stderr.strip().splitlines()[-1] == "run.py: terminated"
    assert _processes_mentioning(str(out)) == []  # its train.py stopped with it
    stages = json.loads((out / "stages.json").read_text())
    assert "seconds" not in stages["train-coarse"]  # started, not finished: it will resume

    # SIGKILL gives run.py no chance to act: its child must still end by itself
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        _wait_for(lambda: len(_processes_mentioning(str(out))) >= 2, 600, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        deadline = time.time() + 60
        while _processes_mentioning(str(out)) and time.time() < deadline:
            time.sleep(0.2)
        assert _processes_mentioning(str(out)) == []
    finally:
        proc.kill()
        for pid in _processes_mentioning(str(out)):
            os.kill(pid, signal.SIGKILL)


# a stage command that records its arguments in its output folder and fails on its first call
# (as if interrupted), succeeding when called again
_RECORDING_STAGE = """
import json, sys
from pathlib import Path
out = Path(sys.argv[1]); out.mkdir(exist_ok=True)
calls = out / "calls.json"
seen = json.loads(calls.read_text()) if calls.exists() else []
calls.write_text(json.dumps(seen + [sys.argv[2:]]))
sys.exit(0 if seen else 1)
"""


@pytest.mark.parametrize("resume_args, expected", [(("--resume",), ["--resume"]), ((), [])])
def test_an_interrupted_resumable_stage_keeps_its_outputs_and_continues(tmp_path, resume_args,
                                                                        expected):
    from mlss_jax.app.pipeline import Stage, StageFailed, run_stages

    out, stage_out = tmp_path / "run", tmp_path / "run" / "stage"
    stage = Stage("work", [[sys.executable, "-c", _RECORDING_STAGE, str(stage_out), "--steps", "9"]],
                  clean=(stage_out,), resumable=True, resume_args=resume_args)
    with pytest.raises(StageFailed, match="stage 'work' failed"):
        run_stages([stage], out, force=False)
    run_stages([stage], out, force=False)
    # the first call's record is still there (nothing was cleaned), and the second call got
    # the stage's resume arguments
    assert json.loads((stage_out / "calls.json").read_text()) == [["--steps", "9"],
                                                                   ["--steps", "9", *expected]]
