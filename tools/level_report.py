"""What each trained level's clusters capture in the demo world (the NMI table of docs/results.md).

    python tools/level_report.py                 # levels in runs/demo/levels, demo generator

For each level: C_l's accuracy at recovering the cluster k on fresh samples, and
the normalised mutual information between k and every ground-truth factor, read
off the generated images by the shipped factor classifier. Samples draw k
uniformly and the other levels' latents at random, so a level whose clusters
control shape shows high NMI with shape and none with hue. Writes
level_report.json and level_report.md to --out (mlss_jax/app/level_report.py).
"""

from __future__ import annotations

from pathlib import Path

from mlss_jax.app import cli
from mlss_jax.app.paths import DEMO_CHECKPOINT, LEVELS_DIR
from mlss_jax.demo.world import FACTOR_CLASSIFIER


def main(argv: list[str] | None = None) -> int:
    parser = cli.ArgumentParser(prog="level_report.py", description=__doc__.splitlines()[0])
    parser.add_argument("--levels-dir", type=Path, default=LEVELS_DIR,
                        help=f"directory with one level run per subdirectory ({LEVELS_DIR})")
    parser.add_argument("--generator", type=Path, default=DEMO_CHECKPOINT,
                        help=f"generator checkpoint or pickle ({DEMO_CHECKPOINT})")
    parser.add_argument("--samples", type=cli.positive_int, default=5000,
                        help="samples per level (5000)")
    parser.add_argument("--seed", type=cli.seed, default=1, help="seed of the samples (1)")
    parser.add_argument("--classifier", type=Path, default=FACTOR_CLASSIFIER,
                        help="factor classifier directory (default: the shipped one)")
    parser.add_argument("--out", type=Path, default=Path("out/level_report"),
                        help="output directory (out/level_report)")
    args = parser.parse_args(argv)

    from mlss_jax.app.level_report import write_level_report

    lines, written = write_level_report(args.levels_dir, args.generator, args.samples, args.seed,
                                        args.classifier, args.out)
    print("\n".join(lines) + "\n")
    for path in written.values():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    cli.run(main)
