"""Tests of flatlib.figures.scalar and the runs of chapters 2-3 in flatlib.theory.scalar: the
figures draw what the paper claims."""

from __future__ import annotations

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from flatlib.figures import scalar as fs  # noqa: E402
from flatlib.theory import scalar  # noqa: E402


@pytest.mark.parametrize(
    ("eta", "momentum", "start"),
    list(itertools.product(fs.FIG1_ETAS, fs.FIG1_MOMENTA, fs.FIG1_STARTS)),
)
def test_fig1_paths_end_on_hyperbola_at_a_stable_point(
    eta: float, momentum: float, start: float
) -> None:
    run = scalar.fig1_run(eta, momentum, start)
    assert not run.result.diverged
    w = run.final
    assert abs(w[0] * w[1] - 1.0) < 1e-9  # on Omega (eq. 7)
    assert run.final_sharpness == pytest.approx(scalar.sharpness(w, 1.0), rel=1e-6)
    assert run.final_sharpness <= 2 * (1 + momentum) / eta + 1e-9
    if momentum == 0:
        assert run.final_sharpness <= 2 / eta + 1e-9
    # the start is a sharp minimum: it is unstable at least for plain GD with the largest step
    assert scalar.sharpness(run.star, 1.0) > 2 / max(fs.FIG1_ETAS)


def test_plain_gd_leaves_an_unstable_start_and_moves_along_the_valley() -> None:
    run = scalar.fig1_run(0.3, 0.0, 0.45)
    assert scalar.sharpness(run.star, 1.0) > 2 / 0.3
    assert np.linalg.norm(run.final - run.star) > 0.5
    assert run.final_sharpness < 0.7 * scalar.sharpness(run.star, 1.0)


def test_valley_sharpness_is_eq10_on_omega() -> None:
    rng = np.random.default_rng(1)
    for m in (2, 3, 5):
        w = scalar.random_positive_minima(rng, 1.7, m, 5)
        got = scalar.valley_sharpness(w, 1.7)
        want = [2 * 1.7**2 * np.sum(1 / row**2) for row in w]
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_fig1_slider_fits_the_frame_cap_and_frames_differ() -> None:
    ui = fs.fig1_slider()
    assert len(ui.all_keys()) <= 96
    default = ui.frame()
    for i, name in enumerate(ui.stops):
        key = list(ui.key())
        key[i] = (key[i] + 1) % len(ui.stops[name])
        assert ui.frame(tuple(key)) != default, f"moving {name} changed nothing"


def test_interpolation_slider_frames_differ() -> None:
    ui = fs.interpolation_slider()
    assert len(ui.all_keys()) <= 96
    frames = {ui.frame(k) for k in [(0, 0), (1, 0), (1, 3)]}
    assert len(frames) == 3


@pytest.mark.parametrize("m", [3, 4, 6])
@pytest.mark.parametrize("s", [-1.2, -0.4, 0.4, 1.2])
def test_deceptive_triple_flips_the_verdict(m: int, s: float) -> None:
    w1, w2, w3 = scalar.deceptive_triple(m, s)
    assert np.prod(w2) == pytest.approx(1.0, rel=1e-12)
    assert np.prod(w3) == pytest.approx(1.0, rel=1e-12)
    # both really are sharper than the flattest w1 (eq. 10 vs eq. 13)
    assert scalar.sharpness(w2, 1.0) > scalar.flattest_sharpness(1.0, m)
    assert scalar.sharpness(w3, 1.0) > scalar.flattest_sharpness(1.0, m)
    # Claim S1: the plot judges w1 vs w2 one way and w1 vs w3 the other (Lemma 2)
    assert scalar.looks_sharper(w1, w2) != scalar.looks_sharper(w1, w3)
    c12 = scalar.interpolation_curvatures(w1, w2, 1.0)
    c13 = scalar.interpolation_curvatures(w1, w3, 1.0)
    assert (c12[0] > c12[1]) != (c13[0] > c13[1])
    # positive s is the deceptive one by construction
    assert scalar.looks_sharper(w1, w2) == (s > 0)


@pytest.mark.parametrize("a", [0.2, 0.4, 3.0])
def test_two_layer_ends_look_equally_sharp(a: float) -> None:
    w1, w2, w3 = scalar.deceptive_triple(2, np.log(a))
    c1, c2 = scalar.interpolation_curvatures(w1, w2, 1.0)
    assert c1 == pytest.approx(c2, rel=1e-10)  # eq. (S32)
    assert scalar.sharpness(w2, 1.0) > scalar.sharpness(w1, 1.0)


def test_segment_loss_vanishes_at_both_ends_and_rises_between() -> None:
    w1, w2, _ = scalar.deceptive_triple(3, 0.8)
    vals = scalar.segment_loss(w1, w2, np.array([0.0, 0.5, 1.0]), 1.0)
    assert vals[0] < 1e-24 and vals[2] < 1e-24 and vals[1] > 1e-3


def test_ranking_stats_are_consistent_with_claim_s1() -> None:
    stats = scalar.ranking_stats(ms=(2, 4), n_pairs=300, seed=3)
    two, four = stats
    np.testing.assert_allclose(two.plot_ratio, 1.0, rtol=1e-9)  # eq. (S32): always a tie
    assert 0.05 < four.wrong_fraction < 0.95
    assert np.all(four.true_ratio > 0) and np.all(four.plot_ratio > 0)


def test_plots_return_figures() -> None:
    for fig in (
        fs.plot_fig1(0.3, 0.0, 0.45),
        fs.plot_valley_sharpness(),
        fs.plot_sharpness_vs_depth(m_max=6, n_random=5),
        fs.plot_fig2(),
        fs.plot_interpolation(3, 0.8),
        fs.plot_ranking_scatter(scalar.ranking_stats(ms=(3,), n_pairs=50)),
    ):
        assert isinstance(fig, Figure)
        plt.close(fig)
