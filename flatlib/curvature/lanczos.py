"""Matrix-free symmetric eigensolvers on torch vectors: Lanczos, block power iteration, SLQ.

These work on any ``matvec: torch.Tensor (N,) -> torch.Tensor (N,)`` for a symmetric
operator, in the vector's dtype and on its device. :mod:`flatlib.curvature.hessian` wraps them
around Hessian-vector products.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse.linalg
import torch

MatVec = Callable[[torch.Tensor], torch.Tensor]

NEIGHBOUR_RTOL = 0.1
"""A Ritz value's residual must be below this fraction of its distance to another one before
:func:`eigenvalue_bounds` uses that distance as the spectral gap."""


@dataclass
class RitzPairs:
    """Ritz pairs found by a solver, with ``H v`` of each and the count of matvecs used.

    ``others`` holds the solver's remaining Ritz values with their residual norms (estimates
    ``|beta_j s_{j,i}|`` for Lanczos), the neighbours from which :func:`eigenvalue_bounds`
    estimates the spectral gap.
    """

    values: np.ndarray  # (k,) in the order the caller wants
    vectors: torch.Tensor  # (k, N)
    hvectors: torch.Tensor  # (k, N): H applied to each vector (from real matvecs)
    num_matvecs: int
    others: tuple[np.ndarray, np.ndarray] = (np.zeros(0), np.zeros(0))


def eigenvalue_bounds(
    values: np.ndarray,
    residuals: np.ndarray,
    other_values: np.ndarray | None = None,
    other_residuals: np.ndarray | None = None,
    floor: float = 0.0,
) -> np.ndarray:
    """A-posteriori bounds on ``|lambda_i - theta_i|`` for Ritz values ``theta_i = values[i]``.

    For a unit vector with Rayleigh quotient ``theta`` and residual ``r = ||H v - theta v||``
    some eigenvalue lies within ``r`` of ``theta``, and within ``r**2 / delta`` when no other
    eigenvalue lies within ``delta`` of ``theta`` (Kato-Temple; Parlett, *The Symmetric
    Eigenvalue Problem*, Sec. 11.7). The gap ``delta`` is estimated from the nearest other
    Ritz value ``theta_j`` (among the wanted ones and ``other_values``) as
    ``|theta_i - theta_j| - r_i - r_j``, and only when that neighbour has itself settled,
    ``r_j <= NEIGHBOUR_RTOL * |theta_i - theta_j|``: an unsettled neighbour means the
    spectrum between the two is not explored yet (a Krylov space of two or three vectors,
    e.g. after a warm start), and then no gap is known. Returns ``min(r, r**2 / delta)``,
    the plain residual bound ``r`` where no gap is known or ``delta <= r``, and never less
    than ``floor`` (the rounding error of the computed Rayleigh quotients, see
    :func:`rounding_floor`).
    """
    theta = np.asarray(values, dtype=np.float64)
    res = np.abs(np.asarray(residuals, dtype=np.float64))
    ov = np.zeros(0) if other_values is None else np.asarray(other_values, dtype=np.float64)
    orr = np.zeros(0) if other_residuals is None else np.abs(np.asarray(other_residuals, float))
    all_theta = np.concatenate([theta, ov])
    all_res = np.concatenate([res, orr])
    bounds = res.copy()
    for i in range(theta.size):
        dist = np.abs(all_theta - theta[i])
        dist[i] = np.inf
        if dist.size < 2:
            continue
        j = int(np.argmin(dist))
        if all_res[j] > NEIGHBOUR_RTOL * dist[j]:
            continue
        delta = dist[j] - all_res[j] - res[i]
        if delta > res[i]:
            bounds[i] = min(res[i], res[i] ** 2 / delta)
    return np.maximum(bounds, float(floor))


def rounding_floor(values: np.ndarray, dtype: torch.dtype) -> float:
    """``64 eps max|theta|``: below this, a Ritz value's error is rounding, not convergence.

    A Rayleigh quotient computed from matvecs in ``dtype`` carries a relative error of a few
    ``eps`` (more for long sums), so no bound may claim less.
    """
    scale = float(np.max(np.abs(values))) if np.size(values) else 0.0
    return 64.0 * float(torch.finfo(dtype).eps) * scale


def _wanted(theta: np.ndarray, k: int, which: str) -> np.ndarray:
    """Indices of the k wanted Ritz values (theta ascending)."""
    k = min(k, theta.size)
    return np.arange(theta.size - k, theta.size) if which == "largest" else np.arange(k)


def _tridiag_eig(alphas: list[float], betas: list[float]) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(alphas, dtype=np.float64)
    if a.size == 1:
        return a.copy(), np.ones((1, 1))
    b = np.asarray(betas[: a.size - 1], dtype=np.float64)
    return scipy.linalg.eigh_tridiagonal(a, b)


def lanczos(
    matvec: MatVec,
    v0: torch.Tensor,
    k: int,
    which: str,
    tol: float,
    atol: float,
    max_basis: int,
    generator: torch.Generator | None = None,
) -> tuple[RitzPairs, bool]:
    """Lanczos with full reorthogonalisation and no restart, up to ``max_basis`` steps.

    After every step the Ritz estimates ``r_i = |beta_j s_{j,i}|`` of all Ritz pairs give the
    eigenvalue error bounds of :func:`eigenvalue_bounds` (``r**2 / gap``, or ``r``) for the
    ``k`` wanted ones; the iteration stops as soon as every bound is at most
    ``tol * |theta_i| + atol``, so ``tol`` is a relative accuracy of the eigenvalues.
    ``H`` applied to every basis vector is kept, so ``H y`` for a Ritz vector ``y`` comes
    from real matvecs (no extra ones) and the caller can check true residuals.
    Returns the wanted pairs and whether the Ritz estimates converged.
    """
    n = v0.numel()
    m_max = max(1, min(max_basis, n))
    dtype, device = v0.dtype, v0.device
    Q = torch.empty((m_max, n), dtype=dtype, device=device)
    HQ = torch.empty((m_max, n), dtype=dtype, device=device)
    alphas: list[float] = []
    betas: list[float] = []
    q = v0 / torch.linalg.vector_norm(v0)
    beta_prev = 0.0
    converged = False
    theta, S = np.zeros(0), np.zeros((0, 0))
    scale = 0.0
    for j in range(m_max):
        Q[j] = q
        w = matvec(q)
        HQ[j] = w
        alpha = float(torch.dot(q, w))
        w = w - alpha * q
        if j > 0:
            w = w - beta_prev * Q[j - 1]
        basis = Q[: j + 1]
        for _ in range(2):  # classical Gram-Schmidt twice: orthogonal to working precision
            w = w - basis.T @ (basis @ w)
        beta = float(torch.linalg.vector_norm(w))
        alphas.append(alpha)
        theta, S = _tridiag_eig(alphas, betas)
        scale = max(scale, float(np.max(np.abs(theta))))
        if j + 1 >= min(k, n):
            idx = _wanted(theta, k, which)
            est = np.abs(beta * S[-1])
            rest = np.setdiff1d(np.arange(theta.size), idx)
            bound = eigenvalue_bounds(theta[idx], est[idx], theta[rest], est[rest])
            if np.all(bound <= tol * np.abs(theta[idx]) + atol):
                converged = True
                break
        if j + 1 == m_max:
            break
        eps = float(torch.finfo(dtype).eps)
        if beta <= 100 * eps * max(scale, 1e-300):
            # invariant subspace found: continue with a fresh random direction
            r = torch.randn(n, generator=generator, dtype=torch.float64).to(dtype=dtype)
            r = r.to(device)
            for _ in range(2):
                r = r - basis.T @ (basis @ r)
            beta_prev = 0.0
            betas.append(0.0)
            q = r / torch.linalg.vector_norm(r)
            if j + 1 >= k:
                converged = True  # the wanted Ritz values are exact in this subspace
                break
            continue
        betas.append(beta)
        beta_prev = beta
        q = w / beta
    m = len(alphas)
    idx = _wanted(theta, k, which)
    rest = np.setdiff1d(np.arange(theta.size), idx)
    est = np.abs(beta * S[-1]) if theta.size else np.zeros(0)
    Sw = torch.as_tensor(S[:, idx], dtype=dtype, device=device)
    vecs = (Q[:m].T @ Sw).T.contiguous()
    hvecs = (HQ[:m].T @ Sw).T.contiguous()
    others = (theta[rest].copy(), est[rest].copy())
    return RitzPairs(theta[idx].copy(), vecs, hvecs, m, others), converged


def arpack(
    matvec: MatVec,
    v0: torch.Tensor,
    k: int,
    which: str,
    tol: float,
    ncv: int,
    maxiter: int,
) -> RitzPairs:
    """Implicitly restarted Lanczos (scipy ``eigsh``, ARPACK) as a fallback for hard cases."""
    n = v0.numel()
    dtype, device = v0.dtype, v0.device
    count = [0]

    def mv(x: np.ndarray) -> np.ndarray:
        count[0] += 1
        t = torch.as_tensor(np.ascontiguousarray(x).ravel(), dtype=dtype, device=device)
        return matvec(t).detach().to("cpu", torch.float64).numpy()

    op = scipy.sparse.linalg.LinearOperator((n, n), matvec=mv, dtype=np.float64)
    start = v0.detach().to("cpu", torch.float64).numpy()
    try:
        vals, vecs = scipy.sparse.linalg.eigsh(
            op,
            k=k,
            which="LA" if which == "largest" else "SA",
            tol=tol,
            v0=start,
            ncv=min(n, max(ncv, 2 * k + 1)),
            maxiter=maxiter,
        )
    except scipy.sparse.linalg.ArpackNoConvergence as exc:
        vals, vecs = exc.eigenvalues, exc.eigenvectors
        if vals.size == 0:
            vals, vecs = np.array([np.nan]), start[:, None] / np.linalg.norm(start)
    order = np.argsort(vals)
    vals, vecs = vals[order], vecs[:, order]
    vt = torch.as_tensor(vecs.T.copy(), dtype=dtype, device=device)
    hv = torch.stack([matvec(v) for v in vt])
    return RitzPairs(vals.copy(), vt, hv, count[0] + vt.shape[0])


def block_power(
    matvec: MatVec,
    V0: torch.Tensor,
    which: str,
    tol: float,
    atol: float,
    max_iter: int,
) -> tuple[RitzPairs, bool, float]:
    """Power (subspace) iteration with Rayleigh-Ritz, for the k largest algebraic eigenvalues.

    Mulayoff & Michaeli (Sec. 6) measure sharpness with the power method, which converges to
    the eigenvalue of largest *magnitude*. Sharpness is the largest *algebraic* eigenvalue,
    so this runs on ``A - s I`` with ``A = H`` (``which="largest"``) or ``A = -H``
    (``"smallest"``), shift ``s = 0`` at first. If a converged (or, after half the budget,
    unconverged) Ritz value of ``A - s I`` is negative, the negative end of the spectrum
    dominates; ``s`` is then set to the most negative Ritz value of ``A`` found (about
    ``lambda_min(A)``), which makes ``A - s I`` positive semi-definite so that the iteration
    converges to the wanted end. At a minimum ``H`` is nearly PSD and no shift is needed,
    which is the paper's setting. Returns the pairs of ``H``, convergence and the shift used.
    """
    sign = 1.0 if which == "largest" else -1.0
    V, _ = torch.linalg.qr(V0.T)  # (N, k)
    k = V.shape[1]
    shift = 0.0
    shifted = False
    used = 0
    converged = False
    theta = np.zeros(k)
    HV = torch.empty_like(V)
    while True:
        HV = torch.stack([matvec(V[:, i]) for i in range(k)], dim=1)
        used += k
        AV = sign * HV
        T = V.T @ AV
        T = 0.5 * (T + T.T)
        th, S = torch.linalg.eigh(T)  # ascending eigenvalues of A restricted to span(V)
        V = V @ S
        AV = AV @ S
        theta = th.detach().cpu().numpy()
        res = torch.linalg.vector_norm(AV - V * th, dim=0).cpu().numpy()
        bound = eigenvalue_bounds(theta, res)
        ok = bool(np.all(bound <= tol * np.abs(theta) + atol))
        dominated_by_negative = bool(np.any(theta - shift < 0))
        if ok and not (dominated_by_negative and not shifted):
            converged = True
            break
        if dominated_by_negative and not shifted and (ok or used >= max_iter // 2):
            shift = float(np.min(theta))
            shifted = True
        if used >= max_iter:
            break
        W = AV - shift * V
        V, _ = torch.linalg.qr(W)
    order = np.argsort(sign * theta)
    vals = sign * theta[order]
    o = torch.as_tensor(order, device=V.device)
    return (
        RitzPairs(vals, V[:, o].T.contiguous(), (sign * AV[:, o]).T.contiguous(), used),
        converged,
        sign * shift,
    )


def slq_nodes_weights(
    matvec: MatVec,
    n: int,
    num_probes: int,
    steps: int,
    dtype: torch.dtype,
    device: torch.device,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017; Ghorbani et al. 2019).

    For each Rademacher probe ``z / ||z||``, ``steps`` Lanczos steps with full
    reorthogonalisation give a tridiagonal ``T = S diag(theta) S^T``; the Gauss quadrature
    nodes are ``theta`` and weights ``S[0, :]^2 / num_probes``. The weights sum to one and
    ``sum_i w_i delta(x - theta_i)`` estimates the spectral density ``(1/N) sum delta(x -
    lambda_j)``.
    """
    gen = torch.Generator().manual_seed(seed)
    nodes, weights = [], []
    for _ in range(num_probes):
        z = torch.randint(0, 2, (n,), generator=gen).to(torch.float64) * 2 - 1
        pairs, _ = lanczos(
            matvec,
            z.to(dtype=dtype, device=device),
            k=min(steps, n),
            which="largest",
            tol=0.0,
            atol=0.0,
            max_basis=min(steps, n),
            generator=gen,
        )
        vals = pairs.values
        # first components of the Ritz vectors in the Lanczos basis: <q_1, y_i> = <z, y_i>/||z||
        z1 = z.to(dtype=dtype, device=device) / torch.linalg.vector_norm(z)
        first = (pairs.vectors @ z1).detach().cpu().numpy()
        nodes.append(vals)
        weights.append(first**2)
    w = np.concatenate(weights) / num_probes
    x = np.concatenate(nodes)
    order = np.argsort(x)
    return x[order], w[order]
