"""Every figure function of the book leaves pyplot's registry empty (shown once, no leak)."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from flatlib import figures
from flatlib.figures import scalar as fs
from flatlib.figures import stability


def test_new_figure_and_subplots_are_detached_from_pyplot() -> None:
    plt.close("all")
    fig = figures.new_figure(figsize=(2, 2))
    fig2, axes = figures.subplots(1, 2)
    assert isinstance(fig, Figure) and isinstance(fig2, Figure) and len(axes) == 2
    assert plt.get_fignums() == []


def test_chapter_figures_do_not_stay_open_in_pyplot() -> None:
    plt.close("all")
    for fig in (fs.plot_sharpness_vs_depth(), stability.plot_double_well(0.05)):
        assert isinstance(fig, Figure)
    assert plt.get_fignums() == [], "a figure function left a pyplot figure open"
