"""flatlib.curvature.gauss_newton: H = G + R for softmax cross-entropy (Sagun et al., Sec. 2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flatlib.curvature.gauss_newton import (
    ggn_decomposition,
    ggn_matrix,
    ggn_rank_bound,
    output_jacobians,
    residual_matrix,
    softmax_hessian,
)
from flatlib.curvature.hessian import HessianOperator, exact_hessian, get_vector, set_vector
from flatlib.nets.classifier import cross_entropy
from flatlib.nets.models import mlp


def _problem(activation="relu", n=7, k=3, seed=1):
    gen = torch.Generator().manual_seed(seed)
    model = mlp([5, 4, 4, k], activation, seed=seed)
    x = torch.randn(n, 5, generator=gen, dtype=torch.float64)
    y = torch.randint(0, k, (n,), generator=gen)
    return model, x, y


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_sum_of_terms_is_the_exact_hessian(activation):
    model, x, y = _problem(activation)
    G, R = ggn_decomposition(model, x, y)
    H = exact_hessian(HessianOperator(model, cross_entropy, x, y))
    np.testing.assert_allclose(G + R, H, atol=1e-12 * np.abs(H).max() + 1e-14)
    assert np.abs(R).max() > 1e-6  # the residual is not trivially zero here


def test_softmax_hessian_against_autograd():
    logits = torch.randn(4, 5, dtype=torch.float64)
    A = softmax_hessian(logits)
    for i in range(4):
        auto = torch.autograd.functional.hessian(
            lambda f, i=i: -torch.log_softmax(f, 0)[2], logits[i]
        )
        torch.testing.assert_close(A[i], auto)
        torch.testing.assert_close(A[i] @ torch.ones(5, dtype=torch.float64),
                                   torch.zeros(5, dtype=torch.float64))  # fmt: skip


def test_jacobians_against_finite_differences():
    model, x, _ = _problem("tanh", n=3)
    J = output_jacobians(model, x)
    theta = get_vector(model)
    eps = 1e-6
    for j in (0, 7, theta.numel() - 1):
        e = torch.zeros_like(theta)
        e[j] = eps
        set_vector(model, theta + e)
        up = model(x).detach()
        set_vector(model, theta - e)
        down = model(x).detach()
        set_vector(model, theta)
        torch.testing.assert_close(J[:, :, j], (up - down) / (2 * eps), rtol=1e-6, atol=1e-8)


def test_ggn_is_psd_with_bounded_rank_and_chunking_is_exact():
    model, x, y = _problem("relu", n=3, k=3)
    G = ggn_matrix(model, x, y)
    lam = np.linalg.eigvalsh(G)
    assert lam.min() > -1e-12 * lam.max()
    bound = ggn_rank_bound(3, 3, G.shape[0])
    assert bound == 6 < G.shape[0]
    assert np.sum(lam > 1e-10 * lam.max()) <= bound
    np.testing.assert_allclose(ggn_matrix(model, x, y, chunk_size=2), G, atol=1e-15)


def test_residual_vanishes_for_a_linear_model():
    """A linear model has zero second derivatives of its outputs: H = G exactly."""
    model = mlp([5, 3], seed=0)
    x = torch.randn(6, 5, dtype=torch.float64)
    y = torch.randint(0, 3, (6,))
    assert np.abs(residual_matrix(model, x, y)).max() < 1e-14
    exact = exact_hessian(HessianOperator(model, cross_entropy, x, y))
    np.testing.assert_allclose(ggn_matrix(model, x, y), exact, atol=1e-14)


def test_bad_inputs():
    model, x, y = _problem()
    with pytest.raises(TypeError, match="labels"):
        ggn_matrix(model, x, y.double())
    with pytest.raises(ValueError, match="samples"):
        residual_matrix(model, x, y[:3])
    with pytest.raises(TypeError, match="x"):
        ggn_matrix(model, x[0], y)
    with pytest.raises(TypeError, match="logits"):
        softmax_hessian(torch.ones(3))
    with pytest.raises(ValueError, match="k"):
        ggn_rank_bound(5, 1, 10)
    with pytest.raises(TypeError, match="model"):
        ggn_matrix("model", x, y)
