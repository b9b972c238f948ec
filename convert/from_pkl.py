"""Convert an NVIDIA StyleGAN2 network pickle (TensorFlow or PyTorch format) to a checkpoint.

    python convert/from_pkl.py                 # the bundled demo generator -> runs/demo/generator
    python convert/from_pkl.py --pkl stylegan2-car-config-f.pkl --out checkpoints/car

The pickle is treated as untrusted: no code from it is executed.
"""

from __future__ import annotations

from pathlib import Path


from mlss_jax.app import cli
from mlss_jax.app.paths import DEMO_CHECKPOINT
from mlss_jax.demo.world import DEMO_PICKLE


MAX_PREVIEW = 1024


def main(argv: list[str] | None = None) -> int:
    parser = cli.ArgumentParser(prog="from_pkl.py", description=__doc__.splitlines()[0])
    parser.add_argument("--pkl", type=Path, default=DEMO_PICKLE,
                        help="network pickle to convert (default: the bundled demo generator, "
                             "assets/demo/stylegan2-shapes-32.pkl)")
    parser.add_argument("--out", type=Path, default=DEMO_CHECKPOINT,
                        help=f"checkpoint directory to write (default: {DEMO_CHECKPOINT})")
    parser.add_argument("--force", action="store_true", help="replace an existing --out")
    parser.add_argument("--preview", type=int, default=16, metavar="N",
                        help="samples in the preview grid (0: none; default 16)")
    parser.add_argument("--seed", type=cli.seed, default=0, help="seed of the preview latents")
    args = parser.parse_args(argv)
    if not 0 <= args.preview <= MAX_PREVIEW:   # a grid to glance at, not a sample set
        parser.error(f"--preview must be in 0..{MAX_PREVIEW}")

    from mlss_jax.weights.convert import convert_pickle_file

    report = convert_pickle_file(args.pkl, args.out, force=args.force, preview=args.preview,
                                 seed=args.seed)
    print("\n".join(report.summary_lines()))
    return 0


if __name__ == "__main__":
    cli.run(main)
