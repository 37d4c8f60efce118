"""Tests of flatlib.figures.gains and the measurements it draws (flatlib.theory.linear,
flatlib.theory.flattening): chapters 6-7 measure what Theorems 2 and 3 claim."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from flatlib.figures import gains  # noqa: E402
from flatlib.theory import flattening, linear  # noqa: E402


def _orthogonal_flattest(T: np.ndarray, m: int, seed: int) -> list[np.ndarray]:
    """An exactly flattest, non-diagonal minimum: the canonical one (eq. 27) rotated per layer."""
    rng = np.random.default_rng(seed)
    d = T.shape[0]
    qs = [np.linalg.qr(rng.standard_normal((d, d)))[0] for _ in range(m - 1)]
    return linear.apply_gauge(linear.canonical_minimum(T, m), qs)


def _partials(ws: list[np.ndarray]) -> list[np.ndarray]:
    out, p = [], np.eye(ws[0].shape[1])
    for w in ws:
        p = w @ p
        out.append(p)
    return out


@pytest.mark.parametrize(("d", "m", "seed"), [(2, 2, 0), (3, 4, 1), (4, 6, 2), (3, 5, 3)])
def test_s105_start_lies_on_omega_and_is_seeded(d: int, m: int, seed: int) -> None:
    T = linear.target_map(d, seed=seed)
    ws = flattening.s105_start(T, m, seed=seed)
    assert [w.shape for w in ws] == [(d, d)] * m
    np.testing.assert_allclose(linear.end_to_end(ws), T, atol=1e-9 * np.linalg.norm(T))
    again = flattening.s105_start(T, m, seed=seed)
    assert all(np.array_equal(a, b) for a, b in zip(ws, again, strict=True))
    # all but one layer are the raw Gaussian draws A_i (eq. S105)
    rng = np.random.default_rng(seed)
    draws = [rng.standard_normal((d, d)) for _ in range(m)]
    assert sum(np.array_equal(w, a) for w, a in zip(ws, draws, strict=True)) == m - 1


def test_s105_start_rejects_bad_T() -> None:
    with pytest.raises(ValueError, match="T"):
        flattening.s105_start(np.ones((2, 3)), 3)
    with pytest.raises(ValueError, match="T"):
        flattening.s105_start(np.ones((2, 2)), 3)
    with pytest.raises(ValueError, match="d"):
        linear.target_map(0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gains_profile_matches_direct_svd(seed: int) -> None:
    T = linear.target_map(3, seed=seed)
    m = 4
    ws = linear.random_minimum(T, m, seed=seed)
    prof = linear.gains_profile(ws, T)
    _, s, vt = np.linalg.svd(T)
    for k, p in enumerate(_partials(ws), start=1):
        np.testing.assert_allclose(prof.singular_values[k - 1], np.linalg.svd(p)[1], rtol=1e-10)
        assert prof.v_gain[k - 1] == pytest.approx(np.linalg.norm(p @ vt[0]), rel=1e-10)
        assert prof.bound[k - 1] == pytest.approx(np.sqrt(m) * s[0] ** (k / m), rel=1e-12)
    assert prof.flattest_sharpness == pytest.approx(2 * m * s[0] ** (2 * (1 - 1 / m)))


@pytest.mark.parametrize(("d", "m", "seed"), [(2, 3, 0), (3, 4, 1), (4, 6, 2)])
def test_theorem2_errors_vanish_at_flattest_and_not_at_random(d: int, m: int, seed: int) -> None:
    T = linear.target_map(d, seed=seed)
    flat = linear.theorem2_errors(_orthogonal_flattest(T, m, seed), T)
    for key in ("v singular vector", "v singular value", "u singular vector", "u singular value"):
        assert flat[key] < 1e-10, key
    assert flat["bound ratio"] <= 1 + 1e-12
    rand = linear.theorem2_errors(linear.random_minimum(T, m, seed=seed), T)
    assert rand["v singular value"] > 1e-3


def test_theorem2_errors_detect_a_rescaled_layer() -> None:
    # Exercise 1 of chapter 6: W2 *= a, W3 /= a breaks part (i) at k = 2, by the factor a
    T = linear.target_map(3, seed=5)
    ws = linear.canonical_minimum(T, 4)
    ws[1] = 3.0 * ws[1]
    ws[2] = ws[2] / 3.0
    errors = linear.theorem2_errors(ws, T)
    assert errors["v singular value"] == pytest.approx(2.0, rel=1e-9)
    assert errors["bound ratio"] == pytest.approx(3.0 / 2.0, rel=1e-9)  # 3 / sqrt(4)
    with pytest.raises(ValueError, match="weights"):
        linear.theorem2_errors(ws[:1], T)


@pytest.mark.parametrize(("d", "m", "seed"), [(2, 2, 0), (3, 4, 1), (4, 5, 2)])
def test_layer_path_at_an_exact_flattest_minimum(d: int, m: int, seed: int) -> None:
    T = linear.target_map(d, seed=seed)
    path = linear.layer_path(_orthogonal_flattest(T, m, seed), T)
    s = np.linalg.svd(T)[1][0] ** (1 / m)
    assert path.s == pytest.approx(s, rel=1e-12)
    np.testing.assert_allclose(path.matched_value, s, rtol=1e-10)
    np.testing.assert_allclose(path.path_gain, s, rtol=1e-10)
    np.testing.assert_allclose(path.interface_cos, 1.0, atol=1e-10)
    np.testing.assert_allclose(path.link_cos, 1.0, atol=1e-10)
    assert path.interface_cos.shape == (m + 1,) and path.link_cos.shape == (m - 1,)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_layer_path_agrees_with_coupling_errors_and_closed_form(seed: int) -> None:
    T = linear.target_map(3, seed=seed)
    m = 4
    ws = linear.random_minimum(T, m, seed=seed)
    path = linear.layer_path(ws, T)
    # ||r_{k+1} - q_k||^2 = 2 - 2 <q_k, r_{k+1}> for unit vectors
    link = linear.coupling_errors(ws, T).link
    np.testing.assert_allclose(link**2, 2 - 2 * path.link_cos, atol=1e-10)
    # <q_k, r_{k+1}> = sigma_max / (||q_k|| ||r_{k+1}||) at every global minimum
    uu, s, vt = np.linalg.svd(T)
    for k in range(1, m):
        r = np.linalg.multi_dot([*ws[:k][::-1], vt[0]]) if k > 1 else ws[0] @ vt[0]
        q = uu[:, 0]
        for w in ws[k:][::-1]:
            q = w.T @ q
        want = s[0] / (np.linalg.norm(q) * np.linalg.norm(r))
        assert path.link_cos[k - 1] == pytest.approx(want, rel=1e-10)
        assert want < 1 - 1e-6  # a random minimum is not coupled
    # the matched singular value is the one of W_k whose right vector is closest to r_k
    r = vt[0]
    for k, w in enumerate(ws):
        _, sv, bt = np.linalg.svd(w)
        j = int(np.argmax(np.abs(bt @ (r / np.linalg.norm(r)))))
        assert path.matched[k] == j and path.matched_value[k] == pytest.approx(sv[j])
        r = w @ r


def test_walk_to_flattest_stays_on_omega_and_converges() -> None:
    T = linear.target_map(2, seed=1)
    runs = flattening.walk_to_flattest(T, 3, seeds=(0, 1), max_iter=3000)
    target = linear.flattest_sharpness(T, 3)
    for run in runs:
        assert run.converged and run.method == "walk"
        np.testing.assert_allclose(linear.end_to_end(run.weights), T, atol=1e-8)
        assert run.history[-1] <= 1.01 * target and run.history[-1] >= target * (1 - 1e-9)
        assert np.all(np.diff(run.history) < 0)  # greedy: only decreasing steps are kept
    with pytest.raises(ValueError, match="seeds"):
        flattening.walk_to_flattest(T, 3, seeds=())


def test_compare_flatteners_and_gains_pair() -> None:
    T = linear.target_map(2, seed=2)
    runs = flattening.compare_flatteners(flattening.s105_start(T, 3, seed=1), T, seed=1)
    assert set(runs) == {"walk", "gauge"}
    for run in runs.values():
        assert run.result.converged and run.seconds >= 0
        assert run.target == pytest.approx(linear.flattest_sharpness(T, 3))
        np.testing.assert_allclose(linear.end_to_end(run.result.weights), T, atol=1e-8)
    start, flat = flattening.gains_pair(T, 3, seed=0)
    best = linear.flattest_sharpness(T, 3)
    assert linear.sharpness(flat.weights) <= (1 + flattening.SLIDER_TOL) * best
    assert linear.sharpness(start) > linear.sharpness(flat.weights)


def test_plots_return_figures_and_check_arguments() -> None:
    T = linear.target_map(2, seed=0)
    rand = [linear.random_minimum(T, 3, seed=0)]
    flat = [flattening.gains_pair(T, 3, seed=0)[1].weights]
    runs = flattening.compare_flatteners(flattening.s105_start(T, 3, seed=1), T, seed=1)
    for fig in (
        gains.plot_fig3(T, rand, flat),
        gains.plot_flattening(runs),
        gains.plot_layer_path(flat[0], rand[0], T),
    ):
        assert isinstance(fig, Figure)
    with pytest.raises(ValueError, match="random_weights"):
        gains.plot_fig3(T, rand, flat * 2)
    with pytest.raises(ValueError, match="runs"):
        gains.plot_flattening({})


def test_sliders_fit_the_frame_cap_and_frames_differ() -> None:
    ui = gains.gains_slider(seeds=(0, 1), depths=(2, 3), dims=(2,))
    assert len(gains.gains_slider().all_keys()) <= 96
    assert len(gains.coupling_slider().all_keys()) <= 96
    default = ui.frame()
    assert ui.frame((1, ui.key()[1], 0)) != default
    cs = gains.coupling_slider(depths=(2, 3), seeds=(0,), d=2)
    assert cs.frame((0, 0)) != cs.frame((1, 0))
