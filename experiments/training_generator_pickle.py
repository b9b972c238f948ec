"""Write a copy of a network pickle whose sampled generator is its training G (an experiment).

    python experiments/training_generator_pickle.py --network runs/nomix-w2/network.pkl \
        --out runs/start.pkl

A pickle's Gs is the EMA of the generator the optimiser updated, G; `tools/demo_quality.py`
measures Gs, and `tools/train_stylegan2.py --init-from` starts G from it. The copy, in NVIDIA's
TF format, has G as both G and Gs and the same D, so that both tools read the training G: to
measure what the EMA does, or to continue G and the D trained against it. Research code behind
docs/experiment-log.md.
"""

from __future__ import annotations

from _pickle_io import add_pickle_io, check_pickle_io
from mlss_jax.app import cli


def main(argv: list[str] | None = None) -> int:
    parser = cli.ArgumentParser(prog="training_generator_pickle.py",
                                description=__doc__.splitlines()[0])
    add_pickle_io(parser, "network pickle (G, D, Gs)", "the copy (.pkl)")
    args = parser.parse_args(argv)
    check_pickle_io(parser, args)

    from mlss_jax.errors import InputFileError
    from mlss_jax.runtime.files import write_atomic
    from mlss_jax.weights.nvidia import convert_network_pickle
    from mlss_jax.weights.tf_format import export_tf_pickle

    nets = convert_network_pickle(args.network.read_bytes(), training_generator=True)
    if nets.discriminator_vars is None:
        raise InputFileError(f"{args.network} holds no discriminator")
    write_atomic(args.out, export_tf_pickle(nets.generator_config, nets.generator_vars,
                                            nets.discriminator_config, nets.discriminator_vars))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    cli.run(main)
