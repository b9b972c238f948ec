"""One level's losses on their own, against hand-checked values and finite differences."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mlss_jax.method import training
from mlss_jax.method.config import MLSSConfig
from mlss_jax.method.models import (apply_mapper, classifier_module, compose_ws,
                                    sample_mixture)
from mlss_jax.method.training import (cluster_cross_entropy, critic_loss, gradient_penalty,
                                      init_level_state, joint_loss, scale_gradient)
from mlss_jax.networks.config import GeneratorConfig
from mlss_jax.networks.generator import Generator, init_generator


def test_cluster_cross_entropy_is_numpys():
    logits = np.asarray([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0], [1.0, 1.0, 1.0]], np.float32)
    clusters = np.asarray([0, 1, 2])
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -log_softmax[np.arange(3), clusters].mean()
    np.testing.assert_allclose(float(cluster_cross_entropy(jnp.asarray(logits), clusters)),
                               expected, rtol=1e-6)
    # uniform logits: log K whatever the label
    np.testing.assert_allclose(float(cluster_cross_entropy(jnp.zeros((2, 4)), jnp.asarray([1, 3]))),
                               np.log(4), rtol=1e-6)


def test_gradient_penalty_of_a_linear_critic_is_its_closed_form():
    # D(w) = a . w has gradient a everywhere: GP = (|a| - 1)^2, the Wasserstein estimate is
    # a . (mean real - mean fake)
    a = jnp.asarray([3.0, 4.0])                       # |a| = 5
    score = lambda w: w @ a
    real, fake = jnp.asarray([[1.0, 0.0], [0.0, 2.0]]), jnp.asarray([[0.0, 0.0], [1.0, 1.0]])
    alpha = jnp.asarray([[0.3], [0.9]])
    np.testing.assert_allclose(float(gradient_penalty(score, real, fake, alpha)), 16.0, rtol=1e-6)
    loss, (distance, gp) = critic_loss(score, real, fake, alpha, gp_weight=10.0)
    np.testing.assert_allclose(float(distance), (3 + 8) / 2 - (0 + 7) / 2, rtol=1e-6)
    np.testing.assert_allclose(float(gp), 16.0, rtol=1e-6)
    np.testing.assert_allclose(float(loss), -2.0 + 160.0, rtol=1e-6)


def test_gradient_penalty_matches_finite_differences():
    rng = np.random.default_rng(0)
    m = rng.standard_normal((4, 3))
    real, fake = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    alpha = rng.uniform(size=(5, 1))
    score_np = lambda w: np.tanh(w @ m).sum(-1)           # a nonlinear critic, in float64

    mix, h = alpha * real + (1 - alpha) * fake, 1e-6
    grads = np.stack([(score_np(mix + h * e) - score_np(mix - h * e)) / (2 * h)
                      for e in np.eye(4)], axis=-1)
    expected = np.mean((np.linalg.norm(grads, axis=-1) - 1.0) ** 2)
    score = lambda w: jnp.tanh(w @ jnp.asarray(m, jnp.float32)).sum(-1)
    got = gradient_penalty(score, *(jnp.asarray(x, jnp.float32) for x in (real, fake, alpha)))
    np.testing.assert_allclose(float(got), expected, rtol=1e-4)


def test_scale_gradient_keeps_the_value_and_scales_the_gradient():
    x = jnp.asarray([0.1, -2.5, 3e7])
    np.testing.assert_array_equal(scale_gradient(x, 10.0), x)     # exactly
    grad = jax.grad(lambda v: jnp.sum(jnp.sin(scale_gradient(v, 10.0))))(x)
    np.testing.assert_allclose(grad, 10.0 * np.cos(np.asarray(x)), rtol=1e-6)


@pytest.fixture(scope="module")
def tiny_level():
    g_cfg = GeneratorConfig(resolution=16, z_dim=8, w_dim=8, mapping_layers=2, channel_base=64,
                            channel_max=8)
    g_vars = jax.jit(init_generator, static_argnums=0)(g_cfg, jax.random.PRNGKey(0))
    key = iter(jax.random.split(jax.random.PRNGKey(1), 3))
    batch = {"clusters": jax.random.randint(next(key), (6,), 0, 3),
             "eps": jax.random.normal(next(key), (6, 8))}
    f_ws = Generator(g_cfg).apply(g_vars, jax.random.normal(next(key), (6, 8)),
                                  method=Generator.map_latents)
    return g_cfg, g_vars, batch, f_ws


def _two_pass_loss(config, g_cfg, gen, classifier, critic, g_vars, batch, f_ws):
    """The joint loss as two classifier passes: one for the generator side (C held fixed),
    one for the classifier (x held fixed)."""
    level_w = apply_mapper(g_cfg, gen["mapper"],
                           sample_mixture(gen["mixture"], batch["clusters"], batch["eps"]))
    adversarial = -jnp.mean(training.critic_net(config).apply({"params": critic}, level_w))
    x = level_w
    if config.classifier == "image":
        ws = compose_ws(f_ws, level_w, training.level_range(config, g_cfg))
        x = Generator(g_cfg).apply(g_vars, ws, "const", method=Generator.synthesize)
    net, sg = classifier_module(config), jax.lax.stop_gradient
    ce = lambda logits: optax.softmax_cross_entropy_with_integer_labels(
        logits, batch["clusters"]).mean()
    return (adversarial + config.beta * ce(net.apply({"params": sg(classifier)}, x))
            + ce(net.apply({"params": classifier}, sg(x))))


@pytest.mark.slow
@pytest.mark.parametrize("domain", ["latent", "image"])
def test_one_classifier_pass_gives_the_two_pass_gradients(tiny_level, domain, monkeypatch):
    g_cfg, g_vars, batch, f_ws = tiny_level
    config = MLSSConfig(level="medium", num_clusters=3, critic_hidden=16, critic_layers=2,
                        beta=10.0, classifier=domain)
    state = jax.jit(init_level_state, static_argnums=(0, 1))(config, g_cfg, g_vars)
    args = (config, g_cfg, state.gen, state.classifier, state.critic, g_vars, batch, f_ws)

    passes = []

    class Counted:                       # the classifier, counting its passes
        def __init__(self, net):
            self.net = net

        def apply(self, *a, **kw):
            passes.append(1)
            return self.net.apply(*a, **kw)

    monkeypatch.setattr(training, "classifier_module", lambda c: Counted(classifier_module(c)))
    (_, (_, ce, accuracy)), grads = jax.jit(jax.value_and_grad(
        joint_loss, argnums=(2, 3), has_aux=True), static_argnums=(0, 1))(*args)
    assert len(passes) == 1
    monkeypatch.undo()

    expected = jax.jit(jax.grad(_two_pass_loss, argnums=(2, 3)), static_argnums=(0, 1))(*args)
    for got, want in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(expected),
                         strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)
    assert 0.0 <= float(accuracy) <= 1.0 and float(ce) > 0
