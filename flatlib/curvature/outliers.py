"""Counting the outliers of a Hessian spectrum: gap, ratio and elbow rules (Sagun et al., App. A).

Sagun et al. find that the Hessian of a trained classifier has a bulk of eigenvalues near zero
and a few large outliers, about as many as there are classes. To count the outliers, App. A
(Table 1) uses three cut-off rules, which this module defines precisely. All three look at the
same eigenvalues: the ``window`` largest *positive* eigenvalues, sorted in descending order,
``lambda_1 >= lambda_2 >= ... >= lambda_m > 0`` (``m = min(window, number of positive
eigenvalues)``). Negative eigenvalues are never outliers of the right edge, and the window
keeps the comparison from being swamped by the thousands of near-zero bulk values.
Each rule returns a count ``c`` in ``1, ..., m - 1``: "the top ``c`` eigenvalues are outliers".

* **Largest consecutive gap**: ``c = argmax_i (lambda_i - lambda_{i+1})``.
* **Largest consecutive ratio**: ``c = argmax_i lambda_i / lambda_{i+1}``.
* **Elbow** (the "kneedle" rule for a scree plot): rescale the points ``(i, lambda_i)`` to the
  unit square, ``x_i = (i - 1) / (m - 1)`` and ``y_i = (lambda_i - lambda_m) / (lambda_1 -
  lambda_m)``; the elbow is the point farthest *below* the chord from the first point to the
  last, ``argmax_i (1 - x_i - y_i)``, and ``c`` is the number of eigenvalues before it. For
  ``c`` large eigenvalues followed by a flat bulk, the elbow is the first bulk eigenvalue,
  ``lambda_{c+1}``.

The paper does not define its rules beyond their names (its heuristic also uses a threshold,
the "cutoff" column of Table 1), so counts here can differ from the paper's by one where the
rule's convention matters: this is the "off by one" the table marks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flatlib._validation import as_float_array, as_int

__all__ = ["METHODS", "count_elbow", "count_gap", "count_outliers", "count_ratio", "top_positive"]

METHODS: tuple[str, ...] = ("gap", "ratio", "elbow")
"""The three cut-off rules of Table 1, in the paper's column order."""


def top_positive(eigenvalues: Any, window: int) -> np.ndarray:
    """The ``window`` largest positive eigenvalues, descending (the values every rule uses).

    Raises ``ValueError`` when fewer than two eigenvalues are positive.
    """
    lam = as_float_array(eigenvalues, "eigenvalues", ndim=1)
    window = as_int(window, "window", minimum=2)
    pos = np.sort(lam[lam > 0])[::-1][:window]
    if pos.size < 2:
        raise ValueError("eigenvalues must hold at least two positive values to count outliers")
    return pos


def count_gap(eigenvalues: Any, window: int = 100) -> int:
    """Outliers by the largest consecutive gap ``lambda_i - lambda_{i+1}`` (Table 1, "gap")."""
    lam = top_positive(eigenvalues, window)
    return int(np.argmax(lam[:-1] - lam[1:])) + 1


def count_ratio(eigenvalues: Any, window: int = 100) -> int:
    """Outliers by the largest consecutive ratio ``lambda_i / lambda_{i+1}`` (Table 1, "ratio")."""
    lam = top_positive(eigenvalues, window)
    return int(np.argmax(lam[:-1] / lam[1:])) + 1


def count_elbow(eigenvalues: Any, window: int = 100) -> int:
    """Outliers by the elbow of the scree plot (Table 1, "heur"); see the module docstring."""
    lam = top_positive(eigenvalues, window)
    m = lam.size
    if lam[0] == lam[-1]:
        return 1
    x = np.arange(m) / (m - 1)
    y = (lam - lam[-1]) / (lam[0] - lam[-1])
    dist = 1.0 - x - y
    return max(1, int(np.argmax(dist[1:])) + 1)


def count_outliers(eigenvalues: Any, window: int = 100) -> dict[str, int]:
    """All three counts, ``{"gap": ..., "ratio": ..., "elbow": ...}`` (one row of Table 1)."""
    return {
        "gap": count_gap(eigenvalues, window),
        "ratio": count_ratio(eigenvalues, window),
        "elbow": count_elbow(eigenvalues, window),
    }
