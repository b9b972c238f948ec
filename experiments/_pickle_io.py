"""The --network / --out pair of the experiments that turn one network pickle into another."""

from __future__ import annotations

from pathlib import Path


def add_pickle_io(parser, network_help: str, out_help: str) -> None:
    parser.add_argument("--network", type=Path, required=True, help=network_help)
    parser.add_argument("--out", type=Path, required=True, help=out_help)


def check_pickle_io(parser, args) -> None:
    """One line and exit 2 before any work: a missing input, or an output that exists."""
    if not args.network.is_file():
        parser.error(f"--network: no such file: {args.network}")
    if args.out.exists():
        parser.error(f"--out: {args.out} exists")
