"""The paper's mathematics in NumPy float64: stability of GD (Sec. 2), scalar and deep linear
networks (Secs. 3-5), flattest minima, rescaling and non-white inputs.

Imports nothing from flatlib but :mod:`flatlib.config` and the argument checks.
"""

from flatlib._lazy import attach

__all__ = ["flattening", "linear", "non_white", "rescaling", "scalar", "stability"]

__getattr__ = attach(__name__, __all__)
