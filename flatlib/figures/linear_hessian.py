"""Figures of Part II, chapters 4-5: the Hessian at a global minimum and Theorem 1.

Everything here follows the conventions of :mod:`flatlib.theory.linear` (weights
``[W1, ..., Wm]``, ``w = [vec(W1); ...; vec(Wm)]`` with column-stacking ``vec``, loss of eq. 2).
The closed forms come from :mod:`flatlib.theory.linear`, and so does the independent
measurement, the autograd Hessian of eq. (2)
(:func:`flatlib.theory.linear.autograd_hessian`); this module draws them.

* :func:`plot_spectrum`, :func:`spectrum_slider` - the spectrum of ``2 Phi Phi^T`` (Lemma 3,
  eqs. 15-16): at most ``d_x d_y`` nonzero eigenvalues and a zero bulk of size ``>= (1-1/m) N``.
* :func:`plot_hessian_blocks` - the block matrix of eq. (18) by autograd next to
  ``2 Phi_i Phi_j^T`` (eq. 19).
* :func:`theorem1_points`, :func:`plot_theorem1`, :func:`theorem1_slider` - the flattest
  sharpness ``2m sigma_max(T)^(2(1-1/m))`` (eq. 17) against depth, with measured minima, and
  the largest stable step ``2 / lambda_max`` (the remark after eq. 17).
* :func:`plot_nu_bound` - the sandwich ``nu(B) <= max nu = eq. (26) <= lambda_max(H_w)``
  (eqs. 22-26) for random unit ``B`` and random global minima.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from flatlib._validation import as_weights
from flatlib.figures import new_figure
from flatlib.figures.widgets import SliderFigure, slider_figure
from flatlib.theory import linear
from flatlib.theory.flattening import flatten

__all__ = [
    "Theorem1Points",
    "plot_hessian_blocks",
    "plot_nu_bound",
    "plot_spectrum",
    "plot_theorem1",
    "spectrum_slider",
    "theorem1_points",
    "theorem1_slider",
]


_ZERO_FLOOR = 1e-18
RANK_COLOR = "tab:red"
VALLEY_COLOR = "0.6"


# ----------------------------------------------------------------------------- chapter 4


def plot_spectrum(m: int, width: int, d: int = 3, seed: int = 0) -> Figure:
    """Spectrum of the Hessian at a random global minimum (Lemma 3, eqs. 15-16).

    The network has ``d_x = d_y = d`` and ``m - 1`` hidden layers of size ``width``
    (assumption A1 needs ``width >= d``); the minimum is
    :func:`flatlib.theory.linear.random_minimum` of a Gaussian ``T``. Left: all ``N``
    eigenvalues of ``2 Phi Phi^T`` (log scale, exact zeros drawn at the floor ``1e-18``); at
    most ``d^2`` are nonzero. Right: ``N`` split into the
    rank and the valley (zero) dimension, against the bound ``(1 - 1/m) N``.
    """
    if width < d:
        raise ValueError(f"width must be >= d = {d} (assumption A1), got {width}")
    t = linear.random_T(d, d, 1.5, seed)
    ws = linear.random_minimum(t, m, seed=seed + 1, widths=[width] * (m - 1))
    ev = linear.spectrum_at_minimum(ws)
    n_params = ev.size
    rank = linear.numerical_rank(ev)
    valley = n_params - rank
    shown = np.maximum(np.sort(np.abs(ev))[::-1], _ZERO_FLOOR)
    idx = np.arange(1, n_params + 1)

    fig = new_figure(layout="constrained", figsize=(9.5, 3.6))
    (ax, bx) = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3.2, 1]})
    ax.axvspan(d * d + 0.5, n_params + 0.5, color=VALLEY_COLOR, alpha=0.25, lw=0)
    ax.semilogy(idx, shown, ".", color="k", ms=4, label="eigenvalues of $2\\Phi\\Phi^T$")
    ax.axvline(d * d + 0.5, color=RANK_COLOR, ls="--", lw=1.2, label=f"$d_x d_y$ = {d * d}")
    ax.axhline(linear.RANK_RTOL * ev[0], color="0.3", ls=":", lw=1, label="zero threshold")
    ax.set_xlim(0.5, n_params + 0.5)
    ax.set_ylim(_ZERO_FLOOR / 3, ev[0] * 10)
    ax.set_xlabel("eigenvalue index (descending)")
    ax.set_ylabel("$|\\lambda_i(\\mathbf{H}_\\mathbf{w})|$ (sorted)")
    ax.set_title(f"m = {m}, hidden width {width}:  N = {n_params},  {rank} nonzero")
    ax.text(
        0.98,
        0.55,
        "zero bulk:\nvalley directions",
        transform=ax.transAxes,
        ha="right",
        va="center",
        color="0.25",
    )
    ax.legend(loc="lower left", fontsize=8)

    bx.bar([0], [rank], color=RANK_COLOR, label="rank")
    bx.bar([0], [valley], bottom=[rank], color=VALLEY_COLOR, label="valley")
    bx.axhline((1 - 1 / m) * n_params, color="k", ls="--", lw=1.2, label="$(1-1/m)N$")
    bx.set_xlim(-0.6, 0.6)
    bx.set_ylim(0, n_params * 1.45)
    bx.set_xticks([])
    bx.set_ylabel("dimensions")
    bx.set_title(f"valley {valley / n_params:.0%} of N", fontsize=10)
    bx.legend(loc="upper center", fontsize=8)
    return fig


def spectrum_slider(
    d: int = 3,
    depths: Sequence[int] = (1, 2, 3, 4, 6, 8),
    widths: Sequence[int] = (3, 4, 5, 6),
    seed: int = 0,
) -> SliderFigure:
    """Slider over depth ``m`` and hidden width for :func:`plot_spectrum` (Lemma 3)."""

    def draw(m: int, width: int) -> Figure:
        return plot_spectrum(m, width, d=d, seed=seed)

    return slider_figure(
        draw,
        {"m": list(depths), "width": list(widths)},
        defaults={"m": depths[min(2, len(depths) - 1)], "width": widths[0]},
        labels={"m": "depth m", "width": "hidden width"},
    )


def plot_hessian_blocks(weights: Any, X: Any, Y: Any) -> Figure:
    """The block Hessian of eq. (18) by autograd, ``2 Phi Phi^T`` (eq. 19), and their gap.

    Thin lines separate the blocks ``d^2 l / dw_i dw_j``. The third panel shows
    ``|H_autograd - 2 Phi Phi^T|`` on a log colour scale: at a global minimum it is rounding
    noise, elsewhere it is the residual term of eq. (S42).
    """
    ws = as_weights(weights)
    h_auto = linear.autograd_hessian(ws, X, Y)
    h_phi = linear.hessian_at_minimum(ws, linear.second_moment(X))
    gap = np.abs(h_auto - h_phi)
    edges = np.cumsum([w.size for w in ws])[:-1] - 0.5
    vmax = float(np.percentile(np.abs(h_auto), 99)) or 1.0

    fig = new_figure(figsize=(11, 3.7), layout="constrained")
    axes = fig.subplots(1, 3)
    panels = [
        (h_auto, "autograd Hessian of eq. (2)"),
        (h_phi, "$2\\Phi\\Phi^T$ (eqs. 15-16)"),
    ]
    for ax, (mat, title) in zip(axes[:2], panels, strict=True):
        im = ax.imshow(mat, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=axes[:2], shrink=0.8)
    floor = 1e-18
    im2 = axes[2].imshow(
        np.log10(np.maximum(gap, floor)),
        cmap="viridis",
        vmin=-18,
        vmax=max(float(np.log10(np.abs(h_auto).max())), -15),
    )
    axes[2].set_title(f"$\\log_{{10}}$|difference|, max {gap.max():.1e}", fontsize=10)
    fig.colorbar(im2, ax=axes[2], shrink=0.8)
    for ax in axes:
        for e in edges:
            ax.axhline(e, color="k", lw=0.6)
            ax.axvline(e, color="k", lw=0.6)
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


# ----------------------------------------------------------------------------- chapter 5


@dataclass(frozen=True)
class Theorem1Points:
    """Measured sharpness against depth for one ``T`` (see :func:`theorem1_points`).

    ``depths``: the depths ``m``; ``predicted``: ``2m sigma_max^(2(1-1/m))`` (eq. 17);
    ``canonical_autograd``: top eigenvalue of the autograd Hessian at the canonical minimum
    (eq. 27); ``flattened``: sharpness of ``flatten(random minimum)``; ``random``: one row per
    depth, the sharpness of ``n_random`` random minima (eq. S104).
    """

    sigma_max: float
    depths: np.ndarray
    predicted: np.ndarray
    canonical_autograd: np.ndarray
    flattened: np.ndarray
    random: np.ndarray


def theorem1_points(
    sigma_max: float,
    depths: Sequence[int] = (1, 2, 3, 4, 5, 6, 8),
    d: int = 2,
    n_random: int = 4,
    seed: int = 0,
    tol: float = 1e-7,
) -> Theorem1Points:
    """Predicted and measured sharpness of flattest minima for ``T`` with ``sigma_max(T)`` given.

    ``T`` is a ``d x d`` Gaussian matrix rescaled to ``sigma_max``
    (:func:`flatlib.theory.linear.random_T`); the data are whitened (A2) with ``n = d``
    samples. Measured points: the largest eigenvalue of the autograd Hessian (exact
    ``eigvalsh``) at the canonical minimum (eq. 27), and the
    sharpness (eq. 20) reached by ``flatten(method="gauge")`` from a random minimum; plus the
    sharpness of ``n_random`` random minima, which Theorem 1 puts above the curve.
    """
    t = linear.random_T(d, d, sigma_max, seed)
    x, y = linear.whitened_data(t, d, seed=seed)
    ms = np.array(list(depths), dtype=int)
    predicted = np.array([linear.flattest_sharpness(t, m) for m in ms])
    canon, flat, rand = [], [], []
    for m in ms:
        h = linear.autograd_hessian(linear.canonical_minimum(t, m), x, y)
        canon.append(float(np.linalg.eigvalsh(h)[-1]))
        starts = [linear.random_minimum(t, m, seed=seed + 100 + i) for i in range(n_random)]
        rand.append([linear.sharpness(w) for w in starts])
        if m == 1:
            flat.append(linear.sharpness(starts[0]))
        else:
            flat.append(linear.sharpness(flatten(starts[0], t, method="gauge", tol=tol).weights))
    return Theorem1Points(
        sigma_max=float(sigma_max),
        depths=ms,
        predicted=predicted,
        canonical_autograd=np.array(canon),
        flattened=np.array(flat),
        random=np.array(rand),
    )


def plot_theorem1(
    sigma_max: float,
    depths: Sequence[int] = (1, 2, 3, 4, 5, 6, 8),
    d: int = 2,
    n_random: int = 4,
    seed: int = 0,
) -> Figure:
    """Theorem 1 against depth, with measured minima (eqs. 17, 27-29) and ``eta_max`` ~ ``1/m``.

    Left (log scale): the curve ``2m sigma_max^(2(1-1/m))`` (eq. 17; drawn for real ``m``),
    the autograd top eigenvalue at the canonical minimum (eq. 27), the sharpness reached by
    ``flatlib.theory.flattening.flatten`` from a random minimum, and random minima (above the
    curve). Right: the largest stable GD step at the flattest minima, ``2 / lambda_max``
    (eq. S4), equal to ``sigma_max^(-2(1-1/m)) / m`` (the remark after eq. 17), with its
    large-``m`` asymptote ``sigma_max^(-2) / m``.
    """
    pts = theorem1_points(sigma_max, depths, d=d, n_random=n_random, seed=seed)
    grid = np.linspace(1, max(pts.depths), 200)
    curve = 2 * grid * sigma_max ** (2 * (1 - 1 / grid))

    fig = new_figure(figsize=(10, 3.8), layout="constrained")
    ax, bx = fig.subplots(1, 2)
    for i, m in enumerate(pts.depths):
        ax.scatter(
            np.full(pts.random.shape[1], m) + np.linspace(-0.12, 0.12, pts.random.shape[1]),
            pts.random[i],
            marker="x",
            color="0.5",
            s=18,
            label="random minima (eq. S104)" if i == 0 else None,
        )
    ax.plot(grid, curve, "-", color="k", lw=1.5, label="Theorem 1: $2m\\sigma_{\\max}^{2(1-1/m)}$")
    ax.plot(
        pts.depths,
        pts.canonical_autograd,
        "o",
        mfc="none",
        color="tab:blue",
        ms=9,
        label="canonical (eq. 27), autograd $\\lambda_{\\max}$",
    )
    ax.plot(
        pts.depths, pts.flattened, ".", color="tab:orange", ms=9, label="flatten(random minimum)"
    )
    ax.set_yscale("log")
    ax.set_xlabel("depth m")
    ax.set_ylabel("$\\lambda_{\\max}(\\mathbf{H}_\\mathbf{w})$")
    ax.set_title(f"sharpness of global minima, $\\sigma_{{\\max}}(T)$ = {sigma_max:g}")
    ax.legend(fontsize=8, loc="upper left")

    eta = 2 / curve
    bx.plot(
        grid, eta, "-", color="k", lw=1.5, label="$2/\\min_\\Omega\\lambda_{\\max}$ (Theorem 1)"
    )
    bx.plot(
        pts.depths,
        2 / pts.flattened,
        ".",
        color="tab:orange",
        ms=9,
        label="2 / sharpness of flatten(...)",
    )
    bx.plot(
        grid,
        sigma_max**-2 / grid,
        ":",
        color="tab:green",
        lw=1.5,
        label="$\\sigma_{\\max}^{-2}/m$ (large-$m$ asymptote)",
    )
    bx.set_xscale("log")
    bx.set_yscale("log")
    bx.set_xticks(list(pts.depths), [str(m) for m in pts.depths])
    bx.set_xlabel("depth m")
    bx.set_ylabel("largest stable step $\\eta_{\\max}$")
    bx.set_title("the step size must shrink with depth")
    bx.legend(fontsize=8, loc="lower left")
    return fig


def theorem1_slider(
    sigmas: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
    depths: Sequence[int] = (1, 2, 3, 4, 5, 6, 8),
    d: int = 2,
    seed: int = 0,
) -> SliderFigure:
    """Slider over ``sigma_max(T)`` for :func:`plot_theorem1` (Theorem 1, eq. 17)."""

    def draw(sigma_max: float) -> Figure:
        return plot_theorem1(sigma_max, depths, d=d, seed=seed)

    return slider_figure(
        draw,
        {"sigma_max": list(sigmas)},
        defaults={"sigma_max": 1.0 if 1.0 in sigmas else sigmas[len(sigmas) // 2]},
        labels={"sigma_max": "sigma_max(T)"},
    )


def plot_nu_bound(
    T: Any, m: int, n_samples: int = 400, n_minima: int = 200, seed: int = 0
) -> Figure:
    """The two sides of eq. (26): ``nu(B)`` for random unit ``B`` and ``lambda_max`` of minima.

    Under A2, every unit-Frobenius ``B`` gives ``nu(B) <= 2m sigma_max^(2(1-1/m))`` (eq. S51),
    with equality at ``B = u v^T`` (eq. S52); every global minimum has
    ``lambda_max(H_w) >= max nu`` (eqs. 21-25). The figure draws ``nu`` of Gaussian unit ``B``
    and of ``u v^T`` below the Theorem 1 line, and the sharpness of random minima (eq. S104)
    and of the canonical minimum (eq. 27) above or on it.
    """
    t = np.asarray(T, dtype=float)
    rng = np.random.default_rng(seed)
    _, u, v = linear.top_singular(t)
    bound = linear.flattest_sharpness(t, m)
    nus = []
    for _ in range(n_samples):
        b = rng.standard_normal(t.shape)
        nus.append(linear.nu(b / np.linalg.norm(b), t, m))
    nus = np.array(nus)
    sharp = np.array(
        [linear.sharpness(linear.random_minimum(t, m, seed=seed + 1 + i)) for i in range(n_minima)]
    )

    fig = new_figure(figsize=(8.5, 3.2), layout="constrained")
    ax = fig.subplots()
    jitter = rng.uniform(-0.15, 0.15, size=max(n_samples, n_minima))
    ax.scatter(
        nus,
        1 + jitter[:n_samples],
        s=8,
        color="tab:blue",
        alpha=0.5,
        label="$\\nu(B)$, random unit $B$ (eq. 25)",
    )
    ax.plot(
        [linear.nu(np.outer(u, v), t, m)],
        [1],
        "*",
        color="tab:blue",
        ms=15,
        mec="k",
        label="$\\nu(uv^T)$ (eq. S52)",
    )
    ax.scatter(
        sharp,
        jitter[:n_minima],
        s=8,
        color="tab:red",
        alpha=0.5,
        label="$\\lambda_{\\max}$ at random minima",
    )
    ax.plot(
        [linear.sharpness(linear.canonical_minimum(t, m))],
        [0],
        "*",
        color="tab:red",
        ms=15,
        mec="k",
        label="$\\lambda_{\\max}$ at canonical minimum (eq. 27)",
    )
    ax.axvline(bound, color="k", lw=1.5, label="Theorem 1 value (eq. 26)")
    ax.set_xscale("log")
    ax.set_yticks([0, 1], ["minima $w\\in\\Omega$", "unit $B$"])
    ax.set_ylim(-0.6, 1.9)
    ax.set_xlabel("value")
    ax.set_title(f"m = {m}: every $\\nu(B)$ lies left of the line, every minimum right of it")
    ax.legend(fontsize=8, loc="upper left", ncol=3)
    return fig
