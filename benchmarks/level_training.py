"""Level-training speed: steps/s per level at the default batch, and the share spent in synthesis.

    python benchmarks/level_training.py [--generator PKL_OR_CHECKPOINT] [--steps 20] [--json out.json]

For each level the jitted training step (critic + joint mapper/classifier update)
is timed after compilation. "Synthesis share" is the time of the synthesis
network's forward and backward pass alone (the level's w -> image -> gradient,
at the same batch) divided by the time of a whole step.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path


import jax
import jax.numpy as jnp

from mlss_jax.method.levels import LEVELS, LevelSplit
from mlss_jax.method.config import MLSSConfig
from mlss_jax.method.models import compose_ws
from mlss_jax.method.training import init_level_state, train_step
from mlss_jax.networks.generator import Generator
from mlss_jax.weights.load import load_generator
from mlss_jax.runtime.parallel import data_mesh
from mlss_jax.demo.world import DEMO_PICKLE


def timed(fn, repeats: int) -> float:
    start = time.perf_counter()
    for i in range(repeats):
        out = fn(i)
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / repeats


def bench_level(level: str, generator, steps: int) -> dict:
    config = MLSSConfig(level=level)
    g_cfg, g_vars = generator.config, generator.variables
    state = init_level_state(config, g_cfg, g_vars)
    step_fn = functools.partial(train_step, config, g_cfg, data_mesh())
    start = time.perf_counter()
    state, metrics = step_fn(state, g_vars, jnp.int32(0))
    jax.block_until_ready(metrics)
    compile_s = time.perf_counter() - start
    holder = {"state": state}

    def one_step(i):
        holder["state"], m = step_fn(holder["state"], g_vars, jnp.int32(i + 1))
        return m

    timed(one_step, 3)  # warm-up
    step_s = timed(one_step, steps)

    level_range = LevelSplit.parse(config.split, g_cfg.num_ws).range(level)
    generator_net = Generator(g_cfg)
    f_ws = generator_net.apply(g_vars, jax.random.normal(jax.random.PRNGKey(0),
                                                         (config.batch_size, g_cfg.z_dim)),
                               method=Generator.map_latents)

    @jax.jit
    def synthesis_grad(level_w):
        def images_sum(w):
            ws = compose_ws(f_ws, w, level_range)
            return jnp.sum(generator_net.apply(g_vars, ws, "const", method=Generator.synthesize))
        return jax.grad(images_sum)(level_w)

    w = f_ws[:, 0]
    synthesis_grad(w).block_until_ready()
    synth_s = timed(lambda i: synthesis_grad(w), steps)
    return {"level": level, "batch": config.batch_size, "compile_s": round(compile_s, 2),
            "steps_per_s": round(1.0 / step_s, 3), "ms_per_step": round(step_s * 1000, 1),
            "synthesis_share": round(synth_s / step_s, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", type=Path, default=DEMO_PICKLE,
                        help="a network pickle or converted checkpoint (default: the bundled demo)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    generator = load_generator(args.generator)
    print(f"device: {jax.devices()[0].device_kind} x{len(jax.devices())}; generator "
          f"{args.generator} ({generator.resolution}px)")
    rows = [bench_level(level, generator, args.steps) for level in LEVELS]
    print(f"{'level':<8} {'batch':>5} {'compile s':>9} {'steps/s':>8} {'ms/step':>8} {'synthesis':>9}")
    for r in rows:
        print(f"{r['level']:<8} {r['batch']:>5} {r['compile_s']:>9} {r['steps_per_s']:>8} "
              f"{r['ms_per_step']:>8} {r['synthesis_share']:>9.0%}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
