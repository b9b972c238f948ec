"""The demo factor classifier: it learns the shapes factors, and the shipped one is accurate."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import REPO
from mlss_jax.demo.shapes import DEFAULT_WORLD, FACTORS, example, world_factors
from mlss_jax.demo.world import FACTOR_CLASSIFIERS
from mlss_jax.demo.factor_classifier import (ClassifierConfig, accuracy, classify, load_classifier,
                                             save_classifier, to_model_input, train_classifier)

SHIPPED_BY_WORLD = {1: REPO / "assets" / "factor_classifier-world1",
                    2: REPO / "assets" / "factor_classifier-world2"}


def test_each_world_has_its_bundled_classifier():
    assert FACTOR_CLASSIFIERS == SHIPPED_BY_WORLD


def rendered(seed: int, num: int, world: int = DEFAULT_WORLD) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    examples = [example(seed, i, world) for i in range(num)]
    labels = {k: np.asarray([e.labels[k] for e in examples]) for k in world_factors(world)}
    return np.stack([e.image for e in examples]), labels


@pytest.mark.slow
def test_training_fits_the_training_set_and_round_trips(tmp_path):
    images, labels = rendered(0, 256)
    config = ClassifierConfig(width=16, feature_dim=32, steps=400, batch_size=64, learning_rate=3e-3)
    params = train_classifier(config, images, labels, progress=False)
    fit = accuracy(config, params, images, labels)
    chance = {k: 1 / len(v) for k, v in FACTORS.items()}
    for name in FACTORS:
        assert fit[name] > max(0.9, chance[name]), (name, fit)
    save_classifier(tmp_path / "clf", config, params, {"fit": fit})
    loaded_config, loaded = load_classifier(tmp_path / "clf")
    assert loaded_config == config
    probs, features = classify(config, loaded, to_model_input(images[:4]))
    assert features.shape == (4, 32)
    np.testing.assert_allclose(probs["hue"].sum(-1), 1.0, rtol=1e-5)
    assert accuracy(config, loaded, images, labels) == fit


def test_missing_classifier_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no factor classifier"):
        load_classifier(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("world", [1, 2])
def test_shipped_classifier_is_accurate_on_fresh_images(world):
    """>= 98% of never-seen images get every factor right (training used seed 0)."""
    config, params = load_classifier(SHIPPED_BY_WORLD[world])
    assert config.world == world and list(config.factors) == list(world_factors(world))
    images, labels = rendered(seed=12345, num=1000, world=world)
    result = accuracy(config, params, images, labels)
    assert result["all"] >= 0.98, result


@pytest.mark.parametrize("world", [1, 2])
def test_shipped_weights_match_the_tool_defaults(world):
    """`python tools/train_factor_classifier.py --world N` with no other flag reproduces the
    shipped settings."""
    config, _ = load_classifier(SHIPPED_BY_WORLD[world])
    assert config == ClassifierConfig(world=world)


@pytest.mark.parametrize("args, message", [(["--steps", "0"], "must be positive"),
                                           (["--dataset-config", "huge"], "invalid choice"),
                                           (["--nope"], "unrecognized arguments")])
def test_tool_rejects_bad_flags(args, message):
    from conftest import run_script

    code, _, stderr = run_script("tools/train_factor_classifier.py", *args)
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1
