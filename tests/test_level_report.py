"""A level's samples (LevelModel.draw and sample) and the level report built on them."""

import numpy as np
import pytest

from mlss_jax.method.runs import load_levels
from mlss_jax.metrics.level_report import level_images, level_row, markdown_table
from mlss_jax.networks.generator import to_uint8
from mlss_jax.weights.load import load_generator

pytestmark = pytest.mark.slow   # the shared trained world (demo_sized_world)


def test_a_level_sample_is_its_mapper_on_its_inputs_and_f_elsewhere(demo_sized_world):
    generator = load_generator(demo_sized_world / "gen")
    model = load_levels(demo_sized_world / "levels")[1]
    clusters, eps, z_other = model.draw(np.random.default_rng(0), 5)
    assert clusters.shape == (5,) and eps.shape == z_other.shape == (5, generator.z_dim)
    ws, images = (np.asarray(x) for x in model.sample(generator.variables, clusters, eps, z_other))
    start, stop = model.level_range
    level_w = np.asarray(model.level_w(clusters, eps))
    np.testing.assert_allclose(ws[:, start:stop], np.repeat(level_w[:, None], stop - start, 1),
                               rtol=1e-5, atol=1e-6)
    outside = np.r_[0:start, stop:generator.num_ws]
    np.testing.assert_allclose(ws[:, outside], np.asarray(generator.mapping(z_other))[:, outside],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(images, np.asarray(generator.synthesis(ws)), atol=1e-4)


def test_level_images_in_batches_are_the_samples_of_one_call(demo_sized_world):
    generator = load_generator(demo_sized_world / "gen")
    model = load_levels(demo_sized_world / "levels")[0]
    clusters, images = level_images(generator, model, 7, seed=3, batch_size=3)
    again = model.draw(np.random.default_rng(3), 7)
    np.testing.assert_array_equal(clusters, again[0])
    whole = to_uint8(model.sample(generator.variables, *again)[1])
    assert images.dtype == np.uint8 and images.shape == whole.shape
    assert np.abs(images.astype(int) - whole).max() <= 1   # batch shape: last float digits only


def test_a_level_row_and_its_table(demo_sized_world):
    generator = load_generator(demo_sized_world / "gen")
    model = load_levels(demo_sized_world / "levels")[2]
    bright = lambda images: {"bright": (images.mean((1, 2, 3)) > 128).astype(int),
                             "none": np.zeros(len(images), int)}
    row = level_row(generator, model, bright, ("bright", "none"), 9, seed=1)
    assert row["level"] == "fine" and row["ws"] == list(model.level_range)
    assert 0.0 <= row["classifier_accuracy"] <= 1.0 and row["nmi"]["none"] == 0.0
    lines = markdown_table([row], ("bright", "none"))
    assert lines[0] == "| level | ws | C_l accuracy | bright | none |" and len(lines) == 3
    assert lines[2].startswith(f"| fine | {row['ws'][0]}:{row['ws'][1]} | ")
