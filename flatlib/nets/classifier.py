"""Training small classifiers with gradient descent and SGD, as Sagun et al. (2017) do.

Sagun et al. study the Hessian of the softmax cross-entropy loss of fully connected
classifiers trained with plain full-batch gradient descent (GD) or with mini-batch SGD at a
constant learning rate, no momentum (Secs. 3-4). :func:`train_classifier` does exactly that
on a fixed training set and records what their figures need: the full training loss and
accuracy along the way (and on a validation set when given), and copies of the parameter
vector at chosen steps, whose Hessians the chapters then compute with
:mod:`flatlib.curvature.hessian`.

Batches
-------
``batch_size=None`` (or ``>= n``) is GD: every step uses the whole training set. Otherwise
each epoch draws a fresh permutation from a ``torch.Generator`` seeded with ``seed`` and
takes consecutive batches of exactly ``batch_size`` samples (a last, smaller batch is
dropped), so the mean of the stochastic gradient is the full gradient.

Outcome
-------
:func:`train_classifier` runs on flatlib's one training loop
(:func:`flatlib.nets.training.run_steps`) and ends in one of its
:data:`~flatlib.nets.training.STATUSES`. It has no stopping rule of its own, so a run that
takes all its steps ends ``"not converged"`` (it used its step budget; the cached runs of
older versions called this ``"finished"``), and a run is ``"diverged"`` as soon as a
mini-batch loss (before its update) or a recorded training loss is NaN/inf or exceeds
``blowup`` times the initial training loss (:func:`flatlib.nets.training.diverged`,
default :data:`flatlib.nets.training.BLOWUP`); training then stops. Divergence is never
raised as an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from flatlib._validation import as_float, as_int
from flatlib.curvature.hessian import get_vector, trainable_parameters
from flatlib.nets.training import BLOWUP, Stop, divergence, run_steps

__all__ = ["ClassifierRun", "accuracy", "cross_entropy", "train_classifier"]


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy averaged over the samples (``torch.nn.functional.cross_entropy``).

    This is the loss whose Hessian Sagun et al. study (Sec. 2: a convex loss of the model's
    outputs); pass it as ``loss_fn`` to :mod:`flatlib.curvature.hessian`.
    """
    return F.cross_entropy(logits, labels)


def accuracy(model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of samples whose largest logit is the true class."""
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == labels).double().mean())


@dataclass
class ClassifierRun:
    """What :func:`train_classifier` records.

    ``train_loss[i]``, ``train_accuracy[i]`` (and ``val_loss[i]``, ``val_accuracy[i]`` when a
    validation set was given, else empty arrays) are measured on the whole set after
    ``record_steps[i]`` updates (step 0 is the initial point). ``snapshots[j]`` is the flat
    parameter vector after ``snapshot_steps[j]`` updates (float64 NumPy). ``status`` is
    ``"not converged"`` (all steps taken) or ``"diverged"`` (see the module docstring),
    ``steps_done`` the number of updates taken (fewer than asked when the run diverged) and
    ``message`` says where it diverged.
    """

    record_steps: np.ndarray
    train_loss: np.ndarray
    train_accuracy: np.ndarray
    val_loss: np.ndarray
    val_accuracy: np.ndarray
    snapshot_steps: np.ndarray
    snapshots: np.ndarray
    status: str
    steps_done: int
    message: str = ""


def _batches(n: int, batch_size: int, steps: int, seed: int) -> list[torch.Tensor | None]:
    """Index sets of the ``steps`` mini-batches (``None`` means the full set: GD)."""
    if batch_size >= n:
        return [None] * steps
    gen = torch.Generator().manual_seed(seed)
    per_epoch = n // batch_size
    out: list[torch.Tensor | None] = []
    while len(out) < steps:
        perm = torch.randperm(n, generator=gen)
        out += [perm[i * batch_size : (i + 1) * batch_size] for i in range(per_epoch)]
    return out[:steps]


def _check_inputs(x: Any, labels: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(x, torch.Tensor) or x.ndim != 2:
        raise TypeError(f"x_{name} must be a 2-D torch.Tensor (samples x features)")
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.long or labels.ndim != 1:
        raise TypeError(f"labels_{name} must be a 1-D torch.long tensor of class indices")
    if labels.shape[0] != x.shape[0]:
        raise ValueError(
            f"x_{name} has {x.shape[0]} samples but labels_{name} has {labels.shape[0]}"
        )
    return x, labels


def train_classifier(
    model: nn.Module,
    x_train: torch.Tensor,
    labels_train: torch.Tensor,
    lr: float,
    steps: int,
    batch_size: int | None = None,
    seed: int = 0,
    record_every: int | None = None,
    snapshot_steps: Sequence[int] = (),
    x_val: torch.Tensor | None = None,
    labels_val: torch.Tensor | None = None,
    blowup: float = BLOWUP,
) -> ClassifierRun:
    """Train ``model`` in place with GD or SGD on the softmax cross-entropy (Sagun et al.).

    Parameters
    ----------
    model:
        A classifier returning logits; it is updated in place, so a second call continues
        from where the first stopped (the two-phase experiment of Sagun et al., Sec. 4.1).
    x_train, labels_train:
        Training inputs ``(n, d)`` and labels ``(n,)`` (``torch.long``).
    lr:
        Constant learning rate of the update ``w <- w - lr * grad`` (no momentum).
    steps:
        Number of updates.
    batch_size:
        ``None`` for full-batch GD, else the mini-batch size (see the module docstring).
    seed:
        Seed of the mini-batch order.
    record_every:
        Record the full training (and validation) loss every this many steps (default:
        about 50 records per run).
    snapshot_steps:
        Steps (0 to ``steps``) after which to keep a copy of the parameter vector.
    x_val, labels_val:
        Optional validation set, recorded alongside the training loss.
    blowup:
        Divergence threshold relative to the initial training loss (the rule of
        :func:`flatlib.nets.training.diverged`).
    """
    x_train, labels_train = _check_inputs(x_train, labels_train, "train")
    if (x_val is None) != (labels_val is None):
        raise ValueError("give both x_val and labels_val, or neither")
    if x_val is not None:
        x_val, labels_val = _check_inputs(x_val, labels_val, "val")
    lr = as_float(lr, "lr", positive=True)
    steps = as_int(steps, "steps", minimum=0)
    n = x_train.shape[0]
    batch = n if batch_size is None else as_int(batch_size, "batch_size", minimum=1)
    seed = as_int(seed, "seed", minimum=0)
    every = max(1, steps // 50) if record_every is None else as_int(record_every, "record_every", 1)
    blowup = as_float(blowup, "blowup", positive=True)
    wanted = sorted({as_int(s, "snapshot_steps", minimum=0) for s in snapshot_steps})
    if wanted and wanted[-1] > steps:
        raise ValueError(f"snapshot_steps must lie in [0, steps={steps}], got {wanted[-1]}")

    params = trainable_parameters(model)
    rec_steps: list[int] = []
    rec: dict[str, list[float]] = {"tl": [], "ta": [], "vl": [], "va": []}
    snaps: list[np.ndarray] = []
    snap_steps: list[int] = []

    def record(step: int) -> float:
        with torch.no_grad():
            loss = float(cross_entropy(model(x_train), labels_train))
        rec_steps.append(step)
        rec["tl"].append(loss)
        rec["ta"].append(accuracy(model, x_train, labels_train))
        if x_val is not None:
            with torch.no_grad():
                rec["vl"].append(float(cross_entropy(model(x_val), labels_val)))
            rec["va"].append(accuracy(model, x_val, labels_val))
        return loss

    def keep(step: int) -> None:
        if step in wanted:
            snap_steps.append(step)
            snaps.append(get_vector(model).detach().to("cpu", torch.float64).numpy())

    initial = record(0)
    keep(0)
    batches = _batches(n, batch, steps, seed)

    def batch_loss(step: int) -> torch.Tensor:
        idx = batches[step - 1]
        xb, yb = (x_train, labels_train) if idx is None else (x_train[idx], labels_train[idx])
        return cross_entropy(model(xb), yb)

    def update(step: int, loss: torch.Tensor) -> None:
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p.sub_(lr * g)

    def after_step(step: int, value: float) -> Stop | None:
        keep(step)
        if step % every == 0 or step == steps:
            return divergence(record(step), initial, blowup, f"training loss at step {step}")
        return None

    outcome = run_steps(batch_loss, update, steps, initial, blowup=blowup, after_step=after_step)

    def arr(values: list[float]) -> np.ndarray:
        return np.asarray(values, dtype=np.float64)

    n_params = sum(p.numel() for p in params)
    return ClassifierRun(
        record_steps=np.asarray(rec_steps, dtype=np.int64),
        train_loss=arr(rec["tl"]),
        train_accuracy=arr(rec["ta"]),
        val_loss=arr(rec["vl"]),
        val_accuracy=arr(rec["va"]),
        snapshot_steps=np.asarray(snap_steps, dtype=np.int64),
        snapshots=np.stack(snaps) if snaps else np.empty((0, n_params)),
        status=outcome.status,
        steps_done=outcome.steps,
        message=outcome.message,
    )
