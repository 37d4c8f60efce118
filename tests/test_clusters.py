"""Tests of flatlib.nets.clusters: the Gaussian-cluster data of Sagun et al. (Sec. 3.1, App. A)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flatlib.nets.clusters import make_clusters, pca_spectrum


def test_shapes_labels_and_global_normalisation():
    d = make_clusters(5, 30, dim=20, seed=3)
    assert d.x.shape == (150, 20) and d.labels.shape == (150,) and d.n == 150
    assert d.labels.dtype == torch.long
    assert np.bincount(d.labels.numpy()).tolist() == [30] * 5
    x = d.x.numpy()
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-12)
    assert x.std() == pytest.approx(1.0, rel=1e-12)


def test_seeded_and_reproducible():
    a, b = make_clusters(3, 10, seed=1), make_clusters(3, 10, seed=1)
    c = make_clusters(3, 10, seed=2)
    assert torch.equal(a.x, b.x)
    assert not torch.equal(a.x, c.x)


def test_points_lie_near_their_own_centre_and_cov_widens_clusters():
    """Nearest-centre classification is perfect for tight clusters and worse for cov = 10."""

    def nearest_centre_accuracy(d):
        dist = ((d.x.numpy()[:, None, :] - d.centers[None]) ** 2).sum(-1)
        return np.mean(dist.argmin(1) == d.labels.numpy())

    tight = make_clusters(4, 50, spread=0.1, seed=0)
    assert nearest_centre_accuracy(tight) == 1.0

    # within-cluster spread relative to the centre distance grows with cov
    def relative_spread(d):
        x, c = d.x.numpy(), d.centers
        within = np.mean(((x - c[d.labels.numpy()]) ** 2).sum(1))
        between = np.mean(((c[:, None] - c[None]) ** 2).sum(-1))
        return within / between

    assert relative_spread(make_clusters(4, 200, cov=10.0, seed=0)) > 5 * relative_spread(
        make_clusters(4, 200, cov=1.0, seed=0)
    )


def test_pca_spectrum_matches_numpy_cov():
    x = np.random.default_rng(0).standard_normal((50, 6)) @ np.diag([3, 2, 1, 1, 0.5, 0.1])
    lam = pca_spectrum(torch.as_tensor(x))
    np.testing.assert_allclose(lam, np.sort(np.linalg.eigvalsh(np.cov(x.T)))[::-1], rtol=1e-10)
    assert np.all(np.diff(lam) <= 0)


def test_k_centres_give_k_minus_one_large_components():
    """k tight clusters span a (k-1)-dim affine subspace: k-1 large PCA variances."""
    d = make_clusters(6, 40, spread=0.01, seed=4)
    lam = pca_spectrum(d.x)
    assert lam[4] > 100 * lam[5]


def test_bad_inputs():
    with pytest.raises(ValueError, match="k"):
        make_clusters(1, 10)
    with pytest.raises(TypeError, match="n_per_class"):
        make_clusters(2, 1.5)
    with pytest.raises(ValueError, match="cov"):
        make_clusters(2, 10, cov=0.0)
    with pytest.raises(TypeError, match="dtype"):
        make_clusters(2, 10, dtype=torch.int64)
    with pytest.raises(ValueError, match="x"):
        pca_spectrum(np.ones((1, 3)))
    with pytest.raises(ValueError, match="x"):
        pca_spectrum(np.ones(3))
