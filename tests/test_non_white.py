"""Tests of flatlib.theory.non_white: both sides of the Sec. 5 conjecture for non-white inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import expm

from flatlib.experiments import non_white as nw_experiment
from flatlib.theory import linear
from flatlib.theory import non_white as nw
from flatlib.theory.linear import autograd_hessian


def _data(sigma: np.ndarray, T: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``X`` with ``X^T X / n = sigma`` exactly and ``Y = X T^T`` (so ``T`` is optimal, eq. 3)."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, sigma.shape[0])))
    evals, evecs = np.linalg.eigh(sigma)
    x = np.sqrt(n) * q @ ((evecs * np.sqrt(evals)) @ evecs.T)
    return x, x @ T.T


@given(
    d=st.integers(1, 4),
    log_condition=st.floats(0.0, 6.0),
    seed=st.integers(0, 2**31),
)
@settings(max_examples=30, deadline=None)
def test_random_covariance_has_the_requested_condition_number(d, log_condition, seed):
    condition = 10.0**log_condition
    sigma = nw.random_covariance(d, condition, seed=seed)
    evals = np.linalg.eigvalsh(sigma)
    assert np.allclose(sigma, sigma.T)
    assert evals[0] > 0
    assert np.isclose(evals.sum(), d)
    assert np.isclose(evals[-1] / evals[0], condition if d > 1 else 1.0, rtol=1e-8)
    assert np.array_equal(sigma, nw.random_covariance(d, condition, seed=seed))


def test_hessian_with_sigma_matches_autograd():
    """Closed form 2 Phi Phi^T (eqs. 15-16 with Sigma_x) against the autograd Hessian of eq. 2."""
    sigma, T = nw.random_instance(3, 2, 50.0, seed=4)
    X, Y = _data(sigma, T, n=7, seed=5)
    assert np.allclose(linear.second_moment(X), sigma)
    assert np.allclose(linear.optimal_map(X, Y), T)
    w = linear.random_minimum(T, 3, seed=6, widths=[2, 2])
    h = autograd_hessian(w, X, Y)
    assert np.allclose(h, linear.hessian_at_minimum(w, sigma), atol=1e-9 * np.abs(h).max())
    assert np.isclose(np.linalg.eigvalsh(h)[-1], linear.sharpness(w, sigma), rtol=1e-10)


def test_nu_lower_bounds_sharpness_at_random_minima():
    """The proved half (eqs. 21-25): nu(B) <= lambda_max at every minimum, for any Sigma_x."""
    sigma, T = nw.random_instance(2, 2, 300.0, seed=1)
    X, Y = _data(sigma, T, n=5, seed=2)
    best = nw.max_nu(T, 3, sigma)
    rng = np.random.default_rng(0)
    for i in range(5):
        w = linear.random_minimum(T, 3, seed=i, widths=[2, 2])
        top = np.linalg.eigvalsh(autograd_hessian(w, X, Y))[-1]
        assert best.value <= top * (1 + 1e-10)
        for _ in range(10):
            b = rng.standard_normal(T.shape)
            assert linear.nu(b / np.linalg.norm(b), T, 3, sigma) <= top * (1 + 1e-10)


@pytest.mark.parametrize(("d_x", "d_y", "m"), [(2, 2, 2), (3, 3, 4), (3, 2, 3), (2, 3, 5)])
def test_white_case_reproduces_theorem1(d_x, d_y, m):
    T = np.random.default_rng(d_x + 10 * d_y + 100 * m).standard_normal((d_y, d_x))
    exact = linear.flattest_sharpness(T, m)
    left = nw.flattest_minimum(T, m, np.eye(d_x), n_starts=3, seed=1)
    assert np.isclose(left.sharpness, exact, rtol=1e-9)
    assert np.allclose(left.finals, exact, rtol=1e-6)
    assert np.isclose(nw.max_nu(T, m).value, exact, rtol=1e-12)
    assert np.isclose(nw.rank_one_nu(T, m).value, exact, rtol=1e-12)


def test_scalar_case_closed_form():
    """d_x = d_y = 1: both sides equal 2 m s |t|^(2(1 - 1/m)) for Sigma_x = s (eq. 25)."""
    s, t, m = 3.7, -1.3, 4
    exact = 2 * m * s * abs(t) ** (2 * (1 - 1 / m))
    left = nw.flattest_minimum([[t]], m, [[s]], n_starts=3)
    assert np.isclose(left.sharpness, exact, rtol=1e-10)
    assert np.isclose(nw.max_nu([[t]], m, [[s]]).value, exact, rtol=1e-12)


def test_descent_stays_on_omega_and_beats_random_minima():
    sigma, T = nw.random_instance(3, 3, 1e3, seed=8)
    m = 3
    res = nw.flattest_minimum(T, m, sigma, n_starts=4, seed=3)
    assert np.allclose(linear.end_to_end(res.weights), T, atol=1e-9 * np.linalg.norm(T))
    assert np.isclose(res.sharpness, linear.sharpness(res.weights, sigma), rtol=1e-12)
    randoms = [
        linear.sharpness(linear.random_minimum(T, m, seed=i, widths=[3, 3]), sigma)
        for i in range(30)
    ]
    assert res.sharpness <= min(randoms)
    assert np.all(res.finals <= res.starts * (1 + 1e-12))
    gap = nw.conjecture_gap(T, m, sigma)
    assert gap.gap >= -1e-10
    assert gap.max_nu >= gap.rank_one_nu * (1 - 1e-12)


def test_smoothed_sharpness_gradient_matches_finite_differences():
    sigma, T = nw.random_instance(3, 2, 20.0, seed=3)
    w = linear.random_minimum(T, 3, seed=1, widths=[2, 2])
    rng = np.random.default_rng(0)
    gens = [0.1 * rng.standard_normal((2, 2)) for _ in range(2)]
    value, grad = nw.smoothed_sharpness(w, sigma, 5.0, gens)
    lam = linear.sharpness(w, sigma)
    moved = linear.sharpness(linear.apply_gauge(w, [expm(g) for g in gens]), sigma)
    assert moved <= value <= moved + lam * np.log(6) / 5.0
    sharp = nw.smoothed_sharpness(w, sigma, 1e4, gens)[0]
    assert moved * (1 - 1e-12) <= sharp <= moved + lam * np.log(6) / 1e4
    eps = 1e-6
    for k in range(2):
        for i in range(2):
            for j in range(2):
                plus = [g.copy() for g in gens]
                minus = [g.copy() for g in gens]
                plus[k][i, j] += eps
                minus[k][i, j] -= eps
                num = (
                    nw.smoothed_sharpness(w, sigma, 5.0, plus)[0]
                    - nw.smoothed_sharpness(w, sigma, 5.0, minus)[0]
                ) / (2 * eps)
                assert np.isclose(grad[k][i, j], num, rtol=1e-5, atol=1e-6 * lam)


def test_max_nu_beats_random_unit_matrices_and_rank_one_formula():
    sigma, T = nw.random_instance(3, 3, 100.0, seed=2)
    m = 3
    best = nw.max_nu(T, m, sigma)
    assert np.isclose(np.linalg.norm(best.B), 1.0)
    assert np.isclose(best.value, linear.nu(best.B, T, m, sigma))
    rng = np.random.default_rng(1)
    for _ in range(200):
        b = rng.standard_normal(T.shape)
        assert linear.nu(b / np.linalg.norm(b), T, m, sigma) <= best.value * (1 + 1e-12)
    r1 = nw.rank_one_nu(T, m, sigma)
    a, c = r1.B[:, 0] / np.linalg.norm(r1.B[:, 0]), r1.B[0] / np.linalg.norm(r1.B[0])
    root = linear.sqrt_covariance(sigma, 3)
    formula = (
        2 * m * (np.linalg.norm(T @ root @ c) ** (m - 1) * np.linalg.norm(root @ c)) ** (2 / m)
    )
    assert np.isclose(r1.value, formula, rtol=1e-10)
    assert np.linalg.matrix_rank(r1.B) == 1 and a.shape == (3,)


def test_run_instance_returns_scalars():
    out = nw_experiment.run_instance({"d_x": 2, "d_y": 2, "m": 2, "condition": 10.0, "seed": 0})
    assert set(out) >= {"min_sharpness", "max_nu", "gap"}
    assert all(isinstance(v, float) for v in out.values())
    assert out["gap"] >= -1e-10


def test_bad_inputs():
    with pytest.raises(ValueError, match="condition"):
        nw.random_covariance(3, 0.5)
    with pytest.raises(TypeError, match="d"):
        nw.random_covariance(2.5, 10.0)
    with pytest.raises(ValueError, match="sigma_x"):
        nw.max_nu(np.eye(2), 2, -np.eye(2))
    with pytest.raises(ValueError, match="sigma_x"):
        nw.flattest_minimum(np.eye(2), 2, np.eye(3))
    with pytest.raises(ValueError, match="full rank"):
        nw.conjecture_gap(np.ones((2, 2)), 2, np.eye(2))
    with pytest.raises(ValueError, match="m"):
        nw.rank_one_nu(np.eye(2), 0)
    with pytest.raises(ValueError, match="n_starts"):
        nw.flattest_minimum(np.eye(2), 2, n_starts=0)
    with pytest.raises(ValueError, match="generators"):
        nw.smoothed_sharpness(nw.bottleneck_minimum(np.eye(2), 3), None, 1.0, [np.zeros((2, 2))])
    with pytest.raises(ValueError, match="beta"):
        nw.smoothed_sharpness(nw.bottleneck_minimum(np.eye(2), 3), None, -1.0)


def test_figures_draw():
    import pandas as pd
    from matplotlib.figure import Figure

    from flatlib.figures import non_white as fig_nw

    data = nw_experiment.slider_data(conditions=(1, 10), depths=(1, 2), seed=0)
    assert set(data) == {(1, 1), (1, 2), (10, 1), (10, 2)}
    frame = data[(10, 2)]
    assert np.isclose(frame.profile.max(), frame.max_nu, rtol=1e-4)
    assert isinstance(fig_nw.plot_conjecture(frame, 10, 2), Figure)
    configs = [
        {"d_x": 2, "d_y": 2, "m": m, "condition": k, "seed": 0} for m in (2, 3) for k in (1.0, 10.0)
    ]
    rows = [dict(c, **nw_experiment.run_instance(c)) for c in configs]
    assert isinstance(fig_nw.plot_gap_distribution(pd.DataFrame(rows)), Figure)


def test_run_instance_measures_the_flattest_minimum():
    out = nw_experiment.run_instance({"d_x": 2, "d_y": 3, "m": 3, "condition": 10.0, "seed": 1})
    assert 0 <= out["second_ratio"] < 1 - 1e-6  # a simple top eigenvalue
    assert out["term_spread"] < 1e-6  # the m terms of (21) are equal: Lemma 4 is tight
    assert all(c["version"] == 2 for c in nw_experiment.conjecture_grid(full=False))


def test_slider_table_against_the_frames():
    from flatlib.figures import non_white as fig_nw

    frames = nw_experiment.slider_data(conditions=(1, 10), depths=(1, 2), seed=0)
    table = nw_experiment.slider_table(frames)
    assert len(table) == 4 and (table["gap"].abs() < 1e-9).all()
    angles = table[["angle sigma-whitened", "best c from sigma", "best c from whitened"]]
    assert ((angles >= 0) & (angles <= 90)).all().all()
    row = table[(table["condition"] == 10) & (table["m"] == 1)].iloc[0]
    assert row["best c from sigma"] < 1e-3  # m = 1: the top eigenvector of Sigma_x
    frame = frames[(10, 2)]
    expected = min(h[-1] for h in frame.histories) / frame.white_value
    assert table[(table["condition"] == 10) & (table["m"] == 2)].iloc[0][
        "flattest / white"
    ] == pytest.approx(expected)
    slider = fig_nw.conjecture_slider(conditions=(1, 10), depths=(1, 2), data=frames)
    assert slider.stops["m"] == [1, 2]
    with pytest.raises(ValueError, match="no frame"):
        fig_nw.conjecture_slider(conditions=(1, 10, 100), depths=(1, 2), data=frames)
