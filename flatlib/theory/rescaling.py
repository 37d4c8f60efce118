"""Layer rescaling: the same function, a different sharpness (Dinh et al., 2017).

For a ReLU or linear network and any ``a > 0``, multiplying layer ``k`` (its weights and
bias) by ``a`` and the weights of layer ``k + 1`` by ``1 / a`` leaves the network's function
unchanged, because ``relu(a z) = a relu(z)``. Dinh et al. (2017) used this to show that
sharpness alone cannot decide generalisation: the sharpness of a minimum can be made as large
as one likes without changing what the network computes.

In a deep linear network at a global minimum (Lemma 3 of Mulayoff & Michaeli), the rescaling
acts on the Hessian ``2 Phi Phi^T`` (eq. 15) in a simple way. In the small matrix
``2 Phi^T Phi = 2 sum_j (A_j^T A_j) kron (B_j B_j^T)`` of eq. (20), term ``k`` is multiplied
by ``1 / a^2``, term ``k + 1`` by ``a^2``, and all others are unchanged. Hence along the
orbit

* the sharpness is a convex function of ``log a`` that grows without bound at both ends
  (unless a term vanishes);
* its minimum is where layers ``k`` and ``k + 1`` carry equal *shares*
  ``2 ||Phi_j c||^2`` of the top curvature (``c`` the top eigenvector of ``2 Phi^T Phi``),
  by the derivative ``d lambda / d log a = 2 (share_{k+1} - share_k)``;
* at a flattest minimum all ``m`` shares are equal (equality in Lemma 4), so every
  rescaling orbit through it is flattest at ``a = 1``: the flattest point of an orbit is
  the *balanced* one. For two layers the shares are ``2 sigma_max(W_1)^2`` and
  ``2 sigma_max(W_2)^2``, so balance means equal spectral norms (compare
  :func:`flatlib.theory.linear.balancedness`, eq. S5).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from torch import nn

from flatlib._validation import as_float, as_int, as_weights

__all__ = [
    "HOMOGENEOUS",
    "curvature_shares",
    "orbit_minimum",
    "orbit_sharpness",
    "rescale",
    "rescale_model",
]

HOMOGENEOUS: tuple[type[nn.Module], ...] = (nn.ReLU, nn.Identity, nn.LeakyReLU)
"""Activations ``g`` with ``g(a z) = a g(z)`` for ``a > 0``, between which rescaling is exact."""


def _layer_and_scale(k: Any, a: Any, m: int) -> tuple[int, float]:
    k = as_int(k, "k", minimum=1)
    if k > m - 1:
        raise ValueError(f"k must be between 1 and m - 1 = {m - 1}, got {k}")
    return k, as_float(a, "a", positive=True)


def rescale(weights: Any, k: int, a: float) -> list[np.ndarray]:
    """``W_k -> a W_k`` and ``W_{k+1} -> W_{k+1} / a`` (layers numbered ``1..m``, eq. 1).

    The end-to-end map ``Wm ... W1`` is unchanged (Dinh et al., 2017); ``a`` must be positive
    and ``1 <= k <= m - 1``.
    """
    ws = [w.copy() for w in as_weights(weights)]
    k, a = _layer_and_scale(k, a, len(ws))
    ws[k - 1] = a * ws[k - 1]
    ws[k] = ws[k] / a
    return ws


def rescale_model(model: nn.Module, k: int, a: float) -> nn.Module:
    """A copy of ``model`` with ``Linear`` layer ``k`` (weight and bias) times ``a`` and
    ``Linear`` layer ``k + 1``'s weight times ``1 / a``.

    The function is unchanged when every module between the two layers is positively
    homogeneous (:data:`HOMOGENEOUS`, e.g. the ReLU networks of :func:`flatlib.nets.models.mlp`);
    otherwise ``ValueError``. Layers are the model's ``nn.Linear`` modules in order, ``1..m``.
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be a torch.nn.Sequential, got {type(model).__name__}")
    positions = [i for i, mod in enumerate(model) if isinstance(mod, nn.Linear)]
    k, a = _layer_and_scale(k, a, len(positions))
    first, second = positions[k - 1], positions[k]
    for mod in list(model)[first + 1 : second]:
        if not isinstance(mod, HOMOGENEOUS):
            raise ValueError(
                f"model has a {type(mod).__name__} between Linear layers {k} and {k + 1}: "
                "rescaling preserves the function only through positively homogeneous "
                "activations (ReLU, LeakyReLU, Identity)"
            )
    out = copy.deepcopy(model)
    with torch.no_grad():
        out[first].weight.mul_(a)
        if out[first].bias is not None:
            out[first].bias.mul_(a)
        out[second].weight.div_(a)
    return out


def orbit_sharpness(
    weights: Any, k: int, scales: Sequence[float], sigma_x: Any = None
) -> np.ndarray:
    """Sharpness (eq. 20) of the global minimum ``rescale(weights, k, a)`` for each ``a``.

    ``weights`` must be a global minimum (see :func:`flatlib.theory.linear.sharpness`).
    """
    from flatlib.theory import linear

    ws = as_weights(weights)
    values = np.asarray(scales, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("scales must not be empty")
    return np.array([linear.sharpness(rescale(ws, k, a), sigma_x) for a in values])


def orbit_minimum(
    weights: Any, k: int, sigma_x: Any = None, log_range: float = 10.0
) -> tuple[float, float]:
    """``(a*, sharpness at a*)``: the flattest point of the rescaling orbit of layers ``k, k+1``.

    Minimises the sharpness over ``log a`` in ``[-log_range, log_range]`` (bounded Brent;
    the function is convex in ``log a``, see the module docstring).
    """
    from flatlib.theory import linear

    ws = as_weights(weights)
    _layer_and_scale(k, 1.0, len(ws))
    log_range = as_float(log_range, "log_range", positive=True)
    res = minimize_scalar(
        lambda s: linear.sharpness(rescale(ws, k, float(np.exp(s))), sigma_x),
        bounds=(-log_range, log_range),
        method="bounded",
        options={"xatol": 1e-10},
    )
    return float(np.exp(res.x)), float(res.fun)


def curvature_shares(weights: Any, sigma_x: Any = None) -> np.ndarray:
    """Share ``2 ||Phi_j c||^2`` of each layer ``j`` in the top curvature (eqs. 16, 20).

    ``c`` is the unit top eigenvector of ``2 Phi^T Phi``; the shares sum to the sharpness.
    Along a rescaling orbit the sharpness is stationary exactly where the shares of layers
    ``k`` and ``k + 1`` are equal; at a flattest minimum all shares equal
    ``2 sigma_max(T)^(2(1 - 1/m))`` (Theorem 1, equality in Lemma 4).
    """
    from flatlib.theory import linear

    ws = as_weights(weights)
    p = linear.phi(ws, sigma_x)
    small = 2.0 * p.T @ p
    c = np.linalg.eigh(small)[1][:, -1]
    rows = np.cumsum([0] + [w.size for w in ws])
    pc = p @ c
    pieces = np.split(pc, rows[1:-1])
    return np.array([2.0 * float(piece @ piece) for piece in pieces])
