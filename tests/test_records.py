"""flatlib.records: store, load and describe committed full-mode results."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from flatlib import records as fr


def _tables():
    runs = pd.DataFrame(
        {
            "optimizer": ["sgd", "adam"],
            "sharpness": [1.5, np.nan],
            "max_gains": [np.array([1.0, 2.0]), np.array([3.0, 4.0])],
        }
    )
    return {"runs": runs, "summary": pd.DataFrame({"x": [np.float32(0.5)]})}


def test_save_load_round_trip(tmp_path):
    path = fr.save("flat_vs_sharp", _tables(), "some digits", "python -m x", tmp_path)
    assert path == tmp_path / "flat_vs_sharp.json" and not list(tmp_path.glob(".*.tmp"))
    back = fr.load("flat_vs_sharp", tmp_path)
    assert isinstance(back, fr.FullResults) and back.data == "some digits"
    runs = back.tables["runs"]
    assert list(runs["optimizer"]) == ["sgd", "adam"]
    assert runs["sharpness"].iloc[0] == 1.5 and np.isnan(runs["sharpness"].iloc[1])
    assert runs["max_gains"].iloc[1] == [3.0, 4.0]
    assert back.tables["summary"]["x"].iloc[0] == 0.5
    p = back.provenance
    assert p["command"] == "python -m x" and p["device"].startswith(("cpu", "cuda"))
    assert p["date"].endswith("UTC") and p["torch"]
    text = fr.describe(back)
    assert "python -m x" in text and "some digits" in text and p["commit"] in text
    assert fr.load("step_size_depth", tmp_path) is None
    assert "No paper-scale record" in fr.describe(None, "step_size_depth")
    # a record states how its runs were trained
    config = {k: i for i, k in enumerate(fr.PROTOCOL_KEYS)} | {"noise": "fresh", "bias": False}
    protocol = fr.protocol_of(config)
    fr.save("flat_vs_sharp", _tables(), "d", "c", tmp_path, protocol=protocol)
    again = fr.load("flat_vs_sharp", tmp_path)
    assert again.provenance["protocol"] == protocol
    assert "noise=fresh" in fr.describe(again) and "bias=False" in fr.describe(again)
    with pytest.raises(ValueError, match="n_train"):
        fr.protocol_of({"noise": "fresh"})


def test_bad_arguments_name_the_argument(tmp_path):
    with pytest.raises(ValueError, match="name"):
        fr.save("chapter_99", _tables(), "d", "c", tmp_path)
    with pytest.raises(TypeError, match="tables"):
        fr.save("flat_vs_sharp", {"runs": [1, 2]}, "d", "c", tmp_path)
    with pytest.raises(TypeError, match="command"):
        fr.save("flat_vs_sharp", _tables(), "d", "", tmp_path)
    with pytest.raises(TypeError, match="made"):
        fr.save("flat_vs_sharp", _tables(), "d", "c", tmp_path, made="today")
    with pytest.raises(TypeError, match="protocol"):
        fr.save("flat_vs_sharp", _tables(), "d", "c", tmp_path, protocol=["n_train"])
    with pytest.raises(TypeError, match="result"):
        fr.describe("not a result")


def test_oversized_result_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(fr, "MAX_BYTES", 100)
    with pytest.raises(ValueError, match="MAX_BYTES"):
        fr.save("flat_vs_sharp", _tables(), "d", "c", tmp_path)
    assert not (tmp_path / "flat_vs_sharp.json").exists()


def test_main_computes_and_records_its_command(tmp_path, monkeypatch, capsys):
    calls = []

    def fake(progress):
        calls.append(progress)
        return _tables(), "fake digits", {"n_train": 7}

    monkeypatch.setitem(fr._COMPUTE, "step_size_depth", lambda p, shard: fake(p))
    path = fr.main(["step_size_depth", "--folder", str(tmp_path)])
    assert calls == [True] and path.exists()
    stored = json.loads(path.read_text())
    assert stored["provenance"]["command"].endswith(
        f"flatlib.records step_size_depth --folder {tmp_path}"
    )
    assert stored["provenance"]["protocol"] == {"n_train": 7}
    assert "wrote" in capsys.readouterr().out


def test_shards_and_workers(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setitem(
        fr._COMPUTE, "flat_vs_sharp", lambda p, shard: seen.append(shard) or _tables_or(shard)
    )
    assert fr.main(["flat_vs_sharp", "--shard", "1/3", "--folder", str(tmp_path)]) is None
    assert seen == [(1, 3)] and not list(tmp_path.iterdir())
    for bad in ("3/3", "x/2", "1"):
        with pytest.raises(ValueError, match="shard"):
            fr._shard(bad)
    launched = []

    class FakeProcess:
        def __init__(self, args):
            launched.append(args[-1])

        def wait(self):
            return 0

    monkeypatch.setattr(fr, "_git_commit", lambda: "abc123")  # git also uses Popen
    monkeypatch.setattr(fr.subprocess, "Popen", FakeProcess)
    path = fr.main(["flat_vs_sharp", "--workers", "3", "--folder", str(tmp_path)])
    assert launched == ["0/3", "1/3", "2/3"] and seen[-1] is None and path.exists()
    assert "--workers 3" in fr.load("flat_vs_sharp", tmp_path).provenance["command"]
    monkeypatch.setattr(FakeProcess, "wait", lambda self: 1)
    with pytest.raises(RuntimeError, match="shard processes"):
        fr.main(["flat_vs_sharp", "--workers", "2", "--folder", str(tmp_path)])
    with pytest.raises(ValueError, match="workers"):
        fr.main(["flat_vs_sharp", "--workers", "0"])


def _tables_or(shard):
    return None if shard is not None else (_tables(), "digits", {"n_train": 1})


@pytest.mark.parametrize("name", fr.EXPERIMENTS)
def test_committed_results_are_complete(name):
    """Every result committed in the package loads, is small and says where it came from."""
    path = fr.STORE / f"{name}.json"
    result = fr.load(name)
    if result is None:
        assert not path.exists()
        return
    assert path.stat().st_size <= fr.MAX_BYTES
    for field in ("date", "device", "commit", "command", "torch"):
        assert result.provenance[field], field
    assert "full_results " + name in result.provenance["command"]
    assert "runs" in result.tables and len(result.tables["runs"]) > 0
    assert result.data
    for key in ("n_train", "noise", "bias"):
        assert key in result.provenance["protocol"], key
