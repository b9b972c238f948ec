"""Train the demo world's factor classifier on ``shapes`` and report held-out accuracy.

    python tools/train_factor_classifier.py            # writes assets/factor_classifier/

The held-out accuracy it prints (and stores in the output's config.json) is the
number the README reports.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mlss_jax.app import cli  # noqa: E402
from mlss_jax.app.paths import FACTOR_CLASSIFIER  # noqa: E402

DEFAULT_OUT = FACTOR_CLASSIFIER


def main(argv: list[str] | None = None) -> int:
    from mlss_jax.demo.factor_classifier import ClassifierConfig

    defaults = ClassifierConfig()
    parser = cli.ArgumentParser(prog="train_factor_classifier.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory ({DEFAULT_OUT})")
    parser.add_argument("--dataset-config", default="default", choices=["default", "tiny"],
                        help="shapes config to train and test on (default: default)")
    parser.add_argument("--data-dir", default=None, help="tfds data directory (default: tfds's)")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--width", type=int, default=defaults.width)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    args = parser.parse_args(argv)
    if min(args.steps, args.batch_size, args.width) <= 0:
        parser.error("--steps, --batch-size and --width must be positive")

    from mlss_jax.demo.shapes_tfds import load_shapes
    from mlss_jax.demo.factor_classifier import accuracy, save_classifier, train_classifier

    config = ClassifierConfig(width=args.width, learning_rate=args.learning_rate,
                              batch_size=args.batch_size, steps=args.steps, seed=args.seed)
    train_images, train_labels = load_shapes("train", args.dataset_config, args.data_dir)
    test_images, test_labels = load_shapes("test", args.dataset_config, args.data_dir)
    params = train_classifier(config, train_images, train_labels)
    held_out = accuracy(config, params, test_images, test_labels)
    report = {"dataset_config": args.dataset_config, "test_examples": int(len(test_images)),
              "held_out_accuracy": held_out}
    out = save_classifier(args.out, config, params, report)
    print(f"held-out accuracy on {len(test_images)} shapes/{args.dataset_config} test images:")
    for name, value in held_out.items():
        print(f"  {name:<10} {value:.4f}")
    print(f"wrote {out}/")
    return 0


if __name__ == "__main__":
    cli.run(main)
