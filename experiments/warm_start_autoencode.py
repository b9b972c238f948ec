"""The first stages of an encoder-assisted warm start of a StyleGAN2 generator (an experiment).

    python experiments/warm_start_autoencode.py --out runs/warm

1. Autoencode: an encoder maps each training image to one w (scaled to zero mean and unit
   second moment, plus Gaussian noise of --code-noise), and G's synthesis network, fed that w at
   every layer, is trained to redraw the image (mean squared pixel error). Supervised, with no
   adversary.
2. Fit G's mapping so that f(z) matches the training images' codes, with a critic on w
   (experiments/_wspace.py).

The result, warm.pkl (NVIDIA's TF format, D untrained), is meant as the --init-from of an
adversarial run (tools/train_stylegan2.py --fresh-discriminator). Writes report.json, recon.png
(held-out images over their reconstructions), samples.png and warm.pkl to --out. Research code
behind docs/experiment-log.md: nothing reads a label, and the factor classifier only measures.
"""

from __future__ import annotations

import json
from pathlib import Path

from mlss_jax.app import cli


def main(argv: list[str] | None = None) -> int:
    parser = cli.ArgumentParser(prog="warm_start_autoencode.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--autoencode-steps", type=cli.positive_int, default=1660,
                        help="autoencoder steps of 32 images (default: 1660)")
    parser.add_argument("--code-noise", type=cli.finite_float, default=0.1,
                        help="standard deviation of the noise added to each code (default: 0.1)")
    parser.add_argument("--mapping-steps", type=cli.positive_int, default=3000,
                        help="mapping fit steps of 256 codes (default: 3000)")
    parser.add_argument("--mapping-lr", type=cli.finite_float, default=0.1,
                        help="Adam step of the mapping's stored parameters (default: 0.1)")
    args = parser.parse_args(argv)
    if args.code_noise < 0:
        parser.error(f"--code-noise must be >= 0, got {args.code_noise}")
    if args.mapping_lr <= 0:
        parser.error(f"--mapping-lr must be positive, got {args.mapping_lr}")
    report = warm_start(args)
    from _wspace import print_report

    print_report(report, args.out, ("report.json", "recon.png", "samples.png", "warm.pkl"))
    return 0


def warm_start(args) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from tqdm import tqdm

    from _wspace import (WEncoder, broadcast_ws, factor_reading, fit_mapping, with_mapping,
                         world2_data)
    from mlss_jax.batching import map_in_batches
    from mlss_jax.gan.training import GANTrainConfig
    from mlss_jax.networks.discriminator import init_discriminator
    from mlss_jax.networks.generator import Generator, init_generator
    from mlss_jax.networks.generator import to_uint8
    from mlss_jax.networks.sampling import latents
    from mlss_jax.viz.grid import save_image_grid
    from mlss_jax.weights.tf_format import export_tf_pickle

    args.out.mkdir(parents=True, exist_ok=True)
    config = GANTrainConfig(style_mixing=0.0)
    g_cfg = config.generator_config(32, 3)
    predictor, (train, train_labels), (test, test_labels) = world2_data()
    report = {"autoencode_steps": args.autoencode_steps, "code_noise": args.code_noise,
              "mapping_steps": args.mapping_steps, "mapping_lr": args.mapping_lr}

    key = jax.random.PRNGKey(0)
    g_vars = init_generator(g_cfg, key)
    encoder, generator = WEncoder(g_cfg.w_dim, normalize=True), Generator(g_cfg)
    params = {"encoder": encoder.init(key, jnp.zeros((1, 32, 32, 3)))["params"],
              "g": g_vars["params"]}
    tx = optax.adam(2e-3, b1=0.0, b2=0.99, eps=1e-8)
    opt = tx.init(params)
    to_input = lambda x: jnp.asarray(x, jnp.float32) / 127.5 - 1.0
    decode = lambda g_params, w: generator.apply(
        {"params": g_params, "buffers": g_vars["buffers"]}, broadcast_ws(g_cfg, w), "none",
        method=Generator.synthesize)

    @jax.jit
    def step(params, opt, images, noise_key):
        x = to_input(images)

        def loss_fn(p):
            w = encoder.apply({"params": p["encoder"]}, x)
            w = w + args.code_noise * jax.random.normal(noise_key, w.shape)
            return jnp.mean(jnp.square(decode(p["g"], w) - x))

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt = tx.update(grads, opt)
        return optax.apply_updates(params, updates), opt, loss

    rng = np.random.default_rng(0)
    for i in tqdm(range(args.autoencode_steps), desc="autoencode", disable=None):
        params, opt, loss = step(params, opt, train[rng.integers(0, len(train), 32)],
                                 jax.random.fold_in(key, i))
    report["autoencode_loss"] = float(loss)
    encode = jax.jit(lambda x: encoder.apply({"params": params["encoder"]}, to_input(x)))
    redraw = jax.jit(lambda x: decode(params["g"], encode(x)))
    recon = map_in_batches(lambda x: to_uint8(redraw(x)), 500, test)
    report["reals_decoded"] = factor_reading(predictor, recon, train_labels, test_labels)
    save_image_grid(np.concatenate([test[:32], recon[:32]]), args.out / "recon.png", ncols=8)

    g_vars = {"params": params["g"], "buffers": g_vars["buffers"]}
    mapping = fit_mapping(g_cfg, g_vars, map_in_batches(encode, 1000, train), args.mapping_steps,
                          args.mapping_lr, log=tqdm.write)
    g_vars, samples = with_mapping(g_cfg, g_vars, mapping, latents(g_cfg, 10000, 7))
    report["samples"] = factor_reading(predictor, samples, train_labels)
    save_image_grid(samples[:64], args.out / "samples.png", ncols=8)
    d_cfg = config.discriminator_config(32, 3)
    (args.out / "warm.pkl").write_bytes(export_tf_pickle(
        g_cfg, g_vars, d_cfg, init_discriminator(d_cfg, key), training_generator_vars=g_vars))
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    cli.run(main)
