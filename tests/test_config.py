"""flatlib.config: the quick/full switch, device choice, cache directory and seeding."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from flatlib import config


def test_mode_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(config.MODE_ENV, raising=False)
    assert config.mode() == "quick" and not config.is_full()
    config.set_mode("FULL")
    assert config.mode() == "full" and config.is_full()
    monkeypatch.setenv(config.MODE_ENV, "huge")
    with pytest.raises(ValueError, match="FLATLIB_MODE"):
        config.mode()
    with pytest.raises(ValueError, match="mode"):
        config.set_mode("medium")
    with pytest.raises(TypeError, match="mode"):
        config.set_mode(3)  # type: ignore[arg-type]


def test_resolve_mode_fills_in_and_rejects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.MODE_ENV, "full")
    assert config.resolve_mode(None) == "full"
    assert config.resolve_mode("quick") == "quick"
    for bad in ("Quick", "slow", 1):
        with pytest.raises(ValueError, match="mode"):
            config.resolve_mode(bad)


def test_device_override(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.delenv(config.DEVICE_ENV, raising=False)
    assert config.device() == ("cuda" if torch.cuda.is_available() else "cpu")
    config.set_device("cpu")
    assert config.device() == "cpu"
    config.set_device(None)
    assert config.DEVICE_ENV not in __import__("os").environ
    with pytest.raises(TypeError, match="device"):
        config.set_device("")


def test_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv(config.CACHE_ENV, raising=False)
    target = config.set_cache_dir(tmp_path / "results")
    assert target.is_dir() and config.cache_dir() == target


def test_data_dir_is_apart_from_the_run_cache(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv(config.DATA_ENV, str(tmp_path / "data" / "nested"))
    assert config.data_dir() == tmp_path / "data" / "nested" and config.data_dir().is_dir()
    monkeypatch.delenv(config.DATA_ENV)
    monkeypatch.delenv(config.CACHE_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    data, runs = config.data_dir(), config.cache_dir()
    assert data == tmp_path / "home" / ".cache" / "flatlib-data" and data.is_dir()
    assert runs != data and runs not in data.parents  # pointing the run cache away keeps the data


def test_seed_everything_is_reproducible() -> None:
    import torch

    a = config.seed_everything(7).normal(size=3), torch.randn(3)
    b = config.seed_everything(7).normal(size=3), torch.randn(3)
    np.testing.assert_array_equal(a[0], b[0])
    assert torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="seed"):
        config.seed_everything(-1)
    with pytest.raises(TypeError, match="seed"):
        config.seed_everything(1.5)  # type: ignore[arg-type]


def test_import_from_any_directory_without_torch(tmp_path) -> None:
    code = "import sys, flatlib; print(flatlib.config.mode(), 'torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "", "HOME": str(tmp_path)},
    )
    assert out.stdout.split() == ["quick", "False"]
