"""Bundle trained levels in an inference-only form (the explorer's default levels ship this way).

    python tools/bundle_levels.py runs/demo/levels              # -> assets/demo-levels
    python tools/bundle_levels.py LEVELS_DIR --generator G --out OUT

Keeps each level's mixture, mapper and classifier (no critic, no optimiser state) and records
the generator's fingerprint, so the bundle is refused for any other generator. Re-make it
whenever the demo generator is replaced (after retraining the levels for the new one).
"""

from __future__ import annotations

from pathlib import Path

from mlss_jax.app import cli
from mlss_jax.demo.world import DEMO_LEVELS, DEMO_PICKLE


def main(argv: list[str] | None = None) -> int:
    parser = cli.ArgumentParser(prog="bundle_levels.py", description=__doc__.splitlines()[0])
    parser.add_argument("levels_dir", type=Path, help="train.py's levels, one subdirectory each")
    parser.add_argument("--generator", type=Path, default=DEMO_PICKLE,
                        help=f"the generator they were trained for ({DEMO_PICKLE.name})")
    parser.add_argument("--out", type=Path, default=DEMO_LEVELS, help=f"bundle folder ({DEMO_LEVELS})")
    args = parser.parse_args(argv)

    from mlss_jax.method.bundle import make_bundle
    from mlss_jax.weights.load import load_generator

    index = make_bundle(args.levels_dir, load_generator(args.generator), args.out)
    size = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"wrote {index.parent} ({size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    cli.run(main)
