"""Experiments of chapter 10: flat (SGD) against sharp (Adam) minima (Sec. 6, Figs. 6-7, App. IX.2).

Six-layer ReLU denoisers are trained with App. IX.2's two methods, four seeds each
(:func:`flatlib.experiments.sweep.flat_vs_sharp_grid`), and compared. This module computes;
the figures are drawn by :mod:`flatlib.figures.flat_vs_sharp`.

* :func:`chapter_grid`, :func:`run_chapter` - the eight runs at quick (CPU) or full (paper)
  scale, cached by :func:`flatlib.experiments.sweep.run_grid`; :func:`run_chapter_he_adam`
  adds Adam from He's random start.
* :func:`summary_table` - Table S1 (train/validation loss, ``lambda_max``) beside the paper.
* :func:`gain_imbalance` - Fig. 6: how far the intermediate gains per layer are from the
  balanced profile.
* :func:`quadratic_curvature`, :func:`deception_count` - the curvature of a 1-D loss profile
  at a point, and how often an interpolation plot ranks two minima the wrong way (Lemma 2).
* :func:`segment_section`, :func:`eigen_section`, :func:`analyse` - the cross-sections of
  Fig. 7 (segment between an SGD and an Adam solution, close-ups at both ends, top Hessian
  eigenvector of each), computed once.
* :func:`checks_table` - predicted against measured numbers with relative errors.
* :func:`linear_denoiser_loss` - the best linear denoiser (Wiener filter, eq. 3) that a
  converged network must beat.
* :func:`layer_table`, :func:`rescaling_table` - the diagnostic of the Fig. 7 verdict:
  per-layer weight norms and SGD-Adam distances, and a function-preserving rescaling of two
  layers of one solution (Lemma 2's mechanism) with the segment's verdict at each scale.
* :func:`scale_comparison` - quick mode beside the committed full-mode result
  (:mod:`flatlib.records`) and the paper.

Loss convention: ``nn.MSELoss()`` (mean over samples and output pixels), i.e. ``1/d_y`` times
eq. (2)'s loss; every curvature here is in that convention (see :mod:`flatlib.nets.training`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from flatlib._validation import as_float, as_float_array, as_int
from flatlib.config import device, resolve_mode
from flatlib.curvature.hessian import (
    HessianOperator,
    cross_section,
    eigenpairs,
    full_loss,
    get_vector,
    hvp,
    interpolate,
    set_vector,
    top_eigenpairs,
)
from flatlib.experiments.sweep import (
    denoising_config,
    flat_vs_sharp_grid,
    run_data,
    run_denoising,
    run_grid,
    sharpness_data,
)
from flatlib.nets.models import mlp

__all__ = [
    "CHECK_EVERY",
    "CHECK_MARGIN",
    "CLOSEUP_HALF_WIDTH",
    "INIT",
    "NAMES",
    "PAPER_SCALE",
    "PAPER_TABLE",
    "QUICK_OVERRIDES",
    "SEEDS",
    "EigenSection",
    "FlatSharpAnalysis",
    "PairSection",
    "analyse",
    "chapter_grid",
    "check_runs",
    "checks_table",
    "deception_count",
    "distance_from_init",
    "eigen_section",
    "gain_imbalance",
    "layer_table",
    "linear_denoiser_loss",
    "quadratic_curvature",
    "rebuild_model",
    "rescale_layers",
    "rescaling_table",
    "run_chapter",
    "run_chapter_he_adam",
    "scale_comparison",
    "segment_section",
    "summary_table",
]

SEEDS: tuple[int, ...] = (0, 1, 2, 3)
"""The four random initialisations of each method (App. IX.2)."""

INIT = "identity"
"""Where both methods of :func:`chapter_grid` start, in both modes. He-initialised SGD with
``eta = 1/2`` does not reach the training-loss target within the epoch cap (chapter 9's He
grid), so the matched-loss comparison starts both methods from the identity;
:func:`run_chapter_he_adam` adds the paper's He start for Adam."""
QUICK_OVERRIDES: dict[str, Any] = {"gain_starts": 20, "gain_steps": 100}
"""Quick-mode changes to :func:`flatlib.experiments.sweep.flat_vs_sharp_grid`: Fig. 6's gain
search uses 20 starts of 100 steps (full mode: the paper's 100 starts of 200 steps)."""
CHECK_EVERY: dict[str, int] = {"sgd": 300, "adam": 100}
"""Steps between two checks of the training loss against the target, per method. Adam's loss
falls several times faster, so it is checked more often, and both stop within about 2 % of
the target (App. IX.2 compares the methods at training losses 2 % apart). Each check is a
forward pass over all training pairs, so checks are not free."""
CHECK_MARGIN = 0.1
"""Checks start once the recent minibatch losses are within 10 % of the target (see the
``check_margin`` argument of :func:`flatlib.nets.training.train`)."""

PAPER_TABLE: dict[str, dict[str, str]] = {
    "sgd": {"train loss": "2.69e-2 ± 2.5e-5", "val loss": "2.70e-2 ± 1.7e-4",
            "lambda_max": "1.76 ± 0.009"},
    "adam": {"train loss": "2.74e-2 ± 4.0e-5", "val loss": "2.80e-2 ± 1.9e-4",
             "lambda_max": "12.9 ± 2.2"},
}  # fmt: skip
"""Table S1 of the paper (App. IX.2), mean ± std over four seeds."""

CLOSEUP_HALF_WIDTH = 0.05
"""Half-width (parameter distance) of the windows on which end curvatures are fitted."""

NAMES = {"sgd": "SGD", "adam": "Adam"}
"""Display name of each optimizer, in tables and figures."""


# ----------------------------------------------------------------------------- the runs


def chapter_grid(mode: str | None = None, seeds: Sequence[int] = SEEDS) -> list[dict[str, Any]]:
    """The eight runs of App. IX.2: :func:`flatlib.experiments.sweep.flat_vs_sharp_grid` at
    ``mode``'s scale.

    Both modes start from :data:`INIT`; quick mode applies :data:`QUICK_OVERRIDES`, full mode
    is the paper's scale (784-pixel digits, 100 gain starts; see
    :func:`flatlib.experiments.sweep.denoising_config`).
    The training loss is checked every :data:`CHECK_EVERY` steps.
    Every run trains until its training loss reaches the mode's target, so the two methods
    end at matched losses as in App. IX.2.
    """
    value = resolve_mode(mode)
    overrides = QUICK_OVERRIDES if value == "quick" else {}
    grid = flat_vs_sharp_grid(seeds, value, init=INIT, **overrides)
    return [{**c, "check_every": CHECK_EVERY[c["optimizer"]], "check_margin": CHECK_MARGIN}
            for c in grid]  # fmt: skip


def run_chapter(
    mode: str | None = None, progress: bool = True, shard: tuple[int, int] | None = None
) -> pd.DataFrame:
    """Run (or load from the cache) the grid of :func:`chapter_grid`; one row per run.

    ``shard=(k, n)`` runs only every ``n``-th run from the ``k``-th (see
    :func:`flatlib.experiments.sweep.run_grid`), to split the grid over processes.
    """
    value = resolve_mode(mode)
    grid = chapter_grid(value)
    return run_grid(f"flat_vs_sharp_{value}", grid, run_denoising, progress=progress, shard=shard)


def run_chapter_he_adam(mode: str | None = None, progress: bool = True) -> pd.DataFrame:
    """Method 2 (Adam) of :func:`chapter_grid`, seed 0, from He's random initialisation.

    Both methods of the chapter start from :data:`INIT`; this one extra run shows what the
    paper's random start does to Adam's minimum at the same training-loss target.
    """
    value = resolve_mode(mode)
    adam = next(c for c in chapter_grid(value) if c["optimizer"] == "adam" and c["seed"] == 0)
    config = {**adam, "init": "he"}
    return run_grid(f"flat_vs_sharp_{value}", [config], run_denoising, progress=progress)


def _mean_std(values: Any) -> str:
    v = np.asarray(values, dtype=np.float64)
    return f"{v.mean():.4g} ± {v.std(ddof=1) if v.size > 1 else 0.0:.2g}"


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Table S1 (App. IX.2): mean ± std over seeds of each method, beside the paper's values.

    Losses and ``lambda_max`` are in the ``nn.MSELoss`` convention (mean over pixels), the
    one under which the paper's ``lambda_max = 1.76`` is stable for ``eta = 1/2``.
    """
    check_runs(runs)
    rows = []
    for opt in ("sgd", "adam"):
        sub = runs[runs["optimizer"] == opt]
        for col, name in (
            ("final_train_loss", "train loss"),
            ("final_val_loss", "val loss"),
            ("sharpness", "lambda_max"),
        ):
            rows.append(
                {
                    "method": f"{NAMES[opt]} (lr {sub['lr'].iloc[0]:g})",
                    "quantity": name,
                    "measured": _mean_std(sub[col]),
                    "paper": PAPER_TABLE[opt][name],
                }
            )
    return pd.DataFrame(rows).set_index(["method", "quantity"])


def check_runs(runs: Any) -> None:
    """Raise unless ``runs`` is a DataFrame of :func:`run_chapter` fit for the chapter's analysis.

    It must hold the columns ``optimizer``, ``seed``, ``status``, ``sharpness`` and
    ``final_train_loss``, runs of both optimizers (``"sgd"`` and ``"adam"``), and only runs
    that reached the training-loss target (``status == "converged"``).
    """
    if not isinstance(runs, pd.DataFrame):
        raise TypeError(f"runs must be a DataFrame from run_chapter, got {type(runs).__name__}")
    needed = {"optimizer", "seed", "status", "sharpness", "final_train_loss"}
    missing = needed - set(runs.columns)
    if missing:
        raise ValueError(f"runs lacks the columns {sorted(missing)}")
    bad = runs[runs["status"] != "converged"]
    if len(bad):
        raise ValueError(
            "runs must all have converged; not converged: "
            + ", ".join(f"{r.optimizer} seed {r.seed}: {r.status}" for r in bad.itertuples())
        )
    if set(runs["optimizer"]) != {"sgd", "adam"}:
        raise ValueError("runs must hold both optimizers, 'sgd' and 'adam'")


def rebuild_model(row: Any, dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """The trained network of one run (a row of :func:`run_chapter`), from its saved params.

    Cast to ``dtype`` (default float64, so that the fine cross-sections of Fig. 7 are not
    limited by float32 rounding).
    """
    d = int(row["size"]) ** 2
    model = mlp([d] * (int(row["depth"]) + 1), "relu", row["init"], bool(row["bias"]), 0, dtype)
    set_vector(model, torch.as_tensor(np.asarray(row["params"]), dtype=dtype))
    return model.to(device()).eval()


def distance_from_init(row: Any) -> float:
    """``||w - w_0||``: how far a run's trained weights lie from its initialisation.

    ``w_0`` is rebuilt from the run's configuration (:func:`flatlib.nets.models.mlp` with its
    ``init`` and ``seed``, so it is exactly where training started).
    """
    d = int(row["size"]) ** 2
    start = mlp([d] * (int(row["depth"]) + 1), "relu", row["init"], bool(row["bias"]),
                int(row["seed"]), torch.float64)  # fmt: skip
    w0 = get_vector(start).detach().cpu().numpy()
    return float(np.linalg.norm(np.asarray(row["params"], dtype=np.float64) - w0))


def _training_data(row: Any, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The training pairs on which the run's sharpness was measured, in ``dtype``."""
    data = sharpness_data(row, run_data(row))
    return data.x_train.to(dtype), data.y_train.to(dtype)


# ------------------------------------------------------------------------------ Fig. 6


def gain_imbalance(max_gains: Any) -> float:
    """RMS distance of ``log g_k`` from the balanced profile ``(k/m) log g_m`` (Fig. 6).

    For a balanced linear network every layer multiplies the top signal by the same factor,
    so the partial gains grow geometrically, ``g_k = g_m^{k/m}`` (Theorem 2 of the paper,
    analogue of Fig. 3). Zero means perfectly balanced layers.
    """
    g = as_float_array(max_gains, "max_gains", ndim=1)
    if np.any(g <= 0):
        raise ValueError("max_gains must be positive")
    m = g.size
    balanced = np.arange(1, m + 1) / m * np.log(g[-1])
    return float(np.sqrt(np.mean((np.log(g) - balanced) ** 2)))


# ------------------------------------------------------------------- Fig. 7, Lemma 2


def quadratic_curvature(s: Any, loss: Any, center: float, half_width: float) -> float:
    """Second derivative at ``center`` of a least-squares parabola fitted to ``loss(s)``.

    Only the samples with ``|s - center| <= half_width`` are used (at least three). A linear
    term absorbs a non-zero slope, so the estimate is the curvature ``u^T H u`` of the 1-D
    cross-section (eq. S24) even when the point is not an exact minimum.
    """
    s = as_float_array(s, "s", ndim=1)
    loss = as_float_array(loss, "loss", ndim=1)
    if s.shape != loss.shape:
        raise ValueError(f"s {s.shape} and loss {loss.shape} must have the same shape")
    center = as_float(center, "center")
    half_width = as_float(half_width, "half_width", positive=True)
    keep = np.abs(s - center) <= half_width * (1 + 1e-12)
    if np.count_nonzero(keep) < 3:
        raise ValueError(
            f"half_width={half_width} leaves {np.count_nonzero(keep)} samples around "
            f"center={center}; need at least 3"
        )
    coef = np.polyfit(s[keep] - center, loss[keep], 2)
    return float(2.0 * coef[0])


def deception_count(
    lam_flat: Any, lam_sharp: Any, curv_at_flat: Any, curv_at_sharp: Any
) -> tuple[int, int]:
    """How many pairs the interpolation plot ranks the wrong way (Lemma 2, Fig. 7a).

    Inputs are arrays over pairs: the true sharpness ``lambda_max`` of the flat and the
    sharp member and the curvature of the connecting line at each. A pair is *deceptive*
    when ``lam_flat < lam_sharp`` but ``curv_at_flat > curv_at_sharp``. Returns
    ``(deceptive pairs, pairs whose lambda_max ordering is flat < sharp)``.
    """
    arrays = [
        as_float_array(a, n, ndim=1)
        for a, n in (
            (lam_flat, "lam_flat"),
            (lam_sharp, "lam_sharp"),
            (curv_at_flat, "curv_at_flat"),
            (curv_at_sharp, "curv_at_sharp"),
        )
    ]
    if len({a.shape for a in arrays}) != 1:
        raise ValueError("lam_flat, lam_sharp, curv_at_flat, curv_at_sharp must match in shape")
    lf, ls, cf, cs = arrays
    ordered = lf < ls
    return int(np.count_nonzero(ordered & (cf > cs))), int(np.count_nonzero(ordered))


@dataclass
class PairSection:
    """The loss along the segment from an SGD solution (``s = 0``) to an Adam one (Fig. 7a-c).

    ``s`` is the signed distance from the SGD end along the unit direction
    ``v_int = (w_adam - w_sgd) / distance``. ``closeup_*`` hold fine samples within
    ``CLOSEUP_HALF_WIDTH`` of each end; ``curv_*`` are the parabola-fit curvatures there
    (:func:`quadratic_curvature`) and ``rayleigh_*`` the exact ``v_int^T H v_int`` from
    Hessian-vector products.
    """

    sgd_seed: int
    adam_seed: int
    distance: float
    s: np.ndarray
    loss: np.ndarray
    closeup_s: np.ndarray
    closeup_sgd: np.ndarray
    closeup_adam: np.ndarray
    curv_sgd: float
    curv_adam: float
    rayleigh_sgd: float
    rayleigh_adam: float


@dataclass
class EigenSection:
    """The loss along the top Hessian eigenvector of one solution (Fig. 7d-e)."""

    optimizer: str
    seed: int
    lambda_max: float
    radii: np.ndarray
    loss: np.ndarray
    curvature: float
    vector: np.ndarray


def segment_section(
    model_sgd: nn.Module,
    model_adam: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    n_points: int = 31,
    extend: float = 0.15,
    n_closeup: int = 11,
    seeds: tuple[int, int] = (0, 0),
    hessians: tuple[Any, Any] | None = None,
    chunk_size: int | None = None,
) -> PairSection:
    """Loss along the line through two solutions, with close-ups at both ends (Fig. 7a-c).

    ``n_points`` samples of ``alpha`` in ``[-extend, 1 + extend]`` (via
    :func:`flatlib.curvature.hessian.interpolate`), ``n_closeup`` samples within
    ``CLOSEUP_HALF_WIDTH`` of each end for the curvature fits. ``hessians``: the
    :func:`flatlib.curvature.hessian.hvp` operators at the two ends, to reuse (built when ``None``).
    ``chunk_size`` bounds the samples per forward pass (``None``: all at once).
    """
    n_points = as_int(n_points, "n_points", minimum=3)
    n_closeup = as_int(n_closeup, "n_closeup", minimum=3)
    extend = as_float(extend, "extend")
    if extend < 0:
        raise ValueError(f"extend must be non-negative, got {extend}")
    wa, wb = get_vector(model_sgd).detach(), get_vector(model_adam).detach()
    distance = float(torch.linalg.norm(wb - wa))
    if distance == 0:
        raise ValueError("model_sgd and model_adam have identical parameters")
    alphas = np.linspace(-extend, 1 + extend, n_points)
    bound = HessianOperator(model_sgd, nn.MSELoss(), x, y, chunk_size)
    loss = interpolate(bound, model_adam, alphas)
    ds = np.linspace(-CLOSEUP_HALF_WIDTH, CLOSEUP_HALF_WIDTH, n_closeup)
    near_sgd = interpolate(bound, model_adam, ds / distance)
    near_adam = interpolate(bound, model_adam, 1 + ds / distance)
    u = (wb - wa) / distance
    if hessians is None:
        hessians = (
            hvp(model_sgd, nn.MSELoss(), x, y, chunk_size),
            hvp(model_adam, nn.MSELoss(), x, y, chunk_size),
        )
    return PairSection(
        sgd_seed=int(seeds[0]),
        adam_seed=int(seeds[1]),
        distance=distance,
        s=alphas * distance,
        loss=loss,
        closeup_s=ds,
        closeup_sgd=near_sgd,
        closeup_adam=near_adam,
        curv_sgd=quadratic_curvature(ds, near_sgd, 0.0, CLOSEUP_HALF_WIDTH),
        curv_adam=quadratic_curvature(ds, near_adam, 0.0, CLOSEUP_HALF_WIDTH),
        rayleigh_sgd=float(torch.dot(hessians[0](u), u)),
        rayleigh_adam=float(torch.dot(hessians[1](u), u)),
    )


def eigen_section(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    radii: Any,
    optimizer: str = "sgd",
    seed: int = 0,
    tol: float = 1e-6,
    chunk_size: int | None = None,
    top: tuple[float, Any] | None = None,
) -> EigenSection:
    """Loss along the top Hessian eigenvector (Lanczos) at ``radii`` (Fig. 7d-e).

    ``curvature`` is the parabola fit of the samples with ``|r| <= CLOSEUP_HALF_WIDTH``, to
    be compared with the Lanczos eigenvalue ``lambda_max``. ``top = (lambda_max, vector)``
    reuses an eigenpair measured before (a run's ``top_eigenvector``) instead of Lanczos.
    """
    r = as_float_array(radii, "radii", ndim=1)
    if top is None:
        res = top_eigenpairs(model, nn.MSELoss(), x, y, k=1, tol=tol, chunk_size=chunk_size)
        lam, v = res.sharpness, res.eigenvectors[0]
    else:
        lam = as_float(top[0], "top[0]", positive=True)
        v = torch.as_tensor(np.asarray(top[1]), dtype=x.dtype, device=x.device)
        v = v / torch.linalg.norm(v)
    loss = cross_section(HessianOperator(model, nn.MSELoss(), x, y, chunk_size), v, r)
    v_np = v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
    return EigenSection(
        optimizer=optimizer,
        seed=int(seed),
        lambda_max=lam,
        radii=r,
        loss=loss,
        curvature=quadratic_curvature(r, loss, 0.0, CLOSEUP_HALF_WIDTH),
        vector=v_np,
    )


@dataclass
class FlatSharpAnalysis:
    """All cross-sections of Fig. 7: ``pairs[(sgd_seed, adam_seed)]``, ``eigen[(opt, seed)]``."""

    pairs: dict[tuple[int, int], PairSection]
    eigen: dict[tuple[str, int], EigenSection]
    sharpness: dict[tuple[str, int], float]

    def pair_table(self) -> pd.DataFrame:
        """One row per pair: true ``lambda_max`` of each end, line curvatures, deceptive?"""
        rows = []
        for (i, j), p in self.pairs.items():
            ls, la = self.sharpness[("sgd", i)], self.sharpness[("adam", j)]
            rows.append(
                {
                    "sgd seed": i,
                    "adam seed": j,
                    "lambda_max SGD": ls,
                    "lambda_max Adam": la,
                    "line curvature at SGD": p.curv_sgd,
                    "line curvature at Adam": p.curv_adam,
                    "SGD looks sharper": p.curv_sgd > p.curv_adam,
                    "exact v^T H v agrees": (p.curv_sgd > p.curv_adam)
                    == (p.rayleigh_sgd > p.rayleigh_adam),
                    "deceptive": (ls < la) and (p.curv_sgd > p.curv_adam),
                }
            )
        return pd.DataFrame(rows)

    def deception(self) -> tuple[int, int]:
        """:func:`deception_count` over all pairs (SGD as the flat member)."""
        t = self.pair_table()
        return deception_count(
            t["lambda_max SGD"],
            t["lambda_max Adam"],
            t["line curvature at SGD"],
            t["line curvature at Adam"],
        )


def analyse(
    runs: pd.DataFrame,
    max_radius: float = 0.5,
    n_radii: int = 11,
    dtype: torch.dtype = torch.float32,
) -> FlatSharpAnalysis:
    """Every cross-section of Fig. 7 for the runs of :func:`run_chapter` (computed once).

    Eigenvector cross-sections use ``n_radii`` radii in ``[-max_radius, max_radius]`` plus
    fine samples near 0 for the curvature fit, along each run's stored ``top_eigenvector``
    when it has one (else Lanczos); all 16 SGD/Adam segments are evaluated. Everything is
    computed in ``dtype`` (float32, the runs' own precision, by default) on the pairs on which
    the runs' ``lambda_max`` was measured.
    """
    check_runs(runs)
    max_radius = as_float(max_radius, "max_radius", positive=True)
    n_radii = as_int(n_radii, "n_radii", minimum=3)
    fine = np.linspace(-CLOSEUP_HALF_WIDTH, CLOSEUP_HALF_WIDTH, 11)
    radii = np.unique(np.concatenate([np.linspace(-max_radius, max_radius, n_radii), fine]))
    models, ops, eigen, sharp = {}, {}, {}, {}
    x, y = _training_data(runs.iloc[0], dtype)
    chunk = 5000 if x.shape[0] > 5000 else None  # as flatlib.nets.training.sharpness
    for _, row in runs.iterrows():
        key = (row["optimizer"], int(row["seed"]))
        models[key] = rebuild_model(row, dtype)
        ops[key] = hvp(models[key], nn.MSELoss(), x, y, chunk)
        sharp[key] = float(row["sharpness"])
        vector = row.get("top_eigenvector")
        top = None if not isinstance(vector, np.ndarray) else (sharp[key], vector)
        eigen[key] = eigen_section(
            models[key], x, y, radii, key[0], key[1], tol=1e-5, chunk_size=chunk, top=top
        )
    pairs = {}
    for i in sorted(s for o, s in models if o == "sgd"):
        for j in sorted(s for o, s in models if o == "adam"):
            pairs[(i, j)] = segment_section(
                models[("sgd", i)],
                models[("adam", j)],
                x,
                y,
                n_points=9,
                n_closeup=9,
                seeds=(i, j),
                hessians=(ops[("sgd", i)], ops[("adam", j)]),
                chunk_size=chunk,
            )
    return FlatSharpAnalysis(pairs=pairs, eigen=eigen, sharpness=sharp)


# ------------------------------------------------------------------------ numbers check


def checks_table(runs: pd.DataFrame, analysis: FlatSharpAnalysis) -> pd.DataFrame:
    """Predicted against measured values, with relative errors.

    Rows: the stability bound ``2/eta`` against the largest SGD ``lambda_max`` (a bound, so
    ``measured/predicted < 1`` is the check); for each solution, Lanczos ``lambda_max``
    against the parabola-fit curvature of its eigenvector cross-section; for each pair end,
    the exact ``v_int^T H v_int`` against the fitted curvature of the segment.
    """
    check_runs(runs)
    rows = []
    sgd = runs[runs["optimizer"] == "sgd"]
    rows.append(
        {
            "check": "max SGD lambda_max <= 2/eta",
            "predicted": 2.0 / float(sgd["lr"].iloc[0]),
            "measured": float(sgd["sharpness"].max()),
        }
    )
    for (opt, seed), e in analysis.eigen.items():
        rows.append(
            {
                "check": f"{NAMES[opt]} seed {seed}: v_max cross-section curvature",
                "predicted": e.lambda_max,
                "measured": e.curvature,
            }
        )
    for (i, j), p in analysis.pairs.items():
        for end, exact, fit in (("SGD", p.rayleigh_sgd, p.curv_sgd),
                                ("Adam", p.rayleigh_adam, p.curv_adam)):  # fmt: skip
            rows.append(
                {
                    "check": f"pair ({i},{j}) at {end}: segment curvature",
                    "predicted": exact,
                    "measured": fit,
                }
            )
    t = pd.DataFrame(rows)
    t["rel. error"] = (t["measured"] - t["predicted"]).abs() / t["predicted"].abs()
    return t


# ------------------------------------------------------- diagnostics of the Fig. 7 verdict


def _linear_layers(model: nn.Module) -> list[nn.Linear]:
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise ValueError("model holds no nn.Linear layer")
    return layers


def layer_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per-layer weight norms of both methods and how far apart their solutions lie.

    One row per layer ``k``: the mean over seeds of ``||W_k||_F`` and ``||W_k||_2`` for SGD
    and for Adam, the mean over all SGD/Adam pairs of ``||W_k^SGD - W_k^Adam||_F``, and that
    layer's share of the squared length of the whole segment (so the shares sum to one: the
    layers in which the interpolation direction ``v_int`` of Fig. 7 mostly lies).
    """
    check_runs(runs)
    weights: dict[tuple[str, int], list[np.ndarray]] = {}
    for _, row in runs.iterrows():
        model = rebuild_model(row)
        weights[(row["optimizer"], int(row["seed"]))] = [
            lin.weight.detach().cpu().numpy() for lin in _linear_layers(model)
        ]
    depth = len(next(iter(weights.values())))
    sgd = [w for (o, _), w in weights.items() if o == "sgd"]
    adam = [w for (o, _), w in weights.items() if o == "adam"]
    dist2 = np.array([[np.sum((a[k] - b[k]) ** 2) for k in range(depth)] for a in sgd
                      for b in adam])  # fmt: skip
    share = dist2 / dist2.sum(axis=1, keepdims=True)
    rows = []
    for k in range(depth):
        rows.append(
            {
                "layer": k + 1,
                "SGD ||W||_F": float(np.mean([np.linalg.norm(w[k]) for w in sgd])),
                "Adam ||W||_F": float(np.mean([np.linalg.norm(w[k]) for w in adam])),
                "SGD ||W||_2": float(np.mean([np.linalg.norm(w[k], 2) for w in sgd])),
                "Adam ||W||_2": float(np.mean([np.linalg.norm(w[k], 2) for w in adam])),
                "||W_SGD - W_Adam||_F": float(np.mean(np.sqrt(dist2[:, k]))),
                "share of segment": float(np.mean(share[:, k])),
            }
        )
    return pd.DataFrame(rows).set_index("layer")


def rescale_layers(model: nn.Sequential, layer: int, alpha: float) -> nn.Sequential:
    """A copy of a ReLU MLP with layer ``k`` scaled by ``alpha`` and layer ``k+1`` by ``1/alpha``.

    ``relu(alpha z) = alpha relu(z)`` for ``alpha > 0``, so the copy computes the same function
    (the weights, and the bias of layer ``k`` if any, scale by ``alpha``): it is another point
    of the same valley of minima, the move behind Lemma 2 and the rescaling argument of
    Dinh et al. (2017) that every minimum of a ReLU net has arbitrarily sharp twins.
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential MLP, got {type(model).__name__}")
    alpha = as_float(alpha, "alpha", positive=True)
    out = copy.deepcopy(model)
    layers = _linear_layers(out)
    k = as_int(layer, "layer", minimum=1)
    if k >= len(layers):
        raise ValueError(f"layer must be at most depth - 1 = {len(layers) - 1}, got {k}")
    with torch.no_grad():
        layers[k - 1].weight.mul_(alpha)
        if layers[k - 1].bias is not None:
            layers[k - 1].bias.mul_(alpha)
        layers[k].weight.div_(alpha)
    return out


def rescaling_table(
    runs: pd.DataFrame,
    sgd_seed: int,
    adam_seed: int,
    layer: int,
    alphas: Sequence[float],
    dtype: torch.dtype = torch.float32,
) -> pd.DataFrame:
    """Lemma 2's mechanism on one pair: rescale the Adam solution and re-draw the segment.

    For each ``alpha``, :func:`rescale_layers` moves the Adam solution along its valley (same
    function, same loss) and the segment from the SGD solution is evaluated again
    (:func:`segment_section`). Columns: ``alpha``, the training loss at the rescaled point (it
    must not change), both ``lambda_max`` (the run's stored value for SGD, Lanczos to a relative
    accuracy of about 1e-3 for the rescaled point), the curvature of the segment at each end,
    whether the segment makes the SGD end look the sharper one, and whether that verdict is
    wrong (the segment ranks the two ends unlike their ``lambda_max``, whichever is flatter).
    Everything is measured in ``dtype`` on the pairs on which the runs' ``lambda_max`` was
    measured.
    """
    check_runs(runs)
    rows = {(r["optimizer"], int(r["seed"])): r for _, r in runs.iterrows()}
    for key in (("sgd", sgd_seed), ("adam", adam_seed)):
        if key not in rows:
            raise ValueError(f"runs has no {key[0]} run with seed {key[1]}")
    if isinstance(alphas, (str, bytes)) or not isinstance(alphas, Sequence) or not alphas:
        raise TypeError(f"alphas must be a non-empty sequence of positive floats, got {alphas!r}")
    x, y = _training_data(rows[("sgd", sgd_seed)], dtype)
    model_sgd = rebuild_model(rows[("sgd", sgd_seed)], dtype)
    model_adam = rebuild_model(rows[("adam", adam_seed)], dtype)
    lam_sgd = float(rows[("sgd", sgd_seed)]["sharpness"])
    sgd_hessian = hvp(model_sgd, nn.MSELoss(), x, y)
    out = []
    for alpha in alphas:
        moved = rescale_layers(model_adam, layer, alpha)
        adam_hessian = hvp(moved, nn.MSELoss(), x, y)
        lam = eigenpairs(adam_hessian, k=1, tol=1e-3).eigenvalues[0]
        p = segment_section(model_sgd, moved, x, y, n_points=3, n_closeup=9,
                            hessians=(sgd_hessian, adam_hessian))  # fmt: skip
        out.append(
            {
                "alpha": float(alpha),
                "loss at Adam": full_loss(adam_hessian),
                "lambda_max SGD": lam_sgd,
                "lambda_max Adam": float(lam),
                "line curvature at SGD": p.curv_sgd,
                "line curvature at Adam": p.curv_adam,
                "SGD looks sharper": p.curv_sgd > p.curv_adam,
                "verdict wrong": (lam_sgd < lam) != (p.curv_sgd < p.curv_adam),
            }
        )
    return pd.DataFrame(out)


def linear_denoiser_loss(config: dict[str, Any]) -> tuple[float, float]:
    """Training and validation ``MSELoss`` of the best linear denoiser for a run's data.

    With the noise redrawn for every minibatch, the loss a network is trained on is the
    expectation over the noise, and the best affine map for it is eq. (3) with population
    covariances, ``T = Sigma_yx Sigma_x^(-1) = C (C + s^2 I)^(-1)`` (the Wiener filter), where
    ``C`` is the covariance of the clean training digits, ``s`` the noise std, and the bias
    maps the mean digit to itself. Returns its expected loss
    ``(tr((T - I) C_set (T - I)^T) + s^2 ||T||_F^2) / d`` on the clean training and
    validation digits of the run (:func:`flatlib.experiments.sweep.run_data`), in the ``nn.MSELoss``
    convention (eq. 2 divided by ``d``). A network beats it only by denoising nonlinearly.
    """
    if not isinstance(config, dict):
        raise TypeError(f"config must be a run configuration dict, got {type(config).__name__}")
    cfg = denoising_config(config.get("mode"), **{k: v for k, v in config.items() if k != "mode"})
    data = run_data(cfg)
    y = data.y_train.detach().cpu().double().numpy()
    yv = data.y_val.detach().cpu().double().numpy()
    var = float(cfg["noise_std"]) ** 2
    mean = y.mean(axis=0)
    cov = np.cov(y, rowvar=False, bias=True)
    t = cov @ np.linalg.inv(cov + var * np.eye(cov.shape[0]))

    def expected(clean: np.ndarray) -> float:
        residual = (clean - mean) @ (t - np.eye(len(t))).T
        return float(((residual**2).sum(axis=1).mean() + var * (t**2).sum()) / clean.shape[1])

    return expected(y), expected(yv)


# ------------------------------------------------------------------ quick beside full


PAPER_SCALE: dict[str, float] = {
    "SGD lambda_max": 1.76,
    "Adam lambda_max": 12.9,
    "Adam / SGD lambda_max": 12.9 / 1.76,
    "SGD train loss": 2.69e-2,
    "Adam train loss": 2.74e-2,
    "SGD val loss": 2.70e-2,
    "Adam val loss": 2.80e-2,
    "SGD gain imbalance": math.nan,
    "Adam gain imbalance": math.nan,
    "deceptive pairs (share)": 1.0,
}
"""The paper's means (Table S1) and its Fig. 7 count (16 of 16), as compared by
:func:`scale_comparison`; Fig. 6 shows the gains but gives no imbalance number (NaN)."""


def _scale_column(runs: pd.DataFrame, pairs: pd.DataFrame | None) -> dict[str, float]:
    """The quantities of :data:`PAPER_SCALE` measured on one set of runs (and pair table)."""
    out: dict[str, float] = {}
    for opt in ("sgd", "adam"):
        sub = runs[runs["optimizer"] == opt]
        out[f"{NAMES[opt]} lambda_max"] = float(np.nanmean(sub["sharpness"].astype(float)))
        out[f"{NAMES[opt]} train loss"] = float(sub["final_train_loss"].astype(float).mean())
        out[f"{NAMES[opt]} val loss"] = float(sub["final_val_loss"].astype(float).mean())
        gains = sub["max_gains"].dropna() if "max_gains" in sub else []
        out[f"{NAMES[opt]} gain imbalance"] = (
            float(np.mean([gain_imbalance(g) for g in gains])) if len(gains) else math.nan
        )
    out["Adam / SGD lambda_max"] = out["Adam lambda_max"] / out["SGD lambda_max"]
    share = math.nan
    if pairs is not None and len(pairs):
        lam = pairs[["lambda_max SGD", "lambda_max Adam"]].to_numpy(dtype=float)
        curv = pairs[["line curvature at SGD", "line curvature at Adam"]].to_numpy(dtype=float)
        flat = np.argmin(lam, axis=1)  # whichever member is flatter, SGD's or Adam's
        rows = np.arange(len(lam))
        bad, ordered = deception_count(
            lam[rows, flat], lam[rows, 1 - flat], curv[rows, flat], curv[rows, 1 - flat]
        )
        share = bad / ordered if ordered else math.nan
    out["deceptive pairs (share)"] = share
    return {k: out[k] for k in PAPER_SCALE}


def scale_comparison(runs: pd.DataFrame, analysis: FlatSharpAnalysis, full: Any) -> pd.DataFrame:
    """Quick mode (live), full mode (committed, :mod:`flatlib.records`) and the paper.

    One row per quantity of :data:`PAPER_SCALE` (method means of Table S1, the Adam/SGD
    sharpness ratio, the mean :func:`gain_imbalance` of each method (Fig. 6), the share of
    Fig. 7 pairs in which the segment makes the flatter member (by ``lambda_max``, whichever
    method found it) look the sharper one). ``full`` is a :class:`flatlib.records.FullResults`
    (:func:`flatlib.records.load`) or ``None``; the ``full`` column is NaN when no full-mode
    result is committed.
    """
    check_runs(runs)
    if not isinstance(analysis, FlatSharpAnalysis):
        raise TypeError(f"analysis must come from analyse(), got {type(analysis).__name__}")
    # a FullResults of flatlib.records (a layer above this one), recognised by its tables
    if full is not None and not isinstance(getattr(full, "tables", None), Mapping):
        raise TypeError(f"full must be a FullResults or None, got {type(full).__name__}")
    table = pd.DataFrame({"quick": _scale_column(runs, analysis.pair_table())})
    if full is not None:
        table["full"] = pd.Series(_scale_column(full.tables["runs"], full.tables.get("pairs")))
    else:
        table["full"] = math.nan
    table["paper"] = pd.Series(PAPER_SCALE)
    table.index.name = "quantity"
    return table
