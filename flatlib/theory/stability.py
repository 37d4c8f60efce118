"""Linear stability of gradient descent at a minimum (Sec. 2 and App. I).

Near a minimum ``w*`` with Hessian ``H``, gradient descent with step size ``eta`` follows the
linearised dynamics ``w_{k+1} - w* = (I - eta H)(w_k - w*)`` (eq. S1). The minimum is linearly
stable iff every eigenvalue of ``(I - eta H)^2`` is at most one (eq. S2), i.e. iff
``lambda_max(H) <= 2 / eta`` for a positive semi-definite ``H`` (eqs. S3-S4).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from flatlib._validation import as_float, as_float_array, as_int


def _as_hessian(hessian: np.ndarray | Sequence[Sequence[float]] | float) -> np.ndarray:
    arr = as_float_array(hessian, "hessian")
    if arr.ndim == 0:
        arr = arr.reshape(1, 1)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"hessian must be a square matrix, got shape {arr.shape}")
    if not np.allclose(arr, arr.T, rtol=1e-12, atol=1e-12):
        raise ValueError("hessian must be symmetric")
    return arr


def linearized_gd(
    hessian: np.ndarray | float, eta: float, w0: np.ndarray | Sequence[float], steps: int
) -> np.ndarray:
    """Iterates ``w_k - w*`` of the linearised GD dynamics (eq. S1); shape ``(steps + 1, N)``."""
    H = _as_hessian(hessian)
    eta = as_float(eta, "eta", positive=True)
    steps = as_int(steps, "steps", minimum=0)
    w = as_float_array(w0, "w0").reshape(-1)
    if w.shape[0] != H.shape[0]:
        raise ValueError(f"w0 has {w.shape[0]} entries but hessian is {H.shape[0]}x{H.shape[0]}")
    step = np.eye(H.shape[0]) - eta * H
    out = np.empty((steps + 1, w.shape[0]))
    out[0] = w
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(steps):
            out[k + 1] = step @ out[k]
    return out


def is_linearly_stable(hessian: np.ndarray | float, eta: float) -> bool:
    """Whether ``lambda_max((I - eta H)^2) <= 1`` (eq. S2), equivalently eq. (S4) for PSD ``H``."""
    H = _as_hessian(hessian)
    eta = as_float(eta, "eta", positive=True)
    lam = np.linalg.eigvalsh(np.eye(H.shape[0]) - eta * H)
    return bool(np.max(lam**2) <= 1.0 + 1e-12)


def max_stable_step(hessian: np.ndarray | float) -> float:
    """The largest step size for which the minimum is linearly stable, ``2 / lambda_max`` (S4)."""
    H = _as_hessian(hessian)
    lam = float(np.linalg.eigvalsh(H)[-1])
    return np.inf if lam <= 0 else 2.0 / lam


def double_well(w: np.ndarray | float, sharp: float = 20.0, flat: float = 2.0) -> np.ndarray:
    """A 1-D loss with a sharp minimum near ``w = +1`` and a flat one near ``w = -1``.

    ``f(w) = -log(exp(-sharp (w-1)^2 / 2) + exp(-flat (w+1)^2 / 2))``; near each minimum
    ``f`` is a quadratic of curvature about ``sharp`` and ``flat``, so by eq. (S4) a step size
    between ``2/sharp`` and ``2/flat`` can stay only in the flat one.
    """
    w = np.asarray(w, dtype=np.float64)
    a = -sharp * (w - 1.0) ** 2 / 2
    b = -flat * (w + 1.0) ** 2 / 2
    return -np.logaddexp(a, b)


def double_well_grad(w: np.ndarray | float, sharp: float = 20.0, flat: float = 2.0) -> np.ndarray:
    """Derivative of :func:`double_well` (softmax-weighted mix of the two quadratics' slopes)."""
    w = np.asarray(w, dtype=np.float64)
    a = -sharp * (w - 1.0) ** 2 / 2
    b = -flat * (w + 1.0) ** 2 / 2
    p = np.exp(a - np.logaddexp(a, b))
    return p * sharp * (w - 1.0) + (1 - p) * flat * (w + 1.0)


def gd_on_double_well(
    w0: float, eta: float, steps: int = 200, sharp: float = 20.0, flat: float = 2.0
) -> np.ndarray:
    """Gradient-descent iterates on :func:`double_well`; stops early if they leave ``[-10, 10]``."""
    eta = as_float(eta, "eta", positive=True)
    steps = as_int(steps, "steps", minimum=0)
    w = [as_float(w0, "w0")]
    for _ in range(steps):
        nxt = w[-1] - eta * float(double_well_grad(w[-1], sharp, flat))
        w.append(nxt)
        if not abs(nxt) < 10:
            break
    return np.array(w)


def gd_map_power_norm(hessian: np.ndarray, eta: float, doublings: int = 40) -> float:
    """``||(I - eta H)^K||_2`` for ``K = 2**doublings``: the error after ``K`` GD steps (eq. S1).

    Computed by repeated squaring of the one-step GD map, so ``2**40`` steps cost 40 matrix
    products. Overflow is reported as ``inf``.
    """
    H = _as_hessian(hessian)
    step = np.eye(H.shape[0]) - as_float(eta, "eta", positive=True) * H
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(as_int(doublings, "doublings", minimum=0)):
            step = step @ step
            if not np.all(np.isfinite(step)):
                return np.inf
    return float(np.linalg.norm(step, 2))


def measured_threshold(hessian: np.ndarray, tol: float = 1e-9, doublings: int = 40) -> float:
    """The largest step size whose GD iterates on ``0.5 w^T H w`` stay bounded, by bisection.

    An independent check of eq. (S4): it only runs the GD map (``2**doublings`` steps, see
    :func:`gd_map_power_norm`) and asks whether the error blew up, without computing any
    eigenvalue.
    """
    H = _as_hessian(hessian)

    def bounded(eta: float) -> bool:
        return gd_map_power_norm(H, eta, doublings) < 1e3

    lo, hi = 0.0, 1.0
    while bounded(hi):
        lo, hi = hi, 2.0 * hi
    while hi - lo > tol * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if bounded(mid) else (lo, mid)
    return 0.5 * (lo + hi)
