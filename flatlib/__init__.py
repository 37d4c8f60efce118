"""flatlib: the shared library of the Flat Minima book.

Submodules (each named after a concept of Mulayoff & Michaeli, ICML 2020):

* :mod:`flatlib.config` - quick/full mode, device, seeds, result cache;
* :mod:`flatlib.stability` - linear stability of GD at a minimum (Sec. 2, App. I);
* :mod:`flatlib.scalar` - scalar networks (Sec. 3, App. III);
* :mod:`flatlib.linear` - deep linear networks (Secs. 4-5, App. IV-IX.1);
* :mod:`flatlib.flattening` - walking along the minima to a flattest one (App. IX.1);
* :mod:`flatlib.hessian` - Hessian-vector products and eigensolvers for any torch model;
* :mod:`flatlib.models` - the fully connected networks of the experiments;
* :mod:`flatlib.data` - MNIST digits: noisy/clean pairs (Sec. 6) and labelled digits;
* :mod:`flatlib.training` - training the denoisers and measuring them (Sec. 6, App. IX.2);
* :mod:`flatlib.classifier` - GD/SGD training of classifiers (Sagun et al., Secs. 3-4);
* :mod:`flatlib.clusters` - Gaussian-cluster classification data (Sagun et al., Sec. 3.1);
* :mod:`flatlib.outliers` - counting the Hessian's outlier eigenvalues (Sagun et al., App. A);
* :mod:`flatlib.gauss_newton` - the Hessian as Gauss-Newton term plus residual (Sagun et al.);
* :mod:`flatlib.batch_basins` - large then small batch, one basin (Sagun et al., Sec. 4.1);
* :mod:`flatlib.sweep` - cached, resumable grids of experiments;
* :mod:`flatlib.full_results` - paper-scale results stored with their provenance;
* :mod:`flatlib.edge_of_stability` - full-batch GD with its sharpness tracked (Cohen et al., 2021);
* :mod:`flatlib.rescaling` - function-preserving layer rescaling and its sharpness (Dinh et al.);
* :mod:`flatlib.non_white` - the Sec. 5 conjecture for non-white inputs, both sides;
* :mod:`flatlib.figures` - the chapters' figures and slider UIs;
* :mod:`flatlib.widgets` - slider UIs that also work in the static HTML book.

Submodules other than ``config`` are imported on first access, so ``import flatlib``
stays fast and does not load PyTorch.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from flatlib import config

__version__ = "0.1.0"
__all__ = [
    "batch_basins",
    "classifier",
    "clusters",
    "config",
    "data",
    "edge_of_stability",
    "figures",
    "flattening",
    "full_results",
    "gauss_newton",
    "hessian",
    "linear",
    "models",
    "non_white",
    "outliers",
    "rescaling",
    "scalar",
    "stability",
    "sweep",
    "training",
    "widgets",
]

_LAZY = set(__all__) - {"config"}


def __getattr__(name: str) -> ModuleType:
    if name in _LAZY:
        return importlib.import_module(f"flatlib.{name}")
    raise AttributeError(f"module 'flatlib' has no attribute {name!r}")
