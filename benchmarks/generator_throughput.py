"""Generator throughput (images/s) and compile time, jitted, on the default JAX device.

    python benchmarks/generator_throughput.py [--batches 1 16] [--min-seconds 3] [--json out.json]
    python benchmarks/generator_throughput.py --bf16-resolutions 4    # also mixed precision

Networks: the two conversion fixtures (tests/data, 32 px TF and 16 px PyTorch)
and a config-f generator at 256 px with random weights. Each is timed with the
non-fused (scaled activations) and fused (per-sample kernels) modulation, and
with ``--bf16-resolutions N`` also non-fused with its N highest resolutions in
bfloat16, whose error against float32 is printed (the largest absolute
difference over the largest magnitude of the float32 images, on the same z).
Throughput excludes compilation: the first call is timed separately. First, the
precision XLA gives float32 convolutions by default on this device: the
config-f generator at its default precision against ``highest``; a difference
above float rounding means TF32 (or another reduced precision) is in use.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from mlss_jax.networks.config import GeneratorConfig
from mlss_jax.networks.generator import Generator, init_generator
from mlss_jax.weights.nvidia import convert_network_pickle

REPO = Path(__file__).resolve().parent.parent


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


def generate_fn(cfg: GeneratorConfig):
    return jax.jit(lambda variables, z: Generator(cfg).apply(variables, z, noise_mode="const"))


def default_float32_precision(cfg: GeneratorConfig, variables: dict) -> float:
    """Relative difference of the generator at the default precision and at ``highest``."""
    z = jax.random.normal(jax.random.PRNGKey(2), (4, cfg.z_dim))
    default = generate_fn(cfg)(variables, z)
    with jax.default_matmul_precision("highest"):
        highest = generate_fn(cfg)(variables, z)
    return float(jnp.max(jnp.abs(default - highest)) / jnp.max(jnp.abs(highest)))


def time_generator(cfg: GeneratorConfig, variables: dict, batch: int, min_seconds: float) -> dict:
    fn = generate_fn(cfg)
    z = jax.random.normal(jax.random.PRNGKey(1), (batch, cfg.z_dim))
    start = time.perf_counter()
    out = fn(variables, z).block_until_ready()
    compile_s = time.perf_counter() - start
    error = None
    if cfg.bf16_resolutions:
        exact = generate_fn(dataclasses.replace(cfg, bf16_resolutions=0))(variables, z)
        error = float(jnp.max(jnp.abs(out - exact)) / jnp.max(jnp.abs(exact)))
    calls, start = 0, time.perf_counter()
    while True:
        fn(variables, z).block_until_ready()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            break
    return {"compile_s": compile_s, "images_per_s": calls * batch / elapsed,
            "ms_per_batch": 1000 * elapsed / calls, "error_vs_float32": error}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--min-seconds", type=float, default=3.0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--bf16-resolutions", type=int, default=0,
                        help="also time the non-fused networks with this many highest "
                             "resolutions in bfloat16 (NVIDIA uses 4 in float16; default: 0)")
    args = parser.parse_args()
    device = jax.devices()[0]
    print(f"device: {device.platform} ({device.device_kind}), {jax.device_count()} device(s), "
          f"jax {jax.__version__}")
    nets = networks()
    name, cfg, variables = nets[-1]
    tf32 = default_float32_precision(cfg, variables)
    print(f"float32 at the default precision vs 'highest' ({name}): relative difference "
          f"{tf32:.1e} ({'reduced precision, e.g. TF32' if tf32 > 1e-5 else 'full float32'})")
    header = (f"{'network':<20} {'modulation':<10} {'precision':<10} {'batch':>5} {'img/s':>10} "
              f"{'ms/batch':>10} {'compile s':>10} {'error':>8}")
    print(header + "\n" + "-" * len(header))
    results = []
    for name, cfg, variables in nets:
        variables = jax.tree_util.tree_map(jnp.asarray, variables)
        bf16 = min(args.bf16_resolutions, len(cfg.block_resolutions))
        modes = [(False, 0), (True, 0)] + ([(False, bf16)] if bf16 else [])
        for fused, bf16_resolutions in modes:
            run_cfg = dataclasses.replace(cfg, fused_modconv=fused,
                                          bf16_resolutions=bf16_resolutions)
            for batch in args.batches:
                r = time_generator(run_cfg, variables, batch, args.min_seconds)
                mode = "fused" if fused else "unfused"
                precision = f"bf16 x{bf16_resolutions}" if bf16_resolutions else "float32"
                error = f"{r['error_vs_float32']:.1e}" if bf16_resolutions else "-"
                print(f"{name:<20} {mode:<10} {precision:<10} {batch:>5} "
                      f"{r['images_per_s']:>10.2f} {r['ms_per_batch']:>10.1f} "
                      f"{r['compile_s']:>10.2f} {error:>8}", flush=True)
                results.append({"network": name, "modulation": mode,
                                "bf16_resolutions": bf16_resolutions, "batch": batch, **r})
    if args.json:
        args.json.write_text(json.dumps({"device": str(device), "jax": jax.__version__,
                                         "float32_default_vs_highest": tf32,
                                         "results": results}, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
