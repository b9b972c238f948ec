"""The sweep's 95% intervals: calibrated on Gaussian features, where each truth is known.

Coverage is measured over 400 repetitions, so its binomial standard error at 95% is 0.011;
each test asks for at least 0.95 - 3 se (0.917), and for intervals not much wider than the
estimator's own spread, so that width alone cannot buy the coverage.
"""

from __future__ import annotations

import numpy as np
import pytest

from mlss_jax.metrics.frechet import frechet_distance, gaussian_stats
from mlss_jax.metrics.intervals import Z_95, bootstrap_interval, proportion_interval
from mlss_jax.metrics.precision_recall import in_manifold, knn_radii, mutual_membership

REPETITIONS = 400
LEAST_COVERAGE = 0.95 - 3 * np.sqrt(0.95 * 0.05 / REPETITIONS)


def test_wilson_interval_at_zero_all_and_some_hits():
    n = 2000
    assert proportion_interval(np.zeros(n, bool)) == pytest.approx((0.0, Z_95**2 / (n + Z_95**2)))
    assert proportion_interval(np.ones(n, bool)) == pytest.approx((n / (n + Z_95**2), 1.0))
    hits = np.random.default_rng(5).random(n) < 0.3
    lo, hi = proportion_interval(hits)
    share = hits.mean()
    assert lo < share < hi
    assert hi - lo == pytest.approx(2 * Z_95 * np.sqrt(share * (1 - share) / n), rel=0.01)


@pytest.mark.parametrize("resamples", [39, 50, 100])
@pytest.mark.parametrize("value", [0.1, 0.7, 24617.492846784502])
def test_a_constant_statistic_has_its_value_inside_its_interval(value, resamples):
    """Every resample gives the same value (an FID of identical images): the mean of the
    resamples differs from it by rounding, which must not put the estimate outside."""
    lo, hi = bootstrap_interval(np.zeros((10, 2)), lambda rows: value, resamples,
                                np.random.default_rng(0))
    assert lo <= value <= hi and hi - lo < 1e-9 * max(1.0, value)


def test_bootstrap_interval_of_a_mean_and_without_resamples():
    values = np.random.default_rng(6).standard_normal(2000)
    lo, hi = bootstrap_interval(values, np.mean, 200, np.random.default_rng(0))
    assert lo < values.mean() < hi
    assert hi - lo == pytest.approx(2 * Z_95 * values.std() / np.sqrt(2000), rel=0.25)
    assert all(np.isnan(bootstrap_interval(values, np.mean, 0, np.random.default_rng(0))))


@pytest.mark.slow
@pytest.mark.parametrize("shift, bias_exceeds_spread", [(0.3, True), (2.0, False)])
def test_fid_interval_covers_the_fid_at_its_sample_count(shift, bias_exceeds_spread):
    """Generated N(mean, M M^T) against a fixed real set from N(0, I), 200 samples of 8-d
    features, 50 resamples. At shift 0.3 the FID's bias exceeds its spread (the case where a
    percentile interval misses its own estimate); at 2.0 the spread is the larger."""
    d, n, resamples = 8, 200, 50
    rng = np.random.default_rng(0)
    real_stats = gaussian_stats(rng.standard_normal((2000, d)))
    mixing = np.eye(d) + 0.3 * rng.standard_normal((d, d)) / np.sqrt(d)
    mean = np.full(d, shift / np.sqrt(d))
    draw = lambda: rng.standard_normal((n, d)) @ mixing.T + mean
    fid = lambda features: frechet_distance(*real_stats, *gaussian_stats(features))
    estimates = np.asarray([fid(draw()) for _ in range(4000)])
    truth = estimates.mean()                       # Monte Carlo error: 1.6% of its spread
    spread = np.percentile(estimates, 97.5) - np.percentile(estimates, 2.5)
    # the population value (infinitely many generated samples) lies lower by the bias
    population = frechet_distance(*real_stats, mean, mixing @ mixing.T)
    assert ((truth - population) > estimates.std()) == bias_exceeds_spread

    covered, widths = 0, []
    for _ in range(REPETITIONS):
        features = draw()
        lo, hi = bootstrap_interval(features, fid, resamples, rng)
        assert lo <= fid(features) <= hi
        covered += lo <= truth <= hi
        widths.append(hi - lo)
    assert covered / REPETITIONS >= LEAST_COVERAGE   # measured: 0.953 (shift 0.3), 0.943 (2.0)
    assert np.mean(widths) < 1.5 * spread


@pytest.mark.slow
def test_every_fid_interval_contains_its_estimate_at_sweep_size():
    """2,000 samples of 128-d features and 50 resamples, as the sweep: from the real set's own
    distribution (where the bias weighs most against the FID) to far from it."""
    d, n = 128, 2000
    rng = np.random.default_rng(2)
    real_stats = gaussian_stats(rng.standard_normal((n, d)))
    fid = lambda features: frechet_distance(*real_stats, *gaussian_stats(features))
    for shift, scale in ((0.0, 1.0), (0.5, 0.9), (8.0, 0.5)):
        features = scale * rng.standard_normal((n, d)).astype(np.float32) + shift / np.sqrt(d)
        lo, hi = bootstrap_interval(features, fid, 50, rng)
        assert lo <= fid(features) <= hi


@pytest.mark.slow
@pytest.mark.parametrize("shift, scale", [(0.0, 1.0), (0.5, 1.2)])
def test_precision_and_recall_intervals_cover_the_share_given_the_other_set(shift, scale):
    """Real N(0, I) and generated N(shift, scale^2 I), 400 samples of 8-d features, k = 3, as
    the sweep computes them. The truth is conditional on the set held fixed: the share of
    200,000 fresh samples inside its manifold."""
    d, n, k = 8, 400, 3
    rng = np.random.default_rng(1)
    draw_real = lambda m: rng.standard_normal((m, d)).astype(np.float32)
    draw_fake = lambda m: (scale * rng.standard_normal((m, d)) + shift).astype(np.float32)
    real, fake = draw_real(n), draw_fake(n)
    real_radii, fake_radii = knn_radii(real, k), knn_radii(fake, k)
    precision_truth = float(np.mean(in_manifold(draw_fake(200_000), real, real_radii)))
    recall_truth = float(np.mean(in_manifold(draw_real(200_000), fake, fake_radii)))

    covered = np.zeros(2)
    widths = []
    for _ in range(REPETITIONS):
        new_fake, new_real = draw_fake(n), draw_real(n)
        precision_hits, _ = mutual_membership(new_fake, real, knn_radii(new_fake, k), real_radii)
        _, recall_hits = mutual_membership(fake, new_real, fake_radii, knn_radii(new_real, k))
        (p_lo, p_hi), (r_lo, r_hi) = (proportion_interval(np.asarray(precision_hits)),
                                      proportion_interval(np.asarray(recall_hits)))
        covered += [p_lo <= precision_truth <= p_hi, r_lo <= recall_truth <= r_hi]
        widths.append([p_hi - p_lo, r_hi - r_lo])
    # measured: precision 0.943, recall 0.958 (same distributions); 0.925, 0.953 (shifted)
    assert np.all(covered / REPETITIONS >= LEAST_COVERAGE)
    # no wider than the binomial's own 95% range
    for truth, width in zip((precision_truth, recall_truth), np.mean(widths, 0)):
        assert width < 1.1 * 2 * Z_95 * np.sqrt(truth * (1 - truth) / n)
