"""Moving along the manifold of global minima to a flattest one (App. IX.1).

Same conventions as :mod:`flatlib.theory.linear` (weights ``[W1, ..., Wm]``, ``Wj`` of shape
``(d_j, d_{j-1})``, assumptions A1 and A2, i.e. ``Sigma_x = I``). Both methods only apply
gauge transformations ``W_i -> G_i^(-1) W_i G_{i-1}`` (``G_0 = G_m = I``), which leave the
end-to-end map ``Wm ... W1 = T`` unchanged, so every iterate stays on ``Omega`` (eq. 4) up to
rounding. They stop once ``lambda_max(H_w)`` is within a relative ``tol`` of the Theorem 1
value ``2m sigma_max(T)^(2(1 - 1/m))`` (eq. 17).

* ``method="walk"``: the paper's greedy random walk (eq. S106). Random ``G_i = I + eps A_i``
  (``A_i`` i.i.d. ``N(0, 1)``) are proposed and accepted only when ``lambda_max`` decreases;
  ``eps`` grows by 20% after an acceptance and halves after ``20`` rejections in a row.
* ``method="gauge"``: Polyak subgradient descent over the gauge group. ``lambda_max`` is not
  smooth where the top eigenvalue is degenerate, which is typical at the optimum, so each step
  follows the gradient ``g`` of the mean ``f`` of the cluster of eigenvalues of ``2 Phi^T Phi``
  that lie above the target (all of which must come down to it), with the Polyak step
  ``(f - target) / ||g||^2`` that the known optimal value (Theorem 1) makes available, halved
  only if ``lambda_max`` would more than double. The gradient of each eigenvalue
  ``lambda_i = 2 sum_k ||B_k^T C_i A_k^T||_F^2`` (eq. 21, ``b_i = vec(C_i)``) is obtained in
  closed form, and the gauge gradient at ``G_i = I + X_i``, ``X = 0`` is
  ``-grad_{W_i} W_i^T + W_{i+1}^T grad_{W_{i+1}}``. It typically needs tens to hundreds of
  steps; when ``T`` has a repeated top singular value the optimum is highly degenerate and
  convergence can be much slower (check ``converged``).

Default tolerances (relative gap to the Theorem 1 value): ``1e-2`` for the walk, which stalls
near the non-smooth optimum (the paper stops it "up to a minor error"), ``1e-8`` for the gauge
method.

Chapters 6-7 sample flattest minima the paper's way, :func:`s105_start` walked by
:func:`walk_to_flattest`, or pair a random minimum with its gauge-flattened image
(:func:`gains_pair`); :func:`compare_flatteners` times both methods.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from flatlib._validation import as_float, as_int, as_weights
from flatlib.theory import linear

__all__ = [
    "FlattenResult",
    "FlattenerRun",
    "SLIDER_TOL",
    "compare_flatteners",
    "flatten",
    "gains_pair",
    "s105_start",
    "walk_to_flattest",
]

METHODS = ("walk", "gauge")
DEFAULT_TOL = {"walk": 1e-2, "gauge": 1e-8}


@dataclass(frozen=True)
class FlattenResult:
    """Outcome of :func:`flatten`.

    ``weights``: the final minimum; ``history``: ``lambda_max`` at the start and after each
    accepted step; ``n_iterations``: proposals evaluated (walk) or gradient steps (gauge);
    ``converged``: whether the relative gap to the Theorem 1 value reached ``tol``.
    """

    weights: list[np.ndarray]
    history: np.ndarray
    n_iterations: int
    converged: bool
    method: str


def _spectrum(ws: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, list, list]:
    a, b = linear.layer_blocks(ws, None)
    evals, evecs = np.linalg.eigh(linear.phi_gram(a, b))
    return evals, evecs, a, b


def _lambda_max(ws: list[np.ndarray]) -> float:
    a, b = linear.layer_blocks(ws, None)
    return float(np.linalg.eigvalsh(linear.phi_gram(a, b))[-1])


def _eigen_gradient(ws: list[np.ndarray], a: list, b: list, c: np.ndarray) -> list[np.ndarray]:
    """Gradient w.r.t. each ``W_j`` of ``lambda(c) = 2 sum_k ||B_k^T C A_k^T||_F^2``.

    ``M_k = B_k^T C A_k^T`` is the gradient of ``h(W) = <C, Wm...W1>``, so the gradient of
    ``2 ||grad h||^2`` is ``4 Hess(h)[M]``, whose ``j``-th block is
    ``dB_j^T C A_j^T + B_j^T C dA_j^T`` with ``dA``, ``dB`` the directional derivatives of the
    partial products along ``M`` (forward and backward recursions).
    """
    m = len(ws)
    cm = c.reshape(b[0].shape[0], a[0].shape[1], order="F")
    mk = [bk.T @ cm @ ak.T for ak, bk in zip(a, b, strict=True)]
    da = [np.zeros_like(a[0])]
    for j in range(m - 1):
        da.append(mk[j] @ a[j] + ws[j] @ da[j])
    db = [np.zeros_like(b[-1])]
    for j in range(m - 1, 0, -1):
        db.append(db[-1] @ ws[j] + b[j] @ mk[j])
    db = db[::-1]
    return [4.0 * (db[j].T @ cm @ a[j].T + b[j].T @ cm @ da[j].T) for j in range(m)]


def _gauge_step(ws: list[np.ndarray], xs: list[np.ndarray]) -> list[np.ndarray] | None:
    """``W_i -> (I + X_i)^(-1) W_i (I + X_{i-1})``; ``None`` if some ``I + X_i`` is singular."""
    gs = [np.eye(x.shape[0]) + x for x in xs]
    if any(np.linalg.cond(g) > 1e8 for g in gs):
        return None
    return linear.gauge_checked(ws, gs)


def _walk(ws, target, tol, max_iter, rng):
    eps = 0.1
    lam = _lambda_max(ws)
    history = [lam]
    rejections = 0
    iterations = 0
    while lam - target > tol * target and iterations < max_iter:
        iterations += 1
        gs = [np.eye(w.shape[0]) + eps * rng.standard_normal((w.shape[0],) * 2) for w in ws[:-1]]
        new = linear.gauge_checked(ws, gs)
        new_lam = _lambda_max(new)
        if new_lam < lam:
            ws, lam = new, new_lam
            history.append(lam)
            rejections = 0
            eps *= 1.2
        else:
            rejections += 1
            if rejections % 20 == 0:
                eps *= 0.5
    return ws, history, iterations


def _descend(ws, target, tol, max_iter):
    evals, evecs, a, b = _spectrum(ws)
    history = [float(evals[-1])]
    iterations = 0
    while evals[-1] - target > tol * target and iterations < max_iter:
        iterations += 1
        cluster = np.flatnonzero(evals >= target)
        weight = 1.0 / cluster.size
        grads = [np.zeros_like(w) for w in ws]
        for i in cluster:
            for g, gi in zip(grads, _eigen_gradient(ws, a, b, evecs[:, i]), strict=True):
                g += weight * gi
        gauge = [-grads[i] @ ws[i].T + ws[i + 1].T @ grads[i + 1] for i in range(len(ws) - 1)]
        slope = sum(float(np.sum(g * g)) for g in gauge)
        excess = float(np.mean(evals[cluster])) - target
        if slope == 0.0:
            break
        step = excess / slope
        for _ in range(60):
            new = _gauge_step(ws, [-step * g for g in gauge])
            if new is not None:
                new_evals, new_evecs, new_a, new_b = _spectrum(new)
                if new_evals[-1] < 2.0 * evals[-1]:
                    break
            step *= 0.5
        else:
            break
        ws, evals, evecs, a, b = new, new_evals, new_evecs, new_a, new_b
        history.append(float(evals[-1]))
    return ws, history, iterations


def flatten(
    weights: Any,
    T: Any,
    method: Literal["walk", "gauge"] = "walk",
    seed: int | None = 0,
    tol: float | None = None,
    max_iter: int = 100_000,
) -> FlattenResult:
    """Walk from the global minimum ``weights`` along ``Omega`` to a flattest minimum (App. IX.1).

    ``method="walk"`` is the greedy random walk of eq. (S106); ``method="gauge"`` is smoothed
    gradient descent over the gauge group (see the module docstring). The run stops when
    ``(lambda_max - target) <= tol * target`` with ``target`` the Theorem 1 value (eq. 17), or
    after ``max_iter`` iterations; ``tol=None`` takes the method's default (module docstring).
    ``seed`` drives the random walk (the gauge method is
    deterministic). Assumes A1 and A2.
    """
    ws = as_weights(weights)
    t = linear.as_target_matrix(T)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    tol = DEFAULT_TOL[method] if tol is None else as_float(tol, "tol", positive=True)
    max_iter = as_int(max_iter, "max_iter", minimum=0)
    linear.require_minimum(ws, t)
    linear.top_singular(t)
    target = linear.flattest_sharpness(t, len(ws))
    if method == "walk":
        out, history, iterations = _walk(ws, target, tol, max_iter, np.random.default_rng(seed))
    else:
        out, history, iterations = _descend(ws, target, tol, max_iter)
    return FlattenResult(
        weights=out,
        history=np.array(history),
        n_iterations=iterations,
        converged=bool(history[-1] - target <= tol * target),
        method=method,
    )


# --------------------------------------------- chapters 6-7: sampling and comparing flattest minima


SLIDER_TOL = 1e-6
"""Relative gap to the Theorem 1 value at which the slider frames stop gauge descent."""


def s105_start(T: Any, m: int, seed: int = 0) -> list[np.ndarray]:
    """Starting point of the paper's flattening walk, eq. (S105) (App. IX.1).

    Draws ``A_1..A_m`` (``d x d``, i.i.d. ``N(0, 1)``) and a layer ``j`` uniform in ``1..m``,
    sets ``W_i = A_i`` for ``i != j`` and
    ``W_j = (A_m ... A_{j+1})^(-1) T (A_{j-1} ... A_1)^(-1)``, so that ``Wm ... W1 = T``.
    ``T`` must be square and invertible (all layers have its size).
    """
    t = linear.as_target_matrix(T)
    m = as_int(m, "m", minimum=1)
    d = t.shape[0]
    if t.shape != (d, d):
        raise ValueError(f"T must be square for eq. (S105), got shape {t.shape}")
    if np.linalg.cond(t) > 1e12:
        raise ValueError("T must be invertible for eq. (S105)")
    rng = np.random.default_rng(seed)
    ws = [rng.standard_normal((d, d)) for _ in range(m)]
    j = int(rng.integers(m))
    above = linear.end_to_end(ws[j + 1 :]) if j + 1 < m else np.eye(d)
    below = linear.end_to_end(ws[:j]) if j > 0 else np.eye(d)
    ws[j] = np.linalg.solve(above, t) @ np.linalg.inv(below)
    return ws


def walk_to_flattest(
    T: Any, m: int, seeds: Sequence[int] = (0, 1, 2, 3), max_iter: int = 4000
) -> list[FlattenResult]:
    """Flattest minima the way App. IX.1 samples them: eq. (S105) starts, eq. (S106) walk.

    For each seed runs ``flatten(s105_start(T, m, seed), T, method="walk", seed=seed,
    max_iter=max_iter)``; the walk stops 1% above the Theorem 1 value (eq. 17), its default
    tolerance, or after ``max_iter`` proposals (check ``converged``).
    """
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or not seeds:
        raise ValueError("seeds must be a non-empty sequence of ints")
    return [
        flatten(s105_start(T, m, seed), T, method="walk", seed=seed, max_iter=max_iter)
        for seed in seeds
    ]


def gains_pair(T: Any, m: int, seed: int, tol: float = SLIDER_TOL) -> tuple[list, FlattenResult]:
    """A random minimum ``random_minimum(T, m, seed)`` (eq. S104) and the flattest minimum that
    ``flatten(..., method="gauge", tol=tol)`` reaches from it (eq. 17 up to ``tol``)."""
    start = linear.random_minimum(T, m, seed=seed)
    return start, flatten(start, T, method="gauge", tol=tol)


@dataclass(frozen=True)
class FlattenerRun:
    """One run of :func:`compare_flatteners`: the :class:`flatlib.theory.flattening.FlattenResult`,
    the wall-clock ``seconds`` it took and the Theorem 1 ``target`` (eq. 17)."""

    result: FlattenResult
    seconds: float
    target: float


def compare_flatteners(weights: Any, T: Any, seed: int = 0) -> dict[str, FlattenerRun]:
    """Run ``flatten(weights, T, method=...)`` for ``"walk"`` (eq. S106) and ``"gauge"``.

    Each method uses its default tolerance; the result maps the method to a
    :class:`FlattenerRun` with its wall-clock time (which depends on the machine).
    """
    target = linear.flattest_sharpness(T, len(as_weights(weights)))
    out = {}
    for method in ("walk", "gauge"):
        start = time.perf_counter()
        result = flatten(weights, T, method=method, seed=seed)
        out[method] = FlattenerRun(result, time.perf_counter() - start, target)
    return out
