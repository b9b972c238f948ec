"""StyleGAN2 generator: mapping network and skip synthesis network (Flax, NHWC).

Variables live in two collections: ``params`` (trainable) and ``buffers``
(``w_avg`` and the constant noise maps ``noise_const``). The parameter tree
follows NVIDIA's PyTorch names (``mapping/fc0``, ``synthesis/b8/conv0/affine`` ...).
"""

from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mlss_jax.networks.config import GeneratorConfig
from mlss_jax.networks.layers import (EqualizedDense, normal_init, bias_act, modulated_conv,
                                      upsample_fir)

NOISE_MODES = ("const", "none", "random")


def stylegan_truncation(ws: jax.Array, w_avg: jax.Array, psi: float | jax.Array,
                        cutoff: int | None = None) -> jax.Array:
    """StyleGAN truncation: ``w_avg + psi (w - w_avg)`` on the first ``cutoff`` inputs.

    Args:
      ws: [N, num_ws, w_dim] latents.
      w_avg: [w_dim] centre of W.
      psi: strength, a scalar (1 leaves ws unchanged); may be traced.
      cutoff: number of leading layer inputs to truncate (None: all). Static.
    """
    truncated = w_avg + psi * (ws - w_avg)
    if cutoff is None:
        return truncated
    layer = jnp.arange(ws.shape[1])[None, :, None]
    return jnp.where(layer < cutoff, truncated, ws)


def normalize_2nd_moment(z: jax.Array, eps: float = 1e-8) -> jax.Array:
    return z * jax.lax.rsqrt(jnp.mean(jnp.square(z), axis=-1, keepdims=True) + eps)


class MappingNetwork(nn.Module):
    """z -> ws [N, num_ws, w_dim], with optional StyleGAN truncation toward ``w_avg``."""

    config: GeneratorConfig

    @nn.compact
    def __call__(self, z: jax.Array, truncation_psi: float | jax.Array = 1.0,
                 truncation_cutoff: int | None = None) -> jax.Array:
        cfg = self.config
        hidden = cfg.mapping_hidden or cfg.w_dim
        x = normalize_2nd_moment(z)
        for i in range(cfg.mapping_layers):
            features = cfg.w_dim if i == cfg.mapping_layers - 1 else hidden
            x = EqualizedDense(features, act="lrelu", lr_multiplier=cfg.mapping_lr_multiplier,
                               name=f"fc{i}")(x)
        w_avg = self.variable("buffers", "w_avg", jnp.zeros, (cfg.w_dim,), jnp.float32)
        ws = jnp.broadcast_to(x[:, None, :], (x.shape[0], cfg.num_ws, cfg.w_dim))
        if isinstance(truncation_psi, (int, float)) and truncation_psi == 1.0:
            return ws
        return stylegan_truncation(ws, w_avg.value, truncation_psi, truncation_cutoff)


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally 2x up-sampling), noise, bias, lrelu."""

    features: int
    resolution: int
    up: bool = False
    conv_clamp: float | None = None
    fused_modconv: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array, noise_mode: str) -> jax.Array:
        in_channels = x.shape[-1]
        styles = EqualizedDense(in_channels, bias_init=1.0, name="affine")(w)
        weight = self.param("weight", normal_init(), (3, 3, in_channels, self.features))
        x = modulated_conv(x, weight, styles, up=self.up, fused=self.fused_modconv)
        res = self.resolution
        noise_const = self.variable("buffers", "noise_const",
                                    lambda: jax.random.normal(self.make_rng("params"), (res, res)))
        strength = self.param("noise_strength", nn.initializers.zeros, ())
        if noise_mode == "random":
            noise = jax.random.normal(self.make_rng("noise"), (x.shape[0], res, res, 1)) * strength
            x = x + noise.astype(x.dtype)
        elif noise_mode == "const":
            # [R, R] shared by the batch, or [N, R, R] per sample (the projector's)
            noise = noise_const.value
            x = x + ((noise if noise.ndim == 3 else noise[None])[..., None] * strength).astype(x.dtype)
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return bias_act(x, bias, act="lrelu", clamp=self.conv_clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv without demodulation; the He gain goes on the styles."""

    img_channels: int
    conv_clamp: float | None = None
    fused_modconv: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
        in_channels = x.shape[-1]
        styles = EqualizedDense(in_channels, bias_init=1.0, name="affine")(w)
        styles = styles * (1.0 / math.sqrt(in_channels))
        weight = self.param("weight", normal_init(), (1, 1, in_channels, self.img_channels))
        y = modulated_conv(x, weight, styles, demodulate=False, fused=self.fused_modconv)
        bias = self.param("bias", nn.initializers.zeros, (self.img_channels,))
        return bias_act(y, bias, clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the skip generator: (const |) conv0 up, conv1, ToRGB added to the image."""

    config: GeneratorConfig
    resolution: int

    @nn.compact
    def __call__(self, x: jax.Array | None, img: jax.Array | None, block_ws: jax.Array,
                 noise_mode: str) -> tuple[jax.Array, jax.Array]:
        cfg, res = self.config, self.resolution
        channels = cfg.channels(res)
        # mixed precision: activations and convolutions in bfloat16, clamped (as NVIDIA's
        # float16 blocks), styles and the image in float32
        bf16 = cfg.computes_in_bf16(res)
        dtype = jnp.bfloat16 if bf16 else jnp.float32
        clamp = cfg.conv_clamp if cfg.conv_clamp is not None or not bf16 else 256.0
        layer = lambda name, up: SynthesisLayer(channels, res, up=up, conv_clamp=clamp,
                                                fused_modconv=cfg.fused_modconv, name=name)
        if res == 4:
            const = self.param("const", normal_init(), (4, 4, channels))
            x = jnp.broadcast_to(const[None], (block_ws.shape[0], 4, 4, channels))
            x = layer("conv1", False)(x.astype(dtype), block_ws[:, 0], noise_mode)
            num_conv = 1
        else:
            x = layer("conv0", True)(x.astype(dtype), block_ws[:, 0], noise_mode)
            x = layer("conv1", False)(x, block_ws[:, 1], noise_mode)
            num_conv = 2
        y = ToRGBLayer(cfg.img_channels, conv_clamp=clamp,
                       fused_modconv=cfg.fused_modconv, name="torgb")(x, block_ws[:, num_conv])
        y = y.astype(jnp.float32)
        img = y if img is None else upsample_fir(img) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, R, R, C] in about [-1, 1].

    Block r reads ws[2 log2(r) - 5 ...]; each ToRGB shares its w with the next
    block's first conv, as in NVIDIA's networks.
    """

    config: GeneratorConfig

    @nn.compact
    def __call__(self, ws: jax.Array, noise_mode: str = "const") -> jax.Array:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        x = img = None
        w_idx = 0
        for res in self.config.block_resolutions:
            num_conv = 1 if res == 4 else 2
            block_ws = ws[:, w_idx:w_idx + num_conv + 1]
            x, img = SynthesisBlock(self.config, res, name=f"b{res}")(x, img, block_ws, noise_mode)
            w_idx += num_conv
        return img


class Generator(nn.Module):
    """Mapping followed by synthesis; ``map_latents`` and ``synthesize`` expose each half."""

    config: GeneratorConfig

    def setup(self) -> None:
        self.mapping = MappingNetwork(self.config)
        self.synthesis = SynthesisNetwork(self.config)

    def map_latents(self, z: jax.Array, truncation_psi: float | jax.Array = 1.0,
                    truncation_cutoff: int | None = None) -> jax.Array:
        return self.mapping(z, truncation_psi, truncation_cutoff)

    def synthesize(self, ws: jax.Array, noise_mode: str = "const") -> jax.Array:
        return self.synthesis(ws, noise_mode)

    def __call__(self, z: jax.Array, truncation_psi: float | jax.Array = 1.0,
                 truncation_cutoff: int | None = None, noise_mode: str = "const") -> jax.Array:
        return self.synthesize(self.map_latents(z, truncation_psi, truncation_cutoff), noise_mode)


@functools.partial(jax.jit, static_argnums=0)
def init_generator(config: GeneratorConfig, rng: jax.Array) -> dict:
    """Fresh variables ``{'params', 'buffers'}`` for ``config`` (NVIDIA's initialisation)."""
    z = jnp.zeros((1, config.z_dim), jnp.float32)
    return dict(Generator(config).init({"params": rng}, z, noise_mode="none"))


@functools.partial(jax.jit, static_argnames=("config", "truncation_cutoff"))
def generator_mapping(config: GeneratorConfig, variables: dict, z: jax.Array,
                      truncation_psi: float | jax.Array = 1.0,
                      truncation_cutoff: int | None = None) -> jax.Array:
    """Pure, jitted mapping: z [N, z_dim] -> ws [N, num_ws, w_dim]."""
    return Generator(config).apply(variables, z, truncation_psi, truncation_cutoff,
                                   method=Generator.map_latents)


@functools.partial(jax.jit, static_argnames=("config", "noise_mode"))
def generator_synthesis(config: GeneratorConfig, variables: dict, ws: jax.Array,
                        noise_mode: str = "const", rng: jax.Array | None = None) -> jax.Array:
    """Pure, jitted synthesis: ws [N, num_ws, w_dim] -> images [N, R, R, C].

    ``rng`` is required for ``noise_mode='random'`` and unused otherwise.
    """
    if noise_mode == "random" and rng is None:
        raise ValueError("noise_mode='random' needs an explicit PRNG key (rng)")
    rngs = {"noise": rng} if noise_mode == "random" else {}
    return Generator(config).apply(variables, ws, noise_mode, method=Generator.synthesize, rngs=rngs)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[-1, 1] float images -> uint8, as NVIDIA's ``generate.py`` (x * 127.5 + 128, clipped)."""
    return np.clip(np.asarray(images, np.float32) * 127.5 + 128, 0, 255).astype(np.uint8)
