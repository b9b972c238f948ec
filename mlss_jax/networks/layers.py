"""StyleGAN2 building blocks: FIR resampling, modulated convolution, equalised layers.

All tensors are NHWC, conv kernels HWIO. Parameters are stored raw (equalised
learning rate): the He gain and learning-rate multiplier are applied at run time,
as in NVIDIA's networks, so the same modules serve inference and training.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

SQRT2 = math.sqrt(2.0)
FIR_TAPS = (1.0, 3.0, 3.0, 1.0)
_DIMS = ("NHWC", "HWIO", "NHWC")


def fir_filter(x: jax.Array, *, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0),
               gain: float = 1.0) -> jax.Array:
    """NVIDIA's ``upfirdn2d`` with the [1,3,3,1] filter on an NHWC tensor.

    Inserts ``up - 1`` zeros after each pixel, pads ``pad`` on both spatial axes,
    filters (valid), then keeps every ``down``-th pixel. The filter is symmetric,
    so convolution and correlation agree.

    The 2-D filter is separable, so it runs as four shifted multiply-adds per axis:
    elementwise work that XLA fuses, several times faster than a depthwise conv.
    """
    taps = np.asarray(FIR_TAPS) / sum(FIR_TAPS)
    if up > 1:
        for axis in (1, 2):
            shape = list(x.shape)
            zeros = jnp.zeros(shape[:axis + 1] + [up - 1] + shape[axis + 1:], x.dtype)
            x = jnp.concatenate([jnp.expand_dims(x, axis + 1), zeros], axis=axis + 1)
            shape[axis] *= up
            x = x.reshape(shape)
    x = jnp.pad(x, ((0, 0), pad, pad, (0, 0)))
    for axis, scale in ((1, gain), (2, 1.0)):
        n = x.shape[axis] - len(taps) + 1
        x = sum(float(t * scale) * jax.lax.slice_in_dim(x, k, k + n, axis=axis)
                for k, t in enumerate(taps))
    if down > 1:
        x = x[:, ::down, ::down]
    return x


def upsample_fir(x: jax.Array) -> jax.Array:
    """2x up-sampling of an image (the skip generator's RGB path): exact NVIDIA padding."""
    return fir_filter(x, up=2, pad=(2, 1), gain=4.0)


def conv2d(x: jax.Array, weight: jax.Array, *, up: bool = False, down: bool = False) -> jax.Array:
    """Correlation with an HWIO kernel, 'same' size, optionally with 2x up- or down-sampling.

    Up: correlate the zero-dilated input with the (unflipped, TF-oriented) kernel,
    then low-pass; down: low-pass, then a stride-2 valid correlation. These are
    NVIDIA's ``conv2d_resample`` paddings, which differ from a plain resize + conv
    on the border.
    """
    k = weight.shape[0]
    if up:
        if k != 3:
            raise ValueError("up-sampling convolution is implemented for 3x3 kernels")
        return fir_filter(_dilated_conv3x3_polyphase(x, weight), pad=(1, 1), gain=4.0)
    if down:
        p = (k - 1) // 2 + 1
        y = fir_filter(x, pad=(p, p), down=1 if k > 1 else 2)
        stride = 2 if k > 1 else 1
        return jax.lax.conv_general_dilated(
            y, weight, window_strides=(stride, stride), padding="VALID",
            dimension_numbers=_DIMS)
    p = k // 2
    return conv_stride1(x, weight, ((p, p), (p, p)))


def _xla_conv(x: jax.Array, weight: jax.Array, padding: tuple) -> jax.Array:
    return jax.lax.conv_general_dilated(x, weight, (1, 1), padding, dimension_numbers=_DIMS)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_stride1(x: jax.Array, weight: jax.Array, padding: tuple) -> jax.Array:
    """Stride-1 correlation (NHWC, HWIO, explicit padding) with a faster weight gradient.

    XLA's CPU backend computes the kernel gradient as a convolution that runs
    4-5x slower than the forward pass; here it is one matrix product per kernel
    tap (the same sums, 2x faster, and 10x faster for the small polyphase
    kernels of the up-sampling conv). The input gradient stays XLA's.
    """
    return _xla_conv(x, weight, padding)


def _conv_stride1_fwd(x, weight, padding):
    return _xla_conv(x, weight, padding), (x, weight)


def _conv_stride1_bwd(padding, residuals, grad):
    x, weight = residuals
    _, input_vjp = jax.vjp(lambda x_: _xla_conv(x_, weight, padding), x)
    (grad_x,) = input_vjp(grad)
    kh, kw, c_in, _ = weight.shape
    x_pad = jnp.pad(x, ((0, 0), padding[0], padding[1], (0, 0)))
    out_h, out_w = grad.shape[1:3]
    grad_rows = grad.reshape(-1, grad.shape[-1])
    grad_w = jnp.stack([
        jnp.stack([x_pad[:, a:a + out_h, b:b + out_w].reshape(-1, c_in).T @ grad_rows
                   for b in range(kw)])
        for a in range(kh)])
    return grad_x, grad_w.astype(weight.dtype)


conv_stride1.defvjp(_conv_stride1_fwd, _conv_stride1_bwd)

# XLA's CPU convolution is pathologically slow on some tiny maps (VGG16's 3x3x512 conv
# at 2x2: 1.4 s where the equivalent matrix product takes 0.01 s, batch 40).
_IM2COL_MAX_PIXELS = 16


def conv_same(x: jax.Array, weight: jax.Array) -> jax.Array:
    """Stride-1 correlation with 'same' zero padding (odd kernel, NHWC, HWIO). Maps of at most
    16 pixels go through one explicit im2col matrix product instead of XLA's convolution."""
    kh, kw, c_in, c_out = weight.shape
    ph, pw = kh // 2, kw // 2
    n, h, w, _ = x.shape
    if h * w > _IM2COL_MAX_PIXELS:
        return _xla_conv(x, weight, ((ph, ph), (pw, pw)))
    x_pad = jnp.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    columns = jnp.concatenate([x_pad[:, a:a + h, b:b + w] for a in range(kh) for b in range(kw)],
                              axis=-1)
    return (columns.reshape(-1, kh * kw * c_in) @ weight.reshape(-1, c_out)).reshape(n, h, w, c_out)


def _dilated_conv3x3_polyphase(x: jax.Array, weight: jax.Array) -> jax.Array:
    """Correlate the 2x zero-dilated ``x`` (padded by 2) with a 3x3 kernel: [N, 2H+1, 2W+1, O].

    Computed as four small convolutions on the undilated grid, one per output
    parity, instead of one convolution over an input that is 3/4 zeros: even
    outputs see taps 0 and 2 of the kernel, odd outputs tap 1.
    """
    n, h, w, _ = x.shape
    taps = {0: jnp.asarray([0, 2]), 1: jnp.asarray([1])}  # by output parity
    pads = {0: (1, 1), 1: (0, 0)}

    def phase(row: int, col: int) -> jax.Array:
        kernel = weight[taps[row]][:, taps[col]]
        return conv_stride1(x, kernel, (pads[row], pads[col]))

    def interleave_cols(even: jax.Array, odd: jax.Array) -> jax.Array:
        odd = jnp.pad(odd, ((0, 0), (0, 0), (0, 1), (0, 0)))   # W -> W+1 columns
        y = jnp.stack([even, odd], axis=3)                     # [N, rows, W+1, 2, O]
        return y.reshape(n, y.shape[1], 2 * (w + 1), -1)

    even_rows = interleave_cols(phase(0, 0), phase(0, 1))     # [N, H+1, 2W+2, O]
    odd_rows = interleave_cols(phase(1, 0), phase(1, 1))      # [N, H, 2W+2, O]
    odd_rows = jnp.pad(odd_rows, ((0, 0), (0, 1), (0, 0), (0, 0)))
    y = jnp.stack([even_rows, odd_rows], axis=2).reshape(n, 2 * (h + 1), 2 * (w + 1), -1)
    return y[:, :2 * h + 1, :2 * w + 1]


def modulated_conv(x: jax.Array, weight: jax.Array, styles: jax.Array, *,
                   demodulate: bool = True, up: bool = False, fused: bool = False,
                   eps: float = 1e-8) -> jax.Array:
    """StyleGAN2 modulated convolution of ``x [N,H,W,I]`` with ``weight [k,k,I,O]``.

    ``styles [N,I]`` scale the input channels per sample; demodulation rescales each
    output channel to unit expected variance. ``fused=True`` builds one kernel per
    sample (a grouped convolution, via vmap); ``fused=False`` scales activations
    around one shared kernel. Both compute the same function. The convolution runs in
    ``x``'s dtype (bfloat16 in mixed precision); the demodulation coefficients are
    computed in float32 from float32 ``weight`` and ``styles`` first.
    """
    if demodulate:
        # sum_{kh,kw,i} (W s_i)^2 = sum_i s_i^2 sum_{kh,kw} W^2
        weight_sq = jnp.sum(jnp.square(weight), axis=(0, 1))  # [I, O]
        demod = jax.lax.rsqrt(jnp.square(styles) @ weight_sq + eps).astype(x.dtype)  # [N, O]
    weight, styles = weight.astype(x.dtype), styles.astype(x.dtype)
    if fused:
        kernels = weight[None] * styles[:, None, None, :, None]
        if demodulate:
            kernels = kernels * demod[:, None, None, None, :]
        per_sample = lambda xi, wi: conv2d(xi[None], wi, up=up)[0]
        return jax.vmap(per_sample)(x, kernels)
    y = conv2d(x * styles[:, None, None, :], weight, up=up)
    if demodulate:
        y = y * demod[:, None, None, :]
    return y


def bias_act(x: jax.Array, bias: jax.Array, *, act: str = "linear", gain: float = 1.0,
             clamp: float | None = None) -> jax.Array:
    """Add bias, apply the activation (lrelu has slope 0.2 and gain sqrt 2), scale, clamp."""
    x = x + jnp.asarray(bias, x.dtype)
    if act == "lrelu":
        x = jax.nn.leaky_relu(x, 0.2)
        gain = gain * SQRT2
    elif act != "linear":
        raise ValueError(f"unknown activation {act!r}")
    if gain != 1.0:
        x = x * gain
    if clamp is not None:
        x = jnp.clip(x, -clamp, clamp)
    return x


def normal_init(scale: float = 1.0) -> Callable:
    """Initialiser drawing N(0, scale^2): NVIDIA's raw (pre-gain) weight initialisation."""
    return lambda key, shape, dtype=jnp.float32: jax.random.normal(key, shape, dtype) * scale


class EqualizedDense(nn.Module):
    """Fully connected layer with equalised learning rate: ``act(x W g + b l)``.

    ``g = lr_multiplier / sqrt(fan_in)``, ``l = lr_multiplier``; weights are drawn
    N(0, 1/lr_multiplier^2) so that their effective scale starts at He init.
    """

    features: int
    act: str = "linear"
    lr_multiplier: float = 1.0
    bias_init: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        fan_in = x.shape[-1]
        weight = self.param("weight", normal_init(1.0 / self.lr_multiplier), (fan_in, self.features))
        y = x @ (weight * (self.lr_multiplier / math.sqrt(fan_in)))
        bias = self.param("bias", nn.initializers.constant(self.bias_init / self.lr_multiplier),
                          (self.features,))
        return bias_act(y, bias * self.lr_multiplier, act=self.act)


class EqualizedConv(nn.Module):
    """Plain (unmodulated) conv with equalised learning rate, as in the discriminator."""

    features: int
    kernel_size: int = 3
    act: str = "linear"
    down: bool = False
    use_bias: bool = True
    conv_clamp: float | None = None

    @nn.compact
    def __call__(self, x: jax.Array, gain: float = 1.0) -> jax.Array:
        fan_in = x.shape[-1] * self.kernel_size ** 2
        weight = self.param("weight", normal_init(),
                            (self.kernel_size, self.kernel_size, x.shape[-1], self.features))
        y = conv2d(x, weight * (1.0 / math.sqrt(fan_in)), down=self.down)
        bias = self.param("bias", nn.initializers.zeros, (self.features,)) if self.use_bias else 0.0
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        return bias_act(y, bias, act=self.act, gain=gain, clamp=clamp)
