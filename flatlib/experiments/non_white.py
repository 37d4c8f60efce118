"""Chapter 14's experiment: the Sec. 5 conjecture for non-white inputs over a grid of instances.

Each instance is a random ``(T, Sigma_x)`` (:func:`flatlib.theory.non_white.random_instance`);
its row is :class:`flatlib.theory.non_white.ConjectureGap`. The grid runs through
:func:`flatlib.experiments.sweep.run_grid`, cached and resumable.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from flatlib import config
from flatlib.experiments.sweep import run_grid
from flatlib.theory.non_white import conjecture_gap, random_instance

__all__ = ["conjecture_grid", "conjecture_table", "run_instance"]


def run_instance(config: dict[str, Any]) -> dict[str, Any]:
    """One row of the conjecture table, for :func:`flatlib.experiments.sweep.run_grid`.

    ``config`` holds ``d_x``, ``d_y``, ``m``, ``condition``, ``seed`` and optionally
    ``n_starts`` (default 3); the instance is :func:`flatlib.theory.non_white.random_instance`. Returns the scalars of
    :class:`flatlib.theory.non_white.ConjectureGap`.
    """
    sigma, t = random_instance(config["d_x"], config["d_y"], config["condition"], config["seed"])
    res = conjecture_gap(
        t, config["m"], sigma, n_starts=config.get("n_starts", 3), seed=config["seed"]
    )
    return {
        "min_sharpness": res.min_sharpness,
        "max_nu": res.max_nu,
        "rank_one_nu": res.rank_one_nu,
        "gap": res.gap,
        "start_spread": res.start_spread,
        "b_rank_ratio": res.b_rank_ratio,
        "start_gap": res.start_gap,
        "alignment": res.alignment,
        "white_value": res.white_value,
        "whitened_sharpness": res.whitened_sharpness,
    }


def conjecture_grid(full: bool | None = None) -> list[dict[str, Any]]:
    """Instances of the conjecture table: shapes ``(d_x, d_y)``, depths, condition numbers, seeds.

    Quick mode: ``d <= 3``, ``m`` in 2-4, ``condition`` in ``{1, 10, 1e2, 1e4}``, two seeds
    (96 instances). Full mode (default: :func:`flatlib.config.is_full`): ``d <= 4``, ``m`` in
    2-6, ``condition`` up to ``1e6``, five seeds and five starts.
    """
    full = config.is_full() if full is None else bool(full)
    if full:
        shapes = [(2, 2), (3, 3), (4, 4), (2, 3), (3, 2), (2, 4), (4, 2)]
        depths, conditions, seeds, n_starts = (2, 3, 4, 5, 6), (1, 10, 1e2, 1e3, 1e4, 1e6), 5, 5
    else:
        shapes = [(2, 2), (3, 3), (2, 3), (3, 2)]
        depths, conditions, seeds, n_starts = (2, 3, 4), (1, 10, 1e2, 1e4), 2, 3
    return [
        {"d_x": dx, "d_y": dy, "m": m, "condition": float(k), "seed": s, "n_starts": n_starts}
        for (dx, dy), m, k, s in itertools.product(shapes, depths, conditions, range(seeds))
    ]


def conjecture_table(grid: Sequence[dict[str, Any]] | None = None, progress: bool = True):
    """Run :func:`run_instance` over ``grid`` (default :func:`conjecture_grid`), cached on disk.

    Uses :func:`flatlib.experiments.sweep.run_grid` (grid name ``non_white_conjecture``) and returns its
    ``pandas.DataFrame``: one row per instance with the config and the scalars of
    :class:`flatlib.theory.non_white.ConjectureGap`.
    """
    return run_grid(
        "non_white_conjecture",
        conjecture_grid() if grid is None else list(grid),
        run_instance,
        progress=progress,
    )
