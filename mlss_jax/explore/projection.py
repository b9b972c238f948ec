"""Projecting images into the latent space (StyleGAN2's projector schedule, LPIPS-VGG16).

For each target image, w (one latent for every input) or ws (W+, one per input)
and the synthesis network's noise maps are optimised with Adam:
- the learning rate ramps up over the first 5% of steps and down (cosine) over the last 25%;
- w starts at W's mean, as in StyleGAN2, and also, in a second run of the same batch, at
  the target's nearest (in LPIPS) of 1,000 samples of W; the run with the lower final LPIPS
  is kept. From the mean alone the optimisation can settle on a nearby image with another
  texture or shape (``start_candidates=0`` gives StyleGAN2's projector);
- w is perturbed by Gaussian noise whose scale starts at 5% of W's spread and decays to 0
  by 75% of the steps;
- the loss is LPIPS to the target (images above 256 px area-downsampled to 256), plus
  ``1e5`` times the noise maps' autocorrelation at every scale, plus optional pixel MSE;
- the noise maps are renormalised to zero mean and unit variance after every step.

All targets are projected at once: one jitted step optimises a batch, each image
with its own latent and noise maps.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlss_jax.errors import ConfigError, InputFileError
from mlss_jax.config import (check_finite, check_non_negative, check_positive, check_seed,
                             check_unit_interval)
from mlss_jax.metrics.lpips import downsample_to
from mlss_jax.networks.generator import generator_synthesis
from mlss_jax.networks.sampling import latents, mapped_w
from mlss_jax.batching import map_in_batches
from mlss_jax.networks.vgg16 import lpips_distance, lpips_features, lpips_pairwise
from mlss_jax.weights.load import load_vgg16
from mlss_jax.networks.stylegan2 import StyleGAN2Generator


@dataclasses.dataclass(frozen=True)
class ProjectConfig:
    """The projector's schedule (StyleGAN2's defaults, but for where w starts).

    Attributes:
      steps: optimisation steps.
      w_plus: optimise one w per layer input (W+) instead of one w for all.
      initial_learning_rate: peak Adam step.
      initial_noise_factor: initial scale of the noise added to w, relative to W's spread.
      lr_rampup_length: share of the steps over which the learning rate ramps up.
      lr_rampdown_length: share of the steps over which it ramps down at the end.
      noise_ramp_length: share of the steps over which the added noise decays to zero.
      regularize_noise_weight: weight of the noise maps' autocorrelation penalty.
      mse_weight: weight of an extra pixel MSE (images in [-1, 1]); 0: LPIPS only.
      w_stats_samples: samples of f(z) for W's mean and spread.
      start_candidates: also project each target from its nearest (LPIPS) of this many
        samples of W, besides from W's mean, and keep the better result; 0: from W's mean
        only, as StyleGAN2's projector does (half the work).
      seed: noise maps' and perturbations' randomness.
    """

    steps: int = 1000
    w_plus: bool = False
    initial_learning_rate: float = 0.1
    initial_noise_factor: float = 0.05
    lr_rampup_length: float = 0.05
    lr_rampdown_length: float = 0.25
    noise_ramp_length: float = 0.75
    regularize_noise_weight: float = 1e5
    mse_weight: float = 0.0
    w_stats_samples: int = 10_000
    start_candidates: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        check_finite(self)
        check_positive(self, ("steps", "initial_learning_rate", "w_stats_samples"))
        check_seed(self)
        for name in ("lr_rampup_length", "lr_rampdown_length", "noise_ramp_length"):
            check_unit_interval(self, name, "a share of the steps")
            if getattr(self, name) == 0:  # the schedule divides by it
                raise ConfigError(f"{name} must be above 0 (a share of the steps), got 0")
        check_non_negative(self, ("initial_noise_factor", "regularize_noise_weight",
                                  "mse_weight", "start_candidates"))


def learning_rate(config: ProjectConfig, step: jax.Array) -> jax.Array:
    t = step / config.steps
    ramp = jnp.minimum(1.0, (1.0 - t) / config.lr_rampdown_length)
    ramp = 0.5 - 0.5 * jnp.cos(ramp * math.pi)
    return config.initial_learning_rate * ramp * jnp.minimum(1.0, t / config.lr_rampup_length)


def noise_regularisation(noise: jax.Array) -> jax.Array:
    """Squared autocorrelation of one noise map [R, R] at shifts of one pixel, at every scale
    down to 8x8 (the map is 2x average-pooled between scales)."""
    total = jnp.zeros(())
    while True:
        total += jnp.mean(noise * jnp.roll(noise, 1, axis=1)) ** 2
        total += jnp.mean(noise * jnp.roll(noise, 1, axis=0)) ** 2
        if noise.shape[0] <= 8:
            return total
        r = noise.shape[0] // 2
        noise = noise.reshape(r, 2, r, 2).mean(axis=(1, 3))


def _standardise(maps: jax.Array) -> jax.Array:
    """Noise maps [N, R, R] to zero mean and unit variance each."""
    centred = maps - maps.mean(axis=(1, 2), keepdims=True)
    return centred * jax.lax.rsqrt(jnp.mean(centred ** 2, axis=(1, 2), keepdims=True))


def _with_noise(variables: dict, noise: dict) -> dict:
    """The generator's variables with its constant noise maps replaced by ``noise``."""
    synthesis = jax.tree_util.tree_map(lambda x: x, variables["buffers"]["synthesis"])
    for block, layers in noise.items():
        for layer, value in layers.items():
            synthesis[block][layer] = {**synthesis[block][layer], "noise_const": value}
    return {**variables, "buffers": {**variables["buffers"], "synthesis": synthesis}}


def noise_maps(variables: dict) -> dict:
    """{block: {layer: noise_const}} of the synthesis network."""
    return {block: {layer: v["noise_const"] for layer, v in layers.items() if "noise_const" in v}
            for block, layers in variables["buffers"]["synthesis"].items()}


def w_statistics(generator: StyleGAN2Generator, num: int, seed: int) -> tuple[jax.Array, jax.Array]:
    """Mean of W and its spread: the root mean squared distance of f(z) to the mean."""
    w = jnp.asarray(mapped_w(generator, latents(generator, num, seed)))
    mean = jnp.mean(w, axis=0)
    return mean, jnp.sqrt(jnp.mean(jnp.sum((w - mean) ** 2, axis=1)))


def nearest_samples(generator: StyleGAN2Generator, params: dict, lin: list[jax.Array],
                    targets: jax.Array, num: int, rng: jax.Array,
                    progress: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For each target [N, H, W, C] (float in [-1, 1], at most 256 px), the w [N, w_dim] of
    the nearest in LPIPS of ``num`` samples f(z), z drawn from ``rng``, and that distance [N]."""
    z = np.asarray(jax.random.normal(rng, (num, generator.z_dim)))
    w = mapped_w(generator, z)
    target_features = lpips_features(params, targets)

    @jax.jit   # the networks' weights are arguments, not constants folded into the program
    def distances(w_batch, variables, params, lin, target_features) -> jax.Array:   # [batch, N]
        ws = jnp.broadcast_to(w_batch[:, None], (len(w_batch), generator.num_ws, generator.w_dim))
        images = downsample_to(generator_synthesis(generator.config, variables, ws), 256)
        return lpips_pairwise(lin, lpips_features(params, images), target_features)

    # 256 samples a batch at 32 px, as many pixels a batch at higher resolutions
    batch_size = max(1, 256 * 32 * 32 // generator.resolution ** 2)
    table = map_in_batches(
        lambda w_batch: distances(w_batch, generator.variables, params, lin, target_features),
        batch_size, w, progress=progress, desc="start")   # [num, N]
    nearest = np.argmin(table, axis=0)
    return w[nearest], table[nearest, np.arange(table.shape[1])]


@dataclasses.dataclass
class Projection:
    ws: np.ndarray          # [N, num_ws, w_dim]
    noise: dict             # {block: {layer: [N, R, R]}}
    images: np.ndarray      # [N, R, R, C] float in [-1, 1]
    lpips: np.ndarray       # [N], final
    snapshots: list[tuple[int, np.ndarray]]  # (step, images) along the way


def project(generator: StyleGAN2Generator, targets: np.ndarray, config: ProjectConfig,
            snapshot_steps: tuple[int, ...] = (), progress: bool | None = None) -> Projection:
    """Project uint8 ``targets`` [N, R, R, C] (the generator's resolution).

    With ``config.start_candidates``, each target is projected twice in one batch, from W's
    mean and from its nearest sample, and the run with the lower final LPIPS is kept.
    """
    from tqdm import tqdm

    g_cfg = generator.config
    expected = (g_cfg.resolution, g_cfg.resolution, g_cfg.img_channels)
    if targets.ndim != 4 or targets.shape[1:] != expected:
        raise InputFileError(f"targets must be [N, {', '.join(map(str, expected))}] images, "
                             f"got {targets.shape}")
    n = targets.shape[0]
    params, lin = load_vgg16()
    w_avg, w_std = w_statistics(generator, config.w_stats_samples, config.seed)
    rng = jax.random.PRNGKey(config.seed)
    target_float = jnp.asarray(targets, jnp.float32) / 127.5 - 1.0
    target_small = downsample_to(target_float, 256)
    w_start = jnp.broadcast_to(w_avg, (n, g_cfg.w_dim))
    if config.start_candidates:   # fold_in(rng, 0): a stream no other draw here uses
        nearest, _ = nearest_samples(generator, params, lin, target_small,
                                     config.start_candidates, jax.random.fold_in(rng, 0), progress)
        w_start = jnp.concatenate([w_start, jnp.asarray(nearest)])
        target_float, target_small = (jnp.concatenate([x, x]) for x in (target_float, target_small))
    rows = len(w_start)   # one row per target and start
    starts = rows // n    # the starts of one target share its random draws: they differ only there
    maps = noise_maps(generator.variables)
    leaves, treedef = jax.tree_util.tree_flatten(maps)
    keys = jax.random.split(jax.random.fold_in(rng, 1), len(leaves))
    noise = jax.tree_util.tree_unflatten(treedef, [
        jnp.tile(jax.random.normal(k, (n, *leaf.shape)), (starts, 1, 1))
        for k, leaf in zip(keys, leaves, strict=True)])
    w_count = g_cfg.num_ws if config.w_plus else 1
    latents = {"w": jnp.tile(w_start[:, None], (1, w_count, 1)), "noise": noise}
    optimizer = optax.adam(lambda count: learning_rate(config, count), b1=0.9, b2=0.999)
    opt_state = optimizer.init(latents)
    variables = generator.variables

    def synthesize(w: jax.Array, noise_tree: dict) -> jax.Array:
        ws = jnp.broadcast_to(w, (rows, g_cfg.num_ws, g_cfg.w_dim))
        return generator_synthesis(g_cfg, _with_noise(variables, noise_tree), ws)

    def losses(latents: dict, w_noise: jax.Array) -> tuple[jax.Array, jax.Array]:
        images = synthesize(latents["w"] + w_noise, latents["noise"])
        dist = lpips_distance(params, lin, downsample_to(images, 256), target_small)
        reg = sum(jax.vmap(noise_regularisation)(m) for m in jax.tree_util.tree_leaves(latents["noise"]))
        mse = jnp.mean((images - target_float) ** 2, axis=(1, 2, 3))
        per_image = dist + config.regularize_noise_weight * reg + config.mse_weight * mse
        return jnp.sum(per_image), dist

    @jax.jit
    def step(latents, opt_state, index):
        t = index / config.steps
        ramp = jnp.maximum(0.0, 1.0 - t / config.noise_ramp_length)
        scale = w_std * config.initial_noise_factor * ramp ** 2
        w_noise = jax.random.normal(jax.random.fold_in(rng, index + 2), (n, w_count, g_cfg.w_dim))
        w_noise = jnp.tile(w_noise, (starts, 1, 1)) * scale
        grads, dist = jax.grad(losses, has_aux=True)(latents, w_noise)
        updates, opt_state = optimizer.update(grads, opt_state)
        latents = optax.apply_updates(latents, updates)
        return ({**latents, "noise": jax.tree_util.tree_map(_standardise, latents["noise"])},
                opt_state, dist)

    render = jax.jit(lambda latents: synthesize(latents["w"], latents["noise"]))
    snapshots = []
    bar = tqdm(range(config.steps), desc="project", unit="step",
               disable=(not progress) if progress is not None else None)
    for index in bar:
        if index in snapshot_steps:
            snapshots.append((index, np.asarray(render(latents))))
        latents, opt_state, dist = step(latents, opt_state, jnp.asarray(index, jnp.float32))
        if index % 50 == 0:
            bar.set_postfix(lpips=f"{float(jnp.mean(dist)):.4f}")
    images = render(latents)
    final = np.asarray(lpips_distance(params, lin, downsample_to(images, 256), target_small))
    snapshots.append((config.steps, np.asarray(images)))
    # each target's better start: row i (from the mean) or row n + i (from the nearest sample)
    keep = np.arange(n) + n * (final[n:] < final[:n]) if starts > 1 else np.arange(n)
    ws = jnp.broadcast_to(latents["w"], (rows, g_cfg.num_ws, g_cfg.w_dim))[keep]
    return Projection(np.asarray(ws), jax.tree_util.tree_map(lambda x: np.asarray(x)[keep], latents["noise"]),
                      np.asarray(images)[keep], final[keep],
                      [(step_index, frames[keep]) for step_index, frames in snapshots])
