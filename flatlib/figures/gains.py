"""Figures of chapters 6-7: intermediate gains (Theorem 2, Fig. 3) and layer coupling (Theorem 3).

Same conventions as :mod:`flatlib.theory.linear` (weights ``[W1, ..., Wm]``, ``Wj`` of shape
``(d_j, d_{j-1})``, white data, assumption A2). ``T = U S V^T`` is the end-to-end map with top
singular triple ``(sigma_max, u, v)``; ``P_k = W_k ... W_1`` is the ``k``-th partial product.

The numbers come from :mod:`flatlib.theory.linear` and :mod:`flatlib.theory.flattening`;
this module only draws them.

Chapter 6 (Theorem 2, App. VI and IX.1):

* :func:`plot_fig3` - Fig. 3: four arbitrary minima (eq. S104) against four flattest ones
  (:func:`flatlib.theory.flattening.walk_to_flattest`), drawn from
  :func:`flatlib.theory.linear.gains_profile`.
* :func:`plot_gains_pair`, :func:`gains_slider` - one random minimum next to the flattest
  minimum that gauge descent reaches from it (:func:`flatlib.theory.flattening.gains_pair`),
  over seed, depth ``m`` and width ``d``.
* :func:`plot_flattening` - ``lambda_max`` along the walk (eq. S106) and along gauge descent,
  down to the Theorem 1 value (eq. 17), from
  :func:`flatlib.theory.flattening.compare_flatteners`.

Chapter 7 (Theorem 3, App. VII):

* :func:`plot_layer_path`, :func:`coupling_slider` - per layer singular values and the
  alignment of consecutive singular vectors (:func:`flatlib.theory.linear.layer_path`),
  flattest against random minima.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from flatlib._validation import as_int
from flatlib.figures import new_figure
from flatlib.figures.widgets import SliderFigure, slider_figure
from flatlib.theory import flattening, linear

__all__ = [
    "FIG3_D",
    "FIG3_M",
    "coupling_slider",
    "gains_slider",
    "plot_fig3",
    "plot_flattening",
    "plot_gains_pair",
    "plot_layer_path",
]

FIG3_D = 4
"""Width of every layer in Fig. 3 (``d_x = d_y = d_k = 4``)."""
FIG3_M = 6
"""Depth of the networks of Fig. 3."""

SV_COLOR = "tab:blue"
V_COLOR = "tab:red"
BOUND_STYLE = {"color": "k", "ls": ":", "lw": 1.5}


# ----------------------------------------------------------------------------- sampling minima


# ----------------------------------------------------------------------------- Theorem 2


def _dots(ax: Axes, values: list[np.ndarray], label: str) -> None:
    """Blue dots: the entries of ``values[k-1]`` above ``x = k`` for ``k = 1..len(values)``."""
    xs = np.concatenate([np.full(v.size, k) for k, v in enumerate(values, start=1)])
    ax.plot(xs, np.concatenate(values), ".", color=SV_COLOR, ms=7, label=label)


def _draw_gains(ax: Axes, profile: linear.GainsProfile, title: str) -> None:
    """Fig. 3 panel: blue singular values of ``P_k``, red ``||P_k v||``, dotted bound."""
    _dots(ax, profile.singular_values, "singular values of $W_k\\cdots W_1$")
    ax.plot(
        profile.ks,
        profile.v_gain,
        "o",
        mfc="none",
        color=V_COLOR,
        ms=11,
        mew=1.5,
        label="gain of $\\mathbf{v}$: $\\|W_k\\cdots W_1\\mathbf{v}\\|$",
    )
    grid = np.linspace(0.8, profile.ks[-1] + 0.2, 50)
    m = profile.ks[-1]
    root = profile.flattest_gain[0]  # sigma_max^(1/m)
    ax.plot(
        grid,
        np.sqrt(m) * root**grid,
        **BOUND_STYLE,
        label="Theorem 2(ii): $\\sqrt{m}\\,\\sigma_{\\max}^{k/m}$",
    )
    ax.set_yscale("log")
    ax.set_xticks(list(profile.ks))
    ax.set_title(title, fontsize=9)


def plot_fig3(T: Any, random_weights: Sequence[Any], flattest_weights: Sequence[Any]) -> Figure:
    """Fig. 3: intermediate gains against depth ``k`` for arbitrary and flattest minima.

    Top row: the minima ``random_weights`` (e.g. eq. S104); bottom row: ``flattest_weights``
    (e.g. :func:`flatlib.theory.flattening.walk_to_flattest`). In each panel the blue dots are
    the singular values of ``W_k ... W_1`` (log scale, not normalised), the red circles the
    gain ``||W_k ... W_1 v||`` of the top right singular vector of ``T`` (Theorem 2(i)) and the
    dotted line the bound ``sqrt(m) sigma_max(T)^(k/m)`` of Theorem 2(ii). Panel titles give
    ``lambda_max(H_w)`` relative to the Theorem 1 value (eq. 17).
    """
    rows = [list(random_weights), list(flattest_weights)]
    if not rows[0] or len(rows[0]) != len(rows[1]):
        raise ValueError("random_weights and flattest_weights must be non-empty and equally long")
    n = len(rows[0])
    fig = new_figure(figsize=(2.6 * n + 0.6, 5.6), layout="constrained")
    axes = fig.subplots(2, n, squeeze=False)
    names = ["(a) arbitrary global minima", "(b) flattest global minima"]
    for r, (row, name) in enumerate(zip(rows, names, strict=True)):
        profiles = [linear.gains_profile(w, T) for w in row]
        top = max(
            max(max(p.singular_values[k].max() for k in range(len(p.ks))), p.bound[-1])
            for p in profiles
        )
        low = min(min(p.singular_values[k].min() for k in range(len(p.ks))) for p in profiles)
        for i, p in enumerate(profiles):
            ax = axes[r, i]
            ratio = p.sharpness / p.flattest_sharpness
            _draw_gains(ax, p, f"$\\lambda_{{\\max}}$ = {ratio:.3g} x Theorem 1")
            ax.set_ylim(low / 2, top * 3)
            ax.set_xlabel("layer k")
        axes[r, 0].set_ylabel(f"{name}\n gain up to layer k")
    fig.legend(handles=axes[0, 0].get_lines(), loc="outside upper center", ncol=3, fontsize=9)
    return fig


def plot_gains_pair(T: Any, m: int, seed: int, tol: float = flattening.SLIDER_TOL) -> Figure:
    """Fig. 3 for one pair from :func:`flatlib.theory.flattening.gains_pair`: a random minimum
    and where flattening takes it.

    Same drawing as :func:`plot_fig3` (blue: singular values of ``W_k ... W_1``; red:
    ``||W_k ... W_1 v||``; dotted: ``sqrt(m) sigma_max^(k/m)``, Theorem 2(ii)); the grey dashed
    curve is ``sigma_max^(k/m)``, where Theorem 2(i) puts the red circles of a flattest minimum.
    """
    start, run = flattening.gains_pair(T, m, seed, tol)
    fig = new_figure(figsize=(9, 3.5), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    titles = ["random minimum (eq. S104)", "after gauge flattening"]
    profiles = [linear.gains_profile(start, T), linear.gains_profile(run.weights, T)]
    for ax, p, title in zip(axes, profiles, titles, strict=True):
        ratio = p.sharpness / p.flattest_sharpness
        _draw_gains(ax, p, f"{title}: $\\lambda_{{\\max}}$ = {ratio:.3g} x Theorem 1")
        ax.plot(p.ks, p.flattest_gain, "--", color="0.5", lw=1, label="$\\sigma_{\\max}^{k/m}$")
        ax.set_xlabel("layer k")
    fig.legend(handles=axes[0].get_lines(), loc="outside upper center", ncol=4, fontsize=8)
    axes[0].set_ylabel("gain up to layer k")
    return fig


def gains_slider(
    seeds: Sequence[int] = (0, 1),
    depths: Sequence[int] = (2, 4, 6),
    dims: Sequence[int] = (2, 4),
) -> SliderFigure:
    """Slider over seed, depth ``m`` and width ``d`` for :func:`plot_gains_pair` (Theorem 2).

    ``T = linear.target_map(d, seed=d)`` is fixed for each ``d``; the seed picks the random minimum.
    Frames use gauge descent (fast) rather than the walk of eq. (S106).
    """

    def draw(seed: int, m: int, d: int) -> Figure:
        return plot_gains_pair(linear.target_map(d, seed=d), m, seed)

    return slider_figure(
        draw,
        {"seed": list(seeds), "m": list(depths), "d": list(dims)},
        defaults={
            "seed": seeds[0],
            "m": FIG3_M if FIG3_M in depths else depths[-1],
            "d": FIG3_D if FIG3_D in dims else dims[-1],
        },
        labels={"seed": "random minimum (seed)", "m": "depth m", "d": "width d"},
    )


def plot_flattening(runs: dict[str, flattening.FlattenerRun]) -> Figure:
    """``lambda_max(H_w)`` along each flattening run, down to the Theorem 1 value (eq. 17).

    Left: against the accepted step (walk, eq. S106) or gradient step (gauge), log scale,
    with the Theorem 1 value dashed. Right: the relative gap ``lambda_max / target - 1``.
    """
    if not runs:
        raise ValueError("runs must hold at least one FlattenerRun")
    fig = new_figure(figsize=(10, 3.6), layout="constrained")
    ax, bx = fig.subplots(1, 2)
    colors = {"walk": "tab:orange", "gauge": "tab:green"}
    for method, run in runs.items():
        hist = run.result.history
        label = f"{method}: {hist.size - 1} steps, {run.result.n_iterations} iterations"
        ax.plot(np.arange(hist.size), hist, "-", color=colors.get(method), label=label)
        bx.plot(
            np.arange(hist.size), hist / run.target - 1, "-", color=colors.get(method), label=method
        )
    target = next(iter(runs.values())).target
    ax.axhline(
        target, color="k", ls="--", lw=1.2, label="Theorem 1: $2m\\sigma_{\\max}^{2(1-1/m)}$"
    )
    ax.set_yscale("log")
    ax.set_xlabel("accepted step")
    ax.set_ylabel("$\\lambda_{\\max}(\\mathbf{H}_\\mathbf{w})$")
    ax.set_title("flattening stays on $\\Omega$ and lowers the sharpness")
    ax.legend(fontsize=8)
    for tol, style in ((1e-2, ":"), (1e-8, "-.")):
        bx.axhline(tol, color="0.5", ls=style, lw=1, label=f"tolerance {tol:g}")
    bx.set_yscale("log")
    bx.set_xlabel("accepted step")
    bx.set_ylabel("$\\lambda_{\\max}$ / Theorem 1 value $- 1$")
    bx.set_title("relative gap to the Theorem 1 value")
    bx.legend(fontsize=8)
    return fig


# ----------------------------------------------------------------------------- Theorem 3


def _draw_path(ax: Axes, bx: Axes, path: linear.LayerPath, name: str) -> None:
    m = len(path.singular_values)
    ks = np.arange(1, m + 1)
    _dots(ax, path.singular_values, "singular values of $W_k$")
    ax.plot(
        ks,
        path.matched_value,
        "o",
        mfc="none",
        color=V_COLOR,
        ms=11,
        mew=1.5,
        label="the one whose right vector is closest to $\\bar{\\mathbf{r}}_k$",
    )
    ax.axhline(path.s, **BOUND_STYLE, label="$\\sigma_{\\max}(T)^{1/m}$")
    ax.set_ylim(0, None)
    ax.set_xticks(list(ks))
    ax.set_xlabel("layer k")
    ax.set_ylabel("singular values")
    ax.set_title(f"{name}: each layer's singular values", fontsize=9)
    ticks = ["$\\mathbf{v}$|$W_1$"] + [f"$W_{k}$|$W_{k + 1}$" for k in ks[:-1]]
    ticks.append(f"$W_{m}$|$\\mathbf{{u}}$")
    bx.bar(
        np.arange(m + 1),
        path.interface_cos,
        color="tab:purple",
        alpha=0.8,
        label="consecutive singular vectors",
    )
    bx.plot(
        np.arange(1, m),
        path.link_cos,
        "D",
        color="k",
        ms=5,
        label="$\\langle\\bar{\\mathbf{q}}_k, \\bar{\\mathbf{r}}_{k+1}\\rangle$",
    )
    bx.axhline(1.0, color="k", ls=":", lw=1)
    bx.set_ylim(0, 1.12)
    bx.set_xticks(np.arange(m + 1), ticks, fontsize=7, rotation=30)
    bx.set_ylabel("|cos angle|")
    bx.set_title(f"{name}: do consecutive layers share a singular vector?", fontsize=9)


def plot_layer_path(flattest_weights: Any, random_weights: Any, T: Any) -> Figure:
    """Theorem 3 drawn per layer for a flattest (top) and a random (bottom) minimum of ``T``.

    Left: singular values of each ``W_k`` (blue), the one that carries ``r_k_bar`` (red
    circle; see :func:`flatlib.theory.linear.layer_path`) and ``sigma_max(T)^(1/m)`` (dotted,
    Theorem 3(i)).
    Right: ``|cos|`` between the matched left singular vector of ``W_k`` and right singular
    vector of ``W_{k+1}`` (bars; ``v`` and ``u`` at the ends) and ``<q_k_bar, r_{k+1}_bar>``
    (diamonds); Theorem 3(ii) puts all of them at 1 for a flattest minimum.
    """
    fig = new_figure(figsize=(10, 6), layout="constrained")
    axes = fig.subplots(2, 2, gridspec_kw={"width_ratios": [1, 1.2]})
    for row, (w, name) in enumerate(((flattest_weights, "flattest"), (random_weights, "random"))):
        _draw_path(axes[row, 0], axes[row, 1], linear.layer_path(w, T), name)
    fig.legend(
        handles=[*axes[0, 0].get_lines(), *axes[0, 1].get_lines()[:1], axes[0, 1].containers[0]],
        loc="outside upper center",
        ncol=3,
        fontsize=8,
    )
    return fig


def coupling_slider(
    depths: Sequence[int] = (2, 3, 4, 6), seeds: Sequence[int] = (0, 1), d: int = 3
) -> SliderFigure:
    """Slider over depth ``m`` and seed for :func:`plot_layer_path` (Theorem 3).

    ``T = linear.target_map(d, seed=d)``; the seed picks ``random_minimum(T, m, seed)`` (eq. S104),
    drawn at the bottom, and the top shows the flattest minimum that gauge descent reaches
    from it (:func:`flatlib.theory.flattening.gains_pair`).
    """
    d = as_int(d, "d", minimum=1)

    def draw(m: int, seed: int) -> Figure:
        t = linear.target_map(d, seed=d)
        start, run = flattening.gains_pair(t, m, seed)
        return plot_layer_path(run.weights, start, t)

    return slider_figure(
        draw,
        {"m": list(depths), "seed": list(seeds)},
        defaults={"m": 4 if 4 in depths else depths[0], "seed": seeds[0]},
        labels={"m": "depth m", "seed": "random minimum (seed)"},
    )
