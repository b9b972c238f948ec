"""Carry a training run between machines as a few flat files, and restore it to resume.

    python tools/run_pack.py pack runs/gpu $OUT/gpu-pack       # the newest checkpoint, log, samples
    python tools/run_pack.py unpack gpu-pack runs/gpu          # then: ... --out runs/gpu --resume

A pack is a folder: pack.json (step, parts, their SHA-256), run.tar.gz.000, .001, ...
(each at most --part-mib), and the run's large outputs (network.pkl) as plain files,
which need not travel back for a resume. Works for the runs of train.py (one level's
directory) and tools/train_stylegan2.py.
"""

from __future__ import annotations

from pathlib import Path

from mlss_jax.app import cli


def main(argv: list[str] | None = None) -> int:
    parser = cli.ArgumentParser(prog="run_pack.py", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    pack = commands.add_parser("pack", help="write a run's newest checkpoint and files as a pack")
    pack.add_argument("run", type=Path, help="run directory")
    pack.add_argument("dest", type=Path, help="pack folder to write (a pack there is replaced)")
    pack.add_argument("--part-mib", type=cli.finite_float, default=16.0,
                      help="largest part, in MiB (default: 16)")
    unpack = commands.add_parser("unpack", help="restore a run directory from a pack")
    unpack.add_argument("pack", type=Path, help="pack folder")
    unpack.add_argument("run", type=Path, help="run directory to create")
    unpack.add_argument("--force", action="store_true", help="replace a run already there")
    for sub in (pack, unpack):   # subcommand errors, too, in one line
        sub.error = parser.error
    args = parser.parse_args(argv)

    from mlss_jax.runtime.run_pack import pack_run, unpack_run

    if args.command == "pack":
        if not 1 / 1024 <= args.part_mib:
            parser.error(f"--part-mib must be at least 1/1024 (1 KiB), got {args.part_mib}")
        files = pack_run(args.run, args.dest, int(args.part_mib * (1 << 20)))
        total = sum(f.stat().st_size for f in files)
        print(f"packed {args.run} into {len(files)} files, {total / (1 << 20):.1f} MiB:")
        for file in files:
            print(f"  {file}")
        return 0
    run_dir, step = unpack_run(args.pack, args.run, args.force)
    print(f"unpacked step {step} into {run_dir}/ (continue with --out {args.run} --resume)")
    return 0


if __name__ == "__main__":
    cli.run(main)
