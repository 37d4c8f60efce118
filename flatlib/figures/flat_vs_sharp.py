"""Figures of chapter 10: flat (SGD) against sharp (Adam) minima (Sec. 6, Figs. 6-7, App. IX.2).

Drawing only: the runs, their analysis and every table come from
:mod:`flatlib.experiments.flat_vs_sharp` (:func:`flatlib.experiments.flat_vs_sharp.run_chapter`,
:func:`flatlib.experiments.flat_vs_sharp.analyse`).

* :func:`plot_fig6`, :func:`plot_layer_gains`, :func:`fig6_slider` - Fig. 6: intermediate
  gains per layer, for all layers and one layer at a time.
* :func:`plot_fig7`, :func:`fig7_slider` - Fig. 7 for any (SGD seed, Adam seed) pair (and,
  optionally, eigenvector radius).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from flatlib._validation import as_float, as_int
from flatlib.experiments.flat_vs_sharp import NAMES, FlatSharpAnalysis, check_runs, gain_imbalance
from flatlib.figures import new_figure
from flatlib.figures.widgets import SliderFigure, slider_figure

__all__ = [
    "COLORS",
    "fig6_slider",
    "fig7_slider",
    "plot_fig6",
    "plot_fig7",
    "plot_layer_gains",
]

_LABELS = {"sgd_seed": "SGD seed", "adam_seed": "Adam seed", "radius": "radius (d, e)"}
COLORS = {"sgd": "tab:blue", "adam": "tab:red"}
"""Colour of each optimizer's runs in every figure."""


# ------------------------------------------------------------------------------ Fig. 6


def plot_fig6(runs: pd.DataFrame) -> Figure:
    """Fig. 6: maximal intermediate gains (dots) and those of the top signal (circles)."""
    check_runs(runs)
    fig = new_figure(figsize=(10, 3.6))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, opt in zip(axes, ("adam", "sgd"), strict=True):
        sub = runs[runs["optimizer"] == opt]
        for i, r in enumerate(sub.itertuples()):
            k = np.arange(1, len(r.max_gains) + 1) + (i - 1.5) * 0.06
            ax.plot(k, r.max_gains, "o", color="tab:blue", ms=5,
                    label="max gain up to layer k" if i == 0 else None)  # fmt: skip
            ax.plot(k, r.top_signal_gains, "o", mfc="none", color="tab:red", ms=9,
                    label="top end-to-end signal" if i == 0 else None)  # fmt: skip
        imb = np.mean([gain_imbalance(g) for g in sub["max_gains"]])
        lam = np.mean(sub["sharpness"])
        ax.set_title(f"({'a' if opt == 'adam' else 'b'}) {NAMES[opt]}: "
                     f"lambda_max {lam:.2f}, imbalance {imb:.2f}", fontsize=10)  # fmt: skip
        ax.set_xlabel("layer k")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("gain ||h_k(x)|| / ||x||")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_layer_gains(runs: pd.DataFrame, layer: int) -> Figure:
    """Fig. 6 at one layer ``k``: every run's gains there against the balanced profile.

    Left: Fig. 6's blue dots of all runs, layer ``k`` shaded. Right: for each run, the
    maximal gain up to layer ``k`` (dot), the top end-to-end signal's gain there (circle)
    and the value ``g_m^{k/m}`` a balanced network with the same end-to-end gain would
    have (bar), the nonlinear analogue of Theorem 2's equal layer gains.
    """
    check_runs(runs)
    depth = len(runs["max_gains"].iloc[0])
    k = as_int(layer, "layer", minimum=1)
    if k > depth:
        raise ValueError(f"layer must be at most the depth {depth}, got {k}")
    fig = new_figure(figsize=(10, 3.6))
    left, right = fig.subplots(1, 2)
    ticks, names = [], []
    for x, (_, r) in enumerate(runs.sort_values(["optimizer", "seed"], ascending=[False, True])
                               .iterrows()):  # fmt: skip
        g, top = np.asarray(r["max_gains"]), np.asarray(r["top_signal_gains"])
        color = COLORS[r["optimizer"]]
        left.plot(np.arange(1, depth + 1), g, "o-", color=color, ms=4, alpha=0.7)
        right.plot(x, g[k - 1], "o", color=color, ms=7)
        right.plot(x, top[k - 1], "o", mfc="none", color=color, ms=11)
        right.plot([x - 0.3, x + 0.3], [g[-1] ** (k / depth)] * 2, "-", color="k", lw=2)
        ticks.append(x)
        names.append(f"{NAMES[r['optimizer']]} {int(r['seed'])}")
    left.axvspan(k - 0.4, k + 0.4, color="0.85", zorder=0)
    left.set_xlabel("layer k")
    left.set_ylabel("max gain up to layer k")
    left.set_title("Fig. 6, all runs (red: Adam, blue: SGD)", fontsize=10)
    right.set_xticks(ticks, names, rotation=45, fontsize=8)
    right.set_ylabel(f"gain up to layer {k}")
    right.set_title(f"layer {k}: dot max gain, circle top signal, bar balanced "
                    f"$g_m^{{{k}/{depth}}}$", fontsize=10)  # fmt: skip
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def fig6_slider(runs: pd.DataFrame) -> SliderFigure:
    """:func:`plot_layer_gains` with a slider for the layer (default: the middle one)."""
    check_runs(runs)
    depth = len(runs["max_gains"].iloc[0])
    layers = list(range(1, depth + 1))
    return slider_figure(
        lambda layer: plot_layer_gains(runs, layer),
        {"layer": layers},
        labels={"layer": "layer k"},
    )


# ------------------------------------------------------------------- Fig. 7, Lemma 2


def plot_fig7(
    analysis: FlatSharpAnalysis, sgd_seed: int, adam_seed: int, radius: float | None = None
) -> Figure:
    """Fig. 7 for one pair: (a) the segment, (b)-(c) close-ups, (d)-(e) top eigenvectors.

    The close-ups show the loss minus its value at the end, within
    ``CLOSEUP_HALF_WIDTH``, on a shared scale. Panels (d)-(e) show radii up to
    ``radius`` (default: all computed) on a shared scale, so the true sharpness of the two
    minima can be compared by eye.
    """
    if (sgd_seed, adam_seed) not in analysis.pairs:
        raise ValueError(f"no pair (sgd_seed={sgd_seed}, adam_seed={adam_seed}) in analysis")
    p = analysis.pairs[(sgd_seed, adam_seed)]
    es, ea = analysis.eigen[("sgd", sgd_seed)], analysis.eigen[("adam", adam_seed)]
    radius = float(es.radii.max()) if radius is None else as_float(radius, "radius", positive=True)
    fig = new_figure(figsize=(11, 6))
    gs = fig.add_gridspec(2, 6, left=0.07, right=0.98, bottom=0.09, top=0.9,
                          hspace=0.45, wspace=0.9)  # fmt: skip
    ax = fig.add_subplot(gs[0, :4])
    ax.plot(p.s, p.loss, "k.-")
    ends = np.interp([0.0, p.distance], p.s, p.loss)
    ax.plot([0], ends[:1], "o", color=COLORS["sgd"], label="SGD w(1)")
    ax.plot([p.distance], ends[1:], "o", color=COLORS["adam"], label="Adam w(2)")
    ax.set(xlabel="distance along v_int from w(1)", ylabel="training loss",
           title=f"(a) segment: SGD seed {sgd_seed} -> Adam seed {adam_seed}")  # fmt: skip
    ax.legend(fontsize=8)
    zero = len(p.closeup_s) // 2
    rises = [p.closeup_sgd - p.closeup_sgd[zero], p.closeup_adam - p.closeup_adam[zero]]
    top = max(float(np.max(r)) for r in rises)
    for col, rise, opt, curv, tag in (
        (4, rises[0], "sgd", p.curv_sgd, "b"),
        (5, rises[1], "adam", p.curv_adam, "c"),
    ):
        bx = fig.add_subplot(gs[0, col])
        bx.plot(p.closeup_s, rise, ".-", color=COLORS[opt])
        bx.set_ylim(min(0.0, float(rise.min())) - 0.05 * top, 1.05 * top)
        bx.set_title(f"({tag}) {NAMES[opt]} end\ncurv. {curv:.2g}", fontsize=8)
        bx.set_xlabel("offset", fontsize=8)
        bx.tick_params(labelsize=7)
    ymax = 0.0
    panels = []
    for col, e, tag in ((slice(0, 3), es, "d"), (slice(3, 6), ea, "e")):
        cx = fig.add_subplot(gs[1, col])
        keep = np.abs(e.radii) <= radius * (1 + 1e-12)
        cx.plot(e.radii[keep], e.loss[keep], "-", color=COLORS[e.optimizer])
        ymax = max(ymax, float(e.loss[keep].max()))
        cx.set(xlabel=f"distance along v_max of {NAMES[e.optimizer]}",
               title=f"({tag}) {NAMES[e.optimizer]} seed {e.seed}: "
                     f"lambda_max {e.lambda_max:.3g}")  # fmt: skip
        panels.append(cx)
    for cx in panels:
        cx.set_ylim(0, ymax * 1.05)
        cx.grid(alpha=0.3)
    panels[0].set_ylabel("training loss")
    return fig


def fig7_slider(analysis: FlatSharpAnalysis, radii: Sequence[float] | None = None) -> SliderFigure:
    """Fig. 7 with sliders for the SGD seed and the Adam seed (and the radius, if given).

    The radius slider starts at the largest radius, the view of the static figure.
    Frames are drawn from the precomputed ``analysis``; with four seeds each the pair sliders
    span 16 frames, and ``radii`` multiplies that by its length (at most 96 in all).
    """
    sliders: dict[str, list[Any]] = {
        "sgd_seed": sorted({i for i, _ in analysis.pairs}),
        "adam_seed": sorted({j for _, j in analysis.pairs}),
    }
    defaults: dict[str, Any] = {}
    if radii is not None:
        sliders["radius"] = [as_float(r, "radii[i]", positive=True) for r in radii]
        defaults["radius"] = max(sliders["radius"])
    return slider_figure(
        lambda **kw: plot_fig7(analysis, **kw),
        sliders,
        defaults=defaults,
        labels={k: v for k, v in _LABELS.items() if k in sliders},
    )
