"""Run the whole method end to end and write a report: convert, train three levels, evaluate, control grids.

    ./run.sh                  # makes/reuses .venv from requirements.txt, then runs this
    python run.py             # the default schedule (reproduces the README's numbers)
    python run.py --quick     # a short schedule: a few minutes on 2 CPU cores
    python run.py --pkl network.pkl --real lsun/car --features vgg16

Everything goes to --out (runs/pipeline): generator/, levels/, level_report/,
evaluate/, control/, logs/<stage>.log, stages.json, report.html and report.md.
Finished stages are skipped when run again (--force re-runs them all).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mlss_jax.app import cli  # noqa: E402
from mlss_jax.app.paths import DEMO_PICKLE  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    from mlss_jax.metrics.features import FEATURE_NETWORKS
    from mlss_jax.app.pipeline import (LEVELS, PipelineConfig, StageFailed, run_stages, stages,
                                       summary_table)

    parser = cli.ArgumentParser(prog="run.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/pipeline"),
                        help="run directory (default: runs/pipeline)")
    parser.add_argument("--quick", action="store_true",
                        help="short schedule (150 steps per level, 300 samples per psi)")
    parser.add_argument("--force", action="store_true", help="re-run every stage")
    parser.add_argument("--pkl", default=None, help=f"network pickle (default: {DEMO_PICKLE})")
    parser.add_argument("--real", default=None,
                        help="real images: tfds name, image folder or shapes (default: shapes)")
    parser.add_argument("--features", choices=FEATURE_NETWORKS, default=None,
                        help="feature network of the evaluation (default: demo)")
    parser.add_argument("--steps", type=int, default=None, help="training steps per level")
    parser.add_argument("--samples", type=int, default=None,
                        help="samples per psi of the sweep (default 2000; quick 300)")
    parser.add_argument("--psis", default=None, help="psi values of the sweep, e.g. 0,0.5,1")
    args = parser.parse_args(argv)
    for name in ("steps", "samples"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            parser.error(f"--{name} must be positive")
    overrides = {"pkl": args.pkl, "real": args.real, "features": args.features,
                 "steps": args.steps, "eval_samples": args.samples, "psis": args.psis}
    if args.quick:
        config = PipelineConfig.quick(**overrides)
    else:
        config = PipelineConfig(**{k: v for k, v in overrides.items() if v is not None})
    if not Path(config.pkl).is_file():
        raise FileNotFoundError(f"no network pickle at {config.pkl}")
    if args.features == "inception":
        parser.error("--features inception needs its weights file: run evaluate.py directly")

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    saved = {"pipeline": dataclasses.asdict(config), "quick": args.quick}
    (out / "config.json").write_text(json.dumps(saved, indent=2) + "\n")

    def write_report() -> None:
        from mlss_jax.app.report import write_report as write

        for path in write(out, saved, LEVELS):
            print(f"wrote {path}")

    try:
        rows = run_stages(stages(config, out, write_report), out, args.force)
    except StageFailed as err:
        print(f"run.py: error: {err}", file=sys.stderr)
        return 1
    print("\n" + summary_table(rows))
    print(f"\nreport: {out / 'report.html'} (and {out / 'report.md'})")
    return 0


if __name__ == "__main__":
    cli.run(main)
