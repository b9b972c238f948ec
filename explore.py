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
    python explore.py serve                             # the explorer: http://127.0.0.1:8765
    python explore.py render --state 'c=3,0,7&p=0.5,0.8,1'   # the explorer's image as a PNG

Defaults: the demo generator (runs/demo/generator) and its levels (runs/demo/levels).
Every command writes PNG (GIF for interpolate) under --out and prints the paths.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from mlss_jax.app import cli, explore
from mlss_jax.errors import ConfigError
from mlss_jax.app.paths import DEMO_CHECKPOINT, LEVELS_DIR
from mlss_jax.explore.latent_ops import INTERPOLATIONS
from mlss_jax.explore.projection import ProjectConfig
from mlss_jax.app.serve import DEFAULT_PORT, ServeConfig, serve
from mlss_jax.method.levels import LEVELS
from mlss_jax.method.truncation import parse_level_psis


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


def _psi(text: str) -> float | dict[str, float]:
    """--psi: one strength (0.5), or one per level (coarse=0.5,medium=0.8,fine=1)."""
    if "=" not in text:
        return cli.finite_float(text)
    try:
        return parse_level_psis(text, LEVELS)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _port(text: str) -> int:
    value = cli.positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"ports lie in 1..65535, got {text!r}")
    return value


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
    p.add_argument("--psi", type=_psi, default=0.5,
                   help="strength of every method, in [0, 1] (0.5); or multi-level truncation's "
                        "strength per level, e.g. coarse=0.5,medium=0.8,fine=1 (a level left "
                        "out: 1, untruncated; --methods then defaults to multilevel)")
    p.add_argument("--level-psi", default=None,
                   help="multi-level truncation's strength per level instead, e.g. "
                        "coarse=0.5,medium=0.8,fine=1 (a level left out: --psi)")
    p.add_argument("--methods", default=None,
                   help="rows, comma-separated (default: all four; with --psi per level, "
                        "multilevel)")
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

    explorer = argparse.ArgumentParser(add_help=False)
    explorer.add_argument("--generator", type=Path, default=None,
                          help="generator checkpoint or pickle (default: the bundled demo)")
    explorer.add_argument("--levels-dir", type=Path, default=None,
                          help="trained levels (train.py's folder, or a bundle from "
                               "tools/bundle_levels.py; default: the demo's bundled levels)")
    p = sub.add_parser("serve", parents=[explorer],
                       help="the explorer in a browser: clusters, per-level truncation, edits")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (127.0.0.1: this machine only)")
    p.add_argument("--port", type=_port, default=None,
                   help=f"port (default {DEFAULT_PORT}, or a free one when that is taken)")
    p = sub.add_parser("render", parents=[explorer],
                       help="the explorer's image of a state (its URL query) as a PNG")
    p.add_argument("--state", required=True,
                   help="the page's state, e.g. 'c=3,0,7&s=1,2,3&z=0&p=0.5,0.8,1' (the page's "
                        "Copy command gives it)")
    p.add_argument("--out", type=Path, default=Path("out/explore"),
                   help="output directory (default: out/explore)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        try:
            config = ServeConfig(host=args.host, port=args.port or DEFAULT_PORT)
        except ConfigError as err:
            parser.error(cli.flag_message(str(err), ServeConfig))
        return serve(args.generator, args.levels_dir, config, port_given=args.port is not None)
    if args.command == "render":
        for path in explore.render(args.out, args.state, args.generator, args.levels_dir):
            print(f"wrote {path}")
        return 0
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
