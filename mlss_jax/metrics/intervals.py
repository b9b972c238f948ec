"""95% intervals of the sweep's values: precision and recall are shares, FID a biased statistic.

What each interval covers, conditional on the other feature set (the one held fixed):

- precision and recall: the share of *all* samples of one side (infinitely many) that fall in
  the other set's manifold. Given the other set, each sample's membership is an independent
  Bernoulli draw, so this is a binomial proportion, and the Wilson score interval covers it
  (Brown, Cai & DasGupta 2001), also at 0 or n hits, where a bootstrap gives a zero-width
  interval. It does not cover the population precision/recall (a k-NN manifold from infinitely
  many samples): the manifold itself depends on the other set's samples and their number.
- FID: the FID that ``n`` samples give on average (its expected value at this sample count),
  not the FID of infinitely many samples. The plug-in FID is biased upward at finite n, more so
  as the features' dimension grows against n. Each bootstrap resample is itself n draws from
  the n rows, so it carries that bias once more on top of the estimate: a percentile interval
  sits above the estimate and can miss it. :func:`bootstrap_interval` takes only the
  bootstrap's *spread*, around its own mean, and places it around the estimate: the interval
  contains the estimate and covers FID at n. An interval for the population FID (the basic
  bootstrap's) would sit below the estimate by the bias and miss it where the bias is as large
  as the spread.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

Z_95 = 1.959963984540054  # the standard normal's 97.5% quantile


def proportion_interval(hits: np.ndarray) -> tuple[float, float]:
    """95% Wilson score interval of the share of True in ``hits`` (independent draws)."""
    n, share = len(hits), float(np.mean(hits))
    z2n = Z_95 ** 2 / n
    centre = (share + z2n / 2) / (1 + z2n)
    half = Z_95 / (1 + z2n) * np.sqrt(share * (1 - share) / n + z2n / (4 * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_interval(values: np.ndarray, statistic: Callable[[np.ndarray], float],
                       resamples: int, rng: np.random.Generator) -> tuple[float, float]:
    """95% interval of the mean of ``statistic`` over samples of ``len(values)`` rows (for FID:
    the FID at this sample count), from ``resamples`` bootstrap resamples of the rows.

    The resamples' deviations from their own mean stand for the estimate's deviations from its
    mean, so the interval is the estimate minus their upper and lower quantiles. Centring them on
    their own mean, not on the estimate, drops the bias each resample adds again, and keeps the
    estimate inside. The quantiles are order statistics ``j`` and ``B + 1 - j`` of the ``B``
    deviations, ``j = (B + 1) // 40``: a further draw from the same distribution falls between
    them with probability ``(B + 1 - 2j) / (B + 1)``, at least 95% from 39 resamples on
    (np.percentile's interpolated 2.5% and 97.5% give 91% at 50). Where the features' dimension
    is a sizeable share of ``n``, the bootstrap spreads somewhat wider than the estimator, which
    errs wide. 0 resamples: (nan, nan).
    """
    if resamples == 0:
        return float("nan"), float("nan")
    n = len(values)
    stats = np.sort([statistic(values[rng.integers(0, n, n)]) for _ in range(resamples)])
    deviations = stats - stats.mean()
    j = max(1, (resamples + 1) // 40)
    estimate = statistic(values)
    # min/max: where every resample gives the same value, the deviations are the mean's rounding
    # error, all of one sign, and would put the estimate just outside
    return (float(min(estimate, estimate - deviations[-j])),
            float(max(estimate, estimate - deviations[j - 1])))
