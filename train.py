"""Train the multi-level latent space structuring of a frozen StyleGAN2 generator, one level at a time.

    python train.py --level fine                 # on the converted demo generator (runs/demo/generator)
    python train.py --level all                  # coarse, medium, fine in turn
    python train.py --level fine --resume        # continue a killed run
    python train.py --level all --resume --time-limit 8   # in calls of 10 minutes

Each level gets a directory <out>/<level>/ with config.json, checkpoints/,
previews/clusters-*.png (one row per cluster, other levels fixed), log.jsonl
and metrics.json (how often C_l recovers the cluster on fresh samples).
"""

from __future__ import annotations

from mlss_jax.app import cli


def main(argv: list[str] | None = None) -> int:
    from mlss_jax.app.train import TrainConfig, train_levels
    from mlss_jax.runtime.distributed import DistributedConfig

    parser = cli.ArgumentParser(prog="train.py", description=__doc__.splitlines()[0])
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--resume", action="store_true",
                          help="continue the runs in --out (a level without one starts it)")
    existing.add_argument("--force", action="store_true", help="replace the runs already in --out")
    cli.add_time_limit_flag(parser)
    cli.add_config_flags(parser, TrainConfig)
    cli.add_config_flags(parser, DistributedConfig)
    args = parser.parse_args(argv)
    deadline = cli.deadline_from_args(parser, args)
    config = cli.config_from_args(parser, TrainConfig, args)
    cluster = cli.config_from_args(parser, DistributedConfig, args)
    for level in train_levels(config, args.resume, args.force, cluster, deadline):
        accuracy = level.classifier_accuracy
        print(f"{level.level}: step {level.step}, {level.steps_per_second:.2f} steps/s"
              + (f", C_{level.level} accuracy on {config.eval_samples} fresh samples {accuracy:.3f}"
                 if accuracy is not None else ""))
        print(f"  checkpoint: {level.run_dir}/")
        print(f"  preview:    {level.preview}")
    return 0


if __name__ == "__main__":
    cli.run(main)
