"""Scalar networks (Sec. 3, App. III) against exact autograd Hessians of the empirical loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flatlib.theory import scalar

SETTINGS = settings(max_examples=25, deadline=None)


def scalar_data(tau: float, sigma_x2: float, n: int = 7, seed: int = 0):
    """x, y with mean(x^2) = sigma_x2, mean(x y) = sigma_x2 tau and a residual orthogonal to x."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    x *= np.sqrt(sigma_x2 * n) / np.linalg.norm(x)
    e = rng.standard_normal(n)
    e -= x * (x @ e) / (x @ x)
    return x, tau * x + 0.7 * e


def autograd_hessian(w: np.ndarray, tau: float, sigma_x2: float) -> np.ndarray:
    x, y = (torch.tensor(a) for a in scalar_data(tau, sigma_x2))

    def empirical_loss(p: torch.Tensor) -> torch.Tensor:
        return torch.mean((y - torch.prod(p) * x) ** 2)

    return torch.func.hessian(empirical_loss)(torch.tensor(w)).numpy()


@st.composite
def minimum(draw, max_m: int = 5):
    """A random point of Omega: m, tau, sigma_x2 and w with prod(w) = tau."""
    m = draw(st.integers(1, max_m))
    free = draw(st.lists(st.floats(0.3, 2.5), min_size=m - 1, max_size=m - 1))
    signs = draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=m, max_size=m))
    tau = draw(st.floats(0.2, 3.0)) * draw(st.sampled_from([-1.0, 1.0]))
    last = tau / (np.prod(free) if free else 1.0)
    w = np.array([*free, abs(last)]) * np.array(signs)
    w[-1] *= np.sign(tau) * np.sign(np.prod(w))
    sigma_x2 = draw(st.floats(0.3, 3.0))
    return w, tau, sigma_x2


def relerr(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(b))


@SETTINGS
@given(minimum())
def test_hessian_eq9_matches_autograd(point):
    w, tau, s2 = point
    exact = autograd_hessian(w, tau, s2)
    assert relerr(scalar.hessian(w, tau, s2), exact) < 1e-9
    z = 1.0 / w
    assert relerr(2 * s2 * tau**2 * np.outer(z, z), exact) < 1e-9


@SETTINGS
@given(minimum())
def test_eigendecomposition_eq10(point):
    w, tau, s2 = point
    evals, evecs = np.linalg.eigh(autograd_hessian(w, tau, s2))
    lam = scalar.sharpness(w, tau, s2)
    assert abs(evals[-1] - lam) < 1e-9 * lam
    assert np.all(np.abs(evals[:-1]) < 1e-9 * lam)  # rank one
    z = 1.0 / w
    assert abs(abs(evecs[:, -1] @ z) / np.linalg.norm(z) - 1) < 1e-9
    assert abs(lam - 2 * s2 * tau**2 * np.sum(z**2)) < 1e-9 * lam


@SETTINGS
@given(minimum())
def test_flattest_bound_eq13(point):
    w, tau, s2 = point
    m = w.size
    best = scalar.flattest_sharpness(tau, m, s2)
    assert abs(best - 2 * m * s2 * abs(tau) ** (2 - 2 / m)) < 1e-12 * best
    assert scalar.sharpness(w, tau, s2) >= best * (1 - 1e-12)


@pytest.mark.parametrize("m", [1, 2, 3, 5])
@pytest.mark.parametrize("tau", [1.7, -0.4])
def test_flattest_minima_eq12(m, tau):
    pts = scalar.flattest_minima(tau, m)
    assert pts.shape == (2 ** (m - 1), m)
    assert len({tuple(np.sign(p)) for p in pts}) == 2 ** (m - 1)
    best = scalar.flattest_sharpness(tau, m, 1.3)
    for p in pts:
        assert abs(np.prod(p) - tau) < 1e-12
        assert abs(scalar.sharpness(p, tau, 1.3) - best) < 1e-12 * best
        exact = np.linalg.eigvalsh(autograd_hessian(p, tau, 1.3))[-1]
        assert abs(exact - best) < 1e-9 * best


def second_derivative_along(w, direction, tau, s2) -> float:
    x, y = (torch.tensor(a) for a in scalar_data(tau, s2))
    w0, d = torch.tensor(w), torch.tensor(direction)

    def along(t: torch.Tensor) -> torch.Tensor:
        return torch.mean((y - torch.prod(w0 + t * d) * x) ** 2)

    return float(torch.func.hessian(along)(torch.tensor(0.0, dtype=torch.float64)))


@SETTINGS
@given(st.integers(2, 5), st.floats(0.3, 3.0), st.integers(0, 10_000))
def test_claim_s1_and_deceptive_partner(m, tau, seed):
    rng = np.random.default_rng(seed)
    w1 = scalar.flattest_minima(tau, m)[0]
    w2 = np.exp(rng.normal(0, 0.6, m))
    w2 *= (tau / np.prod(w2)) ** (1 / m)
    if rng.random() < 0.5:  # also use a non-flattest w1 (Claim S1 holds for any pair)
        w1 = np.exp(rng.normal(0, 0.4, m))
        w1 *= (tau / np.prod(w1)) ** (1 / m)
    c1, c2 = scalar.interpolation_curvatures(w1, w2, tau, 1.0)
    alpha = (w1 - w2) / np.linalg.norm(w1 - w2)
    assert abs(c1 - second_derivative_along(w1, alpha, tau, 1.0)) < 1e-9 * max(c1, 1e-3)
    assert abs(c2 - second_derivative_along(w2, alpha, tau, 1.0)) < 1e-9 * max(c2, 1e-3)
    if abs(c1 - c2) > 1e-9 * (c1 + c2):
        assert scalar.looks_sharper(w1, w2) == (c1 > c2)
    w3 = scalar.deceptive_partner(w1, w2)
    assert abs(np.prod(w3) - tau) < 1e-10 * tau
    margin = np.sum(w1 / w2) - np.sum(w2 / w1)  # > 0: w2 looks sharper (eq. S30)
    if margin > 1e-9 * m:
        assert scalar.looks_sharper(w2, w1)
        assert scalar.looks_sharper(w1, w3)
        d1, d3 = scalar.interpolation_curvatures(w1, w3, tau)
        assert d1 > d3


def test_two_layers_always_look_equally_sharp_eq_s32():
    w1 = scalar.flattest_minima(2.0, 2)[0]
    c1, c2 = scalar.interpolation_curvatures(w1, [5.0, 0.4], 2.0)
    assert abs(c1 - c2) < 1e-12 * c1


def test_loss_and_gradient_vectorised():
    grid = np.stack(np.meshgrid(np.linspace(-2, 2, 5), np.linspace(-2, 2, 4)), axis=-1)
    values = scalar.loss(grid, 1.5, 2.0)
    assert values.shape == (4, 5)
    assert np.allclose(values, 2.0 * (grid[..., 0] * grid[..., 1] - 1.5) ** 2)
    w = np.array([0.7, -1.3, 2.0])
    x, y = (torch.tensor(a) for a in scalar_data(0.9, 1.4))
    p = torch.tensor(w, requires_grad=True)
    torch.mean((y - torch.prod(p) * x) ** 2).backward()
    assert relerr(scalar.gradient(w, 0.9, 1.4), p.grad.numpy()) < 1e-12
    assert scalar.gradient(np.zeros(3), 1.0)[0] == 0.0


def test_gradient_descent_converges_and_diverges():
    run = scalar.gradient_descent([0.3, 3.0], 1.0, eta=0.05, steps=2000)
    assert not run.diverged and run.trajectory.shape == (2001, 2)
    final = run.trajectory[-1]
    assert abs(np.prod(final) - 1.0) < 1e-8
    # GD cannot stay at a minimum sharper than 2 / eta (eq. S4)
    assert scalar.sharpness(final, float(np.prod(final))) <= 2 / 0.05 + 1e-6
    heavy = scalar.gradient_descent([0.3, 3.0], 1.0, eta=0.02, steps=3000, momentum=0.5)
    assert not heavy.diverged and heavy.losses[-1] < 1e-12
    blow = scalar.gradient_descent([3.0, 3.0, 3.0], 1.0, eta=1.0, steps=100)
    assert blow.diverged and len(blow.trajectory) < 101
    assert np.all(np.isfinite(blow.trajectory))


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: scalar.hessian([1.0, 2.0], 3.0), "w"),
        (lambda: scalar.sharpness([1.0, np.nan], 3.0), "w"),
        (lambda: scalar.hessian([1.0, 2.0], 2.0, sigma_x2=0.0), "sigma_x2"),
        (lambda: scalar.flattest_minima(0.0, 3), "tau"),
        (lambda: scalar.flattest_minima(1.0, 0), "m"),
        (lambda: scalar.interpolation_curvatures([1.0, 2.0], [1.0, 2.0], 2.0), "w1"),
        (lambda: scalar.looks_sharper([1.0, 2.0], [-1.0, -2.0]), "w2"),
        (lambda: scalar.deceptive_partner([1.0, 2.0], [1.0, 3.0]), "w1"),
        (lambda: scalar.gradient_descent([1.0], 1.0, eta=-1.0, steps=3), "eta"),
        (lambda: scalar.gradient_descent([1.0], 1.0, eta=0.1, steps=3, momentum=1.0), "momentum"),
    ],
)
def test_bad_input_names_argument(call, name):
    with pytest.raises((ValueError, TypeError), match=name):
        call()


def test_bad_type():
    with pytest.raises(TypeError, match="tau"):
        scalar.loss([1.0], "a")
