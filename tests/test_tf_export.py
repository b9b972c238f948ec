"""Exporting to NVIDIA's TensorFlow pickle format, and reading it back."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from mlss_jax.networks.config import DiscriminatorConfig, GeneratorConfig
from mlss_jax.networks.discriminator import init_discriminator
from mlss_jax.networks.generator import init_generator
from mlss_jax.weights.nvidia import convert_network_pickle
from mlss_jax.weights.safe_pickle import load_network_pickle
from mlss_jax.weights.tf_format import export_tf_pickle, generator_layout
from test_config_f import config_f_generator_variables

G_CFG = GeneratorConfig(resolution=16, z_dim=8, w_dim=12, mapping_layers=3, mapping_hidden=10,
                        mapping_lr_multiplier=0.02, channel_base=256, channel_max=32)
D_CFG = DiscriminatorConfig(resolution=16, channel_base=256, channel_max=32, mbstd_group_size=2)


@pytest.mark.slow
def test_export_then_convert_is_exact():
    g_vars = init_generator(G_CFG, jax.random.PRNGKey(0))
    # Non-trivial values everywhere (fresh biases and noise strengths are zero).
    g_vars = jax.tree_util.tree_map(
        lambda x: x + jax.random.normal(jax.random.PRNGKey(x.size), x.shape), g_vars)
    d_vars = init_discriminator(D_CFG, jax.random.PRNGKey(1))
    converted = convert_network_pickle(export_tf_pickle(G_CFG, g_vars, D_CFG, d_vars))
    assert converted.source_format == "tensorflow"
    assert converted.generator_config == G_CFG
    assert converted.discriminator_config == D_CFG
    for ours, theirs in ((g_vars, converted.generator_vars), (d_vars, converted.discriminator_vars)):
        flat_ours = dict(jax.tree_util.tree_flatten_with_path(ours)[0])
        flat_theirs = dict(jax.tree_util.tree_flatten_with_path(theirs)[0])
        assert flat_ours.keys() == flat_theirs.keys()
        for key, value in flat_ours.items():
            np.testing.assert_allclose(flat_theirs[key], np.asarray(value), rtol=0, atol=1e-6,
                                       err_msg=jax.tree_util.keystr(key))


def test_the_training_generator_is_read_on_request():
    """An exported pickle's G is the training generator, its Gs the EMA one; either reads back."""
    ema = init_generator(G_CFG, jax.random.PRNGKey(0))
    training = jax.tree_util.tree_map(lambda x: x + 1.0, ema)
    data = export_tf_pickle(G_CFG, ema, D_CFG, init_discriminator(D_CFG, jax.random.PRNGKey(1)),
                            training_generator_vars=training)
    for wanted, read in ((ema, convert_network_pickle(data)),
                         (training, convert_network_pickle(data, training_generator=True))):
        for ours, theirs in zip(jax.tree_util.tree_leaves(wanted),
                                jax.tree_util.tree_leaves(read.generator_vars)):
            np.testing.assert_allclose(theirs, np.asarray(ours), rtol=0, atol=1e-6)


@pytest.mark.slow
def test_exported_pickle_has_nvidia_structure():
    g_vars = init_generator(G_CFG, jax.random.PRNGKey(0))
    d_vars = init_discriminator(D_CFG, jax.random.PRNGKey(1))
    g, d, gs = load_network_pickle(export_tf_pickle(G_CFG, g_vars, D_CFG, d_vars))
    assert [n.state["name"] for n in (g, d, gs)] == ["G", "D", "Gs"]
    assert gs.state["version"] == 4 and gs.state["build_func_name"] == "G_main"
    assert [name for name, _ in gs.state["variables"]] == ["lod", "dlatent_avg"]
    assert gs.state["static_kwargs"]["fmap_base"] == 128
    mapping = gs.state["components"]["mapping"].state
    assert mapping["static_kwargs"]["dlatent_broadcast"] == G_CFG.num_ws
    assert mapping["variables"][0][0] == "Dense0/weight"
    synthesis = gs.state["components"]["synthesis"].state
    assert synthesis["build_func_name"] == "G_synthesis_stylegan2"
    assert synthesis["variables"][0][0] == "noise0"
    assert d.state["variables"][0][0] == "16x16/FromRGB/weight"


def test_layout_matches_nvidias_config_f_variable_list():
    """The layout reproduces the doc's config-f 256 list: names, shapes and order."""
    own, mapping, synthesis = config_f_generator_variables(np.random.default_rng(0))
    expected = ([(n, v.shape) for n, v in own] + [(f"mapping/{n}", v.shape) for n, v in mapping]
                + [(f"synthesis/{n}", v.shape) for n, v in synthesis])
    actual = [(a.theirs, a.shape) for a in generator_layout(GeneratorConfig(resolution=256))]
    assert actual == expected


@pytest.mark.slow
def test_export_refuses_what_tf_cannot_hold():
    cfg = dataclasses.replace(G_CFG, conv_clamp=256.0)
    g_vars = init_generator(cfg, jax.random.PRNGKey(0))
    d_vars = init_discriminator(D_CFG, jax.random.PRNGKey(1))
    with pytest.raises(ValueError, match="conv_clamp"):
        export_tf_pickle(cfg, g_vars, D_CFG, d_vars)
