"""Explore and control the latent space: multi-level control, t-SNE, interpolation, mixing, editing, projection.

    python explore.py control --level fine              # one row per fine cluster, the rest fixed
    python explore.py control --clusters 3,0,7          # coarse 3, medium 0, fine 7
    python explore.py tsne                              # per-level t-SNE (the paper's Fig. 9)
    python explore.py interpolate --seeds 1,2 --space z --mode slerp
    python explore.py mix --seeds 1,2,3,4 --level coarse
    python explore.py edit --pca 0 --layers 2-5         # or --interfacegan hue=red, --direction d.npy
    python explore.py project --image photo.png         # or --seeds 0-19 (generated targets)

Defaults: the demo generator (checkpoints/demo) and its levels (checkpoints/mlss).
Every command writes PNG (GIF for interpolate) under --out and prints the paths.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mlss_jax.app import cli  # noqa: E402
from mlss_jax.app.paths import DEMO_CHECKPOINT  # noqa: E402

LEVEL_NAMES = ("coarse", "medium", "fine")


def int_list(text: str) -> list[int]:
    """'1,2,5-7' -> [1, 2, 5, 6, 7]."""
    out = []
    for part in text.split(","):
        part = part.strip()
        if re.fullmatch(r"\d+-\d+", part):
            a, b = map(int, part.split("-"))
            out.extend(range(a, b + 1))
        elif re.fullmatch(r"-?\d+", part):
            out.append(int(part))
        else:
            raise argparse.ArgumentTypeError(f"expected integers like 1,2,5-7, got {text!r}")
    return out


def float_list(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like -2,0,2, got {text!r}") from None


def layer_range(text: str) -> tuple[int, int]:
    try:
        a, _, b = text.partition("-")
        return int(a), int(b or a)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a layer range like 2-5, got {text!r}") from None


def build_parser() -> cli.ArgumentParser:
    parser = cli.ArgumentParser(prog="explore.py", description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--generator", type=Path, default=DEMO_CHECKPOINT,
                        help=f"generator checkpoint or pickle (default: {DEMO_CHECKPOINT})")
    common.add_argument("--out", type=Path, default=Path("out/explore"),
                        help="output directory (default: out/explore)")
    levels = argparse.ArgumentParser(add_help=False)
    levels.add_argument("--levels-dir", type=Path, default=Path("checkpoints/mlss"),
                        help="trained levels, one subdirectory per level (checkpoints/mlss)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=cli.ArgumentParser)

    p = sub.add_parser("control", parents=[common, levels], help="multi-level control grids")
    p.add_argument("--level", choices=LEVEL_NAMES, default="fine",
                   help="level whose clusters the rows go through (default: fine)")
    p.add_argument("--clusters", type=int_list, default=None,
                   help="compose from one cluster per level, c,m,f (instead of a grid)")
    p.add_argument("--columns", type=int, default=8, help="samples per row (8)")
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("tsne", parents=[common, levels], help="per-level t-SNE maps")
    p.add_argument("--samples", type=int, default=1000, help="points per map (1000)")
    p.add_argument("--perplexity", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("interpolate", parents=[common], help="interpolate between two seeds")
    p.add_argument("--seeds", type=int_list, default=[1, 2], help="two seeds (1,2)")
    p.add_argument("--space", choices=("z", "w"), default="z", help="interpolate in Z or W (z)")
    p.add_argument("--mode", choices=("lerp", "slerp"), default="slerp",
                   help="lerp or slerp (slerp; W takes lerp only)")
    p.add_argument("--steps", type=int, default=10, help="frames (10)")

    p = sub.add_parser("mix", parents=[common, levels], help="style mixing by level")
    p.add_argument("--seeds", type=int_list, default=[1, 2, 3, 4, 5], help="seeds (1-5)")
    p.add_argument("--level", choices=(*LEVEL_NAMES, "all"), default="all",
                   help="the level whose inputs come from the column's seed (all: one grid each)")

    p = sub.add_parser("edit", parents=[common], help="move along a direction in W")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--direction", type=Path, help="a .npy file with a [w_dim] direction")
    source.add_argument("--pca", type=int, metavar="COMPONENT",
                        help="the COMPONENT-th principal direction of W (GANSpace)")
    source.add_argument("--interfacegan", metavar="FACTOR=CLASS",
                        help="SVM boundary of a demo factor's class, e.g. hue=red (InterFaceGAN)")
    p.add_argument("--layers", type=layer_range, default=None,
                   help="inputs to edit, e.g. 2-5 (default: all)")
    p.add_argument("--strengths", type=float_list, default=[-3, -2, -1, 0, 1, 2, 3],
                   help="steps along the direction, e.g. --strengths=-2,0,2 (default -3..3 in steps of 1; "
                        "--pca: standard deviations of that component; otherwise units of W)")
    p.add_argument("--seeds", type=int_list, default=[1, 2, 3, 4], help="seeds, one row each")
    p.add_argument("--samples", type=int, default=5000,
                   help="f(z) samples for PCA or the SVM (5000)")

    p = sub.add_parser("project", parents=[common], help="find the latent of an image")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--image", type=Path, help="an image file (fitted to the resolution)")
    target.add_argument("--seeds", type=int_list, help="project generated images of these seeds "
                        "and report how well they are recovered (default: 0-19)")
    p.add_argument("--steps", type=int, default=1000, help="optimisation steps (1000)")
    p.add_argument("--w-plus", action="store_true", help="optimise ws (W+) instead of w")
    p.add_argument("--mse-weight", type=float, default=0.0, help="weight of pixel MSE (0)")
    p.add_argument("--seed", type=int, default=0)
    return parser


def load_levels(levels_dir: Path) -> list:
    from mlss_jax.method.training import load_level

    missing = [lv for lv in LEVEL_NAMES if not (levels_dir / lv).is_dir()]
    if missing:
        raise FileNotFoundError(f"no trained {missing[0]} level in {levels_dir} "
                                "(train them: python train.py --level all)")
    return [load_level(levels_dir / lv) for lv in LEVEL_NAMES]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("columns", "samples", "steps"):
        if getattr(args, name, 1) <= 0:
            parser.error(f"--{name} must be positive")
    if not args.generator.exists():
        raise FileNotFoundError(f"no generator at {args.generator} (convert one first: "
                                "python convert/from_pkl.py)")

    import numpy as np

    from mlss_jax.explore import toolkit as ex
    from mlss_jax.networks.stylegan2 import load_generator
    from mlss_jax.viz.grid import save_gif, save_image_grid

    generator = load_generator(args.generator)
    args.out.mkdir(parents=True, exist_ok=True)
    written = []

    if args.command == "control":
        levels = load_levels(args.levels_dir)
        if args.clusters is not None:
            if len(args.clusters) != 3:
                parser.error("--clusters takes one cluster per level: c,m,f")
            for lv, k, model in zip(LEVEL_NAMES, args.clusters, levels, strict=True):
                if not 0 <= k < model.config.num_clusters:
                    raise ValueError(f"{lv} cluster {k} is out of range 0..{model.config.num_clusters - 1}")
            images = ex.composed_images(generator, levels, tuple(args.clusters), args.columns, args.seed)
            name = "compose-" + "-".join(map(str, args.clusters)) + ".png"
        else:
            index = LEVEL_NAMES.index(args.level)
            images = ex.control_images(generator, levels, index, args.columns, args.seed)
            name = f"control-{args.level}.png"
        written.append(save_image_grid(images, args.out / name, ncols=args.columns))

    elif args.command == "tsne":
        from mlss_jax.viz.plots import tsne_plot

        levels = load_levels(args.levels_dir)
        embeddings = ex.tsne_embeddings(generator, levels, args.samples, args.perplexity, args.seed)
        written.append(tsne_plot(embeddings, args.out / "tsne.png"))

    elif args.command == "interpolate":
        if len(args.seeds) != 2:
            parser.error("--seeds takes two seeds, e.g. 1,2")
        if args.space == "w" and args.mode == "slerp":
            parser.error("W is not Gaussian: use --mode lerp with --space w")
        frames = ex.interpolation_images(generator, *args.seeds, args.steps, args.space, args.mode)
        stem = f"interpolate-{args.space}-{args.mode}-{args.seeds[0]}-{args.seeds[1]}"
        written.append(save_image_grid(frames, args.out / f"{stem}.png", ncols=len(frames)))
        written.append(save_gif(frames, args.out / f"{stem}.gif"))

    elif args.command == "mix":
        from mlss_jax.method.levels import LevelSplit

        split = LevelSplit.parse(None, generator.num_ws)
        if args.levels_dir.is_dir() and all((args.levels_dir / lv).is_dir() for lv in LEVEL_NAMES):
            split = load_levels(args.levels_dir)[0].split  # the split the levels were trained with
        chosen = LEVEL_NAMES if args.level == "all" else (args.level,)
        for lv in chosen:
            images = ex.mixing_images(generator, args.seeds, split.range(lv))
            written.append(save_image_grid(images, args.out / f"mix-{lv}.png",
                                           ncols=len(args.seeds) + 1))

    elif args.command == "edit":
        from mlss_jax.explore.latent_ops import layer_mask

        mask = layer_mask(generator.num_ws, args.layers)
        info: dict = {}
        if args.direction is not None:
            if not args.direction.is_file():
                raise FileNotFoundError(f"no direction file {args.direction}")
            try:
                direction = np.load(args.direction, allow_pickle=False)
            except ValueError as err:
                raise ValueError(f"cannot read {args.direction} as a .npy array ({err})") from None
            if direction.shape != (generator.w_dim,):
                raise ValueError(f"{args.direction}: direction of shape {direction.shape}, "
                                 f"expected ({generator.w_dim},)")
            name = args.direction.stem
        elif args.pca is not None:
            if not 0 <= args.pca < generator.w_dim:
                parser.error(f"--pca must be in 0..{generator.w_dim - 1}")
            direction, std = ex.pca_direction(generator, args.pca, args.samples, 0)
            name, info = f"pca{args.pca}", {"component_std": std}
        else:
            factor, _, value = args.interfacegan.partition("=")
            direction, info = ex.interfacegan_direction(generator, factor, value, args.samples, 0)
            name = f"interfacegan-{factor}-{value}"
        images = ex.edit_images(generator, args.seeds, direction, np.asarray(args.strengths), mask)
        layers = "all" if args.layers is None else f"{args.layers[0]}-{args.layers[1]}"
        written.append(save_image_grid(images, args.out / f"edit-{name}-layers-{layers}.png",
                                       ncols=len(args.strengths)))
        np.save(args.out / f"direction-{name}.npy", np.asarray(direction, np.float32))
        written.append(args.out / f"direction-{name}.npy")
        if info:
            print(json.dumps(info))

    elif args.command == "project":
        written += run_projection(args, generator)

    for path in written:
        print(f"wrote {path}")
    return 0


def run_projection(args: argparse.Namespace, generator) -> list[Path]:
    import numpy as np

    from mlss_jax.explore import toolkit as ex
    from mlss_jax.explore.projection import ProjectConfig, project
    from mlss_jax.viz.grid import save_image_grid, to_uint8

    config = ProjectConfig(num_steps=args.steps, w_plus=args.w_plus, mse_weight=args.mse_weight,
                           seed=args.seed)
    if args.image is not None:
        from mlss_jax.data.real_images import load_image_file

        targets = load_image_file(args.image, generator.resolution)[None]
        stem = args.image.stem
    else:
        seeds = args.seeds or list(range(20))
        targets = ex.synthesize(generator, generator.mapping(ex.seed_latents(generator, seeds)))
        stem = f"seeds-{seeds[0]}-{seeds[-1]}"
    snapshot_steps = tuple(int(round(i * args.steps / 8)) for i in range(8))
    result = project(generator, targets, config, snapshot_steps)
    out = args.out
    np.savez(out / f"projected-{stem}.npz", ws=result.ws, lpips=result.lpips,
             **{f"noise_{b}_{layer}": v for b, layers in result.noise.items() for layer, v in layers.items()})
    recon = to_uint8(result.images)
    paths = [out / f"projected-{stem}.npz",
             save_image_grid(np.concatenate([targets, recon]), out / f"reconstruction-{stem}.png",
                             ncols=len(targets))]
    # progress: one row per target, columns along the optimisation, the target last
    steps = np.stack([to_uint8(images) for _, images in result.snapshots], axis=1)
    strip = np.concatenate([steps, targets[:, None]], axis=1).reshape(-1, *targets.shape[1:])
    paths.append(save_image_grid(strip, out / f"progress-{stem}.png", ncols=steps.shape[1] + 1))
    report = {"targets": len(targets), "steps": args.steps, "w_plus": args.w_plus,
              "mean_lpips": float(result.lpips.mean()), "lpips": result.lpips.tolist()}
    if args.image is None and (generator.resolution, generator.img_channels) == (32, 3):
        from mlss_jax.demo.factor_classifier import load_classifier, predict
        from mlss_jax.app.paths import FACTOR_CLASSIFIER

        cls_config, cls_params = load_classifier(FACTOR_CLASSIFIER)
        before, after = predict(cls_config, cls_params, targets), predict(cls_config, cls_params, recon)
        same = {k: (before[k].argmax(-1) == after[k].argmax(-1)) for k in before}
        report["same_factors_all"] = float(np.mean(np.all(np.stack(list(same.values())), axis=0)))
        report["same_factor"] = {k: float(v.mean()) for k, v in same.items()}
    (out / f"project-{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    paths.append(out / f"project-{stem}.json")
    print(f"mean LPIPS {report['mean_lpips']:.4f}" + (
        f", all factors unchanged for {report['same_factors_all']:.0%}" if "same_factors_all" in report else ""))
    return paths


if __name__ == "__main__":
    cli.run(main)
