"""Precision/recall against brute force and analytic cases; Fréchet distance against SciPy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from mlss_jax.metrics.frechet import frechet_distance, frechet_distance_of, gaussian_stats
from mlss_jax.metrics.precision_recall import (in_manifold, knn_radii, mutual_membership,
                                               precision_recall, realism_scores)


def brute_force(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """The definition, with the full float64 distance matrices."""
    def radii(x):
        d = np.linalg.norm(x[:, None] - x[None], axis=-1)
        return np.sort(d, axis=1)[:, k]                  # column 0 is the sample itself

    def inside(q, s, r):
        return np.mean(np.any(np.linalg.norm(q[:, None] - s[None], axis=-1) <= r[None], axis=1))

    return inside(fake, real, radii(real)), inside(real, fake, radii(fake))


# the last case splits the support into several column chunks of several blocks each
@pytest.mark.parametrize("n_real, n_fake, dim, block, columns",
                         [(200, 150, 8, 64, 8192), (97, 131, 5, 32, 8192), (190, 150, 6, 16, 64)])
def test_matches_brute_force_on_random_data(n_real, n_fake, dim, block, columns):
    rng = np.random.default_rng(0)
    real = rng.standard_normal((n_real, dim))
    fake = rng.standard_normal((n_fake, dim)) * 1.3 + 0.4
    expected = brute_force(real, fake, k=3)
    got = precision_recall(real, fake, k=3, block=block, columns=columns)
    # float32 vs float64 distances may flip a sample lying on a ball's boundary
    assert got.precision == pytest.approx(expected[0], abs=1.5 / n_fake)
    assert got.recall == pytest.approx(expected[1], abs=1.5 / n_real)
    d = np.linalg.norm(real[:, None] - real[None], axis=-1)
    np.testing.assert_allclose(knn_radii(real, k=3, block=block, columns=columns),
                               np.sort(d, 1)[:, 3], rtol=1e-4)


# blocks that leave padding on both sides, and several column chunks
@pytest.mark.slow
@pytest.mark.parametrize("n_q, n_s, block, columns", [(150, 200, 64, 8192), (333, 290, 32, 96)])
def test_one_pass_both_ways_is_exactly_the_two_one_way_passes(n_q, n_s, block, columns):
    rng = np.random.default_rng(1)
    queries = rng.standard_normal((n_q, 12)).astype(np.float32) + 0.3
    support = rng.standard_normal((n_s, 12)).astype(np.float32)
    q_radii = knn_radii(queries, k=3, block=block, columns=columns)
    s_radii = knn_radii(support, k=3, block=block, columns=columns)
    q_in, s_in = mutual_membership(queries, support, q_radii, s_radii, block, columns)
    expected_q = in_manifold(queries, support, s_radii, block, columns)
    expected_s = in_manifold(support, queries, q_radii, block, columns)
    assert 0.2 < expected_q.mean() < 0.9 and 0.2 < expected_s.mean() < 0.9   # both ways tested
    np.testing.assert_array_equal(q_in, expected_q)
    np.testing.assert_array_equal(s_in, expected_s)


def test_analytic_cases():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 4))
    same = precision_recall(x, x)
    assert same.precision == 1.0 and same.recall == 1.0
    far = precision_recall(x, x + 100.0)
    assert far.precision == 0.0 and far.recall == 0.0
    # fake inside a small region of the real set: every fake is realistic, little is covered
    inner = x[np.linalg.norm(x, axis=1) < 1.0][:40] * 0.5
    inside = precision_recall(x, inner)
    assert inside.precision == 1.0 and inside.recall < 0.35


def test_realism_score_is_above_one_inside_the_manifold():
    rng = np.random.default_rng(2)
    real = rng.standard_normal((200, 3))
    radii = knn_radii(real, k=3)
    scores = np.asarray(realism_scores(np.stack([real[0] + 1e-3, real[0] + 50.0]), real, radii,
                                       block=20, columns=40))
    assert scores[0] > 1.0 > scores[1]
    d = np.linalg.norm(real[None] - (real[0] + 50.0), axis=-1)
    assert scores[1] == pytest.approx(np.max(np.asarray(radii) / d), rel=1e-4)


def test_rejects_bad_shapes():
    with pytest.raises(ValueError, match="equal D"):
        precision_recall(np.zeros((10, 3)), np.zeros((10, 4)))
    with pytest.raises(ValueError, match="more than k"):
        precision_recall(np.zeros((3, 3)), np.zeros((10, 3)))


def test_frechet_distance_matches_scipy():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((500, 6)) @ rng.standard_normal((6, 6))
    b = rng.standard_normal((400, 6)) * 0.7 + 1.0
    mu1, c1 = gaussian_stats(a)
    mu2, c2 = gaussian_stats(b)
    covmean = scipy.linalg.sqrtm(c1 @ c2).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * covmean)
    assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance_of(a, a) == pytest.approx(0.0, abs=1e-8)
    # two Gaussians with the same covariance: the squared distance of the means
    assert frechet_distance(np.zeros(3), np.eye(3), np.full(3, 2.0), np.eye(3)) == pytest.approx(12.0)


def test_row_sharded_membership_compiles_once_for_a_sweep_of_sets():
    """The sweep calls it once per truncated set: one trace (and compilation) serves them all,
    with the same results as the unsharded functions, padding rows included (odd row count)."""
    from mlss_jax.runtime.distributed import row_sharded

    traces = []

    def both(fake, fake_radii, real, real_radii):
        traces.append(fake.shape)
        return mutual_membership(fake, real, fake_radii, real_radii, block=32)

    both_ways = row_sharded(both, row_args=2, any_of=1)
    rng = np.random.default_rng(2)
    real = rng.standard_normal((101, 8)).astype(np.float32)
    real_radii = knn_radii(real, k=3, block=32)
    for shift in (0.0, 0.3, 0.6):
        fake = rng.standard_normal((101, 8)).astype(np.float32) + shift
        fake_radii = knn_radii(fake, k=3, block=32)
        fake_in, real_in = both_ways(fake, fake_radii, real, real_radii)
        np.testing.assert_array_equal(fake_in, in_manifold(fake, real, real_radii, block=32))
        np.testing.assert_array_equal(real_in, in_manifold(real, fake, fake_radii, block=32))
    assert len(traces) == 1
