"""Layer rescaling (Dinh et al., 2017) against exact autograd Hessians and brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from flatlib.curvature.hessian import HessianOperator, exact_hessian, top_eigenpairs
from flatlib.experiments import edge_of_stability as eos
from flatlib.nets.models import mlp
from flatlib.theory import linear, rescaling

SETTINGS = settings(max_examples=15, deadline=None)


@st.composite
def minimum(draw):
    d = draw(st.integers(1, 3))
    m = draw(st.integers(2, 4))
    seed = draw(st.integers(0, 10_000))
    t = np.random.default_rng(seed).standard_normal((d, d))
    k = draw(st.integers(1, m - 1))
    a = float(np.exp(draw(st.floats(-2.0, 2.0))))
    return t, m, seed, k, a


@SETTINGS
@given(minimum())
def test_rescaled_minimum_against_exact_hessian(case):
    t, m, seed, k, a = case
    x, y = linear.whitened_data(t, n=t.shape[1], seed=seed)
    ws = linear.random_minimum(t, m, seed=seed)
    ws_a = rescaling.rescale(ws, k, a)
    ref = linear.end_to_end(ws)
    assert np.linalg.norm(linear.end_to_end(ws_a) - ref) <= 1e-12 * np.linalg.norm(ref)
    hessian = exact_hessian(
        HessianOperator(
            eos.linear_model(ws_a), eos.sum_squares_loss, torch.tensor(x), torch.tensor(y)
        )
    )
    exact = np.linalg.eigvalsh(hessian)[-1]
    assert rescaling.orbit_sharpness(ws, k, [a])[0] == pytest.approx(exact, rel=1e-8)


@SETTINGS
@given(minimum())
def test_orbit_minimum_balances_shares_and_beats_a_grid(case):
    t, m, seed, k, _ = case
    ws = linear.random_minimum(t, m, seed=seed)
    a_star, s_star = rescaling.orbit_minimum(ws, k)
    grid = np.geomspace(a_star / 50, a_star * 50, 201)
    assert s_star <= rescaling.orbit_sharpness(ws, k, grid).min() * (1 + 1e-9)
    shares = rescaling.curvature_shares(rescaling.rescale(ws, k, a_star))
    assert shares.sum() == pytest.approx(s_star, rel=1e-9)
    assert abs(shares[k - 1] - shares[k]) <= 1e-4 * s_star  # Lemma: equal shares at a*
    # stationarity: d lambda / d log a = 2 (share_{k+1} - share_k), checked by finite differences
    h = 1e-5
    left, right = rescaling.orbit_sharpness(ws, k, [a_star * np.exp(-h), a_star * np.exp(h)])
    shares0 = rescaling.curvature_shares(ws)
    slope = (rescaling.orbit_sharpness(ws, k, [np.exp(h)])[0] - linear.sharpness(ws)) / h
    assert slope == pytest.approx(2 * (shares0[k] - shares0[k - 1]), rel=1e-3, abs=1e-3)
    assert min(left, right) >= s_star * (1 - 1e-8)


def test_flattest_minimum_is_balanced_on_every_orbit():
    t = np.random.default_rng(7).standard_normal((3, 2))
    m = 4
    ws = linear.canonical_minimum(t, m)
    floor = linear.flattest_sharpness(t, m)
    shares = rescaling.curvature_shares(ws)
    assert np.allclose(shares, floor / m, rtol=1e-9)
    for k in range(1, m):
        a_star, s_star = rescaling.orbit_minimum(ws, k)
        assert a_star == pytest.approx(1.0, abs=1e-4)
        assert s_star == pytest.approx(floor, rel=1e-9)
    assert np.allclose(linear.balancedness(ws), 0.0, atol=1e-12)


def test_two_layer_orbit_closed_form():
    ws = linear.random_minimum(np.random.default_rng(1).standard_normal((3, 3)), 2, seed=4)
    s1, s2 = (np.linalg.norm(w, 2) for w in ws)
    scales = np.geomspace(0.1, 10, 9)
    assert np.allclose(
        rescaling.orbit_sharpness(ws, 1, scales), 2 * (scales**2 * s1**2 + s2**2 / scales**2)
    )
    assert rescaling.orbit_minimum(ws, 1)[0] ** 2 == pytest.approx(s2 / s1, rel=1e-6)


def test_relu_rescaling_keeps_function_changes_sharpness():
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal((20, 5)))
    y = torch.tensor(rng.standard_normal((20, 5)))
    net = mlp([5, 6, 6, 5], seed=1)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(
                0.1
                * torch.randn(p.shape, generator=torch.Generator().manual_seed(2), dtype=p.dtype)
            )
    scaled = rescaling.rescale_model(net, 2, 2.7)
    with torch.no_grad():
        assert float((scaled(x) - net(x)).abs().max()) < 1e-12
    assert scaled[2].weight is not net[2].weight  # a copy, the original is untouched
    lam0 = np.linalg.eigvalsh(exact_hessian(HessianOperator(net, eos.sum_squares_loss, x, y)))[-1]
    lam1 = np.linalg.eigvalsh(exact_hessian(HessianOperator(scaled, eos.sum_squares_loss, x, y)))[
        -1
    ]
    assert abs(lam1 - lam0) > 1e-2 * lam0
    lanczos = top_eigenpairs(scaled, eos.sum_squares_loss, x, y, tol=1e-8).sharpness
    assert lanczos == pytest.approx(lam1, rel=1e-8)


def test_bad_inputs():
    ws = linear.canonical_minimum(np.eye(2), 3)
    with pytest.raises(ValueError, match="k"):
        rescaling.rescale(ws, 3, 2.0)
    with pytest.raises(ValueError, match="a"):
        rescaling.rescale(ws, 1, -1.0)
    with pytest.raises(TypeError, match="k"):
        rescaling.rescale(ws, 1.5, 2.0)
    with pytest.raises(ValueError, match="scales"):
        rescaling.orbit_sharpness(ws, 1, [])
    with pytest.raises(TypeError, match="Sequential"):
        rescaling.rescale_model(nn.Linear(2, 2), 1, 2.0)
    tanh_net = mlp([3, 3, 3], activation="tanh")
    with pytest.raises(ValueError, match="Tanh"):
        rescaling.rescale_model(tanh_net, 1, 2.0)
