"""The curvature engine for any torch model: Hessian-vector products, Lanczos, the Gauss-Newton
split and outlier counts.

It knows no chapter; it imports only :mod:`flatlib.config` and the argument checks.
"""

from flatlib._lazy import attach

__all__ = ["gauss_newton", "hessian", "lanczos", "outliers"]

__getattr__ = attach(__name__, __all__)
