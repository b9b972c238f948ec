"""Widen a trained generator's blocks, drawing the same images (an experiment).

    python experiments/widen_generator.py --network runs/nomix-w2/network.pkl --channel-base 2048 \
        --out runs/wide-start.pkl
    python tools/train_stylegan2.py --out runs/widened --init-from runs/wide-start.pkl \
        --channel-base 2048 --d-channel-base 1024

The extra channels start so that the widened G is the same function of w
(mlss_jax/gan/widen.py); D is copied as it is. Continuing both with the trainer asks whether
G's width is what limits a trained generator, at a fraction of a run from scratch. Prints the
largest pixel difference between the two generators' images on 64 latents, and writes nothing
if it is not a rounding error. Research code behind docs/experiment-log.md.
"""

from __future__ import annotations

from _pickle_io import add_pickle_io, check_pickle_io
from mlss_jax.app import cli

MAX_PIXEL_DIFFERENCE = 1e-4   # images lie in about [-1, 1]; float32 rounding is near 1e-6


def main(argv: list[str] | None = None) -> int:
    parser = cli.ArgumentParser(prog="widen_generator.py", description=__doc__.splitlines()[0])
    add_pickle_io(parser, "generator pickle (with D)", "the widened pickle (.pkl)")
    parser.add_argument("--channel-base", type=cli.positive_int, required=True,
                        help="the widened G's channel_base (a block at r px has "
                             "min(channel_base // r, channel_max) channels)")
    parser.add_argument("--channel-max", type=cli.positive_int, default=None,
                        help="the widened G's channel_max (default: the network's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the new channels' weights")
    args = parser.parse_args(argv)
    check_pickle_io(parser, args)
    difference = widen(args)
    print(f"largest pixel difference between the two generators: {difference:.2e}")
    print(f"wrote {args.out}")
    return 0


def widen(args) -> float:
    import numpy as np

    from mlss_jax.errors import InputFileError
    from mlss_jax.gan.widen import widen_generator
    from mlss_jax.networks.generator import generator_mapping, generator_synthesis
    from mlss_jax.runtime.files import write_atomic
    from mlss_jax.weights.nvidia import convert_network_pickle
    from mlss_jax.weights.tf_format import export_tf_pickle

    nets = convert_network_pickle(args.network.read_bytes())
    if nets.discriminator_vars is None:
        raise InputFileError(f"{args.network} holds no discriminator to continue training with")
    config, variables = nets.generator_config, nets.generator_vars
    wide_config, wide_variables = widen_generator(config, variables, args.channel_base,
                                                  args.channel_max, seed=args.seed)
    z = np.random.default_rng(args.seed).standard_normal((64, config.z_dim)).astype(np.float32)
    ws = generator_mapping(config, variables, z)
    difference = float(np.abs(np.asarray(generator_synthesis(config, variables, ws))
                              - np.asarray(generator_synthesis(wide_config, wide_variables, ws))).max())
    if difference > MAX_PIXEL_DIFFERENCE:
        raise RuntimeError(f"the widened generator draws other images (pixel difference "
                           f"{difference:.2e}); nothing written")
    write_atomic(args.out, export_tf_pickle(wide_config, wide_variables,
                                                  nets.discriminator_config, nets.discriminator_vars))
    return difference


if __name__ == "__main__":
    cli.run(main)
