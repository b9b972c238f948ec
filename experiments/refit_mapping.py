"""Refit a trained generator's mapping to the W codes of real images (an experiment).

    python experiments/refit_mapping.py --network runs/nomix-w2/network.pkl --out runs/refit

1. Draw --fakes samples w -> G(w) from the generator and train an encoder (image -> w) on them,
   a supervised regression: the generator's own samples carry their w.
2. Encode the training images of the world; decode the held-out images' codes with G (how near
   G can draw the real images: the most a refit can reach).
3. Train G's mapping (started from its own) so that f(z) matches the real images' codes, with
   a critic on w (experiments/_wspace.py), and export the generator with the new mapping as
   refit.pkl (NVIDIA's TF format, D unchanged) for tools/demo_quality.py.

Writes report.json, roundtrip.png (held-out reals, G's drawing of their codes, G's own samples),
samples.png and refit.pkl to --out. Research code behind docs/experiment-log.md: the generator
learns no labels and the factor classifier only measures.
"""

from __future__ import annotations

import json
from pathlib import Path

from mlss_jax.app import cli


def main(argv: list[str] | None = None) -> int:
    parser = cli.ArgumentParser(prog="refit_mapping.py", description=__doc__.splitlines()[0])
    parser.add_argument("--network", type=Path, required=True, help="generator pickle (world 2)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--fakes", type=cli.positive_int, default=30000,
                        help="generated samples the encoder learns from (default: 30000)")
    parser.add_argument("--encoder-steps", type=cli.positive_int, default=1300,
                        help="encoder training steps of 64 images (default: 1300)")
    parser.add_argument("--mapping-steps", type=cli.positive_int, default=3000,
                        help="mapping fit steps of 256 codes (default: 3000)")
    parser.add_argument("--mapping-lr", type=cli.finite_float, default=0.1,
                        help="Adam step of the mapping's stored parameters (default: 0.1)")
    args = parser.parse_args(argv)
    if args.fakes <= 2000:   # the last 2,000 are held out from the encoder's training
        parser.error(f"--fakes must be above 2000, got {args.fakes}")
    if args.mapping_lr <= 0:
        parser.error(f"--mapping-lr must be positive, got {args.mapping_lr}")
    if not args.network.is_file():
        parser.error(f"--network: no such file: {args.network}")
    report = refit(args)
    from _wspace import print_report

    print_report(report, args.out, ("report.json", "roundtrip.png", "samples.png", "refit.pkl"))
    return 0


def refit(args) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from tqdm import tqdm

    from _wspace import (WEncoder, broadcast_ws, factor_reading, fit_mapping, with_mapping,
                         world2_data)
    from mlss_jax.batching import map_in_batches
    from mlss_jax.networks.sampling import latents, mapped_w, synthesize
    from mlss_jax.networks.stylegan2 import StyleGAN2Generator
    from mlss_jax.viz.grid import save_image_grid
    from mlss_jax.weights.nvidia import convert_network_pickle
    from mlss_jax.weights.tf_format import export_tf_pickle

    args.out.mkdir(parents=True, exist_ok=True)
    nets = convert_network_pickle(args.network.read_bytes())
    g_cfg, g_vars = nets.generator_config, jax.tree_util.tree_map(jnp.asarray, nets.generator_vars)
    generator = StyleGAN2Generator(g_cfg, g_vars)
    predictor, (train, train_labels), (test, test_labels) = world2_data()
    report = {"network": str(args.network), "fakes": args.fakes, "encoder_steps": args.encoder_steps,
              "mapping_steps": args.mapping_steps, "mapping_lr": args.mapping_lr}

    z = latents(generator, args.fakes, 7)
    w = mapped_w(generator, z)
    fakes = synthesize(generator, broadcast_ws(g_cfg, w))
    report["samples"] = factor_reading(predictor, fakes[:2000], train_labels)
    w_mean, w_std = w.mean(0), w.std(0) + 1e-6
    target = (w - w_mean) / w_std

    encoder = WEncoder(g_cfg.w_dim)
    key = jax.random.PRNGKey(0)
    params = encoder.init(key, jnp.zeros((1, 32, 32, 3)))["params"]
    tx = optax.adam(1e-3)
    opt = tx.init(params)
    to_input = lambda x: jnp.asarray(x, jnp.float32) / 127.5 - 1.0

    @jax.jit
    def step(params, opt, images, w_target):
        loss, grads = jax.value_and_grad(lambda p: jnp.mean(jnp.square(
            encoder.apply({"params": p}, to_input(images)) - w_target)))(params)
        updates, opt = tx.update(grads, opt)
        return optax.apply_updates(params, updates), opt, loss

    rng = np.random.default_rng(0)
    held_out = 2000   # the last samples: the round trip on fakes the encoder never saw
    for _ in tqdm(range(args.encoder_steps), desc="encoder", disable=None):
        idx = rng.integers(0, args.fakes - held_out, 64)
        params, opt, loss = step(params, opt, fakes[idx], target[idx])
    report["encoder_loss"] = float(loss)
    encode = jax.jit(lambda x: encoder.apply({"params": params}, to_input(x)))
    codes_of = lambda images: map_in_batches(encode, 1000, images) * w_std + w_mean

    report["fakes_round_trip"] = factor_reading(
        predictor, synthesize(generator, broadcast_ws(g_cfg, codes_of(fakes[-held_out:]))), train_labels)
    decoded = synthesize(generator, broadcast_ws(g_cfg, codes_of(test)))
    report["reals_decoded"] = factor_reading(predictor, decoded, train_labels, test_labels)
    save_image_grid(np.concatenate([test[:24], decoded[:24], fakes[:16]]), args.out / "roundtrip.png",
                    ncols=8)

    mapping = fit_mapping(g_cfg, g_vars, codes_of(train), args.mapping_steps, args.mapping_lr,
                          log=tqdm.write)
    refitted, samples = with_mapping(g_cfg, g_vars, mapping, z)
    report["refit_samples"] = factor_reading(predictor, samples, train_labels)
    save_image_grid(samples[:64], args.out / "samples.png", ncols=8)
    (args.out / "refit.pkl").write_bytes(export_tf_pickle(
        g_cfg, refitted, nets.discriminator_config, nets.discriminator_vars,
        training_generator_vars=refitted))
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    cli.run(main)
