"""Resumable experiment grids: one call runs a grid, caches every run, and resumes.

The step-size/depth maps of Mulayoff & Michaeli (ICML 2020, Sec. 6, Figs. 4 and 5) train
one network per ``(depth m, step size eta)`` tile, and Fig. 6/7 (App. IX.2) compare several
seeds of SGD and Adam. :func:`run_grid` runs such a grid of configurations with a progress
bar and stores every finished run on disk as soon as it finishes, so a chapter can be
re-executed (or an interrupted full-scale sweep restarted) without redoing finished work.

Storage format
--------------
Runs of grid ``name`` live in ``<cache_dir>/<name>/`` (default
``flatlib.config.cache_dir() / "sweeps" / name``). A run is keyed by
:func:`config_key`, the first 16 hex digits of the SHA-256 of its configuration as canonical
JSON (sorted keys), and stored as

* ``<key>.json``: ``{"key", "config", "status", "error", "seconds", "scalars", "arrays"}``,
* ``<key>.npz``: the arrays the run returned (only if it returned any), no pickle.

Each file is written to a temporary file in the same directory and moved into place with
``os.replace`` (atomic on POSIX and Windows); the NPZ first, the JSON last, so a JSON record
on disk means the run is complete. Temporary files (``.*.tmp``) and records that do not
parse are ignored and the run is done again.

The run function
----------------
``run_fn(config) -> dict``. Values that are NumPy arrays or torch tensors go to the NPZ; all
other values must be JSON-serialisable scalars/strings/lists. A ``"status"`` entry becomes
the run's status (default ``"ok"``). If ``run_fn`` raises an ``Exception``, the run is
recorded with status ``"error"`` and the message (not retried on the next call unless
``retry_errors=True``); ``KeyboardInterrupt`` stops the grid, keeping finished runs.

Training runs report one of :data:`flatlib.nets.training.STATUSES`. Runs stored before that
vocabulary said ``"finished"`` (classifiers) or ``"unsettled"`` (edge of stability) for
what is now ``"not converged"``; loading a stored run renames those labels
(:data:`RENAMED_STATUSES`), so old caches keep loading without being rerun.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from flatlib._validation import as_float, as_int
from flatlib.config import resolve_mode

__all__ = [
    "FULL_DEPTHS",
    "FULL_LRS",
    "EPOCH_CAP",
    "NOISE_STD",
    "QUICK_SHARPNESS_SAMPLES",
    "TARGET_LOSS",
    "SECTION_POINTS",
    "QUICK_DEPTHS",
    "QUICK_LRS",
    "RENAMED_STATUSES",
    "config_key",
    "denoising_config",
    "flat_vs_sharp_grid",
    "atomic_write",
    "load_run",
    "run_data",
    "run_denoising",
    "run_dtype",
    "run_grid",
    "sharpness_data",
    "typical_norm",
    "step_size_depth_grid",
    "sweep_dir",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_RESERVED = {"key", "status", "error", "seconds"}

QUICK_DEPTHS: tuple[int, ...] = (2, 4, 6, 8)
QUICK_LRS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
"""Default quick-mode grid of Figs. 4/5 (196-pixel digits, CPU)."""
FULL_DEPTHS: tuple[int, ...] = (2, 4, 6, 8, 10, 12, 14, 16, 18, 20)
FULL_LRS: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.25, 2.5, 3.0, 4.0)
"""Default full-mode grid (784-pixel MNIST, GPU); the paper's Fig. 5(b) uses m=18, eta=2.25."""
NOISE_STD: dict[str, float] = {"quick": 0.625, "full": 1.25}
"""The noise standard deviation of each mode. Full mode uses the paper's 1.25 on 28x28 digits,
quick mode 1.25 / 2 = 0.625 on 14x14 digits: the std of the paper's noise after averaging
2x2 pixels."""
TARGET_LOSS: dict[str, float] = {"quick": 0.0285, "full": 0.030}
"""The absolute training-loss target that counts a run as converged (``nn.MSELoss``).

Each lies between the best linear denoiser of its scale (the population Wiener filter:
0.0291 on 14x14 digits with noise 0.625, 0.0399 on 28x28 with 1.25) and the losses the
paper's networks reached (0.0269-0.0274 at 28x28), so a converged network denoises better
than any linear map (:func:`flatlib.experiments.flat_vs_sharp.linear_denoiser_loss`)."""
EPOCH_CAP: dict[str, int] = {"quick": 12, "full": 40}
"""Epochs (of 60,000 pairs, 600 steps each) a run may take to reach :data:`TARGET_LOSS`."""
QUICK_SHARPNESS_SAMPLES = 5000
"""Training pairs on which quick mode measures ``lambda_max`` (all of them in full mode);
chapter 10 compares the two on one run."""
SECTION_POINTS = 21
"""Radii of the top-eigenvector cross-section that ``section_radius > 0`` records."""
RENAMED_STATUSES: dict[str, str] = {"finished": "not converged", "unsettled": "not converged"}
"""Old run statuses and their names in :data:`flatlib.nets.training.STATUSES`, applied to
every stored run when it is loaded (runs cached before the trainers shared one vocabulary)."""


# --------------------------------------------------------------------------- the store


def _canonical(config: Mapping[str, Any]) -> str:
    if not isinstance(config, Mapping):
        raise TypeError(f"each config must be a dict, got {type(config).__name__}")
    try:
        return json.dumps(dict(config), sort_keys=True, separators=(",", ":"), allow_nan=True)
    except TypeError as exc:
        raise TypeError(
            f"config must be JSON-serialisable (str, int, float, bool, None, lists, "
            f"dicts): {exc}; config={config!r}"
        ) from None


def config_key(config: Mapping[str, Any]) -> str:
    """Stable 16-hex-digit key of a configuration (SHA-256 of its canonical JSON)."""
    return hashlib.sha256(_canonical(config).encode()).hexdigest()[:16]


def sweep_dir(name: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The directory holding the runs of grid ``name`` (created if missing)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"name must be a non-empty string of letters, digits, '_', '-', '.', got {name!r}"
        )
    if cache_dir is None:
        from flatlib.config import cache_dir as default_cache

        root = default_cache() / "sweeps"
    else:
        root = Path(cache_dir).expanduser()
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Write via ``write(file)`` to a temp file next to ``path``, then ``os.replace`` it.

    Readers see either the old file or the complete new one, never a half-written file (the
    run store and :mod:`flatlib.records` rely on this to survive interruptions).
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _jsonable(value: Any, where: str) -> Any:
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, where) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v, where) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(
        f"{where}: value of type {type(value).__name__} is neither an array nor JSON-serialisable"
    )


def _split_result(result: Any) -> tuple[str, dict[str, Any], dict[str, np.ndarray]]:
    if result is None:
        result = {}
    if not isinstance(result, Mapping):
        raise TypeError(f"run_fn must return a dict, got {type(result).__name__}")
    status = "ok"
    scalars: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for k, v in result.items():
        if not isinstance(k, str):
            raise TypeError(f"run_fn result keys must be str, got {k!r}")
        if k == "status":
            status = str(v)
            continue
        if k in _RESERVED:
            raise ValueError(f"run_fn result key {k!r} is reserved")
        if type(v).__module__.startswith("torch") and hasattr(v, "detach"):
            v = v.detach().cpu().numpy()
        if isinstance(v, np.ndarray):
            if v.dtype == object:
                raise TypeError(
                    f"array {k!r} has dtype object, which NPZ cannot store without pickle"
                )
            arrays[k] = v
        else:
            scalars[k] = _jsonable(v, f"result[{k!r}]")
    return status, scalars, arrays


def _store(
    folder: Path,
    key: str,
    config: Mapping[str, Any],
    status: str,
    scalars: dict[str, Any],
    arrays: dict[str, np.ndarray],
    error: str | None,
    seconds: float,
) -> dict[str, Any]:
    if arrays:
        atomic_write(folder / f"{key}.npz", lambda f: np.savez(f, **arrays))
    record = {
        "key": key,
        "config": dict(config),
        "status": status,
        "error": error,
        "seconds": seconds,
        "scalars": scalars,
        "arrays": sorted(arrays),
    }
    text = json.dumps(record, indent=1, sort_keys=True, allow_nan=True)
    atomic_write(folder / f"{key}.json", lambda f: f.write(text.encode()))
    return record


def _load(folder: Path, key: str) -> dict[str, Any] | None:
    """The finished run ``key`` (its record, arrays loaded, old statuses renamed by
    :data:`RENAMED_STATUSES`) or ``None`` if absent/corrupt."""
    path = folder / f"{key}.json"
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict) or record.get("key") != key or "status" not in record:
            return None
        record["status"] = RENAMED_STATUSES.get(record["status"], record["status"])
        arrays: dict[str, np.ndarray] = {}
        if record.get("arrays"):
            with np.load(folder / f"{key}.npz", allow_pickle=False) as npz:
                arrays = {a: npz[a] for a in record["arrays"]}
    except (OSError, ValueError, KeyError, EOFError, TypeError):
        return None
    except Exception:  # noqa: BLE001 - e.g. zipfile.BadZipFile: treat as not finished
        return None
    record["_arrays"] = arrays
    return record


def load_run(
    name: str, config: Mapping[str, Any], cache_dir: str | os.PathLike[str] | None = None
) -> dict[str, Any] | None:
    """A finished run of grid ``name`` as a flat dict (config, status, scalars, arrays), or None."""
    record = _load(sweep_dir(name, cache_dir), config_key(config))
    return None if record is None else _row(record)


def _row(record: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = dict(record["config"])
    row.update(record.get("scalars") or {})
    row.update(record["_arrays"])
    row.update(
        key=record["key"],
        status=record["status"],
        error=record.get("error"),
        seconds=record.get("seconds"),
    )
    return row


def run_grid(
    name: str,
    grid: Iterable[Mapping[str, Any]],
    run_fn: Callable[[dict[str, Any]], Mapping[str, Any] | None],
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    retry_errors: bool = False,
    shard: tuple[int, int] | None = None,
):
    """Run every configuration of ``grid`` not yet on disk and return all runs as a DataFrame.

    Parameters
    ----------
    name:
        The grid's name, a directory under the cache (see the module docstring).
    grid:
        JSON-serialisable dict configurations, e.g. :func:`step_size_depth_grid`. Duplicates
        run once.
    run_fn:
        ``run_fn(config) -> dict`` (see the module docstring), e.g. :func:`run_denoising`.
    cache_dir:
        Root of the store (default ``flatlib.config.cache_dir() / "sweeps"``).
    progress:
        Show a ``tqdm.auto`` progress bar (counting runs already on disk as done).
    retry_errors:
        Run again the configurations whose stored status is ``"error"``.
    shard:
        ``(k, n)``: handle only the configurations at positions ``k, k + n, k + 2n, ...`` of
        ``grid``, so that ``n`` processes sharing one cache split a grid between them; a
        later call without ``shard`` then finds every run on disk.

    Returns
    -------
    pandas.DataFrame
        One row per configuration (of the shard), in grid order: the config's keys, the
        run's scalars, its arrays (NumPy arrays in object cells), and ``key``, ``status``,
        ``error``, ``seconds``.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    if not callable(run_fn):
        raise TypeError(f"run_fn must be callable, got {type(run_fn).__name__}")
    if isinstance(grid, Mapping) or isinstance(grid, (str, bytes)):
        raise TypeError("grid must be a list of dict configurations")
    configs = [dict(c) if isinstance(c, Mapping) else c for c in grid]
    if shard is not None:
        if not (isinstance(shard, tuple) and len(shard) == 2):
            raise TypeError(f"shard must be a pair (k, n) of ints, got {shard!r}")
        n = as_int(shard[1], "shard[1]", minimum=1)
        k = as_int(shard[0], "shard[0]", minimum=0)
        if k >= n:
            raise ValueError(f"shard must have 0 <= k < n, got {shard!r}")
        configs = configs[k::n]
    keys = [config_key(c) for c in configs]
    folder = sweep_dir(name, cache_dir)

    records: dict[str, dict[str, Any]] = {}
    todo: list[tuple[str, dict[str, Any]]] = []
    for key, config in zip(keys, configs, strict=True):
        if key in records or any(k == key for k, _ in todo):
            continue
        record = _load(folder, key)
        if record is not None and not (retry_errors and record["status"] == "error"):
            records[key] = record
        else:
            todo.append((key, config))

    unique = len(records) + len(todo)
    bar = tqdm(total=unique, initial=len(records), desc=name, disable=not progress, unit="run")
    try:
        for key, config in todo:
            bar.set_postfix_str(_short(config), refresh=False)
            start = time.perf_counter()
            error = None
            try:
                status, scalars, arrays = _split_result(run_fn(dict(config)))
            except Exception as exc:  # recorded, never fatal (KeyboardInterrupt propagates)
                status, scalars, arrays = "error", {}, {}
                error = f"{type(exc).__name__}: {exc}"
                scalars["traceback"] = traceback.format_exc(limit=8)
            seconds = time.perf_counter() - start
            record = _store(folder, key, config, status, scalars, arrays, error, seconds)
            record["_arrays"] = arrays
            records[key] = record
            bar.update(1)
    finally:
        bar.close()
    return pd.DataFrame([_row(records[k]) for k in keys])


def _short(config: Mapping[str, Any], limit: int = 60) -> str:
    text = ", ".join(f"{k}={v}" for k, v in config.items() if not isinstance(v, (dict, list)))
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ----------------------------------------------------------- the denoising experiments


def denoising_config(mode: str | None = None, **overrides: Any) -> dict[str, Any]:
    """One denoising run's configuration (Sec. 6, App. IX.2), quick or full scale.

    The paper's protocol at both scales: all of MNIST (:func:`flatlib.nets.data.load_mnist`,
    60,000 training and 10,000 validation pairs; the 5,000 offline digits only as the last
    fallback, :func:`flatlib.nets.data.full_scale_source`), bias-free square ReLU layers, plain SGD
    with batch 100, noise redrawn for every minibatch (``noise="fresh"``, see
    :func:`flatlib.nets.training.train`), float32, and a run counts as converged when its full
    training loss reaches the absolute target :data:`TARGET_LOSS` within the epoch cap
    :data:`EPOCH_CAP` (checked once per epoch).

    * Quick (CPU, minutes): clean 28x28 digits pooled 2x2 to 14x14 (196 dims) with noise std
      :data:`NOISE_STD` ``["quick"]`` = 0.625, which is what 2x2 pooling makes of the paper's noisy
      28x28 image; ``lambda_max`` on the first :data:`QUICK_SHARPNESS_SAMPLES` training pairs.
    * Full (the paper): 28x28 digits (784 dims), noise std 1.25, ``lambda_max`` on all
      training pairs.

    ``sharpness_every = k > 0`` also measures the training loss and ``lambda_max`` every ``k``
    steps along the run; ``section_radius = R > 0`` records the loss along the top Hessian
    eigenvector at 21 radii in ``[-R, R]`` (chapter 9's tile slider). ``bias=True`` and
    ``noise="fixed"`` are the ablations. Any key can be overridden.
    """
    from flatlib.nets.data import FULL_SPLITS, full_scale_source

    value = resolve_mode(mode)
    full = value == "full"
    source = full_scale_source()
    n_train, n_val = FULL_SPLITS[source]
    config: dict[str, Any] = {
        "experiment": "denoising",
        "version": 2,
        "mode": value,
        "depth": 6,
        "init": "identity",
        "optimizer": "sgd",
        "lr": 0.5,
        "betas": [0.8, 0.99],
        "batch_size": 100,
        "epochs": EPOCH_CAP[value],
        "target_loss": TARGET_LOSS[value],
        "check_every": 0,
        "check_margin": 0.0,
        "seed": 0,
        "size": 28 if full else 14,
        "n_train": n_train,
        "n_val": n_val,
        "noise_std": NOISE_STD[value],
        "noise": "fresh",
        "data_seed": 0,
        "source": source,
        "dtype": "float32",
        "bias": False,
        "sharpness_method": "lanczos",
        "sharpness_tol": 1e-4,
        "sharpness_samples": 0 if full else QUICK_SHARPNESS_SAMPLES,
        "sharpness_every": 0,
        "section_radius": 0.0,
        "gains": False,
        "gain_starts": 100,
        "gain_steps": 200,
        "save_params": False,
    }
    unknown = set(overrides) - set(config)
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}; known: {sorted(config)}")
    config.update(overrides)
    return config


def step_size_depth_grid(
    depths: Iterable[int] | None = None,
    lrs: Iterable[float] | None = None,
    init: str = "identity",
    mode: str | None = None,
    **overrides: Any,
) -> list[dict[str, Any]]:
    """The ``(depth, step size)`` grid of Fig. 4 (``init="identity"``) or Fig. 5 (``"he"``).

    One SGD run per pair, all other settings from :func:`denoising_config` (quick: 196 dims;
    full: 784 dims; both 60,000 training pairs, trained to the mode's target loss within its
    epoch cap). ``depths``/``lrs`` default to
    ``QUICK_DEPTHS``/``QUICK_LRS`` or ``FULL_DEPTHS``/``FULL_LRS``. Use with
    ``run_grid(name, grid, run_denoising)``.
    """
    if init not in ("identity", "he"):
        raise ValueError(f"init must be 'identity' (Fig. 4) or 'he' (Fig. 5), got {init!r}")
    full = resolve_mode(mode) == "full"
    depths = list(depths) if depths is not None else list(FULL_DEPTHS if full else QUICK_DEPTHS)
    lrs = list(lrs) if lrs is not None else list(FULL_LRS if full else QUICK_LRS)
    if not depths or not lrs:
        raise ValueError("depths and lrs must not be empty")
    depths = [as_int(d, "depths[i]", minimum=1) for d in depths]
    out = []
    for m in depths:
        for lr in lrs:
            if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
                raise ValueError(f"lrs must hold positive numbers, got {lr!r}")
            out.append(denoising_config(mode, depth=m, lr=float(lr), init=init, **overrides))
    return out


def flat_vs_sharp_grid(
    seeds: Iterable[int] = (0, 1, 2, 3), mode: str | None = None, **overrides: Any
) -> list[dict[str, Any]]:
    """App. IX.2's two methods on a six-layer net, one run per seed (Figs. 6, 7).

    Method 1: SGD, ``eta = 1/2``, no momentum; Method 2: Adam, ``eta = 3e-4``,
    ``betas = (0.8, 0.99)``; batch 100, He initialisation ("random initializations"),
    intermediate gains measured and final weights saved (for the interpolation of Fig. 7).
    """
    base = {"depth": 6, "init": "he", "gains": True, "save_params": True}
    base.update(overrides)
    out = []
    for seed in seeds:
        for opt, lr in (("sgd", 0.5), ("adam", 3e-4)):
            cfg = {**base, "optimizer": opt, "lr": lr, "seed": as_int(seed, "seed", 0)}
            out.append(denoising_config(mode, **cfg))
    return out


@functools.lru_cache(maxsize=4)
def _cached_data(n_train: int, n_val: int, size: int, noise_std: float, seed: int, source: str):
    from flatlib.nets.data import load_digits_denoising

    return load_digits_denoising(
        n_train, n_val, size=size, noise_std=noise_std, seed=seed, source=source
    )


def run_dtype(config: Mapping[str, Any]) -> Any:
    """The ``torch.dtype`` named by ``config["dtype"]`` (``"float64"`` or ``"float32"``)."""
    import torch

    dtype = {"float64": torch.float64, "float32": torch.float32}.get(config["dtype"])
    if dtype is None:
        raise ValueError(f"dtype must be 'float64' or 'float32', got {config['dtype']!r}")
    return dtype


def run_data(config: Mapping[str, Any]) -> Any:
    """The :class:`flatlib.nets.data.DenoisingData` a run of ``config`` trains on.

    Loaded once per process for each data setting (``n_train``, ``n_val``, ``size``,
    ``noise_std``, ``data_seed``, ``source``) and moved to the current device in the run's
    dtype, so analyses of a finished run (Fig. 7) see exactly its training set.
    """
    from flatlib.config import device

    data = _cached_data(
        int(config["n_train"]),
        int(config["n_val"]),
        int(config["size"]),
        float(config["noise_std"]),
        int(config["data_seed"]),
        str(config["source"]),
    )
    return data.to(device(), run_dtype(config))


def sharpness_data(config: Mapping[str, Any], data: Any) -> Any:
    """The training pairs on which a run's ``lambda_max`` is measured (stored noise draw).

    All of ``data``'s training pairs when ``config["sharpness_samples"]`` is 0 (full mode),
    else its first ``sharpness_samples`` pairs (quick mode; the pairs are already in a random
    order). The validation split is dropped.
    """
    n = as_int(config["sharpness_samples"], "sharpness_samples", minimum=0)
    if n == 0 or n >= data.n_train:
        n = data.n_train
    return SimpleNamespace(x_train=data.x_train[:n], y_train=data.y_train[:n], n_train=n)


def typical_norm(data: Any) -> float:
    """The median norm of the noisy training inputs: the radius of Fig. 6's gain search.

    A bias-free ReLU network is positively homogeneous, so its gains do not depend on the
    radius; with biases (the ablation) they do, and the data's own scale is the one that
    matters.
    """
    return float(data.x_train.norm(dim=1).median())


def run_denoising(config: Mapping[str, Any]) -> dict[str, Any]:
    """Train one denoiser described by ``config`` and measure it (the ``run_fn`` of Figs. 4-7).

    Builds ``flatlib.nets.models.mlp([d] * (depth + 1), "relu", init, bias, seed)``, trains it with
    :func:`flatlib.nets.training.train`, and, only if the run converged, measures its sharpness
    (:func:`flatlib.nets.training.sharpness`) and, if ``config["gains"]``, its intermediate gains.
    Returns scalars (``status``, losses, ``sharpness`` (NaN unless converged),
    ``stability_limit = 2 / lr``, ``data_source``) and arrays (``train_loss_curve``,
    ``curve_steps``, optionally ``max_gains``/``top_signal_gains``, ``params`` and the top
    Hessian eigenvector ``top_eigenvector`` (with ``save_params``), and with
    ``sharpness_every > 0`` the checkpoints ``checkpoint_steps``, ``checkpoint_train_loss``
    (full training MSE) and ``checkpoint_sharpness`` (``lambda_max``), and with
    ``section_radius > 0`` on a converged run ``section_radii`` and ``section_loss``).
    """

    from torch import nn

    from flatlib.curvature.hessian import HessianOperator, cross_section, get_vector
    from flatlib.nets.models import mlp
    from flatlib.nets.training import dataset_loss, intermediate_gains, sharpness, train

    cfg = denoising_config(config.get("mode"), **{k: v for k, v in config.items() if k != "mode"})
    dtype = run_dtype(cfg)
    data = run_data(cfg)
    d = data.dim
    depth = as_int(cfg["depth"], "depth", minimum=1)
    model = mlp(
        [d] * (depth + 1),
        "relu",
        cfg["init"],
        bias=bool(cfg["bias"]),
        seed=int(cfg["seed"]),
        dtype=dtype,
    )
    every = as_int(cfg["sharpness_every"], "sharpness_every", minimum=0)
    checkpoints: list[tuple[int, float, float]] = []
    measured = sharpness_data(cfg, data)

    def measure(net: Any, step: int) -> None:
        loss = dataset_loss(net, data.x_train, data.y_train)
        lam = math.nan  # a diverging run is recorded, not measured
        if math.isfinite(loss):
            lam = sharpness(net, measured, method=cfg["sharpness_method"], tol=cfg["sharpness_tol"])
        checkpoints.append((step, loss, float(lam)))

    result = train(
        model,
        data,
        optimizer=cfg["optimizer"],
        lr=cfg["lr"],
        batch_size=cfg["batch_size"],
        epochs=cfg["epochs"],
        seed=int(cfg["seed"]),
        betas=tuple(cfg["betas"]),
        noise=cfg["noise"],
        checkpoint=measure if every else None,
        checkpoint_every=every or None,
        target_loss=cfg["target_loss"],
        check_every=as_int(cfg["check_every"], "check_every", minimum=0) or None,
        check_margin=cfg["check_margin"],
    )
    out: dict[str, Any] = result.scalars()
    if every:
        table = np.asarray(checkpoints, dtype=np.float64).reshape(-1, 3)
        out.update(
            checkpoint_steps=table[:, 0].astype(np.int64),
            checkpoint_train_loss=table[:, 1],
            checkpoint_sharpness=table[:, 2],
        )
    out.update(
        train_loss_curve=result.train_loss_curve,
        curve_steps=result.curve_steps,
        check_steps=result.check_steps,
        check_loss=result.check_loss,
        sharpness_samples=measured.n_train,
        stability_limit=2.0 / float(cfg["lr"]),
        data_source=data.source,
        data_description=data.description,
        sharpness=math.nan,
    )
    if result.converged:
        start = time.perf_counter()
        top = sharpness(
            model, measured, method=cfg["sharpness_method"], tol=cfg["sharpness_tol"],
            return_result=True,
        )  # fmt: skip
        out["sharpness"] = float(top.sharpness)
        out["sharpness_seconds"] = time.perf_counter() - start
        if cfg["save_params"]:
            out["top_eigenvector"] = np.asarray(top.eigenvectors[0], dtype=np.float32)
        radius = as_float(cfg["section_radius"], "section_radius")
        if radius > 0:
            radii = np.linspace(-radius, radius, SECTION_POINTS)
            out["section_radii"] = radii
            bound = HessianOperator(model, nn.MSELoss(), measured.x_train, measured.y_train)
            out["section_loss"] = cross_section(bound, top.eigenvectors[0], radii)
        if cfg["gains"]:
            g = intermediate_gains(
                model,
                d,
                n_starts=int(cfg["gain_starts"]),
                steps=int(cfg["gain_steps"]),
                seed=int(cfg["seed"]),
                input_norm=typical_norm(data),
            )
            out.update(
                max_gains=g.max_gains,
                top_signal_gains=g.top_signal_gains,
                gain_input_norm=g.input_norm,
            )
    if cfg["save_params"] and result.status != "diverged":
        out["params"] = get_vector(model).detach().cpu().numpy()
    return out
