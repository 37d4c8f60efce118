"""Figures of chapter 9: sharpness against step size and depth (Sec. 6, Figs. 4 and 5).

The runs and their analysis come from :mod:`flatlib.experiments.step_size_depth` (one row per
``(depth m, step size eta)`` tile, :func:`flatlib.experiments.step_size_depth.run_chapter`);
this module only draws them.

* :func:`plot_fig4` - Fig. 4: the sharpness map, the flattest sharpness per depth beside
  eq. (17), and the largest convergent step against depth.
* :func:`plot_fig5` - Fig. 5: the He-init sharpness map and both training curves at one tile.
* :func:`tile_slider` - every tile's training curves, sharpness against ``2 / eta`` and loss
  along the top Hessian eigenvector.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import (
    FixedLocator,
    FormatStrFormatter,
    LogLocator,
    NullFormatter,
    NullLocator,
)

from flatlib._validation import as_float_array
from flatlib.experiments.step_size_depth import (
    check_runs,
    depth_slope,
    flattest_sharpness_by_depth,
    max_convergent_step,
    run_depths,
    sharpness_map,
    training_curve,
)
from flatlib.figures import subplots
from flatlib.figures.widgets import SliderFigure, slider_figure

__all__ = [
    "plot_fig4",
    "plot_fig5",
    "tile_slider",
]


def _log_ticks(ax: Any) -> None:
    """Plain ``%g`` labels at 1, 2 and 5 times powers of ten on a log y axis (no mathtext,
    which is slow to render in every slider frame)."""
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _draw_map(ax: Any, runs: pd.DataFrame, title: str, vmax: float | None = None) -> Any:
    table = sharpness_map(runs)
    ax.set_facecolor("white")
    image = ax.imshow(
        table.to_numpy(dtype=float),
        origin="lower",
        aspect="auto",
        cmap="coolwarm",
        vmin=0.0,
        vmax=vmax,
    )
    ax.set_xticks(range(table.shape[1]), [f"{v:g}" for v in table.columns])
    ax.set_yticks(range(table.shape[0]), [str(v) for v in table.index])
    rows, cols = list(table.index), list(table.columns)
    for _, r in runs[runs["status"] == "diverged"].iterrows():
        ax.text(cols.index(r["lr"]), rows.index(r["depth"]), "x", ha="center", va="center")
    ax.set_xlabel(r"step size $\eta$")
    ax.set_ylabel("depth $m$")
    ax.set_title(title)
    return image


def _map_vmax(*tables: pd.DataFrame) -> float:
    values = np.concatenate([sharpness_map(t).to_numpy(dtype=float).ravel() for t in tables])
    values = values[np.isfinite(values)]
    return float(values.max()) if values.size else 1.0


def plot_fig4(runs: pd.DataFrame, prediction: Any | None = None) -> Figure:
    """Fig. 4: (a) the sharpness map (blank: not converged, ``x``: diverged), (b) flattest
    sharpness vs depth beside eq. (17), and (c) the largest convergent step vs depth on log-log
    axes with its fitted slope."""
    runs = check_runs(runs)
    flat = flattest_sharpness_by_depth(runs)
    max_lr = max_convergent_step(runs)
    depths = flat.index.to_numpy(dtype=float)
    pred = None
    if prediction is not None:
        pred = as_float_array(prediction, "prediction", ndim=1)
        if pred.size != depths.size:
            raise ValueError(f"prediction must hold {depths.size} values, got {pred.size}")
    fig, axes = subplots(1, 3, figsize=(14, 4), layout="constrained")
    image = _draw_map(axes[0], runs, "(a) sharpness, identity init")
    fig.colorbar(image, ax=axes[0], label=r"$\lambda_{\max}$ (MSELoss)")
    axes[1].plot(depths, flat.to_numpy(), "o-", label="flattest tile (measured)")
    if pred is not None:
        axes[1].plot(depths, pred, "k--", label=r"eq. (17) $/ d_y$, linear net")
    axes[1].set_xlabel("depth $m$")
    axes[1].set_ylabel(r"$\lambda_{\max}$")
    axes[1].set_title("(b) flattest minimum vs depth")
    axes[1].legend()
    ok = np.isfinite(max_lr.to_numpy(dtype=float))
    axes[2].loglog(depths[ok], max_lr.to_numpy()[ok], "s-", label="largest convergent step")
    slope = depth_slope(max_lr)
    if np.isfinite(slope):
        ref = max_lr.to_numpy()[ok][0] * (depths / depths[ok][0]) ** -1.0
        axes[2].loglog(depths, ref, "k:", label="slope -1 (theory)")
        axes[2].set_title(f"(c) fitted slope {slope:.2f}")
    else:
        axes[2].set_title("(c) fewer than two depths converged")
    axes[2].set_xlabel("depth $m$")
    axes[2].set_ylabel(r"$\eta_{\max}$")
    for axis, ticks in ((axes[2].xaxis, depths), (axes[2].yaxis, runs["lr"].unique())):
        axis.set_major_locator(FixedLocator(sorted(ticks)))
        axis.set_major_formatter(FormatStrFormatter("%g"))
        axis.set_minor_locator(NullLocator())
    axes[2].legend()
    return fig


def _tile(runs: pd.DataFrame, depth: int, lr: float) -> pd.Series | None:
    row = runs[(runs["depth"] == depth) & np.isclose(runs["lr"].astype(float), lr)]
    return None if row.empty else row.iloc[0]


def _target(*runs: pd.DataFrame) -> float:
    for table in runs:
        if "target_loss" in table.columns:
            values = table["target_loss"].astype(float).dropna()
            if len(values):
                return float(values.iloc[0])
    return float("nan")


def plot_fig5(identity: pd.DataFrame, he: pd.DataFrame, depth: int, lr: float) -> Figure:
    """Fig. 5: (a) the He-init sharpness map on the colour scale of Fig. 4(a), and (b) the
    full training loss of both initialisations at one tile ``(depth, lr)`` (checked once per
    epoch, :func:`flatlib.experiments.step_size_depth.training_curve`) beside the convergence
    target."""
    identity, he = check_runs(identity, "identity"), check_runs(he, "he")
    rows = {name: _tile(runs, depth, lr) for name, runs in (("identity", identity), ("He", he))}
    for name, row in rows.items():
        if row is None:
            raise ValueError(f"no tile with depth={depth}, lr={lr} in the {name} runs")
    fig, axes = subplots(1, 2, figsize=(10, 4), layout="constrained")
    image = _draw_map(axes[0], he, "(a) sharpness, He init", vmax=_map_vmax(identity, he))
    fig.colorbar(image, ax=axes[0], label=r"$\lambda_{\max}$ (MSELoss)")
    for (name, row), style in zip(rows.items(), ("C0-", "C3-"), strict=True):
        steps, loss = training_curve(row)
        axes[1].semilogy(steps, loss, style, marker="o", label=f"{name} init ({row['status']})")
    target = _target(identity, he)
    if np.isfinite(target):
        axes[1].axhline(target, color="k", ls="--", label=f"target {target:g}")
    if "trivial_loss" in identity.columns:
        trivial = float(identity["trivial_loss"].iloc[0])
        axes[1].axhline(trivial, color="0.5", ls=":", label="trivial (mean digit)")
    _log_ticks(axes[1])
    axes[1].set_xlabel("SGD step")
    axes[1].set_ylabel("full training loss (MSE)")
    axes[1].set_title(rf"(b) $m = {depth}$, $\eta = {lr:g}$")
    axes[1].legend(fontsize=8)
    return fig


def _draw_tile(runs: dict[str, pd.DataFrame], depth: int, lr: float) -> Figure:
    fig, axes = subplots(1, 3, figsize=(14, 3.6))
    fig.subplots_adjust(wspace=0.3)
    names = list(runs)
    target = _target(*runs.values())
    for i, name in enumerate(names):
        row = _tile(runs[name], depth, lr)
        color = f"C{3 * i}"
        if row is None:
            axes[0].plot([], [], color=color, label=f"{name} (not run)")
            axes[1].text(i, 0.0, "not run", ha="center", va="bottom")
            _draw_section(axes[2], None, color, name, False)
            continue
        steps, loss = training_curve(row)
        axes[0].semilogy(steps, loss, f"{color}-", marker="o", label=f"{name} ({row['status']})")
        ok = row["status"] == "converged" and np.isfinite(float(row["sharpness"]))
        value = float(row["sharpness"]) if ok else 0.0
        axes[1].bar(i, value, color=color, alpha=1.0 if ok else 0.0)
        axes[1].text(i, value, f"{value:.3g}" if ok else str(row["status"]), ha="center",
                     va="bottom")  # fmt: skip
        _draw_section(axes[2], row, color, name, ok)
    if np.isfinite(target):
        axes[0].axhline(target, color="k", ls="--", lw=1, label=f"target {target:g}")
    _log_ticks(axes[0])
    axes[0].set_xlabel("SGD step")
    axes[0].set_ylabel("full training loss")
    axes[0].set_title(rf"training curve, $m = {depth}$, $\eta = {lr:g}$")
    axes[0].legend(fontsize=8)
    axes[1].axhline(2.0 / lr, color="k", ls="--", label=r"$2/\eta$")
    axes[1].set_xticks(range(len(names)), names)
    axes[1].set_ylim(0.0, 1.15 * max(2.0 / lr, _map_vmax(*runs.values())))
    axes[1].set_ylabel(r"$\lambda_{\max}$")
    axes[1].set_title("measured sharpness vs stability bound")
    axes[1].legend()
    axes[2].set_xlabel(r"$r$ (step along the top Hessian eigenvector)")
    axes[2].set_ylabel(r"$L(\mathbf{w} + r\,\mathbf{v}_{\max}) - L(\mathbf{w})$")
    axes[2].set_title(r"cross-section; dashed: $\lambda_{\max} r^2 / 2$")
    axes[2].legend(fontsize=8)
    return fig


def _draw_section(ax: Any, row: pd.Series | None, color: str, name: str, ok: bool) -> None:
    """One run's loss along its top eigenvector beside the quadratic ``lambda_max r^2 / 2``.

    The rise is measured from the section's own value at ``r = 0``: the section is taken on
    the run's ``sharpness_samples`` pairs, not on the whole training set."""
    radii = None if row is None else row.get("section_radii")
    if not ok or not isinstance(radii, np.ndarray):
        why = "not run" if row is None else str(row["status"])
        ax.plot([], [], color=color, label=f"{name}: no section ({why})")
        return
    loss = np.asarray(row["section_loss"], dtype=float)
    rise = loss - loss[int(np.argmin(np.abs(radii)))]  # the loss at r = 0 on the same pairs
    ax.plot(radii, rise, "o", color=color, ms=4, label=f"{name}, measured")
    fine = np.linspace(radii[0], radii[-1], 101)
    ax.plot(fine, 0.5 * float(row["sharpness"]) * fine**2, "--", color=color,
            label=f"{name}, quadratic")  # fmt: skip


def tile_slider(identity: pd.DataFrame, he: pd.DataFrame) -> SliderFigure:
    """Pick a tile ``(depth, step size)`` of the identity grid: both training curves, the
    sharpness vs ``2/eta``, and the loss along each converged run's top Hessian eigenvector
    beside ``lambda_max r^2 / 2``. A tile the He grid lacks is marked "not run"."""
    identity, he = check_runs(identity, "identity"), check_runs(he, "he")
    depths = [int(d) for d in run_depths(identity)]
    lrs = sorted(float(v) for v in identity["lr"].unique())
    runs = {"identity": identity, "He": he}
    return slider_figure(
        lambda depth, lr: _draw_tile(runs, depth, lr),
        {"depth": depths, "lr": lrs},
        labels={"depth": "depth m", "lr": "step size"},
    )
