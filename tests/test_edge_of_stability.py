"""Full-batch GD with tracked sharpness against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flatlib.curvature.hessian import HessianOperator, exact_hessian, set_vector
from flatlib.experiments import edge_of_stability as eos
from flatlib.nets.training import BLOWUP
from flatlib.theory import linear


def regression(seed: int = 0, n: int = 12, d: int = 3):
    """A single Linear layer (least squares): its Hessian is the constant ``2 X^T X / n``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = rng.standard_normal((n, 2))
    model = eos.linear_model([rng.standard_normal((2, d))])
    lam = 2 * np.linalg.eigvalsh(x.T @ x / n)[-1]
    return model, torch.tensor(x), torch.tensor(y), lam


def test_tracked_sharpness_of_a_quadratic_is_exact():
    model, x, y, lam = regression()
    out = eos.gd_with_sharpness(model, eos.sum_squares_loss, x, y, eta=0.5 / lam, steps=30)
    assert out["status"] in ("not converged", "converged")
    assert np.allclose(out["sharpness"], lam, rtol=1e-8)
    assert out["sharpness_steps"][0] == 0
    assert out["two_over_eta"] == pytest.approx(4 * lam)
    losses = out["losses"][np.isfinite(out["losses"])]
    assert np.all(np.diff(losses) <= 1e-12)  # below 2/eta: monotone on a quadratic


def test_divergence_is_recorded_not_raised():
    model, x, y, lam = regression(1)
    out = eos.gd_with_sharpness(model, eos.sum_squares_loss, x, y, eta=2.5 / lam, steps=400)
    assert out["status"] == "diverged"
    assert out["steps_run"] < 400
    assert np.isnan(out["losses"][-1])


def test_divergence_uses_the_shared_rule():
    """The loss of eq. (2) grows slowly just above 2 / lambda: the run stops at the first
    loss above BLOWUP x the initial one, and an explicit blowup lets it go on."""
    model, x, y, lam = regression(1)
    out = eos.gd_with_sharpness(model, eos.sum_squares_loss, x, y, eta=2.05 / lam, steps=400,
                                track_every=50)  # fmt: skip
    losses, k = out["losses"], out["steps_run"]
    assert out["status"] == "diverged" and 0 < k < 400
    assert losses[k] > BLOWUP * losses[0] and np.all(losses[:k] <= BLOWUP * losses[0])
    model, x, y, lam = regression(1)
    later = eos.gd_with_sharpness(model, eos.sum_squares_loss, x, y, eta=2.05 / lam, steps=400,
                                  track_every=50, blowup=1e6)  # fmt: skip
    assert later["status"] == "diverged" and later["steps_run"] > k
    np.testing.assert_array_equal(later["losses"][: k + 1], losses[: k + 1])


def test_convergence_by_gradient_norm():
    model, x, y, lam = regression(2)
    out = eos.gd_with_sharpness(
        model, eos.sum_squares_loss, x, y, eta=1.0 / lam, steps=5000, grad_tol=1e-10
    )
    assert out["status"] == "converged"
    # the least-squares solution, computed independently
    w_ls = np.linalg.lstsq(x.numpy(), y.numpy(), rcond=None)[0].T
    assert np.allclose(eos.model_weights(model)[0], w_ls, atol=1e-9)
    assert out["final_sharpness"] == pytest.approx(lam, rel=1e-8)


def test_trajectory_matches_numpy_gradient_descent():
    t = np.random.default_rng(0).standard_normal((3, 3))
    x, y = linear.whitened_data(t, n=5, seed=0)
    gen = np.random.default_rng(1)
    ws = [gen.standard_normal((3, 3)) * 0.5 for _ in range(3)]
    model = eos.linear_model(ws)
    out = eos.gd_with_sharpness(
        model, eos.sum_squares_loss, torch.tensor(x), torch.tensor(y), 0.05, 40, track_every=7
    )
    ref = linear.gradient_descent(ws, x, y, 0.05, 40)
    assert np.allclose(out["losses"], ref.losses, rtol=1e-10, atol=1e-14)
    for a, b in zip(eos.model_weights(model), ref.weights, strict=True):
        assert np.allclose(a, b, atol=1e-12)
    assert list(out["sharpness_steps"]) == [0, 7, 14, 21, 28, 35, 40]
    # the last tracked value against the dense autograd Hessian (not at a minimum)
    dense = np.linalg.eigvalsh(
        exact_hessian(
            HessianOperator(model, eos.sum_squares_loss, torch.tensor(x), torch.tensor(y))
        )
    )[-1]
    assert out["sharpness"][-1] == pytest.approx(dense, rel=1e-6)


@settings(max_examples=30, deadline=None)
@given(
    values=st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=40),
    eta=st.floats(0.02, 1.0),
    rel=st.floats(0.01, 0.5),
    late=st.floats(0.05, 1.0),
)
def test_fraction_near_threshold_brute_force(values, eta, rel, late):
    got = eos.fraction_near_threshold(values, eta, rel=rel, late=late)
    n_late = max(1, int(round(late * len(values))))
    tail = values[len(values) - n_late :]
    count = sum(abs(v - 2 / eta) <= rel * 2 / eta for v in tail)
    assert got == pytest.approx(count / n_late)


def test_fraction_counts_nan_as_outside_and_checks_input():
    assert eos.fraction_near_threshold([10.0, np.nan], eta=0.2, late=1.0) == 0.5
    with pytest.raises(ValueError, match="late"):
        eos.fraction_near_threshold([1.0], 0.1, late=1.5)
    with pytest.raises(ValueError, match="eta"):
        eos.fraction_near_threshold([1.0], -0.1)
    with pytest.raises(ValueError, match="sharpness"):
        eos.fraction_near_threshold([], 0.1)


def test_bad_inputs():
    model, x, y, _ = regression()
    with pytest.raises(ValueError, match="eta"):
        eos.gd_with_sharpness(model, eos.sum_squares_loss, x, y, eta=0.0, steps=3)
    with pytest.raises(ValueError, match="steps"):
        eos.gd_with_sharpness(model, eos.sum_squares_loss, x, y, eta=0.1, steps=0)
    with pytest.raises(TypeError, match="model"):
        eos.gd_with_sharpness("net", eos.sum_squares_loss, x, y, eta=0.1, steps=3)
    with pytest.raises(TypeError, match="loss_fn"):
        eos.gd_with_sharpness(model, None, x, y, eta=0.1, steps=3)
    with pytest.raises(ValueError, match="samples"):
        eos.gd_with_sharpness(model, eos.sum_squares_loss, x, y[:3], eta=0.1, steps=3)
    with pytest.raises(ValueError, match="setting"):
        eos.eos_grid("cnn")
    with pytest.raises(ValueError, match="mode"):
        eos.eos_grid("linear", mode="huge")
    with pytest.raises(ValueError, match="setting"):
        eos.build({"setting": "cnn"})
    with pytest.raises(TypeError, match="model"):
        eos.model_weights("net")


def test_linear_model_round_trip_and_function():
    rng = np.random.default_rng(3)
    ws = [rng.standard_normal((4, 2)), rng.standard_normal((3, 4))]
    model = eos.linear_model(ws)
    for a, b in zip(eos.model_weights(model), ws, strict=True):
        assert np.array_equal(a, b)
    x = rng.standard_normal((5, 2))
    with torch.no_grad():
        out = model(torch.tensor(x)).numpy()
    assert np.allclose(out, x @ linear.end_to_end(ws).T)


def test_grids_and_a_short_run(tmp_path, monkeypatch):
    monkeypatch.setenv("FLATLIB_CACHE", str(tmp_path))
    for setting in ("linear", "relu"):
        for mode in ("quick", "full"):
            grid = eos.eos_grid(setting, mode)
            assert len({c["eta"] for c in grid}) == len(grid)
    lin = eos.eos_grid("linear", "quick")
    t, _, _, _ = eos.linear_setting(lin[0])
    threshold = 2 / linear.flattest_sharpness(t, lin[0]["m"])
    etas = sorted(c["eta"] for c in lin)
    assert etas[-2] < threshold < etas[-1]  # one run on either side of Theorem 1's threshold
    config = {**lin[2], "steps": 30}
    out = eos.run_eos(config)
    model, x, y = eos.build(config)
    set_vector(model, out["final_params"])
    assert linear.loss(eos.model_weights(model), x.numpy(), y.numpy()) == pytest.approx(
        out["final_loss"], rel=1e-10
    )
    assert 0.0 <= out["fraction_near"] <= 1.0


def test_trajectory_table_brute_force():
    import pandas as pd

    lam = np.array([5.0, 2.0, 3.0, 11.0, 9.5, 10.5, 10.0, 8.0])
    loss = np.array([4.0, 3.0, 3.5, 2.0, 2.5, 1.0, 1.2, 0.9, np.nan])
    run = {
        "eta": 0.2,
        "two_over_eta": 10.0,
        "status": "not converged",
        "steps_run": 7,
        "sharpness": lam,
        "sharpness_steps": np.arange(8),
        "losses": loss,
    }
    row = eos.trajectory_table(pd.DataFrame([run]), early=2).iloc[0]
    assert row["initial sharpness"] == 5.0 and row["peak step"] == 3
    assert row["peak / (2/eta)"] == pytest.approx(1.1)
    assert row["early min"] == 2.0  # tracked steps 1 and 2
    assert (row["late min"], row["late max"]) == (8.0, 10.5)  # the last four values
    assert (row["late min loss"], row["late max loss"]) == (0.9, 2.5)  # losses 4..7
    assert row["near steps"] == 4  # within 15 % of 10: 11, 9.5, 10.5 and 10
    assert row["rising"] == pytest.approx(3 / 7)
    assert row["loss rises"] == 3 and row["final / initial loss"] == pytest.approx(0.9 / 4.0)
    with pytest.raises(TypeError, match="DataFrame"):
        eos.trajectory_table([run])
