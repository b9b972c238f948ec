"""StyleGAN2 resnet discriminator with minibatch standard deviation (Flax, NHWC)."""

from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from mlss_jax.networks.config import DiscriminatorConfig
from mlss_jax.networks.layers import EqualizedConv, EqualizedDense

_HALF_GAIN = math.sqrt(0.5)


def minibatch_stddev(x: jax.Array, group_size: int, num_channels: int = 1) -> jax.Array:
    """Append the std of features over groups of samples as ``num_channels`` extra maps.

    Sample i falls in group ``i mod (N / G)``; N must be divisible by G = min(group_size, N).
    """
    n, h, w, c = x.shape
    g = min(group_size, n)
    if n % g:
        raise ValueError(f"batch size {n} is not divisible by the mbstd group size {g}")
    y = x.reshape(g, n // g, h, w, num_channels, c // num_channels)
    y = jnp.sqrt(jnp.var(y, axis=0) + 1e-8)        # [M, H, W, F, c]
    y = jnp.mean(y, axis=(1, 2, 4))                  # [M, F]
    y = jnp.broadcast_to(y[None, :, None, None, :], (g, n // g, h, w, num_channels))
    return jnp.concatenate([x, y.reshape(n, h, w, num_channels)], axis=-1)


class DiscriminatorBlock(nn.Module):
    """Two 3x3 convs (the second down-sampling) plus a 1x1 down-sampling skip, each x sqrt(1/2)."""

    config: DiscriminatorConfig
    resolution: int
    from_rgb: bool

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cfg = self.config
        tmp, out = cfg.channels(self.resolution), cfg.channels(self.resolution // 2)
        clamp = cfg.conv_clamp
        if self.from_rgb:
            x = EqualizedConv(tmp, 1, act="lrelu", conv_clamp=clamp, name="fromrgb")(x)
        skip = EqualizedConv(out, 1, down=True, use_bias=False, name="skip")(x, gain=_HALF_GAIN)
        x = EqualizedConv(tmp, 3, act="lrelu", conv_clamp=clamp, name="conv0")(x)
        x = EqualizedConv(out, 3, act="lrelu", down=True, conv_clamp=clamp,
                          name="conv1")(x, gain=_HALF_GAIN)
        return skip + x


class DiscriminatorEpilogue(nn.Module):
    config: DiscriminatorConfig

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cfg = self.config
        channels = cfg.channels(4)
        x = minibatch_stddev(x, cfg.mbstd_group_size, cfg.mbstd_channels)
        x = EqualizedConv(channels, 3, act="lrelu", conv_clamp=cfg.conv_clamp, name="conv")(x)
        x = x.reshape(x.shape[0], -1)  # NHWC order; the converter permutes NVIDIA's NCHW weights
        x = EqualizedDense(channels, act="lrelu", name="fc")(x)
        return EqualizedDense(1, name="out")(x)


class Discriminator(nn.Module):
    """images [N, R, R, C] in [-1, 1] -> logits [N, 1]."""

    config: DiscriminatorConfig

    @nn.compact
    def __call__(self, img: jax.Array) -> jax.Array:
        x = img
        for i, res in enumerate(self.config.block_resolutions):
            x = DiscriminatorBlock(self.config, res, from_rgb=(i == 0), name=f"b{res}")(x)
        return DiscriminatorEpilogue(self.config, name="b4")(x)


@functools.partial(jax.jit, static_argnums=0)
def init_discriminator(config: DiscriminatorConfig, rng: jax.Array) -> dict:
    """Fresh variables ``{'params'}`` for ``config``."""
    img = jnp.zeros((config.mbstd_group_size, config.resolution, config.resolution,
                     config.img_channels), jnp.float32)
    return dict(Discriminator(config).init({"params": rng}, img))


@functools.partial(jax.jit, static_argnames=("config",))
def discriminator_logits(config: DiscriminatorConfig, variables: dict, img: jax.Array) -> jax.Array:
    """Pure, jitted discriminator: images [N, R, R, C] -> logits [N, 1]."""
    return Discriminator(config).apply(variables, img)
