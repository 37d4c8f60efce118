"""Tests of flatlib.curvature.outliers: the gap, ratio and elbow rules of Sagun et al. (App. A)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flatlib.curvature import outliers


def _brute(lam, window):
    """Brute-force versions of the three rules, written out loop by loop."""
    pos = sorted((v for v in lam if v > 0), reverse=True)[:window]
    m = len(pos)
    best_gap = max(range(1, m), key=lambda c: (pos[c - 1] - pos[c], -c))
    best_ratio = max(range(1, m), key=lambda c: (pos[c - 1] / pos[c], -c))
    dist = []
    for i in range(1, m):  # points 2..m; the count is the number of points before
        x = i / (m - 1)
        y = (pos[i] - pos[-1]) / (pos[0] - pos[-1])
        dist.append((1 - x - y, -i))
    best_elbow = max(range(1, m), key=lambda c: dist[c - 1])
    return {"gap": best_gap, "ratio": best_ratio, "elbow": best_elbow}


def test_step_spectrum_has_k_outliers():
    rng = np.random.default_rng(0)
    for k in (1, 3, 10, 50):
        bulk = rng.uniform(-0.01, 0.05, size=2000)
        big = 1.0 + rng.uniform(0, 1, size=k)
        lam = np.concatenate([bulk, big])
        rng.shuffle(lam)
        assert outliers.count_outliers(lam, 2 * k + 10) == {"gap": k, "ratio": k, "elbow": k}


@given(
    st.lists(st.floats(0.001, 100.0), min_size=3, max_size=40, unique=True),
    st.lists(st.floats(-5.0, 0.0), max_size=5),
    st.integers(3, 50),
)
def test_rules_match_brute_force(pos, neg, window):
    lam = np.array(pos + neg)
    assert outliers.count_outliers(lam, window) == _brute(lam, window)


def test_negative_values_and_window_are_respected():
    lam = [10.0, 9.0, 1.0, 0.9, 0.8, -50.0]
    assert outliers.count_gap(lam, 5) == 2
    assert outliers.top_positive(lam, 3).tolist() == [10.0, 9.0, 1.0]
    # with a window of 2 only one count is possible
    assert outliers.count_outliers([3.0, 2.0, 1.0], 2) == {"gap": 1, "ratio": 1, "elbow": 1}


def test_bad_inputs():
    with pytest.raises(ValueError, match="positive"):
        outliers.count_gap([1.0, -1.0, -2.0])
    with pytest.raises(ValueError, match="window"):
        outliers.count_ratio([3.0, 2.0, 1.0], window=1)
    with pytest.raises(TypeError, match="window"):
        outliers.count_elbow([3.0, 2.0, 1.0], window=2.5)
    with pytest.raises(ValueError, match="eigenvalues"):
        outliers.count_gap([[1.0, 2.0]])
    with pytest.raises(ValueError, match="eigenvalues"):
        outliers.count_gap([1.0, np.nan, 2.0])
