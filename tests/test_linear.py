"""Deep linear networks (Secs. 4-5, App. IV-IX.1) against exact autograd Hessians of eq. (2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flatlib.theory import flattening, linear

SETTINGS = settings(max_examples=25, deadline=None)


@st.composite
def problem(draw, max_d: int = 4, max_m: int = 5, min_m: int = 1):
    """Random (T, m, widths, seed) satisfying assumption A1."""
    d_x = draw(st.integers(1, max_d))
    d_y = draw(st.integers(1, max_d))
    m = draw(st.integers(min_m, max_m))
    widths = draw(st.lists(st.integers(min(d_x, d_y), max_d), min_size=m - 1, max_size=m - 1))
    seed = draw(st.integers(0, 10_000))
    t = np.random.default_rng(seed).standard_normal((d_y, d_x))
    return t, m, widths, seed


def flat_torch(ws: list[np.ndarray]) -> torch.Tensor:
    return torch.tensor(np.concatenate([w.ravel(order="F") for w in ws]))


def autograd_hessian(ws: list[np.ndarray], X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Exact Hessian of eq. (2) w.r.t. the column-stacked parameter vector w."""
    shapes = [w.shape for w in ws]
    x, y = torch.tensor(X), torch.tensor(Y)

    def empirical_loss(p: torch.Tensor) -> torch.Tensor:
        out, offset = x.T, 0
        for rows, cols in shapes:
            w = p[offset : offset + rows * cols].reshape(cols, rows).T  # vec^-1, Fortran order
            out = w @ out
            offset += rows * cols
        return torch.mean(torch.sum((y.T - out) ** 2, dim=0))

    return torch.func.hessian(empirical_loss)(flat_torch(ws)).numpy()


def coloured_data(T: np.ndarray, sigma_x: np.ndarray, n: int, seed: int):
    """Data with X^T X / n = sigma_x exactly, optimal map T and an orthogonal residual."""
    x, y = linear.whitened_data(T, n, seed, noise=0.5)
    root = np.linalg.cholesky(sigma_x)
    xc = x @ root.T
    return xc, y - x @ T.T + xc @ T.T


def relerr(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(b))


def random_spd(d: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed + 1).standard_normal((d, d))
    return a @ a.T + 0.5 * np.eye(d)


# ----------------------------------------------------------------------------- data, minima


@SETTINGS
@given(problem(), st.floats(0.0, 2.0))
def test_whitened_data_and_optimal_map(prob, noise):
    t, m, widths, seed = prob
    x, y = linear.whitened_data(t, t.shape[1] + 5, seed, noise=noise)
    assert np.allclose(linear.second_moment(x), np.eye(t.shape[1]), atol=1e-12)
    assert relerr(linear.optimal_map(x, y), t) < 1e-10
    ws = linear.random_minimum(t, m, seed=seed, widths=widths)
    e = y - x @ t.T
    assert abs(linear.loss(ws, x, y) - np.sum(e**2) / x.shape[0]) < 1e-9 * (1 + np.sum(e**2))


@SETTINGS
@given(problem())
def test_minima_lie_on_omega(prob):
    t, m, widths, seed = prob
    for ws in (linear.canonical_minimum(t, m, widths), linear.random_minimum(t, m, seed, widths)):
        assert [w.shape for w in ws] == list(
            zip([*widths, t.shape[0]], [t.shape[1], *widths], strict=True)
        )
        assert relerr(linear.end_to_end(ws), t) < 1e-10


# ----------------------------------------------------------------------------- Lemma 3, eq. 20


@SETTINGS
@given(problem(), st.booleans())
def test_lemma3_hessian_matches_autograd(prob, coloured):
    t, m, widths, seed = prob
    ws = linear.random_minimum(t, m, seed=seed, widths=widths)
    if coloured:
        sigma = random_spd(t.shape[1], seed)
        x, y = coloured_data(t, sigma, t.shape[1] + 4, seed)
    else:
        sigma = None
        x, y = linear.whitened_data(t, t.shape[1] + 4, seed, noise=0.5)
    exact = autograd_hessian(ws, x, y)
    closed = linear.hessian_at_minimum(ws, sigma)
    assert relerr(closed, exact) < 1e-9
    scale = np.linalg.norm(exact, 2)
    assert np.linalg.matrix_rank(exact, tol=1e-9 * scale) <= t.size
    evals = np.linalg.eigvalsh(exact)
    assert abs(linear.sharpness(ws, sigma) - evals[-1]) < 1e-9 * evals[-1]
    top = linear.top_eigenvector(ws, sigma)
    assert abs(np.linalg.norm(top) - 1) < 1e-12
    assert np.linalg.norm(exact @ top - evals[-1] * top) < 1e-8 * evals[-1]
    # eq. 23-25 lower bound, for any unit-Frobenius B and any Sigma_x
    rng = np.random.default_rng(seed)
    for _ in range(3):
        b = rng.standard_normal(t.shape)
        b /= np.linalg.norm(b)
        assert linear.nu(b, t, m, sigma) <= linear.sharpness(ws, sigma) * (1 + 1e-10)


# ----------------------------------------------------------------------------- Theorem 1


@SETTINGS
@given(problem())
def test_theorem1_canonical_minimum(prob):
    t, m, widths, seed = prob
    ws = linear.canonical_minimum(t, m, widths)
    x, y = linear.whitened_data(t, t.shape[1] + 3, seed, noise=0.3)
    exact = autograd_hessian(ws, x, y)
    best = linear.flattest_sharpness(t, m)
    uu, s, vt = np.linalg.svd(t)
    assert abs(best - 2 * m * s[0] ** (2 - 2 / m)) < 1e-12 * best
    assert abs(np.linalg.eigvalsh(exact)[-1] - best) < 1e-9 * best
    b = linear.phi(ws) @ np.kron(vt[0], uu[:, 0])  # b = Phi (v kron u)
    assert np.linalg.norm(exact @ b - best * b) < 1e-9 * best * np.linalg.norm(b)
    assert abs(linear.nu(np.outer(uu[:, 0], vt[0]), t, m) - best) < 1e-9 * best  # eq. 26
    assert abs(linear.max_stable_step(t, m) - 2 / best) < 1e-12 / best
    report = linear.is_flattest(ws, t)
    assert report.is_flattest and report.theorem4_condition
    assert np.allclose(linear.balancedness(ws), 0, atol=1e-10 * (1 + s[0]))


@SETTINGS
@given(problem(min_m=2))
def test_random_minima_are_not_flatter_than_theorem1(prob):
    t, m, widths, seed = prob
    ws = linear.random_minimum(t, m, seed=seed, widths=widths)
    best = linear.flattest_sharpness(t, m)
    assert linear.sharpness(ws) >= best * (1 - 1e-10)
    rng = np.random.default_rng(seed)
    uu, _, vt = np.linalg.svd(t)
    nu_values = []
    for _ in range(5):
        b = rng.standard_normal(t.shape)
        nu_values.append(linear.nu(b / np.linalg.norm(b), t, m))
    assert max(nu_values) <= linear.nu(np.outer(uu[:, 0], vt[0]), t, m) * (1 + 1e-10)


# ----------------------------------------------------------------------------- Theorems 2-4


def separated(t: np.ndarray) -> np.ndarray:
    """``t`` with its lower singular values scaled to at most 0.9 sigma_max."""
    uu, s, vt = np.linalg.svd(t, full_matrices=False)
    s[1:] = np.minimum(s[1:], 0.9 * s[0])
    return (uu * s) @ vt


def check_theorems_2_and_3(ws, t, tol):
    m = len(ws)
    s = np.linalg.norm(t, 2)
    gains = linear.v_gains(ws, t)
    assert np.allclose(gains, s ** (np.arange(1, m + 1) / m), rtol=tol)
    for k, sv in enumerate(linear.partial_gains(ws), start=1):
        assert sv[0] <= linear.gain_bound(t, m, k) * (1 + tol)
        assert np.min(np.abs(sv - gains[k - 1])) <= tol * gains[k - 1]  # v is a singular vector
    errors = linear.coupling_errors(ws, t)
    root = s ** (1 / m)
    assert np.all(errors.left <= tol * root) and np.all(errors.right <= tol * root)
    assert np.all(errors.link <= tol)


@settings(max_examples=10, deadline=None)
@given(problem(max_m=5, min_m=2))
def test_gauge_flatten_theorems_2_to_4(prob):
    t, m, widths, seed = prob
    t = separated(t)  # a repeated top singular value makes the optimum very degenerate
    ws0 = linear.random_minimum(t, m, seed=seed, widths=widths)
    res = flattening.flatten(ws0, t, method="gauge", max_iter=5000)
    assert res.method == "gauge" and res.converged
    assert relerr(linear.end_to_end(res.weights), t) < 1e-10
    assert res.history[-1] <= res.history[0]
    report = linear.is_flattest(res.weights, t, tol=1e-7)
    assert report.is_flattest and report.relative_gap <= 1e-7
    check_theorems_2_and_3(res.weights, t, tol=1e-3)


def test_walk_flatten_theorems_2_and_3():
    t = np.random.default_rng(0).standard_normal((3, 3))
    ws0 = linear.random_minimum(t, 4, seed=1)
    res = flattening.flatten(ws0, t, method="walk", seed=0, tol=1e-3)
    assert res.method == "walk" and res.converged
    assert np.all(np.diff(res.history) < 0)  # only decreasing steps are accepted
    assert relerr(linear.end_to_end(res.weights), t) < 1e-10
    gap = linear.is_flattest(res.weights, t, tol=1e-3).relative_gap
    assert 0 <= gap <= 1e-3
    check_theorems_2_and_3(res.weights, t, tol=0.15)


def test_flatten_reports_non_convergence():
    t = np.random.default_rng(0).standard_normal((3, 3))
    res = flattening.flatten(linear.random_minimum(t, 4, seed=1), t, method="walk", max_iter=3)
    assert not res.converged and res.n_iterations == 3


@SETTINGS
@given(problem(min_m=2), st.integers(0, 10_000))
def test_theorem4_sufficient_condition(prob, seed):
    """Layers Q_k^T D_k Q_{k-1} with top singular value sigma_max(T)^(1/m) are flattest."""
    t, m, _, _ = prob
    rng = np.random.default_rng(seed)
    uu, s, vt = np.linalg.svd(t)
    s[1:] = np.minimum(s[1:], 0.7 * s[0])  # a gap that the perturbation below cannot close
    t = (uu[:, : s.size] * s) @ vt[: s.size]
    r = s.size
    logs = rng.uniform(-0.02, 0.02, (m, r))  # |logs - mean| <= 0.04 < -log(0.7) / m
    logs -= logs.mean(axis=0)
    logs[:, 0] = 0.0
    diag = s ** (1 / m) * np.exp(logs)  # products over k give s; top entry exactly s0^(1/m)
    d = max(t.shape)
    qs = [np.linalg.qr(rng.standard_normal((d, d)))[0] for _ in range(m - 1)]
    frames = [vt.T, *qs, uu]  # R^{d_x}, hidden, R^{d_y}
    ws = []
    for k in range(m):
        core = np.zeros((frames[k + 1].shape[0], frames[k].shape[0]))
        core[np.arange(r), np.arange(r)] = diag[k]
        ws.append(frames[k + 1] @ core @ frames[k].T)
    x, y = linear.whitened_data(t, t.shape[1] + 2, seed, noise=0.2)
    report = linear.is_flattest(ws, t, tol=1e-9)
    assert report.theorem4_condition and report.is_flattest
    exact = np.linalg.eigvalsh(autograd_hessian(ws, x, y))[-1]
    assert abs(exact - report.flattest_sharpness) < 1e-9 * exact
    check_theorems_2_and_3(ws, t, tol=1e-8)


def test_random_minimum_is_sharp_and_unbalanced():
    t = np.random.default_rng(0).standard_normal((4, 4))
    ws = linear.random_minimum(t, 6, seed=0)
    report = linear.is_flattest(ws, t)
    assert not report.is_flattest and not report.theorem4_condition and report.relative_gap > 1
    assert np.max(linear.balancedness(ws)) > 1


# ----------------------------------------------------------------------------- training


def test_gradient_descent_identity_init_lemma1():
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    t = q @ np.diag([1.5, 1.0, 0.6]) @ q.T  # positive definite (Lemma 1(ii))
    x, y = linear.whitened_data(t, 20, 0, noise=0.4)
    m = 4
    eta = 1 / (2 * m) * min(1, 1.5 ** (-2 * (1 - 1 / m)))
    run = linear.gradient_descent(linear.identity_init(3, m), x, y, eta, 3000)
    assert not run.diverged and run.losses.shape == (3001,)
    floor = linear.loss(linear.canonical_minimum(t, m), x, y)
    assert run.losses[-1] - floor < 1e-12
    assert relerr(linear.end_to_end(run.weights), t) < 1e-8
    assert linear.is_flattest(run.weights, t, tol=1e-6).is_flattest
    # a gradient step agrees with autograd
    ws = linear.random_minimum(t, 3, seed=2)
    ws[0] = ws[0] + 0.1
    one = linear.gradient_descent(ws, x, y, 1e-3, 1).weights
    p = flat_torch(ws).requires_grad_(True)
    shapes = [w.shape for w in ws]
    out, offset = torch.tensor(x).T, 0
    for rows, cols in shapes:
        out = p[offset : offset + rows * cols].reshape(cols, rows).T @ out
        offset += rows * cols
    torch.mean(torch.sum((torch.tensor(y).T - out) ** 2, dim=0)).backward()
    expected = flat_torch(ws).numpy() - 1e-3 * p.grad.numpy()
    assert relerr(flat_torch(one).numpy(), expected) < 1e-12
    blow = linear.gradient_descent(linear.random_minimum(t, 4, seed=0), x, y, 10.0, 50)
    assert blow.diverged and all(np.all(np.isfinite(w)) for w in blow.weights)


def test_apply_gauge_keeps_product():
    t = np.random.default_rng(1).standard_normal((2, 3))
    ws = linear.canonical_minimum(t, 3, widths=[4, 2])
    gs = [np.eye(4) + 0.3 * np.ones((4, 4)), np.array([[2.0, 1.0], [0.0, 1.0]])]
    assert relerr(linear.end_to_end(linear.apply_gauge(ws, gs)), t) < 1e-12


# ----------------------------------------------------------------------------- bad input


T0 = np.arange(1.0, 7.0).reshape(2, 3)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: linear.canonical_minimum(T0, 0), "m"),
        (lambda: linear.canonical_minimum(T0, 3, widths=[1, 3]), "widths"),
        (lambda: linear.canonical_minimum(T0, 3, widths=[3]), "widths"),
        (lambda: linear.canonical_minimum([[np.inf]], 2), "T"),
        (lambda: linear.end_to_end([np.eye(2), np.eye(3)]), "weights"),
        (lambda: linear.is_flattest(linear.identity_init(2, 2), 2 * np.eye(2)), "weights"),
        (lambda: linear.v_gains(linear.identity_init(2, 2), np.eye(3)), "weights"),
        (lambda: linear.coupling_errors(linear.identity_init(2, 2), np.zeros((2, 2))), "T"),
        (lambda: flattening.flatten(linear.canonical_minimum(T0, 2), T0 + 1), "weights"),
        (lambda: flattening.flatten(linear.canonical_minimum(T0, 2), T0, method="x"), "method"),
        (lambda: linear.sharpness(linear.identity_init(2, 2), np.zeros((2, 2))), "sigma_x"),
        (lambda: linear.sharpness(linear.identity_init(2, 2), np.eye(3)), "sigma_x"),
        (lambda: linear.nu(np.ones((3, 2)), T0, 2), "B"),
        (lambda: linear.optimal_map(np.ones((5, 2)), np.ones((5, 1))), "X"),
        (lambda: linear.optimal_map(np.ones((5, 2)), np.ones((4, 1))), "X and Y"),
        (lambda: linear.whitened_data(T0, 3, 0, noise=1.0), "n"),
        (lambda: linear.max_stable_step(np.zeros((2, 2)), 3), "T"),
        (lambda: linear.gain_bound(T0, 3, 4), "k"),
        (lambda: linear.apply_gauge(linear.identity_init(2, 2), [np.zeros((2, 2))]), "gauges"),
        (lambda: linear.gradient_descent(linear.identity_init(2, 2), T0, T0, -1.0, 2), "eta"),
        (lambda: linear.is_flattest(linear.canonical_minimum(T0, 2), T0, tol=0.0), "tol"),
    ],
)
def test_bad_input_names_argument(call, name):
    with pytest.raises((ValueError, TypeError), match=name):
        call()


def test_bad_weights_type():
    with pytest.raises(TypeError, match="weights"):
        linear.sharpness(np.eye(2))
