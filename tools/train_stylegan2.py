"""Train a small StyleGAN2 on the demo world's ``shapes`` (how the bundled demo generator was made).

    python tools/train_stylegan2.py --out runs/stylegan2-shapes      # about 2 h 8 min on 2 CPU cores
    python tools/train_stylegan2.py --out runs/demo-continue --preset demo-continue \
        --init-from runs/stylegan2-shapes/network.pkl                # 48 min more: the bundled generator
    python tools/train_stylegan2.py --out runs/stylegan2-shapes --resume
    python tools/train_stylegan2.py --out runs/more --init-from assets/demo/stylegan2-shapes-32.pkl
    python tools/train_stylegan2.py --out runs/stylegan2-shapes --export assets/demo/stylegan2-shapes-32.pkl
    python tools/train_stylegan2.py --out runs/gpu --resume --time-limit 8   # in calls of 10 minutes

The run directory gets config.json, checkpoints/, samples/*.png, log.jsonl and,
at the end, network.pkl in NVIDIA's TensorFlow StyleGAN2 format (with
--snapshot-pickles, also snapshots/network-<step>.pkl at every snapshot).
"""

from __future__ import annotations

from pathlib import Path

from mlss_jax.app import cli


def main(argv: list[str] | None = None) -> int:
    from mlss_jax.demo.shapes import DEFAULT_WORLD, WORLDS
    from mlss_jax.gan.training import CONTINUING_PRESETS, GAN_PRESETS, GANTrainConfig
    from mlss_jax.runtime.distributed import DistributedConfig

    parser = cli.ArgumentParser(prog="train_stylegan2.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="run directory")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--resume", action="store_true",
                          help="continue the run in --out from its newest checkpoint")
    existing.add_argument("--force", action="store_true", help="replace a run already in --out")
    parser.add_argument("--dataset-config", default="default", choices=["default", "tiny"],
                        help="shapes config to train on (default: default)")
    parser.add_argument("--data-dir", default=None, help="tfds data directory (default: tfds's)")
    parser.add_argument("--world", type=int, default=None, choices=WORLDS,
                        help=f"shapes world version to train on (default: {DEFAULT_WORLD}; with "
                             "--resume, the run's own; docs/demo-world.md)")
    parser.add_argument("--init-from", type=Path, default=None,
                        help="start a new run from this network pickle's G/D weights "
                             "(e.g. the bundled demo pickle, to train it further)")
    parser.add_argument("--fresh-discriminator", action="store_true",
                        help="with --init-from: take only G from the pickle; D starts from random "
                             "(e.g. a wider D, --d-channel-base / --d-channel-max)")
    parser.add_argument("--export", type=Path, default=None,
                        help="also copy the final network.pkl here")
    parser.add_argument("--snapshot-pickles", action="store_true",
                        help="also write each snapshot's network as snapshots/network-<step>.pkl "
                             "(about 10 MB each at demo width), to pick the best afterwards")
    cli.add_time_limit_flag(parser)
    cli.add_config_flags(parser, GANTrainConfig, presets=GAN_PRESETS)
    cli.add_config_flags(parser, DistributedConfig)
    args = parser.parse_args(argv)
    deadline = cli.deadline_from_args(parser, args)
    config = cli.config_from_args(parser, GANTrainConfig, args, presets=GAN_PRESETS)
    cluster = cli.config_from_args(parser, DistributedConfig, args)

    from mlss_jax.app.train_gan import train_stylegan2
    from mlss_jax.runtime.distributed import is_main

    if args.fresh_discriminator and args.init_from is None:
        parser.error("--fresh-discriminator needs --init-from")
    if args.preset in CONTINUING_PRESETS and args.init_from is None and not args.resume:
        parser.error(f"--preset {args.preset} continues a trained generator: give its pickle "
                     "with --init-from")
    result = train_stylegan2(config, args.out, resume=args.resume, force=args.force,
                             dataset_config=args.dataset_config, data_dir=args.data_dir,
                             world=args.world, init_from=args.init_from,
                             fresh_discriminator=args.fresh_discriminator,
                             snapshot_pickles=args.snapshot_pickles, export=args.export,
                             cluster=cluster, deadline=deadline)
    if not is_main():
        return 0
    print(f"step {result.step}: {result.images_per_second:.1f} img/s over "
          f"{result.seconds:.0f} s this session")
    print(f"samples:  {result.run_dir / 'samples'}/")
    print(f"log:      {result.run_dir / 'log.jsonl'}")
    print(f"network:  {result.pickle_path}")
    if args.export is not None:
        print(f"exported: {args.export}")
    return 0


if __name__ == "__main__":
    cli.run(main)
