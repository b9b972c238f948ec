"""The projected discriminator and its feature encoder: training, frozen parts, augmentation,
the config switch, train steps, resume and the exported pickle (tiny sizes)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO, run_script
from mlss_jax.errors import ConfigError
from mlss_jax.gan.feature_encoder import (EncoderConfig, encode, load_feature_encoder,
                                          save_feature_encoder, train_autoencoder)
from mlss_jax.gan.projected import augment, frozen_inputs, init_heads, projected_logits
from mlss_jax.gan.training import GANTrainConfig, init_train_state, train_gan, train_step
from mlss_jax.networks.discriminator import init_discriminator
from mlss_jax.runtime.parallel import data_mesh
from mlss_jax.runtime.run_state import RunCheckpointer
from mlss_jax.weights.load import load_generator
from mlss_jax.weights.nvidia import convert_network_pickle

from two_devices import GAN_TINY as TINY

ENCODER = EncoderConfig(channels=(4, 8, 8), steps=3, batch_size=8)


def smooth_images(n: int = 64, size: int = 8) -> np.ndarray:
    """uint8 images of a coloured square on a plain background (learnable in a few steps)."""
    rng = np.random.default_rng(0)
    images = np.broadcast_to(rng.integers(0, 256, (n, 1, 1, 3)), (n, size, size, 3)).copy()
    for image, (y, x), colour in zip(images, rng.integers(0, size // 2, (n, 2)),
                                     rng.integers(0, 256, (n, 3))):
        image[y:y + size // 2, x:x + size // 2] = colour
    return images.astype(np.uint8)


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    params, _ = train_autoencoder(ENCODER, smooth_images(), progress=False)
    return save_feature_encoder(tmp_path_factory.mktemp("encoder"), ENCODER, params, {})


def projected(**overrides) -> GANTrainConfig:
    return GANTrainConfig(**{**TINY, "discriminator": "projected", **overrides})


@pytest.mark.slow
def test_encoder_training_lowers_the_loss_and_round_trips(tmp_path):
    config = EncoderConfig(channels=(8, 16), steps=30, batch_size=8)
    params, losses = train_autoencoder(config, smooth_images(size=16), progress=False)
    assert np.all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    save_feature_encoder(tmp_path, config, params, {"note": 1})
    loaded_config, encoder = load_feature_encoder(tmp_path)
    assert loaded_config == config
    jax.tree_util.tree_map(np.testing.assert_array_equal, encoder, params["encoder"])
    maps = encode(config.channels, encoder, jnp.zeros((2, 16, 16, 3)))
    assert [m.shape for m in maps] == [(2, 16, 16, 8), (2, 8, 8, 16)]


def test_augment_keeps_shapes_and_treats_reals_and_fakes_alike():
    keys = jax.random.split(jax.random.PRNGKey(0), 8)
    reals = jnp.ones((8, 16, 16, 3))
    fakes = -2.0 * reals
    aug_reals, aug_fakes = augment(keys, reals), augment(keys, fakes)
    assert aug_reals.shape == reals.shape
    np.testing.assert_array_equal(aug_fakes, -2.0 * aug_reals)      # the same shift and cutout
    zeroed = np.mean(np.asarray(aug_reals) == 0, axis=(1, 2, 3))
    assert np.all(zeroed > 0.1) and np.all(zeroed < 0.6)           # a cutout (and padding)
    other = augment(jax.random.split(jax.random.PRNGKey(1), 8), reals)
    assert not np.array_equal(other, aug_reals)
    # differentiable: each pixel left in the output passes its gradient back to one input pixel
    grads = jax.grad(lambda x: jnp.sum(augment(keys, x)))(reals)
    assert set(np.unique(grads)) <= {0.0, 1.0} and np.sum(grads) == np.sum(aug_reals)


def test_config_refuses_projected_without_an_encoder(tmp_path):
    with pytest.raises(ConfigError, match="feature_encoder must be given"):
        GANTrainConfig(discriminator="projected")
    with pytest.raises(ConfigError, match="discriminator must be one of"):
        GANTrainConfig(discriminator="other")
    with pytest.raises(ConfigError, match="feature_encoder must be left out"):
        GANTrainConfig(feature_encoder=tmp_path)
    config = GANTrainConfig(discriminator="projected", feature_encoder=tmp_path)
    assert GANTrainConfig(**config.to_dict()) == config     # the path, as a run records it
    code, _, err = run_script("tools/train_stylegan2.py", "--out", str(tmp_path / "run"),
                              "--discriminator", "projected")
    assert code == 2 and "--feature-encoder must be given" in err


@pytest.mark.slow
def test_projected_steps_train_the_heads_only(encoder_dir):
    config = projected(feature_encoder=encoder_dir)
    encoder_cfg, encoder = load_feature_encoder(encoder_dir)
    g_cfg = config.generator_config(8, 3)
    d_cfg = config.projected_config(8, 3, encoder_cfg.channels)
    state = init_train_state(config, g_cfg, d_cfg)
    frozen = frozen_inputs(d_cfg, encoder, config.seed)
    frozen_before = jax.tree_util.tree_map(np.array, frozen)
    heads_before = jax.tree_util.tree_map(np.array, state.d)
    step_fn = functools.partial(train_step, config, g_cfg, d_cfg, data_mesh())
    pool = jnp.asarray(smooth_images())
    for step in range(3):
        state, metrics = step_fn(state, pool, jnp.int32(step), frozen=frozen)
        assert all(np.isfinite(float(v)) for v in metrics.values()), metrics
    assert float(metrics["r1"]) == 0.0
    jax.tree_util.tree_map(np.testing.assert_array_equal, frozen, frozen_before)
    changed = jax.tree_util.tree_map(lambda a, b: not np.array_equal(a, b), state.d, heads_before)
    assert all(jax.tree_util.tree_leaves(changed))                   # every head's weight moved
    # nothing of the frozen part is in the state or the optimiser, and no gradient reaches it
    assert set(state.d) == {"params"} and set(state.d["params"]) == {"s8", "s4", "s2"}
    images = jax.random.normal(jax.random.PRNGKey(0), (4, 8, 8, 3))
    grads = jax.grad(lambda f: jnp.sum(projected_logits(d_cfg, state.d["params"], f, images)))(
        frozen)
    assert all(np.all(np.asarray(g) == 0) for g in jax.tree_util.tree_leaves(grads))
    # ... while the image still gets one (G learns through the frozen features)
    image_grads = jax.grad(lambda x: jnp.sum(projected_logits(
        d_cfg, state.d["params"], frozen, x)))(images)
    assert np.any(np.asarray(image_grads) != 0)
    assert init_heads(d_cfg, jax.random.PRNGKey(0))["params"].keys() == state.d["params"].keys()


@pytest.mark.slow
def test_projected_run_resumes_exactly_and_exports_a_generator(tmp_path, encoder_dir):
    config = projected(feature_encoder=encoder_dir, steps=2, snapshot_every=1, log_every=1)
    images = smooth_images()
    full = train_gan(config, images, tmp_path / "full", progress=False)
    train_gan(projected(feature_encoder=encoder_dir, steps=1, snapshot_every=1, log_every=1),
              images, tmp_path / "split", progress=False)
    resumed = train_gan(config, images, tmp_path / "split", resume=True, progress=False)
    assert full.step == resumed.step == 2
    encoder_cfg, _ = load_feature_encoder(encoder_dir)
    template = init_train_state(config, config.generator_config(8, 3),
                                config.projected_config(8, 3, encoder_cfg.channels))
    (_, a), (_, b) = (RunCheckpointer(tmp_path / name).restore(template)
                      for name in ("full", "split"))
    jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)
    # the pickle: the trained EMA generator, and as D an untrained StyleGAN2 D of the seed
    generator = load_generator(resumed.pickle_path)
    jax.tree_util.tree_map(np.testing.assert_array_equal, generator.variables["params"],
                           b.g_ema["params"])
    nets = convert_network_pickle(resumed.pickle_path.read_bytes())
    fresh_d = init_discriminator(config.discriminator_config(8, 3), jax.random.PRNGKey(config.seed))
    jax.tree_util.tree_map(np.testing.assert_allclose, nets.discriminator_vars, fresh_d)
    # another encoder in the same folder is refused on resume
    other_cfg = EncoderConfig(**{**ENCODER.to_dict(), "seed": 1})
    params, _ = train_autoencoder(other_cfg, images, progress=False)
    moved = save_feature_encoder(tmp_path / "other", ENCODER, params, {})
    with pytest.raises(ConfigError, match="feature_encoder_digest"):
        train_gan(projected(feature_encoder=moved, steps=3), images, tmp_path / "split",
                  resume=True, progress=False)


@pytest.mark.slow
def test_projected_steps_are_the_same_on_one_and_two_devices():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "two_devices.py"), "projected"],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for one, two in zip(result["one"], result["two"], strict=True):
        for key in one:
            np.testing.assert_allclose(two[key], one[key], rtol=1e-4, atol=1e-6, err_msg=key)
    assert result["max_state_diff"] < 1e-5


@pytest.mark.slow
def test_train_feature_encoder_command_writes_a_loadable_encoder(tmp_path):
    code, out, err = run_script("tools/train_feature_encoder.py", "--out", str(tmp_path / "enc"),
                                "--dataset-config", "tiny", "--world", "2", "--steps", "3",
                                "--channels", "4,8", "--batch-size", "8")
    assert code == 0, err
    assert "reconstruction error" in out
    config, _ = load_feature_encoder(tmp_path / "enc")
    assert config.channels == (4, 8) and config.world == 2
    report = json.loads((tmp_path / "enc" / "config.json").read_text())["report"]
    assert report["world"] == 2 and np.isfinite(report["test_mse"])
