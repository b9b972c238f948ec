"""The StyleGAN2 building blocks against direct NumPy computations of their definitions."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlss_jax.networks.config import DiscriminatorConfig, GeneratorConfig
from mlss_jax.networks.discriminator import init_discriminator, minibatch_stddev
from mlss_jax.networks.generator import generator_mapping, generator_synthesis, init_generator
from mlss_jax.networks.layers import FIR_TAPS, conv_same, conv_stride1, fir_filter, modulated_conv
from mlss_jax.method.truncation import stylegan_truncation
from mlss_jax.weights.checkpoint import count_params


def fir_kernel() -> np.ndarray:
    """NVIDIA's 4x4 filter: outer([1,3,3,1]) / 64."""
    k = np.outer(FIR_TAPS, FIR_TAPS)
    return k / k.sum()


def upfirdn_reference(x, up, down, pad, gain):
    """NVIDIA's upfirdn2d on NHWC by its definition: zero-insert, pad, convolve, decimate."""
    n, h, w, c = x.shape
    z = np.zeros((n, h * up, w * up, c), x.dtype)
    z[:, ::up, ::up] = x
    z = np.pad(z, ((0, 0), pad, pad, (0, 0)))
    k = fir_kernel()[::-1, ::-1] * gain  # true convolution flips the filter
    out_h, out_w = z.shape[1] - 3, z.shape[2] - 3
    y = np.zeros((n, out_h, out_w, c), np.float64)
    for a in range(4):
        for b in range(4):
            y += k[a, b] * z[:, a:a + out_h, b:b + out_w]
    return y[:, ::down, ::down]


@pytest.mark.parametrize("up, down, pad, gain", [(2, 1, (2, 1), 4.0), (1, 2, (1, 1), 1.0),
                                                 (1, 1, (1, 1), 4.0), (1, 1, (2, 2), 1.0)])
def test_fir_filter_matches_upfirdn_definition(up, down, pad, gain):
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 3)).astype(np.float32)
    expected = upfirdn_reference(x, up, down, pad, gain)
    actual = np.asarray(fir_filter(jnp.asarray(x), up=up, down=down, pad=pad, gain=gain))
    np.testing.assert_allclose(actual, expected, atol=1e-5)


def test_fir_filter_has_unit_dc_gain_inside():
    x = jnp.ones((1, 8, 8, 2))
    np.testing.assert_allclose(np.asarray(fir_filter(x, pad=(0, 0))), 1.0, rtol=1e-6)
    up = np.asarray(fir_filter(x, up=2, pad=(2, 1), gain=4.0))
    np.testing.assert_allclose(up[:, 2:-2, 2:-2], 1.0, rtol=1e-6)


def test_modulated_conv_matches_per_sample_kernels():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 5, 5, 4)).astype(np.float32)
    weight = rng.normal(size=(3, 3, 4, 6)).astype(np.float32)
    styles = rng.normal(size=(3, 4)).astype(np.float32)
    expected = np.zeros((3, 5, 5, 6))
    for n in range(3):
        w = weight * styles[n][None, None, :, None]
        w = w / np.sqrt((w ** 2).sum(axis=(0, 1, 2), keepdims=True) + 1e-8)
        xp = np.pad(x[n], ((1, 1), (1, 1), (0, 0)))
        for a in range(3):
            for b in range(3):
                expected[n] += xp[a:a + 5, b:b + 5] @ w[a, b]
    for fused in (False, True):
        actual = np.asarray(modulated_conv(jnp.asarray(x), jnp.asarray(weight),
                                           jnp.asarray(styles), fused=fused))
        np.testing.assert_allclose(actual, expected, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("up", [False, True])
def test_fused_and_unfused_modulation_agree(up):
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(2, 4, 4, 5)), jnp.float32)
    weight = jnp.asarray(rng.normal(size=(3, 3, 5, 7)), jnp.float32)
    styles = jnp.asarray(rng.normal(size=(2, 5)), jnp.float32)
    a = modulated_conv(x, weight, styles, up=up, fused=False)
    b = modulated_conv(x, weight, styles, up=up, fused=True)
    assert a.shape == (2, 8 if up else 4, 8 if up else 4, 7)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)


def test_minibatch_stddev_matches_definition():
    x = np.random.default_rng(3).normal(size=(8, 4, 4, 6)).astype(np.float32)
    y = np.asarray(minibatch_stddev(jnp.asarray(x), group_size=4, num_channels=2))
    assert y.shape == (8, 4, 4, 8)
    np.testing.assert_array_equal(y[..., :6], x)
    for i in range(8):
        group = x[i % 2::2]  # sample i is in group i mod (N / G)
        for f in range(2):
            std = np.sqrt(group[..., 3 * f:3 * f + 3].var(axis=0) + 1e-8).mean()
            np.testing.assert_allclose(y[i, :, :, 6 + f], std, rtol=1e-5)
    with pytest.raises(ValueError, match="divisible"):
        minibatch_stddev(jnp.asarray(x[:6]), group_size=4)


def test_stylegan_truncation_definition():
    rng = np.random.default_rng(4)
    ws = rng.normal(size=(2, 6, 3)).astype(np.float32)
    w_avg = rng.normal(size=(3,)).astype(np.float32)
    out = np.asarray(jax.jit(stylegan_truncation, static_argnames="cutoff")(ws, w_avg, 0.3, cutoff=2))
    np.testing.assert_allclose(out[:, :2], w_avg + 0.3 * (ws[:, :2] - w_avg), rtol=1e-6)
    np.testing.assert_array_equal(out[:, 2:], ws[:, 2:])
    np.testing.assert_allclose(np.asarray(stylegan_truncation(ws, w_avg, 0.0)),
                               np.broadcast_to(w_avg, ws.shape), rtol=1e-6)


@pytest.mark.parametrize("resolution, expected", [(256, 30_034_338), (512, 30_276_583),
                                                  (1024, 30_370_060)])
def test_config_f_parameter_counts(resolution, expected):
    """NVIDIA's config-f counts (docs/formats.md)."""
    cfg = GeneratorConfig(resolution=resolution)
    shapes = jax.eval_shape(lambda key: init_generator(cfg, key), jax.random.PRNGKey(0))
    assert count_params(shapes) == expected
    assert cfg.num_ws == 2 * int(np.log2(resolution)) - 2


@pytest.mark.slow
def test_fresh_generator_and_discriminator_shapes():
    cfg = GeneratorConfig(resolution=16, z_dim=8, w_dim=8, mapping_layers=2,
                          channel_base=128, channel_max=16)
    variables = init_generator(cfg, jax.random.PRNGKey(0))
    z = jax.random.normal(jax.random.PRNGKey(1), (2, 8))
    ws = generator_mapping(cfg, variables, z)
    assert ws.shape == (2, cfg.num_ws, 8)
    img = generator_synthesis(cfg, variables, ws, "const")
    assert img.shape == (2, 16, 16, 3) and bool(jnp.all(jnp.isfinite(img)))
    fused = generator_synthesis(dataclasses.replace(cfg, fused_modconv=True), variables, ws, "const")
    np.testing.assert_allclose(np.asarray(fused), np.asarray(img), atol=1e-5)
    d_cfg = DiscriminatorConfig(resolution=16, channel_base=128, channel_max=16)
    d_vars = init_discriminator(d_cfg, jax.random.PRNGKey(2))
    assert set(d_vars["params"]) == {"b16", "b8", "b4"}


def test_bad_resolution_is_refused():
    with pytest.raises(ValueError, match="power of two"):
        GeneratorConfig(resolution=48)


def test_bias_act_order_and_clamp():
    from mlss_jax.networks.layers import bias_act

    x = jnp.asarray([-3.0, -0.5, 0.5, 3.0])
    out = np.asarray(bias_act(x, 0.5, act="lrelu", clamp=2.0))
    expected = np.clip(np.where(x + 0.5 > 0, x + 0.5, 0.2 * (x + 0.5)) * np.sqrt(2), -2, 2)
    np.testing.assert_allclose(out, expected, rtol=1e-6)


@pytest.mark.slow
def test_conv_clamp_bounds_every_synthesis_layer():
    cfg = GeneratorConfig(resolution=8, z_dim=4, w_dim=4, mapping_layers=1, channel_base=64,
                          channel_max=8, conv_clamp=0.25)
    variables = init_generator(cfg, jax.random.PRNGKey(0))
    ws = jnp.full((2, cfg.num_ws, 4), 3.0)
    from mlss_jax.networks.generator import Generator

    _, state = Generator(cfg).apply(variables, ws, "const", method=Generator.synthesize,
                                    capture_intermediates=True, mutable=["intermediates"])
    layers = {k: v for k, v in jax.tree_util.tree_flatten_with_path(state["intermediates"])[0]}
    conv_outputs = [v for k, v in layers.items() if "conv" in jax.tree_util.keystr(k)
                    and "affine" not in jax.tree_util.keystr(k)]
    assert conv_outputs
    assert max(float(jnp.abs(v).max()) for v in conv_outputs) <= 0.25 + 1e-7


def test_discriminator_needs_resolution_8():
    with pytest.raises(ValueError, match=">= 8"):
        DiscriminatorConfig(resolution=4)


def test_polyphase_up_conv_equals_dilated_correlation():
    from mlss_jax.networks.layers import _DIMS, _dilated_conv3x3_polyphase

    rng = np.random.default_rng(5)
    x = jnp.asarray(rng.normal(size=(2, 5, 6, 3)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(3, 3, 3, 4)), jnp.float32)
    expected = jax.lax.conv_general_dilated(x, w, (1, 1), ((2, 2), (2, 2)), lhs_dilation=(2, 2),
                                            dimension_numbers=_DIMS)
    actual = _dilated_conv3x3_polyphase(x, w)
    assert actual.shape == (2, 11, 13, 4)
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("kernel, padding", [((3, 3), ((1, 1), (1, 1))), ((2, 1), ((1, 1), (0, 0))),
                                             ((1, 2), ((0, 0), (1, 1))), ((1, 1), ((0, 0), (0, 0)))])
def test_conv_stride1_gradients_equal_xla(kernel, padding):
    """The hand-written kernel gradient equals XLA's, to first and second order (R1 needs both)."""
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 6, 5, 4))
    w = jax.random.normal(jax.random.PRNGKey(1), (*kernel, 4, 7))
    xla = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), padding,
                                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))
    ours = lambda x, w: conv_stride1(x, w, padding)
    np.testing.assert_allclose(ours(x, w), xla(x, w), rtol=1e-6, atol=1e-6)

    def loss(conv):
        return lambda x, w: jnp.sum(jnp.sin(conv(x, w)))

    for argnum in (0, 1):
        np.testing.assert_allclose(jax.grad(loss(ours), argnum)(x, w),
                                   jax.grad(loss(xla), argnum)(x, w), rtol=1e-5, atol=1e-5)

    def r1_like(conv):  # d/dw of the squared input gradient, as R1 regularisation computes
        return lambda w: jnp.sum(jnp.square(jax.grad(loss(conv))(x, w)))

    np.testing.assert_allclose(jax.grad(r1_like(ours))(w), jax.grad(r1_like(xla))(w),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("spatial, kernel", [((2, 2), (3, 3)), ((4, 3), (3, 3)), ((1, 1), (3, 3)),
                                             ((2, 5), (1, 3)), ((6, 6), (3, 3))])
def test_conv_same_equals_xla_on_small_and_large_maps(spatial, kernel):
    """The im2col path (maps of at most 16 pixels) computes XLA's 'same' convolution, and its
    gradients; larger maps take XLA's convolution itself."""
    x = jax.random.normal(jax.random.PRNGKey(0), (3, *spatial, 5))
    w = jax.random.normal(jax.random.PRNGKey(1), (*kernel, 5, 6))
    pad = tuple((k // 2, k // 2) for k in kernel)
    xla = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), pad,
                                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(conv_same(x, w), xla(x, w), rtol=1e-5, atol=1e-5)
    loss = lambda conv: lambda x, w: jnp.sum(jnp.sin(conv(x, w)))
    for argnum in (0, 1):
        np.testing.assert_allclose(jax.grad(loss(conv_same), argnum)(x, w),
                                   jax.grad(loss(xla), argnum)(x, w), rtol=1e-5, atol=1e-5)
