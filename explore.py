"""Explore and control the latent space: multi-level control, t-SNE, interpolation, mixing, editing,
projection.

    python explore.py control --level fine              # one row per fine cluster, the rest fixed
    python explore.py control --clusters 3,0,7          # coarse 3, medium 0, fine 7
    python explore.py tsne                              # per-level t-SNE (the paper's Fig. 9)
    python explore.py interpolate --seeds 1,2 --space z --mode slerp
    python explore.py mix --seeds 1,2,3,4 --level coarse
    python explore.py edit --pca 0 --layers 2-5         # or --interfacegan hue=red, --direction d.npy
    python explore.py truncate --seeds 0-7 --psi 0.5    # one row per truncation method
    python explore.py project --image photo.png         # or --seeds 0-19 (generated targets)

Defaults: the demo generator (runs/demo/generator) and its levels (runs/demo/levels).
Every command writes PNG (GIF for interpolate) under --out and prints the paths.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from mlss_jax.app import cli, explore
from mlss_jax.app.paths import DEMO_CHECKPOINT, LEVELS_DIR
from mlss_jax.explore.latent_ops import INTERPOLATIONS
from mlss_jax.explore.projection import ProjectConfig
from mlss_jax.method.levels import LEVELS


def layer_range(text: str) -> tuple[int, int]:
    """'2-5' -> (2, 5); '3' -> (3, 3)."""
    found = re.fullmatch(r"(\d+)(?:-(\d+))?", text.strip())
    if not found:
        raise argparse.ArgumentTypeError(f"expected a layer range like 2-5, got {text!r}")
    a, b = int(found.group(1)), int(found.group(2) or found.group(1))
    if a > b:
        raise argparse.ArgumentTypeError(f"range {text} runs backwards: write {b}-{a}")
    return a, b


def _component(text: str) -> int:
    """--pca's principal component: an integer >= 0 (checked against w_dim once it is known)."""
    if not re.fullmatch(r"\d+", text.strip()):
        raise argparse.ArgumentTypeError(f"expected a component 0, 1, 2, ..., got {text!r}")
    return int(text)


def build_parser() -> cli.ArgumentParser:
    parser = cli.ArgumentParser(prog="explore.py", description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--generator", type=Path, default=DEMO_CHECKPOINT,
                        help=f"generator checkpoint or pickle (default: {DEMO_CHECKPOINT})")
    common.add_argument("--out", type=Path, default=Path("out/explore"),
                        help="output directory (default: out/explore)")
    levels = argparse.ArgumentParser(add_help=False)
    levels.add_argument("--levels-dir", type=Path, default=None,
                        help=f"trained levels, one subdirectory per level ({LEVELS_DIR})")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=cli.ArgumentParser)

    p = sub.add_parser("control", parents=[common, levels], help="multi-level control grids")
    p.add_argument("--level", choices=LEVELS, default="fine",
                   help="level whose clusters the rows go through (default: fine)")
    p.add_argument("--clusters", type=cli.int_list, default=None,
                   help="compose from one cluster per level, c,m,f (instead of a grid)")
    p.add_argument("--columns", type=cli.positive_int, default=8, help="samples per row (8)")
    p.add_argument("--seed", type=cli.seed, default=0)

    p = sub.add_parser("tsne", parents=[common, levels], help="per-level t-SNE maps")
    p.add_argument("--samples", type=cli.positive_int, default=1000, help="points per map (1000)")
    p.add_argument("--perplexity", type=cli.finite_float, default=30.0,
                   help="t-SNE's effective number of neighbours, at least 1 and below "
                        "--samples - 1 (30)")
    p.add_argument("--seed", type=cli.seed, default=0)

    p = sub.add_parser("interpolate", parents=[common], help="interpolate between two seeds")
    p.add_argument("--seeds", type=cli.int_list, default=[1, 2], help="two seeds (1,2)")
    p.add_argument("--space", choices=("z", "w"), default="z", help="interpolate in Z or W (z)")
    p.add_argument("--mode", choices=INTERPOLATIONS, default="slerp",
                   help="lerp or slerp (slerp; W takes lerp only)")
    p.add_argument("--steps", type=cli.positive_int, default=10, help="frames, at least 2 (10)")

    p = sub.add_parser("mix", parents=[common, levels], help="style mixing by level")
    p.add_argument("--seeds", type=cli.int_list, default=[1, 2, 3, 4, 5], help="seeds (1-5)")
    p.add_argument("--level", choices=(*LEVELS, "all"), default="all",
                   help="the level whose inputs come from the column's seed (all: one grid each)")

    p = sub.add_parser("edit", parents=[common], help="move along a direction in W")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--direction", type=Path, help="a .npy file with a [w_dim] direction")
    source.add_argument("--pca", type=_component, metavar="COMPONENT",
                        help="the COMPONENT-th principal direction of W (GANSpace)")
    source.add_argument("--interfacegan", metavar="FACTOR=CLASS",
                        help="SVM boundary of a demo factor's class, e.g. hue=red (InterFaceGAN)")
    p.add_argument("--layers", type=layer_range, default=None,
                   help="inputs to edit, e.g. 2-5 (default: all)")
    p.add_argument("--strengths", type=cli.float_list, default=[-3, -2, -1, 0, 1, 2, 3],
                   help="steps along the direction, e.g. --strengths=-2,0,2 (default -3..3 in steps of 1; "
                        "--pca: standard deviations of that component; otherwise units of W)")
    p.add_argument("--seeds", type=cli.int_list, default=[1, 2, 3, 4], help="seeds, one row each")
    p.add_argument("--samples", type=cli.positive_int, default=5000,
                   help="f(z) samples for PCA or the SVM (5000)")

    p = sub.add_parser("truncate", parents=[common, levels],
                       help="truncation methods side by side at one strength")
    p.add_argument("--seeds", type=cli.int_list, default=list(range(8)),
                   help="seeds, one column each (0-7)")
    p.add_argument("--psi", type=cli.finite_float, default=0.5,
                   help="strength of every method, in [0, 1] (0.5)")
    p.add_argument("--level-psi", default=None,
                   help="multi-level truncation's strength per level instead, e.g. "
                        "coarse=0.5,medium=0.8,fine=1 (a level left out: --psi)")
    p.add_argument("--methods", default="stylegan,cutoff,multimodal,multilevel",
                   help="rows, comma-separated (default: all four)")
    p.add_argument("--centres", type=Path, default=None,
                   help="centres.npz of an evaluate.py sweep (default: cluster --samples f(z) here)")
    p.add_argument("--samples", type=cli.positive_int, default=2000,
                   help="f(z) samples for the centres (2000)")
    p.add_argument("--multimodal-k", type=cli.positive_int, default=64,
                   help="multimodal clusters of W (64)")
    p.add_argument("--seed", type=cli.seed, default=0, help="seed of the centres' samples (0)")

    p = sub.add_parser("project", parents=[common], help="find the latent of an image")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--image", type=Path, help="an image file (fitted to the resolution)")
    target.add_argument("--seeds", type=cli.int_list,
                        help="project generated images of these seeds and report how well they "
                             "are recovered (default: 0-19)")
    cli.add_config_flags(p, ProjectConfig)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    options = {k: v for k, v in vars(args).items()
               if k not in ("command", "generator", "out", "levels_dir")}
    given = getattr(args, "levels_dir", None)
    ctx = explore.ExploreContext(args.generator, args.out,
                                 given or (LEVELS_DIR if "levels_dir" in args else None),
                                 levels_dir_given=given is not None)
    info = None
    if args.command == "project":
        config = cli.config_from_args(parser, ProjectConfig, args)
        written, info = explore.project(ctx, config, args.image, args.seeds)
        print(f"mean LPIPS {info['mean_lpips']:.4f}" + (
            f", all factors unchanged for {info['same_factors_all']:.0%}"
            if "same_factors_all" in info else ""))
    elif args.command == "edit":
        written, info = explore.edit(ctx, **options)
        for key, value in info.items():
            print(f"{key.replace('_', ' ')}: {value:.4g}" if isinstance(value, float) else
                  f"{key.replace('_', ' ')}: {value}")
    else:
        written = getattr(explore, args.command)(ctx, **options)
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    cli.run(main)
