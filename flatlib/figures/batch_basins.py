"""Figures of chapter 12: large and small batch in one basin (Sagun et al., Secs. 3.3 and 4.1).

The runs come from :func:`flatlib.experiments.batch_basins.run_experiment` (one row per seed and
small batch size; a small batch equal to the large one is the control that keeps the large
batch), their numbers from :func:`flatlib.experiments.batch_basins.summary_table`.

* :func:`plot_two_phase` - Fig. 9: training and validation loss and accuracy across both
  phases.
* :func:`plot_eigenvalues` - Fig. 8 / Sec. 3.3: the top Hessian eigenvalues of the two end
  points and of the control run's end.
* :func:`plot_segment` - Fig. 10: loss and accuracy along the line through the end points,
  with the extensions beyond them.
* :func:`plot_directions` - the link to Chapter 3: the loss along each end's sharpest
  direction against the loss along the segment direction.
* :func:`batch_slider` - the four panels for every seed and small batch size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from flatlib._validation import as_int
from flatlib.experiments import batch_basins as bb
from flatlib.figures import subplots
from flatlib.figures.widgets import SliderFigure, slider_figure

__all__ = [
    "LARGE_COLOR",
    "SMALL_COLOR",
    "batch_slider",
    "plot_directions",
    "plot_eigenvalues",
    "plot_segment",
    "plot_two_phase",
]

LARGE_COLOR = "tab:red"
"""Colour of the large-batch end point (Phase I) in every figure."""
SMALL_COLOR = "tab:blue"
"""Colour of the small-batch end point (Phase II) in every figure."""


def _row(runs: pd.DataFrame, seed: int, small_batch: int) -> pd.Series:
    runs = bb.check_runs(runs)
    seed = as_int(seed, "seed", minimum=0)
    small_batch = as_int(small_batch, "small_batch", minimum=1)
    hit = runs[(runs["seed"] == seed) & (runs["small_batch"] == small_batch)]
    if hit.empty:
        have = sorted(zip(runs["seed"], runs["small_batch"], strict=True))
        raise ValueError(f"no run with seed={seed}, small_batch={small_batch}; have {have}")
    return hit.iloc[0]


# ---------------------------------------------------------------------------- panels


def _curves(ax_loss: Axes, ax_acc: Axes | None, row: pd.Series, control: pd.Series | None) -> None:
    steps = np.asarray(row["steps"])
    switch = int(row["steps_large"])
    ax_loss.plot(steps, row["train_loss"], color="k", lw=1.2, label="train")
    ax_loss.plot(steps, row["val_loss"], color="tab:orange", lw=1.2, label="validation")
    if control is not None:
        ax_loss.plot(control["steps"], control["train_loss"], color="k", lw=0.8, ls=":",
                     label=f"train, batch {int(control['small_batch'])} throughout")  # fmt: skip
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("cross-entropy loss")
    for ax in (ax_loss, ax_acc):
        if ax is not None:
            ax.axvline(switch, color="grey", lw=0.8, ls="--")
    ax_loss.set_title(
        f"batch {int(row['large_batch'])} $\\to$ {int(row['small_batch'])} "
        f"(seed {int(row['seed'])})"
    )
    ax_loss.legend(fontsize=7, loc="upper right")
    if ax_acc is not None:
        ax_acc.plot(steps, row["train_acc"], color="k", lw=1.2, label="train")
        ax_acc.plot(steps, row["val_acc"], color="tab:orange", lw=1.2, label="validation")
        ax_acc.set_ylim(0.85, 1.0)
        ax_acc.set_xlabel("step")
        ax_acc.set_ylabel("accuracy")
        ax_acc.legend(fontsize=7, loc="lower right")


def _segment(ax: Axes, row: pd.Series) -> None:
    a = np.asarray(row["alphas"])
    ax.plot(a, row["seg_train_loss"], color="k", label="train")
    ax.plot(a, row["seg_val_loss"], color="tab:orange", label="validation")
    ax.axvspan(0, 1, color="0.93", zorder=0)
    for alpha, color, name in ((0, LARGE_COLOR, "LB end"), (1, SMALL_COLOR, "SB end")):
        i = int(np.flatnonzero(a == alpha)[0])
        ax.plot([alpha], [row["seg_train_loss"][i]], "o", color=color, label=name)
    ax.set_yscale("log")
    ax.set_xlabel(r"$\alpha$  in  $(1-\alpha)\,\theta_{LB} + \alpha\,\theta_{SB}$")
    ax.set_ylabel("cross-entropy loss")
    ax.set_title(f"line through the end points (barrier {row['barrier']:.1e})")
    ax.legend(fontsize=7, loc="upper center")


def _eigen(ax: Axes, row: pd.Series, control: pd.Series | None = None) -> None:
    k = np.arange(1, len(row["eig_large"]) + 1)
    ax.plot(k, row["eig_large"], "o-", color=LARGE_COLOR, label="LB end (Phase I)")
    ax.plot(k, row["eig_small"], "s-", color=SMALL_COLOR, label="SB end (Phase II)")
    if control is not None:
        ax.plot(k, control["eig_small"], "^--", color="0.4", ms=4,
                label=f"batch {int(control['small_batch'])} throughout, same steps")  # fmt: skip
    ax.set_xlabel("rank $i$")
    ax.set_ylabel(r"$\lambda_i(\mathbf{H})$")
    ax.set_xticks(k[:: max(1, len(k) // 10)])
    ax.set_ylim(bottom=0)
    ax.set_title("top Hessian eigenvalues")
    ax.legend(fontsize=7)


def _directions(ax: Axes, row: pd.Series) -> None:
    r = np.asarray(row["radii"])
    ax.plot(r, row["xs_large_top"], color=LARGE_COLOR, label=r"LB end, top eigenvector")
    ax.plot(r, row["xs_small_top"], color=SMALL_COLOR, label=r"SB end, top eigenvector")
    ax.plot(r, row["xs_large_seg"], color=LARGE_COLOR, ls="--", label="LB end, segment direction")
    ax.plot(r, row["xs_small_seg"], color=SMALL_COLOR, ls="--", label="SB end, segment direction")
    ax.set_yscale("log")
    ax.set_xlabel("distance $r$ from the end point")
    ax.set_ylabel("training loss")
    ax.set_title("sharpest direction vs segment direction")
    ax.legend(fontsize=7, loc="upper center")


def _control(runs: pd.DataFrame, row: pd.Series) -> pd.Series | None:
    hit = runs[(runs["seed"] == row["seed"]) & (runs["small_batch"] == runs["large_batch"])]
    if hit.empty or int(row["small_batch"]) == int(row["large_batch"]):
        return None
    return hit.iloc[0]


# ---------------------------------------------------------------------------- figures


def plot_two_phase(runs: pd.DataFrame, seed: int = 0, small_batch: int = 32) -> Figure:
    """Fig. 9 of Sagun et al.: loss and accuracy (train and validation) across both phases.

    The dashed line marks the switch from the large to the small batch. The dotted curve, if
    the control run is in ``runs``, keeps the large batch through Phase II.
    """
    row = _row(runs, seed, small_batch)
    fig, (ax1, ax2) = subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    _curves(ax1, ax2, row, _control(runs, row))
    return fig


def plot_eigenvalues(runs: pd.DataFrame, small_batch: int = 32) -> Figure:
    """Sec. 3.3 / Fig. 8 of Sagun et al.: the top Hessian eigenvalues of both end points.

    One panel per seed: the end of Phase I (large batch), the end of Phase II (small batch)
    and, if ``runs`` has it, the end of the control run of the same seed, which keeps the
    large batch for as many steps as Phase II took (the fair partner of the Phase II end).
    """
    runs = bb.check_runs(runs)
    rows = runs[runs["small_batch"] == as_int(small_batch, "small_batch", minimum=1)]
    if rows.empty:
        raise ValueError(f"no run with small_batch={small_batch}")
    fig, axes = subplots(1, len(rows), figsize=(3.4 * len(rows), 3.2), layout="constrained",
                         sharey=True, squeeze=False)  # fmt: skip
    for ax, (_, row) in zip(axes[0], rows.iterrows(), strict=True):
        _eigen(ax, row, _control(runs, row))
        ax.set_title(f"seed {int(row['seed'])}, batch {int(row['large_batch'])} vs "
                     f"{int(row['small_batch'])}")  # fmt: skip
    return fig


def plot_segment(runs: pd.DataFrame, seed: int = 0, small_batch: int = 32) -> Figure:
    """Fig. 10 of Sagun et al.: loss and accuracy on the line through the two end points.

    The shaded band is the segment ``0 <= alpha <= 1``; outside it are the extensions beyond
    the large-batch end (``alpha < 0``) and beyond the small-batch end (``alpha > 1``).
    """
    row = _row(runs, seed, small_batch)
    fig, (ax1, ax2) = subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    _segment(ax1, row)
    a = np.asarray(row["alphas"])
    ax2.plot(a, row["seg_train_acc"], color="k", label="train")
    ax2.plot(a, row["seg_val_acc"], color="tab:orange", label="validation")
    ax2.axvspan(0, 1, color="0.93", zorder=0)
    ax2.set_xlabel(r"$\alpha$")
    ax2.set_ylabel("accuracy")
    ax2.set_title("accuracy along the same line")
    ax2.legend(fontsize=7)
    return fig


def plot_directions(runs: pd.DataFrame, seed: int = 0, small_batch: int = 32) -> Figure:
    """The loss along each end point's top Hessian eigenvector and along the segment.

    The link to Chapter 3: the 1-D plot through an end point shows the curvature of the
    segment direction, a Rayleigh quotient far below ``lambda_max``.
    """
    row = _row(runs, seed, small_batch)
    fig, ax = subplots(figsize=(5.5, 3.8), layout="constrained")
    _directions(ax, row)
    return fig


def batch_slider(runs: pd.DataFrame) -> SliderFigure:
    """The four panels (curves, segment, eigenvalues, directions) for every run in ``runs``.

    Sliders: the seed and the small batch size of Phase II (the large one is the control).
    All frames are drawn from the stored results; nothing is recomputed.
    """
    runs = bb.check_runs(runs)
    seeds = sorted({int(s) for s in runs["seed"]})
    batches = sorted({int(b) for b in runs["small_batch"]})

    def draw(seed: int, small_batch: int) -> Figure:
        row = _row(runs, seed, small_batch)
        fig, axes = subplots(2, 2, figsize=(10, 7), layout="constrained")
        _curves(axes[0, 0], None, row, _control(runs, row))
        _segment(axes[0, 1], row)
        _eigen(axes[1, 0], row, _control(runs, row))
        _directions(axes[1, 1], row)
        return fig

    default_batch = 32 if 32 in batches else batches[0]
    return slider_figure(
        draw,
        {"seed": seeds, "small_batch": batches},
        defaults={"seed": seeds[0], "small_batch": default_batch},
        labels={"seed": "seed", "small_batch": "Phase II batch"},
    )
