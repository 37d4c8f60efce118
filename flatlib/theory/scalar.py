"""Scalar linear networks: the warm-up of Sec. 3 and App. III of Mulayoff & Michaeli (2020).

Conventions
-----------
* A scalar network with ``m`` layers has weights ``w = [w_1, ..., w_m]`` and computes
  ``f_w(x) = (prod_j w_j) x`` (eq. 6). Weights are NumPy float64 vectors of shape ``(m,)``.
* The data enter only through ``sigma_x2 = E[x^2]`` (the paper's hat-sigma_x^2) and the optimal
  coefficient ``tau = E[xy] / E[x^2]`` (eq. S10). The set of global minima is
  ``Omega = {w : prod_j w_j = tau}`` (eq. 7).
* :func:`loss` is the *excess* loss ``l(w) - min l = sigma_x2 (prod_j w_j - tau)^2``, which has the
  same gradient and Hessian as the empirical loss (eq. S9).
* Functions that need a global minimum check ``|prod w - tau| <= 1e-8 |tau|`` and raise
  ``ValueError`` naming the argument otherwise.

The last two sections hold the runs and samples that chapters 2-3 show: GD next to the valley
(:func:`valley_sharpness`, :func:`fig1_run`) and the deceptive interpolation of Claim S1
(:func:`deceptive_triple`, :func:`segment_loss`, :func:`ranking_stats`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from flatlib._validation import as_float, as_float_array, as_int

__all__ = [
    "Fig1Run",
    "GDResult",
    "RankingStats",
    "deceptive_partner",
    "deceptive_triple",
    "fig1_run",
    "flattest_minima",
    "flattest_sharpness",
    "gradient",
    "gradient_descent",
    "hessian",
    "interpolation_curvatures",
    "looks_sharper",
    "loss",
    "random_positive_minima",
    "ranking_stats",
    "segment_loss",
    "sharpness",
    "valley_sharpness",
]

_OMEGA_RTOL = 1e-8


def _weights(w: Any, name: str = "w") -> np.ndarray:
    return as_float_array(w, name, ndim=1)


def _products_except_one(w: np.ndarray) -> np.ndarray:
    """``g_k = prod_{j != k} w_j`` along the last axis, computed without dividing by ``w_k``."""
    ones = np.ones(w.shape[:-1] + (1,))
    before = np.cumprod(np.concatenate([ones, w[..., :-1]], axis=-1), axis=-1)
    after = np.cumprod(np.concatenate([ones, w[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    return before * after


def _require_minimum(w: np.ndarray, tau: float, name: str) -> None:
    product = float(np.prod(w))
    if abs(product - tau) > _OMEGA_RTOL * max(abs(tau), np.finfo(float).tiny):
        raise ValueError(
            f"{name} is not a global minimum: prod({name}) = {product!r} but tau = {tau!r} "
            "(eq. 7 requires prod_j w_j = tau)"
        )


def loss(w: Any, tau: float, sigma_x2: float = 1.0) -> np.ndarray | float:
    """Excess quadratic loss ``sigma_x2 * (prod_j w_j - tau)^2`` of a scalar network (eq. S9).

    ``w`` has shape ``(..., m)``; the product runs over the last axis, so a grid of points of
    shape ``(a, b, m)`` gives an ``(a, b)`` array of losses (level sets of Fig. 1). Returns a
    float for a single point of shape ``(m,)``.
    """
    arr = as_float_array(w, "w")
    tau = as_float(tau, "tau")
    sigma_x2 = as_float(sigma_x2, "sigma_x2", positive=True)
    out = sigma_x2 * (np.prod(arr, axis=-1) - tau) ** 2
    return float(out) if arr.ndim == 1 else out


def gradient(w: Any, tau: float, sigma_x2: float = 1.0) -> np.ndarray:
    """Gradient ``2 sigma_x2 (prod_j w_j - tau) prod_{j != k} w_j`` of the loss (eq. S12).

    Vectorised over leading axes like :func:`loss`.
    """
    arr = as_float_array(w, "w")
    tau = as_float(tau, "tau")
    sigma_x2 = as_float(sigma_x2, "sigma_x2", positive=True)
    residual = np.prod(arr, axis=-1, keepdims=True) - tau
    return 2.0 * sigma_x2 * residual * _products_except_one(arr)


def hessian(w: Any, tau: float, sigma_x2: float = 1.0) -> np.ndarray:
    """Hessian ``2 sigma_x2 tau^2 z z^T`` with ``z = 1 / w`` at a global minimum (eq. 9).

    Evaluated in the division-free form ``2 sigma_x2 g g^T`` with ``g_k = prod_{j != k} w_j``
    (eq. S14), which equals eq. (9) on ``Omega`` and stays valid when ``tau = 0``.
    Returns an ``(m, m)`` rank-one matrix. ``w`` must lie on ``Omega`` (eq. 7).
    """
    arr = _weights(w)
    tau = as_float(tau, "tau")
    sigma_x2 = as_float(sigma_x2, "sigma_x2", positive=True)
    _require_minimum(arr, tau, "w")
    g = _products_except_one(arr)
    return 2.0 * sigma_x2 * np.outer(g, g)


def sharpness(w: Any, tau: float, sigma_x2: float = 1.0) -> float:
    """Top Hessian eigenvalue ``2 sigma_x2 tau^2 sum_j 1 / w_j^2`` at a global minimum (eq. 10)."""
    arr = _weights(w)
    tau = as_float(tau, "tau")
    sigma_x2 = as_float(sigma_x2, "sigma_x2", positive=True)
    _require_minimum(arr, tau, "w")
    g = _products_except_one(arr)
    return float(2.0 * sigma_x2 * np.dot(g, g))


def flattest_minima(tau: float, m: int) -> np.ndarray:
    """All ``2^(m-1)`` flattest minima ``|w_j| = |tau|^(1/m)``, sign product ``sgn(tau)`` (eq. 12).

    Returns an array of shape ``(2^(m-1), m)``; row ``i`` takes its first ``m - 1`` signs from
    the ``i``-th pattern of ``itertools.product((1, -1), ...)`` and its last sign so that the
    product equals ``tau``. ``tau`` must be nonzero (for ``tau = 0`` the set is not discrete).
    """
    tau = as_float(tau, "tau")
    m = as_int(m, "m", minimum=1)
    if tau == 0.0:
        raise ValueError("tau must be nonzero: for tau = 0 the flattest minima are not isolated")
    magnitude = abs(tau) ** (1.0 / m)
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=m - 1)), dtype=float)
    signs = signs.reshape(2 ** (m - 1), m - 1)
    last = np.sign(tau) * np.prod(signs, axis=1, keepdims=True)
    return magnitude * np.concatenate([signs, last], axis=1)


def flattest_sharpness(tau: float, m: int, sigma_x2: float = 1.0) -> float:
    """Sharpness of the flattest minima, ``2 m sigma_x2 |tau|^(2 (1 - 1/m))`` (eq. 13)."""
    tau = as_float(tau, "tau")
    m = as_int(m, "m", minimum=1)
    sigma_x2 = as_float(sigma_x2, "sigma_x2", positive=True)
    return 2.0 * m * sigma_x2 * abs(tau) ** (2.0 * (1.0 - 1.0 / m))


def interpolation_curvatures(
    w1: Any, w2: Any, tau: float, sigma_x2: float = 1.0
) -> tuple[float, float]:
    """Curvatures ``(c1, c2)`` of the loss along the segment joining two minima (eqs. S24-S26).

    With the unit direction ``alpha = (w1 - w2) / ||w1 - w2||``, ``c_i = alpha^T H(w_i) alpha``
    is the second derivative of ``t -> l(w_i + t alpha)`` at ``t = 0`` (Claim S1). Both points
    must lie on ``Omega`` and differ.
    """
    a = _weights(w1, "w1")
    b = _weights(w2, "w2")
    if a.shape != b.shape:
        raise ValueError(f"w1 and w2 must have the same shape, got {a.shape} and {b.shape}")
    diff = a - b
    norm = float(np.linalg.norm(diff))
    if norm == 0.0:
        raise ValueError("w1 and w2 must be different points")
    alpha = diff / norm
    h1 = hessian(a, tau, sigma_x2)
    h2 = hessian(b, tau, sigma_x2)
    return float(alpha @ h1 @ alpha), float(alpha @ h2 @ alpha)


def _positive_minima_pair(w1: Any, w2: Any) -> tuple[np.ndarray, np.ndarray]:
    a = _weights(w1, "w1")
    b = _weights(w2, "w2")
    if a.shape != b.shape:
        raise ValueError(f"w1 and w2 must have the same shape, got {a.shape} and {b.shape}")
    for arr, name in ((a, "w1"), (b, "w2")):
        if np.any(arr <= 0):
            raise ValueError(f"{name} must lie in the positive orthant (Claim S1 assumes w > 0)")
    pa, pb = float(np.prod(a)), float(np.prod(b))
    if abs(pa - pb) > _OMEGA_RTOL * abs(pa):
        raise ValueError(
            f"w1 and w2 must be minima of the same problem: prod(w1) = {pa!r}, prod(w2) = {pb!r}"
        )
    return a, b


def looks_sharper(w1: Any, w2: Any) -> bool:
    """Whether the interpolation plot shows ``w1`` sharper than ``w2`` (Claim S1, eq. S23).

    True iff ``sum_i w2_i / w1_i > sum_i w1_i / w2_i``. Both minima must be in the positive
    orthant and share the product ``tau``.
    """
    a, b = _positive_minima_pair(w1, w2)
    return bool(np.sum(b / a) > np.sum(a / b))


def deceptive_partner(w1: Any, w2: Any) -> np.ndarray:
    """The minimum ``w3 = w1^2 / w2`` (elementwise) of eq. (S29) that flips the verdict.

    If the interpolation plot shows ``w2`` sharper than ``w1``, it shows ``w1`` sharper than
    ``w3`` (eq. S31); with ``w1`` flattest this is Lemma 2. Positive-orthant minima only.
    """
    a, b = _positive_minima_pair(w1, w2)
    return a**2 / b


@dataclass(frozen=True)
class GDResult:
    """Outcome of :func:`gradient_descent` on a scalar network.

    ``trajectory`` has shape ``(k + 1, m)`` (``k = steps`` unless the run diverged) and
    ``losses`` the excess loss at each row; ``diverged`` is True when an iterate overflowed or
    became NaN, in which case the run stopped at the last finite iterate.
    """

    trajectory: np.ndarray
    losses: np.ndarray
    diverged: bool


def gradient_descent(
    w0: Any,
    tau: float,
    eta: float,
    steps: int,
    momentum: float = 0.0,
    sigma_x2: float = 1.0,
) -> GDResult:
    """Heavy-ball gradient descent ``w+ = w - eta grad l(w) + momentum (w - w_prev)`` (eq. S12).

    ``momentum = 0`` is plain GD (Fig. 1 shows both). Divergence (overflow or NaN) ends the run
    and is reported in ``diverged`` instead of raising.
    """
    w = _weights(w0, "w0")
    tau = as_float(tau, "tau")
    eta = as_float(eta, "eta", positive=True)
    steps = as_int(steps, "steps", minimum=0)
    momentum = as_float(momentum, "momentum")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
    sigma_x2 = as_float(sigma_x2, "sigma_x2", positive=True)

    trajectory = [w.copy()]
    previous = w.copy()
    diverged = False
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            grad = 2.0 * sigma_x2 * (np.prod(w) - tau) * _products_except_one(w)
            new = w - eta * grad + momentum * (w - previous)
            if not np.all(np.isfinite(new)) or not np.isfinite(np.prod(new) ** 2):
                diverged = True
                break
            previous, w = w, new
            trajectory.append(w.copy())
    path = np.array(trajectory)
    losses = sigma_x2 * (np.prod(path, axis=1) - tau) ** 2
    return GDResult(trajectory=path, losses=losses, diverged=diverged)


# ------------------------------------------------- chapter 2: GD next to the valley (Fig. 1)


def valley_sharpness(w: np.ndarray, tau: float, sigma_x2: float = 1.0) -> np.ndarray:
    """``2 sigma_x2 sum_k (prod_{j != k} w_j)^2`` for each row of ``w`` (eq. S14).

    On ``Omega`` this is the sharpness of eq. (10), ``2 sigma_x2 tau^2 sum_j 1 / w_j^2``; off
    ``Omega`` it is the Gauss-Newton part of the Hessian, a smooth way to follow the sharpness of
    the valley point an iterate is next to.
    """
    arr = np.atleast_2d(np.asarray(w, dtype=float))
    g = np.stack([np.prod(np.delete(arr, k, axis=1), axis=1) for k in range(arr.shape[1])], axis=1)
    return 2.0 * sigma_x2 * np.sum(g**2, axis=1)


@dataclass(frozen=True)
class Fig1Run:
    """One GD run of Fig. 1: where it started, the path, and the stability levels.

    ``star`` is the sharp minimum ``(w1, tau / w1)``; ``result.trajectory`` starts 1% off it;
    ``threshold`` is the largest sharpness heavy-ball GD can rest at, ``2 (1 + momentum) / eta``
    (``2 / eta`` for plain GD, eq. S4).
    """

    star: np.ndarray
    result: GDResult
    eta: float
    momentum: float
    tau: float
    threshold: float

    @property
    def final(self) -> np.ndarray:
        """The last iterate."""
        return self.result.trajectory[-1]

    @property
    def final_sharpness(self) -> float:
        """Eq. (10) (via eq. S14) at the last iterate."""
        return float(valley_sharpness(self.final, self.tau)[0])


def fig1_run(
    eta: float, momentum: float, start: float, tau: float = 1.0, steps: int = 2000
) -> Fig1Run:
    """Run GD (heavy-ball if ``momentum > 0``) from 1% off the minimum ``(start, tau/start)``."""
    star = np.array([start, tau / start])
    w0 = np.array([start, 1.01 * tau / start])
    result = gradient_descent(w0, tau, eta, steps, momentum=momentum)
    return Fig1Run(star, result, eta, momentum, tau, 2.0 * (1.0 + momentum) / eta)


# ------------------------------------- chapter 3: the deceptive interpolation (Claim S1)


def deceptive_triple(
    m: int, s: float, tau: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(w1, w2, w3)``: the flattest positive minimum, a second one, its partner (eq. S29).

    ``w1_j = tau^(1/m)``; ``w2`` scales the first layer of ``w1`` by ``e^s`` and the others by
    ``e^(-s/(m-1))`` (so ``prod w2 = tau``); ``w3 = w1^2 / w2`` is the same with ``-s``. For
    ``m >= 3`` and ``s > 0`` the interpolation plot shows ``w1`` sharper than ``w2`` (deceptive),
    for ``s < 0`` it is truthful; for ``m = 2`` it always shows a tie (eq. S32).
    """
    if m < 2:
        raise ValueError(f"m must be at least 2, got {m}")
    if tau <= 0:
        raise ValueError(f"tau must be positive (Claim S1), got {tau}")
    w1 = np.full(m, tau ** (1.0 / m))
    scale = np.full(m, np.exp(-s / (m - 1)))
    scale[0] = np.exp(s)
    w2 = w1 * scale
    w2[-1] = tau / np.prod(w2[:-1])  # exact product despite rounding
    return w1, w2, deceptive_partner(w1, w2)


def segment_loss(wa: np.ndarray, wb: np.ndarray, t: np.ndarray, tau: float) -> np.ndarray:
    """Loss (eq. S9) at ``wa + t (wb - wa)``: the 1-D interpolation plot of Keskar et al."""
    t = np.asarray(t, dtype=float)
    pts = wa[None, :] + t[:, None] * (wb - wa)[None, :]
    return np.asarray(loss(pts, tau))


def random_positive_minima(
    rng: np.random.Generator, tau: float, m: int, n: int, spread: float = 0.5
) -> np.ndarray:
    """``n`` random minima in the positive orthant.

    Each is ``tau^(1/m) exp(g - mean g)`` with ``g ~ N(0, spread^2)``.

    The last coordinate is reset to ``tau / prod(others)`` so every row lies on ``Omega`` (eq. 7).
    """
    g = rng.normal(scale=spread, size=(n, m))
    w = abs(tau) ** (1.0 / m) * np.exp(g - g.mean(axis=1, keepdims=True))
    w[:, -1] = tau / np.prod(w[:, :-1], axis=1)
    return w


@dataclass(frozen=True)
class RankingStats:
    """Random pairs of minima for one depth: true and apparent sharpness ratios.

    ``true_ratio = lambda_max(w_b) / lambda_max(w_a)`` (eq. 10) and
    ``plot_ratio = c_b / c_a`` (interpolation curvatures, eq. S24); ``wrong`` marks pairs where the
    two ratios fall on opposite sides of one (the plot ranks them wrongly).
    """

    m: int
    true_ratio: np.ndarray
    plot_ratio: np.ndarray

    @property
    def wrong(self) -> np.ndarray:
        """Pairs the interpolation plot ranks the wrong way round."""
        return (self.true_ratio > 1) != (self.plot_ratio > 1)

    @property
    def wrong_fraction(self) -> float:
        """Fraction of such pairs."""
        return float(np.mean(self.wrong))


def ranking_stats(
    ms: Sequence[int] = (3, 4, 5, 6),
    n_pairs: int = 2000,
    tau: float = 1.0,
    spread: float = 0.5,
    seed: int = 0,
) -> list[RankingStats]:
    """For each depth, ``n_pairs`` random positive-orthant pairs and their two rankings."""
    rng = np.random.default_rng(seed)
    out = []
    for m in ms:
        a = random_positive_minima(rng, tau, m, n_pairs, spread)
        b = random_positive_minima(rng, tau, m, n_pairs, spread)
        true = np.empty(n_pairs)
        plot = np.empty(n_pairs)
        for i in range(n_pairs):
            true[i] = sharpness(b[i], tau) / sharpness(a[i], tau)
            ca, cb = interpolation_curvatures(a[i], b[i], tau)
            plot[i] = cb / ca
        out.append(RankingStats(int(m), true, plot))
    return out
