"""Tests of Theorem 4's family and Lemma 1's GD runs (chapter 8): flatlib.theory.linear and
the figures of flatlib.figures.theorem4."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from flatlib.figures import theorem4 as t4  # noqa: E402
from flatlib.theory import linear  # noqa: E402

SV = (2.0, 1.0, 0.5)


def test_random_target_has_the_requested_spectrum() -> None:
    t = linear.random_target(SV, seed=3)
    np.testing.assert_allclose(np.linalg.svd(t, compute_uv=False), SV, rtol=1e-12)
    spd = linear.random_target(SV, seed=3, symmetric=True)
    np.testing.assert_allclose(spd, spd.T, atol=1e-15)
    np.testing.assert_allclose(np.linalg.eigvalsh(spd)[::-1], SV, rtol=1e-12)


@pytest.mark.parametrize("m", [2, 3, 5])
def test_rescaled_minimum_is_a_minimum_with_the_stated_singular_values(m: int) -> None:
    t = linear.random_target(SV, seed=m)
    for c in (0.3, 1.0, 2.5):
        ws = linear.rescaled_minimum(t, m, c, seed=7)
        np.testing.assert_allclose(linear.end_to_end(ws), t, atol=1e-12)
        for w, diag in zip(ws, linear.rescaled_diagonals(t, m, c), strict=True):
            got = np.linalg.svd(w, compute_uv=False)
            np.testing.assert_allclose(got, np.sort(diag)[::-1], rtol=1e-10)
        # sigma_max(T)^(1/m) is a singular value of every layer and Theorem 3 holds
        err = linear.coupling_errors(ws, t)
        assert max(err.left.max(), err.right.max(), err.link.max(initial=0)) < 1e-10


@pytest.mark.parametrize("m", [2, 3, 4])
def test_theorem4_interval_is_where_the_condition_holds(m: int) -> None:
    t = linear.random_target(SV, seed=1)
    lo, hi = linear.theorem4_interval(t, m)
    for c, inside in [(lo * 1.01, True), (hi * 0.99, True), (lo / 1.05, False), (hi * 1.05, False)]:
        report = linear.is_flattest(linear.rescaled_minimum(t, m, c, seed=2), t, tol=1e-9)
        assert report.theorem4_condition == inside
        if inside:  # Theorem 4: the condition certifies a flattest minimum
            assert report.is_flattest


@pytest.mark.parametrize("m", [2, 3, 4])
def test_diagonal_sharpness_matches_the_exact_hessian(m: int) -> None:
    t = linear.random_target(SV, seed=5)
    for c in (0.05, 0.7, 1.0, 1.6, 6.0):
        ws = linear.rescaled_minimum(t, m, c, seed=11)
        exact = np.linalg.eigvalsh(linear.hessian_at_minimum(ws))[-1]
        closed = linear.diagonal_sharpness(linear.rescaled_diagonals(t, m, c))
        assert closed == pytest.approx(exact, rel=1e-9)
    assert linear.diagonal_sharpness(linear.rescaled_diagonals(t, m, 1.0)) == pytest.approx(
        linear.flattest_sharpness(t, m), rel=1e-12
    )


def test_counterexample_is_sharper_than_theorem1() -> None:
    t = linear.random_target(SV, seed=0)
    m = 3
    _, hi = linear.theorem4_interval(t, m)
    ws = linear.rescaled_minimum(t, m, 4 * hi, seed=1)
    assert linear.sharpness(ws) > 1.5 * linear.flattest_sharpness(t, m)


@pytest.mark.parametrize("seed", range(4))
def test_theorem4_bounds_sandwich_the_sharpness(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = int(rng.integers(2, 5))
    t = rng.standard_normal((3, 3))
    ws = linear.random_minimum(t, m, seed=seed)
    separable, product = linear.theorem4_bounds(ws)
    lam = np.linalg.eigvalsh(linear.hessian_at_minimum(ws))[-1]
    best = linear.flattest_sharpness(t, m)
    assert best <= lam * (1 + 1e-10)
    assert lam <= separable * (1 + 1e-10)
    assert separable <= product * (1 + 1e-10)
    canon = linear.apply_gauge(
        linear.canonical_minimum(t, m), [np.linalg.qr(rng.standard_normal((3, 3)))[0]] * (m - 1)
    )
    assert linear.theorem4_bounds(canon)[1] == pytest.approx(best, rel=1e-10)  # eqs. (S102)-(S103)


def test_uncoupled_layers_are_not_a_minimum() -> None:
    t = linear.random_target(SV, seed=2)
    for m in (2, 3, 4):
        ws = linear.uncoupled_layers(t, m, seed=m)
        tops = [np.linalg.norm(w, 2) for w in ws]
        np.testing.assert_allclose(tops, SV[0] ** (1 / m), rtol=1e-12)
        assert np.linalg.norm(linear.end_to_end(ws), 2) < 0.999 * SV[0]


def test_lemma1_step_bound_and_matrix_root() -> None:
    t = linear.random_target((2.0, 1.5, 1.0), seed=0, symmetric=True)
    for m in (1, 2, 5):
        assert linear.lemma1_step_bound(t, m) == pytest.approx(linear.max_stable_step(t, m) / 2)
        root = linear.matrix_root(t, m)
        np.testing.assert_allclose(np.linalg.matrix_power(root, m), t, atol=1e-12)
    small = t / 4  # sigma_max < 1: the bound is 1 / 2m
    assert linear.lemma1_step_bound(small, 3) == pytest.approx(1 / 6)


def test_gd_path_agrees_with_gradient_descent() -> None:
    t = linear.random_target(SV, seed=4)
    x, y = linear.whitened_data(t, 3, seed=0)
    w0 = linear.near_identity_init(3, 3, 0.3, seed=1)
    ref = linear.gradient_descent(w0, x, y, 0.02, 37)
    path = linear.gd_path(w0, x, y, 0.02, 37, record_every=5)
    np.testing.assert_allclose(path.losses, ref.losses, rtol=1e-12)
    for a, b in zip(path.weights, ref.weights, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-13)
    assert path.imbalance_steps.tolist() == [0, 5, 10, 15, 20, 25, 30, 35, 37]
    np.testing.assert_allclose(path.imbalance[-1], linear.balancedness(ref.weights))
    np.testing.assert_allclose(path.imbalance[0], linear.balancedness(w0))


def _autograd_gradients(ws: list[np.ndarray], t: np.ndarray) -> list[np.ndarray]:
    """Gradients of ||Wm...W1 - T||_F^2 (the loss of eq. 2 on white data) by autograd."""
    params = [torch.tensor(w, requires_grad=True) for w in ws]
    prod = params[0]
    for p in params[1:]:
        prod = p @ prod
    ((prod - torch.tensor(t)) ** 2).sum().backward()
    return [p.grad.numpy() for p in params]


def test_one_gd_step_changes_balancedness_only_at_second_order() -> None:
    t = linear.random_target(SV, seed=6)
    x, y = linear.whitened_data(t, 3, seed=1)
    ws = linear.near_identity_init(3, 4, 0.5, seed=2)
    eta = 0.01
    grads = _autograd_gradients(ws, t)
    new = linear.gradient_descent(ws, x, y, eta, 1).weights
    for k in range(3):
        before = ws[k] @ ws[k].T - ws[k + 1].T @ ws[k + 1]
        after = new[k] @ new[k].T - new[k + 1].T @ new[k + 1]
        g, h = grads[k], grads[k + 1]
        np.testing.assert_allclose(after - before, eta**2 * (g @ g.T - h.T @ h), atol=1e-13)


def test_lemma1_identity_reaches_the_matrix_root_and_random_init_is_sharper() -> None:
    runs = linear.lemma1_runs(3, 1.0, steps=300, n_random=3)
    assert runs.identity.converged
    root = linear.matrix_root(runs.T, 3)
    for w in runs.identity.weights:
        np.testing.assert_allclose(w, root, atol=1e-10)
    assert linear.sharpness(runs.identity.weights) == pytest.approx(runs.flattest, rel=1e-9)
    assert runs.identity.imbalance.max() < 1e-12
    done = [p for p in runs.random if p.converged]
    assert done
    assert all(linear.sharpness(p.weights) > 1.05 * runs.flattest for p in done)
    assert all(p.imbalance[0].max() > 0.1 for p in runs.random)


def test_lemma1_slider_frames_differ() -> None:
    ui = t4.lemma1_slider(depths=(2, 3), eta_factors=(0.5, 1.0), steps=60)
    assert len(ui.all_keys()) <= 96
    assert len(t4.lemma1_slider().all_keys()) <= 96
    frames = {ui.frame(k) for k in [(0, 0), (1, 0), (0, 1)]}
    assert len(frames) == 3


def test_plots_return_figures() -> None:
    t = linear.random_target(SV, seed=1)
    for fig in (
        t4.plot_theorem4_family(t, 3, n_points=5),
        t4.plot_balancedness_drift(t, 3, eta_factors=(0.5, 1.0), steps=300),
    ):
        assert isinstance(fig, Figure)
        plt.close(fig)


def test_bad_arguments_raise_value_errors_naming_them() -> None:
    t = linear.random_target(SV, seed=1)
    with pytest.raises(ValueError, match="T must be square"):
        linear.lemma1_step_bound(np.ones((2, 3)), 2)
    with pytest.raises(ValueError, match="T must be symmetric"):
        linear.matrix_root(t, 2)
    with pytest.raises(ValueError, match="positive definite"):
        linear.matrix_root(-np.eye(2), 2)
    with pytest.raises(ValueError, match="c must be positive"):
        linear.rescaled_minimum(t, 3, 0.0)
    with pytest.raises(ValueError, match="m must be >= 2"):
        linear.rescaled_minimum(t, 1, 1.0)
    with pytest.raises(ValueError, match="singular_values"):
        linear.random_target((1.0, -1.0))
    with pytest.raises(ValueError, match="scale"):
        linear.near_identity_init(2, 2, -0.1)
    with pytest.raises(ValueError, match="record_every"):
        linear.gd_path(linear.identity_init(2, 2), np.eye(2), np.eye(2), 0.1, 5, record_every=0)
    with pytest.raises(ValueError, match="diagonals"):
        linear.diagonal_sharpness([np.ones(2), np.ones(3)])
