"""Committed full-mode results: run a chapter's paper-scale experiment once, show it anywhere.

Full mode (``FLATLIB_MODE=full``) trains the paper's 784-wide networks (Sec. 6, App. IX.2)
and is meant for a GPU. A reader without one should still see what it gives, so the
compact outcome of a full-mode run is stored in this package as ``<name>.json`` (well under
``MAX_BYTES``) and every chapter shows it beside its live quick-mode numbers.

Each file records where it came from (:func:`provenance`): UTC date, device, flatlib commit,
the exact command, torch version and the data description printed by the loader
(:func:`flatlib.nets.data.full_scale_source` decides between full MNIST and the offline digits).
Its tables are plain JSON records, no pickle.

Make or refresh one from the repository root (GPU machine, or any machine with patience)::

    python -m flatlib.records flat_vs_sharp
    python -m flatlib.records step_size_depth --workers 8

(these always run full mode, whatever ``FLATLIB_MODE`` says).

The underlying runs are cached and resumable (:func:`flatlib.experiments.sweep.run_grid`), so an
interrupted command continues where it stopped. Read a stored result with :func:`load`
(``None`` when none is committed) and :func:`describe`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flatlib.config import device
from flatlib.experiments import flat_vs_sharp as fs
from flatlib.experiments import step_size_depth as ssd
from flatlib.experiments.sweep import atomic_write, run_data

__all__ = [
    "EXPERIMENTS",
    "MAX_BYTES",
    "STORE",
    "FullResults",
    "compute",
    "describe",
    "load",
    "main",
    "PROTOCOL_KEYS",
    "protocol_of",
    "provenance",
    "save",
]

STORE = Path(__file__).resolve().parent
"""Folder holding the committed ``<name>.json`` files (inside the installed package)."""
MAX_BYTES = 2_000_000
"""Upper bound on one stored file (the results must stay small enough for git)."""
EXPERIMENTS: tuple[str, ...] = ("flat_vs_sharp", "step_size_depth")
"""The experiments that have a full-mode result (chapter 10, Figs. 6-7; chapter 9, Figs. 4-5)."""


@dataclass
class FullResults:
    """One stored full-mode result: its provenance, data description and tables."""

    name: str
    provenance: dict[str, Any]
    data: str
    tables: dict[str, pd.DataFrame]


def _git_commit() -> str:
    """The flatlib repository's ``HEAD`` (with ``+dirty`` for local changes), or ``unknown``."""
    root = STORE.parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _device_name() -> str:
    import torch

    dev = device()
    if dev.startswith("cuda") and torch.cuda.is_available():
        return f"{dev}: {torch.cuda.get_device_name(torch.device(dev))}"
    cpu = platform.processor() or platform.machine()
    return f"cpu: {cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def provenance(command: str) -> dict[str, Any]:
    """Where a result comes from: UTC date, device, commit, ``command`` and versions."""
    import torch

    if not isinstance(command, str) or not command.strip():
        raise TypeError("command must be a non-empty str (the command that made the result)")
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": _device_name(),
        "commit": _git_commit(),
        "command": command,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def _check_name(name: Any) -> str:
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if name not in EXPERIMENTS:
        raise ValueError(f"name must be one of {EXPERIMENTS}, got {name!r}")
    return name


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows: arrays become lists, NaN becomes ``None``."""
    out = []
    for row in table.to_dict(orient="records"):
        clean = {}
        for k, v in row.items():
            if isinstance(v, np.ndarray):
                v = v.tolist()
            elif isinstance(v, np.generic):
                v = v.item()
            if isinstance(v, float) and not np.isfinite(v):
                v = None
            clean[str(k)] = v
        out.append(clean)
    return out


def save(
    name: str,
    tables: dict[str, pd.DataFrame],
    data: str,
    command: str,
    folder: str | os.PathLike[str] | None = None,
    made: dict[str, Any] | None = None,
    protocol: dict[str, Any] | None = None,
) -> Path:
    """Write ``tables`` with their :func:`provenance` to ``<folder>/<name>.json`` atomically.

    ``folder`` defaults to :data:`STORE`. ``made`` is a :func:`provenance` taken when the
    computation started (default: taken now), so the commit is that of the code that ran.
    ``protocol`` (:func:`protocol_of`) is added to the provenance: how the runs were trained.
    Raises ``ValueError`` if the file would exceed :data:`MAX_BYTES`.
    """
    name = _check_name(name)
    if not isinstance(tables, dict) or not all(
        isinstance(t, pd.DataFrame) for t in tables.values()
    ):
        raise TypeError("tables must be a dict of pandas DataFrames")
    if not isinstance(data, str):
        raise TypeError(f"data must be a str (the data description), got {type(data).__name__}")
    if made is not None and not isinstance(made, dict):
        raise TypeError(f"made must be a dict from provenance(), got {type(made).__name__}")
    if protocol is not None and not isinstance(protocol, dict):
        raise TypeError(f"protocol must be a dict, got {type(protocol).__name__}")
    made = dict(provenance(command) if made is None else made)
    if protocol is not None:
        made["protocol"] = protocol
    payload = {
        "name": name,
        "provenance": made,
        "data": data,
        "tables": {k: _records(t) for k, t in tables.items()},
    }
    text = json.dumps(payload, indent=1, allow_nan=False).encode()
    if len(text) > MAX_BYTES:
        raise ValueError(f"{name}: {len(text):,} bytes exceeds MAX_BYTES = {MAX_BYTES:,}")
    path = Path(folder) if folder is not None else STORE
    path.mkdir(parents=True, exist_ok=True)
    target = path / f"{name}.json"
    atomic_write(target, lambda f: f.write(text))
    return target


def load(name: str, folder: str | os.PathLike[str] | None = None) -> FullResults | None:
    """The stored full-mode result ``name`` (``None`` if none is committed yet)."""
    name = _check_name(name)
    target = (Path(folder) if folder is not None else STORE) / f"{name}.json"
    if not target.exists():
        return None
    payload = json.loads(target.read_text())
    tables = {k: pd.DataFrame.from_records(v) for k, v in payload["tables"].items()}
    return FullResults(name, payload["provenance"], payload["data"], tables)


def describe(result: FullResults | None, name: str = "") -> str:
    """A few lines saying what a stored result is and how it was made (or that it is missing)."""
    if result is None:
        return (
            f"No paper-scale record for {name or 'this experiment'} is committed yet. Make it "
            f"with `python -m flatlib.records {name or '<name>'}` (resumable; hours on a "
            "CPU, less on a GPU)."
        )
    if not isinstance(result, FullResults):
        raise TypeError(f"result must be a FullResults or None, got {type(result).__name__}")
    p = result.provenance
    return (
        f"Full-mode result '{result.name}', made {p['date']} on {p['device']}\n"
        f"  commit {p['commit']}, torch {p['torch']}\n"
        f"  command: {p['command']}\n"
        f"  data: {result.data}"
    ) + (
        "\n  protocol: " + ", ".join(f"{k}={v}" for k, v in p["protocol"].items())
        if "protocol" in p
        else ""
    )


# ------------------------------------------------------------------------ the experiments


Shard = tuple[int, int] | None


PROTOCOL_KEYS: tuple[str, ...] = (
    "n_train", "n_val", "size", "noise", "noise_std", "bias", "batch_size", "target_loss",
    "epochs", "check_every", "dtype", "sharpness_samples", "source",
)  # fmt: skip
"""The configuration keys a record states in its provenance (:func:`protocol_of`)."""


def protocol_of(config: Any) -> dict[str, Any]:
    """How a record's runs were trained: the :data:`PROTOCOL_KEYS` of one run's configuration."""
    try:
        return {k: (v.item() if isinstance(v, np.generic) else v)
                for k, v in ((k, config[k]) for k in PROTOCOL_KEYS)}  # fmt: skip
    except KeyError as exc:
        raise ValueError(f"config lacks the protocol key {exc}") from None


Computed = tuple[dict[str, pd.DataFrame], str, dict[str, Any]]


def _flat_vs_sharp(progress: bool, shard: Shard) -> Computed | None:
    """Chapter 10 at full scale: the eight runs, the He-initialised Adam run, Table S1, Fig. 7."""

    runs = fs.run_chapter("full", progress=progress, shard=shard)
    if shard is not None:
        return None
    keep = [
        "optimizer", "seed", "init", "lr", "status", "steps", "target_loss", "final_train_loss",
        "final_val_loss", "sharpness", "sharpness_samples", "seconds", "max_gains",
        "top_signal_gains", "check_steps", "check_loss",
    ]  # fmt: skip
    tables = {"runs": runs[[c for c in keep if c in runs.columns]]}
    he_adam = fs.run_chapter_he_adam("full", progress=progress)
    tables["he_adam"] = he_adam[[c for c in keep if c in he_adam.columns]]
    linear_train, linear_val = fs.linear_denoiser_loss(dict(fs.chapter_grid("full")[0]))
    tables["linear"] = pd.DataFrame([{"train": linear_train, "val": linear_val}])
    if (runs["status"] == "converged").all():
        tables["summary"] = fs.summary_table(runs).reset_index()
        analysis = fs.analyse(runs)
        tables["pairs"] = analysis.pair_table()
        tables["layers"] = fs.layer_table(runs).reset_index()
    return tables, run_data(runs.iloc[0]).description, protocol_of(runs.iloc[0])


def _step_size_depth(progress: bool, shard: Shard) -> Computed | None:
    """Chapter 9 at full scale: both (depth x step size) grids, scalars and loss curves."""

    keep = [
        "init", "depth", "lr", "status", "steps", "final_train_loss", "trivial_loss",
        "initial_loss", "target_loss", "sharpness", "seconds", "train_loss_curve",
        "curve_steps", "check_steps", "check_loss",
    ]  # fmt: skip
    parts = []
    for init in ssd.INITS:
        runs = ssd.run_chapter(init, "full", progress=progress, shard=shard)
        parts.append(runs[[c for c in keep if c in runs.columns]])
    if shard is not None:
        return None
    runs = pd.concat(parts, ignore_index=True)
    first = ssd.chapter_grid("identity", "full")[0]
    return {"runs": runs}, run_data(first).description, protocol_of(first)


_COMPUTE: dict[str, Callable[[bool, Shard], Computed | None]] = {
    "flat_vs_sharp": _flat_vs_sharp,
    "step_size_depth": _step_size_depth,
}


def compute(name: str, progress: bool = True) -> Computed:
    """Run (or load from the run cache) experiment ``name`` in full mode.

    Returns its tables, the data description and the :func:`protocol_of` its runs.
    """
    out = _COMPUTE[_check_name(name)](progress, None)
    if out is None:
        raise RuntimeError(f"{name}: the experiment returned no tables")
    return out


def _shard(text: str) -> tuple[int, int]:
    """``"k/n"`` -> ``(k, n)`` for ``--shard``."""
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like K/N, got {text!r}") from None
    if not 0 <= k < n:
        raise ValueError(f"--shard K/N needs 0 <= K < N, got {text!r}")
    return k, n


def _run_workers(name: str, workers: int) -> None:
    """Run ``workers`` shard processes of ``name`` side by side (one cache) and wait for all."""
    base = [sys.executable, "-m", "flatlib.records", name, "--shard"]
    procs = [subprocess.Popen([*base, f"{k}/{workers}"]) for k in range(workers)]
    failed = [k for k, p in enumerate(procs) if p.wait() != 0]
    if failed:
        raise RuntimeError(f"shard processes {failed} of {workers} failed; rerun to resume")


def main(argv: list[str] | None = None) -> Path | None:
    """``python -m flatlib.records NAME [--workers N] [--folder DIR]``.

    Runs experiment ``NAME`` in full mode (resuming from the run cache) and :func:`save` s its
    result. ``--workers N`` first runs the grid in ``N`` processes sharing the cache (a GPU
    is mostly idle with one small network); ``--shard K/N`` is what each of them runs, and
    saves nothing.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m flatlib.records", description=__doc__)
    parser.add_argument("name", choices=EXPERIMENTS)
    parser.add_argument("--folder", default=None, help=f"output folder (default {STORE})")
    parser.add_argument("--workers", type=int, default=1, help="processes for the runs")
    parser.add_argument("--shard", type=_shard, default=None, help="K/N: run one shard only")
    args = parser.parse_args(argv)
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    if args.shard is not None:
        _COMPUTE[args.name](True, args.shard)
        return None
    command = "python -m flatlib.records " + shlex.join(sys.argv[1:] if argv is None else argv)
    made = provenance(command)
    if args.workers > 1:
        _run_workers(args.name, args.workers)
    tables, data, protocol = compute(args.name)
    path = save(args.name, tables, data, command, args.folder, made, protocol)
    print(describe(load(args.name, path.parent)))
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return path
