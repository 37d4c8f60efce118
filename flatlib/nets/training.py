"""Training the denoisers of Sec. 6 and measuring what the paper measures on them.

Mulayoff & Michaeli (ICML 2020, Sec. 6, Figs. 4-7, App. IX.2) train fully connected ReLU
networks to denoise MNIST digits with plain SGD (no momentum) or Adam
(``betas = (0.8, 0.99)``), batch size 100, and then measure

* the sharpness ``lambda_max(H)`` of the training loss at the minimum reached
  (Figs. 4, 5; :func:`sharpness`), and
* the intermediate gains ``||h_k(x)|| / ||x||`` of the trained network, maximised over the
  input from 100 random starts (Fig. 6; :func:`intermediate_gains`).

Loss convention
---------------
The loss is PyTorch's ``nn.MSELoss()`` (``reduction="mean"``): the mean over samples *and*
over the ``d_y`` output pixels. The paper's eq. (2) averages over samples but *sums* over
output coordinates, so ``MSELoss = l_eq2 / d_y`` and every Hessian (hence every sharpness)
reported here is ``1/d_y`` times that of eq. (2) (``d_y = 784`` at full size, 196 in quick
mode). The stability threshold ``lambda_max < 2 / eta`` holds for whichever loss SGD is run
on, so step sizes and sharpness values here are consistent with each other (the paper's step
sizes, e.g. ``eta = 1/2`` in App. IX.2 with ``lambda_max = 1.76``, fit this convention).

Outcome of a run
----------------
Every training loop of flatlib (:func:`train` for these denoisers,
:func:`flatlib.nets.classifier.train_classifier`,
:func:`flatlib.experiments.edge_of_stability.gd_with_sharpness`) runs on one core,
:func:`run_steps`, never raises on numerical trouble, and ends in one of :data:`STATUSES`:

``"diverged"``
    a loss was NaN/inf or above ``blowup`` times the initial loss (:func:`diverged`;
    default :data:`BLOWUP` = 100). The rule is applied to every step's loss *before* its
    update, and to every full training loss the trainer measures; training stops at once.
``"converged"``
    the run met its stopping rule: a loss target or a gradient tolerance, checked along the
    way (training then stops), or, for :func:`train` without a target, the settle rule below.
``"not converged"``
    it used its whole step budget without meeting a rule (a fixed-length run that does not
    diverge ends so).

For :func:`train` the stopping rule is the book's Sec. 6 protocol when a ``target_loss`` is
given (the paper counts a run as non-converged when its final training loss stays above a
threshold): the full training loss (on the stored noisy draw), checked every ``check_every``
steps, reaches ``target_loss`` within the epoch cap ``epochs``. Training stops at that
check, so runs stopped by the same target end at matched training losses (App. IX.2).
Without a target, ``"converged"`` means instead that the mean minibatch loss of the last
logging window is within ``rtol`` (default 10%) of the best window mean *and* the final
full training loss is below the trivial predictor's loss (the MSE of outputting the mean
clean training image whatever the input).

Runs cached before this vocabulary existed said ``"finished"`` (classifiers) or
``"unsettled"`` (edge of stability) where it now says ``"not converged"``;
:func:`flatlib.experiments.sweep.run_grid` maps those labels when it loads a stored run.

Noise
-----
``noise="fresh"`` (the paper's protocol in the book, Sec. 6) draws new inputs
``y + noise_std * N(0, I)`` for every minibatch from the run's seeded generator, so no noise
draw is ever seen twice and the digits cannot be memorised together with their noise (the
paper's training and validation losses agree to 2 %). ``noise="fixed"`` (an ablation) trains
on the one seeded noisy draw stored in the data. Losses, targets and sharpness are always
measured on the stored draw.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from flatlib._validation import as_float, as_int

__all__ = [
    "BLOWUP",
    "LOSS_FLOOR",
    "RTOL",
    "STATUSES",
    "GainsResult",
    "LoopOutcome",
    "Stop",
    "TrainResult",
    "dataset_loss",
    "diverged",
    "divergence",
    "intermediate_gains",
    "layer_blocks",
    "run_steps",
    "sharpness",
    "train",
    "trivial_loss",
]

STATUSES: tuple[str, ...] = ("converged", "not converged", "diverged")
"""The outcomes of every training run (see "Outcome of a run" in the module docstring)."""
BLOWUP = 100.0
"""The divergence rule's default factor; a run whose loss exceeds ``BLOWUP`` times its initial
loss has diverged."""
LOSS_FLOOR = 1e-12
"""An initial loss below this is replaced by it in the divergence rule (a run that starts at
zero loss would otherwise diverge on any positive loss)."""
RTOL = 0.1
"""Converged runs end within ``RTOL`` (relative) of their best logged training loss."""
OPTIMIZERS: tuple[str, ...] = ("sgd", "adam")
NOISES: tuple[str, ...] = ("fixed", "fresh")
EVAL_CHUNK = 10_000


@dataclass
class TrainResult:
    """The outcome of :func:`train` (see the module docstring for the status rule).

    ``train_loss_curve[i]`` is the mean minibatch MSE over the ``i``-th window of
    ``log_every`` SGD steps, ending at step ``curve_steps[i]`` (the training-loss curve of
    Fig. 5(b)). ``check_loss[i]`` is the full training MSE (stored draw) at step
    ``check_steps[i]``, measured when a ``target_loss`` was given. ``final_train_loss``/
    ``final_val_loss`` are full-dataset MSEs after training (NaN when the run diverged).
    ``steps`` counts optimiser steps taken (fewer than planned when a divergence or the
    target stopped training), ``seconds`` the wall time.
    """

    status: str
    train_loss_curve: np.ndarray
    final_train_loss: float
    final_val_loss: float
    steps: int
    seconds: float
    curve_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    check_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    check_loss: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float64))
    target_loss: float = math.nan
    initial_loss: float = math.nan
    trivial_loss: float = math.nan
    message: str = ""

    @property
    def converged(self) -> bool:
        return self.status == "converged"

    def scalars(self) -> dict[str, Any]:
        """The scalar fields as a JSON-friendly dict (for
        :func:`flatlib.experiments.sweep.run_grid`)."""
        return {
            "status": self.status,
            "final_train_loss": float(self.final_train_loss),
            "final_val_loss": float(self.final_val_loss),
            "steps": int(self.steps),
            "train_seconds": float(self.seconds),
            "initial_loss": float(self.initial_loss),
            "trivial_loss": float(self.trivial_loss),
            "target_loss": float(self.target_loss),
            "message": self.message,
        }


# ------------------------------------------------------------------------------ helpers


def _model_dtype_device(model: nn.Module) -> tuple[torch.dtype, torch.device]:
    p = next(iter(model.parameters()), None)
    if p is None:
        raise ValueError("model has no parameters")
    return p.dtype, p.device


def _split(
    data: Any,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``(x_train, y_train, x_val, y_val)`` from a :class:`~flatlib.nets.data.DenoisingData`."""
    try:
        xt, yt = data.x_train, data.y_train
    except AttributeError:
        raise TypeError(
            "data must have x_train/y_train (and x_val/y_val) tensors, e.g. "
            f"flatlib.nets.data.load_digits_denoising(...); got {type(data).__name__}"
        ) from None
    xv, yv = getattr(data, "x_val", None), getattr(data, "y_val", None)
    for name, t in (("x_train", xt), ("y_train", yt), ("x_val", xv), ("y_val", yv)):
        if t is not None and not isinstance(t, torch.Tensor):
            raise TypeError(f"data.{name} must be a torch.Tensor, got {type(t).__name__}")
    if xt.shape[0] != yt.shape[0] or xt.shape[0] == 0:
        raise ValueError(
            f"data.x_train {tuple(xt.shape)} and y_train {tuple(yt.shape)} must "
            "hold the same positive number of samples"
        )
    return xt, yt, xv, yv


@torch.no_grad()
def dataset_loss(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = EVAL_CHUNK
) -> float:
    """Full-dataset ``nn.MSELoss()`` of ``model`` on ``(x, y)``, evaluated in chunks."""
    n = x.shape[0]
    if n == 0:
        return math.nan
    total = 0.0
    for i in range(0, n, chunk):
        out = model(x[i : i + chunk])
        total += float(nn.functional.mse_loss(out, y[i : i + chunk], reduction="sum"))
    return total / (n * y[0].numel())


def trivial_loss(y: torch.Tensor) -> float:
    """MSE of the best input-independent predictor: the mean target (per-pixel variance)."""
    y = y.reshape(y.shape[0], -1).double()
    return float(((y - y.mean(0, keepdim=True)) ** 2).mean())


# ------------------------------------------------------------------------- the loop core


def diverged(value: float, initial: float, blowup: float = BLOWUP) -> bool:
    """The one divergence rule: ``value`` is NaN/inf or above ``blowup * max(initial, tiny)``.

    ``initial`` is the run's initial loss and ``tiny`` is :data:`LOSS_FLOOR`. Every trainer
    applies it to each step's loss before the update (:func:`run_steps`) and to the full
    training losses it measures along the way.
    """
    return not math.isfinite(value) or value > blowup * max(initial, LOSS_FLOOR)


@dataclass(frozen=True)
class Stop:
    """An ``after_step`` hook's request to end a :func:`run_steps` run early.

    ``status`` is ``"converged"`` (the caller's stopping rule was met) or ``"diverged"``;
    ``message`` says why (it becomes the run's message).
    """

    status: str
    message: str = ""

    def __post_init__(self) -> None:
        if self.status not in ("converged", "diverged"):
            raise ValueError(f"Stop.status must be 'converged' or 'diverged', got {self.status!r}")


def divergence(value: float, initial: float, blowup: float, what: str) -> Stop | None:
    """``Stop("diverged", ...)`` if :func:`diverged` holds for ``value``, else ``None``.

    ``what`` names the loss in the message, e.g. ``"training loss at step 40"``.
    """
    if not diverged(value, initial, blowup):
        return None
    limit = blowup * max(initial, LOSS_FLOOR)
    return Stop("diverged", f"{what} = {value:.3g} (limit {limit:.3g})")


@dataclass(frozen=True)
class LoopOutcome:
    """How :func:`run_steps` ended: a status of :data:`STATUSES`, the number of iterations
    completed (each one's update applied) and a message (empty when nothing stopped the
    run)."""

    status: str
    steps: int
    message: str = ""


def run_steps(
    batch_loss: Callable[[int], torch.Tensor],
    update: Callable[[int, torch.Tensor], object],
    steps: int,
    initial: float | None,
    *,
    blowup: float = BLOWUP,
    after_step: Callable[[int, float], Stop | None] | None = None,
) -> LoopOutcome:
    """The training loop of every flatlib trainer: loss, divergence rule, update, hook.

    For ``k = 1, ..., steps``:

    1. ``loss = batch_loss(k)``: the loss the ``k``-th update descends (a minibatch loss for
       SGD, the full loss for GD), a scalar tensor with its autograd graph. The caller draws
       the batch (and any noise) here, so its random draws keep their order.
    2. The divergence rule :func:`diverged` on ``value = float(loss)``: if it holds, the run
       ends ``"diverged"`` *before* the ``k``-th update, after ``k - 1`` iterations.
    3. ``update(k, loss)``: the caller's own update (``loss.backward()`` and an optimiser
       step, or ``torch.autograd.grad`` and an in-place step); its return value is ignored.
    4. ``after_step(k, value)``, if given: the caller's bookkeeping and checks (logging,
       checkpoints, a full-loss measurement, a loss target or gradient tolerance). It returns
       ``None`` to go on or a :class:`Stop` that ends the run ``"converged"`` or
       ``"diverged"`` after ``k`` iterations (use :func:`divergence` for the full losses it
       measures, so they obey the same rule).

    A run that completes all ``steps`` iterations ends ``"not converged"``: it used its whole
    budget without meeting a stopping rule (a caller may still apply a final rule of its own,
    as :func:`train` does without a target).

    Parameters
    ----------
    batch_loss, update, after_step:
        The caller's step, as above.
    steps:
        The step budget (``>= 0``).
    initial:
        The initial loss of the divergence rule; ``None`` takes the loss of step 1 (full-batch
        GD, whose first loss is the loss at the start). A non-finite initial loss ends the run
        ``"diverged"`` before any step.
    blowup:
        The divergence factor of :func:`diverged` (default :data:`BLOWUP`).
    """
    if not callable(batch_loss) or not callable(update):
        raise TypeError("batch_loss and update must be callable")
    if after_step is not None and not callable(after_step):
        raise TypeError(f"after_step must be callable, got {type(after_step).__name__}")
    steps = as_int(steps, "steps", minimum=0)
    blowup = as_float(blowup, "blowup", positive=True)
    if initial is not None and not math.isfinite(initial):
        return LoopOutcome("diverged", 0, f"initial loss {initial} is not finite")
    for k in range(1, steps + 1):
        loss = batch_loss(k)
        value = float(loss.detach())
        if initial is None:
            initial = value
        stop = divergence(value, initial, blowup, f"loss of step {k}")
        if stop is not None:
            return LoopOutcome("diverged", k - 1, stop.message)
        update(k, loss)
        if after_step is not None:
            stop = after_step(k, value)
            if stop is not None:
                return LoopOutcome(stop.status, k, stop.message)
    return LoopOutcome("not converged", steps, "")


# ------------------------------------------------------------------------------ training


def train(
    model: nn.Module,
    data: Any,
    optimizer: str = "sgd",
    lr: float = 0.1,
    batch_size: int = 100,
    epochs: int = 10,
    seed: int = 0,
    betas: tuple[float, float] = (0.8, 0.99),
    loss: str = "mse",
    log_every: int | None = None,
    blowup: float = BLOWUP,
    rtol: float = RTOL,
    device: str | torch.device | None = None,
    noise: str = "fixed",
    checkpoint: Callable[[nn.Module, int], None] | None = None,
    checkpoint_every: int | None = None,
    target_loss: float | None = None,
    check_every: int | None = None,
    check_margin: float = 0.0,
) -> TrainResult:
    """Train ``model`` in place on ``data`` with SGD or Adam (Sec. 6, App. IX.2).

    Parameters
    ----------
    model:
        Any ``torch.nn.Module`` (e.g. :func:`flatlib.nets.models.mlp`); it is moved to ``device``
        and trained in place, in train mode; the data are cast to its dtype.
    data:
        A :class:`flatlib.nets.data.DenoisingData` (or anything with ``x_train``/``y_train`` and
        optionally ``x_val``/``y_val`` tensors).
    optimizer:
        ``"sgd"``: plain SGD, no momentum, no weight decay (the paper's Method 1, Figs. 4-6).
        ``"adam"``: Adam with ``betas`` (the paper's Method 2 uses ``(0.8, 0.99)``).
    lr:
        Step size ``eta``.
    batch_size:
        Minibatch size (paper: 100). Every epoch visits the training set in a fresh random
        order (``torch.Generator`` seeded with ``seed``); the last batch may be smaller.
    epochs:
        Number of passes over the training set (the cap, when ``target_loss`` is given).
    seed:
        Seeds the shuffling; with the model's own seed this makes CPU runs bit-reproducible.
    loss:
        Only ``"mse"``: ``nn.MSELoss()``, the mean over samples and pixels (``1/d_y`` times the
        loss of eq. 2, see the module docstring).
    log_every:
        Steps per point of ``train_loss_curve`` (default: one epoch).
    blowup, rtol:
        The divergence and convergence thresholds of the module docstring.
    device:
        Default :func:`flatlib.config.device`.
    noise:
        ``"fresh"`` (new noise for every minibatch; ``data`` must carry ``noise_std``) or
        ``"fixed"`` (the stored draw), see the module docstring.
    checkpoint, checkpoint_every:
        If given, ``checkpoint(model, step)`` is called after every ``checkpoint_every``-th
        step (e.g. to measure sharpness along training, chapter 10); it must leave the
        weights unchanged.
    target_loss, check_every:
        With a ``target_loss``, the full training loss on the stored draw is measured every
        ``check_every`` steps (default: once per epoch) and training stops as soon as it is
        at most ``target_loss``: the status rule of the module docstring.
    check_margin:
        With ``check_margin = c > 0`` a check is skipped while the mean minibatch loss of the
        last ``check_every`` steps is above ``(1 + c) * target_loss``. With fresh noise that
        mean estimates the same expected loss, so far from the target no full pass over the
        data is spent; ``0`` (default) checks every ``check_every`` steps.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    lr = as_float(lr, "lr", positive=True)
    batch_size = as_int(batch_size, "batch_size", minimum=1)
    epochs = as_int(epochs, "epochs", minimum=1)
    seed = as_int(seed, "seed", minimum=0)
    if loss != "mse":
        raise ValueError(f"loss must be 'mse' (the quadratic loss of eq. 2), got {loss!r}")
    if not isinstance(betas, Sequence) or len(betas) != 2:
        raise TypeError(f"betas must be a pair of floats, got {betas!r}")
    b1, b2 = (as_float(b, f"betas[{i}]") for i, b in enumerate(betas))
    if not (0 <= b1 < 1 and 0 <= b2 < 1):
        raise ValueError(f"betas must lie in [0, 1), got {betas!r}")
    blowup = as_float(blowup, "blowup", positive=True)
    rtol = as_float(rtol, "rtol", positive=True)
    if noise not in NOISES:
        raise ValueError(f"noise must be one of {NOISES}, got {noise!r}")
    noise_std = math.nan
    if noise == "fresh":
        noise_std = as_float(getattr(data, "noise_std", None), "data.noise_std")
    if (checkpoint is None) != (checkpoint_every is None):
        raise ValueError("checkpoint and checkpoint_every must be given together")
    if checkpoint is not None and not callable(checkpoint):
        raise TypeError(f"checkpoint must be callable, got {type(checkpoint).__name__}")
    if checkpoint_every is not None:
        checkpoint_every = as_int(checkpoint_every, "checkpoint_every", minimum=1)
    if target_loss is not None:
        target_loss = as_float(target_loss, "target_loss", positive=True)
    check_margin = as_float(check_margin, "check_margin")
    if check_margin < 0:
        raise ValueError(f"check_margin must be >= 0, got {check_margin}")
    xt, yt, xv, yv = _split(data)
    n = xt.shape[0]
    steps_per_epoch = math.ceil(n / batch_size)
    log_every = steps_per_epoch if log_every is None else as_int(log_every, "log_every", 1)
    check_every = steps_per_epoch if check_every is None else as_int(check_every, "check_every", 1)

    if device is None:
        from flatlib.config import device as default_device

        device = default_device()
    model.to(device)
    dtype, dev = _model_dtype_device(model)
    xt, yt = xt.to(dev, dtype), yt.to(dev, dtype)
    if xv is not None and yv is not None and xv.shape[0] > 0:
        xv, yv = xv.to(dev, dtype), yv.to(dev, dtype)
    else:
        xv = yv = None

    if optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.0)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(b1, b2))
    loss_fn = nn.MSELoss()
    gen = torch.Generator().manual_seed(seed)

    start = time.perf_counter()
    was_training = model.training
    model.train()
    initial = dataset_loss(model, xt, yt)
    trivial = trivial_loss(yt)
    curve: list[float] = []
    curve_steps: list[int] = []
    window_sum, window_len, since_check = 0.0, 0, 0.0
    checks: list[tuple[int, float]] = []
    order = torch.empty(0, dtype=torch.long)

    def batch_loss(k: int) -> torch.Tensor:
        # every epoch visits the data in a fresh order; fresh noise is drawn per minibatch
        nonlocal order
        i = (k - 1) % steps_per_epoch
        if i == 0:
            order = torch.randperm(n, generator=gen).to(dev)
        idx = order[i * batch_size : (i + 1) * batch_size]
        targets = yt[idx]
        if noise == "fresh":
            draw = torch.randn(targets.shape, generator=gen, dtype=torch.float64)
            inputs = targets + noise_std * draw.to(dev, dtype)
        else:
            inputs = xt[idx]
        opt.zero_grad(set_to_none=True)
        return loss_fn(model(inputs), targets)

    def update(k: int, batch: torch.Tensor) -> None:
        batch.backward()
        opt.step()

    def after_step(k: int, value: float) -> Stop | None:
        nonlocal window_sum, window_len, since_check
        if checkpoint is not None and k % checkpoint_every == 0:
            checkpoint(model, k)
        window_sum += value
        window_len += 1
        since_check += value
        if window_len == log_every:
            curve.append(window_sum / window_len)
            curve_steps.append(k)
            window_sum, window_len = 0.0, 0
        if target_loss is None or k % check_every != 0:
            return None
        recent, since_check = since_check / check_every, 0.0
        if check_margin > 0 and recent > (1 + check_margin) * target_loss:
            return None
        current = dataset_loss(model, xt, yt)
        checks.append((k, current))
        stop = divergence(current, initial, blowup, f"training loss at step {k}")
        return Stop("converged") if stop is None and current <= target_loss else stop

    outcome = run_steps(
        batch_loss, update, epochs * steps_per_epoch, initial, blowup=blowup, after_step=after_step
    )
    status, step, message = outcome.status, outcome.steps, outcome.message
    if window_len and status != "diverged":
        curve.append(window_sum / window_len)
        curve_steps.append(step)

    model.eval()
    final_train = final_val = math.nan
    if status != "diverged":
        final_train = dataset_loss(model, xt, yt)
        stop = divergence(final_train, initial, blowup, "final training loss")
        if stop is not None:
            status, message, final_train = "diverged", stop.message, math.nan
        elif xv is not None:
            final_val = dataset_loss(model, xv, yv)
    if status == "not converged" and target_loss is not None:
        message = (
            f"training loss {final_train:.4g} > target {target_loss:.4g} after "
            f"{step} steps ({epochs} epochs)"
        )
    elif status == "not converged":  # no target: the settle rule of the module docstring
        best, last = min(curve), curve[-1]
        settled = last <= (1.0 + rtol) * best
        useful = final_train < trivial
        if settled and useful:
            status = "converged"
        else:
            reasons = []
            if not settled:
                reasons.append(f"last logged loss {last:.4g} > (1 + {rtol:g}) x best {best:.4g}")
            if not useful:
                reasons.append(f"training loss {final_train:.4g} >= trivial loss {trivial:.4g}")
            message = "; ".join(reasons)
    model.train(was_training)
    return TrainResult(
        status=status,
        train_loss_curve=np.asarray(curve, dtype=np.float64),
        final_train_loss=float(final_train),
        final_val_loss=float(final_val),
        steps=step,
        seconds=time.perf_counter() - start,
        curve_steps=np.asarray(curve_steps, dtype=np.int64),
        check_steps=np.asarray([c[0] for c in checks], dtype=np.int64),
        check_loss=np.asarray([c[1] for c in checks], dtype=np.float64),
        target_loss=math.nan if target_loss is None else target_loss,
        initial_loss=float(initial),
        trivial_loss=float(trivial),
        message=message,
    )


# --------------------------------------------------------------------------- measuring


def sharpness(
    model: nn.Module,
    data: Any,
    method: str = "lanczos",
    tol: float | None = None,
    max_iter: int | None = None,
    chunk_size: int | None = None,
    seed: int = 0,
    return_result: bool = False,
) -> Any:
    """``lambda_max`` of the Hessian of the training MSE at the model's weights (Figs. 4, 5).

    Uses :func:`flatlib.curvature.hessian.top_eigenpairs` on ``data.x_train``/``data.y_train`` with
    ``nn.MSELoss()`` (so the value is ``1/d_y`` times the sharpness of eq. 2's loss, see the
    module docstring), the model in eval mode. ``method="power"`` is the paper's power method,
    ``"lanczos"`` (default) reaches the same eigenvalue in far fewer Hessian-vector products.

    ``tol`` defaults to ``1e-6`` in float64 and ``1e-4`` in lower precision; ``chunk_size``
    defaults to all samples at once up to 5,000, else chunks of 5,000. Returns the float, or
    the :class:`flatlib.curvature.hessian.EigenResult` when ``return_result`` is true.
    """
    from flatlib.curvature.hessian import top_eigenpairs

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    xt, yt, _, _ = _split(data)
    dtype, dev = _model_dtype_device(model)
    if tol is None:
        tol = 1e-6 if dtype == torch.float64 else 1e-4
    if chunk_size is None and xt.shape[0] > 5000:
        chunk_size = 5000
    was_training = model.training
    model.eval()
    try:
        res = top_eigenpairs(
            model,
            nn.MSELoss(),
            xt.to(dev, dtype),
            yt.to(dev, dtype),
            k=1,
            method=method,
            tol=tol,
            max_iter=max_iter,
            chunk_size=chunk_size,
            seed=seed,
        )
    finally:
        model.train(was_training)
    return res if return_result else res.sharpness


@dataclass
class GainsResult:
    """Intermediate gains of a network (Fig. 6; the nonlinear analogue of Fig. 3).

    ``max_gains[k-1]``: the largest ``||h_k(x)|| / ||x||`` found for layer ``k`` over all
    inputs ``x`` of norm ``input_norm`` (blue dots). ``top_signal_gains[k-1]``:
    ``||h_k(x*)|| / ||x*||`` for the input ``x*`` amplified most end-to-end (red circles);
    its last entry equals ``max_gains[-1]``. ``top_input`` is ``x*``.
    """

    max_gains: np.ndarray
    top_signal_gains: np.ndarray
    top_input: np.ndarray
    input_norm: float
    n_starts: int
    steps: int

    @property
    def depth(self) -> int:
        return int(self.max_gains.shape[0])


def layer_blocks(model: nn.Module) -> list[nn.Sequential]:
    """Split a ``Sequential`` MLP into layers: each ``nn.Linear`` with the modules after it.

    Layer ``k`` maps ``h_{k-1}`` to ``h_k = act(W_k h_{k-1} + b_k)`` (no activation after
    the last linear layer), so ``h_k`` is the representation *after* the activation.
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be a torch.nn.Sequential MLP, got {type(model).__name__}")
    blocks: list[list[nn.Module]] = []
    for module in model:
        if isinstance(module, nn.Linear):
            blocks.append([module])
        elif not blocks:
            raise ValueError(f"model must start with an nn.Linear layer, got {module}")
        else:
            blocks[-1].append(module)
    if not blocks:
        raise ValueError("model holds no nn.Linear layer")
    return [nn.Sequential(*b) for b in blocks]


def _maximise_gain(
    blocks: list[nn.Sequential], k: int, z: torch.Tensor, radius: float, steps: int, lr: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient ascent of ``log ||h_k(r z/||z||)||`` over a batch of starts ``z``."""
    z = z.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        x = radius * z / z.norm(dim=1, keepdim=True)
        h = x
        for block in blocks[:k]:
            h = block(h)
        objective = torch.log(h.pow(2).sum(dim=1) + 1e-300).sum()
        opt.zero_grad(set_to_none=True)
        (-objective).backward()
        opt.step()
    with torch.no_grad():
        x = radius * z / z.norm(dim=1, keepdim=True)
        h = x
        for block in blocks[:k]:
            h = block(h)
        return x, h.norm(dim=1) / radius


def intermediate_gains(
    model: nn.Module,
    x_dim: int,
    n_starts: int = 100,
    steps: int = 200,
    seed: int = 0,
    lr: float = 0.05,
    input_norm: float = 1.0,
) -> GainsResult:
    """Maximal gains ``||h_k(x)|| / ||x||`` up to every layer ``k`` (Fig. 6, Sec. 6).

    As in the paper, the input is optimised to maximise the norm of the intermediate signal,
    from ``n_starts`` random starts (paper: 100), and the best run is kept: for each ``k``,
    Adam (step ``lr``) runs ``steps`` steps of gradient ascent on ``log ||h_k(x)||`` over inputs
    on the sphere ``||x|| = input_norm`` (parametrised as ``x = r z / ||z||``), all starts in one
    batch. These gains are the analogue of the top singular value of ``W_k ... W_1``
    (Fig. 3, Theorem 2(ii)). The input with the largest end-to-end gain then gives the
    per-layer gains of "the signal amplified most" (the analogue of ``v``, Theorem 2(i)).

    For bias-free ReLU (or linear) networks the gains do not depend on ``input_norm``
    (positive homogeneity); with biases they do, and a norm typical of the data is a sensible
    choice. ``h_k`` is taken after layer ``k``'s activation (see :func:`layer_blocks`).
    """
    blocks = layer_blocks(model)
    x_dim = as_int(x_dim, "x_dim", minimum=1)
    if blocks[0][0].in_features != x_dim:
        raise ValueError(f"x_dim={x_dim} but the first layer takes {blocks[0][0].in_features}")
    n_starts = as_int(n_starts, "n_starts", minimum=1)
    steps = as_int(steps, "steps", minimum=0)
    seed = as_int(seed, "seed", minimum=0)
    lr = as_float(lr, "lr", positive=True)
    radius = as_float(input_norm, "input_norm", positive=True)
    dtype, dev = _model_dtype_device(model)
    gen = torch.Generator().manual_seed(seed)
    z0 = torch.randn(n_starts, x_dim, generator=gen, dtype=torch.float64).to(dev, dtype)

    was_training = model.training
    model.eval()
    requires = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        m = len(blocks)
        max_gains = np.empty(m)
        for k in range(1, m + 1):
            x, gains = _maximise_gain(blocks, k, z0, radius, steps, lr)
            best = int(torch.argmax(gains))
            max_gains[k - 1] = float(gains[best])
            if k == m:
                top = x[best : best + 1]
        with torch.no_grad():
            top_gains = np.empty(m)
            h = top
            for k, block in enumerate(blocks):
                h = block(h)
                top_gains[k] = float(h.norm() / radius)
        # x* is an input of norm r too, so its gains are lower bounds of the maxima.
        max_gains = np.maximum(max_gains, top_gains)
    finally:
        for p, r in zip(model.parameters(), requires, strict=True):
            p.requires_grad_(r)
        model.train(was_training)
    return GainsResult(
        max_gains=max_gains,
        top_signal_gains=top_gains,
        top_input=top[0].detach().cpu().double().numpy(),
        input_norm=radius,
        n_starts=n_starts,
        steps=steps,
    )
