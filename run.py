"""Run the whole method end to end and write a report: convert, train three levels, evaluate, control grids.

    ./run.sh                  # makes/reuses .venv from requirements.txt, then runs this
    python run.py             # the default schedule (reproduces the README's numbers)
    python run.py --quick     # a short schedule: a few minutes on 2 CPU cores
    python run.py --pkl network.pkl --real lsun/car --features vgg16

Everything goes to --out (runs/demo, where the single-step commands look by default):
generator/, levels/, level_report/,
evaluate/, control/, logs/<stage>.log, config.json, stages.json, report.html and
report.md. Finished stages are skipped when run again, unless their settings, inputs or an
earlier stage changed (--force re-runs them all).
"""

from __future__ import annotations

import sys
from pathlib import Path

from mlss_jax.app import cli
from mlss_jax.app.paths import DEMO_RUN


def main(argv: list[str] | None = None) -> int:
    from mlss_jax.app.pipeline import (PIPELINE_PRESETS, PipelineConfig, StageFailed, run_pipeline,
                                       summary_table)

    parser = cli.ArgumentParser(prog="run.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEMO_RUN,
                        help=f"run directory (default: {DEMO_RUN}, where the single-step "
                             "commands look by default)")
    parser.add_argument("--quick", action="store_true", help="the same as --preset quick")
    parser.add_argument("--force", action="store_true", help="re-run every stage")
    cli.add_config_flags(parser, PipelineConfig, presets=PIPELINE_PRESETS)
    args = parser.parse_args(argv)
    if args.quick:
        args.preset = "quick"
    config = cli.config_from_args(parser, PipelineConfig, args, presets=PIPELINE_PRESETS)
    try:
        result = run_pipeline(config, args.out, args.force, args.preset)
    except StageFailed as err:
        print(f"run.py: error: {err}", file=sys.stderr)
        return 1
    print("\n" + summary_table(result.rows))
    print(f"\nreport: {result.report_html} (and {result.report_md})")
    return 0


if __name__ == "__main__":
    cli.run(main)
