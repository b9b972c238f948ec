"""Normalised mutual information against analytic cases."""

from __future__ import annotations

import numpy as np
import pytest

from mlss_jax.metrics.nmi import normalized_mutual_information as nmi


def test_identical_and_relabelled_labelings_score_one():
    a = np.repeat(np.arange(4), 25)
    assert nmi(a, a) == pytest.approx(1.0)
    assert nmi(a, (a * 7 + 3) % 4) == pytest.approx(1.0)


def test_independent_labelings_score_zero():
    a = np.repeat(np.arange(4), 6)          # 0000..3333
    b = np.tile(np.arange(6), 4)            # every a meets every b equally often
    assert nmi(a, b) == pytest.approx(0.0, abs=1e-12)


def test_a_coarsening_has_the_textbook_value():
    a = np.arange(4)                        # H(A) = ln 4
    b = a // 2                              # H(B) = ln 2 = I(A; B)
    assert nmi(a, b) == pytest.approx(np.log(2) / ((np.log(4) + np.log(2)) / 2))


def test_constant_and_bad_input():
    assert nmi(np.zeros(5), np.zeros(5)) == 0.0
    with pytest.raises(ValueError, match="equal length"):
        nmi(np.zeros(3), np.zeros(4))
