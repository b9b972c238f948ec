"""StyleGAN2 training objectives against their definitions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlss_jax.gan.losses import (blur_images, discriminator_loss, ema_beta, ema_update,
                                 generator_loss, mix_styles, mixing_cutoffs, r1_penalty,
                                 update_w_avg)


def softplus(x):
    return np.log1p(np.exp(x))


def test_logistic_losses():
    real = np.asarray([[2.0], [-1.0]], np.float32)
    fake = np.asarray([[0.5], [-3.0]], np.float32)
    np.testing.assert_allclose(float(generator_loss(fake)), softplus(-fake).mean(), rtol=1e-6)
    np.testing.assert_allclose(float(discriminator_loss(real, fake)),
                               softplus(fake).mean() + softplus(-real).mean(), rtol=1e-6)
    # A discriminator that separates well has a small loss; the generator's is then large.
    assert float(discriminator_loss(jnp.full((4, 1), 10.0), jnp.full((4, 1), -10.0))) < 1e-3
    assert float(generator_loss(jnp.full((4, 1), -10.0))) > 9.9


def test_r1_penalty_of_a_linear_and_a_quadratic_critic():
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 4, 4, 2))
    w = jax.random.normal(jax.random.PRNGKey(1), (4, 4, 2))
    linear = lambda imgs: jnp.sum(imgs * w, axis=(1, 2, 3))[:, None]
    np.testing.assert_allclose(float(r1_penalty(linear, x)), float(jnp.sum(w ** 2)), rtol=1e-5)
    quadratic = lambda imgs: jnp.sum(imgs ** 2, axis=(1, 2, 3))[:, None]
    expected = float(jnp.mean(jnp.sum((2 * x) ** 2, axis=(1, 2, 3))))
    np.testing.assert_allclose(float(r1_penalty(quadratic, x)), expected, rtol=1e-5)


def test_style_mixing_switches_at_one_cutoff_per_sample():
    n, num_ws = 512, 8
    ws_a = jnp.zeros((n, num_ws, 3))
    ws_b = jnp.ones((n, num_ws, 3))
    mixed = np.asarray(mix_styles(ws_a, ws_b, mixing_cutoffs(jax.random.PRNGKey(0), n, num_ws, 0.9)))
    per_layer = mixed[:, :, 0]
    assert np.all(per_layer[:, 0] == 0)                      # layer 0 always from a
    assert np.all(np.diff(per_layer, axis=1) >= 0)           # one switch from a to b, never back
    mixed_share = per_layer[:, -1].mean()
    assert 0.85 < mixed_share < 0.95
    cutoffs = num_ws - per_layer[per_layer[:, -1] == 1].sum(axis=1)
    assert set(cutoffs.astype(int)) == set(range(1, num_ws))
    none = np.asarray(mix_styles(ws_a, ws_b, mixing_cutoffs(jax.random.PRNGKey(0), n, num_ws, 0.0)))
    assert np.all(none == 0)


def test_ema_and_w_avg():
    beta = ema_beta(batch_size=32, half_life_images=320)
    np.testing.assert_allclose(beta ** 10, 0.5, rtol=1e-6)     # ten steps halve the old weight
    ema = {"a": jnp.ones(3)}
    new = ema_update(ema, {"a": jnp.zeros(3)}, 0.75)
    np.testing.assert_allclose(np.asarray(new["a"]), 0.75)
    ws = jnp.broadcast_to(jnp.arange(4.0)[:, None, None], (4, 5, 2))
    np.testing.assert_allclose(np.asarray(update_w_avg(jnp.zeros(2), ws, 0.995)), 0.005 * 1.5,
                               rtol=1e-6)


@pytest.mark.parametrize("probability", [0.0, 1.0])
def test_style_mixing_is_jittable(probability):
    mix = jax.jit(lambda a, b, key: mix_styles(a, b, mixing_cutoffs(key, 2, 4, probability)))
    out = np.asarray(mix(jnp.zeros((2, 4, 1)), jnp.ones((2, 4, 1)), jax.random.PRNGKey(1)))
    np.testing.assert_array_equal(out[:, -1, 0], [probability] * 2)


def test_ema_decay_ramps_up_with_the_images_seen():
    from mlss_jax.gan.training import GANTrainConfig, ema_beta_at

    config = GANTrainConfig(batch_size=32, ema_half_life_images=10_000.0, ema_rampup=0.05)
    # step 9: 320 images seen, so the half-life is 0.05 * 320 = 16 images, two per step
    np.testing.assert_allclose(float(ema_beta_at(config, jnp.int32(9))), 0.5 ** 2, rtol=1e-6)
    # from 200,000 images on, the half-life is the configured one
    np.testing.assert_allclose(float(ema_beta_at(config, jnp.int32(10_000))),
                               0.5 ** (32 / 10_000), rtol=1e-6)


@pytest.mark.slow
def test_discriminator_objective_adds_the_lazy_r1_term_on_r1_steps():
    from mlss_jax.gan.training import GANTrainConfig, discriminator_objective
    from mlss_jax.networks.discriminator import Discriminator, init_discriminator

    config = GANTrainConfig(mbstd_group_size=2, channel_base=64, channel_max=8, r1_gamma=0.5,
                            r1_interval=4)
    d_cfg = config.discriminator_config(8, 3)
    d_params = init_discriminator(d_cfg, jax.random.PRNGKey(0))["params"]
    real, fake = jax.random.normal(jax.random.PRNGKey(1), (2, 2, 8, 8, 3))
    objective = jax.jit(discriminator_objective, static_argnums=(0, 1, 5))
    plain, (r1_off, real_score) = objective(config, d_cfg, d_params, real, fake, False)
    with_r1, (r1, _) = objective(config, d_cfg, d_params, real, fake, True)
    logits = jax.jit(lambda x: Discriminator(d_cfg).apply({"params": d_params}, x))
    np.testing.assert_allclose(float(plain), float(discriminator_loss(logits(real), logits(fake))),
                               rtol=1e-5)
    np.testing.assert_allclose(float(r1), float(jax.jit(r1_penalty, static_argnums=0)(logits, real)),
                               rtol=1e-5)
    # NVIDIA's lazy regularisation: gamma / 2 * R1, times the interval it runs at
    np.testing.assert_allclose(float(with_r1) - float(plain), float(r1) * 0.5 / 2 * 4, rtol=1e-4)
    assert float(r1_off) == 0.0 and float(real_score) == pytest.approx(float(jnp.mean(logits(real))),
                                                                       rel=1e-5)


def test_the_d_input_blur_is_a_normalised_gaussian_that_fades_to_nothing():
    from scipy.ndimage import gaussian_filter

    from mlss_jax.gan.training import GANTrainConfig, blur_sigma_at

    images = np.asarray(jax.random.normal(jax.random.PRNGKey(0), (2, 16, 16, 3)))
    blurred = jax.jit(blur_images, static_argnums=2)(jnp.asarray(images), jnp.float32(1.5), 5)
    # SciPy's Gaussian filter with the same taps (truncate: 5 taps of 1.5 px), edges mirrored
    expected = gaussian_filter(images, sigma=(0, 1.5, 1.5, 0), mode="mirror", truncate=5 / 1.5)
    np.testing.assert_allclose(np.asarray(blurred), expected, atol=1e-5)
    # sigma 0: every tap but the centre weighs nothing, the images pass unchanged
    np.testing.assert_array_equal(np.asarray(blur_images(jnp.asarray(images), jnp.float32(0.0), 5)),
                                  images)
    config = GANTrainConfig(batch_size=32, blur_sigma=2.0, blur_fade_images=3200.0)
    assert config.blur_radius == 6
    fade = [float(blur_sigma_at(config, jnp.int32(step))) for step in (0, 50, 100, 500)]
    assert fade == pytest.approx([2.0, 1.0, 0.0, 0.0])
    assert GANTrainConfig().blur_radius == 0     # the default: D sees the images as they are
    with pytest.raises(ValueError, match="blur_sigma must be >= 0"):
        GANTrainConfig(blur_sigma=-1.0)


@pytest.mark.slow
def test_d_and_its_r1_see_the_blurred_images():
    import functools

    from mlss_jax.gan.training import GANTrainConfig, discriminator_objective
    from mlss_jax.networks.discriminator import Discriminator, init_discriminator

    config = GANTrainConfig(mbstd_group_size=2, channel_base=64, channel_max=8, r1_interval=4,
                            blur_sigma=1.0)
    d_cfg = config.discriminator_config(8, 3)
    d_params = init_discriminator(d_cfg, jax.random.PRNGKey(0))["params"]
    real, fake = jax.random.normal(jax.random.PRNGKey(1), (2, 2, 8, 8, 3))
    blur = functools.partial(blur_images, sigma=jnp.float32(1.0), radius=config.blur_radius)
    loss, (r1, _) = jax.jit(discriminator_objective, static_argnums=(0, 1, 5, 8))(
        config, d_cfg, d_params, real, fake, True, None, None, blur)
    logits = lambda x: Discriminator(d_cfg).apply({"params": d_params}, blur(x))
    np.testing.assert_allclose(float(r1), float(r1_penalty(logits, real)), rtol=1e-4)
    plain = float(discriminator_loss(logits(real), logits(fake)))
    np.testing.assert_allclose(float(loss) - plain, float(r1) * config.r1_gamma / 2 * 4, rtol=1e-4)
