"""StyleGAN2 training speed on the demo settings: non-fused vs fused modulation.

    python benchmarks/gan_training.py [--steps 20] [--json out.json]

Times the jitted training step of tools/train_stylegan2.py's defaults (32 px,
batch 32) after compilation, without and with the lazy R1 pass, and reports
images/s of an average step (R1 every r1_interval steps).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import time
from pathlib import Path


import jax
import jax.numpy as jnp
import numpy as np

from mlss_jax.gan.training import GANTrainConfig, init_train_state, train_step
from mlss_jax.runtime.parallel import data_mesh


def bench(config: GANTrainConfig, steps: int) -> dict:
    g_cfg, d_cfg = config.generator_config(32, 3), config.discriminator_config(32, 3)
    state = init_train_state(config, g_cfg, d_cfg)
    step_fn = functools.partial(train_step, config, g_cfg, d_cfg, data_mesh())
    pool = jnp.asarray(np.random.default_rng(0).integers(0, 256, (1024, 32, 32, 3), dtype=np.uint8))
    out = {"fused_modconv": config.fused_modconv, "batch": config.batch_size}
    for with_r1 in (False, True):
        start = time.perf_counter()
        state, metrics = step_fn(state, pool, jnp.int32(0), with_r1=with_r1)
        jax.block_until_ready(metrics)
        out[f"compile_s{'_r1' if with_r1 else ''}"] = round(time.perf_counter() - start, 1)
        for i in range(5):  # XLA's CPU runtime is slow on the first few calls
            state, metrics = step_fn(state, pool, jnp.int32(i + 1), with_r1=with_r1)
        jax.block_until_ready(metrics)
        n = steps if not with_r1 else max(2, steps // 4)
        start = time.perf_counter()
        for i in range(n):
            state, metrics = step_fn(state, pool, jnp.int32(i + 10), with_r1=with_r1)
        jax.block_until_ready(metrics)
        out["ms_r1_step" if with_r1 else "ms_step"] = round((time.perf_counter() - start) / n * 1000, 1)
    interval = config.r1_interval
    mean_ms = (out["ms_step"] * (interval - 1) + out["ms_r1_step"]) / interval
    out["images_per_s"] = round(config.batch_size / mean_ms * 1000, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    print(f"device: {jax.devices()[0].device_kind} x{len(jax.devices())}")
    rows = [bench(dataclasses.replace(GANTrainConfig(), fused_modconv=fused), args.steps)
            for fused in (False, True)]
    print(f"{'modulation':<10} {'batch':>5} {'compile s':>9} {'ms/step':>8} {'ms/R1 step':>10} {'img/s':>7}")
    for r in rows:
        print(f"{'fused' if r['fused_modconv'] else 'non-fused':<10} {r['batch']:>5} {r['compile_s']:>9} "
              f"{r['ms_step']:>8} {r['ms_r1_step']:>10} {r['images_per_s']:>7}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
