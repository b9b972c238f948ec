"""Train the demo world's factor classifier on ``shapes`` and report held-out accuracy.

    python tools/train_factor_classifier.py              # writes assets/factor_classifier-world2/
    python tools/train_factor_classifier.py --world 1    # writes assets/factor_classifier-world1/

The held-out accuracy it prints (and stores in the output's config.json) is the
number docs/demo-world.md reports.
"""

from __future__ import annotations

from pathlib import Path


from mlss_jax.app import cli
from mlss_jax.demo.world import FACTOR_CLASSIFIERS


def main(argv: list[str] | None = None) -> int:
    from mlss_jax.demo.factor_classifier import ClassifierConfig

    parser = cli.ArgumentParser(prog="train_factor_classifier.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="output directory (default: the bundled classifier of --world, "
                             "assets/factor_classifier-world<N>)")
    parser.add_argument("--dataset-config", default="default", choices=["default", "tiny"],
                        help="shapes config to train and test on (default: default)")
    parser.add_argument("--data-dir", default=None, help="tfds data directory (default: tfds's)")
    cli.add_config_flags(parser, ClassifierConfig)
    args = parser.parse_args(argv)
    config = cli.config_from_args(parser, ClassifierConfig, args)
    out = FACTOR_CLASSIFIERS[config.world] if args.out is None else args.out
    from mlss_jax.runtime.files import check_writable_dir

    check_writable_dir(out)   # before the data is rendered and the classifier trained

    from mlss_jax.demo.dataset import load_shapes
    from mlss_jax.demo.factor_classifier import accuracy, save_classifier, train_classifier

    train_images, train_labels = load_shapes("train", args.dataset_config, args.data_dir,
                                             world=config.world)
    test_images, test_labels = load_shapes("test", args.dataset_config, args.data_dir,
                                           world=config.world)
    params = train_classifier(config, train_images, train_labels)
    held_out = accuracy(config, params, test_images, test_labels)
    report = {"dataset_config": args.dataset_config, "world": config.world,
              "test_examples": int(len(test_images)), "held_out_accuracy": held_out}
    out = save_classifier(out, config, params, report)
    print(f"held-out accuracy on {len(test_images)} shapes/{args.dataset_config} test images "
          f"(world {config.world}):")
    for name, value in held_out.items():
        print(f"  {name:<10} {value:.4f}")
    print(f"wrote {out}/")
    return 0


if __name__ == "__main__":
    cli.run(main)
