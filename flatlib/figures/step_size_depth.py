"""Figures of chapter 9: sharpness against step size and depth (Sec. 6, Figs. 4 and 5).

Mulayoff & Michaeli (ICML 2020) train one ReLU denoiser per ``(depth m, step size eta)`` tile
with SGD and measure the sharpness ``lambda_max`` of the minimum reached. Theorem 1 (eq. 17)
predicts, for linear networks, that the flattest minima get sharper linearly in ``m``, so the
largest step size that still converges shrinks like ``1/m`` (linear stability needs
``lambda_max <= 2 / eta``). The runs come from :func:`flatlib.sweep.run_grid` with
:func:`flatlib.sweep.run_denoising`; this module builds the grids and analyses the tables.

* :func:`chapter_grid`, :func:`run_chapter` - the grid of Fig. 4 (identity init) or Fig. 5
  (He init), quick (CPU) or full (paper) scale.
* :func:`converged_mask`, :func:`sharpness_map` - which tiles converged to a useful minimum,
  and the heat map of Figs. 4(a)/5(a).
* :func:`max_convergent_step`, :func:`flattest_sharpness_by_depth`, :func:`loglog_slope` -
  Fig. 4(b) and the ``eta_max ~ 1/m`` fit.
* :func:`theorem1_prediction` - eq. (17) for the optimal linear map of the data, in the
  ``nn.MSELoss`` convention (divided by the number of output pixels).
* :func:`stability_table`, :func:`findings` - the ``lambda_max <= 2 / eta`` check and the
  qualitative findings the chapter asserts.
* :func:`plot_fig4`, :func:`plot_fig5`, :func:`tile_slider` - the figures and the tile slider.
* :func:`full_runs`, :func:`scale_comparison` - a committed full-mode result
  (:mod:`flatlib.full_results`) and its findings beside quick mode's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullLocator

from flatlib import linear
from flatlib._validation import as_float, as_float_array, as_int
from flatlib.config import resolve_mode
from flatlib.figures import subplots
from flatlib.widgets import SliderFigure, slider_figure

if TYPE_CHECKING:
    from flatlib.full_results import FullResults

__all__ = [
    "FIG5B_TILE",
    "INITS",
    "QUICK_DEPTHS",
    "QUICK_HE_LRS",
    "QUICK_HE_OVERRIDES",
    "QUICK_LRS",
    "QUICK_OVERRIDES",
    "SECTION_RADIUS",
    "STABILITY_RTOL",
    "USEFUL_RATIO",
    "Findings",
    "chapter_grid",
    "converged_mask",
    "findings",
    "flattest_sharpness_by_depth",
    "full_runs",
    "loglog_slope",
    "max_convergent_step",
    "max_stable_step",
    "plot_fig4",
    "plot_fig5",
    "run_chapter",
    "scale_comparison",
    "sharpness_map",
    "stability_table",
    "theorem1_prediction",
    "tile_slider",
]

INITS: tuple[str, ...] = ("identity", "he")
"""Fig. 4 uses identity initialisation, Fig. 5 the He initialisation."""
QUICK_DEPTHS: tuple[int, ...] = (2, 4, 8, 16)
"""Depths ``m`` of the quick-mode grid (full mode runs 2, 4, ..., 20)."""
QUICK_LRS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
"""Step sizes of the quick-mode grid (full mode runs 0.25 to 4)."""
QUICK_OVERRIDES: dict[str, Any] = {"n_train": 1000, "epochs": 10, "sharpness_tol": 1e-4}
"""Quick-mode settings; 196-pixel digits, 1,000 training pairs, 10 epochs (100 SGD steps)."""
QUICK_HE_LRS: tuple[float, ...] = (0.125, 0.25, *QUICK_LRS)
"""Step sizes of the quick-mode He grid, those of Fig. 4 and two smaller ones."""
QUICK_HE_OVERRIDES: dict[str, Any] = {**QUICK_OVERRIDES, "epochs": 100}
"""The quick-mode He settings, those of :data:`QUICK_OVERRIDES` with 100 epochs (1,000 steps).

He-initialised nets start far from the identity map and need about ten times longer to leave
the trivial plateau; their diverged runs stop within a few steps, so the extra cost is small.
"""
SECTION_RADIUS = 0.3
"""Half-width of the top-eigenvector cross-section recorded for every tile (tile slider)."""
FIG5B_TILE: dict[str, dict[str, float]] = {
    "quick": {"depth": 4, "lr": 2.0},
    "full": {"depth": 18, "lr": 2.25},
}
"""The tile whose loss curves Fig. 5(b) compares (the paper uses m = 18, eta = 2.25)."""
USEFUL_RATIO = 0.95
"""A converged tile must reach a training loss at most this fraction of the trivial loss."""
STABILITY_RTOL = 0.02
"""Relative tolerance of the check ``lambda_max <= (1 + STABILITY_RTOL) 2 / eta``."""

_REQUIRED = ("depth", "lr", "status", "sharpness", "final_train_loss", "trivial_loss")


def _init(init: str) -> str:
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    return init


def _check_runs(runs: Any, name: str = "runs") -> pd.DataFrame:
    if not isinstance(runs, pd.DataFrame):
        raise TypeError(f"{name} must be a DataFrame from run_chapter, got {type(runs).__name__}")
    missing = [c for c in _REQUIRED if c not in runs.columns]
    if missing:
        raise ValueError(f"{name} lacks the columns {missing}")
    if runs.empty:
        raise ValueError(f"{name} must not be empty")
    return runs


# ----------------------------------------------------------------------------- the runs


def chapter_grid(init: str = "identity", mode: str | None = None) -> list[dict[str, Any]]:
    """The ``(depth, step size)`` grid of Fig. 4 (``init="identity"``) or Fig. 5 (``"he"``).

    Quick mode: :data:`QUICK_DEPTHS` x :data:`QUICK_LRS` with :data:`QUICK_OVERRIDES` for the
    identity, :data:`QUICK_DEPTHS` x :data:`QUICK_HE_LRS` with :data:`QUICK_HE_OVERRIDES` for He;
    full mode: :func:`flatlib.sweep.step_size_depth_grid` at paper scale, unchanged (784-pixel
    digits, 12,000 steps, depths 2-20). Every converged run also records the loss along its
    top Hessian eigenvector within :data:`SECTION_RADIUS` (for :func:`tile_slider`).
    """
    from flatlib.sweep import step_size_depth_grid

    init, value = _init(init), resolve_mode(mode)
    section = {"section_radius": SECTION_RADIUS}
    if value == "quick" and init == "he":
        overrides = {**QUICK_HE_OVERRIDES, **section}
        return step_size_depth_grid(QUICK_DEPTHS, QUICK_HE_LRS, init, value, **overrides)
    if value == "quick":
        overrides = {**QUICK_OVERRIDES, **section}
        return step_size_depth_grid(QUICK_DEPTHS, QUICK_LRS, init, value, **overrides)
    return step_size_depth_grid(None, None, init, value, **section)


def run_chapter(
    init: str = "identity",
    mode: str | None = None,
    progress: bool = True,
    shard: tuple[int, int] | None = None,
) -> pd.DataFrame:
    """Run (or load from the cache) :func:`chapter_grid`; one row per tile.

    ``shard=(k, n)`` runs only every ``n``-th tile from the ``k``-th (see
    :func:`flatlib.sweep.run_grid`), to split a full-mode grid over processes.
    """
    from flatlib.sweep import run_denoising, run_grid

    init, value = _init(init), resolve_mode(mode)
    grid = chapter_grid(init, value)
    name = f"step_size_depth_{init}_{value}"
    return run_grid(name, grid, run_denoising, progress=progress, shard=shard)


# ----------------------------------------------------------------------------- analysis


def converged_mask(runs: pd.DataFrame, useful_ratio: float = USEFUL_RATIO) -> pd.Series:
    """Tiles that converged to a useful minimum (the coloured tiles of Figs. 4(a), 5(a)).

    A tile counts when :func:`flatlib.training.train` classified it ``"converged"``, its
    sharpness was measured, and its final training loss is at most ``useful_ratio`` times the
    trivial loss (outputting the mean digit): a net whose ReLUs died and that returns the mean
    image is stuck at a useless critical point, not at a denoising minimum.
    """
    runs = _check_runs(runs)
    ratio = as_float(useful_ratio, "useful_ratio", positive=True)
    loss = runs["final_train_loss"].to_numpy(dtype=float)
    trivial = runs["trivial_loss"].to_numpy(dtype=float)
    ok = (
        (runs["status"] == "converged").to_numpy()
        & np.isfinite(runs["sharpness"].to_numpy(dtype=float))
        & (loss <= ratio * trivial)
    )
    return pd.Series(ok, index=runs.index, name="converged")


def sharpness_map(runs: pd.DataFrame, useful_ratio: float = USEFUL_RATIO) -> pd.DataFrame:
    """Heat map of Fig. 4(a)/5(a): rows depth, columns step size, NaN where not converged.

    The plots leave NaN tiles blank and mark the diverged ones with ``x``.
    """
    runs = _check_runs(runs)
    values = runs["sharpness"].where(converged_mask(runs, useful_ratio))
    table = pd.DataFrame({"depth": runs["depth"], "lr": runs["lr"], "sharpness": values})
    return table.pivot_table(index="depth", columns="lr", values="sharpness", dropna=False)


def max_convergent_step(runs: pd.DataFrame, useful_ratio: float = USEFUL_RATIO) -> pd.Series:
    """Largest step size whose tile converged, per depth (NaN if none did)."""
    runs = _check_runs(runs)
    ok = runs[converged_mask(runs, useful_ratio)]
    depths = sorted(runs["depth"].unique())
    return ok.groupby("depth")["lr"].max().reindex(depths).rename("max_lr")


def max_stable_step(runs: pd.DataFrame) -> pd.Series:
    """Largest step size per depth whose run did not diverge: the stability edge (NaN if none).

    Unlike :func:`max_convergent_step` this counts a run that stayed bounded but has not yet
    left the trivial plateau: stability (Lemma S2-S4, ``lambda_max <= 2 / eta``) decides
    divergence, not how much the net has learned.
    """
    runs = _check_runs(runs)
    ok = runs[runs["status"] != "diverged"]
    depths = sorted(runs["depth"].unique())
    return ok.groupby("depth")["lr"].max().reindex(depths).rename("max_stable_lr")


def flattest_sharpness_by_depth(
    runs: pd.DataFrame, useful_ratio: float = USEFUL_RATIO
) -> pd.Series:
    """Lowest sharpness over the converged tiles of each depth (Fig. 4(b), NaN if none)."""
    runs = _check_runs(runs)
    ok = runs[converged_mask(runs, useful_ratio)]
    depths = sorted(runs["depth"].unique())
    return ok.groupby("depth")["sharpness"].min().reindex(depths).rename("flattest")


def loglog_slope(x: Any, y: Any) -> float:
    """Least-squares slope of ``log y`` against ``log x`` (NaN pairs dropped; ``-1`` for 1/m)."""
    xs = np.asarray(x, dtype=float).ravel()
    ys = np.asarray(y, dtype=float).ravel()
    if xs.shape != ys.shape:
        raise ValueError(f"x and y must have the same length, got {xs.size} and {ys.size}")
    keep = np.isfinite(xs) & np.isfinite(ys)
    if np.any((xs[keep] <= 0) | (ys[keep] <= 0)):
        raise ValueError("x and y must be positive for a log-log fit")
    if np.unique(xs[keep]).size < 2:
        raise ValueError("x must hold at least two distinct finite values with finite y")
    return float(np.polyfit(np.log(xs[keep]), np.log(ys[keep]), 1)[0])


def theorem1_prediction(depths: Sequence[int], x: Any, y: Any) -> np.ndarray:
    """Eq. (17) for the data's optimal linear map, divided by the output dimension ``d_y``.

    ``T = optimal_map(x, y)`` (eq. 3) and the value is
    ``2m sigma_max(T)^(2(1-1/m)) / d_y``: ``nn.MSELoss`` averages over the ``d_y`` output
    pixels, so its Hessian is ``1/d_y`` times that of eq. (2). The theorem assumes white inputs
    (A2) and linear layers, so for ReLU nets on digits it is a reference, not a bound.
    """
    xs = as_float_array(x, "x", ndim=2)
    ys = as_float_array(y, "y", ndim=2)
    t = linear.optimal_map(xs, ys)
    ms = [as_int(m, "depths[i]", minimum=1) for m in depths]
    if not ms:
        raise ValueError("depths must not be empty")
    return np.array([linear.flattest_sharpness(t, m) / ys.shape[1] for m in ms])


def stability_table(
    runs: pd.DataFrame, useful_ratio: float = USEFUL_RATIO, rtol: float = STABILITY_RTOL
) -> pd.DataFrame:
    """The numbers check: measured ``lambda_max`` beside the bound ``2 / eta`` per converged tile.

    ``margin = 1 - lambda_max eta / 2`` (the fraction of the bound left unused);
    ``within`` says whether ``lambda_max <= (1 + rtol) 2 / eta``.
    """
    runs = _check_runs(runs)
    tol = as_float(rtol, "rtol")
    if tol < 0:
        raise ValueError(f"rtol must be >= 0, got {tol}")
    ok = runs[converged_mask(runs, useful_ratio)]
    bound = 2.0 / ok["lr"].to_numpy(dtype=float)
    sharp = ok["sharpness"].to_numpy(dtype=float)
    return pd.DataFrame(
        {
            "depth": ok["depth"].to_numpy(),
            "lr": ok["lr"].to_numpy(dtype=float),
            "lambda_max": sharp,
            "2/eta": bound,
            "margin": 1.0 - sharp / bound,
            "within": sharp <= (1.0 + tol) * bound,
        }
    )


@dataclass(frozen=True)
class Findings:
    """The qualitative findings of Figs. 4-5 as numbers (see :func:`findings`)."""

    max_lr_identity: pd.Series
    max_lr_he: pd.Series
    lr_slope: float
    max_stable_identity: pd.Series
    max_stable_he: pd.Series
    stable_slope_identity: float
    stable_slope_he: float
    flattest_identity: pd.Series
    flattest_he: pd.Series
    flattest_slope: float
    he_less_tolerant: bool
    he_sharper: bool
    all_within_bound: bool

    def table(self) -> pd.DataFrame:
        """Per depth: largest convergent and stable steps, flattest sharpness; identity vs He."""
        return pd.DataFrame(
            {
                "max lr (identity)": self.max_lr_identity,
                "max lr (He)": self.max_lr_he,
                "max stable lr (identity)": self.max_stable_identity,
                "max stable lr (He)": self.max_stable_he,
                "flattest (identity)": self.flattest_identity,
                "flattest (He)": self.flattest_he,
            }
        )


def _edge_slope(depths: np.ndarray, steps: pd.Series) -> float:
    """:func:`loglog_slope` of ``steps`` against ``depths``, NaN with fewer than two points."""
    if steps.notna().sum() < 2:
        return float("nan")
    return loglog_slope(depths, steps.to_numpy())


def findings(
    identity: pd.DataFrame, he: pd.DataFrame, useful_ratio: float = USEFUL_RATIO
) -> Findings:
    """Slopes and comparisons the chapter asserts.

    ``lr_slope``/``flattest_slope``: log-log slopes against depth of the identity grid's largest
    convergent step (theory about ``-1``) and flattest sharpness (theory about ``+1``).
    ``stable_slope_identity``/``stable_slope_he``: the same slope for the largest step that did
    not diverge (:func:`max_stable_step`) in each grid (NaN if fewer than two depths have one).
    ``he_less_tolerant``: at every depth He's largest convergent step (0 if none) is at most
    identity's, and smaller at some depth. ``he_sharper``: some depth has converged tiles in
    both grids, and at every such depth He's flattest tile is sharper. ``all_within_bound``:
    every converged tile of both grids passes :func:`stability_table`.
    """
    identity = _check_runs(identity, "identity")
    he = _check_runs(he, "he")
    lr_id = max_convergent_step(identity, useful_ratio)
    lr_he = max_convergent_step(he, useful_ratio).reindex(lr_id.index)
    flat_id = flattest_sharpness_by_depth(identity, useful_ratio)
    flat_he = flattest_sharpness_by_depth(he, useful_ratio).reindex(flat_id.index)
    depths = lr_id.index.to_numpy(dtype=float)
    a, b = lr_id.fillna(0.0).to_numpy(), lr_he.fillna(0.0).to_numpy()
    both = flat_id.notna() & flat_he.notna()
    within = pd.concat([stability_table(r, useful_ratio) for r in (identity, he)])["within"]
    stable_id = max_stable_step(identity)
    stable_he = max_stable_step(he).reindex(stable_id.index)
    return Findings(
        max_lr_identity=lr_id,
        max_lr_he=lr_he,
        lr_slope=loglog_slope(depths, lr_id.to_numpy()),
        max_stable_identity=stable_id,
        max_stable_he=stable_he,
        stable_slope_identity=_edge_slope(depths, stable_id),
        stable_slope_he=_edge_slope(depths, stable_he),
        flattest_identity=flat_id,
        flattest_he=flat_he,
        flattest_slope=loglog_slope(depths, flat_id.to_numpy()),
        he_less_tolerant=bool(np.all(b <= a) and np.any(b < a)),
        he_sharper=bool(both.any() and np.all(flat_he[both] > flat_id[both])),
        all_within_bound=bool(within.all()),
    )


# ----------------------------------------------------------------------------- figures


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
    runs = _check_runs(runs)
    flat = flattest_sharpness_by_depth(runs)
    max_lr = max_convergent_step(runs)
    depths = flat.index.to_numpy(dtype=float)
    fig, axes = subplots(1, 3, figsize=(14, 4), layout="constrained")
    image = _draw_map(axes[0], runs, "(a) sharpness, identity init")
    fig.colorbar(image, ax=axes[0], label=r"$\lambda_{\max}$ (MSELoss)")
    axes[1].plot(depths, flat.to_numpy(), "o-", label="flattest tile (measured)")
    if prediction is not None:
        pred = as_float_array(prediction, "prediction", ndim=1)
        if pred.size != depths.size:
            raise ValueError(f"prediction must hold {depths.size} values, got {pred.size}")
        axes[1].plot(depths, pred, "k--", label=r"eq. (17) $/ d_y$, linear net")
    axes[1].set_xlabel("depth $m$")
    axes[1].set_ylabel(r"$\lambda_{\max}$")
    axes[1].set_title("(b) flattest minimum vs depth")
    axes[1].legend()
    axes[2].loglog(depths, max_lr.to_numpy(), "s-", label="largest convergent step")
    ok = np.isfinite(max_lr.to_numpy())
    if ok.sum() >= 2:
        slope = loglog_slope(depths, max_lr.to_numpy())
        ref = max_lr.to_numpy()[ok][0] * (depths / depths[ok][0]) ** -1.0
        axes[2].loglog(depths, ref, "k:", label="slope -1 (theory)")
        axes[2].set_title(f"(c) fitted slope {slope:.2f}")
    axes[2].set_xlabel("depth $m$")
    axes[2].set_ylabel(r"$\eta_{\max}$")
    for axis, ticks in ((axes[2].xaxis, depths), (axes[2].yaxis, runs["lr"].unique())):
        axis.set_major_locator(FixedLocator(sorted(ticks)))
        axis.set_major_formatter(FormatStrFormatter("%g"))
        axis.set_minor_locator(NullLocator())
    axes[2].legend()
    return fig


def _curve(runs: pd.DataFrame, depth: int, lr: float) -> tuple[np.ndarray, np.ndarray, str]:
    row = runs[(runs["depth"] == depth) & np.isclose(runs["lr"], lr)]
    if row.empty:
        raise ValueError(f"no tile with depth={depth}, lr={lr} in the runs")
    r = row.iloc[0]
    steps = np.asarray(r.get("curve_steps", np.zeros(0)), dtype=float)
    loss = np.asarray(r.get("train_loss_curve", np.zeros(0)), dtype=float)
    return steps, loss, str(r["status"])


def plot_fig5(identity: pd.DataFrame, he: pd.DataFrame, depth: int, lr: float) -> Figure:
    """Fig. 5: (a) the He-init sharpness map on the colour scale of Fig. 4(a), and (b) the
    training loss curves of both initialisations at one tile ``(depth, lr)``."""
    identity, he = _check_runs(identity, "identity"), _check_runs(he, "he")
    fig, axes = subplots(1, 2, figsize=(10, 4), layout="constrained")
    image = _draw_map(axes[0], he, "(a) sharpness, He init", vmax=_map_vmax(identity, he))
    fig.colorbar(image, ax=axes[0], label=r"$\lambda_{\max}$ (MSELoss)")
    for runs, name, style in ((identity, "identity", "C0-"), (he, "He", "C3-")):
        steps, loss, status = _curve(runs, depth, lr)
        axes[1].semilogy(steps, loss, style, marker=".", label=f"{name} init ({status})")
    axes[1].axhline(float(identity["trivial_loss"].iloc[0]), color="0.5", ls=":", label="trivial")
    axes[1].set_xlabel("SGD step")
    axes[1].set_ylabel("training loss (MSE)")
    axes[1].set_title(rf"(b) $m = {depth}$, $\eta = {lr:g}$")
    axes[1].legend()
    return fig


def _draw_tile(runs: dict[str, pd.DataFrame], depth: int, lr: float) -> Figure:
    fig, axes = subplots(1, 3, figsize=(14, 3.6), layout="constrained")
    names = list(runs)
    for i, name in enumerate(names):
        steps, loss, status = _curve(runs[name], depth, lr)
        axes[0].semilogy(steps, loss, f"C{3 * i}-", marker=".", label=f"{name} ({status})")
        row = runs[name][(runs[name]["depth"] == depth) & np.isclose(runs[name]["lr"], lr)]
        ok = bool(converged_mask(row).iloc[0])
        value = float(row["sharpness"].iloc[0]) if ok else 0.0
        axes[1].bar(i, value, color=f"C{3 * i}", alpha=1.0 if ok else 0.0)
        label = f"{value:.3g}" if ok else "not converged"
        axes[1].text(i, value, label, ha="center", va="bottom")
        _draw_section(axes[2], row.iloc[0], f"C{3 * i}", name, ok)
    axes[0].set_xlabel("SGD step")
    axes[0].set_ylabel("training loss")
    axes[0].set_title(rf"training curve, $m = {depth}$, $\eta = {lr:g}$")
    axes[0].legend()
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


def _draw_section(ax: Any, row: pd.Series, color: str, name: str, ok: bool) -> None:
    """One run's loss along its top eigenvector beside the quadratic ``lambda_max r^2 / 2``."""
    radii = row.get("section_radii")
    if not ok or not isinstance(radii, np.ndarray):
        ax.plot([], [], color=color, label=f"{name}: no section (not converged)")
        return
    rise = np.asarray(row["section_loss"]) - float(row["final_train_loss"])
    ax.plot(radii, rise, "o", color=color, ms=4, label=f"{name}, measured")
    fine = np.linspace(radii[0], radii[-1], 101)
    ax.plot(fine, 0.5 * float(row["sharpness"]) * fine**2, "--", color=color,
            label=f"{name}, quadratic")  # fmt: skip


def tile_slider(identity: pd.DataFrame, he: pd.DataFrame) -> SliderFigure:
    """Pick a tile ``(depth, step size)``: its two training curves, sharpness vs ``2/eta``, and
    the loss along each run's top Hessian eigenvector beside ``lambda_max r^2 / 2``."""
    identity, he = _check_runs(identity, "identity"), _check_runs(he, "he")
    depths = sorted(int(d) for d in identity["depth"].unique())
    lrs = sorted(float(v) for v in identity["lr"].unique())
    runs = {"identity": identity, "He": he}
    return slider_figure(
        lambda depth, lr: _draw_tile(runs, depth, lr),
        {"depth": depths, "lr": lrs},
        labels={"depth": "depth m", "lr": "step size"},
    )


# ------------------------------------------------------------------ quick beside full


def full_runs(full: FullResults, init: str) -> pd.DataFrame:
    """The ``init`` grid of a committed full-mode result (:mod:`flatlib.full_results`)."""
    from flatlib.full_results import FullResults

    if not isinstance(full, FullResults):
        raise TypeError(f"full must be a FullResults, got {type(full).__name__}")
    runs = full.tables["runs"]
    return runs[runs["init"] == _init(init)].reset_index(drop=True)


def scale_comparison(
    identity: pd.DataFrame, he: pd.DataFrame, full: FullResults | None
) -> pd.DataFrame:
    """The findings of Figs. 4-5 (:func:`findings`) in quick mode beside full mode.

    Rows: the log-log slopes of the largest convergent step (identity; theory about ``-1``),
    of the largest stable step (both grids) and of the flattest sharpness (about ``+1``),
    and the three yes/no findings. The ``full`` column is NaN when no full-mode result is
    committed.
    """

    def column(found: Findings) -> dict[str, Any]:
        return {
            "slope of max convergent lr (identity)": found.lr_slope,
            "slope of max stable lr (identity)": found.stable_slope_identity,
            "slope of max stable lr (He)": found.stable_slope_he,
            "slope of flattest sharpness (identity)": found.flattest_slope,
            "He less tolerant of large steps": found.he_less_tolerant,
            "He sharper where both converge": found.he_sharper,
            "every tile within 2/eta": found.all_within_bound,
        }

    quick = column(findings(identity, he))
    if full is None:
        other: dict[str, Any] = dict.fromkeys(quick, float("nan"))
    else:
        other = column(findings(full_runs(full, "identity"), full_runs(full, "he")))
    table = pd.DataFrame({"quick": pd.Series(quick, dtype=object), "full": pd.Series(other)})
    table.index.name = "finding"
    return table
