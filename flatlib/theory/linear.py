"""Deep linear networks: Secs. 2, 4, 5 and App. IV-IX.1 of Mulayoff & Michaeli (2020).

Conventions
-----------
* The weights of an ``m``-layer network are a list ``[W1, ..., Wm]`` of NumPy float64 arrays,
  ``Wj`` of shape ``(d_j, d_{j-1})`` with ``d_0 = d_x`` and ``d_m = d_y``; the network computes
  ``Wm ... W1 x`` (eq. 1).
* Data are ``X`` of shape ``(n, d_x)`` and ``Y`` of shape ``(n, d_y)`` (one sample a row). The
  loss is ``l(w) = mean_i ||y_i - Wm ... W1 x_i||^2``: a sum over output coordinates and a mean
  over samples (eq. 2).
* The parameter vector is ``w = [vec(W1); ...; vec(Wm)]`` with ``vec`` the column-stacking
  (Fortran-order) vectorisation, as property (P1) requires; Hessians are ``N x N`` in this order.
* ``sigma_x`` is the input second-moment matrix ``Sigma_x = X^T X / n`` (``d_x x d_x``, symmetric
  positive definite); ``None`` means the identity (assumption A2). Where the paper writes
  ``Sigma_x^(1/2)`` we use the symmetric square root.
* ``T = Sigma_yx Sigma_x^(-1)`` (eq. 3) is the optimal end-to-end map and ``Omega`` the set of
  weights whose product is ``T`` (eq. 4). Functions that need a global minimum check
  ``||Wm ... W1 - T||_F <= 1e-8 ||T||_F`` and raise ``ValueError`` naming ``weights`` otherwise.
* ``u``, ``v`` are the top left/right singular vectors of ``T`` (``T v = sigma_max(T) u``).

The flattening algorithms (App. IX.1) live in ``flatlib.theory.flattening`` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from flatlib._validation import as_float, as_float_array, as_int, as_weights

__all__ = [
    "CouplingErrors",
    "FlatnessReport",
    "LinearGDResult",
    "apply_gauge",
    "as_target_matrix",
    "balancedness",
    "canonical_minimum",
    "coupling_errors",
    "signal_path",
    "end_to_end",
    "flattest_sharpness",
    "gain_bound",
    "gauge_checked",
    "gradient_descent",
    "hessian_at_minimum",
    "identity_init",
    "is_flattest",
    "layer_blocks",
    "loss",
    "max_stable_step",
    "nu",
    "optimal_map",
    "partial_gains",
    "phi",
    "phi_gram",
    "random_minimum",
    "require_minimum",
    "second_moment",
    "sharpness",
    "sqrt_covariance",
    "top_eigenvector",
    "top_singular",
    "v_gains",
    "whitened_data",
]

OMEGA_RTOL = 1e-8


# ----------------------------------------------------------------------------- basic objects


def _data(X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
    x = as_float_array(X, "X", ndim=2)
    y = as_float_array(Y, "Y", ndim=2)
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"X and Y must have the same number of rows, got {x.shape[0]} and {y.shape[0]}"
        )
    return x, y


def second_moment(X: Any) -> np.ndarray:
    """Empirical second-moment matrix ``Sigma_x = X^T X / n`` of the inputs (Sec. 2)."""
    x = as_float_array(X, "X", ndim=2)
    return x.T @ x / x.shape[0]


def optimal_map(X: Any, Y: Any) -> np.ndarray:
    """Optimal end-to-end map ``T = Sigma_yx Sigma_x^(-1)`` (eq. 3).

    ``Sigma_x`` must be full rank.
    """
    x, y = _data(X, Y)
    sigma = x.T @ x / x.shape[0]
    if np.linalg.matrix_rank(sigma) < sigma.shape[0]:
        raise ValueError("X must have full column rank: Sigma_x = X^T X / n is singular (eq. 3)")
    return np.linalg.solve(sigma, x.T @ y / x.shape[0]).T


def end_to_end(weights: Any) -> np.ndarray:
    """End-to-end matrix ``Wm ... W1`` of a linear network (eq. 1)."""
    ws = as_weights(weights)
    return _product(ws)


def _product(ws: Sequence[np.ndarray]) -> np.ndarray:
    """``Wm ... W1`` of already validated weights."""
    out = ws[0]
    for w in ws[1:]:
        out = w @ out
    return out


def loss(weights: Any, X: Any, Y: Any) -> float:
    """Quadratic training loss ``mean_i ||y_i - Wm ... W1 x_i||^2`` (eq. 2)."""
    ws = as_weights(weights)
    x, y = _data(X, Y)
    product = _product(ws)
    if product.shape != (y.shape[1], x.shape[1]):
        raise ValueError(
            f"weights map R^{product.shape[1]} to R^{product.shape[0]} but X, Y have "
            f"{x.shape[1]} and {y.shape[1]} columns"
        )
    return float(np.sum((y - x @ product.T) ** 2) / x.shape[0])


def identity_init(d: int, m: int) -> list[np.ndarray]:
    """Identity initialisation ``Wj = I_d`` for all ``m`` layers (Lemma 1)."""
    d = as_int(d, "d", minimum=1)
    m = as_int(m, "m", minimum=1)
    return [np.eye(d) for _ in range(m)]


def whitened_data(
    T: Any, n: int, seed: int | None = None, noise: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Data ``X, Y`` with ``X^T X / n = I`` exactly and ``optimal_map(X, Y) = T`` (A2, eq. 3).

    ``X = sqrt(n) Q`` with ``Q`` an ``n x d_x`` matrix with orthonormal columns, and
    ``Y = X T^T + E`` where the residual ``E`` (entries of scale ``noise``) is orthogonal to the
    columns of ``X``, so the loss at a minimum is ``||E||_F^2 / n`` but ``Sigma_yx = T``.
    Nonzero ``noise`` needs ``n > d_x``.
    """
    t = as_float_array(T, "T", ndim=2)
    n = as_int(n, "n", minimum=1)
    noise = as_float(noise, "noise")
    if noise < 0:
        raise ValueError(f"noise must be non-negative, got {noise}")
    d_y, d_x = t.shape
    if n < d_x or (noise > 0 and n == d_x):
        raise ValueError(f"n must exceed d_x = {d_x} (or equal it when noise = 0), got {n}")
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, d_x)))
    x = np.sqrt(n) * q
    e = rng.standard_normal((n, d_y))
    e = noise * (e - q @ (q.T @ e))
    return x, x @ t.T + e


# ----------------------------------------------------------------------------- checks


def as_target_matrix(T: Any) -> np.ndarray:
    """``T`` (eq. 3) as a checked 2-D float64 array; errors name the argument ``T``."""
    return as_float_array(T, "T", ndim=2)


def sqrt_covariance(sigma_x: Any, d_x: int) -> np.ndarray | None:
    """Symmetric square root of ``sigma_x`` (``None`` stays ``None``: identity, A2)."""
    if sigma_x is None:
        return None
    sigma = as_float_array(sigma_x, "sigma_x", ndim=2)
    if sigma.shape != (d_x, d_x):
        raise ValueError(f"sigma_x must have shape ({d_x}, {d_x}), got {sigma.shape}")
    if not np.allclose(sigma, sigma.T, rtol=1e-10, atol=1e-12 * np.abs(sigma).max()):
        raise ValueError("sigma_x must be symmetric")
    evals, evecs = np.linalg.eigh(sigma)
    if evals[0] <= 1e-12 * max(evals[-1], 0.0):
        raise ValueError("sigma_x must be positive definite (it is singular or indefinite)")
    return (evecs * np.sqrt(evals)) @ evecs.T


def require_minimum(ws: list[np.ndarray], t: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``Wm ... W1 = T`` within :data:`OMEGA_RTOL` (eq. 4)."""
    product = _product(ws)
    if product.shape != t.shape:
        raise ValueError(f"weights has end-to-end shape {product.shape} but T has shape {t.shape}")
    scale = max(float(np.linalg.norm(t)), np.finfo(float).tiny)
    error = float(np.linalg.norm(product - t))
    if error > OMEGA_RTOL * scale:
        raise ValueError(
            f"weights is not a global minimum: ||Wm...W1 - T||_F / ||T||_F = {error / scale:.3e} "
            f"exceeds {OMEGA_RTOL:g} (eq. 4)"
        )


def top_singular(t: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """``(sigma_max, u, v)`` of ``T`` with ``T v = sigma_max u``; ``T`` must be nonzero."""
    uu, s, vt = np.linalg.svd(t)
    if s[0] == 0.0:
        raise ValueError("T must be nonzero")
    return float(s[0]), uu[:, 0], vt[0]


def _dims(t: np.ndarray, m: int, widths: Any) -> list[int]:
    d_y, d_x = t.shape
    if widths is None:
        hidden = [max(d_x, d_y)] * (m - 1)
    else:
        if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
            raise TypeError("widths must be a sequence of m - 1 ints")
        hidden = [as_int(d, f"widths[{i}]", minimum=1) for i, d in enumerate(widths)]
        if len(hidden) != m - 1:
            raise ValueError(f"widths must hold m - 1 = {m - 1} hidden sizes, got {len(hidden)}")
        if hidden and min(hidden) < min(d_x, d_y):
            raise ValueError(
                f"widths violate assumption A1: min(widths) = {min(hidden)} < min(d_x, d_y) = "
                f"{min(d_x, d_y)}"
            )
    return [d_x, *hidden, d_y]


# ----------------------------------------------------------------------------- minima


def canonical_minimum(T: Any, m: int, widths: Sequence[int] | None = None) -> list[np.ndarray]:
    """Canonical flattest minimum (eq. 27).

    ``Wm = U S^(1/m)``, ``Wj = S^(1/m)``, ``W1 = S^(1/m) V^T``.

    ``T = U S V^T``; each ``S_j^(1/m)`` is a ``d_j x d_{j-1}`` diagonal matrix holding the
    ``m``-th roots of the singular values of ``T``. ``widths`` are the hidden sizes
    ``d_1..d_{m-1}`` (default ``max(d_x, d_y)``; assumption A1 requires ``>= min(d_x, d_y)``).
    """
    t = as_target_matrix(T)
    m = as_int(m, "m", minimum=1)
    dims = _dims(t, m, widths)
    if m == 1:
        return [t.copy()]
    uu, s, vt = np.linalg.svd(t)
    root = s ** (1.0 / m)
    ws = []
    for j in range(1, m + 1):
        diag = np.zeros((dims[j], dims[j - 1]))
        diag[np.arange(root.size), np.arange(root.size)] = root
        ws.append(diag)
    ws[0] = ws[0] @ vt
    ws[-1] = uu @ ws[-1]
    return ws


def apply_gauge(weights: Any, gauges: Sequence[Any]) -> list[np.ndarray]:
    """Move along ``Omega`` (eqs. S104, S106).

    ``W_i -> G_i^(-1) W_i G_{i-1}`` with ``G_0 = G_m = I``.

    ``gauges`` holds the ``m - 1`` invertible hidden-layer matrices ``G_1..G_{m-1}``
    (``G_i`` of size ``d_i x d_i``). The end-to-end map ``Wm ... W1`` is unchanged.
    """
    ws = as_weights(weights)
    if isinstance(gauges, (str, bytes, np.ndarray)) or not isinstance(gauges, Sequence):
        raise TypeError("gauges must be a list of m - 1 square matrices [G_1, ..., G_{m-1}]")
    if len(gauges) != len(ws) - 1:
        raise ValueError(f"gauges must hold m - 1 = {len(ws) - 1} matrices, got {len(gauges)}")
    gs = []
    for i, g in enumerate(gauges, start=1):
        arr = as_float_array(g, f"gauges[{i - 1}]", ndim=2)
        d = ws[i - 1].shape[0]
        if arr.shape != (d, d):
            raise ValueError(f"gauges[{i - 1}] must have shape ({d}, {d}), got {arr.shape}")
        if np.linalg.cond(arr) > 1e12:
            raise ValueError(f"gauges[{i - 1}] must be invertible")
        gs.append(arr)
    return gauge_checked(ws, gs)


def gauge_checked(ws: list[np.ndarray], gs: list[np.ndarray]) -> list[np.ndarray]:
    """:func:`apply_gauge` for checked weights and gauges: ``W_i -> G_i^(-1) W_i G_{i-1}``."""
    out = []
    for i, w in enumerate(ws):
        left = np.linalg.solve(gs[i], w) if i < len(gs) else w
        out.append(left @ gs[i - 1] if i > 0 else left)
    return out


def random_minimum(
    T: Any, m: int, seed: int | None = None, widths: Sequence[int] | None = None
) -> list[np.ndarray]:
    """Arbitrary global minimum of eq. (S104): the canonical minimum gauged by Gaussian ``A_i``.

    ``Wm = U S^(1/m) A_{m-1}``, ``Wi = A_i^(-1) S^(1/m) A_{i-1}``, ``W1 = A_1^(-1) S^(1/m) V^T``
    with ``A_i`` (``d_i x d_i``) i.i.d. ``N(0, 1)`` entries drawn from ``seed``.
    """
    ws = canonical_minimum(T, m, widths)
    rng = np.random.default_rng(seed)
    gs = [rng.standard_normal((w.shape[0], w.shape[0])) for w in ws[:-1]]
    return gauge_checked(ws, gs)


# ----------------------------------------------------------------------------- Hessian structure


def layer_blocks(ws: list[np.ndarray], root: np.ndarray | None) -> tuple[list, list]:
    """``A_k = W_{k-1}...W_1 Sigma^(1/2)`` and ``B_k = Wm...W_{k+1}`` for ``k = 1..m`` (eq. 16)."""
    a = [np.eye(ws[0].shape[1]) if root is None else root]
    for w in ws[:-1]:
        a.append(w @ a[-1])
    b = [np.eye(ws[-1].shape[0])]
    for w in ws[:0:-1]:
        b.append(b[-1] @ w)
    return a, b[::-1]


def phi_gram(a: list, b: list) -> np.ndarray:
    """``2 Phi^T Phi = 2 sum_k (A_k^T A_k) kron (B_k B_k^T)`` (eq. 20)."""
    return 2.0 * sum(np.kron(ak.T @ ak, bk @ bk.T) for ak, bk in zip(a, b, strict=True))


def _weights_sigma(weights: Any, sigma_x: Any) -> tuple[list[np.ndarray], np.ndarray | None]:
    ws = as_weights(weights)
    return ws, sqrt_covariance(sigma_x, ws[0].shape[1])


def phi(weights: Any, sigma_x: Any = None) -> np.ndarray:
    """The matrix ``Phi = [Phi_1; ...; Phi_m]`` of Lemma 3.

    ``Phi_k = (W_{k-1}...W_1 Sigma^(1/2)) kron (Wm...W_{k+1})^T``.

    Eq. (16); ``Phi`` has shape ``(N, d_x d_y)`` with ``N = sum_k d_k d_{k-1}``.
    """
    ws, root = _weights_sigma(weights, sigma_x)
    a, b = layer_blocks(ws, root)
    return np.vstack([np.kron(ak, bk.T) for ak, bk in zip(a, b, strict=True)])


def hessian_at_minimum(weights: Any, sigma_x: Any = None) -> np.ndarray:
    """Dense ``N x N`` Hessian ``2 Phi Phi^T`` of the loss at a global minimum (Lemma 3, eq. 15).

    ``weights`` is assumed to lie on ``Omega``; elsewhere this is the Gauss-Newton matrix
    (the residual term of eq. S42 is dropped). Its rank is at most ``d_x d_y``.
    """
    p = phi(weights, sigma_x)
    return 2.0 * p @ p.T


def sharpness(weights: Any, sigma_x: Any = None) -> float:
    """Sharpness ``lambda_max(H_w) = lambda_max(2 Phi^T Phi)`` at a global minimum (eq. 20).

    Uses the ``d_x d_y x d_x d_y`` operator ``2 sum_k (A_k^T A_k) kron (B_k B_k^T)`` and never
    forms the ``N x N`` Hessian. ``weights`` is assumed to lie on ``Omega`` (see
    :func:`hessian_at_minimum`).
    """
    ws, root = _weights_sigma(weights, sigma_x)
    return float(np.linalg.eigvalsh(phi_gram(*layer_blocks(ws, root)))[-1])


def top_eigenvector(weights: Any, sigma_x: Any = None) -> np.ndarray:
    """Unit top eigenvector ``Phi c / ||Phi c||`` of the Hessian at a minimum (eqs. 15, 20).

    ``c`` is the top eigenvector of ``2 Phi^T Phi``; ``Phi_k c = vec(B_k^T C A_k^T)`` with
    ``c = vec(C)`` (P1). The sign is fixed so that the largest-magnitude entry is positive.
    """
    ws, root = _weights_sigma(weights, sigma_x)
    a, b = layer_blocks(ws, root)
    c = np.linalg.eigh(phi_gram(a, b))[1][:, -1]
    cm = c.reshape(b[0].shape[0], a[0].shape[1], order="F")
    vec = np.concatenate([(bk.T @ cm @ ak.T).ravel(order="F") for ak, bk in zip(a, b, strict=True)])
    vec /= np.linalg.norm(vec)
    return vec if vec[np.argmax(np.abs(vec))] > 0 else -vec


def nu(B: Any, T: Any, m: int, sigma_x: Any = None) -> float:
    """Lower bound ``nu(B) = 2m ||(B Sigma^(1/2) T^T)^(m-1) B Sigma^(1/2)||_2^(2/m)`` (eq. 25).

    For every global minimum and every ``B`` with ``||B||_F = 1``, ``lambda_max(H_w) >= nu(B)``
    (eqs. 21-25); under A2 its maximum over unit ``B`` is the Theorem 1 value, attained at
    ``B = u v^T`` (eq. 26, App. V.2). ``B`` has the shape of ``T`` (``d_y x d_x``).
    """
    t = as_target_matrix(T)
    bm = as_float_array(B, "B", ndim=2)
    m = as_int(m, "m", minimum=1)
    if bm.shape != t.shape:
        raise ValueError(f"B must have the shape of T {t.shape}, got {bm.shape}")
    root = sqrt_covariance(sigma_x, t.shape[1])
    bs = bm if root is None else bm @ root
    mat = np.linalg.matrix_power(bs @ t.T, m - 1) @ bs
    return float(2.0 * m * np.linalg.norm(mat, 2) ** (2.0 / m))


def flattest_sharpness(T: Any, m: int) -> float:
    """Sharpness of the flattest minima, ``2m sigma_max(T)^(2(1 - 1/m))`` (Theorem 1, eq. 17).

    Valid under assumptions A1 and A2 (``Sigma_x = I``).
    """
    t = as_target_matrix(T)
    m = as_int(m, "m", minimum=1)
    return float(2.0 * m * np.linalg.norm(t, 2) ** (2.0 * (1.0 - 1.0 / m)))


def max_stable_step(T: Any, m: int) -> float:
    """Largest GD step size stable at a flattest minimum, ``2 / lambda_min`` (eq. S4, Theorem 1)."""
    value = flattest_sharpness(T, m)
    if value == 0.0:
        raise ValueError("T must be nonzero: the flattest sharpness is 0 and every step is stable")
    return 2.0 / value


# ----------------------------------------------------------------------------- Theorems 2-4


def partial_gains(weights: Any) -> list[np.ndarray]:
    """Singular values (descending) of ``W_k ... W_1`` for ``k = 1..m`` (Theorem 2, Fig. 3)."""
    ws = as_weights(weights)
    out, product = [], None
    for w in ws:
        product = w if product is None else w @ product
        out.append(np.linalg.svd(product, compute_uv=False))
    return out


def gain_bound(T: Any, m: int, k: int) -> float:
    """Bound ``sqrt(m) sigma_max(T)^(k/m)`` on ``sigma_max(W_k...W_1)`` (Theorem 2(ii))."""
    t = as_target_matrix(T)
    m = as_int(m, "m", minimum=1)
    k = as_int(k, "k", minimum=0)
    if k > m:
        raise ValueError(f"k must satisfy 0 <= k <= m = {m}, got {k}")
    return float(np.sqrt(m) * np.linalg.norm(t, 2) ** (k / m))


def v_gains(weights: Any, T: Any) -> np.ndarray:
    """Gains ``||W_k ... W_1 v||`` for ``k = 1..m`` of the top right singular vector ``v`` of ``T``.

    At a flattest minimum they equal ``sigma_max(T)^(k/m)`` (Theorem 2(i)). ``weights`` must
    lie on ``Omega``.
    """
    ws = as_weights(weights)
    t = as_target_matrix(T)
    require_minimum(ws, t)
    _, _, v = top_singular(t)
    out, signal = [], v
    for w in ws:
        signal = w @ signal
        out.append(np.linalg.norm(signal))
    return np.array(out)


def signal_path(weights: Any, T: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Theorem 3's unit vectors ``(r_bar_k, q_bar_k)``, ``k = 1..m``, along the network.

    ``r_k = W_{k-1}...W_1 v`` (what layer ``k`` receives when the input is ``v``) and
    ``q_k = W_{k+1}^T...W_m^T u`` (what it sends back from ``u``), each normalised, with
    ``T v = sigma_max(T) u``. At a flattest minimum ``(q_bar_k, r_bar_k)`` is a singular pair of
    ``W_k`` with value ``sigma_max(T)^(1/m)`` and ``r_bar_{k+1} = q_bar_k`` (Theorem 3).
    ``weights`` must lie on ``Omega``.
    """
    ws = as_weights(weights)
    t = as_target_matrix(T)
    require_minimum(ws, t)
    _, u, v = top_singular(t)
    r = [v]
    for w in ws[:-1]:
        r.append(w @ r[-1])
    q = [u]
    for w in ws[:0:-1]:
        q.append(w.T @ q[-1])
    q = q[::-1]
    return [x / np.linalg.norm(x) for x in r], [x / np.linalg.norm(x) for x in q]


@dataclass(frozen=True)
class CouplingErrors:
    """Distances from the exact layer coupling of Theorem 3 (all zero at a flattest minimum).

    With ``s = sigma_max(T)^(1/m)``, ``r_k = W_{k-1}...W_1 v``, ``q_k = (Wm...W_{k+1})^T u`` and
    bars denoting normalisation, for ``k = 1..m``:
    ``left[k-1] = ||W_k r_k_bar - s q_k_bar||`` and ``right[k-1] = ||W_k^T q_k_bar - s r_k_bar||``
    (Theorem 3(i)); for ``k = 1..m-1``: ``link[k-1] = ||r_{k+1}_bar - q_k_bar||`` (Theorem 3(ii)).
    """

    left: np.ndarray
    right: np.ndarray
    link: np.ndarray


def coupling_errors(weights: Any, T: Any) -> CouplingErrors:
    """How far each layer is from Theorem 3's singular pair ``(q_k_bar, r_k_bar)`` and coupling.

    ``weights`` must lie on ``Omega``; see :class:`CouplingErrors` for the three error arrays.
    """
    ws = as_weights(weights)
    t = as_target_matrix(T)
    rb, qb = signal_path(ws, t)
    s = top_singular(t)[0] ** (1.0 / len(ws))
    left = [np.linalg.norm(w @ rb[k] - s * qb[k]) for k, w in enumerate(ws)]
    right = [np.linalg.norm(w.T @ qb[k] - s * rb[k]) for k, w in enumerate(ws)]
    link = [np.linalg.norm(rb[k + 1] - qb[k]) for k in range(len(ws) - 1)]
    return CouplingErrors(left=np.array(left), right=np.array(right), link=np.array(link))


@dataclass(frozen=True)
class FlatnessReport:
    """Result of :func:`is_flattest`.

    ``theorem4_condition``: every ``sigma_max(W_k)`` equals ``sigma_max(T)^(1/m)`` within ``tol``
    (relative), the sufficient condition of Theorem 4. ``relative_gap`` is
    ``(sharpness - flattest_sharpness) / flattest_sharpness`` and ``is_flattest`` is
    ``relative_gap <= tol`` (Theorem 1).
    """

    theorem4_condition: bool
    sharpness: float
    flattest_sharpness: float
    relative_gap: float
    is_flattest: bool


def is_flattest(weights: Any, T: Any, tol: float = 1e-8) -> FlatnessReport:
    """Test a global minimum for flatness: Theorem 4's condition and the Theorem 1 value (eq. 17).

    Assumes A1 and A2; ``weights`` must lie on ``Omega`` and ``T`` be nonzero.
    """
    ws = as_weights(weights)
    t = as_target_matrix(T)
    tol = as_float(tol, "tol", positive=True)
    require_minimum(ws, t)
    sigma, _, _ = top_singular(t)
    m = len(ws)
    s = sigma ** (1.0 / m)
    tops = np.array([np.linalg.norm(w, 2) for w in ws])
    value = sharpness(ws)
    best = flattest_sharpness(t, m)
    gap = (value - best) / best
    return FlatnessReport(
        theorem4_condition=bool(np.all(np.abs(tops - s) <= tol * s)),
        sharpness=value,
        flattest_sharpness=best,
        relative_gap=float(gap),
        is_flattest=bool(gap <= tol),
    )


def balancedness(weights: Any) -> np.ndarray:
    """``||W_k W_k^T - W_{k+1}^T W_{k+1}||_F`` for ``k = 1..m-1`` (eq. S5; zero when balanced)."""
    ws = as_weights(weights)
    return np.array(
        [np.linalg.norm(a @ a.T - b.T @ b) for a, b in zip(ws[:-1], ws[1:], strict=True)]
    )


# ----------------------------------------------------------------------------- training


@dataclass(frozen=True)
class LinearGDResult:
    """Outcome of :func:`gradient_descent`: losses per iterate, final weights, divergence flag.

    ``losses`` has ``k + 1`` entries (``k = steps`` unless the run diverged, in which case it
    stopped at the last finite iterate, which ``weights`` holds).
    """

    losses: np.ndarray
    weights: list[np.ndarray]
    diverged: bool


def gradient_descent(weights0: Any, X: Any, Y: Any, eta: float, steps: int) -> LinearGDResult:
    """Full-batch gradient descent on the loss of eq. (2) (Lemma 1, App. II).

    Uses ``grad_{W_k} l = 2 B_k^T (P Sigma_x - Sigma_yx) A_k^T`` with ``P = Wm...W1``,
    ``A_k = W_{k-1}...W_1`` and ``B_k = Wm...W_{k+1}``. Divergence (overflow or NaN) ends the
    run and is reported rather than raised.
    """
    ws = [w.copy() for w in as_weights(weights0, "weights0")]
    x, y = _data(X, Y)
    eta = as_float(eta, "eta", positive=True)
    steps = as_int(steps, "steps", minimum=0)
    n = x.shape[0]
    product = _product(ws)
    if product.shape != (y.shape[1], x.shape[1]):
        raise ValueError(
            f"weights0 maps R^{product.shape[1]} to R^{product.shape[0]} but X, Y have "
            f"{x.shape[1]} and {y.shape[1]} columns"
        )
    sigma_x = x.T @ x / n
    sigma_yx = y.T @ x / n

    def objective(p: np.ndarray) -> float:
        return float(np.sum((y - x @ p.T) ** 2) / n)

    losses = [objective(product)]
    diverged = False
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            a, b = layer_blocks(ws, None)
            grad_p = 2.0 * (_product(ws) @ sigma_x - sigma_yx)
            new = [w - eta * (bk.T @ grad_p @ ak.T) for w, ak, bk in zip(ws, a, b, strict=True)]
            value = objective(_product(new))
            if not np.isfinite(value) or not all(np.all(np.isfinite(w)) for w in new):
                diverged = True
                break
            ws = new
            losses.append(value)
    return LinearGDResult(losses=np.array(losses), weights=ws, diverged=diverged)

