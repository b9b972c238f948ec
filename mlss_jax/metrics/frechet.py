"""Fréchet distance between Gaussian fits of two feature sets (FID with Inception features)."""

from __future__ import annotations

import numpy as np


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of features [N, D], in float64."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"features must be [N >= 2, D], got {x.shape}")
    return x.mean(0), np.cov(x, rowvar=False)


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """``|mu1 - mu2|^2 + Tr(cov1 + cov2 - 2 (cov1 cov2)^(1/2))``.

    The trace of the matrix square root is the sum of the square roots of the
    eigenvalues of ``cov1^(1/2) cov2 cov1^(1/2)``, a symmetric PSD matrix, so
    it comes from two symmetric eigendecompositions (stable, no complex parts).
    """
    vals1, vecs1 = np.linalg.eigh(cov1)
    sqrt1 = (vecs1 * np.sqrt(np.clip(vals1, 0, None))) @ vecs1.T
    middle = sqrt1 @ cov2 @ sqrt1
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = float(np.sum(np.sqrt(np.clip(eig, 0, None))))
    diff = np.asarray(mu1) - np.asarray(mu2)
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt)


def frechet_distance_of(features_a: np.ndarray, features_b: np.ndarray) -> float:
    return frechet_distance(*gaussian_stats(features_a), *gaussian_stats(features_b))
