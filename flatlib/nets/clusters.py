"""Gaussian clusters in 100 dimensions: the synthetic data of Sagun et al. (Sec. 3.1, App. A).

Sagun et al. sample ``k`` random Gaussian clusters in a 100-dimensional input space, one
cluster per class, normalise the data globally, and train a ``100-30-30-k`` classifier on it.
The number of large Hessian eigenvalues then tracks the number of clusters. App. A also
varies an "initial multiplier for the covariance" of the clusters (1 or 10): larger clusters
overlap more and make the task less separable.

The generative model used here (the paper does not spell it out):

* cluster centres ``mu_c ~ N(0, I_d)``, ``c = 0, ..., k - 1``;
* ``n_per_class`` points per cluster, ``x = mu_c + sqrt(cov) * spread * z`` with
  ``z ~ N(0, I_d)``;
* global normalisation: subtract the mean of all points (one vector) and divide by the
  standard deviation of all their coordinates (one number), so the data have zero mean and
  unit average variance per coordinate. Every coordinate is scaled the same way, so the
  cluster geometry is unchanged.

Everything is drawn from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from flatlib._validation import as_float, as_float_array, as_int

__all__ = ["DIM", "ClusterData", "make_clusters", "pca_spectrum"]

DIM = 100
"""Input dimension of the cluster data in Sagun et al. (Sec. 3.1)."""


@dataclass
class ClusterData:
    """Globally normalised cluster data (see the module docstring).

    ``x`` has shape ``(k * n_per_class, dim)`` and ``labels`` shape ``(k * n_per_class,)``
    (``torch.long``, the cluster index). ``centers`` are the cluster centres after the same
    normalisation as the data (NumPy, ``(k, dim)``).
    """

    x: torch.Tensor
    labels: torch.Tensor
    centers: np.ndarray
    k: int
    cov: float
    spread: float
    seed: int

    @property
    def n(self) -> int:
        """Number of samples."""
        return int(self.x.shape[0])


def make_clusters(
    k: int,
    n_per_class: int,
    dim: int = DIM,
    cov: float = 1.0,
    spread: float = 1.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> ClusterData:
    """``k`` Gaussian clusters in ``dim`` dimensions, normalised globally (Sagun et al., App. A).

    Parameters
    ----------
    k:
        Number of clusters (= classes), at least 2.
    n_per_class:
        Points drawn from each cluster.
    dim:
        Input dimension (100 in the paper).
    cov:
        The paper's multiplier of the cluster covariance (1.0 or 10.0 in Table 1): the
        covariance of each cluster is ``cov * spread**2 * I``.
    spread:
        Standard deviation of a cluster along each axis when ``cov = 1``, relative to the
        unit spread of the centres.
    seed:
        Seed of ``numpy.random.default_rng``.
    dtype:
        Floating dtype of ``x``.
    """
    k = as_int(k, "k", minimum=2)
    n_per_class = as_int(n_per_class, "n_per_class", minimum=1)
    dim = as_int(dim, "dim", minimum=1)
    cov = as_float(cov, "cov", positive=True)
    spread = as_float(spread, "spread", positive=True)
    seed = as_int(seed, "seed", minimum=0)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, dim))
    labels = np.repeat(np.arange(k), n_per_class)
    x = centers[labels] + np.sqrt(cov) * spread * rng.standard_normal((labels.size, dim))
    mean = x.mean(axis=0)
    scale = np.sqrt(np.mean((x - mean) ** 2))
    x = (x - mean) / scale
    return ClusterData(
        x=torch.as_tensor(x, dtype=dtype),
        labels=torch.as_tensor(labels, dtype=torch.long),
        centers=(centers - mean) / scale,
        k=k,
        cov=cov,
        spread=spread,
        seed=seed,
    )


def pca_spectrum(x: object) -> np.ndarray:
    """Eigenvalues of the sample covariance of the rows of ``x``, descending (Fig. 2).

    The principal-component variances that Sagun et al. plot beside the Hessian spectrum.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    a = as_float_array(x, "x", ndim=2)
    if a.shape[0] < 2:
        raise ValueError(f"x must hold at least two samples, got {a.shape[0]}")
    centred = a - a.mean(axis=0)
    cov = centred.T @ centred / (a.shape[0] - 1)
    return np.linalg.eigvalsh(cov)[::-1].copy()
