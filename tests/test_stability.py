"""Linear stability of GD (eqs. S1-S4) against direct iteration of the nonlinear map."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flatlib.figures import stability as stability_figures
from flatlib.theory import stability


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(0, 10_000), st.floats(0.5, 1.5))
def test_threshold_matches_iterate_growth(n: int, seed: int, factor: float) -> None:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    lam = rng.uniform(0.1, 5.0, size=n)
    H = q @ np.diag(lam) @ q.T
    H = (H + H.T) / 2
    eta = factor * 2.0 / lam.max()
    if abs(factor - 1.0) < 1e-3:
        return
    path = stability.linearized_gd(H, eta, q[:, np.argmax(lam)], 400)
    grew = np.linalg.norm(path[-1]) > 1.0
    assert stability.is_linearly_stable(H, eta) == (not grew)
    assert stability.max_stable_step(H) == pytest.approx(2.0 / lam.max(), rel=1e-12)


def test_gd_on_quadratic_is_exact_linear_map() -> None:
    H = np.diag([1.0, 4.0])
    path = stability.linearized_gd(H, 0.3, [1.0, 1.0], 3)
    np.testing.assert_allclose(path[3], [(1 - 0.3) ** 3, (1 - 1.2) ** 3], rtol=1e-14)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (([[1.0, 2.0], [0.0, 1.0]], 0.1, [1, 1], 2), ValueError, "symmetric"),
        (([[1.0]], -0.1, [1], 2), ValueError, "eta"),
        (([[1.0]], 0.1, [1, 2], 2), ValueError, "w0"),
        (([[np.nan]], 0.1, [1], 2), ValueError, "hessian"),
        (([[1.0]], 0.1, [1], -1), ValueError, "steps"),
    ],
)
def test_bad_input(args: tuple, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        stability.linearized_gd(*args)


def test_slider_spans_the_threshold() -> None:
    ui = stability_figures.step_size_slider([1.0, 4.0])
    etas = ui.stops["eta"]
    assert min(etas) < 0.5 < max(etas)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 6), st.integers(0, 10_000))
def test_measured_threshold_agrees_with_eigendecomposition(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n))
    H = a @ a.T / n + 1e-3 * np.eye(n)
    predicted = 2.0 / np.linalg.eigvalsh(H)[-1]
    assert stability.measured_threshold(H) == pytest.approx(predicted, rel=1e-7)


def test_double_well_gradient_matches_autograd() -> None:
    import torch

    def well(w: torch.Tensor) -> torch.Tensor:
        return -torch.logaddexp(-20.0 * (w - 1) ** 2 / 2, -2.0 * (w + 1) ** 2 / 2)

    for w in np.linspace(-2, 2, 9):
        t = torch.tensor(w, dtype=torch.float64)
        assert stability.double_well(w) == pytest.approx(well(t).item(), rel=1e-12)
        grad = torch.func.grad(well)(t).item()
        assert stability.double_well_grad(w) == pytest.approx(grad, rel=1e-10, abs=1e-12)


def test_gd_escapes_the_sharp_well_only_between_the_thresholds() -> None:
    assert stability.gd_on_double_well(1.05, 0.05, 2000)[-1] == pytest.approx(0.996, abs=1e-3)
    assert stability.gd_on_double_well(1.05, 0.3, 2000)[-1] == pytest.approx(-1.0, abs=1e-6)
    assert abs(stability.gd_on_double_well(1.05, 1.05, 2000)[-1]) > 1.5
