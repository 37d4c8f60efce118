"""Argument checks shared by the library: clear errors naming the argument."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def as_float_array(value: Any, name: str, ndim: int | None = None) -> np.ndarray:
    """``value`` as a finite float64 array, else ``TypeError``/``ValueError`` naming ``name``."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be numeric array-like, got {type(value).__name__}")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric array-like: {exc}") from None
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def as_float(value: Any, name: str, positive: bool = False) -> float:
    """``value`` as a finite float (strictly positive if asked), else an error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    out = float(value)
    if not np.isfinite(out):
        raise ValueError(f"{name} must be finite, got {out}")
    if positive and out <= 0:
        raise ValueError(f"{name} must be positive, got {out}")
    return out


def as_int(value: Any, name: str, minimum: int | None = None) -> int:
    """``value`` as an int not below ``minimum``, else an error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    out = int(value)
    if minimum is not None and out < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {out}")
    return out


def as_weights(weights: Any, name: str = "weights") -> list[np.ndarray]:
    """Check a linear network ``[W1, ..., Wm]``: 2-D finite float64 arrays whose shapes chain.

    ``Wj`` has shape ``(d_j, d_{j-1})`` so that the network computes ``Wm ... W1 x`` (eq. 1).
    """
    if (
        isinstance(weights, np.ndarray)
        or not isinstance(weights, Sequence)
        or isinstance(weights, str)
    ):
        raise TypeError(f"{name} must be a list of 2-D arrays [W1, ..., Wm]")
    if len(weights) < 1:
        raise ValueError(f"{name} must hold at least one layer (m >= 1)")
    out = [as_float_array(w, f"{name}[{j}]", ndim=2) for j, w in enumerate(weights)]
    for j in range(1, len(out)):
        if out[j].shape[1] != out[j - 1].shape[0]:
            raise ValueError(
                f"{name}[{j}] has shape {out[j].shape} but {name}[{j - 1}] has shape "
                f"{out[j - 1].shape}: W_{j + 1} must have {out[j - 1].shape[0]} columns"
            )
    return out
