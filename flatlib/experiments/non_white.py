"""Chapter 14's experiment: the Sec. 5 conjecture for non-white inputs over a grid of instances.

Each instance is a random ``(T, Sigma_x)`` (:func:`flatlib.theory.non_white.random_instance`);
its row is :class:`flatlib.theory.non_white.ConjectureGap`. The grid runs through
:func:`flatlib.experiments.sweep.run_grid`, cached and resumable. :func:`slider_data` computes
the frames of the chapter's slider, one ``2 x 2`` instance per condition number and depth.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from flatlib import config
from flatlib.experiments.sweep import run_grid
from flatlib.theory import linear, non_white
from flatlib.theory.non_white import conjecture_gap, random_instance

__all__ = [
    "FrameData",
    "conjecture_grid",
    "conjecture_table",
    "run_instance",
    "slider_data",
    "slider_table",
]


def run_instance(config: dict[str, Any]) -> dict[str, Any]:
    """One row of the conjecture table, for :func:`flatlib.experiments.sweep.run_grid`.

    ``config`` holds ``d_x``, ``d_y``, ``m``, ``condition``, ``seed`` and optionally
    ``n_starts`` (default 3); the instance is :func:`flatlib.theory.non_white.random_instance`.
    Returns the scalars of :class:`flatlib.theory.non_white.ConjectureGap` and two properties
    of the flattest minimum found: ``second_ratio``, ``lambda_2 / lambda_1`` of
    ``2 Phi^T Phi`` there (below 1: a simple top eigenvalue), and ``term_spread``, the
    spread ``(max - min) / mean`` of the ``m`` terms of eq. (21) at that minimum and the best
    ``B`` (:func:`flatlib.theory.non_white.layer_terms`; 0 when Lemma 4 is tight).
    """
    sigma, t = random_instance(config["d_x"], config["d_y"], config["condition"], config["seed"])
    res = conjecture_gap(
        t, config["m"], sigma, n_starts=config.get("n_starts", 3), seed=config["seed"]
    )
    root = linear.sqrt_covariance(sigma, t.shape[1])
    root = np.eye(t.shape[1]) if root is None else root
    evals = np.linalg.eigvalsh(linear.phi_gram(*linear.layer_blocks(res.weights, root)))
    terms = non_white.layer_terms(res.weights, res.B, sigma)
    return {
        "second_ratio": float(evals[-2] / evals[-1]),
        "term_spread": float(np.ptp(terms) / terms.mean()),
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
    2-6, ``condition`` up to ``1e6``, five seeds and five starts. ``version`` 2 rows also
    hold ``second_ratio`` and ``term_spread`` (:func:`run_instance`).
    """
    full = config.is_full() if full is None else bool(full)
    if full:
        shapes = [(2, 2), (3, 3), (4, 4), (2, 3), (3, 2), (2, 4), (4, 2)]
        depths, conditions, seeds, n_starts = (2, 3, 4, 5, 6), (1, 10, 1e2, 1e3, 1e4, 1e6), 5, 5
    else:
        shapes = [(2, 2), (3, 3), (2, 3), (3, 2)]
        depths, conditions, seeds, n_starts = (2, 3, 4), (1, 10, 1e2, 1e4), 2, 3
    return [
        {
            "d_x": dx,
            "d_y": dy,
            "m": m,
            "condition": float(k),
            "seed": s,
            "n_starts": n_starts,
            "version": 2,
        }
        for (dx, dy), m, k, s in itertools.product(shapes, depths, conditions, range(seeds))
    ]


def conjecture_table(grid: Sequence[dict[str, Any]] | None = None, progress: bool = True):
    """Run :func:`run_instance` over ``grid`` (default :func:`conjecture_grid`), cached on disk.

    Uses :func:`flatlib.experiments.sweep.run_grid` (grid name ``non_white_conjecture``) and returns
    its
    ``pandas.DataFrame``: one row per instance with the config and the scalars of
    :class:`flatlib.theory.non_white.ConjectureGap`.
    """
    return run_grid(
        "non_white_conjecture",
        conjecture_grid() if grid is None else list(grid),
        run_instance,
        progress=progress,
    )


# ------------------------------------------------------------------------- the slider of chapter 14


@dataclass(frozen=True)
class FrameData:
    """Precomputed numbers for one frame of :func:`flatlib.figures.non_white.conjecture_slider`.

    ``histories``: ``lambda_max`` along each descent (:func:`flatlib.theory.non_white.descend`);
    ``labels``: the starts' names; ``max_nu``; ``white_value`` (eq. 17 for the same ``T``);
    ``theta``, ``profile``: ``nu(a c^T)`` with the best ``a`` for ``c = (cos t, sin t)``, over
    the half-turn centred on the top eigenvector of ``Sigma_x`` (``c`` and ``-c`` are the same);
    ``theta_sigma``, ``theta_whitened``, ``theta_best``: the angles of the top eigenvector of
    ``Sigma_x``, of the top right singular vector of ``T Sigma^(1/2)`` and of the best ``c``.
    """

    histories: list[np.ndarray]
    labels: list[str]
    max_nu: float
    white_value: float
    theta: np.ndarray
    profile: np.ndarray
    theta_sigma: float
    theta_whitened: float
    theta_best: float


def _angle(c: np.ndarray, center: float = np.pi / 2) -> float:
    """Angle of the line spanned by a 2-vector, in ``[center - pi/2, center + pi/2)``."""
    return float(np.mod(np.arctan2(c[1], c[0]) - center + np.pi / 2, np.pi) + center - np.pi / 2)


def slider_data(
    conditions: Sequence[float] = (1, 3, 10, 100, 1000),
    depths: Sequence[int] = (1, 2, 3, 4, 8),
    seed: int = 11,
    n_starts: int = 3,
) -> dict[tuple[float, int], FrameData]:
    """Numbers for :func:`flatlib.figures.non_white.conjecture_slider`: one ``2 x 2`` instance
    per ``(condition, m)``.

    ``T`` and the eigenvectors of ``Sigma_x`` are the same for every frame
    (:func:`flatlib.theory.non_white.random_instance` with one ``seed``); only the condition
    number and the depth change.
    """
    out = {}
    for k in conditions:
        sigma, t = non_white.random_instance(2, 2, float(k), seed=seed)
        evals, evecs = np.linalg.eigh(sigma)
        root = (evecs * np.sqrt(evals)) @ evecs.T
        ts = t @ root
        center = _angle(evecs[:, -1])
        theta = np.linspace(center - np.pi / 2, center + np.pi / 2, 361)
        cs = np.stack([np.cos(theta), np.sin(theta)])
        for m in depths:
            left = non_white.flattest_minimum(t, m, sigma, n_starts=n_starts, seed=seed)
            right = non_white.max_nu(t, m, sigma, seed=seed)
            best_c = non_white.rank_one_nu(t, m, sigma, seed=seed).B
            profile = (
                2
                * m
                * (np.linalg.norm(ts @ cs, axis=0) ** (m - 1) * np.linalg.norm(root @ cs, axis=0))
                ** (2 / m)
            )
            out[(k, m)] = FrameData(
                histories=left.histories,
                labels=["eq. (27)", "whitened (27)"]
                + [f"random {i + 1}" for i in range(n_starts - 2)],
                max_nu=right.value,
                white_value=linear.flattest_sharpness(t, m),
                theta=theta,
                profile=profile,
                theta_sigma=center,
                theta_whitened=_angle(np.linalg.svd(ts)[2][0], center),
                theta_best=_angle(best_c[np.argmax(np.linalg.norm(best_c, axis=1))], center),
            )
    return out


def slider_table(frames: dict[tuple[float, int], FrameData]) -> pd.DataFrame:
    """The numbers behind the slider's frames (:func:`slider_data`), one row per frame.

    ``condition``, ``m``; ``gap`` (the flattest final ``lambda_max`` over the starts, divided
    by ``max nu``, minus 1); ``flattest / white`` (that ``lambda_max`` over Theorem 1's white
    value eq. 17 for the same ``T``); ``angle sigma-whitened`` (degrees between the top
    eigenvector of ``Sigma_x`` and the top right singular vector of ``T Sigma^(1/2)``, as
    lines, in ``[0, 90]``); ``best c from sigma`` and ``best c from whitened`` (degrees from
    the best ``c`` to each of them).
    """

    def between(a: float, b: float) -> float:
        d = abs(a - b) % np.pi
        return float(np.degrees(min(d, np.pi - d)))

    rows = []
    for (k, m), f in sorted(frames.items()):
        flattest = min(float(h[-1]) for h in f.histories)
        rows.append(
            {
                "condition": float(k),
                "m": int(m),
                "gap": float(flattest / f.max_nu - 1),
                "flattest / white": float(flattest / f.white_value),
                "angle sigma-whitened": between(f.theta_sigma, f.theta_whitened),
                "best c from sigma": between(f.theta_best, f.theta_sigma),
                "best c from whitened": between(f.theta_best, f.theta_whitened),
            }
        )
    return pd.DataFrame(rows)
