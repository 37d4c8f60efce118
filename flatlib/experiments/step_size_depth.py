"""Chapter 9: sharpness against step size and depth (Sec. 6, Figs. 4 and 5): runs and analysis.

Mulayoff & Michaeli (ICML 2020) train one ReLU denoiser per ``(depth m, step size eta)`` tile
with SGD and measure the sharpness ``lambda_max`` of the minimum reached. Theorem 1 (eq. 17)
predicts, for linear networks, that the flattest minima get sharper linearly in ``m``, so the
largest step size that still converges shrinks like ``1/m`` (linear stability needs
``lambda_max <= 2 / eta``). The runs come from :func:`flatlib.experiments.sweep.run_grid` with
:func:`flatlib.experiments.sweep.run_denoising` under the protocol of
:func:`flatlib.experiments.sweep.denoising_config` (all of MNIST, bias-free layers, fresh noise
for every minibatch, a run counts as converged when its full training loss reaches
:data:`flatlib.experiments.sweep.TARGET_LOSS` within the epoch cap); this module builds the
grids and analyses the tables. The figures are drawn by
:mod:`flatlib.figures.step_size_depth`.

* :func:`chapter_grid`, :func:`run_chapter` - the grid of Fig. 4 (identity init) or Fig. 5
  (He init), quick (CPU) or full (paper) scale.
* :func:`check_runs`, :func:`run_depths` - the argument check of every analysis below and the
  depths of a run table.
* :func:`converged_mask`, :func:`sharpness_map`, :func:`loss_map`, :func:`loss_at_check`,
  :func:`outcome_counts` - which tiles converged, the heat map of Figs. 4(a)/5(a), and the
  loss where the runs stopped or after their first epoch.
* :func:`max_convergent_step`, :func:`max_stable_step`, :func:`flattest_sharpness_by_depth`,
  :func:`loglog_slope`, :func:`depth_slope`, :func:`step_trend` - Fig. 4(b) and the
  ``eta_max ~ 1/m`` fit.
* :func:`theorem1_prediction` - eq. (17) for the optimal linear map of the data, in the
  ``nn.MSELoss`` convention (divided by the number of output pixels).
* :func:`stability_table`, :func:`findings` - the ``lambda_max <= 2 / eta`` check and the
  qualitative findings of Figs. 4-5 as numbers.
* :func:`training_curve` - one run's training loss, the curve of Fig. 5(b).
* :func:`full_runs`, :func:`scale_comparison` - a committed paper-scale record
  (a :class:`flatlib.records.FullResults`, loaded by the caller with
  :func:`flatlib.records.load`) and its findings beside quick mode's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from flatlib._validation import as_float, as_float_array, as_int
from flatlib.config import resolve_mode
from flatlib.experiments.sweep import run_denoising, run_grid, step_size_depth_grid
from flatlib.theory import linear

__all__ = [
    "FIG5B_TILE",
    "FULL_DEPTHS",
    "FULL_HE_DEPTHS",
    "FULL_HE_LRS",
    "FULL_LRS",
    "INITS",
    "QUICK_DEPTHS",
    "QUICK_HE_EPOCHS",
    "QUICK_LRS",
    "SECTION_RADIUS",
    "STABILITY_RTOL",
    "Findings",
    "chapter_grid",
    "check_runs",
    "converged_mask",
    "depth_slope",
    "findings",
    "flattest_sharpness_by_depth",
    "full_runs",
    "loglog_slope",
    "loss_at_check",
    "loss_map",
    "max_convergent_step",
    "max_stable_step",
    "outcome_counts",
    "run_chapter",
    "run_depths",
    "scale_comparison",
    "sharpness_map",
    "stability_table",
    "step_trend",
    "theorem1_prediction",
    "training_curve",
]


INITS: tuple[str, ...] = ("identity", "he")
"""Fig. 4 uses identity initialisation, Fig. 5 the He initialisation."""
QUICK_DEPTHS: tuple[int, ...] = (2, 4, 8)
"""Depths ``m`` of both quick-mode grids (196-pixel digits, CPU)."""
QUICK_LRS: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0, 32.0)
"""Step sizes of both quick-mode grids (powers of two, so the log-log fit is evenly spaced)."""
QUICK_HE_EPOCHS = 1
"""Epoch cap of the quick-mode He grid (the identity grid keeps
:data:`flatlib.experiments.sweep.EPOCH_CAP`). He-initialised nets learn far more slowly; a run that
neither diverges nor reaches the target costs the whole cap, so quick mode follows them for
one epoch only: enough to see which step sizes diverge and to compare the loss after the
first epoch with the identity runs'."""
FULL_DEPTHS: tuple[int, ...] = (2, 4, 8, 12, 16, 18)
"""Depths of the full-mode identity grid (18 is the depth of the paper's Fig. 5(b))."""
FULL_LRS: tuple[float, ...] = (0.5, 1.0, 2.25, 4.0, 8.0, 16.0)
"""Step sizes of the full-mode identity grid (2.25 is the step size of the paper's Fig. 5(b))."""
FULL_HE_DEPTHS: tuple[int, ...] = (2, 4, 8, 18)
"""Depths of the full-mode He grid, a subset of :data:`FULL_DEPTHS`."""
FULL_HE_LRS: tuple[float, ...] = (0.5, 1.0, 2.25, 4.0)
"""Step sizes of the full-mode He grid, a subset of :data:`FULL_LRS`."""
SECTION_RADIUS = 0.3
"""Half-width of the top-eigenvector cross-section recorded for every converged tile."""
FIG5B_TILE: dict[str, dict[str, float]] = {
    "quick": {"depth": 8, "lr": 2.0},
    "full": {"depth": 18, "lr": 2.25},
}
"""The tile whose loss curves Fig. 5(b) compares (the paper uses m = 18, eta = 2.25)."""
STABILITY_RTOL = 0.02
"""Relative tolerance of the check ``lambda_max <= (1 + STABILITY_RTOL) 2 / eta``."""

_REQUIRED = ("depth", "lr", "status", "sharpness")


def _init(init: str) -> str:
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    return init


def check_runs(runs: Any, name: str = "runs") -> pd.DataFrame:
    """``runs`` itself after checking that it is a non-empty run table of :func:`run_chapter`.

    Raises ``TypeError`` unless ``runs`` is a DataFrame and ``ValueError`` when it lacks one of
    the columns ``depth``, ``lr``, ``status``, ``sharpness`` or has no rows; ``name`` is the
    argument's name in the messages.
    """
    if not isinstance(runs, pd.DataFrame):
        raise TypeError(f"{name} must be a DataFrame from run_chapter, got {type(runs).__name__}")
    missing = [c for c in _REQUIRED if c not in runs.columns]
    if missing:
        raise ValueError(f"{name} lacks the columns {missing}")
    if runs.empty:
        raise ValueError(f"{name} must not be empty")
    return runs


def run_depths(runs: pd.DataFrame) -> list[Any]:
    """The distinct depths ``m`` of a run table, in increasing order."""
    return sorted(runs["depth"].unique())


# ----------------------------------------------------------------------------- the runs


def chapter_grid(init: str = "identity", mode: str | None = None) -> list[dict[str, Any]]:
    """The ``(depth, step size)`` grid of Fig. 4 (``init="identity"``) or Fig. 5 (``"he"``).

    Every run follows :func:`flatlib.experiments.sweep.denoising_config` and records the loss
    along its top Hessian eigenvector within :data:`SECTION_RADIUS` when it converges (for
    :func:`flatlib.figures.step_size_depth.tile_slider`).

    * quick: :data:`QUICK_DEPTHS` x :data:`QUICK_LRS` for both initialisations; the identity
      runs have the standard epoch cap, the He runs :data:`QUICK_HE_EPOCHS`.
    * full: :data:`FULL_DEPTHS` x :data:`FULL_LRS` (identity), :data:`FULL_HE_DEPTHS` x
      :data:`FULL_HE_LRS` (He), both with the standard full-mode cap.
    """
    init, value = _init(init), resolve_mode(mode)
    section = {"section_radius": SECTION_RADIUS}
    if value == "quick":
        if init == "he":
            section["epochs"] = QUICK_HE_EPOCHS
        return step_size_depth_grid(QUICK_DEPTHS, QUICK_LRS, init, value, **section)
    if init == "he":
        return step_size_depth_grid(FULL_HE_DEPTHS, FULL_HE_LRS, init, value, **section)
    return step_size_depth_grid(FULL_DEPTHS, FULL_LRS, init, value, **section)


def run_chapter(
    init: str = "identity",
    mode: str | None = None,
    progress: bool = True,
    shard: tuple[int, int] | None = None,
) -> pd.DataFrame:
    """Run (or load from the cache) :func:`chapter_grid`; one row per tile.

    ``shard=(k, n)`` runs only every ``n``-th tile from the ``k``-th (see
    :func:`flatlib.experiments.sweep.run_grid`), to split a full-mode grid over processes.
    """
    init, value = _init(init), resolve_mode(mode)
    grid = chapter_grid(init, value)
    name = f"step_size_depth_{init}_{value}"
    return run_grid(name, grid, run_denoising, progress=progress, shard=shard)


# ----------------------------------------------------------------------------- analysis


def converged_mask(runs: pd.DataFrame) -> pd.Series:
    """Tiles that converged (the coloured tiles of Figs. 4(a), 5(a)).

    A tile counts when :func:`flatlib.nets.training.train` classified it ``"converged"`` (its full
    training loss reached the run's ``target_loss`` within the epoch cap) and its sharpness
    was measured (finite).
    """
    runs = check_runs(runs)
    ok = (runs["status"] == "converged").to_numpy() & np.isfinite(
        runs["sharpness"].to_numpy(dtype=float)
    )
    return pd.Series(ok, index=runs.index, name="converged")


def _pivot(runs: pd.DataFrame, values: pd.Series, name: str) -> pd.DataFrame:
    table = pd.DataFrame({"depth": runs["depth"], "lr": runs["lr"], name: values})
    return table.pivot_table(index="depth", columns="lr", values=name, dropna=False)


def sharpness_map(runs: pd.DataFrame) -> pd.DataFrame:
    """Heat map of Fig. 4(a)/5(a): rows depth, columns step size, NaN where not converged.

    The plots leave NaN tiles blank and mark the diverged ones with ``x``.
    """
    runs = check_runs(runs)
    return _pivot(runs, runs["sharpness"].where(converged_mask(runs)), "sharpness")


def loss_map(runs: pd.DataFrame) -> pd.DataFrame:
    """The full training loss where each run stopped (rows depth, columns step size).

    At the target for a converged run, at the epoch cap for one that did not converge, NaN for
    a diverged run.
    """
    runs = check_runs(runs)
    if "final_train_loss" not in runs.columns:
        raise ValueError("runs lacks the columns ['final_train_loss']")
    loss = runs["final_train_loss"].astype(float).where(runs["status"] != "diverged")
    return _pivot(runs, loss, "final_train_loss")


def loss_at_check(runs: pd.DataFrame, check: int = 1) -> pd.DataFrame:
    """The full training loss at each run's ``check``-th epoch check (rows depth, columns lr).

    ``check=1`` is the loss after the first epoch: a like-for-like comparison of runs with
    different caps. NaN where a run stopped before that check (it diverged, or it converged
    at an earlier one) or carries no ``check_loss``.
    """
    runs = check_runs(runs)
    k = as_int(check, "check", minimum=1)
    if "check_loss" not in runs.columns:
        raise ValueError("runs lacks the columns ['check_loss']")

    def pick(value: Any) -> float:
        ok = isinstance(value, (np.ndarray, list, tuple))
        losses = np.asarray(value, dtype=float).ravel() if ok else ()
        return float(losses[k - 1]) if len(losses) >= k else np.nan

    return _pivot(runs, runs["check_loss"].map(pick), "check_loss")


def outcome_counts(runs: pd.DataFrame) -> pd.Series:
    """How many tiles converged (:func:`converged_mask`), did not converge, diverged, in all."""
    runs = check_runs(runs)
    ok = converged_mask(runs)
    diverged = runs["status"] == "diverged"
    return pd.Series(
        {
            "converged": int(ok.sum()),
            "not converged": int((~ok & ~diverged).sum()),
            "diverged": int(diverged.sum()),
            "tiles": len(runs),
        },
        name="tiles",
    )


def max_convergent_step(runs: pd.DataFrame) -> pd.Series:
    """Largest step size whose tile converged, per depth (NaN if none did)."""
    runs = check_runs(runs)
    ok = runs[converged_mask(runs)]
    return ok.groupby("depth")["lr"].max().reindex(run_depths(runs)).rename("max_lr")


def max_stable_step(runs: pd.DataFrame) -> pd.Series:
    """Largest step size per depth whose run did not diverge: the stability edge (NaN if none).

    Unlike :func:`max_convergent_step` this counts a run that stayed bounded without reaching
    the target: divergence is what the stability rule ``lambda_max <= 2 / eta`` speaks about,
    whether or not the net has learned enough yet.
    """
    runs = check_runs(runs)
    ok = runs[runs["status"] != "diverged"]
    return ok.groupby("depth")["lr"].max().reindex(run_depths(runs)).rename("max_stable_lr")


def flattest_sharpness_by_depth(runs: pd.DataFrame) -> pd.Series:
    """Lowest sharpness over the converged tiles of each depth (Fig. 4(b), NaN if none)."""
    runs = check_runs(runs)
    ok = runs[converged_mask(runs)]
    return ok.groupby("depth")["sharpness"].min().reindex(run_depths(runs)).rename("flattest")


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


def depth_slope(values: pd.Series) -> float:
    """:func:`loglog_slope` of a per-depth series (index: depth) against depth.

    NaN when fewer than two depths have a finite value, e.g. when no tile converged: then
    there is nothing to fit, which is a finding in itself rather than an error.
    """
    if not isinstance(values, pd.Series):
        raise TypeError(
            f"values must be a pandas Series indexed by depth, got {type(values).__name__}"
        )
    finite = values.astype(float).replace([np.inf, -np.inf], np.nan).dropna()
    if finite.index.nunique() < 2:
        return float("nan")
    return loglog_slope(finite.index.to_numpy(dtype=float), finite.to_numpy())


def step_trend(runs: pd.DataFrame) -> pd.Series:
    """Per depth, the log-log slope of the converged tiles' ``lambda_max`` against step size.

    Negative where larger steps found flatter minima (Fig. 4(a): bluer tiles to the right);
    NaN at a depth with fewer than two converged tiles.
    """
    runs = check_runs(runs)
    ok = runs[converged_mask(runs)]
    out = {}
    for depth in run_depths(runs):
        row = ok[ok["depth"] == depth]
        out[depth] = (
            loglog_slope(row["lr"], row["sharpness"]) if row["lr"].nunique() >= 2 else np.nan
        )
    return pd.Series(out, name="slope vs lr", dtype=float).rename_axis("depth")


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
    if isinstance(depths, (str, bytes)) or not isinstance(depths, Sequence):
        raise TypeError(f"depths must be a sequence of ints, got {type(depths).__name__}")
    ms = [as_int(m, "depths[i]", minimum=1) for m in depths]
    if not ms:
        raise ValueError("depths must not be empty")
    return np.array([linear.flattest_sharpness(t, m) / ys.shape[1] for m in ms])


def stability_table(runs: pd.DataFrame, rtol: float = STABILITY_RTOL) -> pd.DataFrame:
    """The numbers check: measured ``lambda_max`` beside the bound ``2 / eta`` per converged tile.

    ``ratio = lambda_max eta / 2`` (above 1: sharper than the bound allows);
    ``within`` says whether ``lambda_max <= (1 + rtol) 2 / eta``.
    """
    runs = check_runs(runs)
    tol = as_float(rtol, "rtol")
    if tol < 0:
        raise ValueError(f"rtol must be >= 0, got {tol}")
    ok = runs[converged_mask(runs)]
    bound = 2.0 / ok["lr"].to_numpy(dtype=float)
    sharp = ok["sharpness"].to_numpy(dtype=float)
    return pd.DataFrame(
        {
            "depth": ok["depth"].to_numpy(),
            "lr": ok["lr"].to_numpy(dtype=float),
            "lambda_max": sharp,
            "2/eta": bound,
            "ratio": sharp / bound,
            "within": sharp <= (1.0 + tol) * bound,
        }
    )


@dataclass(frozen=True)
class Findings:
    """The findings of Figs. 4-5 as numbers (see :func:`findings`)."""

    counts_identity: pd.Series
    counts_he: pd.Series
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
    step_trend_identity: pd.Series
    diverged_only_he: int
    diverged_only_identity: int
    he_sharper: bool | None
    max_ratio: float
    n_within: int
    n_checked: int

    @property
    def he_less_tolerant(self) -> bool:
        """Some tile diverged from He but not from the identity, and no tile the other way."""
        return self.diverged_only_he > 0 and self.diverged_only_identity == 0

    @property
    def all_within_bound(self) -> bool:
        """Every converged tile passes :func:`stability_table` (vacuously true with none)."""
        return self.n_within == self.n_checked

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


def _diverged(runs: pd.DataFrame) -> pd.Series:
    keys = list(zip(runs["depth"].astype(int), runs["lr"].astype(float), strict=True))
    return pd.Series((runs["status"] == "diverged").to_numpy(), index=pd.Index(keys))


def findings(identity: pd.DataFrame, he: pd.DataFrame) -> Findings:
    """Counts, slopes and comparisons of the two grids.

    ``lr_slope``/``flattest_slope``: :func:`depth_slope` of the identity grid's largest
    convergent step (theory about ``-1``) and flattest sharpness (theory about ``+1``), NaN
    with fewer than two depths to fit. ``stable_slope_*``: the same for the largest step that
    did not diverge (:func:`max_stable_step`). ``diverged_only_he``/``diverged_only_identity``:
    tiles run in both grids that diverged from one initialisation only.
    ``he_sharper``: at every depth where both grids have a converged tile, He's flattest tile
    is the sharper one; ``None`` when there is no such depth (nothing to compare).
    ``max_ratio``/``n_within``/``n_checked``: the largest ``lambda_max eta / 2`` and how many
    of the converged tiles of both grids pass :func:`stability_table`.
    """
    identity = check_runs(identity, "identity")
    he = check_runs(he, "he")
    depths = sorted(set(run_depths(identity)) | set(run_depths(he)))
    lr_id = max_convergent_step(identity).reindex(depths)
    lr_he = max_convergent_step(he).reindex(depths)
    flat_id = flattest_sharpness_by_depth(identity).reindex(depths)
    flat_he = flattest_sharpness_by_depth(he).reindex(depths)
    stable_id = max_stable_step(identity).reindex(depths)
    stable_he = max_stable_step(he).reindex(depths)
    both = flat_id.notna() & flat_he.notna()
    checks = pd.concat([stability_table(r) for r in (identity, he)])
    div_id, div_he = _diverged(identity), _diverged(he)
    shared = div_id.index.intersection(div_he.index)
    a, b = div_id[shared].to_numpy(bool), div_he[shared].to_numpy(bool)
    return Findings(
        counts_identity=outcome_counts(identity),
        counts_he=outcome_counts(he),
        max_lr_identity=lr_id,
        max_lr_he=lr_he,
        lr_slope=depth_slope(lr_id),
        max_stable_identity=stable_id,
        max_stable_he=stable_he,
        stable_slope_identity=depth_slope(stable_id),
        stable_slope_he=depth_slope(stable_he),
        flattest_identity=flat_id,
        flattest_he=flat_he,
        flattest_slope=depth_slope(flat_id),
        step_trend_identity=step_trend(identity),
        diverged_only_he=int((b & ~a).sum()),
        diverged_only_identity=int((a & ~b).sum()),
        he_sharper=bool((flat_he[both] > flat_id[both]).all()) if both.any() else None,
        max_ratio=float(checks["ratio"].max()) if len(checks) else float("nan"),
        n_within=int(checks["within"].sum()),
        n_checked=len(checks),
    )


def training_curve(row: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """One run's full training loss against SGD steps: the curve of Fig. 5(b).

    The per-epoch checks ``check_steps``/``check_loss`` (on the stored noise draw) after the
    loss at step 0 (``initial_loss``) when the run carries them, else the logged minibatch
    means ``curve_steps``/``train_loss_curve`` (a record without checks). Empty arrays when
    the row has neither.
    """
    if not isinstance(row, pd.Series):
        raise TypeError(f"row must be a pandas Series (one run), got {type(row).__name__}")

    def array(name: str) -> np.ndarray:
        value = row.get(name)
        if isinstance(value, (np.ndarray, list, tuple)):
            return np.asarray(value, dtype=float).ravel()
        return np.zeros(0)

    steps, loss = array("check_steps"), array("check_loss")
    if steps.size == 0 or steps.size != loss.size:
        steps, loss = array("curve_steps"), array("train_loss_curve")
        if steps.size != loss.size:
            return np.zeros(0), np.zeros(0)
        return steps, loss
    initial = row.get("initial_loss")
    if isinstance(initial, (int, float, np.floating)) and np.isfinite(initial):
        steps, loss = np.r_[0.0, steps], np.r_[float(initial), loss]
    return steps, loss


# ------------------------------------------------------------------ quick beside full


def _is_record(full: Any) -> bool:
    """Whether ``full`` looks like a :class:`flatlib.records.FullResults` (it has ``tables``).

    This layer lies below :mod:`flatlib.records` and must not import it, so the check is on
    the shape, not the class."""
    return isinstance(getattr(full, "tables", None), Mapping)


def full_runs(full: Any, init: str) -> pd.DataFrame:
    """The ``init`` grid of a committed full-mode result (:mod:`flatlib.records`).

    ``full`` is the :class:`flatlib.records.FullResults` that the caller loaded with
    :func:`flatlib.records.load`; its ``tables["runs"]`` holds both grids.
    """
    if not _is_record(full):
        raise TypeError(f"full must be a FullResults, got {type(full).__name__}")
    runs = full.tables["runs"]
    return runs[runs["init"] == _init(init)].reset_index(drop=True)


def scale_comparison(identity: pd.DataFrame, he: pd.DataFrame, full: Any | None) -> pd.DataFrame:
    """The findings of Figs. 4-5 (:func:`findings`) in quick mode beside a paper-scale record.

    Rows: converged tiles of each grid, the log-log slopes of the largest convergent step
    (identity; theory about ``-1``), of the largest stable step (both grids) and of the
    flattest sharpness (about ``+1``), the tiles that diverged from He only, whether He's
    minima are sharper, and the largest ``lambda_max eta / 2``. The ``full`` column is NaN
    when ``full`` is ``None`` (no record committed). ``full`` is the
    :class:`flatlib.records.FullResults` that the caller loaded with
    :func:`flatlib.records.load`.
    """
    if full is not None and not _is_record(full):
        raise TypeError(f"full must be a FullResults or None, got {type(full).__name__}")

    def column(found: Findings) -> dict[str, Any]:
        ci, ch = found.counts_identity, found.counts_he
        return {
            "converged tiles (identity)": f"{ci['converged']} of {ci['tiles']}",
            "converged tiles (He)": f"{ch['converged']} of {ch['tiles']}",
            "slope of max convergent lr (identity)": found.lr_slope,
            "slope of max stable lr (identity)": found.stable_slope_identity,
            "slope of max stable lr (He)": found.stable_slope_he,
            "slope of flattest sharpness (identity)": found.flattest_slope,
            "tiles diverged from He only": found.diverged_only_he,
            "tiles diverged from identity only": found.diverged_only_identity,
            "He sharper where both converge": found.he_sharper,
            "max lambda_max / (2/eta)": found.max_ratio,
        }

    quick = column(findings(identity, he))
    if full is None:
        other: dict[str, Any] = dict.fromkeys(quick, float("nan"))
    else:
        other = column(findings(full_runs(full, "identity"), full_runs(full, "he")))
    table = pd.DataFrame(
        {"quick": pd.Series(quick, dtype=object), "full": pd.Series(other, dtype=object)}
    )
    table.index.name = "finding"
    return table
