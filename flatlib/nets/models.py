"""Fully connected networks used in the book's nonlinear experiments.

Mulayoff & Michaeli (ICML 2020), Sec. 6 and App. IX.2, train fully connected ReLU
networks whose input, output and hidden layers all have 784 = 28 x 28 units to denoise
MNIST digits, starting either from the identity (Lemma 1: the identity initialisation
lies next to the flattest minima of a deep linear network) or from the random
initialisation of He et al. (2015). :func:`mlp` builds both.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from flatlib._validation import as_int

__all__ = ["ACTIVATIONS", "INITS", "mlp"]

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}
INITS: tuple[str, ...] = ("he", "identity")


def mlp(
    dims: Sequence[int],
    activation: str = "relu",
    init: str = "he",
    bias: bool = True,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> nn.Sequential:
    """A multilayer perceptron ``Linear -> act -> ... -> Linear`` (no activation at the end).

    Parameters
    ----------
    dims:
        Layer widths ``[d_0, d_1, ..., d_m]``; the network has ``m = len(dims) - 1`` linear
        layers, ``Linear(d_{j-1}, d_j)``. The paper's denoisers use ``[784] * (m + 1)``.
    activation:
        ``"relu"`` (the paper, Sec. 6) or ``"tanh"``.
    init:
        ``"identity"``: every weight matrix is the identity and every bias is zero, so the
        network starts as the identity map on non-negative inputs (paper Sec. 6, the
        initialisation Lemma 1 recommends); needs square layers (all ``dims`` equal).
        ``"he"``: Kaiming-normal weights (He et al., 2015, fan-in, ReLU gain), zero biases,
        the random initialisation of the paper's Fig. 5.
    bias:
        Whether the linear layers carry biases.
    seed:
        Seed of a private ``torch.Generator``: the same seed gives the same network and the
        global RNG is left untouched.
    dtype:
        Parameter dtype (float64 by default for the book's Hessian checks).

    Returns
    -------
    torch.nn.Sequential
        On the CPU; move it with ``.to(flatlib.config.device())``.
    """
    if isinstance(dims, (str, bytes)) or not isinstance(dims, Sequence):
        raise TypeError(f"dims must be a sequence of ints, got {type(dims).__name__}")
    if len(dims) < 2:
        raise ValueError(f"dims must hold at least two widths [d_in, d_out], got {list(dims)}")
    widths = [as_int(d, f"dims[{j}]", minimum=1) for j, d in enumerate(dims)]
    if not isinstance(activation, str) or activation.lower() not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {activation!r}")
    if not isinstance(init, str) or init.lower() not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    if not isinstance(bias, bool):
        raise TypeError(f"bias must be a bool, got {type(bias).__name__}")
    seed = as_int(seed, "seed", minimum=0)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    init = init.lower()
    if init == "identity" and len(set(widths)) != 1:
        raise ValueError(f"init='identity' needs square layers (all dims equal), got dims={widths}")

    gen = torch.Generator().manual_seed(seed)
    act = ACTIVATIONS[activation.lower()]
    layers: list[nn.Module] = []
    for j in range(len(widths) - 1):
        lin = nn.Linear(widths[j], widths[j + 1], bias=bias, dtype=dtype)
        with torch.no_grad():
            if init == "identity":
                lin.weight.copy_(torch.eye(widths[j + 1], widths[j], dtype=dtype))
            else:
                std = (2.0 / widths[j]) ** 0.5  # kaiming_normal_, fan_in, gain sqrt(2)
                w = torch.randn(lin.weight.shape, generator=gen, dtype=torch.float64) * std
                lin.weight.copy_(w.to(dtype))
            if lin.bias is not None:
                lin.bias.zero_()
        layers.append(lin)
        if j < len(widths) - 2:
            layers.append(act())
    return nn.Sequential(*layers)
