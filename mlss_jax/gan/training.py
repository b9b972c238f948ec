"""A compact StyleGAN2 trainer (the tool that trains the bundled demo generator).

Non-saturating logistic loss, lazy R1 regularisation, style mixing, an EMA
generator with ramp-up and the running W average, on the project's own networks,
data-parallel over every device of every process. Not the product's centre: it exists so that
the demo world has a real StyleGAN2 generator trained where the truth is known.

One step, given the host's step counter ``t`` (all randomness is
``fold_in(seed, t)``, so a resumed run repeats an uninterrupted one):

1. G phase: fakes from fresh z (style-mixed, random noise) scored by D;
   Adam on G's params with the gradient averaged over devices; ``w_avg`` update.
2. D phase: fresh fakes from the updated G and a batch of reals; logistic loss,
   plus ``r1_interval * r1_gamma / 2 * R1`` every ``r1_interval`` steps.
3. EMA of G's params (buffers are copied).

With ``discriminator="projected"`` D is the projected discriminator of
:mod:`mlss_jax.gan.projected` (Sauer et al., NeurIPS 2021): a frozen feature encoder (trained
separately, :mod:`mlss_jax.gan.feature_encoder`) and fixed random projections, passed to the step
as a non-trained input, under trainable per-scale heads (the only D parameters in the state and
the optimiser); reals and fakes are augmented (translation, cutout) before it, and there is no
R1 step. G, its losses and its EMA are the same for either D.

The objectives are top-level pure functions; :func:`train_step` is the jitted step over a
:class:`GANTrainState`, which carries the optimiser. The trainer runs on the processes already
joined (``app/train_gan.py`` joins them).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from mlss_jax.errors import ConfigError, InputFileError
from mlss_jax.config import (Preset, check_choice, check_finite, check_non_negative,
                             check_positive, check_unit_interval, choices)
from mlss_jax.gan.projected import ProjectedConfig, augment, init_heads, projected_logits
from mlss_jax.gan.losses import (blur_images, discriminator_loss, ema_beta, ema_update,
                                 generator_loss, mix_styles, mixing_cutoffs, r1_penalty,
                                 update_w_avg)
from mlss_jax.networks.config import DiscriminatorConfig, GeneratorConfig
from mlss_jax.networks.discriminator import Discriminator, init_discriminator
from mlss_jax.networks.generator import Generator, init_generator
from mlss_jax.runtime import distributed, parallel
from mlss_jax.runtime.files import write_atomic
from mlss_jax.runtime.loop import TrainingPaused
from mlss_jax.runtime.parallel import REPLICATED, SHARDED, check_batch, data_mesh, interleave
from mlss_jax.runtime.train_state import optimizer_step, pmean
from mlss_jax.runtime.training_run import training_run


@dataclasses.dataclass(frozen=True)
class GANTrainConfig:
    """Settings of a StyleGAN2 run; the defaults are the recipe of the bundled 32 px demo
    generator on world 2 of the demo world and train its first stage (``--preset demo``; the
    second is ``--preset demo-continue``; docs/experiment-log.md says how they were found).

    Attributes:
      z_dim: size of the latent z.
      w_dim: size of the intermediate latent w.
      mapping_layers: layers of the mapping network.
      channel_base: feature maps of a block at resolution r are min(channel_base // r,
        channel_max), for G and (unless d_channel_base is set) D.
      channel_max: the most feature maps of any block.
      d_channel_base, d_channel_max: D's own channel_base and channel_max (None: G's). D's width
        costs nothing once G is trained: only G is used by the method.
      batch_size: global batch (split over devices; a multiple of devices x mbstd_group).
      steps: optimisation steps (one G and one D update each); 0 exports the starting weights.
      learning_rate: Adam step of G and D (beta1 = 0, eps = 1e-8, as NVIDIA).
      adam_beta2: Adam's second-moment decay for G and D.
      r1_gamma: weight of the R1 penalty on D's gradient at real images.
      r1_interval: R1 runs every this many steps, scaled by it (NVIDIA's lazy regularisation).
      style_mixing: probability that a sample mixes two latents (the demo recipe: none, which
        did better on every quality number at 32 px on 2 CPU cores).
      ema_half_life_images: EMA half-life of G's weights, in images.
      ema_rampup: half-life limited to this fraction of the images seen so far
        (so the EMA does not drag in the random start); None: no ramp-up.
      mbstd_group_size: minibatch-stddev group of D.
      blur_sigma: standard deviation in pixels of a Gaussian blur of everything D sees (reals
        and fakes, R1 included) at the start of training, fading linearly to none over
        blur_fade_images (as stylegan3's blur_init_sigma: it keeps D from winning early on
        high frequencies); 0: no blur.
      blur_fade_images: images over which the blur fades to none.
      seed: everything random derives from it and the step number.
      snapshot_every: steps between checkpoints and sample grids.
      log_every: steps between metric log lines (and NaN checks).
      fused_modconv: per-sample kernels (grouped convs) instead of scaled activations in G;
        the same function, slower on CPU (benchmarks/gan_training.py).
      discriminator: "stylegan2" (NVIDIA's D, learnt from pixels) or "projected" (Projected
        GANs: trainable per-scale heads on the frozen features of --feature-encoder under fixed
        random projections, with translation and cutout augmentation and no R1; its heads'
        widths follow d_channel_base / d_channel_max; mlss_jax/gan/projected.py).
      feature_encoder: with the projected D, the folder of a feature encoder trained by
        tools/train_feature_encoder.py (never the factor classifier).
    """

    z_dim: int = 128
    w_dim: int = 128
    mapping_layers: int = 4
    channel_base: int = 1024
    channel_max: int = 128
    d_channel_base: int | None = None
    d_channel_max: int | None = None
    batch_size: int = 32
    steps: int = 16_000
    learning_rate: float = 0.0025
    adam_beta2: float = 0.99
    r1_gamma: float = 1.0
    r1_interval: int = 16
    style_mixing: float = 0.0
    ema_half_life_images: float = 10_000.0
    ema_rampup: float | None = 0.05
    mbstd_group_size: int = 4
    blur_sigma: float = 0.0
    blur_fade_images: float = 200_000.0
    seed: int = 0
    snapshot_every: int = 500
    log_every: int = 50
    fused_modconv: bool = False
    discriminator: str = choices("stylegan2", "projected", default="stylegan2")
    feature_encoder: Path | None = None

    def __post_init__(self) -> None:
        if isinstance(self.feature_encoder, str):   # as to_dict writes it
            object.__setattr__(self, "feature_encoder", Path(self.feature_encoder))
        check_finite(self)
        check_choice(self, "discriminator", ("stylegan2", "projected"))
        if self.discriminator == "projected" and self.feature_encoder is None:
            raise ConfigError("feature_encoder must be given with the projected discriminator "
                              "(a folder written by tools/train_feature_encoder.py)")
        if self.discriminator != "projected" and self.feature_encoder is not None:
            raise ConfigError("feature_encoder must be left out unless the discriminator is "
                              "projected")
        check_positive(self, ("z_dim", "w_dim", "mapping_layers", "channel_base", "channel_max",
                              "d_channel_base", "d_channel_max",
                              "batch_size", "r1_interval", "mbstd_group_size",
                              "snapshot_every", "log_every", "learning_rate",
                              "ema_half_life_images", "blur_fade_images"))
        check_unit_interval(self, "style_mixing", "a probability")
        if self.batch_size % self.mbstd_group_size:   # D's minibatch-stddev groups split it
            raise ConfigError(f"batch_size must be a multiple of the minibatch-stddev group "
                              f"(--mbstd-group-size {self.mbstd_group_size}), got "
                              f"{self.batch_size}")
        if self.ema_rampup is not None:
            check_unit_interval(self, "ema_rampup", "a share of the images seen")
        # steps 0: export the starting weights as they are
        check_non_negative(self, ("r1_gamma", "steps", "blur_sigma"))

    def generator_config(self, resolution: int, img_channels: int) -> GeneratorConfig:
        return GeneratorConfig(resolution=resolution, z_dim=self.z_dim, w_dim=self.w_dim,
                               img_channels=img_channels, mapping_layers=self.mapping_layers,
                               channel_base=self.channel_base, channel_max=self.channel_max,
                               fused_modconv=self.fused_modconv)

    def discriminator_config(self, resolution: int, img_channels: int) -> DiscriminatorConfig:
        return DiscriminatorConfig(
            resolution=resolution, img_channels=img_channels,
            channel_base=self.channel_base if self.d_channel_base is None else self.d_channel_base,
            channel_max=self.channel_max if self.d_channel_max is None else self.d_channel_max,
            mbstd_group_size=self.mbstd_group_size)

    @property
    def blur_radius(self) -> int:
        """Taps on each side of the D-input blur: 3 standard deviations at its strongest."""
        return int(np.ceil(3 * self.blur_sigma))

    @property
    def projected(self) -> bool:
        return self.discriminator == "projected"

    def projected_config(self, resolution: int, img_channels: int,
                         encoder_channels: tuple[int, ...]) -> ProjectedConfig:
        """The projected D over an encoder with ``encoder_channels``; heads as wide as the
        StyleGAN2 D would be (d_channel_base / d_channel_max)."""
        d_cfg = self.discriminator_config(resolution, img_channels)
        return ProjectedConfig(resolution=resolution, img_channels=img_channels,
                               encoder_channels=tuple(encoder_channels),
                               channel_base=d_cfg.channel_base, channel_max=d_cfg.channel_max)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if self.feature_encoder is not None:
            out["feature_encoder"] = str(self.feature_encoder)
        return out


# Named recipes (``tools/train_stylegan2.py --preset NAME``); every flag overrides its preset.
# Those in CONTINUING_PRESETS go on from a trained generator, so they need --init-from.
GAN_PRESETS = {
    "demo": Preset("the bundled 32 px demo generator's recipe and first stage (the defaults): "
                   "about 2 h 8 min on 2 CPU cores", GANTrainConfig()),
    "demo-continue": Preset(
        "the bundled generator's second stage: the demo recipe's network.pkl (with --init-from) "
        "6,000 steps further, with new random draws (seed 1) and the EMA's full half-life "
        "from the start: about 48 min on 2 CPU cores",
        GANTrainConfig(steps=6000, seed=1, ema_rampup=None)),
    "demo-finetune": Preset(
        "continue a demo generator with a lower learning rate (with --init-from; the best "
        "variant in docs/experiment-log.md, with style mixing)",
        GANTrainConfig(learning_rate=0.001, steps=4000, style_mixing=0.9)),
    "cifar": Preset(
        "NVIDIA's 32 px CIFAR-10 hyperparameters (stylegan2-ada's cifar spec; D stays resnet) "
        "at full width: a reference point for GPUs", GANTrainConfig(
            z_dim=512, w_dim=512, mapping_layers=2, channel_base=32768, channel_max=512,
            batch_size=64, learning_rate=0.0025, r1_gamma=0.01, style_mixing=0.0,
            ema_half_life_images=500_000.0, ema_rampup=0.05, mbstd_group_size=32)),
}
CONTINUING_PRESETS = ("demo-continue", "demo-finetune")


@functools.cache
def gan_optimizer(config: GANTrainConfig) -> optax.GradientTransformation:
    """G's and D's Adam (NVIDIA's: beta1 0, eps 1e-8); one transformation serves both. Built
    once per config: the train state carries it as static data, so two states of one config
    (a fresh one and a restored one) have one structure."""
    return optax.adam(config.learning_rate, b1=0.0, b2=config.adam_beta2, eps=1e-8)


@struct.dataclass
class GANTrainState:
    """G, D, G's EMA copy and the Adam states of G and D, with the optimiser that updates them.

    The optimiser is static (not a leaf), so a checkpoint holds the five trees under these
    field names (the layout of the run directories written before).
    """

    g: dict        # {"params", "buffers"}
    d: dict        # {"params"}
    g_ema: dict    # {"params", "buffers"}
    g_opt: optax.OptState
    d_opt: optax.OptState
    tx: optax.GradientTransformation = struct.field(pytree_node=False)


AnyD = DiscriminatorConfig | ProjectedConfig   # the D of a run: its type says which


def init_train_state(config: GANTrainConfig, g_cfg: GeneratorConfig, d_cfg: AnyD) -> GANTrainState:
    """Fresh networks, their EMA copy and Adam states (with a projected D: its heads only)."""
    g_key, d_key = jax.random.split(jax.random.PRNGKey(config.seed))
    g_vars = init_generator(g_cfg, g_key)
    d_vars = (init_heads(d_cfg, d_key) if isinstance(d_cfg, ProjectedConfig)
              else init_discriminator(d_cfg, d_key))
    tx = gan_optimizer(config)
    return GANTrainState(g=g_vars, d=d_vars, g_ema=jax.tree_util.tree_map(jnp.copy, g_vars),
                         g_opt=tx.init(g_vars["params"]), d_opt=tx.init(d_vars["params"]), tx=tx)


def blur_sigma_at(config: GANTrainConfig, step: jax.Array) -> jax.Array:
    """The D-input blur of step ``step``: ``blur_sigma``, fading linearly to 0 over
    ``blur_fade_images``."""
    seen = step.astype(jnp.float32) * config.batch_size
    return config.blur_sigma * jnp.maximum(0.0, 1.0 - seen / config.blur_fade_images)


def ema_beta_at(config: GANTrainConfig, step: jax.Array) -> jax.Array:
    """The EMA decay of step ``step``: the half-life, limited by the ramp-up early on."""
    half_life = jnp.asarray(config.ema_half_life_images, jnp.float32)
    if config.ema_rampup is not None:
        seen = (step.astype(jnp.float32) + 1.0) * config.batch_size
        half_life = jnp.minimum(half_life, seen * config.ema_rampup)
    return ema_beta(config.batch_size, half_life)


def fake_images(g_cfg: GeneratorConfig, g_params: dict, buffers: dict, batch: dict
                ) -> tuple[jax.Array, jax.Array]:
    """Style-mixed images with per-sample random noise (keys drawn globally), and the ws of
    the batch's first latents."""
    generator = Generator(g_cfg)
    variables = {"params": g_params, "buffers": buffers}
    ws = generator.apply(variables, batch["z"], method=Generator.map_latents)
    ws_mix = generator.apply(variables, batch["z_mix"], method=Generator.map_latents)
    ws_in = mix_styles(ws, ws_mix, batch["cutoffs"])

    def one(sample_ws, key):
        return generator.apply(variables, sample_ws[None], "random", rngs={"noise": key},
                               method=Generator.synthesize)[0]

    return jax.vmap(one)(ws_in, batch["noise_keys"]), ws


def discriminator_logits(d_cfg: AnyD, d_params: dict, images: jax.Array,
                         frozen: dict | None = None, aug_keys: jax.Array | None = None,
                         d_input: Callable[[jax.Array], jax.Array] | None = None) -> jax.Array:
    """D's logits [N, 1]: the StyleGAN2 D's, or the projected D's of the images augmented
    with one key each of ``aug_keys`` (on the fixed ``frozen`` inputs); ``d_input`` (the
    fading blur) first transforms what D sees."""
    if d_input is not None:
        images = d_input(images)
    if isinstance(d_cfg, ProjectedConfig):
        images = augment(aug_keys, images, d_cfg.translation, d_cfg.cutout)
        return projected_logits(d_cfg, d_params, frozen, images)
    return Discriminator(d_cfg).apply({"params": d_params}, images)


def generator_objective(g_cfg: GeneratorConfig, d_cfg: AnyD, g_params: dict,
                        buffers: dict, d_params: dict, batch: dict, frozen: dict | None = None,
                        d_input: Callable[[jax.Array], jax.Array] | None = None
                        ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    """G's non-saturating loss on fakes of ``batch``, with their ws and D's mean score."""
    images, ws = fake_images(g_cfg, g_params, buffers, batch)
    logits = discriminator_logits(d_cfg, d_params, images, frozen, batch.get("aug_fake"), d_input)
    return generator_loss(logits), (ws, jnp.mean(logits))


def discriminator_objective(config: GANTrainConfig, d_cfg: AnyD, d_params: dict,
                            real: jax.Array, fakes: jax.Array, with_r1: bool,
                            frozen: dict | None = None, aug_keys: dict | None = None,
                            d_input: Callable[[jax.Array], jax.Array] | None = None
                            ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    """D's logistic loss, plus the lazy R1 term on R1 steps; with the R1 penalty (0 on other
    steps) and D's mean score of the reals. A projected D takes ``frozen`` and ``aug_keys``
    (``{"aug_real", "aug_fake"}``, one key per image) and has no R1 step."""
    aug_keys = aug_keys or {}
    real_logits = discriminator_logits(d_cfg, d_params, real, frozen, aug_keys.get("aug_real"),
                                       d_input)
    loss = discriminator_loss(real_logits, discriminator_logits(
        d_cfg, d_params, fakes, frozen, aug_keys.get("aug_fake"), d_input))
    r1 = jnp.zeros(())
    if with_r1:
        if isinstance(d_cfg, ProjectedConfig):
            raise ValueError("the projected discriminator trains without R1")
        logits = lambda images: discriminator_logits(d_cfg, d_params, images, d_input=d_input)
        r1 = r1_penalty(logits, real)
        loss = loss + r1 * (config.r1_gamma / 2 * config.r1_interval)
    return loss, (r1, jnp.mean(real_logits))


def local_step(config: GANTrainConfig, g_cfg: GeneratorConfig, d_cfg: AnyD,
               state: GANTrainState, g_batch: dict, d_batch: dict, beta: jax.Array,
               frozen: dict, blur_sigma: jax.Array, with_r1: bool) -> tuple[GANTrainState, dict]:
    """One step on this device's share of the batches (inside ``shard_map``)."""
    d_input = (None if config.blur_radius == 0 else
               functools.partial(blur_images, sigma=blur_sigma, radius=config.blur_radius))
    # check_vma=False: gradients of the replicated parameters stay per-device (as under pmap)
    # and are averaged explicitly with pmean
    (g_loss, (ws, fake_score)), g_grads = jax.value_and_grad(
        generator_objective, argnums=2, has_aux=True)(
        g_cfg, d_cfg, state.g["params"], state.g["buffers"], state.d["params"], g_batch, frozen,
        d_input)
    g_params, g_opt = optimizer_step(state.tx, state.g["params"], state.g_opt, pmean(g_grads))
    w_avg = pmean(update_w_avg(state.g["buffers"]["mapping"]["w_avg"], ws, g_cfg.w_avg_beta))
    buffers = {**state.g["buffers"], "mapping": {"w_avg": w_avg}}

    fakes = jax.lax.stop_gradient(fake_images(g_cfg, g_params, buffers, d_batch)[0])
    (d_total, (r1, real_score)), d_grads = jax.value_and_grad(
        discriminator_objective, argnums=2, has_aux=True)(
        config, d_cfg, state.d["params"], d_batch["real"], fakes, with_r1, frozen,
        {k: d_batch[k] for k in ("aug_real", "aug_fake") if k in d_batch}, d_input)
    d_params, d_opt = optimizer_step(state.tx, state.d["params"], state.d_opt, pmean(d_grads))

    state = state.replace(
        g={"params": g_params, "buffers": buffers}, d={"params": d_params},
        g_ema={"params": ema_update(state.g_ema["params"], g_params, beta), "buffers": buffers},
        g_opt=g_opt, d_opt=d_opt)
    metrics = {"g_loss": g_loss, "d_loss": d_total, "r1": r1,
               "real_score": real_score, "fake_score": fake_score}
    return state, pmean(metrics)


def draw_batch(config: GANTrainConfig, g_cfg: GeneratorConfig, num_devices: int,
               key: jax.Array, real_pool: jax.Array | None) -> dict:
    """The global batch of one phase (latents, mixing cutoffs, noise keys and, given
    ``real_pool``, real images in [-1, 1]; with the projected D, augmentation keys for the
    fakes and reals), laid out for ``num_devices`` (``interleave``)."""
    n = config.batch_size
    k_idx, k_z, k_mix, k_cut, k_noise = jax.random.split(key, 5)
    batch = {"z": jax.random.normal(k_z, (n, g_cfg.z_dim)),
             "z_mix": jax.random.normal(k_mix, (n, g_cfg.z_dim)),
             "cutoffs": mixing_cutoffs(k_cut, n, g_cfg.num_ws, config.style_mixing),
             "noise_keys": jax.random.split(k_noise, n)}
    if real_pool is not None:
        idx = jax.random.randint(k_idx, (n,), 0, real_pool.shape[0])
        batch["real"] = real_pool[idx].astype(jnp.float32) / 127.5 - 1.0
    if config.projected:   # keys of their own, so that the StyleGAN2 D's draws stay as they were
        batch["aug_fake"] = jax.random.split(jax.random.fold_in(key, 1), n)
        if real_pool is not None:
            batch["aug_real"] = jax.random.split(jax.random.fold_in(key, 2), n)
    return jax.tree_util.tree_map(lambda x: interleave(x, num_devices), batch)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3), static_argnames="with_r1",
                   donate_argnums=4)
def train_step(config: GANTrainConfig, g_cfg: GeneratorConfig, d_cfg: AnyD,
               mesh: jax.sharding.Mesh, state: GANTrainState, images_uint8: jax.Array,
               step: jax.Array, with_r1: bool = False, frozen: dict | None = None
               ) -> tuple[GANTrainState, dict]:
    """Step ``step``, data-parallel over ``mesh``.

    ``images_uint8`` [N, R, R, C] is the whole training set, kept on the devices; the step
    gathers its batch from it. ``with_r1`` is static (two compilations). Bind the static
    settings with ``functools.partial(train_step, config, g_cfg, d_cfg, mesh)``. ``frozen``:
    the projected D's fixed inputs (:func:`mlss_jax.gan.projected.frozen_inputs`: the feature
    encoder's parameters and the random projections), replicated, never updated.
    """
    if isinstance(d_cfg, ProjectedConfig) and frozen is None:
        raise ValueError("the projected discriminator needs its frozen inputs (frozen=...)")
    num_devices = mesh.devices.size
    check_batch(config.batch_size, num_devices, config.mbstd_group_size)
    g_key, d_key = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(config.seed), step))
    g_batch = draw_batch(config, g_cfg, num_devices, g_key, None)
    d_batch = draw_batch(config, g_cfg, num_devices, d_key, images_uint8)
    sharded = jax.shard_map(
        functools.partial(local_step, config, g_cfg, d_cfg, with_r1=with_r1), mesh=mesh,
        in_specs=(REPLICATED, SHARDED, SHARDED, REPLICATED, REPLICATED, REPLICATED),
        out_specs=(REPLICATED, REPLICATED), check_vma=False)
    return sharded(state, g_batch, d_batch, ema_beta_at(config, step),
                   {} if frozen is None else frozen, blur_sigma_at(config, step))


@dataclasses.dataclass
class TrainResult:
    run_dir: Path
    step: int
    pickle_path: Path
    seconds: float
    images_per_second: float


def init_from_pickle(state: GANTrainState, pickle_path: str | Path, g_cfg: GeneratorConfig,
                     d_cfg: AnyD, fresh_discriminator: bool = False) -> GANTrainState:
    """Start from a network pickle's weights (NVIDIA's ``--resume=pkl``): G and G_ema from its
    Gs, D from its D (or, with ``fresh_discriminator`` or a projected D, which no pickle holds,
    D as initialised); the optimiser states stay fresh. The architectures taken must match."""
    from mlss_jax.weights.nvidia import convert_network_pickle

    nets = convert_network_pickle(Path(pickle_path).read_bytes())
    shapes = lambda tree: jax.tree_util.tree_map(np.shape, tree)
    if shapes(nets.generator_vars) != shapes(state.g):
        raise InputFileError(f"{pickle_path}: its generator ({nets.generator_config}) differs from "
                             f"this run's ({g_cfg})")
    g_vars = jax.tree_util.tree_map(jnp.asarray, nets.generator_vars)
    state = state.replace(g=g_vars, g_ema=jax.tree_util.tree_map(jnp.copy, g_vars))
    if fresh_discriminator or isinstance(d_cfg, ProjectedConfig):
        return state
    if nets.discriminator_vars is None or shapes(nets.discriminator_vars) != shapes(state.d):
        raise InputFileError(f"{pickle_path}: no discriminator matching this run's ({d_cfg}); "
                             "--fresh-discriminator starts D from random instead")
    return state.replace(d=jax.tree_util.tree_map(jnp.asarray, nets.discriminator_vars))


def train_gan(config: GANTrainConfig, images: np.ndarray, run_dir: str | Path,
              resume: bool = False, dataset_name: str = "shapes",
              progress: bool | None = None, init_from: str | Path | None = None,
              force: bool = False, deadline: float | None = None,
              fresh_discriminator: bool = False, snapshot_pickles: bool = False) -> TrainResult:
    """Train (or resume) a run in ``run_dir``; writes checkpoints, samples, log and ``network.pkl``.

    ``images``: the training set, uint8 [N, R, R, C]. ``init_from``: a network
    pickle whose weights a new run starts from (only its G with ``fresh_discriminator``).
    ``force``: replace a run already in ``run_dir``.
    With several processes (joined before: ``runtime.distributed.join``), each calls this with
    the same images; process 0 writes the samples and the pickle. ``deadline``: a
    ``time.monotonic()`` time at which to pause (checkpoint, samples and ``network.pkl`` of the
    step reached, then :class:`~mlss_jax.runtime.loop.TrainingPaused`). ``snapshot_pickles``:
    also write each snapshot's network as ``snapshots/network-<step>.pkl``, to pick the best
    one afterwards (a GAN's quality wanders from snapshot to snapshot).

    With the projected D (``config.discriminator``), the checkpoints hold its trainable heads;
    the feature encoder is read from ``config.feature_encoder`` (the run records its digest, and
    a resume with other encoder weights is refused) and the random projections are drawn again
    from the seed. The TF pickle's format has room only for NVIDIA's D, so a projected run's
    pickle holds, as its D, a StyleGAN2 D of this config's shape freshly initialised from the
    seed: untrained, there only to keep the pickle valid (a run started from such a pickle
    should take ``fresh_discriminator``). Its G and Gs are the trained ones.
    """
    from mlss_jax.networks.stylegan2 import StyleGAN2Generator
    from mlss_jax.networks.sampling import generate_images
    from mlss_jax.viz.grid import save_image_grid
    from mlss_jax.runtime.run_state import SNAPSHOTS
    from mlss_jax.weights.tf_format import export_tf_pickle

    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"training images must be uint8 [N, R, R, C], got {images.dtype} "
                         f"{images.shape}")
    resolution, channels = images.shape[1], images.shape[3]
    g_cfg = config.generator_config(resolution, channels)
    # the D of the pickle: the trained one, or with the projected D an untrained placeholder
    pickle_d_cfg = config.discriminator_config(resolution, channels)
    if fresh_discriminator and init_from is None:
        raise ConfigError("a fresh discriminator is for a run started from a pickle (init_from)")
    settings = config.to_dict()
    if config.blur_sigma == 0:   # recorded only when set, so that runs written before it resume
        del settings["blur_sigma"], settings["blur_fade_images"]
    frozen = None
    if config.projected:
        from mlss_jax.gan.feature_encoder import feature_encoder_digest, load_feature_encoder
        from mlss_jax.gan.projected import frozen_inputs

        encoder_cfg, encoder_params = load_feature_encoder(config.feature_encoder)
        d_cfg: AnyD = config.projected_config(resolution, channels, encoder_cfg.channels)
        d_record = {"projected_discriminator": {
            **d_cfg.to_dict(), "feature_encoder_world": encoder_cfg.world,
            "feature_encoder_digest": feature_encoder_digest(config.feature_encoder)}}
    else:
        d_cfg = pickle_d_cfg
        # the StyleGAN2 D's run config as it was before there was a choice: runs resume unchanged
        del settings["discriminator"], settings["feature_encoder"]
        d_record = {"discriminator": d_cfg.to_dict()}
    run_config = {**settings, "dataset": dataset_name,
                  "init_from": None if init_from is None else str(init_from),
                  # recorded only when set, so that runs written before it resume unchanged
                  **({"fresh_discriminator": True} if fresh_discriminator else {}),
                  "generator": g_cfg.to_dict(), **d_record}
    mesh = data_mesh()
    # the encoder's folder may move (its digest is what must not change)
    with training_run(run_dir, run_config, resume,
                      ("steps", "snapshot_every", "log_every", "feature_encoder"),
                      init_train_state(config, g_cfg, d_cfg), force, mesh) as run:
        state = run.state
        if run.start == 0 and init_from is not None:
            state = parallel.replicate(parallel.to_host(
                init_from_pickle(state, init_from, g_cfg, d_cfg, fresh_discriminator)), mesh)
        main = distributed.is_main()
        samples_dir = run.run_dir / "samples"
        step_fn = functools.partial(train_step, config, g_cfg, d_cfg, mesh)
        if config.projected:
            frozen = parallel.replicate(frozen_inputs(d_cfg, encoder_params, config.seed), mesh)
            pickle_d_vars = parallel.to_host(init_discriminator(
                pickle_d_cfg, jax.random.PRNGKey(config.seed)))
        # every process holds the whole (small) training set; each device gathers its shard
        # of the batch from it inside the step
        pool = parallel.replicate(images, mesh)
        grid_z = np.random.default_rng(1234).standard_normal((64, g_cfg.z_dim)).astype(np.float32)
        snapshots_dir = run.run_dir / SNAPSHOTS
        if main:
            samples_dir.mkdir(exist_ok=True)
            if run.start == 0:
                save_image_grid(images[:64], samples_dir / "reals.png", ncols=8)
            if snapshot_pickles:
                snapshots_dir.mkdir(exist_ok=True)

        def networks_on_host(state: GANTrainState) -> dict:   # not the Adam states
            return parallel.to_host({"g": state.g, "g_ema": state.g_ema, "d": state.d})

        def network_pickle(host: dict) -> bytes:
            d_vars = pickle_d_vars if config.projected else host["d"]
            return export_tf_pickle(g_cfg, host["g_ema"], pickle_d_cfg, d_vars,
                                    training_generator_vars=host["g"])

        def write_snapshot(state: GANTrainState, step: int) -> None:  # process 0, its devices
            host = networks_on_host(state)
            ema = StyleGAN2Generator(g_cfg, host["g_ema"])
            save_image_grid(generate_images(ema, grid_z, batch_size=64, progress=False),
                            samples_dir / f"fakes-{step:06d}.png", ncols=8)
            if snapshot_pickles:
                write_atomic(snapshots_dir / f"network-{step:06d}.pkl", network_pickle(host))

        pickle_path = run.run_dir / "network.pkl"

        def write_pickle(state: GANTrainState) -> None:
            if main:
                write_atomic(pickle_path, network_pickle(networks_on_host(state)))
            distributed.barrier("network.pkl written")

        latest_r1 = {}

        def step_logging_latest_r1(st: GANTrainState, step: int) -> tuple[GANTrainState, dict]:
            """One step; its metrics' ``r1`` is the latest R1 step's penalty (none before the
            first since the start or resume), not the 0 of a step without R1 (none at all
            with the projected D, which has no R1 step)."""
            with_r1 = not config.projected and step % config.r1_interval == 0
            st, metrics = step_fn(st, pool, np.int32(step), with_r1=with_r1, frozen=frozen)
            if with_r1:
                latest_r1["r1"] = metrics["r1"]
            metrics = {k: v for k, v in metrics.items() if k != "r1"}
            return st, {**metrics, **latest_r1}

        try:
            trained = run.train(
                state, config.steps, step_logging_latest_r1, log_every=config.log_every,
                snapshot_every=config.snapshot_every, on_snapshot=write_snapshot,
                postfix=("g_loss", "d_loss"), desc="train stylegan2", progress=progress,
                items_per_step=config.batch_size, deadline=deadline, work="GAN training")
        except TrainingPaused as paused:
            write_pickle(paused.state)
            raise TrainingPaused(paused.step, paused.steps, run.run_dir, outputs=(pickle_path,)) from None
    write_pickle(trained.state)
    return TrainResult(run.run_dir, trained.step, pickle_path, trained.seconds,
                       trained.per_second(config.batch_size))
