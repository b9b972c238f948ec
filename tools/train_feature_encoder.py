"""Train the projected discriminator's feature network: a denoising autoencoder on ``shapes`` images.

    python tools/train_feature_encoder.py --world 2 --out runs/encoder-w2   # about 10 minutes on 2 CPU cores
    python tools/train_stylegan2.py --world 2 --out runs/projected \
        --discriminator projected --feature-encoder runs/encoder-w2

Self-supervised: it reads the training images only, never a factor label (nor the factor
classifier). The output gets config.json (with the held-out reconstruction error) and
params.msgpack (the encoder's weights); mlss_jax/gan/feature_encoder.py says what it learns.
"""

from __future__ import annotations

from pathlib import Path

from mlss_jax.app import cli


def main(argv: list[str] | None = None) -> int:
    from mlss_jax.gan.feature_encoder import EncoderConfig

    parser = cli.ArgumentParser(prog="train_feature_encoder.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--dataset-config", default="default", choices=["default", "tiny"],
                        help="shapes config to train and test on (default: default)")
    parser.add_argument("--data-dir", default=None, help="tfds data directory (default: tfds's)")
    cli.add_config_flags(parser, EncoderConfig)
    args = parser.parse_args(argv)
    config = cli.config_from_args(parser, EncoderConfig, args)

    from mlss_jax.gan.feature_encoder import train_feature_encoder

    report = train_feature_encoder(config, args.out, args.dataset_config, args.data_dir)
    print(f"training loss {report['first_train_loss']:.4f} -> {report['last_train_loss']:.4f}")
    print(f"reconstruction error (mean squared, pixels in [-1, 1]) on {report['test_images']} "
          f"held-out images: {report['test_mse']:.4f} "
          f"(the mean image's: {report['test_mse_of_mean_image']:.4f})")
    print(f"wrote {args.out}/")
    return 0


if __name__ == "__main__":
    cli.run(main)
