"""Figures of chapter 1: GD on quadratics and on a double well (Sec. 2, App. I).

The stability theory they draw is :mod:`flatlib.theory.stability`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from flatlib._validation import as_float_array
from flatlib.figures import subplots
from flatlib.figures.widgets import SliderFigure, slider_figure
from flatlib.theory.stability import (
    double_well,
    gd_on_double_well,
    is_linearly_stable,
    linearized_gd,
)


def plot_quadratic_gd(curvatures: Sequence[float], eta: float, steps: int = 30) -> Figure:
    """GD on ``0.5 * sum_i c_i w_i^2`` next to the threshold ``eta = 2 / max c_i`` (eq. S4).

    One curvature draws ``|w_k|`` against ``k``; two draw the iterates in the plane over the
    loss level sets.
    """
    c = as_float_array(curvatures, "curvatures", ndim=1)
    if np.any(c <= 0):
        raise ValueError("curvatures must be positive")
    H = np.diag(c)
    w0 = np.ones(len(c))
    path = linearized_gd(H, eta, w0, steps)
    stable = is_linearly_stable(H, eta)
    verdict = "stable" if stable else "unstable"
    title = f"eta = {eta:.3g}, 2/lambda_max = {2 / c.max():.3g}: {verdict}"
    if len(c) == 1:
        fig, ax = subplots(figsize=(6, 3.2))
        ax.semilogy(np.abs(path[:, 0]) + 1e-300, "o-", ms=3)
        ax.set_xlabel("iteration k")
        ax.set_ylabel("|w_k - w*|")
        ax.set_ylim(1e-6, 1e6)
    else:
        fig, ax = subplots(figsize=(5, 4.2))
        g = np.linspace(-2.5, 2.5, 201)
        X, Y = np.meshgrid(g, g)
        ax.contour(X, Y, 0.5 * (c[0] * X**2 + c[1] * Y**2), levels=12, cmap="Greys", alpha=0.7)
        shown = path[np.all(np.abs(path) < 3, axis=1)]
        ax.plot(shown[:, 0], shown[:, 1], "o-", ms=3, color="C3" if not stable else "C0")
        ax.plot(0, 0, "*", ms=12, color="k")
        ax.set_xlim(-2.5, 2.5)
        ax.set_ylim(-2.5, 2.5)
        ax.set_aspect("equal")
        ax.set_xlabel(f"w_1 (curvature {c[0]:.3g})")
        ax.set_ylabel(f"w_2 (curvature {c[1]:.3g})")
    ax.set_title(title, color="C3" if not stable else "k", fontsize=10)
    fig.tight_layout()
    return fig


def step_size_slider(
    curvatures: Sequence[float] = (1.0, 4.0), etas: Sequence[float] | None = None
) -> SliderFigure:
    """Slider over the step size for :func:`plot_quadratic_gd`; stops straddle ``2/lambda_max``."""
    c = as_float_array(curvatures, "curvatures", ndim=1)
    threshold = 2.0 / float(np.max(c))
    if etas is None:
        etas = [round(threshold * f, 4) for f in (0.25, 0.5, 0.75, 0.9, 0.98, 1.02, 1.1)]
    return slider_figure(
        lambda eta: plot_quadratic_gd(c, eta),
        {"eta": list(etas)},
        defaults={"eta": etas[len(etas) // 2]},
        labels={"eta": "step size eta"},
    )


def plot_double_well(
    eta: float, w0: float = 1.05, sharp: float = 20.0, flat: float = 2.0
) -> Figure:
    """The double well with the GD path from ``w0`` (next to the sharp minimum) at step ``eta``."""
    path = gd_on_double_well(w0, eta, 150, sharp, flat)
    fig, (ax, bx) = subplots(1, 2, figsize=(9, 3.2))
    grid = np.linspace(-2.5, 2.5, 500)
    ax.plot(grid, double_well(grid, sharp, flat), color="k", lw=1)
    shown = path[np.abs(path) < 2.5]
    ax.plot(shown, double_well(shown, sharp, flat), "o-", ms=3, color="C3", alpha=0.7)
    ax.set_ylim(-0.2, 3)
    ax.set_xlabel("w")
    ax.set_ylabel("loss")
    ax.set_title(
        f"eta = {eta:.3g}  (2/sharp = {2 / sharp:.3g}, 2/flat = {2 / flat:.3g})", fontsize=10
    )
    bx.plot(path, ".-", ms=3)
    bx.axhline(1, ls=":", color="C1", label="sharp minimum")
    bx.axhline(-1, ls=":", color="C2", label="flat minimum")
    bx.set_ylim(-3, 3)
    bx.set_xlabel("iteration")
    bx.set_ylabel("w_k")
    bx.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def double_well_slider(sharp: float = 20.0, flat: float = 2.0) -> SliderFigure:
    """Slider over ``eta`` for :func:`plot_double_well`; stops below, between and above both
    thresholds ``2/sharp`` and ``2/flat``."""
    etas = [0.05, 0.09, 0.15, 0.3, 0.6, 0.95, 1.05]
    return slider_figure(
        lambda eta: plot_double_well(eta, sharp=sharp, flat=flat),
        {"eta": etas},
        defaults={"eta": 0.3},
        labels={"eta": "step size eta"},
    )
