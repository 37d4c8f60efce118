"""Figures of chapter 14: the Sec. 5 conjecture of Mulayoff & Michaeli (2020) for non-white inputs.

The numbers come from :mod:`flatlib.theory.non_white` (both sides of
``min_Omega lambda_max(H_w) = max_{||B||_F = 1} nu(B)``) by way of
:mod:`flatlib.experiments.non_white`; this module only draws them.

* :func:`plot_gap_distribution` - the relative gap between the two sides over a table of
  random instances (:func:`flatlib.experiments.non_white.conjecture_table`), before and after
  optimising, and how far the non-white flattest sharpness is from Theorem 1's white formula
  (eq. 17).
* :func:`plot_conjecture`, :func:`conjecture_slider` - one ``2 x 2`` instance per condition
  number and depth (:func:`flatlib.experiments.non_white.slider_data`): the descent of
  ``lambda_max`` along ``Omega`` onto ``max nu`` (left) and ``nu`` over rank-one
  ``B = a c^T`` as the direction ``c`` turns (right).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from flatlib.experiments import non_white as nw_experiment
from flatlib.figures import new_figure
from flatlib.figures.widgets import SliderFigure, slider_figure

__all__ = [
    "GAP_FLOOR",
    "conjecture_slider",
    "plot_conjecture",
    "plot_gap_distribution",
]

GAP_FLOOR = 1e-17
"""Gaps below this (including rounding-level negative ones) are drawn at this floor."""

_DEPTH_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def plot_gap_distribution(table: Any) -> Figure:
    """Relative gap ``min lambda_max / max nu - 1`` over instances (conjecture of Sec. 5).

    ``table`` is the DataFrame of :func:`flatlib.experiments.non_white.conjecture_table`. Left:
    the gap at the flattest starting minimum (grey) and after the descent along ``Omega``
    (coloured by depth ``m``), against the condition number of ``Sigma_x`` (log scales;
    ``|gap|`` below :data:`GAP_FLOOR` drawn at the floor). Right: the flattest sharpness found
    divided by Theorem 1's white value ``2m sigma_max(T)^(2(1-1/m))`` (eq. 17) for the same
    ``T``.
    """
    conditions = np.sort(table["condition"].unique())
    depths = np.sort(table["m"].unique())
    pos = {k: i for i, k in enumerate(conditions)}
    rng = np.random.default_rng(0)
    x = np.array([pos[k] for k in table["condition"]], dtype=float)
    x += rng.uniform(-0.3, 0.3, x.size)

    fig = new_figure(layout="constrained", figsize=(10, 3.8))
    ax, bx = fig.subplots(1, 2)
    ax.scatter(
        x,
        np.maximum(table["start_gap"], GAP_FLOOR),
        s=12,
        color="0.6",
        label="best starting minimum",
    )
    for i, m in enumerate(depths):
        sel = (table["m"] == m).to_numpy()
        ax.scatter(
            x[sel],
            np.maximum(np.abs(table["gap"].to_numpy()[sel]), GAP_FLOOR),
            s=14,
            color=_DEPTH_COLORS[i % len(_DEPTH_COLORS)],
            label=f"after descent, m = {m}",
        )
        bx.scatter(
            x[sel],
            (table["min_sharpness"] / table["white_value"]).to_numpy()[sel],
            s=14,
            color=_DEPTH_COLORS[i % len(_DEPTH_COLORS)],
            label=f"m = {m}",
        )
    ax.axhspan(GAP_FLOOR / 3, 1e-12, color="tab:green", alpha=0.08, lw=0)
    ax.text(0.02, 0.04, "rounding level", transform=ax.transAxes, color="tab:green", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylim(GAP_FLOOR / 3, 1e3)
    ax.set_ylabel(r"$\min_\Omega\lambda_{\max} / \max_B\,\nu(B) - 1$")
    ax.set_title(f"conjecture gap over {len(table)} instances", fontsize=10)
    ax.legend(fontsize=7, loc="center right")
    bx.axhline(1.0, color="k", lw=1, ls="--")
    bx.set_yscale("log")
    bx.set_ylabel("flattest sharpness / eq. (17)")
    bx.set_title("Theorem 1's white formula does not apply", fontsize=10)
    bx.legend(fontsize=7)
    for axis in (ax, bx):
        axis.set_xticks(range(len(conditions)))
        axis.set_xticklabels([f"{k:g}" for k in conditions])
        axis.set_xlabel(r"condition number of $\hat\Sigma_x$")
    return fig


def plot_conjecture(frame: nw_experiment.FrameData, condition: float, m: int) -> Figure:
    """One frame: the descent onto ``max nu`` (left) and the rank-one ``nu`` profile (right).

    Left: ``lambda_max(H_w)`` (eq. 20) along the descent over ``Omega`` from each start, with
    ``max nu`` (eq. 25, the proved lower bound) and Theorem 1's white value (eq. 17). Right:
    ``nu(a c^T)`` for unit ``c`` at angle ``theta`` and the best ``a``; its peak is ``max nu``,
    between the top eigenvector of ``Sigma_x`` (the optimum for ``m = 1``) and the top right
    singular vector of ``T Sigma^(1/2)`` (the limit ``m -> infinity``).
    """
    fig = new_figure(layout="constrained", figsize=(10, 3.8))
    ax, bx = fig.subplots(1, 2)
    for i, (h, label) in enumerate(zip(frame.histories, frame.labels, strict=True)):
        marker = "o" if h.size == 1 else None  # m = 1: Omega is a single point
        ax.plot(np.arange(1, h.size + 1), h, color=f"C{i}", lw=1.4, marker=marker, label=label)
    ax.axhline(frame.max_nu, color="k", ls="--", lw=1.2, label=r"$\max_B\,\nu(B)$ (25)")
    ax.axhline(frame.white_value, color="tab:red", ls=":", lw=1.2, label="white value (17)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    top = min(max(float(h[0]) for h in frame.histories), 30 * frame.max_nu)
    ax.set_ylim(min(frame.max_nu, frame.white_value) / 1.3, max(top, frame.white_value) * 1.3)
    ax.set_xlabel("L-BFGS iteration (all stages)")
    ax.set_ylabel(r"$\lambda_{\max}(\mathbf{H}_\mathbf{w})$")
    gap = min(float(h[-1]) for h in frame.histories) / frame.max_nu - 1
    ax.set_title(f"cond = {condition:g}, m = {m}:  gap {gap:.1e}", fontsize=10)
    ax.legend(fontsize=7, loc="upper right")

    deg = np.degrees(frame.theta)
    bx.plot(deg, frame.profile, color="k", lw=1.4, label=r"$\nu(\mathbf{a}\mathbf{c}^T)$")
    bx.axhline(frame.max_nu, color="k", ls="--", lw=1)
    bx.axvline(
        np.degrees(frame.theta_sigma),
        color="tab:blue",
        ls=":",
        label=r"top eigvec of $\hat\Sigma_x$",
    )
    bx.axvline(
        np.degrees(frame.theta_whitened),
        color="tab:orange",
        ls=":",
        label=r"top right sing. vec. of $\mathbf{T}\hat\Sigma_x^{1/2}$",
    )
    bx.plot(np.degrees(frame.theta_best), frame.max_nu, "o", color="k", ms=6, label="best c")
    bx.set_xlim(deg[0], deg[-1])
    bx.set_ylim(0, 1.15 * frame.max_nu)
    bx.set_xlabel(r"angle of $\mathbf{c}$ (degrees)")
    bx.set_ylabel(r"$\nu$ (eq. 25), rank-one $\mathbf{B}$")
    bx.legend(fontsize=7, loc="best", framealpha=0.9)
    return fig


def conjecture_slider(
    conditions: Sequence[float] = (1, 3, 10, 100, 1000),
    depths: Sequence[int] = (1, 2, 3, 4, 8),
    seed: int = 11,
    data: dict[tuple[float, int], nw_experiment.FrameData] | None = None,
) -> SliderFigure:
    """Sliders over the condition number of ``Sigma_x`` and the depth ``m`` for
    :func:`plot_conjecture`.

    ``data`` are the frames of :func:`flatlib.experiments.non_white.slider_data` for
    ``conditions`` and ``depths``; computed here (with ``seed``) when not given.
    """
    if data is None:
        data = nw_experiment.slider_data(conditions, depths, seed=seed)
    missing = [(k, m) for k in conditions for m in depths if (k, m) not in data]
    if missing:
        raise ValueError(f"data has no frame for (condition, m) in {missing}")

    def draw(condition: float, m: int) -> Figure:
        return plot_conjecture(data[(condition, m)], condition, m)

    return slider_figure(
        draw,
        {"condition": list(conditions), "m": list(depths)},
        defaults={
            "condition": conditions[min(3, len(conditions) - 1)],
            "m": depths[min(2, len(depths) - 1)],
        },
        labels={"condition": "condition number of Sigma_x", "m": "depth m"},
    )
