"""Hessian-vector products, sharpness and spectra of the training loss of any torch model.

Mulayoff & Michaeli (ICML 2020, Sec. 6 and App. IX.2) measure the sharpness
``lambda_max(H)`` of ReLU networks trained to denoise MNIST with the power method; Sagun
et al. study the whole Hessian spectrum (a bulk near zero plus a few outliers). This
module provides both for any ``torch.nn.Module``.

Loss convention
---------------
The loss is the mean over the dataset of ``loss_fn(model(x), y)`` as PyTorch defines it
(e.g. ``nn.MSELoss()`` or ``nn.CrossEntropyLoss()`` with ``reduction="mean"``). When
``chunk_size`` is given, the dataset is split into consecutive chunks of that many samples
(the last one may be smaller) and chunk ``c`` of size ``n_c`` contributes
``(n_c / n) * loss_fn(model(x_c), y_c)``, so a smaller last chunk does not bias the mean.

Binding
-------
A :class:`HessianOperator` binds model, loss, data and chunking once (as curvlinops'
operators do); :func:`full_loss`, :func:`full_gradient`, :func:`eigenpairs`,
:func:`exact_hessian`, :func:`spectrum`, :func:`cross_section` and :func:`interpolate` take
it. :func:`top_eigenpairs` is the one-call convenience on a model and its data::

    op = HessianOperator(model, nn.MSELoss(), inputs, targets, chunk_size=5000)
    full_loss(op), eigenpairs(op, k=1).sharpness

Parameter vectors
-----------------
Flat parameter vectors list the model's trainable parameters (``requires_grad=True``) in
``model.parameters()`` order, each flattened row-major (``torch.nn.utils.
parameters_to_vector``). ``N`` below is their total size.

Precision
---------
Everything runs in the parameters' dtype on the parameters' device. In float64 (the book's
default on the CPU) HVPs agree with the exact Hessian to ~1e-13 relative and eigenpairs can be
converged to ``tol`` ~1e-12. In float32 an HVP carries relative errors of ~1e-6, so the
residuals, hence the certified bounds, stop near ``1e-6 |lambda|`` and tolerances below about
1e-6 are not reachable; the default 1e-4 is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from flatlib._validation import as_float, as_int
from flatlib.curvature import lanczos

__all__ = [
    "DEFAULT_TOL",
    "EXACT_MAX_PARAMS",
    "EigenResult",
    "HessianOperator",
    "SLQDensity",
    "cross_section",
    "density",
    "exact_hessian",
    "full_gradient",
    "full_loss",
    "get_vector",
    "hvp",
    "eigenpairs",
    "interpolate",
    "set_vector",
    "spectrum",
    "top_eigenpairs",
    "trainable_parameters",
]

DEFAULT_TOL = 1e-4
"""Default relative accuracy of eigenvalues in :func:`eigenpairs` and :func:`top_eigenpairs`."""

EXACT_MAX_PARAMS = 20_000
"""Largest ``N`` for which :func:`exact_hessian` builds the dense ``N x N`` matrix."""

GRAPH_MEMORY_BUDGET = 4 * 2**30
"""Bytes the ``double_backward`` backend may keep in cached autograd graphs (CPU)."""

BACKENDS = ("auto", "double_backward", "forward_over_reverse")


# --------------------------------------------------------------------------- parameters


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters of ``model`` that require gradients, in ``model.parameters()`` order."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no parameters that require gradients")
    return params


def get_vector(model: nn.Module) -> torch.Tensor:
    """The flat parameter vector ``theta`` of ``model`` (a detached copy)."""
    return parameters_to_vector(trainable_parameters(model)).detach().clone()


def set_vector(model: nn.Module, theta: Any) -> None:
    """Write the flat vector ``theta`` into ``model``'s trainable parameters (in place)."""
    params = trainable_parameters(model)
    vec = _as_flat(theta, "theta", params)
    with torch.no_grad():
        vector_to_parameters(vec, params)


def _as_flat(value: Any, name: str, params: list[torch.Tensor]) -> torch.Tensor:
    """``value`` as a finite 1-D tensor of length N with the parameters' dtype and device."""
    n = sum(p.numel() for p in params)
    ref = params[0]
    if isinstance(value, torch.Tensor):
        vec = value.detach()
    else:
        try:
            vec = torch.as_tensor(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be a flat vector of length {n}: {exc}") from None
    if not (vec.is_floating_point() or vec.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"{name} must be a real vector, got dtype {vec.dtype}")
    vec = vec.reshape(-1) if vec.dim() == 2 and 1 in vec.shape else vec
    if vec.dim() != 1 or vec.numel() != n:
        raise ValueError(
            f"{name} must be a flat vector of length {n}, got shape {tuple(vec.shape)}"
        )
    vec = vec.to(dtype=ref.dtype, device=ref.device)
    if not bool(torch.isfinite(vec).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return vec


# --------------------------------------------------------------------------------- data


def _check_data(inputs: Any, targets: Any, chunk_size: Any) -> tuple[Any, Any, int, int]:
    for name, val in (("inputs", inputs), ("targets", targets)):
        if not isinstance(val, (torch.Tensor, np.ndarray)):
            raise TypeError(
                f"{name} must be a torch.Tensor or numpy array, got {type(val).__name__}"
            )
        if val.ndim == 0:
            raise ValueError(f"{name} must have a leading sample dimension, got a scalar")
    inputs = torch.as_tensor(inputs)
    targets = torch.as_tensor(targets)
    n = inputs.shape[0]
    if n == 0:
        raise ValueError("inputs must hold at least one sample")
    if targets.shape[0] != n:
        raise ValueError(
            f"targets has {targets.shape[0]} samples but inputs has {n}: lengths must match"
        )
    if chunk_size is None:
        size = n
    else:
        size = min(as_int(chunk_size, "chunk_size", minimum=1), n)
    return inputs, targets, n, size


def _chunks(
    inputs: torch.Tensor, targets: torch.Tensor, n: int, size: int, ref: torch.Tensor
) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
    """Chunks ``(x_c, y_c, n_c / n)`` on ``ref``'s device (floating data in ``ref``'s dtype)."""
    out = []
    for start in range(0, n, size):
        x = inputs[start : start + size]
        y = targets[start : start + size]
        x = x.to(device=ref.device, dtype=ref.dtype if x.is_floating_point() else x.dtype)
        y = y.to(device=ref.device, dtype=ref.dtype if y.is_floating_point() else y.dtype)
        out.append((x, y, x.shape[0] / n))
    return out


def _check_loss_fn(loss_fn: Any) -> None:
    if not callable(loss_fn):
        raise TypeError(
            f"loss_fn must be callable (e.g. nn.MSELoss()), got {type(loss_fn).__name__}"
        )


def _check_op(op: Any) -> HessianOperator:
    if not isinstance(op, HessianOperator):
        raise TypeError(
            "op must be a HessianOperator (HessianOperator(model, loss_fn, inputs, targets) "
            f"or hvp(...)), got {type(op).__name__}"
        )
    return op


def full_loss(op: HessianOperator) -> float:
    """The dataset loss ``sum_c (n_c / n) loss_fn(model(x_c), y_c)`` at the model's parameters.

    ``op`` binds model, loss, data and chunking (see the module docstring).
    """
    op = _check_op(op)
    total = 0.0
    with torch.no_grad():
        for x, y, w in op.chunks:
            total += w * float(op.loss_fn(op.model(x), y))
    return total


def full_gradient(op: HessianOperator) -> torch.Tensor:
    """The flat gradient of :func:`full_loss` (chunk-weighted), a detached tensor of length N."""
    op = _check_op(op)
    total = torch.zeros(op.num_params, dtype=op.dtype, device=op.device)
    for x, y, w in op.chunks:
        grads = torch.autograd.grad(w * op.loss_fn(op.model(x), y), op.params, allow_unused=True)
        total += _flat(grads, op.params)
    return total


def _flat(tensors: Sequence[torch.Tensor | None], params: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat(
        [
            (t if t is not None else torch.zeros_like(p)).reshape(-1)
            for t, p in zip(tensors, params, strict=True)
        ]
    )


# ---------------------------------------------------------------------------- operator

_STOCHASTIC = (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._BatchNorm)


class HessianOperator:
    """The dataset loss of the module docstring, bound once: model, loss, data and chunking.

    Every function of the curvature engine takes one: :func:`full_loss`, :func:`full_gradient`,
    :func:`eigenpairs`, :func:`exact_hessian`, :func:`spectrum`, :func:`cross_section`,
    :func:`interpolate`. Calling it takes a flat torch vector of length ``N`` and returns
    ``H v`` with the parameters' dtype and device.

    Binding is cheap: the HVP machinery (backend choice, cached autograd graphs, the
    determinism check) is set up by :meth:`prepare`, on the first product or eagerly by
    :func:`hvp`. ``num_calls`` counts the HVPs made through the operator (the two HVPs of the
    determinism check are counted separately in ``setup_calls``); ``num_params`` is ``N``.

    Once prepared, the operator is tied to the parameter values of that moment (the
    ``double_backward`` backend caches autograd graphs): bind a new one after changing the
    model.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        inputs: Any,
        targets: Any,
        chunk_size: int | None = None,
        backend: str = "auto",
        cache_graph: bool | None = None,
        check_determinism: bool = True,
    ) -> None:
        _check_loss_fn(loss_fn)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if cache_graph is not None and not isinstance(cache_graph, bool):
            raise TypeError(f"cache_graph must be None or a bool, got {type(cache_graph).__name__}")
        self.model = model
        self.loss_fn = loss_fn
        self.params = trainable_parameters(model)
        inputs, targets, n, size = _check_data(inputs, targets, chunk_size)
        self.num_samples = n
        ref = self.params[0]
        self.dtype, self.device = ref.dtype, ref.device
        self.num_params = sum(p.numel() for p in self.params)
        self.shape = (self.num_params, self.num_params)
        self.chunks = _chunks(inputs, targets, n, size, ref)
        """The data as ``(x_c, y_c, n_c / n)`` on the parameters' device and dtype."""
        self.num_calls = 0
        self.setup_calls = 0
        self._graphs: list[tuple[torch.Tensor, ...]] | None = None
        self._cache = False
        _refuse_stochastic_modules(model)
        self.backend = backend
        self._cache_graph = cache_graph
        self._check = bool(check_determinism)
        self.prepared = False

    def prepare(self) -> HessianOperator:
        """Set up the HVP backend now (graphs, determinism check); returns the operator.

        Called on the first product; :func:`hvp` calls it at once, so that a random or
        batch-dependent loss is refused where the operator is made.
        """
        if self.prepared:
            return self
        backend, cache_graph = self.backend, self._cache_graph
        if backend in ("auto", "double_backward"):
            budget = _graph_budget(self.device)
            first, nbytes = self._build_graph(self.chunks[0], measure=True)
            fits = nbytes * len(self.chunks) <= budget
            if backend == "auto" and not fits:
                backend = "forward_over_reverse"
            else:
                backend = "double_backward"
                self._cache = fits if cache_graph is None else bool(cache_graph)
                if len(self.chunks) == 1 and cache_graph is None:
                    self._cache = True  # the one chunk's graph is needed anyway
                if self._cache:
                    self._graphs = [first] + [self._build_graph(c)[0] for c in self.chunks[1:]]
            del first
        self.backend = backend
        if backend == "forward_over_reverse":
            self._setup_functional()
        self.prepared = True
        if self._check:
            self._check_determinism()
        return self

    # -- construction helpers
    def _build_graph(self, chunk, measure: bool = False) -> tuple[tuple[torch.Tensor, ...], int]:
        x, y, w = chunk
        seen: dict[tuple[int, int], int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            try:
                key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
                seen[key] = key[1]
            except (RuntimeError, NotImplementedError):
                pass
            return t

        if measure:
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                loss = w * self.loss_fn(self.model(x), y)
                grads = torch.autograd.grad(loss, self.params, create_graph=True, allow_unused=True)
        else:
            loss = w * self.loss_fn(self.model(x), y)
            grads = torch.autograd.grad(loss, self.params, create_graph=True, allow_unused=True)
        return tuple(grads), sum(seen.values())

    def _setup_functional(self) -> None:
        model, loss_fn = self.model, self.loss_fn
        names = [name for name, p in model.named_parameters() if p.requires_grad]
        buffers = dict(model.named_buffers())
        self._primals = tuple(p.detach() for p in self.params)

        def loss_of(ps: tuple[torch.Tensor, ...], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            state = {**buffers, **dict(zip(names, ps, strict=True))}
            return loss_fn(torch.func.functional_call(model, state, (x,)), y)

        self._grad_fn = torch.func.grad(loss_of)

    def _check_determinism(self) -> None:
        gen = torch.Generator().manual_seed(12345)
        v = torch.randn(self.num_params, generator=gen, dtype=torch.float64)
        v = v.to(dtype=self.dtype, device=self.device)
        buffers = [b.detach().clone() for b in self.model.buffers()]
        h1 = self._apply(v)
        if self._cache:  # a fresh forward pass: rebuild the graphs and compare
            self._graphs = [self._build_graph(c)[0] for c in self.chunks]
        h2 = self._apply(v)
        self.setup_calls += 2
        changed = any(
            b.shape != c.shape or not torch.equal(b, c)
            for b, c in zip(buffers, self.model.buffers(), strict=False)
        )
        tol = 1e-10 if self.dtype == torch.float64 else 1e-4
        diff = float(torch.linalg.vector_norm(h1 - h2))
        scale = float(torch.linalg.vector_norm(h1))
        if changed or not diff <= tol * max(scale, 1e-300):
            what = (
                "model buffers changed during a forward pass (train-mode batch norm?)"
                if changed
                else f"two HVPs of one vector differ by {diff / max(scale, 1e-300):.2e} relative"
            )
            raise ValueError(
                f"the loss is not a deterministic function of the parameters: {what}. "
                "Call model.eval() (dropout and batch norm in train mode are random or batch "
                "dependent) and pass a fixed dataset (no shuffling or augmentation)."
            )

    # -- products
    def _apply(self, v: torch.Tensor) -> torch.Tensor:
        pieces = [
            t.view_as(p)
            for t, p in zip(v.split([p.numel() for p in self.params]), self.params, strict=True)
        ]
        if self.backend == "forward_over_reverse":
            out = None
            for x, y, w in self.chunks:
                if y.is_floating_point():
                    # y rides along as a primal with an explicit zero tangent: torch's
                    # mse_loss double-backward JVP fails on the implicit ZeroTensor tangent.
                    _, (tangent, _) = torch.func.jvp(
                        lambda ps, yy, x=x: (self._grad_fn(ps, x, yy), yy),
                        (self._primals, y),
                        (tuple(pieces), torch.zeros_like(y)),
                    )
                else:
                    _, tangent = torch.func.jvp(
                        lambda ps, x=x, y=y: self._grad_fn(ps, x, y),
                        (self._primals,),
                        (tuple(pieces),),
                    )
                flat = _flat(tangent, self.params) * w
                out = flat if out is None else out + flat
            return out.detach()
        out = None
        for i, chunk in enumerate(self.chunks):
            grads = self._graphs[i] if self._cache else self._build_graph(chunk)[0]
            flat = self._vjp(grads, pieces)
            out = flat if out is None else out + flat
        return out.detach()

    def _vjp(
        self, grads: tuple[torch.Tensor | None, ...], pieces: list[torch.Tensor]
    ) -> torch.Tensor:
        live = [i for i, g in enumerate(grads) if g is not None and g.requires_grad]
        res: list[torch.Tensor | None] = [None] * len(self.params)
        if live:
            hv = torch.autograd.grad(
                [grads[i] for i in live],
                self.params,
                grad_outputs=[pieces[i] for i in live],
                retain_graph=True,
                allow_unused=True,
            )
            res = list(hv)
        return _flat(res, self.params)

    def __call__(self, v: Any) -> torch.Tensor:
        vec = _as_flat(v, "v", self.params)
        self.prepare()
        self.num_calls += 1
        return self._apply(vec)

    def matmat(self, V: torch.Tensor) -> torch.Tensor:
        """``H V`` for ``V`` of shape ``(N, b)``; batched via vmap when the backend allows it."""
        V = torch.as_tensor(V).to(dtype=self.dtype, device=self.device)
        if V.dim() != 2 or V.shape[0] != self.num_params:
            raise ValueError(f"V must have shape ({self.num_params}, b), got {tuple(V.shape)}")
        b = V.shape[1]
        self.prepare()
        if self.backend == "double_backward" and self._cache and b > 1:
            try:
                out = torch.zeros_like(V.T)
                rows = V.T.contiguous()
                split = [
                    r.reshape(b, *p.shape)
                    for r, p in zip(
                        rows.split([p.numel() for p in self.params], dim=1),
                        self.params,
                        strict=True,
                    )
                ]
                for grads in self._graphs:
                    live = [i for i, g in enumerate(grads) if g is not None and g.requires_grad]
                    if not live:
                        continue
                    hv = torch.autograd.grad(
                        [grads[i] for i in live],
                        self.params,
                        grad_outputs=[split[i] for i in live],
                        retain_graph=True,
                        allow_unused=True,
                        is_grads_batched=True,
                    )
                    out += torch.cat(
                        [
                            (
                                h
                                if h is not None
                                else torch.zeros(b, *p.shape, dtype=self.dtype, device=self.device)
                            ).reshape(b, -1)
                            for h, p in zip(hv, self.params, strict=True)
                        ],
                        dim=1,
                    )
                self.num_calls += b
                return out.T.detach()
            except RuntimeError:
                pass  # some op has no batching rule: fall back to a loop
        return torch.stack([self(V[:, j]) for j in range(b)], dim=1)

    def to_scipy(self):
        """This operator as a ``scipy.sparse.linalg.LinearOperator`` (float64 numpy in/out)."""
        import scipy.sparse.linalg

        def mv(x: np.ndarray) -> np.ndarray:
            t = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float64).ravel())
            return self(t).to("cpu", torch.float64).numpy()

        return scipy.sparse.linalg.LinearOperator(self.shape, matvec=mv, dtype=np.float64)

    def __repr__(self) -> str:
        return (
            f"HessianOperator(N={self.num_params}, backend={self.backend!r}, "
            f"chunks={len(self.chunks)}, cached_graph={self._cache}, num_calls={self.num_calls})"
        )


def _refuse_stochastic_modules(model: nn.Module) -> None:
    for name, module in model.named_modules():
        if module.training and isinstance(module, _STOCHASTIC):
            kind = type(module).__name__
            raise ValueError(
                f"module {name or 'model'!r} ({kind}) is in train mode, so the loss is random or "
                "batch dependent and has no well-defined Hessian: call model.eval() first"
            )


def _graph_budget(device: torch.device) -> float:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return 0.5 * free
    return GRAPH_MEMORY_BUDGET


def hvp(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    inputs: Any,
    targets: Any,
    chunk_size: int | None = None,
    backend: str = "auto",
    cache_graph: bool | None = None,
) -> HessianOperator:
    """The Hessian-vector product ``v -> H v`` of the dataset loss, prepared at once.

    A :class:`HessianOperator` whose backend is set up and whose determinism is checked here
    rather than at the first product.

    Parameters
    ----------
    model, loss_fn, inputs, targets, chunk_size:
        The loss of the module docstring: mean of ``loss_fn(model(x), y)`` over all samples,
        evaluated in chunks of ``chunk_size`` samples (``None``: all at once).
    backend:
        ``"double_backward"``: build ``grad`` with ``create_graph=True`` once per chunk and
        reuse those graphs for every HVP (one HVP = one backward pass through the gradient
        graph, about 1-2 gradient evaluations; fastest, memory ~2-3x a backward pass per
        chunk). With several chunks the graphs of all chunks are kept only when their saved
        tensors (measured on the first chunk) fit ``GRAPH_MEMORY_BUDGET`` (4 GiB; on CUDA
        half the free memory); otherwise every HVP rebuilds them chunk by chunk.
        ``"forward_over_reverse"``: ``torch.func.jvp`` of ``torch.func.grad`` of a
        ``functional_call``; keeps nothing between calls (a forward + backward per chunk per
        HVP), the least memory for big GPU models.
        ``"auto"``: ``double_backward`` with cached graphs when they fit the budget, else
        ``forward_over_reverse``.
    cache_graph:
        Force (``True``) or forbid (``False``) caching for ``double_backward``.

    Returns
    -------
    HessianOperator
        Callable on flat vectors, with ``num_calls``, ``num_params``, ``backend``.

    Raises
    ------
    ValueError
        If the loss is not deterministic (dropout or batch norm in train mode, a shuffling
        loss, ...): two HVPs of one random vector, each from a fresh forward pass, must agree
        to 1e-10 relative in float64 (1e-4 otherwise), and buffers must not change.
    """
    op = HessianOperator(model, loss_fn, inputs, targets, chunk_size, backend, cache_graph)
    return op.prepare()


# ------------------------------------------------------------------------- eigenpairs


@dataclass
class EigenResult:
    """Eigenpairs of the Hessian.

    ``eigenvalues`` are sorted descending (for ``which="smallest"`` the last one is
    ``lambda_min``); ``eigenvectors[i]`` (rows, unit norm) belongs to ``eigenvalues[i]``;
    ``residuals[i] = ||H v_i - lambda_i v_i||`` from true HVPs; ``error_bounds[i]`` is the
    certified bound on ``|lambda_i - eigenvalues[i]|`` of
    :func:`flatlib.curvature.lanczos.eigenvalue_bounds` (``residual**2 / gap`` with the gap
    estimated from the other Ritz values, or the plain residual); ``converged`` is true when
    every bound is at most ``tol * |eigenvalues[i]| + atol``; ``num_hvps`` counts the HVPs of
    the solve (the operator's determinism check adds 2 more, see :class:`HessianOperator`).
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    num_hvps: int
    converged: bool
    residuals: np.ndarray
    error_bounds: np.ndarray
    method: str = "lanczos"
    shift: float = 0.0

    @property
    def sharpness(self) -> float:
        """The first eigenvalue (``lambda_max`` for ``which="largest"``)."""
        return float(self.eigenvalues[0])


def _start_vectors(v0: Any, k: int, op: HessianOperator, seed: int) -> torch.Tensor:
    """``(k, N)`` starting block: rows of ``v0`` (a vector or previous eigenvectors), padded
    with seeded Gaussian vectors."""
    n = op.num_params
    gen = torch.Generator().manual_seed(seed)
    rows: list[torch.Tensor] = []
    if v0 is not None:
        arr = (
            v0.detach()
            if isinstance(v0, torch.Tensor)
            else torch.as_tensor(np.asarray(v0, dtype=np.float64))
        )
        if arr.dim() == 1:
            arr = arr[None]
        if arr.dim() != 2 or arr.shape[1] != n:
            raise ValueError(
                f"v0 must be a flat vector of length {n} or a (m, {n}) array, "
                f"got shape {tuple(arr.shape)}"
            )
        if not bool(torch.isfinite(arr).all()):
            raise ValueError("v0 contains NaN or infinite values")
        arr = arr.to(dtype=op.dtype, device=op.device)
        if bool((torch.linalg.vector_norm(arr, dim=1) == 0).any()):
            raise ValueError("v0 must not contain a zero vector")
        rows = list(arr[:k])
    while len(rows) < k:
        rows.append(
            torch.randn(n, generator=gen, dtype=torch.float64).to(dtype=op.dtype, device=op.device)
        )
    return torch.stack(rows)


def eigenpairs(
    op: HessianOperator,
    k: int = 1,
    method: str = "lanczos",
    tol: float = DEFAULT_TOL,
    max_iter: int | None = None,
    seed: int = 0,
    v0: Any = None,
    which: str = "largest",
    atol: float = 0.0,
    ncv: int | None = None,
) -> EigenResult:
    """The ``k`` largest (or smallest) eigenpairs of the Hessian bound in ``op``.

    See :func:`top_eigenpairs` for the stopping rule, the methods and the parameters; reuse
    one operator across calls to keep its cached graphs.
    """
    op = _check_op(op)
    n = op.num_params
    k = as_int(k, "k", minimum=1)
    if k > n:
        raise ValueError(f"k must be at most the number of parameters N={n}, got {k}")
    if method not in ("lanczos", "power"):
        raise ValueError(f"method must be 'lanczos' or 'power', got {method!r}")
    if which not in ("largest", "smallest"):
        raise ValueError(f"which must be 'largest' or 'smallest', got {which!r}")
    tol = as_float(tol, "tol")
    if tol < 0:
        raise ValueError(f"tol must be non-negative, got {tol}")
    atol = as_float(atol, "atol")
    seed = as_int(seed, "seed", minimum=0)
    if max_iter is None:
        max_iter = 2000 * k if method == "power" else max(2000, 20 * k)
    max_iter = as_int(max_iter, "max_iter", minimum=1)
    start = _start_vectors(v0, k, op, seed)
    calls0 = op.num_calls
    matvec = op.__call__
    shift = 0.0

    if method == "power":
        pairs, _, shift = lanczos.block_power(matvec, start, which, tol, atol, max_iter)
    else:
        basis = min(n, max(2 * k + 1, 100 if ncv is None else as_int(ncv, "ncv", minimum=2)))
        basis = min(basis, max_iter)
        gen = torch.Generator().manual_seed(seed + 1)
        pairs, ok = lanczos.lanczos(matvec, start.sum(0), k, which, tol, atol, basis, gen)
        left = max_iter - (op.num_calls - calls0)
        if not ok and left > basis and n > basis:
            warm = pairs.vectors.sum(0)
            pairs = lanczos.arpack(
                matvec, warm, k, which, tol, ncv=basis, maxiter=max(1, left // basis)
            )
    vals = np.asarray(pairs.values, dtype=np.float64)
    vecs = pairs.vectors
    norms = torch.linalg.vector_norm(vecs, dim=1, keepdim=True)
    vecs = vecs / norms
    hvecs = pairs.hvectors / norms
    # Rayleigh quotients and true residuals from real HVPs
    vals = torch.sum(vecs * hvecs, dim=1).cpu().numpy().astype(np.float64)
    res = torch.linalg.vector_norm(
        hvecs - vecs * torch.as_tensor(vals, dtype=vecs.dtype, device=vecs.device)[:, None], dim=1
    )
    res = res.cpu().numpy().astype(np.float64)
    order = np.argsort(-vals, kind="stable")
    vals, res = vals[order], res[order]
    vecs = vecs[torch.as_tensor(order.copy(), device=vecs.device)]
    floor = lanczos.rounding_floor(vals, op.dtype)
    bounds = lanczos.eigenvalue_bounds(vals, res, *pairs.others, floor=floor)
    converged = bool(np.all(np.isfinite(vals)) and np.all(bounds <= tol * np.abs(vals) + atol))
    return EigenResult(
        eigenvalues=vals,
        eigenvectors=vecs.detach().cpu().numpy().astype(np.float64),
        num_hvps=op.num_calls - calls0,
        converged=converged,
        residuals=res,
        error_bounds=bounds,
        method=method,
        shift=shift,
    )


def top_eigenpairs(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    inputs: Any,
    targets: Any,
    k: int = 1,
    method: str = "lanczos",
    tol: float = DEFAULT_TOL,
    max_iter: int | None = None,
    chunk_size: int | None = None,
    seed: int = 0,
    v0: Any = None,
    which: str = "largest",
    backend: str = "auto",
    atol: float = 0.0,
    ncv: int | None = None,
) -> EigenResult:
    """The ``k`` largest (or smallest) algebraic eigenvalues of the Hessian and their vectors.

    A convenience for :func:`eigenpairs` on ``hvp(model, loss_fn, inputs, targets, ...)``.

    Sharpness is the largest *algebraic* eigenvalue ``lambda_max(H)`` (not the largest in
    magnitude); ``which="smallest"`` gives ``lambda_min``.

    Stopping rule: ``tol`` is the relative accuracy of the returned eigenvalues (default
    :data:`DEFAULT_TOL` = 1e-4). A Ritz value ``theta`` with residual ``r = ||H v - theta
    v||`` is within ``r**2 / gap`` of an eigenvalue, ``gap`` being its distance to the rest
    of the spectrum (estimated from the other Ritz values), and always within ``r``
    (:func:`flatlib.curvature.lanczos.eigenvalue_bounds`). The solve stops once that bound is
    at most ``tol * |theta| + atol`` for every wanted pair (not on the change between
    iterates, which stops power iteration far short of its nominal accuracy); ``converged``
    and ``error_bounds`` come from the final *true* residuals.

    Methods
    -------
    ``"lanczos"`` (default): Lanczos with full reorthogonalisation, checking the Ritz
    residual estimates after every step (basis of up to ``ncv`` = 100 vectors); in the rare
    case that is not enough it hands over to ARPACK (``scipy.sparse.linalg.eigsh``,
    implicit restarts) warm-started from the Ritz vectors. ``H v`` of every basis vector is
    stored, so the final residuals cost no extra HVPs.
    ``"power"``: the power method of Mulayoff & Michaeli (Sec. 6) as subspace iteration with
    Rayleigh-Ritz; see :func:`flatlib.curvature.lanczos.block_power` for the shift it applies when
    the
    negative end of the spectrum dominates.

    Parameters
    ----------
    k:
        Number of eigenpairs, ``1 <= k <= N``.
    max_iter:
        Maximum number of HVPs (default 2000 per wanted pair for power, 2000 for lanczos).
    seed:
        Seed of the random start (and of the padding when ``v0`` has fewer than ``k`` rows).
    v0:
        Warm start: a flat vector or the ``eigenvectors`` of a previous :class:`EigenResult`
        (e.g. the previous training step), which makes tracking sharpness cheap.
    backend, chunk_size:
        Passed to :func:`hvp`.
    """
    op = hvp(model, loss_fn, inputs, targets, chunk_size=chunk_size, backend=backend)
    return eigenpairs(op, k, method, tol, max_iter, seed, v0, which, atol, ncv)


# ------------------------------------------------------------------------------ spectra


def exact_hessian(op: HessianOperator, block: int = 256) -> np.ndarray:
    """The dense ``N x N`` Hessian (float64 numpy, symmetrised) for small models (N <= 20000).

    Columns are HVPs of unit vectors, ``block`` at a time (batched with vmap when possible).
    """
    op = _check_op(op)
    n = op.num_params
    if n > EXACT_MAX_PARAMS:
        raise ValueError(
            f"model has N={n} parameters; exact_hessian builds an N x N matrix and refuses "
            f"N > {EXACT_MAX_PARAMS}: use top_eigenpairs or spectrum(method='slq')"
        )
    block = as_int(block, "block", minimum=1)
    H = np.empty((n, n), dtype=np.float64)
    eye = torch.eye(n, dtype=op.dtype, device=op.device)
    for start in range(0, n, block):
        cols = op.matmat(eye[:, start : start + block])
        H[:, start : start + block] = cols.to("cpu", torch.float64).numpy()
    return 0.5 * (H + H.T)


class SLQDensity(NamedTuple):
    """Quadrature ``sum_i weights[i] * delta(x - nodes[i])`` of the spectral density."""

    nodes: np.ndarray
    weights: np.ndarray


def spectrum(
    op: HessianOperator,
    method: str = "exact",
    num_probes: int = 10,
    lanczos_steps: int = 80,
    seed: int = 0,
) -> np.ndarray | SLQDensity:
    """The Hessian spectrum (Sagun et al.): exact eigenvalues or an SLQ density estimate.

    ``method="exact"``: all ``N`` eigenvalues, ascending (via :func:`exact_hessian`).
    ``method="slq"``: stochastic Lanczos quadrature with ``num_probes`` Rademacher probes and
    ``lanczos_steps`` steps each (``num_probes * lanczos_steps`` HVPs); returns
    :class:`SLQDensity` ``(nodes, weights)`` with weights summing to 1. Smooth it with
    :func:`density`.
    """
    if method == "exact":
        return np.linalg.eigvalsh(exact_hessian(op))
    if method != "slq":
        raise ValueError(f"method must be 'exact' or 'slq', got {method!r}")
    num_probes = as_int(num_probes, "num_probes", minimum=1)
    lanczos_steps = as_int(lanczos_steps, "lanczos_steps", minimum=1)
    seed = as_int(seed, "seed", minimum=0)
    op = _check_op(op)
    nodes, weights = lanczos.slq_nodes_weights(
        op.__call__, op.num_params, num_probes, lanczos_steps, op.dtype, op.device, seed
    )
    return SLQDensity(nodes, weights)


def density(nodes: Any, weights: Any, grid: Any, sigma: float) -> np.ndarray:
    """Gaussian-smoothed density ``sum_i w_i N(grid; nodes_i, sigma^2)`` on ``grid``."""
    from flatlib._validation import as_float_array

    x = as_float_array(nodes, "nodes", ndim=1)
    w = as_float_array(weights, "weights", ndim=1)
    if x.shape != w.shape:
        raise ValueError(f"weights has shape {w.shape} but nodes has shape {x.shape}")
    g = as_float_array(grid, "grid", ndim=1)
    sigma = as_float(sigma, "sigma", positive=True)
    z = (g[:, None] - x[None, :]) / sigma
    return (np.exp(-0.5 * z**2) @ w) / (sigma * math.sqrt(2 * math.pi))


# ---------------------------------------------------------------------- cross sections


def _radii(values: Any, name: str) -> np.ndarray:
    from flatlib._validation import as_float_array

    return as_float_array(values, name, ndim=1)


def cross_section(op: HessianOperator, direction: Any, radii: Any) -> np.ndarray:
    """The loss along ``theta + r * direction`` for each ``r`` in ``radii`` (paper Fig. 7d-e).

    ``direction`` is a flat vector (e.g. an eigenvector; not normalised here). The model's
    parameters are restored afterwards, also when an error occurs.
    """
    op = _check_op(op)
    params = op.params
    d = _as_flat(direction, "direction", params)
    r = _radii(radii, "radii")
    theta = parameters_to_vector(params).detach().clone()
    out = np.empty(r.size)
    try:
        for i, ri in enumerate(r):
            with torch.no_grad():
                vector_to_parameters(theta + float(ri) * d, params)
            out[i] = full_loss(op)
    finally:
        with torch.no_grad():
            vector_to_parameters(theta, params)
    return out


def interpolate(op: HessianOperator, model_b: nn.Module, alphas: Any) -> np.ndarray:
    """The loss along ``(1 - a) theta_a + a theta_b`` (the 1-D interpolation of paper Fig. 7a).

    ``theta_a`` is the model bound in ``op``, whose loss and data are used (both models must
    have the same parameter layout); its parameters are restored afterwards, ``model_b`` is
    not modified.
    """
    op = _check_op(op)
    pa = op.params
    pb = trainable_parameters(model_b)
    if [p.shape for p in pa] != [p.shape for p in pb]:
        raise ValueError("model_b must have the same parameter shapes as model_a")
    a = _radii(alphas, "alphas")
    theta_a = parameters_to_vector(pa).detach().clone()
    theta_b = parameters_to_vector(pb).detach().to(dtype=theta_a.dtype, device=theta_a.device)
    out = np.empty(a.size)
    try:
        for i, ai in enumerate(a):
            with torch.no_grad():
                vector_to_parameters((1 - float(ai)) * theta_a + float(ai) * theta_b, pa)
            out[i] = full_loss(op)
    finally:
        with torch.no_grad():
            vector_to_parameters(theta_a, pa)
    return out
