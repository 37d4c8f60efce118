"""The generalised Gauss-Newton decomposition of a classifier's Hessian (Sagun et al., Sec. 2).

Write the loss of sample ``i`` as a convex function ``l`` of the network's outputs
``f(x_i; w)`` (the ``k`` logits). The chain rule gives, for the mean loss over ``n`` samples,

    H = (1/n) sum_i J_i^T A_i J_i  +  (1/n) sum_i sum_c (dl_i / df_c) nabla^2 f_c(x_i; w),

where ``J_i = d f(x_i) / d w`` is the ``k x N`` Jacobian of the outputs and ``A_i = d^2 l_i /
d f^2`` the Hessian of the loss in output space. The first term ``G`` is the generalised
Gauss-Newton matrix; the second, ``R``, weights the curvature of each output by how wrong
that output still is. For softmax cross-entropy,

    A_i = diag(p_i) - p_i p_i^T,     dl_i / df = p_i - e_{y_i},

with ``p_i`` the softmax probabilities. Two facts follow (Sec. 2.1):

* ``G`` is positive semi-definite and a sum of ``n`` terms of rank at most ``k - 1`` (``A_i
  1 = 0``), so ``rank G <= min(N, n (k - 1))``: when ``N > n (k - 1)``, at least
  ``N - n (k - 1)`` eigenvalues of ``G`` are exactly zero.
* Near the end of training ``p_i`` approaches ``e_{y_i}``, so ``dl/df`` and with it ``R``
  shrink, and ``H`` is close to ``G``: the outliers of ``H`` are those of ``G``.

This module computes both terms exactly and independently for small models: ``G`` from
per-sample output Jacobians (``torch.func.jacrev`` under ``vmap``) and the closed-form softmax
Hessian; ``R`` as the Hessian of ``w -> (1/n) sum_i (dl_i/df)^T f(x_i; w)`` with ``dl/df`` held
fixed. Their sum equals the Hessian of the cross-entropy (tested in the book's test suite).
Parameter order is that of :mod:`flatlib.curvature.hessian` (``model.parameters()``, row-major).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from flatlib._validation import as_int
from flatlib.curvature.hessian import HessianOperator, exact_hessian, trainable_parameters

__all__ = [
    "GGNDecomposition",
    "ggn_decomposition",
    "ggn_matrix",
    "ggn_rank_bound",
    "output_jacobians",
    "residual_matrix",
    "softmax_hessian",
]


class GGNDecomposition(NamedTuple):
    """``H = G + R`` (Sagun et al., Sec. 2): Gauss-Newton term and residual, dense float64."""

    G: np.ndarray
    R: np.ndarray


def _check(model: Any, x: Any, labels: Any) -> tuple[torch.Tensor, torch.Tensor]:
    trainable_parameters(model)
    if not isinstance(x, torch.Tensor) or x.ndim != 2:
        raise TypeError("x must be a 2-D torch.Tensor (samples x features)")
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.long or labels.ndim != 1:
        raise TypeError("labels must be a 1-D torch.long tensor of class indices")
    if labels.shape[0] != x.shape[0]:
        raise ValueError(f"x has {x.shape[0]} samples but labels has {labels.shape[0]}")
    if x.shape[0] == 0:
        raise ValueError("x must hold at least one sample")
    return x, labels


def softmax_hessian(logits: torch.Tensor) -> torch.Tensor:
    """``A = diag(p) - p p^T`` for each row of ``logits`` (``(n, k) -> (n, k, k)``).

    The Hessian of the cross-entropy ``-log softmax(f)_y`` with respect to the logits ``f``;
    it does not depend on the label ``y``. PSD with ``A 1 = 0``, so its rank is at most
    ``k - 1``.
    """
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        raise TypeError("logits must be a 2-D torch.Tensor (samples x classes)")
    p = torch.softmax(logits, dim=1)
    return torch.diag_embed(p) - p[:, :, None] * p[:, None, :]


def output_jacobians(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Per-sample Jacobians ``J_i = d f(x_i) / d w`` of the outputs, shape ``(n, k, N)``.

    Computed with ``torch.func.jacrev`` vectorised over the samples by ``vmap``; columns follow
    the flat parameter order of :func:`flatlib.curvature.hessian.get_vector`.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 2:
        raise TypeError("x must be a 2-D torch.Tensor (samples x features)")
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}

    def f(p: dict[str, torch.Tensor], xi: torch.Tensor) -> torch.Tensor:
        return functional_call(model, p, (xi.unsqueeze(0),)).squeeze(0)

    jac = vmap(jacrev(f), in_dims=(None, 0))(params, x)
    n, k = x.shape[0], jac[names[0]].shape[1]
    return torch.cat([jac[name].reshape(n, k, -1) for name in names], dim=2)


def ggn_matrix(
    model: nn.Module, x: torch.Tensor, labels: torch.Tensor, chunk_size: int = 100
) -> np.ndarray:
    """The Gauss-Newton term ``G = (1/n) sum_i J_i^T A_i J_i`` for softmax CE (Sec. 2, eq. 3).

    Dense ``N x N`` float64; Jacobians are formed ``chunk_size`` samples at a time. ``labels``
    only fix ``n`` and are checked: ``A_i`` does not depend on them.
    """
    x, labels = _check(model, x, labels)
    chunk_size = as_int(chunk_size, "chunk_size", minimum=1)
    n = x.shape[0]
    total = None
    for start in range(0, n, chunk_size):
        xb = x[start : start + chunk_size]
        J = output_jacobians(model, xb)
        with torch.no_grad():
            A = softmax_hessian(model(xb))
            AJ = A @ J
            part = J.reshape(-1, J.shape[2]).T @ AJ.reshape(-1, J.shape[2])
        total = part if total is None else total + part
    G = (total / n).to("cpu", torch.float64).numpy()
    return 0.5 * (G + G.T)


def residual_matrix(model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """The second term ``R = (1/n) sum_i sum_c (dl_i/df_c) nabla^2 f_c(x_i)`` (Sec. 2).

    ``dl_i/df = p_i - e_{y_i}`` is evaluated at the current weights and held fixed; ``R`` is
    then the exact Hessian (:func:`flatlib.curvature.hessian.exact_hessian`) of
    ``w -> (1/n) sum_i (dl_i/df)^T f(x_i; w)``.
    """
    x, labels = _check(model, x, labels)
    with torch.no_grad():
        logits = model(x)
        k = logits.shape[1]
        weights = torch.softmax(logits, dim=1) - nn.functional.one_hot(labels, k).to(logits)

    def weighted_outputs(out: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return (out * w).sum(dim=1).mean()

    return exact_hessian(HessianOperator(model, weighted_outputs, x, weights))


def ggn_decomposition(model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> GGNDecomposition:
    """Both terms of ``H = G + R`` (:func:`ggn_matrix`, :func:`residual_matrix`), Sec. 2."""
    return GGNDecomposition(ggn_matrix(model, x, labels), residual_matrix(model, x, labels))


def ggn_rank_bound(n: int, k: int, num_params: int) -> int:
    """``min(N, n (k - 1))``: the largest possible rank of ``G`` (Sec. 2.1).

    ``n`` samples, ``k`` classes, ``N = num_params`` parameters; each ``J_i^T A_i J_i`` has
    rank at most ``k - 1`` because ``A_i`` annihilates the all-ones vector.
    """
    n = as_int(n, "n", minimum=1)
    k = as_int(k, "k", minimum=2)
    num_params = as_int(num_params, "num_params", minimum=1)
    return min(num_params, n * (k - 1))
