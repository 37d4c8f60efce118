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

The flattening algorithms (App. IX.1) live in :mod:`flatlib.theory.flattening`.

The last sections hold what chapters 4-8 measure and construct: the autograd Hessian of eq. (2)
(:func:`autograd_hessian`) and its numerical rank; the intermediate gains and the layer path of
Theorems 2-3 (:func:`gains_profile`, :func:`theorem2_errors`, :func:`layer_path`); the rescaled
family and the bounds of Theorem 4 (:func:`rescaled_minimum`, :func:`theorem4_bounds`); and the
GD runs of Lemma 1 (:func:`lemma1_step_bound`, :func:`gd_path`, :func:`lemma1_runs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from flatlib._validation import as_float, as_float_array, as_int, as_weights

__all__ = [
    "CONVERGED_LOSS",
    "CouplingErrors",
    "FlatnessReport",
    "GDPath",
    "GainsProfile",
    "LEMMA1_SINGULAR_VALUES",
    "LayerPath",
    "Lemma1Runs",
    "LinearGDResult",
    "RANK_RTOL",
    "apply_gauge",
    "as_target_matrix",
    "autograd_hessian",
    "balancedness",
    "canonical_minimum",
    "coupling_errors",
    "diagonal_sharpness",
    "end_to_end",
    "flattest_sharpness",
    "gain_bound",
    "gains_profile",
    "gauge_checked",
    "gd_path",
    "gradient_descent",
    "hessian_at_minimum",
    "identity_init",
    "is_flattest",
    "layer_blocks",
    "layer_path",
    "lemma1_runs",
    "lemma1_step_bound",
    "loss",
    "matrix_root",
    "max_stable_step",
    "near_identity_init",
    "nu",
    "numerical_rank",
    "optimal_map",
    "partial_gains",
    "phi",
    "phi_gram",
    "random_T",
    "random_minimum",
    "random_target",
    "require_minimum",
    "rescaled_diagonals",
    "rescaled_minimum",
    "second_moment",
    "sharpness",
    "signal_path",
    "spectrum_at_minimum",
    "sqrt_covariance",
    "square_target",
    "target_map",
    "theorem2_errors",
    "theorem4_bounds",
    "theorem4_interval",
    "top_eigenvector",
    "top_singular",
    "uncoupled_layers",
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
    """Raise ``ValueError`` unless ``Wm ... W1 = T`` within ``OMEGA_RTOL`` (eq. 4)."""
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
    """Largest GD step size stable at a flattest minimum, ``2 / lambda_0`` (eq. S4, Theorem 1).

    ``lambda_0 = min_Omega lambda_max(H_w) = 2m sigma_max(T)^(2(1 - 1/m))`` is the sharpness
    of the flattest minima (eq. 29).
    """
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


# --------------------------------------------------------------- chapters 4-5: the Hessian measured


RANK_RTOL = 1e-10
"""Eigenvalues below ``RANK_RTOL * lambda_max`` count as zero (float64 rounding is ~1e-16)."""


def autograd_hessian(weights: Any, X: Any, Y: Any) -> np.ndarray:
    """Hessian of the loss of eq. (2) w.r.t. ``w = [vec(W1); ...; vec(Wm)]`` by autograd.

    Uses ``torch.func.hessian`` in float64 on the data ``X`` (``n x d_x``) and ``Y``
    (``n x d_y``); ``vec`` stacks columns, as property (P1) of App. IV requires, so the result
    is directly comparable with ``2 Phi Phi^T`` of eqs. (15)-(16). Valid anywhere, not only
    at a minimum.
    """
    import torch

    ws = as_weights(weights)
    x = torch.as_tensor(np.asarray(X, dtype=float), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(Y, dtype=float), dtype=torch.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError("X and Y must be 2-D with the same number of rows")
    if x.shape[1] != ws[0].shape[1] or y.shape[1] != ws[-1].shape[0]:
        raise ValueError("weights do not map the columns of X to the columns of Y")
    shapes = [w.shape for w in ws]
    w0 = torch.as_tensor(np.concatenate([w.ravel(order="F") for w in ws]), dtype=torch.float64)
    n = x.shape[0]

    def loss(w: torch.Tensor) -> torch.Tensor:
        out, start = x.T, 0
        for rows, cols in shapes:
            # column-stacked vec: entries (rows * cols) reshape to (cols, rows), then transpose
            mat = w[start : start + rows * cols].reshape(cols, rows).T
            out = mat @ out
            start += rows * cols
        return ((y.T - out) ** 2).sum() / n

    return torch.func.hessian(loss)(w0).detach().numpy()


def spectrum_at_minimum(weights: Any, sigma_x: Any = None) -> np.ndarray:
    """Eigenvalues of ``H_w = 2 Phi Phi^T`` (eq. 15) in descending order, all ``N`` of them."""
    return np.linalg.eigvalsh(hessian_at_minimum(weights, sigma_x))[::-1]


def numerical_rank(eigenvalues: Any, rtol: float = RANK_RTOL) -> int:
    """Number of eigenvalues above ``rtol * max |eigenvalue|`` (the nonzero ones, Lemma 3)."""
    ev = np.asarray(eigenvalues, dtype=float)
    top = float(np.max(np.abs(ev))) if ev.size else 0.0
    return int(np.sum(ev > rtol * top)) if top > 0 else 0


def random_T(d_y: int, d_x: int, sigma_max: float, seed: int = 0) -> np.ndarray:
    """A Gaussian ``d_y x d_x`` target map rescaled so that ``sigma_max(T) = sigma_max``."""
    t = np.random.default_rng(seed).standard_normal((d_y, d_x))
    return sigma_max * t / np.linalg.norm(t, 2)


# ---------------------------------------------------------- chapters 6-7: Theorems 2 and 3 measured


def target_map(d: int, seed: int = 0) -> np.ndarray:
    """A ``d x d`` end-to-end map ``T`` with i.i.d. ``N(0, 1)`` entries drawn from ``seed``."""
    d = as_int(d, "d", minimum=1)
    return np.random.default_rng(seed).standard_normal((d, d))


@dataclass(frozen=True)
class GainsProfile:
    """What Fig. 3 draws for one minimum (see :func:`gains_profile`).

    ``singular_values[k-1]``: singular values of ``P_k = W_k ... W_1`` (blue dots);
    ``v_gain[k-1] = ||P_k v||`` (red circles, Theorem 2(i)); ``bound[k-1] = sqrt(m)
    sigma_max^(k/m)`` (dotted line, Theorem 2(ii)); ``flattest_gain[k-1] = sigma_max^(k/m)``.
    """

    ks: np.ndarray
    singular_values: list[np.ndarray]
    v_gain: np.ndarray
    bound: np.ndarray
    flattest_gain: np.ndarray
    sharpness: float
    flattest_sharpness: float


def gains_profile(weights: Any, T: Any) -> GainsProfile:
    """Intermediate gains of a global minimum, as in Fig. 3 (Theorem 2).

    Uses :func:`flatlib.theory.linear.partial_gains`, :func:`flatlib.theory.linear.v_gains` and
    :func:`flatlib.theory.linear.gain_bound`; also records ``lambda_max(H_w)`` (eq. 20) and the
    Theorem 1 value (eq. 17), so a plot can say how flat the minimum is.
    """
    ws = as_weights(weights)
    t = as_target_matrix(T)
    m = len(ws)
    sigma = float(np.linalg.norm(t, 2))
    ks = np.arange(1, m + 1)
    return GainsProfile(
        ks=ks,
        singular_values=partial_gains(ws),
        v_gain=v_gains(ws, t),
        bound=np.array([gain_bound(t, m, int(k)) for k in ks]),
        flattest_gain=sigma ** (ks / m),
        sharpness=sharpness(ws),
        flattest_sharpness=flattest_sharpness(t, m),
    )


def _svd_matched(matrix: np.ndarray, vector: np.ndarray, side: str) -> tuple[int, float]:
    """Index and ``|cos|`` of the singular vector of ``matrix`` best aligned with ``vector``."""
    uu, _, vt = np.linalg.svd(matrix)
    basis = vt if side == "right" else uu.T
    cos = np.abs(basis @ (vector / np.linalg.norm(vector)))
    j = int(np.argmax(cos[: min(matrix.shape)]))
    return j, float(cos[j])


def theorem2_errors(weights: Any, T: Any) -> dict[str, float]:
    """Theorem 2 measured with ``np.linalg.svd`` of the partial products, worst case over ``k``.

    For ``k = 1..m-1`` with ``P_k = W_k ... W_1`` and ``Q_k = Wm ... W_{k+1}`` (App. VI):

    * ``"v singular vector"``: ``1 - |cos|`` between ``v`` and the right singular vector of
      ``P_k`` best aligned with it (Theorem 2(i): 0);
    * ``"v singular value"``: relative error of that singular value against
      ``sigma_max^(k/m)`` (Theorem 2(i));
    * ``"u singular vector"``, ``"u singular value"``: the same for ``u``, the left singular
      vectors of ``Q_k`` and ``sigma_max^(1 - k/m)`` (Theorem 2(iii));
    * ``"bound ratio"``: ``max_k sigma_max(P_k) / (sqrt(m) sigma_max^(k/m))`` (Theorem 2(ii):
      at most 1).

    Nothing here calls the library's gain functions; ``T``'s SVD is also taken afresh.
    """
    ws = as_weights(weights)
    t = as_target_matrix(T)
    m = len(ws)
    if m < 2:
        raise ValueError(f"weights must have at least two layers, got m = {m}")
    uu, s, vt = np.linalg.svd(t)
    sigma, u, v = s[0], uu[:, 0], vt[0]
    out = dict.fromkeys(
        ["v singular vector", "v singular value", "u singular vector", "u singular value"], 0.0
    )
    ratio = 0.0
    for k in range(1, m):
        p = ws[0]
        for w in ws[1:k]:
            p = w @ p
        q = ws[k]
        for w in ws[k + 1 :]:
            q = w @ q
        sv_p = np.linalg.svd(p, compute_uv=False)
        sv_q = np.linalg.svd(q, compute_uv=False)
        jp, cos_p = _svd_matched(p, v, "right")
        jq, cos_q = _svd_matched(q, u, "left")
        out["v singular vector"] = max(out["v singular vector"], 1 - cos_p)
        out["u singular vector"] = max(out["u singular vector"], 1 - cos_q)
        want_p, want_q = sigma ** (k / m), sigma ** (1 - k / m)
        out["v singular value"] = max(out["v singular value"], abs(sv_p[jp] / want_p - 1))
        out["u singular value"] = max(out["u singular value"], abs(sv_q[jq] / want_q - 1))
        ratio = max(ratio, sv_p[0] / (np.sqrt(m) * want_p))
    out["bound ratio"] = float(ratio)
    return out


@dataclass(frozen=True)
class LayerPath:
    """The path of ``v`` through the layers (Theorem 3; see :func:`layer_path`).

    For layer ``k = 1..m`` (index ``k-1``): ``singular_values[k-1]`` are those of ``W_k``;
    ``path_gain[k-1] = ||W_k r_k_bar||`` with ``r_k = W_{k-1} ... W_1 v``; ``matched[k-1]`` is
    the index of the singular triple ``(a, sigma, b)`` of ``W_k`` whose right vector ``b`` is
    best aligned with ``r_k_bar``, and ``matched_value[k-1]`` its singular value. The chain
    ``interface_cos`` (length ``m + 1``) holds ``|cos|`` between consecutive matched singular
    vectors: ``|<v, b_1>|``, ``|<a_k, b_{k+1}>|`` for ``k = 1..m-1``, ``|<a_m, u>|``.
    ``link_cos[k-1] = <q_k_bar, r_{k+1}_bar>`` for ``k = 1..m-1`` (Theorem 3(ii)). ``s`` is
    ``sigma_max(T)^(1/m)``.
    """

    s: float
    singular_values: list[np.ndarray]
    path_gain: np.ndarray
    matched: np.ndarray
    matched_value: np.ndarray
    interface_cos: np.ndarray
    link_cos: np.ndarray


def layer_path(weights: Any, T: Any) -> LayerPath:
    """The vectors ``r_k``, ``q_k`` of Theorem 3 and the singular pairs of each ``W_k`` they use.

    ``r_k = W_{k-1} ... W_1 v`` and ``q_k = (Wm ... W_{k+1})^T u``; at a flattest minimum
    ``(q_k_bar, r_k_bar)`` is a singular pair of ``W_k`` with value ``sigma_max^(1/m)``
    (Theorem 3(i)) and ``r_{k+1}_bar = q_k_bar`` (Theorem 3(ii)), so every entry of
    ``interface_cos`` and ``link_cos`` is 1. Computed from ``np.linalg.svd`` of each layer.
    """
    ws = as_weights(weights)
    t = as_target_matrix(T)
    rb, qb = signal_path(ws, t)
    m = len(ws)
    uu, s, vt = np.linalg.svd(t)
    u, v = uu[:, 0], vt[0]
    svals, matched, lefts, rights = [], [], [], []
    for w, rk in zip(ws, rb, strict=True):
        a, sv, bt = np.linalg.svd(w)
        n = sv.size
        j = int(np.argmax(np.abs(bt[:n] @ rk)))
        sign = np.sign(bt[j] @ rk) or 1.0
        svals.append(sv)
        matched.append(j)
        rights.append(sign * bt[j])
        lefts.append(sign * a[:, j])
    chain = [abs(v @ rights[0])]
    chain += [abs(lefts[k] @ rights[k + 1]) for k in range(m - 1)]
    chain.append(abs(lefts[-1] @ u))
    return LayerPath(
        s=float(s[0] ** (1.0 / m)),
        singular_values=svals,
        path_gain=np.array([np.linalg.norm(w @ rk) for w, rk in zip(ws, rb, strict=True)]),
        matched=np.array(matched),
        matched_value=np.array([sv[j] for sv, j in zip(svals, matched, strict=True)]),
        interface_cos=np.array(chain),
        link_cos=np.array([qb[k] @ rb[k + 1] for k in range(m - 1)]),
    )


# ----------------------------------------------------------------------------- chapter 8: Theorem 4


CONVERGED_LOSS = 1e-12
"""A run counts as converged to a global minimum when its final loss is below this value."""


LEMMA1_SINGULAR_VALUES: tuple[float, ...] = (2.0, 1.5, 1.0)
"""Eigenvalues of the symmetric positive definite target of :func:`lemma1_runs` (Lemma 1(ii))."""


def _orthogonal(rng: np.random.Generator, d: int) -> np.ndarray:
    """A random ``d x d`` orthogonal matrix with determinant ``+1``."""
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def random_target(
    singular_values: Sequence[float], seed: int = 0, symmetric: bool = False
) -> np.ndarray:
    """A square ``T = U diag(singular_values) V^T`` with random orthogonal ``U``, ``V``.

    With ``symmetric=True``, ``V = U`` and ``T`` is symmetric positive definite (the setting of
    Lemma 1(ii)); the values must then be positive.
    """
    s = as_float_array(singular_values, "singular_values", ndim=1)
    if np.any(s < 0) or (symmetric and np.any(s <= 0)):
        raise ValueError(
            f"singular_values must be non-negative (positive when symmetric=True), got {s.tolist()}"
        )
    rng = np.random.default_rng(seed)
    u = _orthogonal(rng, s.size)
    v = u if symmetric else _orthogonal(rng, s.size)
    t = (u * s) @ v.T
    return (t + t.T) / 2 if symmetric else t


def square_target(T: Any) -> tuple[np.ndarray, np.ndarray]:
    """``T`` as a square array and its singular values (descending); ``T`` must be nonzero."""
    t = as_float_array(T, "T", ndim=2)
    if t.shape[0] != t.shape[1]:
        raise ValueError(f"T must be square (d_x = d_y), got shape {t.shape}")
    s = np.linalg.svd(t, compute_uv=False)
    if s[0] == 0:
        raise ValueError("T must be nonzero")
    return t, s


def rescaled_diagonals(T: Any, m: int, c: float) -> list[np.ndarray]:
    """Diagonals of the layers of :func:`rescaled_minimum` in the singular bases of ``T``.

    With ``s_i = sigma_i(T)^(1/m)``: layer 1 holds ``(s_1, c s_2, ..., c s_d)``, layer 2 holds
    ``(s_1, s_2 / c, ..., s_d / c)`` and every other layer ``(s_1, ..., s_d)`` (eq. 27 for
    ``c = 1``). The products are ``sigma_i(T)`` for every ``c > 0``.
    """
    _, s = square_target(T)
    m = as_int(m, "m", minimum=2)
    c = as_float(c, "c", positive=True)
    root = s ** (1.0 / m)
    scale = np.full(s.size, c)
    scale[0] = 1.0
    diags = [root.copy() for _ in range(m)]
    diags[0] = root * scale
    diags[1] = root / scale
    return diags


def rescaled_minimum(T: Any, m: int, c: float, seed: int | None = None) -> list[np.ndarray]:
    """A global minimum that keeps ``sigma_max(T)^(1/m)`` in every layer but rescales the rest.

    Starting from the canonical minimum (eq. 27), the gauge ``W_1 -> D W_1``,
    ``W_2 -> W_2 D^(-1)`` with ``D = diag(1, c, ..., c)`` (eq. S104 with ``A_1 = D^(-1)``) moves
    the non-top singular values of ``T`` from layer 2 to layer 1; see
    :func:`rescaled_diagonals`. With ``seed``, random orthogonal gauges (eq. S106 with
    orthogonal factors) then hide the diagonal structure without changing any singular value
    or the Hessian spectrum.
    """
    t, s = square_target(T)
    m = as_int(m, "m", minimum=2)
    c = as_float(c, "c", positive=True)
    d = s.size
    scale = np.full(d, c)
    scale[0] = 1.0
    ws = apply_gauge(canonical_minimum(t, m), [np.diag(1.0 / scale)] + [np.eye(d)] * (m - 2))
    if seed is None:
        return ws
    rng = np.random.default_rng(seed)
    return apply_gauge(ws, [_orthogonal(rng, d) for _ in range(m - 1)])


def theorem4_interval(T: Any, m: int) -> tuple[float, float]:
    """The rescalings ``c`` for which :func:`rescaled_minimum` meets Theorem 4's condition.

    The largest rescaled singular values are ``c sigma_2^(1/m)`` (layer 1) and
    ``sigma_2^(1/m) / c`` (layer 2); neither exceeds ``sigma_max(T)^(1/m)`` exactly when
    ``(sigma_2 / sigma_max)^(1/m) <= c <= (sigma_max / sigma_2)^(1/m)``. Outside, one of the two
    layers has a singular value above ``sigma_max(T)^(1/m)``. Needs ``d >= 2``, ``sigma_2 > 0``.
    """
    _, s = square_target(T)
    m = as_int(m, "m", minimum=2)
    if s.size < 2 or s[1] == 0:
        raise ValueError("T must be at least 2 x 2 with a nonzero second singular value")
    hi = float((s[0] / s[1]) ** (1.0 / m))
    return 1.0 / hi, hi


def diagonal_sharpness(diagonals: Sequence[Any]) -> float:
    """Sharpness of a global minimum whose layers are ``diag(a_k)`` in the singular bases of ``T``.

    For such layers, ``2 Phi^T Phi`` of eq. (20) is diagonal in the rotated variable
    ``U^T B V`` (App. V.3), with entry
    ``lambda_ij = 2 sum_k prod_{l>k} a_{l,i}^2 prod_{l<k} a_{l,j}^2``;
    the sharpness is ``max_ij lambda_ij``. ``diagonals`` is ``[a_1, ..., a_m]``, equal lengths.
    """
    if isinstance(diagonals, (str, bytes)) or not isinstance(diagonals, Sequence):
        raise TypeError("diagonals must be a sequence of 1-D arrays [a_1, ..., a_m]")
    if len(diagonals) < 1:
        raise ValueError("diagonals must hold at least one layer")
    a = [as_float_array(x, f"diagonals[{k}]", ndim=1) for k, x in enumerate(diagonals)]
    if len({x.size for x in a}) != 1:
        raise ValueError("diagonals must all have the same length")
    m, d = len(a), a[0].size
    total = np.zeros((d, d))
    for k in range(m):
        after = np.prod([x**2 for x in a[k + 1 :]], axis=0) if k < m - 1 else np.ones(d)
        before = np.prod([x**2 for x in a[:k]], axis=0) if k > 0 else np.ones(d)
        total += np.outer(after, before)
    return float(2.0 * total.max())


def theorem4_bounds(weights: Any) -> tuple[float, float]:
    """The two upper bounds on ``lambda_max(H_w)`` in the proof of Theorem 4 (App. VIII).

    Returns ``(separable, product)``: the separable relaxation (eqs. S99-S100),
    ``2 sum_k sigma_max(W_m...W_{k+1})^2 sigma_max(W_{k-1}...W_1)^2``, and its relaxation by
    sub-multiplicativity (eq. S101), ``2 sum_k prod_{i != k} sigma_max(W_i)^2``. Under
    Theorem 4's condition the product bound equals the Theorem 1 value (eqs. S102-S103).
    """
    ws = as_weights(weights)
    m = len(ws)
    tops = np.array([np.linalg.norm(w, 2) for w in ws])
    separable = 0.0
    for k in range(m):
        after = end_to_end(ws[k + 1 :]) if k < m - 1 else None
        before = end_to_end(ws[:k]) if k > 0 else None
        separable += (1.0 if after is None else np.linalg.norm(after, 2) ** 2) * (
            1.0 if before is None else np.linalg.norm(before, 2) ** 2
        )
    product = sum(np.prod(np.delete(tops, k) ** 2) for k in range(m))
    return float(2.0 * separable), float(2.0 * product)


def uncoupled_layers(T: Any, m: int, seed: int = 0) -> list[np.ndarray]:
    """Layers ``Q_k diag(sigma(T)^(1/m)) R_k^T`` with independent random orthogonal ``Q_k, R_k``.

    Every layer has the singular values of the canonical minimum (eq. 27), in particular
    ``sigma_max(W_k) = sigma_max(T)^(1/m)``, but consecutive singular vectors are not coupled.
    Then ``sigma_max(W_m...W_1) < sigma_max(T)`` (strict sub-multiplicativity), so these
    weights do not lie on ``Omega`` (eq. 4) and Theorem 4 does not apply.
    """
    _, s = square_target(T)
    m = as_int(m, "m", minimum=1)
    rng = np.random.default_rng(seed)
    root = s ** (1.0 / m)
    return [(_orthogonal(rng, s.size) * root) @ _orthogonal(rng, s.size).T for _ in range(m)]


# ------------------------------------------------------------------------------- chapter 8: Lemma 1


def lemma1_step_bound(T: Any, m: int) -> float:
    """Lemma 1(ii)'s step size ``(1 / 2m) min{1, sigma_max(T)^(-2(1 - 1/m))}``.

    For ``sigma_max(T) >= 1`` it is half the largest stable step ``2 / lambda_0`` of
    Theorem 1 (:func:`flatlib.theory.linear.max_stable_step`).
    """
    _, s = square_target(T)
    m = as_int(m, "m", minimum=1)
    return float(min(1.0, s[0] ** (-2.0 * (1.0 - 1.0 / m))) / (2.0 * m))


def matrix_root(T: Any, m: int) -> np.ndarray:
    """``T^(1/m)`` of a symmetric positive definite ``T``: the limit of GD in Lemma 1(ii).

    Every layer converges to it from the identity (App. II, after Nar & Sastry, 2018).
    """
    t, _ = square_target(T)
    m = as_int(m, "m", minimum=1)
    if not np.allclose(t, t.T, rtol=0, atol=1e-12 * np.abs(t).max()):
        raise ValueError("T must be symmetric (Lemma 1(ii))")
    evals, evecs = np.linalg.eigh((t + t.T) / 2)
    if evals[0] <= 0:
        raise ValueError(f"T must be positive definite, its smallest eigenvalue is {evals[0]:.3g}")
    return (evecs * evals ** (1.0 / m)) @ evecs.T


def near_identity_init(d: int, m: int, scale: float, seed: int = 0) -> list[np.ndarray]:
    """Random residual initialisation ``W_k = I + scale * G_k / sqrt(d)``, ``G_k`` i.i.d. N(0,1).

    ``scale = 0`` is :func:`flatlib.theory.linear.identity_init` (a linear ResNet with zero init,
    Lemma 1); ``scale > 0`` makes the layers unbalanced in the sense of eq. (S5).
    """
    d = as_int(d, "d", minimum=1)
    m = as_int(m, "m", minimum=1)
    scale = as_float(scale, "scale")
    if scale < 0:
        raise ValueError(f"scale must be non-negative, got {scale}")
    rng = np.random.default_rng(seed)
    return [np.eye(d) + scale * rng.standard_normal((d, d)) / np.sqrt(d) for _ in range(m)]


@dataclass(frozen=True)
class GDPath:
    """A gradient-descent run with its history (see :func:`gd_path`).

    ``losses[t]`` is the loss at iterate ``t = 0..k``; ``imbalance[j]`` holds the ``m - 1``
    values of :func:`balancedness` (eq. S5) at iterate ``imbalance_steps[j]``;
    ``weights`` is the last iterate; ``diverged`` as in :class:`LinearGDResult`.
    """

    losses: np.ndarray
    imbalance: np.ndarray
    imbalance_steps: np.ndarray
    weights: list[np.ndarray]
    diverged: bool

    @property
    def converged(self) -> bool:
        """Whether the run ended at a global minimum (final loss below ``CONVERGED_LOSS``)."""
        return (not self.diverged) and bool(self.losses[-1] < CONVERGED_LOSS)


def gd_path(weights0: Any, X: Any, Y: Any, eta: float, steps: int, record_every: int = 1) -> GDPath:
    """Full-batch GD on the loss of eq. (2) by :func:`gradient_descent`, with the
    imbalance ``||W_k W_k^T - W_{k+1}^T W_{k+1}||_F`` of eq. (S5) recorded along the way.

    The loss is kept at every iterate; the imbalance at iterates ``0, r, 2r, ...`` (and the
    last one), ``r = record_every``, at the times ``imbalance_steps``.
    """
    ws = as_weights(weights0, "weights0")
    steps = as_int(steps, "steps", minimum=0)
    record_every = as_int(record_every, "record_every", minimum=1)
    losses = [np.array([loss(ws, X, Y)])]
    imbalance = [balancedness(ws)]
    times = [0]
    diverged = False
    done = 0
    while done < steps and not diverged:
        chunk = min(record_every, steps - done)
        run = gradient_descent(ws, X, Y, eta, chunk)
        diverged = run.diverged
        ws = run.weights
        done += run.losses.size - 1
        losses.append(run.losses[1:])
        if run.losses.size > 1:
            imbalance.append(balancedness(ws))
            times.append(done)
    return GDPath(
        losses=np.concatenate(losses),
        imbalance=np.array(imbalance).reshape(len(times), -1),
        imbalance_steps=np.array(times),
        weights=ws,
        diverged=diverged,
    )


@dataclass(frozen=True)
class Lemma1Runs:
    """Identity and random initialisations for one depth and step size (see :func:`lemma1_runs`).

    ``T``: the symmetric positive definite target; ``eta``: the step used, equal to
    ``eta_factor * eta_bound`` with ``eta_bound`` from :func:`lemma1_step_bound`;
    ``flattest``: the Theorem 1 value (eq. 17); ``identity`` and ``random``: the runs.
    """

    T: np.ndarray
    m: int
    eta: float
    eta_factor: float
    eta_bound: float
    flattest: float
    identity: GDPath
    random: tuple[GDPath, ...]


def lemma1_runs(
    m: int,
    eta_factor: float,
    steps: int = 400,
    n_random: int = 4,
    scale: float = 0.5,
    singular_values: Sequence[float] = LEMMA1_SINGULAR_VALUES,
    seed: int = 0,
    record_every: int = 5,
) -> Lemma1Runs:
    """GD from the identity and from :func:`near_identity_init` on white data (Lemma 1(ii)).

    ``T`` is symmetric positive definite with the given eigenvalues (:func:`random_target`),
    the data are :func:`flatlib.theory.linear.whitened_data` with ``n = d`` samples, and the step is
    ``eta_factor`` times the bound of Lemma 1(ii). The imbalance (S5) is recorded every
    ``record_every`` steps (:func:`gd_path`).
    """
    m = as_int(m, "m", minimum=1)
    eta_factor = as_float(eta_factor, "eta_factor", positive=True)
    t = random_target(singular_values, seed=seed, symmetric=True)
    d = t.shape[0]
    x, y = whitened_data(t, d, seed=seed)
    bound = lemma1_step_bound(t, m)
    eta = eta_factor * bound
    ident = gd_path(identity_init(d, m), x, y, eta, steps, record_every)
    rand = tuple(
        gd_path(near_identity_init(d, m, scale, seed=seed + 1 + i), x, y, eta, steps, record_every)
        for i in range(n_random)
    )
    return Lemma1Runs(
        T=t,
        m=m,
        eta=eta,
        eta_factor=eta_factor,
        eta_bound=bound,
        flattest=flattest_sharpness(t, m),
        identity=ident,
        random=rand,
    )
