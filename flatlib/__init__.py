"""flatlib: the shared library of the Flat Minima book.

Sub-packages by layer; each imports only from the layers listed above it:

* :mod:`flatlib.config` - quick/full mode, device, seeds, result and data folders;
* :mod:`flatlib.theory` - the paper's mathematics in NumPy: stability of GD (Sec. 2), scalar
  networks (Sec. 3), deep linear networks and their flattest minima (Secs. 4-5, App. IV-IX.1),
  rescaling (Dinh et al.) and non-white inputs (Sec. 5);
* :mod:`flatlib.curvature` - the engine for any torch model: Hessian-vector products, Lanczos,
  Gauss-Newton split, outlier counts; it knows no chapter;
* :mod:`flatlib.nets` - MNIST and cluster data, the fully connected models, training;
* :mod:`flatlib.experiments` - the chapters' experiments, cached and resumable, one module per
  chapter slug;
* :mod:`flatlib.records` - paper-scale results committed with their provenance, and the
  command that makes them (``python -m flatlib.records NAME``);
* :mod:`flatlib.figures` - drawing and slider UIs only; nothing else in flatlib imports it.

Sub-packages other than ``config`` are imported on first access, so ``import flatlib``
stays fast and does not load PyTorch.
"""

from __future__ import annotations

from flatlib import config
from flatlib._lazy import attach

__version__ = "0.1.0"
__all__ = ["config", "curvature", "experiments", "figures", "nets", "records", "theory"]

__getattr__ = attach(__name__, [n for n in __all__ if n != "config"])
