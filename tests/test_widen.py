"""Widening a trained generator keeps what it draws, and its new channels can learn."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlss_jax.errors import ConfigError
from mlss_jax.gan.widen import widen_generator
from mlss_jax.networks.config import GeneratorConfig
from mlss_jax.networks.generator import generator_mapping, generator_synthesis, init_generator

# 16, 8 and 4 channels at 4, 8 and 16 px; widened: 16 everywhere
NARROW = GeneratorConfig(resolution=16, z_dim=8, w_dim=8, mapping_layers=2, channel_base=64,
                         channel_max=16)


def trained_looking_variables() -> dict:
    """A fresh G with every parameter moved, so that biases, noise strengths and toRGB matter."""
    variables = jax.device_get(init_generator(NARROW, jax.random.PRNGKey(0)))
    leaves, tree = jax.tree_util.tree_flatten(variables["params"])
    rng = np.random.default_rng(1)
    moved = [np.asarray(x) + 0.3 * rng.standard_normal(np.shape(x)).astype(np.float32)
             for x in leaves]
    return {**variables, "params": jax.tree_util.tree_unflatten(tree, moved)}


def test_the_widened_generator_draws_the_same_images():
    variables = trained_looking_variables()
    wide, wide_variables = widen_generator(NARROW, variables, channel_base=256)
    assert [wide.channels(r) for r in wide.block_resolutions] == [16, 16, 16]
    ws = generator_mapping(NARROW, variables,
                           np.random.default_rng(2).standard_normal((6, 8)).astype(np.float32))
    narrow_images = np.asarray(generator_synthesis(NARROW, variables, ws))
    wide_images = np.asarray(generator_synthesis(wide, wide_variables, ws))
    assert narrow_images.std() > 0.1                       # a real image, not a constant
    np.testing.assert_allclose(wide_images, narrow_images, atol=1e-5)


def test_the_new_channels_take_gradient():
    """Every weight by which an old channel reads a new one starts at zero; training must still
    move it."""
    wide, wide_variables = widen_generator(NARROW, trained_looking_variables(), channel_base=256)
    ws = jnp.asarray(np.random.default_rng(3).standard_normal((4, wide.num_ws, 8)), jnp.float32)
    target = jnp.asarray(np.random.default_rng(4).standard_normal((4, 16, 16, 3)), jnp.float32)

    def loss(params):
        images = generator_synthesis(wide, {**wide_variables, "params": params}, ws)
        return jnp.mean((images - target) ** 2)

    grads = jax.grad(loss)(wide_variables["params"])["synthesis"]
    block16 = wide_variables["params"]["synthesis"]["b16"]
    old_from_new = (slice(None), slice(None), slice(4, None), slice(0, 4))   # old outputs, new inputs
    assert not np.any(block16["conv1"]["weight"][old_from_new])
    assert np.abs(grads["b16"]["conv1"]["weight"][old_from_new]).max() > 1e-6
    assert not np.any(block16["torgb"]["weight"][:, :, 4:, :])
    assert np.abs(grads["b16"]["torgb"]["weight"][:, :, 4:, :]).max() > 1e-6


def test_widening_refuses_to_shrink_a_block():
    with pytest.raises(ConfigError, match="shrink"):
        widen_generator(NARROW, trained_looking_variables(), channel_base=64, channel_max=8)
