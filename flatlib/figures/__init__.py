"""Figures and slider UIs of the book's chapters, one module per part of the paper.

Each function returns a :class:`matplotlib.figure.Figure` or a
:class:`flatlib.figures.widgets.SliderFigure`; the mathematics they draw comes from
:mod:`flatlib.theory.scalar`, :mod:`flatlib.theory.linear` and :mod:`flatlib.curvature.hessian`.

Figures are made with :func:`flatlib.figures.new_figure` or
:func:`flatlib.figures.subplots`, which detach them from pyplot: a notebook then shows a
returned figure once (as the cell's value) instead of twice (once more when the inline
backend flushes open pyplot figures), and slider frames do not pile up in pyplot's figure
registry.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from flatlib._lazy import attach


def new_figure(**kwargs: Any) -> Figure:
    """An empty figure (``plt.figure(**kwargs)``) already closed in pyplot."""
    fig = plt.figure(**kwargs)
    plt.close(fig)
    return fig


def subplots(*args: Any, **kwargs: Any) -> tuple[Figure, Any]:
    """``plt.subplots(*args, **kwargs)`` with the figure already closed in pyplot."""
    fig, axes = plt.subplots(*args, **kwargs)
    plt.close(fig)
    return fig, axes


__getattr__ = attach(
    __name__,
    [
        "batch_basins", "edge_of_stability", "flat_vs_sharp", "gains", "hessian_spectrum",
        "linear_hessian", "non_white", "scalar", "stability", "step_size_depth", "theorem4",
        "widgets",
    ],
)  # fmt: skip
