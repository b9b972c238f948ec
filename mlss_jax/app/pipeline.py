"""The whole method as checkpointed stages (``run.py``): convert, train the three levels,
report on the levels, sweep the truncations, draw the control grids, write the report.

Each stage runs one of the project's own commands as a subprocess, its output shown and
kept in ``<out>/logs/<stage>.log``. A stage that succeeds records itself in
``<out>/stages.json`` (seconds, command, a fingerprint of its settings and inputs) and is
skipped on the next run unless ``force`` or its fingerprint or an earlier stage changed; a level
whose training was interrupted resumes from its checkpoint. A stage that fails stops the run with
an error naming the stage and its log.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from mlss_jax.errors import ConfigError
from mlss_jax.app.cli import config_argv, config_values
from mlss_jax.app.evaluate import EvaluateConfig
from mlss_jax.app.explore_config import ControlConfig, ExploreFiles
from mlss_jax.app.level_report import LevelReportConfig
from mlss_jax.app.paths import REPO, RunLayout, require_output_dir
from mlss_jax.app.train import TrainConfig
from mlss_jax.config import Preset, check_positive
from mlss_jax.data.real_images import check_real_source
from mlss_jax.demo.world import DEMO_PICKLE, is_demo_world
from mlss_jax.method.config import MLSSConfig
from mlss_jax.method.levels import LEVELS
from mlss_jax.metrics.features import FeatureConfig
from mlss_jax.metrics.sweep_config import SweepConfig
from mlss_jax.runtime.run_state import lock_run_dir
from mlss_jax.runtime.files import NotOurs, dir_kind, mark_dir, read_json, write_atomic

PIPELINE_KIND = "pipeline"

@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """What ``run.py`` runs. The defaults reproduce the documented numbers on the demo generator.
    The evaluation's settings are evaluate.py's own (``sweep``, ``embedding``), with their flags.

    Attributes:
      pkl: the network pickle to start from (NVIDIA's TF or PyTorch format).
      real: real images for the evaluation: a tfds name, an image folder, or shapes.
      steps: training steps per level (None: train.py's default).
      train_eval_samples: samples for each level's final C_l accuracy.
      report_samples: samples per level for the NMI table (demo world only).
    """

    pkl: Path = DEMO_PICKLE
    real: str = "shapes"
    steps: int | None = None
    train_eval_samples: int = 2000
    report_samples: int = 5000
    sweep: SweepConfig = SweepConfig(num_samples=2000)
    embedding: FeatureConfig = FeatureConfig()

    def __post_init__(self) -> None:
        check_positive(self, ("steps", "train_eval_samples", "report_samples"))
        if self.sweep.num_samples is None:
            raise ConfigError("num_samples must be set for the pipeline's sweep")

    @property
    def demo_world(self) -> bool:
        """The factor classifier knows the truth only for the demo's shapes world."""
        return is_demo_world(self.real)


PIPELINE_PRESETS = {
    "default": Preset("the documented schedule (2000 steps per level, 2000 samples per psi)",
                      PipelineConfig()),
    "quick": Preset("a few minutes on 2 CPU cores; its numbers are only indicative",
                    PipelineConfig(steps=150, train_eval_samples=200, report_samples=500,
                                   sweep=SweepConfig(num_samples=300,
                                                     psis=(0.0, 0.25, 0.5, 0.75, 1.0)))),
}


CHILD_STOP_SECONDS = 60    # how long an interrupted stage may take to save its checkpoint


class StageFailed(RuntimeError):
    """A stage's command failed; the message names the stage and its log."""


@dataclasses.dataclass
class Stage:
    name: str
    commands: list[list[str]]          # project scripts with their arguments, run in turn
    run_inline: Callable[[], None] | None = None
    skip_reason: str | None = None     # why this stage does not apply to this run
    clean: tuple[Path, ...] = ()       # outputs to delete before a forced or fresh run
    resumable: bool = False            # interrupted, it continues: its outputs are kept
    resume_args: tuple[str, ...] = ("--resume",)   # ... and its commands get these
    reads: tuple[str, ...] = ()        # the stages whose outputs it reads
    inputs: tuple[Path, ...] = ()      # files outside the run it reads (the pickle)


def fingerprint(stage: Stage, done: dict) -> str:
    """What a stage's result depends on: its commands, the files it reads (size and time), and
    the fingerprints of the stages it reads. A finished stage is reused only while this holds."""
    import hashlib

    files = [[str(p), p.stat().st_size, p.stat().st_mtime_ns] if p.exists() else [str(p)]
             for p in stage.inputs]
    upstream = [done.get(name, {}).get("fingerprint") for name in stage.reads]
    text = json.dumps([stage.commands, files, upstream])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def stages(config: PipelineConfig, out: Path, write_report: Callable[[], None]) -> list[Stage]:
    python = sys.executable
    layout = RunLayout(out)
    gen, levels = layout.generator, layout.levels
    training = MLSSConfig() if config.steps is None else MLSSConfig(steps=config.steps)
    evaluation = EvaluateConfig(generator=gen, levels_dir=levels, real=config.real,
                                sweep=config.sweep, embedding=config.embedding,
                                out=layout.evaluate)
    control_files = ExploreFiles(generator=gen, levels_dir=levels, out=layout.control)
    not_demo = None if config.demo_world else "needs the demo world's factor classifier"
    trained = ("convert", *(f"train-{level}" for level in LEVELS))
    result = [Stage("convert", [[python, "convert/from_pkl.py", "--pkl", str(config.pkl), "--out",
                                 str(gen), "--force"]], clean=(gen,), inputs=(Path(config.pkl),))]
    for level in LEVELS:
        result.append(Stage(
            f"train-{level}",
            [[python, "train.py", *config_argv(TrainConfig(
                level=level, generator=gen, out=levels, eval_samples=config.train_eval_samples,
                training=training))]],
            clean=(levels / level,), resumable=True, reads=("convert",)))
    result += [
        Stage("level-report", [[python, "tools/level_report.py", *config_argv(LevelReportConfig(
            levels_dir=levels, generator=gen, samples=config.report_samples,
            out=layout.level_report))]], skip_reason=not_demo,
              clean=(layout.level_report,),
              reads=trained),
        Stage("evaluate", [[python, "evaluate.py", "--pr-curve", *config_argv(evaluation)]],
              clean=(layout.evaluate,), reads=trained, resumable=True, resume_args=(),
              inputs=tuple(p for p in (config.embedding.inception_weights,) if p is not None)),
              # evaluate.py continues its sweep by itself
        Stage("control", [[python, "explore.py", "control", *config_argv(control)]
                          for control in [ControlConfig(level=lv, files=control_files) for lv in LEVELS]
                          + [ControlConfig(clusters=(0, 0, 0), files=control_files)]],
              clean=(layout.control,), reads=trained),
        Stage("report", [], run_inline=write_report),
    ]
    return result


def read_stages(out: Path) -> dict:
    return read_json(RunLayout(out).stages, {})


def _record(out: Path, name: str, entry: dict) -> None:
    done = read_stages(out)
    done[name] = entry
    write_atomic(RunLayout(out).stages, json.dumps(done, indent=2) + "\n")


def _read_pty(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except OSError:  # EIO: the child closed its end
        return b""


def _run_logged(command: list[str], log: Path) -> int:
    """Run ``command`` in the repository; its output goes to the terminal and is appended
    to ``log``. On a terminal the child gets a pseudo-terminal, so its progress bars show.

    The child runs in its own session and dies with this process (``PARENT_ENV``). If this
    process is interrupted, the child gets the same signal once, and time to save its
    checkpoint, before the interrupt goes on.
    """
    from mlss_jax.app.cli import PARENT_ENV, Terminated

    env = {**os.environ, "PYTHONUNBUFFERED": "1", PARENT_ENV: str(os.getpid())}
    with open(log, "ab") as sink:
        if sys.stdout.isatty():
            import fcntl
            import pty
            import struct
            import termios

            parent, child = pty.openpty()
            size = shutil.get_terminal_size()  # a window size, or the child's bars have 0 columns
            fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", size.lines, size.columns, 0, 0))
            process = subprocess.Popen(command, cwd=REPO, stdout=child, stderr=child, env=env,
                                       start_new_session=True)
            os.close(child)
            read = lambda: _read_pty(parent)
        else:
            process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, env=env, start_new_session=True)
            read = lambda: process.stdout.read1(4096)
        try:
            for chunk in iter(read, b""):
                sink.write(chunk)
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
        except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM (Terminated)
            process.send_signal(signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT)
            try:
                process.wait(timeout=CHILD_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
            raise
        finally:
            if process.stdout is None:
                os.close(parent)
        return process.wait()


def run_stages(stage_list: list[Stage], out: Path, force: bool) -> list[dict]:
    """Run (or reuse) every stage in order; returns the timing rows for the summary.

    A stage finished earlier is reused only if its fingerprint (settings, inputs, upstream
    stages) is unchanged; otherwise its outputs are deleted and it runs again. A level whose
    training was interrupted under the same fingerprint resumes from its checkpoint, and an
    interrupted sweep from the sets it kept.
    """
    logs = RunLayout(out).logs
    logs.mkdir(parents=True, exist_ok=True)
    rows = []
    for stage in stage_list:
        done = read_stages(out)
        if stage.skip_reason is not None:
            rows.append({"stage": stage.name, "status": f"not run: {stage.skip_reason}", "seconds": 0.0})
            continue
        key = fingerprint(stage, done)
        before = done.get(stage.name, {})
        same = before.get("fingerprint") == key and not force
        if same and "seconds" in before and stage.run_inline is None:
            rows.append({"stage": stage.name, "status": "done earlier", "seconds": before["seconds"]})
            continue
        if before and not same and not force:
            print(f"\n{stage.name}: its settings or inputs changed since it ran; running it again",
                  flush=True)
        log = logs / f"{stage.name}.log"
        commands = [list(c) for c in stage.commands]
        if same and stage.resumable and all(p.exists() for p in stage.clean):
            commands = [c + list(stage.resume_args) for c in commands]   # interrupted: continue it
        else:
            for path in stage.clean:
                shutil.rmtree(path, ignore_errors=True)
        if stage.resumable:  # so that an interrupted run resumes only under the same settings
            _record(out, stage.name, {"fingerprint": key,
                                      "started": time.strftime("%Y-%m-%d %H:%M:%S")})
        print(f"\n=== {stage.name} ===", flush=True)
        start = time.perf_counter()
        if stage.run_inline is not None:
            try:
                stage.run_inline()
            except Exception as err:  # the report stage: any failure is reported the same way
                log.write_text(f"{type(err).__name__}: {err}\n")
                raise StageFailed(f"stage {stage.name!r} failed ({err}); log: {log}") from None
        else:
            log.write_bytes(b"")
            for command in commands:
                code = _run_logged(command, log)
                if code != 0:
                    raise StageFailed(f"stage {stage.name!r} failed (exit {code}{_last_error(log)}"
                                      f"); log: {log}")
        seconds = time.perf_counter() - start
        _record(out, stage.name, {"fingerprint": key, "seconds": round(seconds, 2),
                                  "commands": commands,
                                  "finished": time.strftime("%Y-%m-%d %H:%M:%S")})
        rows.append({"stage": stage.name, "status": "ran", "seconds": seconds})
    return rows


def _last_error(log: Path) -> str:
    """The one-line error a failed command ended with, if it printed one: ``: <line>``."""
    lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
    errors = [line for line in lines if ": error: " in line]
    return f": {errors[-1].strip()}" if errors else ""


def summary_table(rows: list[dict]) -> str:
    width = max(len(r["stage"]) for r in rows)
    lines = [f"{'stage':<{width}}  {'seconds':>8}  status"]
    lines += [f"{r['stage']:<{width}}  {r['seconds']:>8.1f}  {r['status']}" for r in rows]
    lines.append(f"{'total':<{width}}  {sum(r['seconds'] for r in rows):>8.1f}")
    return "\n".join(lines)


@dataclasses.dataclass
class PipelineResult:
    """The stages' timing rows and the report's paths."""

    rows: list[dict]
    report_html: Path
    report_md: Path


def check_pipeline_dir(out: Path) -> None:
    """The pipeline deletes a stage's outputs before running it again, so it works only in an
    empty folder or one it made (marked; or, from before marks, holding its names only)."""
    if not out.is_dir() or dir_kind(out) == PIPELINE_KIND:
        return
    layout = RunLayout(out)
    own = {p.name for p in (layout.generator, layout.levels, layout.level_report,
                            layout.evaluate, layout.control, layout.logs, layout.stages)}
    own |= {"config.json", "report.html", "report.md", ".lock", ".mlss-jax"}
    strangers = sorted(e.name for e in out.iterdir() if e.name not in own)
    if strangers or dir_kind(out) is not None:
        what = f"holds {strangers[0]!r}" if strangers else f"holds a {dir_kind(out)}"
        raise NotOurs(f"--out {out} {what}, which run.py did not write; choose an empty or "
                      "new folder")


def run_pipeline(config: PipelineConfig, out: Path, force: bool = False,
                 preset: str | None = None) -> PipelineResult:
    """Every stage of ``config`` into the run directory ``out``, then the report.

    Paths are made absolute first: the stages run in the repository, wherever this was started.
    """
    if not Path(config.pkl).is_file():
        raise FileNotFoundError(f"no network pickle at {config.pkl}")
    out = Path(out).absolute()
    weights = config.embedding.inception_weights
    config = dataclasses.replace(
        config, pkl=Path(config.pkl).absolute(),
        real=str(Path(config.real).absolute()) if Path(config.real).exists() else config.real,
        embedding=dataclasses.replace(config.embedding, inception_weights=None if weights is None
                                      else Path(weights).absolute()))
    require_output_dir(out)
    check_pipeline_dir(out)
    check_real_source(config.real)   # read only by the evaluation, an hour in: check it now
    weights = config.embedding.inception_weights
    if weights is not None and not Path(weights).is_file():
        raise FileNotFoundError(f"no Inception weights file {weights}")
    out.mkdir(parents=True, exist_ok=True)
    lock = lock_run_dir(out)   # one pipeline per run directory at a time
    mark_dir(out, PIPELINE_KIND)
    saved = {"pipeline": config_values(config),
             "preset": preset, "quick": preset == "quick"}
    (out / "config.json").write_text(json.dumps(saved, indent=2) + "\n")

    def write_report() -> None:
        from mlss_jax.app.report import write_report as write

        for path in write(out, saved, LEVELS):
            print(f"wrote {path}")

    try:
        rows = run_stages(stages(config, out, write_report), out, force)
    finally:
        lock.close()
    return PipelineResult(rows, out / "report.html", out / "report.md")
