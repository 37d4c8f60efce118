"""Figures of chapter 8: Theorem 4 and Lemma 1 of Mulayoff & Michaeli (2020), with App. II, VIII.

Everything follows the conventions of :mod:`flatlib.theory.linear` (weights ``[W1, ..., Wm]``,
loss of eq. 2, white data: assumption A2). The constructions and runs of the chapter (the
rescaled family of Theorem 4, its bounds, the step-size bound of Lemma 1 and the GD runs from
the identity) are in :mod:`flatlib.theory.linear` too; this module only draws them.

* :func:`plot_theorem4_family` - the family
  :func:`flatlib.theory.linear.rescaled_minimum` against the rescaling: Theorem 4 interval,
  sharpness, Theorem 1 value and the bound (S101).
* :func:`plot_lemma1`, :func:`lemma1_slider` - identity versus random initialisation for given
  depth and step size (:func:`flatlib.theory.linear.lemma1_runs`).
* :func:`plot_balancedness_drift` - how far finite-step GD drifts from the balancedness (S5)
  that gradient flow conserves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

from flatlib._validation import as_float, as_int
from flatlib.figures import new_figure
from flatlib.figures.widgets import SliderFigure, slider_figure
from flatlib.theory import linear

__all__ = [
    "lemma1_slider",
    "plot_balancedness_drift",
    "plot_lemma1",
    "plot_theorem4_family",
]


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


# ----------------------------------------------------------------------------- Theorem 4


def plot_theorem4_family(T: Any, m: int, n_points: int = 41, seed: int = 0) -> Figure:
    """Sharpness of :func:`flatlib.theory.linear.rescaled_minimum` against the rescaling ``c``
    (Theorem 4, App. VIII).

    Left: ``sigma_max(W_1)`` and ``sigma_max(W_2)`` relative to ``sigma_max(T)^(1/m)``; the
    shaded interval (:func:`flatlib.theory.linear.theorem4_interval`) is where both equal 1,
    i.e. Theorem 4's condition holds. Right: the sharpness (eq. 20,
    :func:`flatlib.theory.linear.sharpness`) of the orthogonally gauged minima, the closed form
    :func:`flatlib.theory.linear.diagonal_sharpness`, the bound (S101) and the Theorem 1 value
    (eq. 17), all divided by the latter.
    """
    t, s = linear.square_target(T)
    m = as_int(m, "m", minimum=2)
    n_points = as_int(n_points, "n_points", minimum=3)
    lo, hi = linear.theorem4_interval(t, m)
    cs = np.geomspace(lo / 3, hi * 3, n_points)
    root = s[0] ** (1.0 / m)
    best = linear.flattest_sharpness(t, m)
    top1, top2, measured, closed, bound = [], [], [], [], []
    for i, c in enumerate(cs):
        ws = linear.rescaled_minimum(t, m, float(c), seed=seed + i)
        top1.append(np.linalg.norm(ws[0], 2) / root)
        top2.append(np.linalg.norm(ws[1], 2) / root)
        measured.append(linear.sharpness(ws) / best)
        closed.append(linear.diagonal_sharpness(linear.rescaled_diagonals(t, m, float(c))) / best)
        bound.append(linear.theorem4_bounds(ws)[1] / best)

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


_FLOOR = 1e-30


def plot_lemma1(m: int, eta_factor: float, steps: int = 400, seed: int = 0) -> Figure:
    """Identity versus random initialisation: loss, imbalance (S5) and final sharpness.

    Left: training loss per iteration (log scale). Middle: the largest imbalance
    ``max_k ||W_k W_k^T - W_{k+1}^T W_{k+1}||_F`` (eq. S5), zero from the identity. Right:
    the sharpness of the final point over the Theorem 1 value (eq. 17) with the stability
    ceiling ``2 / eta`` on the same scale; runs that did not reach a global minimum are drawn
    hollow.
    """
    runs = linear.lemma1_runs(m, eta_factor, steps=steps, seed=seed)
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
    sizes (multiples of :func:`flatlib.theory.linear.lemma1_step_bound`). Right: the final
    imbalance and the final relative sharpness gap to the Theorem 1 value, against ``eta``.
    """
    t, _ = linear.square_target(T)
    m = as_int(m, "m", minimum=2)
    d = t.shape[0]
    x, y = linear.whitened_data(t, d, seed=0)
    bound = linear.lemma1_step_bound(t, m)
    best = linear.flattest_sharpness(t, m)
    etas, drift, gap = [], [], []
    fig = new_figure(figsize=(10, 3.6), layout="constrained")
    ax, bx = fig.subplots(1, 2)
    for f in eta_factors:
        eta = as_float(f, "eta_factors", positive=True) * bound
        p = linear.gd_path(linear.identity_init(d, m), x, y, eta, steps, record_every=2)
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
