"""Non-white inputs: testing the conjecture at the end of Sec. 5 of Mulayoff & Michaeli (2020).

Theorem 1 assumes white data (A2, ``Sigma_x = I``). Its lower half holds for every input
second moment ``Sigma_x``: by Lemma 4 and the telescoping product (eqs. 21-25), every global
minimum ``w`` satisfies ``lambda_max(H_w) >= nu(B)`` for every unit ``B``, so

``min_{w in Omega} lambda_max(H_w) >= max_{||B||_F = 1} nu(B)``      (proved for any ``Sigma_x``).

Equality is what the paper proves under A2 (eqs. 26-29) and *conjectures* for arbitrary
``Sigma_x``. This module measures both sides numerically.

* Left side, :func:`flattest_minimum`: minimise ``lambda_max(H_w)`` over ``Omega``. When every
  hidden layer has the bottleneck width ``r = min(d_x, d_y)`` and ``T`` has rank ``r``,
  ``Omega`` is exactly one gauge orbit ``W_k -> G_k^(-1) W_k G_{k-1}`` (``G_0 = G_m = I``,
  ``G_k`` invertible ``r x r``) of the canonical minimum (eq. 27), so the search runs over the
  gauges ``G_k = expm(X_k)`` with L-BFGS (``scipy.optimize.minimize``). ``lambda_max`` is not
  smooth where the top eigenvalue is multiple, so the objective is the smooth log-sum-exp
  ``(s / beta) log sum_i exp(beta lambda_i / s)`` of the eigenvalues of ``2 Phi^T Phi``
  (eq. 20; ``s`` is ``lambda_max`` at the start of a stage), with ``beta`` annealed over
  :data:`BETAS`; it exceeds ``lambda_max`` by at most ``s log(d_x d_y) / beta``. Wider hidden
  layers give a larger ``Omega`` but cannot do better than ``max nu`` either, so the bottleneck
  orbit is the hardest case for the conjecture (zero-padding embeds it in any wider network
  with the same nonzero Hessian spectrum).
* Right side, :func:`max_nu`: maximise ``nu(B)`` (eq. 25) on the unit Frobenius sphere by
  L-BFGS on ``log nu`` from several starts. :func:`rank_one_nu` restricts ``B = a c^T``, where
  ``nu`` has the simple form ``2m (||T S c||^(m-1) ||S c||)^(2/m)`` with ``S = Sigma_x^(1/2)``
  and unit ``c`` (the best ``a`` is ``T S c / ||T S c||``); under A2 it reduces to eq. (26).

Since the returned minimum lies on ``Omega`` and the returned ``B`` is a unit matrix, the
reported ``lambda_max`` is an upper bound and the reported ``nu`` a lower bound of the true
common value, whatever the optimisers do: their relative difference (:func:`conjecture_gap`)
is never negative, and it bounds the true gap from above.

The matrices are tiny, so the optimisers run with one BLAS thread (``threadpoolctl``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg import expm, expm_frechet
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from flatlib._validation import as_float, as_float_array, as_int, as_weights
from flatlib.theory import linear

__all__ = [
    "BETAS",
    "ConjectureGap",
    "FlattestResult",
    "NuResult",
    "bottleneck_minimum",
    "conjecture_gap",
    "descend",
    "flattest_minimum",
    "layer_terms",
    "max_nu",
    "random_covariance",
    "random_instance",
    "rank_one_nu",
    "smoothed_sharpness",
    "whitened_minimum",
]

BETAS: tuple[float, ...] = (1e3, 3e4, 1e6)
"""Annealing schedule of the log-sum-exp sharpness (relative inverse temperatures)."""

_MAX_ITER = 500
_STEP_BOUND = 3.0  # |entries of X_k| per stage: cond(expm(X_k)) <= exp(2 d _STEP_BOUND)
_FAILED = 1e300  # objective value of a numerically singular gauge (the line search backs off)
# The matrices are tiny: BLAS threads only add contention (10x slower on a busy 2-core box).
_ONE_THREAD = threadpool_limits.wrap(limits=1, user_api="blas")


# ----------------------------------------------------------------------------- instances


def random_covariance(d: int, condition: float, seed: int | None = None) -> np.ndarray:
    """Random ``d x d`` input second moment ``Sigma_x`` with condition number ``condition``.

    Eigenvalues ``condition^(-t_i)`` with ``t_1 = 0``, ``t_d = 1`` and the others uniform in
    ``[0, 1]``, rescaled to trace ``d`` (mean eigenvalue 1); eigenvectors a random rotation.
    ``condition = 1`` gives the identity (assumption A2).
    """
    d = as_int(d, "d", minimum=1)
    condition = as_float(condition, "condition", positive=True)
    if condition < 1.0:
        raise ValueError(f"condition must be >= 1, got {condition}")
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0.0, 1.0, d))
    t[0], t[-1] = 0.0, 1.0 if d > 1 else 0.0
    evals = condition ** (-t)
    evals *= d / evals.sum()
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    q *= np.sign(np.diag(r))
    sigma = (q * evals) @ q.T
    return (sigma + sigma.T) / 2.0


def random_instance(
    d_x: int, d_y: int, condition: float, seed: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A test instance ``(sigma_x, T)``: :func:`random_covariance` and a Gaussian ``d_y x d_x`` map.

    Both are drawn from ``seed``; ``T`` has i.i.d. ``N(0, 1)`` entries (full rank a.s.).
    """
    d_x = as_int(d_x, "d_x", minimum=1)
    d_y = as_int(d_y, "d_y", minimum=1)
    rng = np.random.default_rng(seed)
    sigma = random_covariance(d_x, condition, seed=rng.integers(2**32))
    return sigma, rng.standard_normal((d_y, d_x))


def _check(T: Any, m: int, sigma_x: Any) -> tuple[np.ndarray, int, np.ndarray]:
    """Validated ``(T, m, S)`` with ``S = Sigma_x^(1/2)`` (identity for ``None``)."""
    t = as_float_array(T, "T", ndim=2)
    m = as_int(m, "m", minimum=1)
    root = linear.sqrt_covariance(sigma_x, t.shape[1])
    if root is None:
        root = np.eye(t.shape[1])
    s = np.linalg.svd(t, compute_uv=False)
    if s[-1] <= 1e-10 * s[0]:
        raise ValueError("T must have full rank min(d_x, d_y)")
    return t, m, root


def bottleneck_minimum(T: Any, m: int) -> list[np.ndarray]:
    """The canonical minimum (eq. 27) with every hidden width ``min(d_x, d_y)``."""
    t, m, _ = _check(T, m, None)
    return linear.canonical_minimum(t, m, [min(t.shape)] * (m - 1))


def whitened_minimum(T: Any, m: int, sigma_x: Any) -> list[np.ndarray]:
    """A natural guess for the flattest minimum under ``Sigma_x``: whiten, then use eq. (27).

    ``W_1 Sigma^(1/2)`` and the other layers form the canonical minimum of ``T Sigma^(1/2)``,
    the network seen by whitened inputs; then ``W_1`` absorbs ``Sigma^(-1/2)``. Bottleneck
    widths as in :func:`bottleneck_minimum`.
    """
    t, m, root = _check(T, m, sigma_x)
    ws = bottleneck_minimum(t @ root, m)
    ws[0] = np.linalg.solve(root.T, ws[0].T).T
    return ws


# ----------------------------------------------------------------------------- left side


def _lambda_max(ws: list[np.ndarray], root: np.ndarray) -> float:
    """``lambda_max(2 Phi^T Phi)`` (eq. 20) of validated weights, ``root = Sigma^(1/2)``."""
    return float(np.linalg.eigvalsh(linear.phi_gram(*linear.layer_blocks(ws, root)))[-1])


def _generators(x: np.ndarray, dims: Sequence[int]) -> list[np.ndarray]:
    out, start = [], 0
    for d in dims:
        out.append(x[start : start + d * d].reshape(d, d))
        start += d * d
    return out


def _gauges(x: np.ndarray, dims: Sequence[int]) -> list[np.ndarray]:
    """``G_k = expm(X_k)``: always invertible, ``G = I`` at ``X = 0``."""
    return [expm(g) for g in _generators(x, dims)]


def _weighted_eigen_gradient(
    ws: list[np.ndarray], a: list, b: list, vecs: np.ndarray, weights: np.ndarray
) -> list[np.ndarray]:
    """``sum_i weights_i grad_W lambda(c_i)`` for the columns ``c_i`` of ``vecs``.

    ``lambda(c) = 2 sum_k ||B_k^T C A_k^T||_F^2`` (eq. 21, ``c = vec(C)``) is quadratic in
    ``c``, so scaling ``c_i`` by ``sqrt(weights_i)`` folds in the weights; the recursions are
    those of ``flatlib.theory.flattening._eigen_gradient``, batched over ``i``.
    """
    m = len(ws)
    n = vecs.shape[1]
    cs = (vecs * np.sqrt(weights)).T.reshape(n, a[0].shape[1], b[0].shape[0]).transpose(0, 2, 1)
    mk = [bk.T @ cs @ ak.T for ak, bk in zip(a, b, strict=True)]
    da = [np.zeros((n, *a[0].shape))]
    for j in range(m - 1):
        da.append(mk[j] @ a[j] + ws[j] @ da[j])
    db = [np.zeros((n, *b[-1].shape))]
    for j in range(m - 1, 0, -1):
        db.append(db[-1] @ ws[j] + b[j] @ mk[j])
    db = db[::-1]
    return [
        4.0
        * np.sum(
            db[j].transpose(0, 2, 1) @ cs @ a[j].T + b[j].T @ cs @ da[j].transpose(0, 2, 1), axis=0
        )
        for j in range(m)
    ]


def _lse_and_grad(
    x: np.ndarray, base: list[np.ndarray], root: np.ndarray, beta: float, scale: float
) -> tuple[float, np.ndarray]:
    """Log-sum-exp sharpness at the gauge ``G_k = expm(X_k)`` of ``base``; gradient in ``X``.

    With ``p = softmax(beta lambda / scale)`` the gradient w.r.t. the weights is
    ``sum_i p_i grad lambda_i`` (``_weighted_eigen_gradient``, valid for any ``Sigma_x``
    since the forward products start at ``Sigma^(1/2)``). For
    ``W_i' = G_i^(-1) W_i G_{i-1}`` the chain rule gives the gradient
    ``G_i^(-T) (-grad_i W_i'^T + W_{i+1}'^T grad_{i+1})`` w.r.t. ``G_i``, and the adjoint of
    the Frechet derivative of ``expm`` at ``X_i`` (its derivative at ``X_i^T``) carries it to
    ``X_i``.
    """
    dims = [w.shape[0] for w in base[:-1]]
    xs = _generators(x, dims)
    try:
        with np.errstate(over="raise", invalid="raise"):
            gs = [expm(g) for g in xs]
            ws = linear.gauge_checked(base, gs)
            a, b = linear.layer_blocks(ws, root)
            evals, evecs = np.linalg.eigh(linear.phi_gram(a, b))
    except (np.linalg.LinAlgError, FloatingPointError):
        return _FAILED, np.zeros_like(x)
    if not np.all(np.isfinite(evals)):
        return _FAILED, np.zeros_like(x)
    z = beta * (evals - evals[-1]) / scale
    p = np.exp(z)
    total = p.sum()
    p /= total
    value = evals[-1] + scale / beta * np.log(total)
    keep = np.flatnonzero(p > 1e-13)
    grads = _weighted_eigen_gradient(ws, a, b, evecs[:, keep], p[keep])
    out = []
    for i in range(len(gs)):
        grad_g = np.linalg.solve(gs[i].T, -grads[i] @ ws[i].T + ws[i + 1].T @ grads[i + 1])
        out.append(expm_frechet(xs[i].T, grad_g, compute_expm=False).ravel())
    return float(value), np.concatenate(out)


def smoothed_sharpness(
    weights: Any, sigma_x: Any, beta: float, generators: Sequence[Any] | None = None
) -> tuple[float, list[np.ndarray]]:
    """Log-sum-exp surrogate of ``lambda_max`` (eq. 20) after a gauge move, and its gradient.

    Evaluates ``(s / beta) log sum_i exp(beta lambda_i / s)`` over the eigenvalues of
    ``2 Phi^T Phi`` at ``W_k' = G_k^(-1) W_k G_{k-1}`` with ``G_k = expm(X_k)`` for the
    ``generators`` ``[X_1, ..., X_{m-1}]`` (default zeros, i.e. no move), where ``s`` is
    ``lambda_max`` at ``weights``. Returns the value and its gradient with respect to each
    ``X_k``. The value lies in ``[lambda_max, lambda_max + s log(d_x d_y) / beta]``.
    """
    ws = as_weights(weights)
    beta = as_float(beta, "beta", positive=True)
    root = linear.sqrt_covariance(sigma_x, ws[0].shape[1])
    root = np.eye(ws[0].shape[1]) if root is None else root
    dims = [w.shape[0] for w in ws[:-1]]
    if generators is None:
        generators = [np.zeros((d, d)) for d in dims]
    if isinstance(generators, np.ndarray) or not isinstance(generators, Sequence):
        raise TypeError("generators must be a list of m - 1 square matrices")
    if len(generators) != len(dims):
        raise ValueError(
            f"generators must hold m - 1 = {len(dims)} matrices, got {len(generators)}"
        )
    x = []
    for i, (g, d) in enumerate(zip(generators, dims, strict=True)):
        arr = as_float_array(g, f"generators[{i}]", ndim=2)
        if arr.shape != (d, d):
            raise ValueError(f"generators[{i}] must have shape ({d}, {d}), got {arr.shape}")
        x.append(arr.ravel())
    scale = linear.sharpness(ws, root @ root)
    value, grad = _lse_and_grad(np.concatenate(x) if x else np.zeros(0), ws, root, beta, scale)
    return value, _generators(grad, dims)


@_ONE_THREAD
def descend(
    weights: Any, sigma_x: Any = None, betas: Sequence[float] = BETAS
) -> tuple[list[np.ndarray], np.ndarray]:
    """Minimise ``lambda_max(H_w)`` over the gauge orbit of ``weights`` (one start).

    For each ``beta`` in ``betas`` (increasing), L-BFGS minimises the log-sum-exp surrogate
    (:func:`smoothed_sharpness`) over the generators ``X_k`` of ``G_k = expm(X_k)`` starting
    from ``G = I`` (entries of ``X_k`` bounded by 3 in a stage, so that the gauges stay well
    conditioned); the result becomes the next stage's base point. Only gauge moves are made,
    so the end-to-end map is unchanged (eqs. 4, S104). Returns the final weights and the
    exact ``lambda_max`` (eq. 20) after every L-BFGS iteration (first entry: the start).
    """
    ws = as_weights(weights)
    root = linear.sqrt_covariance(sigma_x, ws[0].shape[1])
    root = np.eye(ws[0].shape[1]) if root is None else root
    history = [_lambda_max(ws, root)]
    if len(ws) == 1:
        return ws, np.array(history)
    dims = [w.shape[0] for w in ws[:-1]]
    for beta in betas:
        beta = as_float(beta, "betas", positive=True)
        scale = history[-1]
        base = ws

        def record(x: np.ndarray, base: list[np.ndarray] = base) -> None:
            history.append(_lambda_max(linear.gauge_checked(base, _gauges(x, dims)), root))

        res = minimize(
            _lse_and_grad,
            np.zeros(sum(d * d for d in dims)),
            args=(base, root, beta, scale),
            jac=True,
            method="L-BFGS-B",
            bounds=[(-_STEP_BOUND, _STEP_BOUND)] * sum(d * d for d in dims),
            callback=record,
            options={"maxiter": _MAX_ITER, "gtol": 1e-13, "ftol": 1e-15},
        )
        ws = linear.gauge_checked(base, _gauges(res.x, dims))
    history.append(_lambda_max(ws, root))
    return ws, np.array(history)


@dataclass(frozen=True)
class FlattestResult:
    """Outcome of :func:`flattest_minimum`.

    ``weights``: the flattest minimum found; ``sharpness``: its ``lambda_max`` (eq. 20);
    ``finals``: the final ``lambda_max`` of each start (the first two starts are
    :func:`bottleneck_minimum` and :func:`whitened_minimum`, the rest random minima of
    eq. S104); ``starts``: ``lambda_max`` at each start; ``histories``: ``lambda_max`` along
    each descent.
    """

    weights: list[np.ndarray]
    sharpness: float
    finals: np.ndarray
    starts: np.ndarray
    histories: list[np.ndarray]


def flattest_minimum(
    T: Any, m: int, sigma_x: Any = None, n_starts: int = 3, seed: int = 0
) -> FlattestResult:
    """Left side of the conjecture: ``min_{w in Omega} lambda_max(H_w)`` from several starts.

    Runs :func:`descend` from the bottleneck canonical minimum (eq. 27), the whitened guess
    (:func:`whitened_minimum`) and ``n_starts - 2`` random minima (eq. S104, seeds from
    ``seed``), and keeps the flattest. Every start lies on ``Omega``, so the result is an upper
    bound on the true minimum (and equals Theorem 1's value under A2 up to optimisation error).
    """
    t, m, root = _check(T, m, sigma_x)
    n_starts = as_int(n_starts, "n_starts", minimum=1)
    seed = as_int(seed, "seed", minimum=0)
    widths = [min(t.shape)] * (m - 1)
    starts = [bottleneck_minimum(t, m), whitened_minimum(t, m, root @ root)]
    starts += [
        linear.random_minimum(t, m, seed=seed + i, widths=widths) for i in range(n_starts - 2)
    ]
    runs = [descend(w, root @ root) for w in starts[:n_starts]]
    finals = np.array([h[-1] for _, h in runs])
    best = int(np.argmin(finals))
    linear.require_minimum(runs[best][0], t)
    return FlattestResult(
        weights=runs[best][0],
        sharpness=float(finals[best]),
        finals=finals,
        starts=np.array([h[0] for _, h in runs]),
        histories=[h for _, h in runs],
    )


# ----------------------------------------------------------------------------- right side


def _neg_log_nu(z: np.ndarray, t: np.ndarray, m: int, root: np.ndarray) -> tuple[float, np.ndarray]:
    """``-log ||(C T^T)^(m-1) C||_2`` with ``C = B S``, ``B = Z / ||Z||_F``, and its gradient.

    ``N = C (T^T C)^(m-1)`` contains ``C`` ``m`` times; with ``g = u1 v1^T / sigma_1(N)`` the
    gradient w.r.t. ``C`` is ``sum_j (K^j)^T g (L^(m-1-j))^T`` (``K = C T^T``, ``L = T^T C``).
    """
    zm = z.reshape(t.shape)
    norm = np.linalg.norm(zm)
    bm = zm / norm
    c = bm @ root
    k, ell = c @ t.T, t.T @ c
    kp = [np.eye(k.shape[0])]
    lp = [np.eye(ell.shape[0])]
    for _ in range(m - 1):
        kp.append(kp[-1] @ k)
        lp.append(lp[-1] @ ell)
    n_mat = kp[-1] @ c
    u, s, vt = np.linalg.svd(n_mat)
    g = np.outer(u[:, 0], vt[0]) / s[0]
    grad_c = sum(kp[j].T @ g @ lp[m - 1 - j].T for j in range(m))
    grad_b = grad_c @ root.T
    grad_z = (grad_b - np.sum(grad_b * bm) * bm) / norm
    return -float(np.log(s[0])), -grad_z.ravel()


@dataclass(frozen=True)
class NuResult:
    """A unit ``B`` (``||B||_F = 1``, shape of ``T``) and ``value = nu(B)`` (eq. 25)."""

    B: np.ndarray
    value: float


@_ONE_THREAD
def rank_one_nu(T: Any, m: int, sigma_x: Any = None, n_starts: int = 4, seed: int = 0) -> NuResult:
    """Maximum of ``nu(B)`` (eq. 25) over rank-one unit ``B = a c^T``.

    For unit ``a`` and ``c``, ``nu(a c^T) = 2m (|a^T T S c|^(m-1) ||S c||)^(2/m)`` with
    ``S = Sigma_x^(1/2)``; the best ``a`` is ``T S c / ||T S c||``, leaving
    ``max_c 2m (||T S c||^(m-1) ||S c||)^(2/m)`` over unit ``c``, solved by BFGS on the log
    from the top right singular vector of ``T S``, the top eigenvector of ``Sigma_x`` and
    ``n_starts - 2`` random directions. Under A2 the optimum is ``c = v``, eq. (26)
    (App. V.2).
    """
    t, m, root = _check(T, m, sigma_x)
    n_starts = as_int(n_starts, "n_starts", minimum=1)
    ts = t @ root
    sigma = root @ root
    rng = np.random.default_rng(seed)
    starts = [np.linalg.svd(ts)[2][0], np.linalg.eigh(sigma)[1][:, -1]]
    starts += [rng.standard_normal(t.shape[1]) for _ in range(n_starts - 2)]

    def neg(c: np.ndarray) -> tuple[float, np.ndarray]:
        tc, cc = ts.T @ (ts @ c), sigma @ c
        q1, q2, q3 = c @ tc, c @ cc, c @ c
        value = (m - 1) / 2 * np.log(q1) + 0.5 * np.log(q2) - m / 2 * np.log(q3)
        grad = (m - 1) * tc / q1 + cc / q2 - m * c / q3
        return -float(value), -grad

    best: NuResult | None = None
    for c0 in starts[:n_starts]:
        c = minimize(neg, c0, jac=True, method="BFGS", options={"gtol": 1e-12}).x
        c /= np.linalg.norm(c)
        a = ts @ c
        bm = np.outer(a / np.linalg.norm(a), c)
        value = linear.nu(bm, t, m, sigma)
        if best is None or value > best.value:
            best = NuResult(B=bm, value=value)
    assert best is not None
    return best


@_ONE_THREAD
def max_nu(T: Any, m: int, sigma_x: Any = None, n_starts: int = 4, seed: int = 0) -> NuResult:
    """Right side of the conjecture: ``max_{||B||_F = 1} nu(B)`` (eq. 25), from several starts.

    L-BFGS on ``log nu(Z / ||Z||_F)`` over unrestricted ``Z``, started at the rank-one optimum
    of :func:`rank_one_nu` and at ``n_starts - 1`` Gaussian matrices (seeded). Every candidate
    is a unit ``B``, so the result is a lower bound on the true maximum and, by eqs. (21)-(25),
    on ``lambda_max(H_w)`` at every global minimum.
    """
    t, m, root = _check(T, m, sigma_x)
    n_starts = as_int(n_starts, "n_starts", minimum=1)
    sigma = root @ root
    rng = np.random.default_rng(seed)
    starts = [rank_one_nu(t, m, sigma, seed=seed).B]
    starts += [rng.standard_normal(t.shape) for _ in range(n_starts - 1)]
    best: NuResult | None = None
    for b0 in starts:
        res = minimize(
            _neg_log_nu,
            b0.ravel(),
            args=(t, m, root),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 2000, "gtol": 1e-13, "ftol": 1e-15},
        )
        bm = res.x.reshape(t.shape) / np.linalg.norm(res.x)
        value = linear.nu(bm, t, m, sigma)
        if best is None or value > best.value:
            best = NuResult(B=bm, value=value)
    assert best is not None
    return best


def layer_terms(weights: Any, B: Any, sigma_x: Any = None) -> np.ndarray:
    """The ``m`` terms ``2 ||(Wm...W_{k+1})^T B Sigma^(1/2) (W_{k-1}...W_1)^T||_F^2`` of eq. (21).

    Their sum is ``vec(B)^T (2 Phi^T Phi) vec(B)``; Lemma 4 (eq. 22) is tight only if they are
    all equal (and each term is rank one).
    """
    ws = as_weights(weights)
    bm = as_float_array(B, "B", ndim=2)
    shape = (ws[-1].shape[0], ws[0].shape[1])
    if bm.shape != shape:
        raise ValueError(f"B must have shape {shape}, got {bm.shape}")
    root = linear.sqrt_covariance(sigma_x, shape[1])
    a, b = linear.layer_blocks(ws, root)
    return np.array(
        [2.0 * np.linalg.norm(bk.T @ bm @ ak.T) ** 2 for ak, bk in zip(a, b, strict=True)]
    )


# ----------------------------------------------------------------------------- the gap


@dataclass(frozen=True)
class ConjectureGap:
    """Both sides of the conjecture for one instance (see :func:`conjecture_gap`).

    ``min_sharpness`` (left side, upper bound), ``max_nu`` (right side, lower bound),
    ``rank_one_nu`` (best rank-one ``B``), ``gap = min_sharpness / max_nu - 1`` (never
    negative beyond rounding; zero if the conjecture holds and both optimisers succeed),
    ``start_spread`` (relative spread of the final ``lambda_max`` over starts),
    ``b_rank_ratio`` (``sigma_2 / sigma_1`` of the best ``B``; 0 for a rank-one maximiser),
    ``start_gap`` (the gap at the flattest of the starting minima, before optimisation),
    ``alignment`` (``|<vec(B), e_1>|`` with ``e_1`` the top eigenvector of ``2 Phi^T Phi`` at
    the flattest minimum; 1 when ``B`` is a top eigenvector, as it must be if the gap is 0),
    ``white_value`` (Theorem 1's eq. 17 for the same ``T``, exact only under A2),
    ``whitened_sharpness`` (``lambda_max`` at :func:`whitened_minimum`), and the flattest
    minimum ``weights`` and best ``B``.
    """

    min_sharpness: float
    max_nu: float
    rank_one_nu: float
    gap: float
    start_spread: float
    b_rank_ratio: float
    start_gap: float
    alignment: float
    white_value: float
    whitened_sharpness: float
    weights: list[np.ndarray]
    B: np.ndarray


def conjecture_gap(
    T: Any, m: int, sigma_x: Any = None, n_starts: int = 3, seed: int = 0
) -> ConjectureGap:
    """Both sides of ``min_Omega lambda_max(H_w) = max_{||B||_F=1} nu(B)`` and their gap (Sec. 5).

    Combines :func:`flattest_minimum` (``n_starts`` starts) and :func:`max_nu`.
    """
    t, m, root = _check(T, m, sigma_x)
    sigma = root @ root
    left = flattest_minimum(t, m, sigma, n_starts=n_starts, seed=seed)
    right = max_nu(t, m, sigma, seed=seed)
    r1 = rank_one_nu(t, m, sigma, seed=seed)
    sv = np.linalg.svd(right.B, compute_uv=False)
    top = np.linalg.eigh(linear.phi_gram(*linear.layer_blocks(left.weights, root)))[1][:, -1]
    return ConjectureGap(
        min_sharpness=left.sharpness,
        max_nu=right.value,
        rank_one_nu=r1.value,
        gap=left.sharpness / right.value - 1.0,
        start_spread=float((left.finals.max() - left.finals.min()) / left.finals.min()),
        b_rank_ratio=float(sv[1] / sv[0]) if sv.size > 1 else 0.0,
        start_gap=float(left.starts.min() / right.value - 1.0),
        alignment=float(abs(top @ right.B.ravel(order="F"))),
        white_value=linear.flattest_sharpness(t, m),
        whitened_sharpness=linear.sharpness(whitened_minimum(t, m, sigma), sigma),
        weights=left.weights,
        B=right.B,
    )
