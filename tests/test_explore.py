"""Latent-space exploration: the pure operations, t-SNE, multi-level control, the projector,
and explore.py end to end on a tiny 32 px world (conftest's ``demo_sized_world``)."""

from __future__ import annotations

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from conftest import run_script
from mlss_jax.explore.latent_ops import (edit_along, layer_mask, lerp, mix_levels, pca_directions, slerp,
                                         svm_boundary)
from mlss_jax.method.control import compose, control_grid_latents
from mlss_jax.method.runs import load_levels
from mlss_jax.weights.load import load_generator
from mlss_jax.explore.projection import ProjectConfig, learning_rate, noise_regularisation, project
from mlss_jax.explore.tsne import tsne

PNG, GIF = b"\x89PNG\r\n\x1a\n", b"GIF89a"


def test_lerp_and_slerp_endpoints_norms_and_parallel_limit():
    rng = np.random.default_rng(0)
    a, b = (jnp.asarray(rng.standard_normal(16), jnp.float32) for _ in range(2))
    t = jnp.linspace(0, 1, 5)
    for f in (lerp, slerp):
        path = f(a, b, t)
        chex.assert_shape(path, (5, 16))
        np.testing.assert_allclose(path[0], a, atol=1e-5)
        np.testing.assert_allclose(path[-1], b, atol=1e-5)
    b_same_norm = b / jnp.linalg.norm(b) * jnp.linalg.norm(a)
    np.testing.assert_allclose(jnp.linalg.norm(slerp(a, b_same_norm, t), axis=1),
                               jnp.linalg.norm(a), rtol=1e-5)  # stays on the sphere
    np.testing.assert_allclose(slerp(a, 2 * a, t), lerp(a, 2 * a, t), rtol=1e-5)


def test_mix_levels_takes_each_range_from_its_source():
    ws = jnp.arange(3 * 8 * 2, dtype=jnp.float32).reshape(3, 8, 2)
    sources = jnp.asarray([[2, 1, 0], [0, 0, 2]])  # range 0 from col 0, range 1 from col 1, rest col 2
    mixed = mix_levels(ws, sources, ((0, 2), (4, 7)))
    for row, (s0, s1, rest) in enumerate(np.asarray(sources)):
        expected = np.asarray(ws[rest]).copy()
        expected[0:2], expected[4:7] = ws[s0, 0:2], ws[s1, 4:7]
        np.testing.assert_array_equal(mixed[row], expected)


def test_edit_moves_only_the_masked_inputs():
    ws = jnp.asarray(np.random.default_rng(1).standard_normal((2, 8, 4)), jnp.float32)
    direction = jnp.asarray([1.0, 0.0, -2.0, 0.5])
    mask = layer_mask(8, (2, 5))
    edited = edit_along(ws, direction, jnp.asarray([0.0, 1.5]), jnp.asarray(mask))
    chex.assert_shape(edited, (2, 2, 8, 4))
    np.testing.assert_array_equal(edited[:, 0], ws)
    np.testing.assert_allclose(edited[:, 1, 2:6], ws[:, 2:6] + 1.5 * direction, rtol=1e-6)
    np.testing.assert_array_equal(edited[:, 1, [0, 1, 6, 7]], ws[:, [0, 1, 6, 7]])
    with pytest.raises(ValueError, match="outside 0..7"):
        layer_mask(8, (3, 8))


def test_pca_finds_the_dominant_axis_and_its_spread():
    rng = np.random.default_rng(2)
    axis = rng.standard_normal(6)
    axis /= np.linalg.norm(axis)
    w = rng.standard_normal((4000, 6)) * 0.1 + rng.standard_normal((4000, 1)) * 3.0 * axis
    directions, stds = pca_directions(w, 2)
    assert abs(directions[0] @ axis) > 0.999
    assert stds[0] == pytest.approx(3.0, rel=0.05) and stds[1] < 0.15


def test_svm_boundary_recovers_a_separating_direction():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((600, 5)) * np.asarray([1.0, 5.0, 0.2, 1.0, 3.0])  # anisotropic W
    normal = np.asarray([0.0, 0.2, 1.0, 0.0, 0.0])
    normal /= np.linalg.norm(normal)
    labels = w @ normal > 0.1
    direction, accuracy = svm_boundary(w, labels)
    assert accuracy > 0.97 and direction @ normal > 0.95
    with pytest.raises(ValueError, match="all the same"):
        svm_boundary(w, np.ones(600, bool))


def test_tsne_keeps_separated_clusters_apart():
    rng = np.random.default_rng(4)
    centres = rng.standard_normal((3, 10)) * 10
    labels = np.repeat(np.arange(3), 60)
    x = centres[labels] + rng.standard_normal((180, 10))
    y = np.asarray(tsne(jnp.asarray(x, jnp.float32), jax.random.PRNGKey(0), perplexity=20.0,
                        iterations=500))
    assert np.all(np.isfinite(y))
    d = ((y[:, None] - y[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nearest = np.argsort(d, axis=1)[:, :5]
    assert np.mean(labels[nearest] == labels[:, None]) > 0.98  # 5 nearest share the cluster


@pytest.mark.slow
def test_compose_uses_each_levels_mapper_and_f_elsewhere(demo_sized_world):
    generator = load_generator(demo_sized_world / "gen")
    levels = load_levels(demo_sized_world / "levels")
    rng = np.random.default_rng(5)
    clusters = np.asarray([[0, 1, 2], [2, 2, 0]])
    eps = rng.standard_normal((2, 3, 8)).astype(np.float32)
    z = rng.standard_normal((2, 8)).astype(np.float32)
    ws = np.asarray(compose(generator, levels, clusters, eps, z))
    f_ws = np.asarray(generator.mapping(z))
    np.testing.assert_array_equal(ws[:, 7], f_ws[:, 7])  # the last input always f(z)
    for i, model in enumerate(levels):
        start, stop = model.level_range
        level_w = np.asarray(model.level_w(clusters[:, i], eps[:, i]))
        np.testing.assert_array_equal(ws[:, start:stop], np.repeat(level_w[:, None], stop - start, 1))
    with pytest.raises(ValueError, match="out of range 0..2"):
        levels[0].level_w(np.asarray([3]), eps[:1, 0])
    grid_clusters, grid_eps, grid_z = control_grid_latents(levels, 1, 4, seed=0)
    k = levels[1].config.num_clusters
    assert grid_clusters.shape == (4 * k, 3)
    np.testing.assert_array_equal(grid_clusters[:, 1], np.repeat(np.arange(k), 4))
    for array in (grid_clusters[:, [0, 2]], grid_eps, grid_z):  # the same down each column
        np.testing.assert_array_equal(array.reshape(k, 4, *array.shape[1:]),
                                      np.broadcast_to(array[:4], (k, 4, *array.shape[1:])))


def test_projector_schedule_and_noise_penalty():
    config = ProjectConfig(steps=1000)
    lr = np.asarray([learning_rate(config, jnp.float32(s)) for s in (0, 25, 50, 500, 875, 1000)])
    np.testing.assert_allclose(lr, [0.0, 0.05, 0.1, 0.1, 0.05, 0.0], atol=1e-6)
    checker = jnp.asarray((np.indices((16, 16)).sum(0) % 2) * 2.0 - 1.0)
    # shift-1 autocorrelation -1 both ways at 16x16; 2x pooling to 8x8 averages it to 0
    assert float(noise_regularisation(checker)) == pytest.approx(2.0)
    assert float(noise_regularisation(jnp.ones((8, 8)))) == pytest.approx(2.0)


@pytest.mark.slow
def test_projection_starts_at_the_nearest_sample(demo_sized_world):
    from mlss_jax.explore.projection import nearest_samples
    from mlss_jax.networks.sampling import mapped_w
    from mlss_jax.networks.vgg16 import lpips_distance
    from mlss_jax.weights.load import load_vgg16

    generator = load_generator(demo_sized_world / "gen")
    params, lin = load_vgg16()
    rng = jax.random.PRNGKey(5)
    candidates = mapped_w(generator, np.asarray(jax.random.normal(rng, (40, generator.z_dim))))
    images = generator.synthesis(np.repeat(candidates[:, None], generator.num_ws, axis=1))
    # targets: candidate 17 itself, and an image between candidates 3 and 30
    between = generator.synthesis(np.repeat((0.8 * candidates[3] + 0.2 * candidates[30])[None, None],
                                            generator.num_ws, axis=1))
    targets = jnp.concatenate([images[17:18], between])
    w, distance = nearest_samples(generator, params, lin, targets, 40, rng, progress=False)
    np.testing.assert_allclose(w[0], candidates[17], rtol=1e-6)
    assert distance[0] < 1e-5
    brute = np.asarray(lpips_distance(params, lin, images, jnp.repeat(between, 40, axis=0)))
    np.testing.assert_allclose(w[1], candidates[np.argmin(brute)], rtol=1e-6)
    np.testing.assert_allclose(distance[1], brute.min(), rtol=1e-3, atol=1e-5)


@pytest.mark.slow
def test_projection_reduces_lpips_and_the_nearest_start_never_loses(demo_sized_world):
    from mlss_jax.explore.toolkit import seed_latents
    from mlss_jax.networks.sampling import synthesize
    from mlss_jax.metrics.lpips import lpips_images
    from mlss_jax.networks.generator import to_uint8
    from mlss_jax.networks.vgg16 import lpips_distance
    from mlss_jax.weights.load import load_vgg16

    generator = load_generator(demo_sized_world / "gen")
    targets = synthesize(generator, generator.mapping(seed_latents(generator, [3, 4])))
    from_mean = project(generator, targets,
                        ProjectConfig(steps=40, w_stats_samples=500, start_candidates=0),
                        snapshot_steps=(0,), progress=False)
    chex.assert_shape(from_mean.ws, (2, generator.num_ws, generator.w_dim))
    start = lpips_images()(to_uint8(from_mean.snapshots[0][1]), targets)
    assert np.all(from_mean.lpips < start)
    # the run from W's mean is one of the two: the better one is never worse than it (up to
    # the last digits a batch of another shape gives)
    both = project(generator, targets, ProjectConfig(steps=40, w_stats_samples=500,
                                                     start_candidates=100), progress=False)
    chex.assert_shape(both.ws, (2, generator.num_ws, generator.w_dim))
    assert np.all(both.lpips <= from_mean.lpips * 1.01 + 1e-4)
    # the LPIPS reported is the kept images'
    params, lin = load_vgg16()
    kept = lpips_distance(params, lin, jnp.asarray(both.images), jnp.asarray(targets) / 127.5 - 1)
    np.testing.assert_allclose(kept, both.lpips, rtol=1e-4, atol=1e-6)


def _world_args(world, out):
    return ["--generator", str(world / "gen"), "--out", str(out)]


@pytest.mark.slow
def test_explore_commands_write_their_images(demo_sized_world, tmp_path):
    out = tmp_path / "x"
    world = _world_args(demo_sized_world, out)
    levels = ["--levels-dir", str(demo_sized_world / "levels")]
    runs = [
        (["control", "--level", "medium", "--columns", "3", *levels], ["control-medium.png"]),
        (["control", "--clusters", "0,2,1", "--columns", "2", *levels], ["compose-0-2-1.png"]),
        (["tsne", "--samples", "60", "--perplexity", "10", *levels], ["tsne.png"]),
        (["interpolate", "--seeds", "1,2", "--steps", "4"],
         ["interpolate-z-slerp-1-2.png", "interpolate-z-slerp-1-2.gif"]),
        (["interpolate", "--seeds", "1,2", "--space", "w", "--mode", "lerp", "--steps", "3"],
         ["interpolate-w-lerp-1-2.gif"]),
        (["mix", "--seeds", "1-3", *levels], ["mix-coarse.png", "mix-medium.png", "mix-fine.png"]),
        (["edit", "--pca", "1", "--layers", "2-5", "--samples", "300", "--strengths=-1,0,1"],
         ["edit-pca1-layers-2-5.png", "direction-pca1.npy"]),
        (["truncate", "--seeds", "0-2", "--psi", "0.3", "--samples", "40", "--multimodal-k", "4",
          *levels], ["truncate-psi0.3.png"]),
        (["truncate", "--seeds", "0-2", "--level-psi", "coarse=0,fine=0.5", "--methods",
          "multilevel", "--samples", "40", *levels], ["truncate-psi0.5-coarse0-fine0.5.png"]),
    ]
    for args, files in runs:
        code, stdout, err = run_script("explore.py", *args, *world)
        assert code == 0, (args, err)
        for name in files:
            path = out / name
            assert str(path) in stdout, (args, stdout)
            magic = {".png": PNG, ".gif": GIF, ".npy": b"\x93NUMPY"}[path.suffix]
            assert path.read_bytes()[:len(magic)] == magic
    # each command's settings are kept beside its outputs
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["explore mix"] == {
        "generator": str(demo_sized_world / "gen"), "levels_dir": str(demo_sized_world / "levels"),
        "seeds": [1, 2, 3], "level": "all", "split": "2,4"}
    assert manifest["settings"]["explore interpolate"]["space"] == "w"     # the latest run's
    assert manifest["settings"]["explore truncate"]["methods"] == ["multilevel"]
    assert manifest["settings"]["explore edit"]["layers"] == [2, 5]
    assert "levels_dir" not in manifest["settings"]["explore edit"]
    # the truncation grid: the untruncated row on top, then one row per method (32 px cells, 2 px pad)
    from PIL import Image

    assert Image.open(out / "truncate-psi0.3.png").size[1] == 2 * (5 * (32 + 2) + 2)  # shown 2x
    np.save(tmp_path / "d.npy", np.load(out / "direction-pca1.npy"))
    code, stdout, err = run_script("explore.py", "edit", "--direction", str(tmp_path / "d.npy"),
                                   "--strengths", "0,2", *world)
    assert code == 0, err
    assert (out / "edit-d-layers-all.png").read_bytes()[:8] == PNG


@pytest.mark.slow
def test_explore_project_writes_latents_and_a_report(demo_sized_world, tmp_path):
    out = tmp_path / "p"
    code, stdout, err = run_script("explore.py", "project", "--seeds", "0-1", "--steps", "8",
                                   *_world_args(demo_sized_world, out))
    assert code == 0, err
    saved = np.load(out / "projected-seeds-0-1.npz")
    assert saved["ws"].shape == (2, 8, 8) and saved["lpips"].shape == (2,)
    report = json.loads((out / "project-seeds-0-1.json").read_text())
    assert report["targets"] == 2 and 0.0 <= report["same_factors_all"] <= 1.0
    assert report["mean_lpips"] == pytest.approx(float(saved["lpips"].mean()))
    for name in ("reconstruction-seeds-0-1.png", "progress-seeds-0-1.png"):
        assert (out / name).read_bytes()[:8] == PNG and str(out / name) in stdout
    Image.fromarray(np.zeros((40, 20, 3), np.uint8)).save(tmp_path / "photo.png")
    code, _, err = run_script("explore.py", "project", "--image", str(tmp_path / "photo.png"),
                              "--steps", "2", *_world_args(demo_sized_world, out))
    assert code == 0, err
    assert (out / "reconstruction-photo.png").read_bytes()[:8] == PNG
    settings = json.loads((out / "manifest.json").read_text())["settings"]["explore project"]
    assert settings["image"] == str(tmp_path / "photo.png") and settings["steps"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("args, code, message", [
    (["control", "--clusters", "0,5,1"], 2, "medium cluster 5 is out of range 0..2"),
    (["control", "--clusters", "0,1"], 2, "one cluster per level"),
    (["edit", "--pca", "0", "--layers", "3-9"], 2, "outside 0..7"),
    (["edit", "--interfacegan", "hue=teal"], 2, "unknown attribute hue=teal"),
    (["interpolate", "--seeds", "1,2,3"], 2, "two seeds"),
    (["interpolate", "--space", "w", "--mode", "slerp"], 2, "use --mode lerp"),
    (["mix", "--seeds", "a,b"], 2, "expected integers"),
    (["truncate", "--psi", "1.5"], 2, "--psi must lie in [0, 1]"),
    (["truncate", "--methods", "stylegan,best"], 2, "unknown truncation method 'best'"),
    (["edit", "--strengths=0,1"], 2, "edit needs a direction: --direction, --pca or --interfacegan"),
    (["edit", "--pca", "1", "--interfacegan", "hue=red"], 2, "give one of --direction, --pca"),
    (["teleport"], 2, "invalid choice"),
])
def test_explore_bad_arguments_are_one_line_errors(demo_sized_world, tmp_path, args, code, message):
    levels = ["--levels-dir", str(demo_sized_world / "levels")] if args[0] in ("control", "truncate") else []
    got, _, err = run_script("explore.py", *args, *levels,
                             *(_world_args(demo_sized_world, tmp_path) if args[0] != "teleport" else []))
    assert got == code and message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.slow
def test_explore_rejects_unreadable_inputs(demo_sized_world, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not an image")
    np.save(tmp_path / "wrong.npy", np.zeros(3))
    for args, message in [(["project", "--image", str(tmp_path / "broken.png")], "cannot read image"),
                          (["project", "--image", str(tmp_path / "none.png")], "no image"),
                          (["edit", "--direction", str(tmp_path / "wrong.npy")], "expected (8,)")]:
        got, _, err = run_script("explore.py", *args, *_world_args(demo_sized_world, tmp_path))
        assert got == 1 and message in err and len(err.strip().splitlines()) == 1, err
