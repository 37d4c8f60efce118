"""Figures of chapter 11: the Hessian spectrum, its bulk and its outliers (Sagun et al.).

Drawing only: the runs are the :class:`flatlib.experiments.hessian_spectrum.ChapterRuns` of
:func:`flatlib.experiments.hessian_spectrum.run_chapter`, and nothing here recomputes them.

* :func:`plot_fig1` - Fig. 1: the whole ordered spectrum at initialisation and after training.
* :func:`plot_pca_hessian` - Figs. 2-3: the data's PCA variances beside the Hessian's top
  eigenvalues, one column per number of clusters.
* :func:`plot_ggn` - the Gauss-Newton term carries the outliers (Sec. 2.1).
* :func:`plot_widths` - Figs. 4-6: both edges of the spectrum for growing width.
* :func:`spectrum_slider` - the top eigenvalues of the GD cluster runs as training proceeds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from flatlib.curvature.outliers import count_gap
from flatlib.experiments.hessian_spectrum import (
    ACTIVATION_NAMES,
    ALGORITHM_NAMES,
    SLIDER_KS,
    ChapterRuns,
    check_runs,
    unique_row,
)
from flatlib.figures import new_figure
from flatlib.figures.widgets import SliderFigure, slider_figure

__all__ = [
    "plot_fig1",
    "plot_ggn",
    "plot_pca_hessian",
    "plot_widths",
    "spectrum_slider",
]


def plot_fig1(runs: ChapterRuns) -> Figure:
    """Fig. 1: the whole ordered Hessian spectrum at initialisation and after training.

    Drawn for the width that :func:`flatlib.experiments.hessian_spectrum.width_grid` marks
    ``decompose``: (a) all ``N`` eigenvalues in order, (b) their histogram on a logarithmic
    count axis.
    """
    check_runs(runs)
    r = unique_row(runs.widths, decompose=True)
    fig = new_figure(figsize=(10, 3.6))
    ax1, ax2 = fig.subplots(1, 2)
    styles = (("init", "tab:gray", "initial point"), ("end", "tab:blue", "after training"))
    for tag, color, label in styles:
        lam = np.asarray(r[f"spectrum_{tag}"])
        ax1.plot(np.arange(1, lam.size + 1), lam, ".", ms=2, color=color, label=label)
        ax2.hist(lam, bins=80, color=color, alpha=0.6, label=label, log=True)
    ax1.set(xlabel="order (ascending)", ylabel="eigenvalue",
            title=f"(a) all {r['n_params']:,} eigenvalues")  # fmt: skip
    ax2.set(xlabel="eigenvalue", ylabel="count (log)", title="(b) histogram")
    ax1.legend(loc="upper left")
    fig.tight_layout()
    return fig


def plot_pca_hessian(
    runs: ChapterRuns, algorithm: str = "gd", activation: str = "relu", cov: float = 1.0
) -> Figure:
    """Figs. 2-3: the data's PCA variances (top) beside the Hessian's top eigenvalues (bottom).

    One column per number of clusters ``k``; the dashed line marks ``k`` and the red bar the
    largest-gap count (:func:`flatlib.curvature.outliers.count_gap`).
    """
    check_runs(runs)
    sel = runs.clusters[(runs.clusters["algorithm"] == algorithm)
                        & (runs.clusters["activation"] == activation)
                        & (runs.clusters["cov"] == cov)].sort_values("k")  # fmt: skip
    if sel.empty:
        raise ValueError(f"no cluster runs for {algorithm}/{activation}/cov={cov}")
    cols = len(sel)
    fig = new_figure(figsize=(2.6 * cols, 5.2))
    axes = fig.subplots(2, cols, squeeze=False)
    for j, r in enumerate(sel.itertuples()):
        pca = np.asarray(r.pca)[:30]
        top = np.asarray(r.top)[-1]
        ax = axes[0, j]
        ax.plot(np.arange(1, pca.size + 1), pca, "o-", ms=3, color="tab:green")
        ax.axvline(r.k + 0.5, color="k", ls="--", lw=0.8)
        ax.set_title(f"k = {r.k}: data PCA")
        ax = axes[1, j]
        ax.plot(np.arange(1, top.size + 1), top, "o-", ms=3, color="tab:blue")
        ax.axvline(r.k + 0.5, color="k", ls="--", lw=0.8)
        ax.axvline(r.gap + 0.5, color="tab:red", lw=1.5, alpha=0.6)
        ax.set_title(f"Hessian: gap count {r.gap}")
        ax.set_xlabel("index (descending)")
    axes[0, 0].set_ylabel("PC variance")
    axes[1, 0].set_ylabel("eigenvalue")
    fig.suptitle(f"{ALGORITHM_NAMES[algorithm]}, {ACTIVATION_NAMES[activation]}: "
                 "dashed = k, red = largest gap")  # fmt: skip
    fig.tight_layout()
    return fig


def plot_ggn(runs: ChapterRuns) -> Figure:
    """The Gauss-Newton term carries the outliers (Sec. 2.1).

    Panel (a) shows the 30 largest eigenvalues of ``H`` and ``G`` after training and at
    initialisation; panel (b) all eigenvalues of the final ``G`` in descending order (log
    scale), with the rank bound ``n (k - 1)`` beyond which they must vanish.
    """
    check_runs(runs)
    r = unique_row(runs.widths, decompose=True)
    fig = new_figure(figsize=(10, 3.6))
    ax1, ax2 = fig.subplots(1, 2)
    idx = np.arange(1, 31)
    ax1.plot(idx, r["top_H_end"], "o", color="tab:blue", label="H, after training")
    ax1.plot(idx, r["top_G_end"], "x", color="tab:orange", label="G, after training")
    ax1.plot(idx, r["top_H_init"], "o", mfc="none", color="tab:gray", label="H, initial")
    ax1.plot(idx, r["top_G_init"], "x", color="tab:brown", alpha=0.6, label="G, initial")
    ax1.set(yscale="log", xlabel="index (descending)", ylabel="eigenvalue",
            title="(a) top eigenvalues of H and G")  # fmt: skip
    ax1.legend(fontsize=8)
    lam = np.sort(np.asarray(r["ggn_spectrum_end"]))[::-1]
    ax2.semilogy(np.arange(1, lam.size + 1), np.clip(np.abs(lam), 1e-20, None), ".", ms=2)
    ax2.axvline(r["rank_bound"], color="tab:red", ls="--", label=f"n(k-1) = {r['rank_bound']}")
    ax2.set(xlabel="index (descending)", ylabel="|eigenvalue| of G",
            title=f"(b) spectrum of G, N = {r['n_params']:,}")  # fmt: skip
    ax2.legend()
    fig.tight_layout()
    return fig


def plot_widths(runs: ChapterRuns, edge: int = 40) -> Figure:
    """Figs. 4-6: the right edge, the left edge and the left edge against ``index / N``.

    Panel (a) shows the ``edge`` largest eigenvalues for each width (Fig. 4), panel (b) the
    ``edge`` most negative ones (Fig. 5), panel (c) the negative eigenvalues divided by
    ``lambda_min`` against their order divided by ``N`` (Fig. 6's rescaled axis).
    """
    check_runs(runs)
    fig = new_figure(figsize=(12, 3.6))
    ax1, ax2, ax3 = fig.subplots(1, 3)
    for r in runs.widths.sort_values("width").itertuples():
        lam = np.asarray(r.spectrum_end)
        label = f"h = {r.width} (N = {r.n_params:,})"
        ax1.plot(np.arange(1, edge + 1), lam[::-1][:edge], "o-", ms=3, label=label)
        ax2.plot(np.arange(1, edge + 1), lam[:edge], "o-", ms=3, label=label)
        neg = lam[lam < 0]
        ax3.plot(np.arange(1, neg.size + 1) / r.n_params, neg / lam[0], "-", label=label)
    ax1.set(xlabel="index (descending)", ylabel="eigenvalue", title="(a) right edge")
    ax2.set(xlabel="index (ascending)", ylabel="eigenvalue", title="(b) left edge")
    ax3.set(xlabel="index / N", ylabel="eigenvalue / lambda_min", xscale="log",
            title="(c) negative eigenvalues, rescaled")  # fmt: skip
    ax1.legend(fontsize=8)
    fig.tight_layout()
    return fig


def spectrum_slider(runs: ChapterRuns, ks: Sequence[int] = SLIDER_KS) -> SliderFigure:
    """The top Hessian eigenvalues of the GD runs as training proceeds (slider UI).

    Sliders: number of clusters ``k`` (``ks``), activation and training step (the snapshots
    of :func:`flatlib.experiments.hessian_spectrum.cluster_grid`). Left: the data's PCA
    variances; right: the top ``2k + 10`` Hessian eigenvalues at that step, with ``k``
    (dashed) and the largest-gap count (red).
    """
    check_runs(runs)
    gd = runs.clusters[(runs.clusters["algorithm"] == "gd") & (runs.clusters["cov"] == 1.0)
                       & runs.clusters["k"].isin(list(ks))]  # fmt: skip
    steps = [int(s) for s in np.asarray(gd.iloc[0]["snapshot_steps"])]

    def draw(k: int, activation: str, step: int) -> Figure:
        r = unique_row(gd, k=k, activation=activation)
        i = steps.index(step)
        top = np.asarray(r["top"])[i]
        fig = new_figure(figsize=(9, 3.4))
        ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.6]})
        pca = np.asarray(r["pca"])[:30]
        ax1.plot(np.arange(1, pca.size + 1), pca, "o-", ms=3, color="tab:green")
        ax1.axvline(k + 0.5, color="k", ls="--", lw=0.8)
        ax1.set(title=f"data PCA, k = {k}", xlabel="component", ylabel="variance")
        gap = count_gap(top, top.size)
        ax2.plot(np.arange(1, top.size + 1), top, "o-", ms=3)
        ax2.axvline(k + 0.5, color="k", ls="--", lw=0.8, label="k")
        ax2.axvline(gap + 0.5, color="tab:red", lw=1.5, alpha=0.6, label=f"largest gap: {gap}")
        ax2.set(title=f"Hessian top eigenvalues, {ACTIVATION_NAMES[activation]}, step {step}",
                xlabel="index (descending)", ylabel="eigenvalue")  # fmt: skip
        ax2.set_ylim(min(0.0, float(top.min())), 1.05 * float(top.max()))
        ax2.legend()
        fig.tight_layout()
        return fig

    return slider_figure(
        draw,
        {"k": list(ks), "activation": ["relu", "tanh"], "step": steps},
        defaults={"k": ks[len(ks) // 2], "activation": "relu", "step": steps[-1]},
        labels={"k": "clusters k", "activation": "activation", "step": "training step"},
    )
