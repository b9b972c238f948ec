"""Run by test_gan_training: the same GAN steps on one and on two (forced host) devices.

Prints JSON: per step the metrics of both runs, and the largest parameter
difference after the last step. Needs XLA_FLAGS=--xla_force_host_platform_device_count=2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from mlss_jax.gan.training import GANTrainConfig, init_train_state, make_train_step  # noqa: E402
from mlss_jax.parallel import data_mesh  # noqa: E402

TINY = dict(z_dim=8, w_dim=8, mapping_layers=2, channel_base=64, channel_max=8, batch_size=8,
            r1_interval=2, mbstd_group_size=4)


def run(config: GANTrainConfig, devices: list, steps: int) -> tuple[list, dict]:
    g_cfg, d_cfg = config.generator_config(8, 3), config.discriminator_config(8, 3)
    state = init_train_state(config, g_cfg, d_cfg)
    step_fn = make_train_step(config, g_cfg, d_cfg, data_mesh(devices))
    pool = jnp.asarray(np.random.default_rng(0).integers(0, 256, (64, 8, 8, 3), dtype=np.uint8))
    history = []
    for step in range(steps):
        state, metrics = step_fn(state, pool, jnp.int32(step), with_r1=step % 2 == 0)
        history.append({k: float(v) for k, v in metrics.items()})
    return history, jax.device_get(state)


def main() -> None:
    assert len(jax.devices()) == 2, jax.devices()
    config = GANTrainConfig(**TINY)
    one_metrics, one_state = run(config, jax.devices()[:1], steps=3)
    two_metrics, two_state = run(config, jax.devices(), steps=3)
    diffs = jax.tree_util.tree_leaves(jax.tree_util.tree_map(
        lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b)))), one_state, two_state))
    print(json.dumps({"one": one_metrics, "two": two_metrics, "max_param_diff": max(diffs)}))


if __name__ == "__main__":
    main()
