"""Figures and sliders of the edge-of-stability chapter (Cohen et al., 2021; Dinh et al., 2017).

The runs come from :func:`flatlib.experiments.edge_of_stability.run_chapter` (a DataFrame with
one row per step size) and :func:`flatlib.experiments.edge_of_stability.relu_orbit_table`, the
Theorem 1 floor from :func:`flatlib.theory.linear.flattest_sharpness`, and the rescaling orbits
from :mod:`flatlib.theory.rescaling`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from flatlib.figures import subplots
from flatlib.figures.widgets import SliderFigure, slider_figure
from flatlib.theory import linear, rescaling

__all__ = [
    "draw_run",
    "eos_slider",
    "orbit_table",
    "plot_linear_orbits",
    "plot_overview",
    "plot_relu_orbit",
    "plot_theorem1",
]


def _row(table: pd.DataFrame, eta: float) -> pd.Series:
    idx = int(np.argmin(np.abs(table["eta"].to_numpy() - eta)))
    return table.iloc[idx]


def _colors(n: int) -> list[Any]:
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    return [cmap(v) for v in np.linspace(0.0, 0.85, n)]


def draw_run(table: pd.DataFrame, eta: float, floor: float | None = None) -> Figure:
    """One run of ``table``: sharpness against step with ``2 / eta`` (left), loss (right).

    ``floor`` (e.g. the Theorem 1 value, eq. 17) is drawn as a dotted line.
    """
    row = _row(table, eta)
    fig, (ax1, ax2) = subplots(1, 2, figsize=(10, 3.6))
    ax1.plot(row["sharpness_steps"], row["sharpness"], color="C0", label=r"$\lambda_{\max}$")
    ax1.axhline(row["two_over_eta"], color="k", ls="--", label=r"$2/\eta$")
    if floor is not None:
        ax1.axhline(floor, color="C3", ls=":", label="flattest minimum (eq. 17)")
    top = np.nanmax(np.concatenate([row["sharpness"], [row["two_over_eta"]]]))
    ax1.set_ylim(0, 1.15 * top)
    ax1.set_xlabel("step")
    ax1.set_ylabel("sharpness")
    ax1.set_title(rf"$\eta$ = {row['eta']:.3g}: {row['status']}")
    ax1.legend(loc="lower right", fontsize=8)
    losses = np.asarray(row["losses"], dtype=float)
    ax2.semilogy(np.arange(losses.size), losses, color="C1", lw=0.8)
    ax2.set_xlabel("step")
    ax2.set_ylabel("training loss (eq. 2)")
    ax2.set_title("loss")
    fig.tight_layout()
    return fig


def eos_slider(table: pd.DataFrame, floor: float | None = None) -> SliderFigure:
    """Slider over the step sizes of ``table`` showing :func:`draw_run` for each."""
    etas = [float(e) for e in table["eta"]]
    return slider_figure(
        lambda eta: draw_run(table, eta, floor),
        {"eta": etas},
        defaults={"eta": etas[len(etas) // 2]},
        labels={"eta": "step size"},
    )


def plot_overview(
    table: pd.DataFrame,
    floor: float | None = None,
    title: str = "",
    max_step: int | None = None,
) -> Figure:
    """All runs of ``table``: sharpness against step, each with its ``2 / eta`` line in the
    same colour (the layout of Cohen et al., 2021, Fig. 1), and the losses.

    ``max_step`` limits the step axis (default: the longest run).
    """
    fig, (ax1, ax2) = subplots(1, 2, figsize=(10, 3.8))
    colors = _colors(len(table))
    for i, (color, (_, row)) in enumerate(zip(colors, table.iterrows(), strict=True)):
        z = len(table) - i  # small step sizes on top: large ones may oscillate in a wide band
        ax1.plot(
            row["sharpness_steps"],
            row["sharpness"],
            color=color,
            lw=1,
            zorder=z,
            label=rf"$\eta$ = {row['eta']:.3g}",
        )
        ax1.axhline(row["two_over_eta"], color=color, ls="--", lw=1)
        losses = np.asarray(row["losses"], dtype=float)
        ax2.semilogy(np.arange(losses.size), losses, color=color, lw=0.8, zorder=z)
    if floor is not None:
        ax1.axhline(floor, color="C3", ls=":", lw=2, label="flattest (eq. 17)")
    ax1.set_ylim(0, 1.3 * float(table["two_over_eta"].median() * 2))
    if max_step is not None:
        ax1.set_xlim(0, max_step)
        ax2.set_xlim(0, max_step)
    ax1.set_xlabel("step")
    ax1.set_ylabel(r"sharpness $\lambda_{\max}$ (dashed: $2/\eta$)")
    ax1.legend(fontsize=7, loc="upper right")
    ax1.set_title(title)
    ax2.set_xlabel("step")
    ax2.set_ylabel("training loss (eq. 2)")
    fig.tight_layout()
    return fig


def plot_theorem1(table: pd.DataFrame, floor: float) -> Figure:
    """The two runs of ``table`` closest to ``0.9`` and ``1.1`` times ``2 / floor``.

    ``floor`` is the flattest sharpness (Theorem 1, eq. 17). Below the threshold GD can
    settle (at a minimum with sharpness between ``floor`` and ``2 / eta``); above it no
    global minimum is stable and the loss stays away from zero.
    """
    threshold = 2.0 / floor
    rows = [_row(table, f * threshold) for f in (0.9, 1.1)]
    fig, (ax1, ax2) = subplots(1, 2, figsize=(10, 3.8))
    for color, z, row in zip(("C2", "C3"), (3, 2), rows, strict=True):
        side = "below" if row["eta"] < threshold else "above"
        label = rf"$\eta$ = {row['eta'] / threshold:.1f} x threshold ({side})"
        alpha = 1.0 if side == "below" else 0.6
        ax1.plot(
            row["sharpness_steps"],
            row["sharpness"],
            color=color,
            label=label,
            lw=1,
            zorder=z,
            alpha=alpha,
        )
        ax1.axhline(row["two_over_eta"], color=color, ls="--", lw=1.5, zorder=4)
        losses = np.asarray(row["losses"], dtype=float)
        ax2.semilogy(
            np.arange(losses.size), losses, color=color, lw=0.8, label=label, zorder=z, alpha=alpha
        )
    ax1.axhline(floor, color="k", ls=":", lw=2, label="flattest minimum (eq. 17)")
    ax1.set_ylim(0, 2.5 * floor)
    ax1.set_xlabel("step")
    ax1.set_ylabel(r"sharpness (dashed: $2/\eta$)")
    ax1.legend(fontsize=7)
    ax2.set_xlabel("step")
    ax2.set_ylabel("training loss (eq. 2)")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    return fig


def orbit_table(weights: Any, scales: Any) -> pd.DataFrame:
    """Sharpness (eq. 20) along every rescaling orbit ``k = 1..m-1`` of a linear minimum."""
    ws = [np.asarray(w, dtype=float) for w in weights]
    scales = np.asarray(scales, dtype=float)
    frames = [
        pd.DataFrame({"k": k, "a": scales, "sharpness": rescaling.orbit_sharpness(ws, k, scales)})
        for k in range(1, len(ws))
    ]
    return pd.concat(frames, ignore_index=True)


def plot_linear_orbits(minima: dict[str, Any], T: Any, scales: Any) -> Figure:
    """Sharpness along the rescaling orbits of each named linear minimum in ``minima``.

    One panel per minimum, one curve per pair of layers ``(k, k+1)``; dots mark each orbit's
    flattest point (:func:`flatlib.theory.rescaling.orbit_minimum`), the dotted line the Theorem 1
    floor.
    """
    m = len(next(iter(minima.values())))
    floor = linear.flattest_sharpness(T, m)
    fig, axes = subplots(1, len(minima), figsize=(5 * len(minima), 3.8), squeeze=False)
    for ax, (name, ws) in zip(axes[0], minima.items(), strict=True):
        table = orbit_table(ws, scales)
        for k in range(1, m):
            part = table[table["k"] == k]
            ax.loglog(part["a"], part["sharpness"], color=f"C{k - 1}", label=f"layers {k}, {k + 1}")
            a_star, s_star = rescaling.orbit_minimum(ws, k)
            ax.plot([a_star], [s_star], "o", color=f"C{k - 1}")
        ax.axhline(floor, color="k", ls=":", label="flattest (eq. 17)")
        ax.axvline(1.0, color="0.6", lw=0.8)
        ax.set_xlabel("rescaling factor a")
        ax.set_ylabel("sharpness (eq. 20)")
        ax.set_title(name)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_relu_orbit(table: pd.DataFrame, eta: float) -> Figure:
    """Sharpness of the rescaled ReLU nets of
    :func:`flatlib.experiments.edge_of_stability.relu_orbit_table` (one curve per value of its
    ``k`` column, if any), with the ``2 / eta`` of the training run."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    fig, ax = subplots(figsize=(6, 3.8))
    groups = table.groupby("k") if "k" in table else [(None, table)]
    for k, part in groups:
        label = "same function" if k is None else f"layers {k}, {k + 1} rescaled"
        ax.loglog(part["a"], part["sharpness"], "o-", label=label)
    ax.axhline(2.0 / eta, color="k", ls="--", label=r"$2/\eta$ of the training run")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(sorted(set(np.round(table["a"].to_numpy(dtype=float), 2))))
    ax.set_xlabel("rescaling factor a")
    ax.set_ylabel(r"sharpness $\lambda_{\max}$")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
