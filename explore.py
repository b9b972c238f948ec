"""Explore and control the latent space: control, t-SNE, interpolation, mixing, editing, projection.

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

from mlss_jax.app import cli, explore, explore_config


def build_parser() -> tuple[cli.ArgumentParser, dict[str, cli.ArgumentParser]]:
    """The parser, and each command's own (its flags come from the command's config)."""
    parser = cli.ArgumentParser(prog="explore.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=cli.ArgumentParser)
    commands = {}
    for name, command in explore_config.COMMANDS.items():
        summary = " ".join(command.config.__doc__.split("\n\n")[0].replace("``", "").split())
        commands[name] = sub.add_parser(name, help=command.help, description=summary)
        cli.add_config_flags(commands[name], command.config)
    return parser, commands


def main(argv: list[str] | None = None) -> int:
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    config = cli.config_from_args(commands[args.command],
                                  explore_config.COMMANDS[args.command].config, args)
    outcome = explore.run(config)
    for line in outcome.lines:
        print(line)
    for path in outcome.written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    cli.run(main)
