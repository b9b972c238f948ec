"""Compare StyleGAN truncation with multi-level truncation (precision/recall, FID, faithfulness).

    python evaluate.py --pr-curve            # demo generator, its trained levels, shapes as real images
    python evaluate.py --pr-curve --generator checkpoints/car --levels-dir checkpoints/mlss-car \
        --real lsun/car --features vgg16 --samples 10000

Writes to --out: sweep.json and sweep.csv (one row per method and psi),
pr_curve.png, precision_fid.png, and truncation_grid.png (rows: untruncated,
then each method of --methods at a few psi, same latents) and centres.npz
(the clustering methods' centres, for --centres), listed in
manifest.json. Faithfulness: LPIPS (VGG16) between truncated and untruncated
images for any generator (--lpips, default on); on the demo world also the share
of samples whose ground-truth factors truncation leaves unchanged.
"""

from __future__ import annotations

from mlss_jax.app import cli


def main(argv: list[str] | None = None) -> int:
    from mlss_jax.app.evaluate import EvaluateConfig, evaluate, summary_lines
    from mlss_jax.runtime.distributed import DistributedConfig

    parser = cli.ArgumentParser(prog="evaluate.py", description=__doc__.splitlines()[0])
    parser.add_argument("--pr-curve", action="store_true",
                        help="run the psi sweep and write the curves (the only mode so far)")
    cli.add_config_flags(parser, EvaluateConfig)
    cli.add_config_flags(parser, DistributedConfig)
    args = parser.parse_args(argv)
    if not args.pr_curve:
        parser.error("nothing to do: pass --pr-curve")
    config = cli.config_from_args(parser, EvaluateConfig, args)
    result = evaluate(config, cluster=cli.config_from_args(parser, DistributedConfig, args))
    if result is None:  # not process 0 of a multi-process run: process 0 reports
        return 0
    print("\n".join(summary_lines(result)))
    for path in result.outputs.values():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    cli.run(main)
