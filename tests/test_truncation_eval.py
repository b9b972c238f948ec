"""Multi-level truncation, cluster centres, the sweep comparison, and evaluate.py end to end."""

from __future__ import annotations

import csv
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import run_script
from mlss_jax.metrics.truncation_sweep import compare_at_equal
from mlss_jax.method.centres import cluster_centres
from mlss_jax.method.runs import load_level
from mlss_jax.method.truncation import multilevel_truncation, stylegan_truncation

RANGES = ((0, 2), (2, 4), (4, 7))


def test_multilevel_truncation_contracts_each_level_to_its_centre():
    rng = np.random.default_rng(0)
    ws = jnp.asarray(rng.standard_normal((5, 8, 3)), jnp.float32)
    centres = tuple(jnp.asarray(rng.standard_normal((4, 3)), jnp.float32) for _ in RANGES)
    assign = jnp.asarray(rng.integers(0, 4, (5, 3)))
    f = jax.jit(multilevel_truncation, static_argnames="level_ranges")
    np.testing.assert_allclose(f(ws, centres, assign, level_ranges=RANGES, psi=1.0), ws, atol=1e-6)
    out = np.asarray(f(ws, centres, assign, level_ranges=RANGES, psi=0.0))
    for level, (a, b) in enumerate(RANGES):
        expected = np.asarray(centres[level])[np.asarray(assign[:, level])]
        np.testing.assert_allclose(out[:, a:b], np.broadcast_to(expected[:, None], (5, b - a, 3)))
    np.testing.assert_allclose(out[:, 7], ws[:, 7])                  # the last input keeps w
    psi = jnp.asarray([0.5, 1.0, 0.0])                                   # one psi per level
    out = np.asarray(f(ws, centres, assign, level_ranges=RANGES, psi=psi))
    c0 = np.asarray(centres[0])[np.asarray(assign[:, 0])][:, None]
    np.testing.assert_allclose(out[:, 0:2], c0 + 0.5 * (np.asarray(ws[:, 0:2]) - c0), rtol=1e-6)
    np.testing.assert_allclose(out[:, 2:4], ws[:, 2:4], atol=1e-6)          # psi 1: unchanged


def test_one_cluster_per_level_at_w_avg_is_stylegan_truncation():
    rng = np.random.default_rng(1)
    ws = jnp.asarray(rng.standard_normal((4, 8, 3)), jnp.float32)
    w_avg = jnp.asarray(rng.standard_normal(3), jnp.float32)
    centres = tuple(w_avg[None] for _ in RANGES)
    ours = multilevel_truncation(ws, centres, jnp.zeros((4, 3), int), RANGES, 0.3)
    theirs = stylegan_truncation(ws, w_avg, 0.3, cutoff=7)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_compare_at_equal_recall():
    rows = [{"method": "stylegan", "psi": p, "recall": r, "precision": 1 - r} for p, r in
            [(0.0, 0.0), (1.0, 1.0)]]
    rows += [{"method": "multilevel", "psi": p, "recall": r, "precision": 1.1 - r} for p, r in
             [(0.0, 0.1), (1.0, 0.9)]]
    got = compare_at_equal(rows, "recall")
    assert got["overlap"] == pytest.approx([0.1, 0.9])
    assert got["mean_gap"] == pytest.approx(0.1) and got["multilevel_higher_share"] == 1.0


def test_cluster_centres_are_means_of_assigned_samples(demo_sized_world):
    model = load_level(demo_sized_world / "levels" / "fine")
    w = np.random.default_rng(2).standard_normal((6, 8)).astype(np.float32)
    assign = np.asarray([0, 0, 2, 2, 2, 0])          # cluster 1 is empty
    centres = cluster_centres(model, w, assign)
    np.testing.assert_allclose(centres[0], w[[0, 1, 5]].mean(0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(centres[2], w[[2, 3, 4]].mean(0), rtol=1e-6, atol=1e-7)
    mixture = cluster_centres(model, w, assign, mode="mixture")
    np.testing.assert_allclose(centres[1], mixture[1])  # empty cluster: the mixture's centre


def test_evaluate_pr_curve_writes_its_outputs(demo_sized_world, tmp_path):
    out = tmp_path / "eval"
    code, stdout, err = run_script("evaluate.py", "--pr-curve", "--generator",
                                   str(demo_sized_world / "gen"), "--levels-dir",
                                   str(demo_sized_world / "levels"), "--real", "shapes/tiny",
                                   "--samples", "40", "--psis", "0,0.5,1", "--out", str(out))
    assert code == 0, err
    sweep = json.loads((out / "sweep.json").read_text())
    rows = sweep["rows"]
    assert [(r["method"], r["psi"]) for r in rows] == [
        (m, p) for p in (0.0, 0.5, 1.0) for m in ("stylegan", "multilevel")]
    at_one = [r for r in rows if r["psi"] == 1.0]
    # psi = 1 leaves both methods untruncated: identical numbers, fully faithful
    assert at_one[0]["precision"] == at_one[1]["precision"] and at_one[0]["faithful"] == 1.0
    # identical images: LPIPS 0 up to the rounding of batched convolutions (seen: 1.6e-16)
    assert at_one[0]["lpips"] < 1e-6 and all(r["lpips"] > 1e-3 for r in rows if r["psi"] == 0.0)
    assert sweep["real_samples"] == 40
    assert all(0.0 <= r["precision"] <= 1.0 and 0.0 <= r["recall"] <= 1.0 for r in rows)
    with open(out / "sweep.csv") as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    for name in ("pr_curve.png", "precision_fid.png", "truncation_grid.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert str(out / name) in stdout


@pytest.mark.parametrize("args, code, message", [
    ([], 2, "nothing to do: pass --pr-curve"),
    (["--pr-curve", "--psis", "0,2"], 2, "--psis must lie in [0, 1]"),
    (["--pr-curve", "--psis", "0,nan"], 2, "expected a finite number"),
    (["--pr-curve", "--generator", "/nonexistent"], 1, "no generator at /nonexistent"),
    (["--pr-curve", "--features", "inception"], 2, "needs --inception-weights"),
    (["--pr-curve", "--features", "fid"], 2, "--features must be one of demo, vgg16, inception"),
])
def test_evaluate_errors_are_one_line(args, code, message, tmp_path):
    got, _, err = run_script("evaluate.py", "--out", str(tmp_path / "o"), *args)
    assert got == code and message in err and len(err.strip().splitlines()) == 1
