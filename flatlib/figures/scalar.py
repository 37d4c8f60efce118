"""Figures of chapters 2-3: scalar networks (Sec. 3 and App. III of Mulayoff & Michaeli, 2020).

The mathematics comes from :mod:`flatlib.theory.scalar` (loss of eq. S9, Hessian of eq. 9,
sharpness of eq. 10, flattest minima of eq. 12, Claim S1, eq. S29, and the runs and samples
these figures show); this module only draws it.

Chapter 2 (the valley of minima):

* :func:`plot_fig1`, :func:`fig1_slider` - Fig. 1: level sets of the loss of a two-layer scalar
  net, the hyperbola ``w2 = tau / w1`` of minima (eq. 7), the flattest points (eq. 12) and GD /
  heavy-ball paths (:func:`flatlib.theory.scalar.fig1_run`) started next to a sharp minimum.
* :func:`plot_valley_sharpness` - eq. (10) along the hyperbola against the ``2 / eta`` levels.
* :func:`plot_sharpness_vs_depth` - eq. (13) for ``m = 1..20`` and the largest stable step.

Chapter 3 (the deceptive interpolation):

* :func:`plot_fig2` - Fig. 2: the loss along the segment between a flattest and a sharp minimum
  (:func:`flatlib.theory.scalar.segment_loss`), with close-ups (eq. S32).
* :func:`plot_interpolation`, :func:`interpolation_slider` - deeper nets, a second minimum and its
  deceptive partner ``w3 = w1^2 / w2`` (eq. S29, Lemma 2,
  :func:`flatlib.theory.scalar.deceptive_triple`).
* :func:`plot_ranking_scatter` - how often the interpolation plot ranks two random minima the
  wrong way (Claim S1; data from :func:`flatlib.theory.scalar.ranking_stats`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from flatlib.figures import subplots
from flatlib.figures.widgets import SliderFigure, slider_figure
from flatlib.theory import scalar

__all__ = [
    "FIG1_ETAS",
    "FIG1_MOMENTA",
    "FIG1_STARTS",
    "fig1_slider",
    "interpolation_slider",
    "plot_fig1",
    "plot_fig2",
    "plot_interpolation",
    "plot_ranking_scatter",
    "plot_sharpness_vs_depth",
    "plot_valley_sharpness",
]

FIG1_ETAS: tuple[float, ...] = (0.2, 0.25, 0.3, 0.35)
"""Step sizes of the Fig. 1 slider.

``2 / eta`` runs from 10 down to 5.7; the flattest sharpness is 4.
"""
FIG1_MOMENTA: tuple[float, ...] = (0.0, 0.5)
"""Heavy-ball coefficients of the Fig. 1 slider (0 is plain GD)."""
FIG1_STARTS: tuple[float, ...] = (0.45, 0.5, 0.55)
"""``w1`` of the sharp minimum (star) next to which GD starts; its ``w2`` is ``tau / w1``."""

FLAT_COLOR = "tab:green"
SHARP_COLOR = "tab:orange"
PARTNER_COLOR = "tab:purple"
PATH_COLOR = "tab:blue"
VALLEY_COLOR = "0.35"

_LIM = 2.6
_SHOWN_STEPS = 151
_GRID = np.linspace(-_LIM, _LIM, 161)


# ----------------------------------------------------------------------------- chapter 2


@lru_cache(maxsize=8)
def _level_sets(tau: float) -> tuple[tuple[np.ndarray, ...], ...]:
    """Contour lines of eq. (S9) on the ``(w1, w2)`` grid, computed once per ``tau``."""
    import contourpy

    w1, w2 = np.meshgrid(_GRID, _GRID)
    values = np.asarray(scalar.loss(np.stack([w1, w2], axis=-1), tau))
    gen = contourpy.contour_generator(w1, w2, values)
    return tuple(tuple(gen.lines(level)) for level in np.geomspace(1e-2, 30.0, 12))


def _valley_axes(ax: plt.Axes, tau: float) -> None:
    """Level sets of eq. (S9), the hyperbola of eq. (7) and the flattest points of eq. (12)."""
    levels = _level_sets(float(tau))
    colors = plt.cm.Blues_r(np.linspace(0.0, 0.75, len(levels)))
    for lines, color in zip(levels, colors, strict=True):
        ax.add_collection(LineCollection(list(lines), colors=[color], linewidths=0.7))
    branch = np.linspace(abs(tau) / _LIM, _LIM, 200)
    for s in (1.0, -1.0):
        ax.plot(s * branch, tau / (s * branch), "--", color=VALLEY_COLOR, lw=1.2)
    flat = scalar.flattest_minima(tau, 2)
    ax.plot(flat[:, 0], flat[:, 1], "o", color=FLAT_COLOR, ms=9, label=r"flattest $\Omega_0$")
    ax.set_xlim(-_LIM, _LIM)
    ax.set_ylim(-_LIM, _LIM)
    ax.set_aspect("equal")
    ax.set_xlabel("$w_1$")
    ax.set_ylabel("$w_2$")


def plot_fig1(eta: float, momentum: float, start: float, tau: float = 1.0) -> Figure:
    """Fig. 1: loss level sets, minima ``w2 = tau / w1`` (eq. 7), ``Omega_0`` (eq. 12), a GD path.

    Right panel: eq. (10) at each iterate (eq. S14 off the valley) against ``2 / eta`` and
    ``2 (1 + momentum) / eta`` (eq. S4) and the flattest sharpness ``4 |tau|`` (eq. 13, m = 2).
    """
    run = scalar.fig1_run(eta, momentum, start, tau)
    path = run.result.trajectory[:_SHOWN_STEPS]
    fig, (ax, bx) = subplots(1, 2, figsize=(10, 4.4), gridspec_kw={"width_ratios": [1, 1.15]})
    _valley_axes(ax, tau)
    ax.plot(path[:, 0], path[:, 1], "-", color=PATH_COLOR, lw=0.8, alpha=0.8)
    ax.plot(path[:, 0], path[:, 1], ".", color=PATH_COLOR, ms=3, label="GD iterates")
    ax.plot(*run.star, "*", color=SHARP_COLOR, ms=15, mec="k", label="sharp minimum (start)")
    if not run.result.diverged:
        ax.plot(*run.final, "X", color="tab:red", ms=10, mec="k", label="where GD stops")
    ax.legend(loc="lower left", fontsize=8)
    kind = "GD" if momentum == 0 else f"heavy-ball GD, momentum {momentum:g}"
    ax.set_title(f"{kind}, $\\eta$ = {eta:g}", fontsize=10)

    sharp = scalar.valley_sharpness(path, tau)
    bx.semilogy(
        np.arange(len(sharp)), sharp, color=PATH_COLOR, lw=1.2, label="sharpness at iterate"
    )
    bx.axhline(2 / eta, color="k", ls="--", lw=1, label=r"$2/\eta$")
    if momentum > 0:
        bx.axhline(run.threshold, color="0.5", ls=":", lw=1.2, label=r"$2(1+\beta)/\eta$")
    bx.axhline(
        scalar.flattest_sharpness(tau, 2), color=FLAT_COLOR, lw=1.5, label="flattest (eq. 13)"
    )
    bx.axhline(scalar.sharpness(run.star, tau), color=SHARP_COLOR, lw=1.5, label="start (eq. 10)")
    bx.set_xlim(0, _SHOWN_STEPS - 1)
    bx.set_ylim(3, 40)
    bx.set_xlabel("iteration")
    bx.set_ylabel(r"$2\sum_k \prod_{j\neq k} w_j^2$  (= $\lambda_{\max}$ on $\Omega$)")
    status = "diverged" if run.result.diverged else f"stops at sharpness {run.final_sharpness:.2f}"
    bx.set_title(status, fontsize=10)
    bx.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def fig1_slider(tau: float = 1.0) -> SliderFigure:
    """Fig. 1 under sliders: step size x momentum x start = 4 x 2 x 3 = 24 frames."""

    def draw(eta: float, momentum: float, start: float) -> Figure:
        return plot_fig1(eta, momentum, start, tau)

    return slider_figure(
        draw,
        {"eta": list(FIG1_ETAS), "momentum": list(FIG1_MOMENTA), "start": list(FIG1_STARTS)},
        defaults={"eta": 0.3, "momentum": 0.0, "start": 0.45},
        labels={"eta": "step size η", "momentum": "momentum β", "start": "star at w1 ="},
    )


def plot_valley_sharpness(tau: float = 1.0, etas: Sequence[float] = FIG1_ETAS) -> Figure:
    """Eq. (10) along the branch ``w = (w1, tau / w1)``, ``w1 > 0``, with the ``2 / eta`` levels.

    GD with step ``eta`` can rest only where the curve is below ``2 / eta`` (eq. S4); the minimum
    of the curve is the flattest point ``w1 = sqrt(tau)`` of eq. (12), at height eq. (13).
    """
    w1 = np.geomspace(0.2 * np.sqrt(tau), 5 * np.sqrt(tau), 400)
    s = 2.0 * tau**2 * (1.0 / w1**2 + w1**2 / tau**2)
    fig, ax = subplots(figsize=(6.4, 3.6))
    ax.semilogy(w1, s, color="k", lw=1.5, label=r"$\lambda_{\max}$ on $\Omega$ (eq. 10)")
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(etas)))
    for eta, c in zip(etas, colors, strict=True):
        ok = s <= 2 / eta
        ax.axhline(2 / eta, color=c, ls="--", lw=1)
        ax.fill_between(w1, 3, s, where=ok, color=c, alpha=0.12)
        ax.text(w1[-1], 2 / eta, f" $2/\\eta$, $\\eta$={eta:g}", color=c, va="center", fontsize=8)
    ax.plot(np.sqrt(tau), scalar.flattest_sharpness(tau, 2), "o", color=FLAT_COLOR, ms=8)
    ax.set_xscale("log")
    ax.set_ylim(3, 60)
    ax.set_xlabel("$w_1$ (with $w_2 = \\tau / w_1$)")
    ax.set_ylabel("sharpness")
    ax.set_title(f"Where GD may rest on the valley ($\\tau$ = {tau:g})", fontsize=10)
    ax.legend(fontsize=8, loc="upper center")
    fig.tight_layout()
    return fig


def plot_sharpness_vs_depth(
    taus: Sequence[float] = (0.5, 1.0, 2.0), m_max: int = 20, n_random: int = 30, seed: int = 0
) -> Figure:
    """Eq. (13), ``2 m |tau|^(2 (1 - 1/m))``, for ``m = 1..m_max``, and ``2 / eq. (13)``.

    Grey dots: eq. (10) at random minima on ``Omega`` (for the middle ``tau``), always above the
    curve (eq. S21). Right: the largest step size for which a flattest minimum is stable.
    """
    rng = np.random.default_rng(seed)
    ms = np.arange(1, m_max + 1)
    fig, (ax, bx) = subplots(1, 2, figsize=(10, 3.8))
    colors = plt.cm.plasma(np.linspace(0.1, 0.8, len(taus)))
    mid = taus[len(taus) // 2]
    for m in ms:
        ws = scalar.random_positive_minima(rng, mid, int(m), n_random, spread=0.4)
        vals = [scalar.sharpness(w, mid) for w in ws]
        ax.plot(np.full(n_random, m), vals, ".", color="0.6", ms=3, zorder=1)
    for tau, c in zip(taus, colors, strict=True):
        bound = np.array([scalar.flattest_sharpness(tau, int(m)) for m in ms])
        ax.plot(ms, bound, "o-", color=c, ms=4, label=f"$\\tau$ = {tau:g}", zorder=2)
        bx.plot(ms, 2 / bound, "o-", color=c, ms=4, label=f"$\\tau$ = {tau:g}")
    ax.plot([], [], ".", color="0.6", label=f"random minima, $\\tau$ = {mid:g}")
    ax.set_yscale("log")
    ax.set_xlabel("depth $m$")
    ax.set_ylabel(r"$\min_{\Omega}\lambda_{\max}$ (eq. 13)")
    ax.set_title("Flattest sharpness grows about linearly with depth", fontsize=10)
    ax.legend(fontsize=8)
    bx.set_yscale("log")
    bx.set_xlabel("depth $m$")
    bx.set_ylabel(r"largest stable $\eta = 2/\min_\Omega\lambda_{\max}$")
    bx.set_title("so the usable step size shrinks like $1/m$", fontsize=10)
    bx.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- chapter 3


def _closeup(ax: plt.Axes, wa: np.ndarray, wb: np.ndarray, tau: float, half: float) -> None:
    """Loss against the signed distance ``d`` from each end along ``alpha`` (eq. S24)."""
    alpha = (wa - wb) / np.linalg.norm(wa - wb)
    d = np.linspace(-half, half, 101)
    ca, cb = scalar.interpolation_curvatures(wa, wb, tau)
    for w, c, color, name in ((wa, ca, FLAT_COLOR, "flattest"), (wb, cb, None, "other")):
        vals = np.asarray(scalar.loss(w[None, :] + d[:, None] * alpha[None, :], tau))
        ax.plot(
            d,
            vals,
            lw=2.2 if name == "flattest" else 1.5,
            color=color,
            ls="-" if name == "flattest" else "--",
            label=f"around {name}: curvature {c:.3g}",
        )
    ax.set_xlabel("distance along the segment")
    ax.set_ylabel("loss")
    ax.legend(fontsize=7, loc="upper center")


def plot_fig2(w2_first: float = 0.4, tau: float = 1.0) -> Figure:
    """Fig. 2: a two-layer net, flattest ``w1 = (sqrt tau, sqrt tau)`` and ``w2 = (a, tau / a)``.

    (a) the plane with the segment; (b) the loss along it; (c) close-ups around both ends,
    drawn on the same distance scale: the two parabolas coincide (eq. S32), although eq. (10)
    says ``w2`` is sharper.
    """
    w1 = scalar.flattest_minima(tau, 2)[0]
    w2 = np.array([w2_first, tau / w2_first])
    fig, axes = subplots(1, 3, figsize=(13, 4.0))
    ax, bx, cx = axes
    _valley_axes(ax, tau)
    ax.plot([w1[0], w2[0]], [w1[1], w2[1]], "k--", lw=1.2)
    ax.plot(*w2, "o", color=SHARP_COLOR, ms=9, mec="k", label="sharper minimum")
    ax.set_xlim(-0.2, _LIM)
    ax.set_ylim(-0.2, _LIM)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title("(a) two minima and their segment", fontsize=10)
    t = np.linspace(-0.3, 1.3, 400)
    bx.plot(t, scalar.segment_loss(w1, w2, t, tau), "k", lw=1.5)
    bx.plot([0], [0], "o", color=FLAT_COLOR, ms=9)
    bx.plot([1], [0], "o", color=SHARP_COLOR, ms=9, mec="k")
    bx.set_xlabel("t  (w = w1 + t (w2 - w1))")
    bx.set_ylabel("loss")
    bx.set_title("(b) loss along the segment", fontsize=10)
    _closeup(cx, w1, w2, tau, 0.04 * np.linalg.norm(w1 - w2))
    cx.get_lines()[1].set_color(SHARP_COLOR)
    cx.legend(fontsize=7, loc="upper center")
    s1, s2 = scalar.sharpness(w1, tau), scalar.sharpness(w2, tau)
    cx.set_title(
        f"(c) close-ups: equal, though $\\lambda_{{\\max}}$ = {s1:.3g} vs {s2:.3g}", fontsize=10
    )
    fig.tight_layout()
    return fig


def plot_interpolation(m: int, s: float, tau: float = 1.0) -> Figure:
    """Lemma 2 for depth ``m``: ``w1`` flattest, ``w2`` (slider ``s``), ``w3 = w1^2 / w2`` (S29).

    (a) loss along ``w1 -> w2`` and ``w1 -> w3``, both at ``t = 1`` (eq. S9); (b), (c) close-ups
    around the ends of each segment on a common distance scale; titles give eq. (10) at each
    minimum and the verdict of Claim S1.
    """
    w1, w2, w3 = scalar.deceptive_triple(m, s, tau)
    fig, axes = subplots(1, 3, figsize=(13, 3.9))
    ax, bx, cx = axes
    t = np.linspace(-0.25, 1.25, 300)
    ax.plot(
        t,
        scalar.segment_loss(w1, w2, t, tau),
        color=SHARP_COLOR,
        lw=1.5,
        label="$w^{(1)} \\to w^{(2)}$",
    )
    ax.plot(
        t,
        scalar.segment_loss(w1, w3, t, tau),
        color=PARTNER_COLOR,
        lw=1.5,
        ls="--",
        label="$w^{(1)} \\to w^{(3)} = (w^{(1)})^2 / w^{(2)}$",
    )
    ax.plot([0], [0], "o", color=FLAT_COLOR, ms=9)
    inner = np.linspace(0.0, 1.0, 101)
    top = max(
        scalar.segment_loss(w1, w2, inner, tau).max(),
        scalar.segment_loss(w1, w3, inner, tau).max(),
    )
    ax.set_ylim(0, 1.6 * float(top))
    ax.set_xlabel("t along the segment")
    ax.set_ylabel("loss")
    ax.set_title(f"(a) depth m = {m}: two interpolation plots", fontsize=10)
    ax.legend(fontsize=8, loc="upper center")
    half = 0.1 * min(np.linalg.norm(w1 - w2), np.linalg.norm(w1 - w3))
    s1 = scalar.sharpness(w1, tau)
    for axis, other, color, name in (
        (bx, w2, SHARP_COLOR, "w^{(2)}"),
        (cx, w3, PARTNER_COLOR, "w^{(3)}"),
    ):
        _closeup(axis, w1, other, tau, half)
        axis.get_lines()[1].set_color(color)
        axis.legend(fontsize=7, loc="upper center")
        ca, cb = scalar.interpolation_curvatures(w1, other, tau)
        if np.isclose(ca, cb, rtol=1e-9):
            verdict = "tie"
        elif ca > cb:
            verdict = "flattest LOOKS SHARPER (wrong)"
        else:
            verdict = "flattest looks flatter (right)"
        so = scalar.sharpness(other, tau)
        axis.set_title(
            f"$\\lambda_{{\\max}}$: {s1:.3g} (flattest) vs {so:.3g} (${name}$)\n{verdict}",
            fontsize=9,
        )
    fig.tight_layout()
    return fig


def interpolation_slider(tau: float = 1.0) -> SliderFigure:
    """:func:`plot_interpolation` under sliders: depth x second minimum = 4 x 4 = 16 frames."""

    def draw(m: int, s: float) -> Figure:
        return plot_interpolation(m, s, tau)

    return slider_figure(
        draw,
        {"m": [2, 3, 4, 6], "s": [-1.0, -0.5, 0.5, 1.0]},
        defaults={"m": 3, "s": 0.5},
        labels={"m": "depth m", "s": "log-scale s of w2's first layer"},
    )


def plot_ranking_scatter(stats: Sequence[scalar.RankingStats]) -> Figure:
    """True sharpness ratio (eq. 10) against the ratio the interpolation plot shows (Claim S1).

    Points in the shaded quadrants are pairs the plot ranks the wrong way round.
    """
    fig, axes = subplots(1, len(stats), figsize=(3.2 * len(stats), 3.4), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, st in zip(axes, stats, strict=True):
        ax.axvspan(1e-3, 1, ymin=0.5, ymax=1, color="tab:red", alpha=0.08)
        ax.axvspan(1, 1e3, ymin=0, ymax=0.5, color="tab:red", alpha=0.08)
        ok = ~st.wrong
        ax.loglog(st.true_ratio[ok], st.plot_ratio[ok], ".", ms=2, color="0.4", alpha=0.5)
        ax.loglog(st.true_ratio[st.wrong], st.plot_ratio[st.wrong], ".", ms=2, color="tab:red")
        ax.axhline(1, color="k", lw=0.6)
        ax.axvline(1, color="k", lw=0.6)
        ax.set_xlim(1 / 30, 30)
        ax.set_ylim(1 / 30, 30)
        ax.set_title(f"m = {st.m}: {100 * st.wrong_fraction:.0f}% ranked wrongly", fontsize=10)
        ax.set_xlabel(r"true $\lambda_{\max}(b)/\lambda_{\max}(a)$")
    axes[0].set_ylabel("apparent ratio $c_b / c_a$ on the segment")
    fig.tight_layout()
    return fig
