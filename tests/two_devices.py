"""Run by the trainer tests: the same steps on one and on two (forced host) devices.

``python tests/two_devices.py gan|projected|mlss GENERATOR_DIR`` prints JSON: per step the
metrics of both runs, and the largest difference of any state array after the
last step. Needs XLA_FLAGS=--xla_force_host_platform_device_count=2.
"""

from __future__ import annotations

import functools
import json
import sys


import jax
import jax.numpy as jnp
import numpy as np

from mlss_jax.runtime.parallel import data_mesh

GAN_TINY = dict(z_dim=8, w_dim=8, mapping_layers=2, channel_base=64, channel_max=8, batch_size=8,
                r1_interval=2, mbstd_group_size=4)
MLSS_TINY = dict(num_clusters=3, batch_size=8, critic_hidden=16, critic_layers=2, steps=3)
STEPS = 3


def gan_steps(devices: list, projected: bool = False) -> tuple[list, dict]:
    """The StyleGAN2 trainer's steps; ``projected``: with the projected D over an untrained
    encoder (the step does not read the encoder's folder, only its parameters)."""
    from mlss_jax.gan.feature_encoder import EncoderConfig, init_autoencoder
    from mlss_jax.gan.projected import frozen_inputs
    from mlss_jax.gan.training import GANTrainConfig, init_train_state, train_step

    frozen = None
    if projected:
        encoder = EncoderConfig(channels=(4, 8, 8))
        config = GANTrainConfig(**GAN_TINY, discriminator="projected", feature_encoder="unused")
        g_cfg, d_cfg = config.generator_config(8, 3), config.projected_config(8, 3, encoder.channels)
        frozen = frozen_inputs(d_cfg, init_autoencoder(encoder, jax.random.PRNGKey(1), 8)["encoder"],
                               config.seed)
    else:
        config = GANTrainConfig(**GAN_TINY)
        g_cfg, d_cfg = config.generator_config(8, 3), config.discriminator_config(8, 3)
    state = init_train_state(config, g_cfg, d_cfg)
    step_fn = functools.partial(train_step, config, g_cfg, d_cfg, data_mesh(devices))
    pool = jnp.asarray(np.random.default_rng(0).integers(0, 256, (64, 8, 8, 3), dtype=np.uint8))
    history = []
    for step in range(STEPS):
        state, metrics = step_fn(state, pool, jnp.int32(step),
                                 with_r1=not projected and step % 2 == 0, frozen=frozen)
        history.append({k: float(v) for k, v in metrics.items()})
    return history, jax.device_get(state)


def mlss_steps(devices: list, generator_dir: str) -> tuple[list, dict]:
    from mlss_jax.method.config import MLSSConfig
    from mlss_jax.method.training import init_level_state, train_step
    from mlss_jax.weights.load import load_generator

    generator = load_generator(generator_dir)
    config = MLSSConfig(level="medium", **MLSS_TINY)
    state = init_level_state(config, generator.config, generator.variables)
    step_fn = functools.partial(train_step, config, generator.config, data_mesh(devices))
    history = []
    for step in range(STEPS):
        state, metrics = step_fn(state, generator.variables, jnp.int32(step))
        history.append({k: float(v) for k, v in metrics.items()})
    return history, jax.device_get(state)


def main() -> None:
    assert len(jax.devices()) == 2, jax.devices()
    which = sys.argv[1]
    run = {"gan": gan_steps, "projected": functools.partial(gan_steps, projected=True)}.get(
        which, lambda devices: mlss_steps(devices, sys.argv[2]))
    one_metrics, one_state = run(jax.devices()[:1])
    two_metrics, two_state = run(jax.devices())
    diffs = jax.tree_util.tree_leaves(jax.tree_util.tree_map(
        lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b)))), one_state, two_state))
    print(json.dumps({"one": one_metrics, "two": two_metrics, "max_state_diff": max(diffs)}))


if __name__ == "__main__":
    main()
