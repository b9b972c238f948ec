"""Normalised mutual information between two labelings (how much a cluster index says about a factor)."""

from __future__ import annotations

import numpy as np


def normalized_mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """``I(A; B) / ((H(A) + H(B)) / 2)`` from the joint histogram (natural log).

    1 when one labeling determines the other, 0 for independent labelings; 0 when
    both are constant. The arithmetic-mean normalisation is scikit-learn's default.
    """
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"labelings must be non-empty and of equal length, got {a.size} and {b.size}")
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    joint = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(joint, (ai, bi), 1.0)
    joint /= a.size
    pa, pb = joint.sum(1), joint.sum(0)
    nz = joint > 0
    mutual = float(np.sum(joint[nz] * np.log(joint[nz] / np.outer(pa, pb)[nz])))
    entropy = lambda p: float(-np.sum(p[p > 0] * np.log(p[p > 0])))
    mean_entropy = (entropy(pa) + entropy(pb)) / 2
    return 0.0 if mean_entropy == 0 else max(0.0, mutual / mean_entropy)
