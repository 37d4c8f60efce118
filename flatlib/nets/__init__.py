"""Networks and their data: MNIST and cluster data, the fully connected models and the training
loops.

Imports only from :mod:`flatlib.curvature` below it.
"""

from flatlib._lazy import attach

__all__ = ["classifier", "clusters", "data", "models", "training"]

__getattr__ = attach(__name__, __all__)
