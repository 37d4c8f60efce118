"""Run-time settings shared by every chapter: mode, device, seeds and the result cache.

One switch chooses how large the experiments are:

* ``quick`` (default): CPU-sized runs that finish in minutes on a laptop;
* ``full``: the paper's scale, meant for a GPU.

Set it with the environment variable ``FLATLIB_MODE`` (``quick``/``full``) before
starting Python or Jupyter, or call :func:`set_mode` at the top of a notebook.
The device is CUDA when PyTorch sees one, else the CPU; ``FLATLIB_DEVICE`` or
:func:`set_device` override it. Finished experiment runs are cached under
:func:`cache_dir` (``FLATLIB_CACHE``, default ``~/.cache/flatlib``), outside git; downloaded
datasets (all of MNIST, see :func:`flatlib.nets.data.load_mnist`) live apart from them under
:func:`data_dir` (``FLATLIB_DATA``, default ``~/.cache/flatlib-data``).
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path
from typing import Literal

import numpy as np

Mode = Literal["quick", "full"]
MODES: tuple[str, ...] = ("quick", "full")
MODE_ENV = "FLATLIB_MODE"
DEVICE_ENV = "FLATLIB_DEVICE"
CACHE_ENV = "FLATLIB_CACHE"
DATA_ENV = "FLATLIB_DATA"


def mode() -> Mode:
    """The current experiment scale, read from ``FLATLIB_MODE`` (default ``quick``)."""
    value = os.environ.get(MODE_ENV, "quick").strip().lower() or "quick"
    if value not in MODES:
        raise ValueError(f"{MODE_ENV} must be one of {MODES}, got {value!r}")
    return value  # type: ignore[return-value]


def resolve_mode(value: str | None) -> Mode:
    """``value`` when it names a mode, the current :func:`mode` when it is ``None``.

    The ``mode`` argument of every experiment function goes through here, so a typo raises a
    ``ValueError`` naming the argument instead of silently running the wrong scale.
    """
    if value is None:
        return mode()
    if value not in MODES:
        raise ValueError(f"mode must be one of {MODES} or None, got {value!r}")
    return value  # type: ignore[return-value]


def set_mode(value: str) -> None:
    """Choose ``quick`` or ``full`` for this process (and the kernels it starts)."""
    if not isinstance(value, str):
        raise TypeError(f"mode must be a str, got {type(value).__name__}")
    value = value.strip().lower()
    if value not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {value!r}")
    os.environ[MODE_ENV] = value


def is_full() -> bool:
    """True in ``full`` (paper-scale) mode."""
    return mode() == "full"


def device() -> str:
    """The torch device experiments run on: ``FLATLIB_DEVICE`` if set, else CUDA when available."""
    override = os.environ.get(DEVICE_ENV, "").strip()
    if override:
        return override
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def set_device(value: str | None) -> None:
    """Force a torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``).

    ``None`` restores auto-detection.
    """
    if value is None:
        os.environ.pop(DEVICE_ENV, None)
        return
    if not isinstance(value, str) or not value.strip():
        raise TypeError("device must be a non-empty str such as 'cpu' or 'cuda', or None")
    os.environ[DEVICE_ENV] = value.strip()


def cache_dir() -> Path:
    """Directory where experiment results are stored (created on first use)."""
    root = os.environ.get(CACHE_ENV, "").strip()
    path = Path(root).expanduser() if root else Path.home() / ".cache" / "flatlib"
    path.mkdir(parents=True, exist_ok=True)
    return path


def set_cache_dir(path: str | os.PathLike[str]) -> Path:
    """Store experiment results under ``path`` from now on; returns the resolved directory."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or path-like, got {type(path).__name__}")
    os.environ[CACHE_ENV] = str(Path(path).expanduser().resolve())
    return cache_dir()


def data_dir() -> Path:
    """Directory holding downloaded datasets such as ``mnist.npz`` (created on first use).

    ``FLATLIB_DATA`` when set, else ``~/.cache/flatlib-data``. It is deliberately not inside
    :func:`cache_dir`: that one holds experiment runs and is often pointed at a throw-away
    folder (the tests do so), while the data should be downloaded once and kept.
    """
    root = os.environ.get(DATA_ENV, "").strip()
    path = Path(root).expanduser() if root else Path.home() / ".cache" / "flatlib-data"
    path.mkdir(parents=True, exist_ok=True)
    return path


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and (if imported) PyTorch; return a NumPy generator for ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)  # noqa: NPY002  (legacy global state used by other code)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(int(seed))
    return np.random.default_rng(int(seed))


def describe() -> str:
    """One line naming the mode and device, printed at the top of every chapter."""
    return f"flatlib: mode={mode()} (set {MODE_ENV}=full for paper scale), device={device()}"
