"""The chapters' experiments: configuration grids, cached resumable runs and their analysis, one
module per chapter slug; no drawing.

Imports from :mod:`flatlib.nets`, :mod:`flatlib.curvature` and :mod:`flatlib.theory`.
"""

from flatlib._lazy import attach

__all__ = [
    "batch_basins", "edge_of_stability", "flat_vs_sharp", "hessian_spectrum", "non_white",
    "step_size_depth", "sweep",
]  # fmt: skip

__getattr__ = attach(__name__, __all__)
