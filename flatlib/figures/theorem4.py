"""Figures of chapter 8: Theorem 4 and Lemma 1 of Mulayoff & Michaeli (2020), with App. II, VIII.

Everything follows the conventions of :mod:`flatlib.theory.linear` (weights ``[W1, ..., Wm]``, loss of
eq. 2, white data: assumption A2). Closed forms for the flattest sharpness (Theorem 1, eq. 17)
and the sharpness of a minimum (eq. 20) come from :mod:`flatlib.theory.linear`; this module adds the
constructions and experiments of the chapter.

Theorem 4 (a flatness certificate):

* :func:`random_target` - a square map ``T`` with prescribed singular values (optionally
  symmetric positive definite, as Lemma 1(ii) needs).
* :func:`rescaled_minimum`, :func:`rescaled_diagonals`, :func:`theorem4_interval` - a family of
  global minima obtained by moving singular values from layer 2 to layer 1. Every member keeps
  ``sigma_max(T)^(1/m)`` as a singular value of every layer, and the coupling of Theorem 3; it
  satisfies Theorem 4's condition exactly on an interval of the rescaling.
* :func:`diagonal_sharpness` - the closed-form sharpness of a minimum whose layers are diagonal
  in the singular bases of ``T`` (eq. 20 evaluated entry by entry).
* :func:`theorem4_bounds` - the two upper bounds of the proof of Theorem 4 (eqs. S99-S101).
* :func:`uncoupled_layers` - layers with the right top singular value but random singular
  vectors: they are not a global minimum at all (sub-multiplicativity).
* :func:`plot_theorem4_family` - the family against the rescaling: Theorem 4 interval, sharpness,
  Theorem 1 value and the bound (S101).

Lemma 1 (gradient descent from the identity):

* :func:`lemma1_step_bound`, :func:`matrix_root` - the step-size bound of Lemma 1(ii) and its
  limit ``W_i = T^(1/m)`` (App. II).
* :func:`near_identity_init`, :func:`gd_path` - random residual initialisation and a GD run that
  records the loss and the imbalance of eq. (S5) at every step.
* :func:`lemma1_runs`, :func:`plot_lemma1`, :func:`lemma1_slider` - identity versus random
  initialisation for given depth and step size.
* :func:`plot_balancedness_drift` - how far finite-step GD drifts from the balancedness (S5)
  that gradient flow conserves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

from flatlib._validation import as_float, as_float_array, as_int, as_weights
from flatlib.figures import new_figure
from flatlib.figures.widgets import SliderFigure, slider_figure
from flatlib.theory import linear

__all__ = [
    "CONVERGED_LOSS",
    "GDPath",
    "LEMMA1_SINGULAR_VALUES",
    "Lemma1Runs",
    "diagonal_sharpness",
    "gd_path",
    "lemma1_runs",
    "lemma1_slider",
    "lemma1_step_bound",
    "matrix_root",
    "near_identity_init",
    "plot_balancedness_drift",
    "plot_lemma1",
    "plot_theorem4_family",
    "random_target",
    "rescaled_diagonals",
    "rescaled_minimum",
    "theorem4_bounds",
    "theorem4_interval",
    "uncoupled_layers",
]

CONVERGED_LOSS = 1e-12
"""A run counts as converged to a global minimum when its final loss is below this value."""

LEMMA1_SINGULAR_VALUES: tuple[float, ...] = (2.0, 1.5, 1.0)
"""Eigenvalues of the symmetric positive definite target of :func:`lemma1_runs` (Lemma 1(ii))."""

IDENTITY_COLOR = "k"
RANDOM_COLORS = ("tab:orange", "tab:red", "tab:purple", "tab:brown", "tab:pink")
CERTIFIED_COLOR = "tab:green"


def _plain_log_ticks(axis: Any) -> None:
    """Label a log axis with plain numbers at 1, 2, 5 x 10^k instead of ``2 x 10^0``."""
    axis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _sparse_log_ticks(axis: Any) -> None:
    """At most ~6 decade ticks and no minor ticks on a log axis spanning many decades."""
    axis.set_major_locator(LogLocator(base=10.0, numticks=7))
    axis.set_minor_locator(NullLocator())


def _orthogonal(rng: np.random.Generator, d: int) -> np.ndarray:
    """A random ``d x d`` orthogonal matrix with determinant ``+1``."""
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


# ----------------------------------------------------------------------------- Theorem 4


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


def _square_T(T: Any) -> tuple[np.ndarray, np.ndarray]:
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
    _, s = _square_T(T)
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
    t, s = _square_T(T)
    m = as_int(m, "m", minimum=2)
    c = as_float(c, "c", positive=True)
    d = s.size
    scale = np.full(d, c)
    scale[0] = 1.0
    ws = linear.apply_gauge(
        linear.canonical_minimum(t, m), [np.diag(1.0 / scale)] + [np.eye(d)] * (m - 2)
    )
    if seed is None:
        return ws
    rng = np.random.default_rng(seed)
    return linear.apply_gauge(ws, [_orthogonal(rng, d) for _ in range(m - 1)])


def theorem4_interval(T: Any, m: int) -> tuple[float, float]:
    """The rescalings ``c`` for which :func:`rescaled_minimum` meets Theorem 4's condition.

    The largest rescaled singular values are ``c sigma_2^(1/m)`` (layer 1) and
    ``sigma_2^(1/m) / c`` (layer 2); neither exceeds ``sigma_max(T)^(1/m)`` exactly when
    ``(sigma_2 / sigma_max)^(1/m) <= c <= (sigma_max / sigma_2)^(1/m)``. Outside, one of the two
    layers has a singular value above ``sigma_max(T)^(1/m)``. Needs ``d >= 2``, ``sigma_2 > 0``.
    """
    _, s = _square_T(T)
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
        after = linear.end_to_end(ws[k + 1 :]) if k < m - 1 else None
        before = linear.end_to_end(ws[:k]) if k > 0 else None
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
    _, s = _square_T(T)
    m = as_int(m, "m", minimum=1)
    rng = np.random.default_rng(seed)
    root = s ** (1.0 / m)
    return [(_orthogonal(rng, s.size) * root) @ _orthogonal(rng, s.size).T for _ in range(m)]


def plot_theorem4_family(T: Any, m: int, n_points: int = 41, seed: int = 0) -> Figure:
    """Sharpness of :func:`rescaled_minimum` against the rescaling ``c`` (Theorem 4, App. VIII).

    Left: ``sigma_max(W_1)`` and ``sigma_max(W_2)`` relative to ``sigma_max(T)^(1/m)``; the
    shaded interval (:func:`theorem4_interval`) is where both equal 1, i.e. Theorem 4's
    condition holds. Right: the sharpness (eq. 20, :func:`flatlib.theory.linear.sharpness`) of the
    orthogonally gauged minima, the closed form :func:`diagonal_sharpness`, the bound (S101)
    and the Theorem 1 value (eq. 17), all divided by the latter.
    """
    t, s = _square_T(T)
    m = as_int(m, "m", minimum=2)
    n_points = as_int(n_points, "n_points", minimum=3)
    lo, hi = theorem4_interval(t, m)
    cs = np.geomspace(lo / 3, hi * 3, n_points)
    root = s[0] ** (1.0 / m)
    best = linear.flattest_sharpness(t, m)
    top1, top2, measured, closed, bound = [], [], [], [], []
    for i, c in enumerate(cs):
        ws = rescaled_minimum(t, m, float(c), seed=seed + i)
        top1.append(np.linalg.norm(ws[0], 2) / root)
        top2.append(np.linalg.norm(ws[1], 2) / root)
        measured.append(linear.sharpness(ws) / best)
        closed.append(diagonal_sharpness(rescaled_diagonals(t, m, float(c))) / best)
        bound.append(theorem4_bounds(ws)[1] / best)

    fig = new_figure(figsize=(10, 3.8), layout="constrained")
    ax, bx = fig.subplots(1, 2)
    for axis in (ax, bx):
        axis.axvspan(lo, hi, color=CERTIFIED_COLOR, alpha=0.15, lw=0)
        axis.set_xscale("log")
        axis.set_xlabel("rescaling $c$ of the non-top singular values")
        _plain_log_ticks(axis.xaxis)
    ax.plot(cs, top1, "-", color="tab:blue", label="$\\sigma_{\\max}(W_1)$")
    ax.plot(cs, top2, "--", color="tab:orange", label="$\\sigma_{\\max}(W_2)$")
    ax.axhline(1.0, color="k", lw=0.8, ls=":")
    ax.set_yscale("log")
    ax.set_ylabel("relative to $\\sigma_{\\max}(T)^{1/m}$")
    _plain_log_ticks(ax.yaxis)
    ax.set_title("top singular values (green: Theorem 4 holds)", fontsize=10)
    ax.legend(fontsize=8, loc="upper center")

    bx.plot(cs, bound, ":", color="0.4", lw=1.5, label="bound (S101)")
    bx.plot(cs, closed, "-", color="tab:blue", lw=1.5, label="closed form (diagonal)")
    bx.plot(cs, measured, ".", color="k", ms=6, label="linear.sharpness (gauged)")
    bx.axhline(1.0, color=CERTIFIED_COLOR, lw=1.5, label="Theorem 1 value (eq. 17)")
    bx.set_yscale("log")
    bx.set_ylabel("$\\lambda_{\\max}(H_w)$ / Theorem 1 value")
    _plain_log_ticks(bx.yaxis)
    bx.set_title(f"m = {m}: flattest on the green interval, and a bit beyond", fontsize=10)
    bx.legend(fontsize=8, loc="upper center")
    return fig


# ----------------------------------------------------------------------------- Lemma 1


def lemma1_step_bound(T: Any, m: int) -> float:
    """Lemma 1(ii)'s step size ``(1 / 2m) min{1, sigma_max(T)^(-2(1 - 1/m))}``.

    For ``sigma_max(T) >= 1`` it is half the largest stable step ``2 / lambda_min`` of
    Theorem 1 (:func:`flatlib.theory.linear.max_stable_step`).
    """
    _, s = _square_T(T)
    m = as_int(m, "m", minimum=1)
    return float(min(1.0, s[0] ** (-2.0 * (1.0 - 1.0 / m))) / (2.0 * m))


def matrix_root(T: Any, m: int) -> np.ndarray:
    """``T^(1/m)`` of a symmetric positive definite ``T``: the limit of GD in Lemma 1(ii).

    Every layer converges to it from the identity (App. II, after Nar & Sastry, 2018).
    """
    t, _ = _square_T(T)
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
    values of :func:`flatlib.theory.linear.balancedness` (eq. S5) at iterate ``imbalance_steps[j]``;
    ``weights`` is the last iterate; ``diverged`` as in :class:`flatlib.theory.linear.LinearGDResult`.
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
    """Full-batch GD on the loss of eq. (2) by :func:`flatlib.theory.linear.gradient_descent`, with the
    imbalance ``||W_k W_k^T - W_{k+1}^T W_{k+1}||_F`` of eq. (S5) recorded along the way.

    The loss is kept at every iterate; the imbalance at iterates ``0, r, 2r, ...`` (and the
    last one), ``r = record_every``, at the times ``imbalance_steps``.
    """
    ws = as_weights(weights0, "weights0")
    steps = as_int(steps, "steps", minimum=0)
    record_every = as_int(record_every, "record_every", minimum=1)
    losses = [np.array([linear.loss(ws, X, Y)])]
    imbalance = [linear.balancedness(ws)]
    times = [0]
    diverged = False
    done = 0
    while done < steps and not diverged:
        chunk = min(record_every, steps - done)
        run = linear.gradient_descent(ws, X, Y, eta, chunk)
        diverged = run.diverged
        ws = run.weights
        done += run.losses.size - 1
        losses.append(run.losses[1:])
        if run.losses.size > 1:
            imbalance.append(linear.balancedness(ws))
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
    x, y = linear.whitened_data(t, d, seed=seed)
    bound = lemma1_step_bound(t, m)
    eta = eta_factor * bound
    ident = gd_path(linear.identity_init(d, m), x, y, eta, steps, record_every)
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
        flattest=linear.flattest_sharpness(t, m),
        identity=ident,
        random=rand,
    )


_FLOOR = 1e-30


def plot_lemma1(m: int, eta_factor: float, steps: int = 400, seed: int = 0) -> Figure:
    """Identity versus random initialisation: loss, imbalance (S5) and final sharpness.

    Left: training loss per iteration (log scale). Middle: the largest imbalance
    ``max_k ||W_k W_k^T - W_{k+1}^T W_{k+1}||_F`` (eq. S5), zero from the identity. Right:
    the sharpness of the final point over the Theorem 1 value (eq. 17) with the stability
    ceiling ``2 / eta`` on the same scale; runs that did not reach a global minimum are drawn
    hollow.
    """
    runs = lemma1_runs(m, eta_factor, steps=steps, seed=seed)
    paths = [("identity", IDENTITY_COLOR, runs.identity)] + [
        (f"random {i + 1}", RANDOM_COLORS[i % len(RANDOM_COLORS)], p)
        for i, p in enumerate(runs.random)
    ]
    # fixed margins instead of a layout engine: every slider frame is rendered, keep it cheap
    fig = new_figure(figsize=(11, 3.6))
    ax, bx, cx = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.2, 1.2, 1]})
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.14, top=0.91, wspace=0.33)
    for name, color, p in paths:
        it = np.arange(p.losses.size)
        lw = 2.2 if name == "identity" else 1.0
        ax.semilogy(it, np.maximum(p.losses, _FLOOR), color=color, lw=lw, label=name)
        if m > 1:
            bx.semilogy(
                p.imbalance_steps, np.maximum(p.imbalance.max(axis=1), _FLOOR), color=color, lw=lw
            )
    for axis in (ax, bx):
        _sparse_log_ticks(axis.yaxis)
    ax.set_xlabel("iteration")
    ax.set_ylabel("training loss")
    ax.set_ylim(_FLOOR / 10, None)
    ax.set_title(f"m = {m}, $\\eta$ = {runs.eta_factor:g} x Lemma 1(ii) bound", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    bx.set_xlabel("iteration")
    bx.set_ylabel("$\\max_k \\|W_kW_k^T - W_{k+1}^TW_{k+1}\\|_F$")
    bx.set_ylim(_FLOOR / 10, 10)
    bx.set_title("imbalance (S5): zero from the identity", fontsize=10)

    ceiling = 2.0 / runs.eta / runs.flattest
    cx.axhline(1.0, color=CERTIFIED_COLOR, lw=1.5, label="Theorem 1 value")
    cx.axhline(ceiling, color="k", ls="--", lw=1, label="stability ceiling $2/\\eta$")
    for i, (_, color, p) in enumerate(paths):
        ratio = linear.sharpness(p.weights) / runs.flattest if not p.diverged else np.nan
        cx.plot(
            [i],
            [ratio],
            "o",
            ms=9,
            color=color,
            mfc=color if p.converged else "none",
        )
    cx.set_xticks(range(len(paths)), ["identity"] + [str(i + 1) for i in range(len(runs.random))])
    cx.set_xlabel("initialisation (1-4: random)")
    cx.set_yscale("log")
    cx.set_ylim(0.8, max(ceiling, 4.0) * 1.3)
    cx.set_ylabel("final sharpness / Theorem 1 value")
    _plain_log_ticks(cx.yaxis)
    cx.set_title("where GD ends", fontsize=10)
    cx.legend(fontsize=8, loc="upper right")
    return fig


def lemma1_slider(
    depths: Sequence[int] = (2, 4, 6),
    eta_factors: Sequence[float] = (0.25, 0.5, 1.0, 1.5),
    steps: int = 400,
    seed: int = 0,
) -> SliderFigure:
    """Sliders for depth ``m`` and step size (in units of Lemma 1(ii)'s bound) for
    :func:`plot_lemma1`."""

    def draw(m: int, eta_factor: float) -> Figure:
        return plot_lemma1(m, eta_factor, steps=steps, seed=seed)

    return slider_figure(
        draw,
        {"m": list(depths), "eta_factor": list(eta_factors)},
        defaults={
            "m": 4 if 4 in depths else depths[0],
            "eta_factor": 1.0 if 1.0 in eta_factors else eta_factors[0],
        },
        labels={"m": "depth m", "eta_factor": "eta / Lemma 1(ii) bound"},
    )


def plot_balancedness_drift(
    T: Any, m: int, eta_factors: Sequence[float] = (0.125, 0.25, 0.5, 1.0), steps: int = 600
) -> Figure:
    """GD from the identity for a general (non-symmetric) ``T``: drift from balancedness (S5).

    Gradient flow keeps ``W_k W_k^T = W_{k+1}^T W_{k+1}`` (eq. S5); one GD step changes it by
    ``eta^2 (G_k G_k^T - G_{k+1}^T G_{k+1})`` with ``G_k`` the gradients, so the accumulated
    drift shrinks with ``eta``. Left: the largest imbalance per iteration for several step
    sizes (multiples of :func:`lemma1_step_bound`). Right: the final imbalance and the final
    relative sharpness gap to the Theorem 1 value, against ``eta``.
    """
    t, _ = _square_T(T)
    m = as_int(m, "m", minimum=2)
    d = t.shape[0]
    x, y = linear.whitened_data(t, d, seed=0)
    bound = lemma1_step_bound(t, m)
    best = linear.flattest_sharpness(t, m)
    etas, drift, gap = [], [], []
    fig = new_figure(figsize=(10, 3.6), layout="constrained")
    ax, bx = fig.subplots(1, 2)
    for f in eta_factors:
        eta = as_float(f, "eta_factors", positive=True) * bound
        p = gd_path(linear.identity_init(d, m), x, y, eta, steps, record_every=2)
        if not p.converged:
            raise ValueError(f"GD with eta = {f} x bound did not converge in {steps} steps")
        ax.loglog(  # iterate 0 is exactly balanced (identity): start the log axis at 1
            p.imbalance_steps[1:],
            p.imbalance[1:].max(axis=1),
            label=f"$\\eta$ = {f:g} x bound",
        )
        etas.append(eta)
        drift.append(p.imbalance[-1].max())
        gap.append(linear.sharpness(p.weights) / best - 1.0)
    ax.set_xlabel("iteration")
    ax.set_ylabel("$\\max_k \\|W_kW_k^T - W_{k+1}^TW_{k+1}\\|_F$")
    ax.set_title(f"identity init, non-symmetric T, m = {m}", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    etas_a = np.array(etas)
    bx.loglog(etas_a, drift, "o-", color="tab:blue", label="final imbalance (S5)")
    bx.loglog(etas_a, np.abs(gap), "s-", color="tab:red", label="final sharpness / eq. 17 - 1")
    bx.loglog(
        etas_a, drift[-1] * etas_a / etas_a[-1], ":", color="0.4", label="slope 1 ($\\propto\\eta$)"
    )
    bx.loglog(
        etas_a,
        abs(gap[-1]) * (etas_a / etas_a[-1]) ** 2,
        "--",
        color="0.6",
        label="slope 2 ($\\propto\\eta^2$)",
    )
    bx.set_xlabel("step size $\\eta$")
    _plain_log_ticks(bx.xaxis)
    bx.set_title("both vanish in the gradient-flow limit", fontsize=10)
    bx.legend(fontsize=8, loc="lower right")
    return fig
