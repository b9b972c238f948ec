"""Generator throughput (images/s) and compile time, jitted, on the default JAX device.

    python benchmarks/generator_throughput.py [--batches 1 16] [--min-seconds 3] [--json out.json]

Networks: the two conversion fixtures (tests/data, 32 px TF and 16 px PyTorch)
and a config-f generator at 256 px with random weights. Each is timed with the
non-fused (scaled activations) and fused (per-sample kernels) modulation.
Throughput excludes compilation: the first call is timed separately.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

import jax
import jax.numpy as jnp

from mlss_jax.networks.config import GeneratorConfig
from mlss_jax.networks.generator import Generator, init_generator
from mlss_jax.weights.nvidia import convert_network_pickle


def networks() -> list[tuple[str, GeneratorConfig, dict]]:
    nets = []
    for name in ("tf_small", "pt_small"):
        pkl = REPO / "tests" / "data" / f"{name}.pkl"
        if pkl.exists():
            converted = convert_network_pickle(pkl.read_bytes())
            nets.append((f"{name} ({converted.generator_config.resolution}px)",
                         converted.generator_config, converted.generator_vars))
        else:
            print(f"note: {pkl} not found; skipping {name}")
    cfg = GeneratorConfig(resolution=256)
    nets.append(("config-f 256px", cfg, init_generator(cfg, jax.random.PRNGKey(0))))
    return nets


def time_generator(cfg: GeneratorConfig, variables: dict, batch: int, min_seconds: float) -> dict:
    def generate(variables, z):
        return Generator(cfg).apply(variables, z, noise_mode="const")

    fn = jax.jit(generate)
    z = jax.random.normal(jax.random.PRNGKey(1), (batch, cfg.z_dim))
    start = time.perf_counter()
    fn(variables, z).block_until_ready()
    compile_s = time.perf_counter() - start
    calls, start = 0, time.perf_counter()
    while True:
        fn(variables, z).block_until_ready()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            break
    return {"compile_s": compile_s, "images_per_s": calls * batch / elapsed,
            "ms_per_batch": 1000 * elapsed / calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--min-seconds", type=float, default=3.0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    device = jax.devices()[0]
    print(f"device: {device.platform} ({device.device_kind}), {jax.device_count()} device(s), "
          f"jax {jax.__version__}")
    header = f"{'network':<20} {'modulation':<10} {'batch':>5} {'img/s':>10} {'ms/batch':>10} {'compile s':>10}"
    print(header + "\n" + "-" * len(header))
    results = []
    for name, cfg, variables in networks():
        variables = jax.tree_util.tree_map(jnp.asarray, variables)
        for fused in (False, True):
            run_cfg = dataclasses.replace(cfg, fused_modconv=fused)
            for batch in args.batches:
                r = time_generator(run_cfg, variables, batch, args.min_seconds)
                mode = "fused" if fused else "unfused"
                print(f"{name:<20} {mode:<10} {batch:>5} {r['images_per_s']:>10.2f} "
                      f"{r['ms_per_batch']:>10.1f} {r['compile_s']:>10.2f}", flush=True)
                results.append({"network": name, "modulation": mode, "batch": batch, **r})
    if args.json:
        args.json.write_text(json.dumps({"device": str(device), "results": results}, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
