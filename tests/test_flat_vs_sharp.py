"""Tests of flatlib.experiments.flat_vs_sharp and flatlib.figures.flat_vs_sharp (chapter 10).

Analysis on problems with known answers, and the figures drawn from it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from flatlib import records as fr
from flatlib.experiments import flat_vs_sharp as fs
from flatlib.experiments import sweep as fs_sweep
from flatlib.figures import flat_vs_sharp as fs_fig
from flatlib.nets.data import FULL_SPLITS, full_scale_source
from flatlib.nets.models import mlp


def test_quadratic_curvature_recovers_second_derivative_with_slope():
    s = np.linspace(-1.0, 1.0, 41)
    loss = 3.0 + 0.7 * (s - 0.3) + 0.5 * 2.5 * (s - 0.3) ** 2 + 10.0 * (s > 0.9)
    # the window around 0.3 excludes the jump at 0.9
    assert fs.quadratic_curvature(s, loss, 0.3, 0.5) == pytest.approx(2.5, rel=1e-10)


def test_quadratic_curvature_uses_only_the_window():
    s = np.linspace(-2.0, 2.0, 81)
    loss = np.where(np.abs(s) <= 0.5, 4.0 * s**2, 100.0 * s**2)
    assert fs.quadratic_curvature(s, loss, 0.0, 0.5) == pytest.approx(8.0, rel=1e-10)
    assert fs.quadratic_curvature(s, loss, 0.0, 2.0) > 50


def test_quadratic_curvature_rejects_bad_arguments():
    s = np.linspace(0, 1, 11)
    with pytest.raises(ValueError, match="half_width"):
        fs.quadratic_curvature(s, s**2, 0.5, 0.01)
    with pytest.raises(ValueError, match="half_width"):
        fs.quadratic_curvature(s, s**2, 0.5, -1.0)
    with pytest.raises(ValueError, match="shape"):
        fs.quadratic_curvature(s, s[:5], 0.5, 0.5)


def test_deception_count_on_synthetic_pairs():
    lam_flat = [1.0, 1.0, 1.0, 5.0]
    lam_sharp = [4.0, 4.0, 4.0, 2.0]
    curv_flat = [0.9, 0.1, 0.5, 0.9]
    curv_sharp = [0.2, 0.3, 0.4, 0.1]
    # pairs 0 and 2 look the wrong way round; pair 3 is not ordered flat < sharp
    assert fs.deception_count(lam_flat, lam_sharp, curv_flat, curv_sharp) == (2, 3)
    with pytest.raises(ValueError, match="shape"):
        fs.deception_count([1.0], [2.0, 3.0], [1.0], [1.0])


def test_deception_of_two_quadratic_minima():
    """Two quadratic bowls: the flat one (lambda_max 1) is steep along the joining line."""
    h_flat = np.diag([1.0, 0.01])  # the segment runs along the first axis
    h_sharp = np.diag([0.1, 10.0])
    u = np.array([1.0, 0.0])
    s = np.linspace(-0.1, 0.1, 21)
    c_flat = fs.quadratic_curvature(s, 0.5 * s**2 * (u @ h_flat @ u), 0.0, 0.1)
    c_sharp = fs.quadratic_curvature(s, 0.5 * s**2 * (u @ h_sharp @ u), 0.0, 0.1)
    lam = [np.linalg.eigvalsh(h).max() for h in (h_flat, h_sharp)]
    assert fs.deception_count([lam[0]], [lam[1]], [c_flat], [c_sharp]) == (1, 1)


def test_gain_imbalance():
    g = 2.0 ** (np.arange(1, 7) / 6 * 3.0)  # geometric: perfectly balanced
    assert fs.gain_imbalance(g) == pytest.approx(0.0, abs=1e-12)
    bumped = g.copy()
    bumped[2] *= np.e
    assert fs.gain_imbalance(bumped) == pytest.approx(1 / np.sqrt(6), rel=1e-12)
    with pytest.raises(ValueError, match="max_gains"):
        fs.gain_imbalance([1.0, -1.0])


def _model(seed: int) -> nn.Sequential:
    """A smooth (tanh) network: no ReLU kinks, so fits must match the exact Hessian."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()


def test_sections_on_a_small_network():
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = torch.randn(50, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    a, b = _model(0), _model(1)
    p = fs.segment_section(a, b, x, y, n_points=9, n_closeup=11, seeds=(0, 1))
    assert p.loss.shape == (9,) and p.s[0] < 0 < p.distance < p.s[-1]
    # the parabola fit on a 0.05 window matches the exact v^T H v
    assert p.curv_sgd == pytest.approx(p.rayleigh_sgd, rel=1e-3, abs=1e-8)
    assert p.curv_adam == pytest.approx(p.rayleigh_adam, rel=1e-3, abs=1e-8)
    e = fs.eigen_section(a, x, y, np.linspace(-0.05, 0.05, 11), "sgd", 0)
    assert e.curvature == pytest.approx(e.lambda_max, rel=1e-3)
    with pytest.raises(ValueError, match="identical"):
        fs.segment_section(a, a, x, y)


def test_chapter_grid_and_table_validation():
    quick = fs.chapter_grid("quick")
    assert len(quick) == 8
    assert {(c["optimizer"], c["lr"]) for c in quick} == {("sgd", 0.5), ("adam", 3e-4)}
    assert all(c["init"] == "identity" and c["size"] == 14 for c in quick)
    assert all(c["check_every"] == fs.CHECK_EVERY[c["optimizer"]] for c in quick)
    assert all(c["noise"] == "fresh" and not c["bias"] and c["save_params"] for c in quick)
    full = fs.chapter_grid("full")
    n_full = FULL_SPLITS[full_scale_source()][0]
    assert all(c["size"] == 28 and c["n_train"] == n_full and c["init"] == fs.INIT for c in full)
    assert {c["target_loss"] for c in full} == {fs_sweep.TARGET_LOSS["full"]}
    with pytest.raises(ValueError, match="mode"):
        fs.chapter_grid("medium")
    runs = pd.DataFrame(
        {
            "optimizer": ["sgd", "adam"],
            "seed": [0, 0],
            "status": ["converged", "not converged"],
            "sharpness": [1.0, 2.0],
            "final_train_loss": [0.1, 0.1],
        }
    )
    with pytest.raises(ValueError, match="converged"):
        fs.summary_table(runs)


def _fake_analysis() -> fs.FlatSharpAnalysis:
    s = np.linspace(-1.0, 11.0, 13)
    ds = np.linspace(-0.05, 0.05, 9)
    pair = fs.PairSection(0, 0, 10.0, s, 0.01 * (s - 5) ** 2, ds, ds**2, 0.1 * ds**2,
                          2.0, 0.2, 2.0, 0.2)  # fmt: skip
    r = np.linspace(-0.5, 0.5, 11)
    eigen = {
        (opt, 0): fs.EigenSection(opt, 0, lam, r, 0.5 * lam * r**2, lam, np.ones(3))
        for opt, lam in (("sgd", 1.0), ("adam", 5.0))
    }
    return fs.FlatSharpAnalysis({(0, 0): pair}, eigen, {("sgd", 0): 1.0, ("adam", 0): 5.0})


def test_fake_analysis_table_and_figures():
    a = _fake_analysis()
    table = a.pair_table()
    assert bool(table["deceptive"].iloc[0]) and bool(table["exact v^T H v agrees"].iloc[0])
    assert a.deception() == (1, 1)
    fig = fs_fig.plot_fig7(a, 0, 0, radius=0.25)
    assert len(fig.axes) == 5
    with pytest.raises(ValueError, match="sgd_seed"):
        fs_fig.plot_fig7(a, 1, 0)
    slider = fs_fig.fig7_slider(a, radii=[0.25, 0.5])
    assert slider.params()["radius"] == 0.5  # the static view shows the widest section


def test_layer_gains_figure_and_slider():
    g = {0: np.array([1.5, 2.0, 2.6, 3.0]), 1: np.array([4.0, 2.0, 8.0, 9.0])}
    runs = _four_runs(max_gains=[g[0], g[0], g[1], g[1]],
                      top_signal_gains=[g[0] * 0.9, g[0], g[1] * 0.5, g[1]])  # fmt: skip
    fig = fs_fig.plot_layer_gains(runs, 2)
    right = fig.axes[1]
    bars = [ln for ln in right.lines if len(ln.get_xdata()) == 2]
    assert len(bars) == 4  # one balanced-profile bar per run, at g_m^(k/m)
    expected = sorted([3.0**0.5] * 2 + [9.0**0.5] * 2)
    assert sorted(b.get_ydata()[0] for b in bars) == pytest.approx(expected)
    dots = sorted(ln.get_ydata()[0] for ln in right.lines if len(ln.get_xdata()) == 1)
    assert dots == pytest.approx(sorted([2.0, 2.0, 1.8, 2.0, 2.0, 2.0, 2.0, 1.0]))
    slider = fs_fig.fig6_slider(runs)
    assert slider.stops["layer"] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="layer"):
        fs_fig.plot_layer_gains(runs, 5)
    with pytest.raises(TypeError, match="layer"):
        fs_fig.plot_layer_gains(runs, "2")


def _four_runs(**columns) -> pd.DataFrame:
    """Two SGD and two Adam runs (seeds 0, 1), all converged; ``columns`` adds or replaces."""
    base = {
        "optimizer": ["sgd", "sgd", "adam", "adam"],
        "seed": [0, 1, 0, 1],
        "lr": [0.5, 0.5, 3e-4, 3e-4],
        "status": ["converged"] * 4,
        "sharpness": [1.0, 3.0, 10.0, 14.0],
        "final_train_loss": [0.1, 0.1, 0.1, 0.1],
        "final_val_loss": [0.2, 0.2, 0.2, 0.2],
    }
    return pd.DataFrame({**base, **columns})


def test_summary_table_means():
    t = fs.summary_table(_four_runs())
    assert t.loc[("SGD (lr 0.5)", "lambda_max"), "measured"].startswith("2 ± 1.4")
    assert t.loc[("Adam (lr 0.0003)", "lambda_max"), "paper"] == "12.9 ± 2.2"


def test_scale_comparison_quick_full_paper(tmp_path):
    runs = _four_runs(
        final_train_loss=[0.1, 0.3, 0.2, 0.2],
        final_val_loss=[0.2, 0.2, 0.4, 0.4],
        # geometric (balanced) gains for SGD; Adam's jump at the last layer
        max_gains=[np.array([2.0, 4.0, 8.0])] * 2 + [np.array([1.0, 1.0, 8.0])] * 2,
    )
    analysis = _fake_analysis()
    alone = fs.scale_comparison(runs, analysis, None)
    assert list(alone.columns) == ["quick", "full", "paper"] and alone["full"].isna().all()
    assert alone.loc["Adam / SGD lambda_max", "quick"] == pytest.approx(12.0 / 2.0)
    assert alone.loc["SGD train loss", "quick"] == pytest.approx(0.2)
    assert alone.loc["deceptive pairs (share)", "quick"] == 1.0
    assert alone.loc["SGD gain imbalance", "quick"] == pytest.approx(0.0, abs=1e-12)
    adam = np.sqrt(np.mean((np.log([1.0, 1.0, 8.0]) - np.log([2.0, 4.0, 8.0])) ** 2))
    assert alone.loc["Adam gain imbalance", "quick"] == pytest.approx(adam)
    assert alone.loc["Adam / SGD lambda_max", "paper"] == pytest.approx(7.33, abs=0.01)
    # a committed full-mode result, stored and read back through flatlib.records
    honest = analysis.pair_table().assign(**{"line curvature at SGD": 0.0})
    # roles swapped: Adam is the flatter member and looks sharper along the segment
    swapped = analysis.pair_table().assign(**{"lambda_max Adam": 0.5, "line curvature at SGD": 0.1,
                                              "line curvature at Adam": 0.3})  # fmt: skip
    full_runs = runs.assign(sharpness=[2.0, 2.0, 4.0, 8.0])
    shares = []
    for pairs in (honest, pd.concat([honest, swapped], ignore_index=True)):
        fr.save("flat_vs_sharp", {"runs": full_runs, "pairs": pairs}, "d", "c", tmp_path)
        both = fs.scale_comparison(runs, analysis, fr.load("flat_vs_sharp", tmp_path))
        shares.append(both.loc["deceptive pairs (share)", "full"])
    assert both.loc["Adam / SGD lambda_max", "full"] == pytest.approx(3.0)
    assert shares == [0.0, 0.5]
    with pytest.raises(TypeError, match="full"):
        fs.scale_comparison(runs, analysis, {"runs": runs})
    with pytest.raises(TypeError, match="analysis"):
        fs.scale_comparison(runs, None, None)


def test_linear_denoiser_loss_is_the_expected_loss_of_the_wiener_filter():
    config = fs.chapter_grid("quick")[0] | {"n_train": 2000, "n_val": 500}
    train, val = fs.linear_denoiser_loss(config)
    data = fs_sweep.run_data(config)
    y = data.y_train.double()
    sigma = config["noise_std"]
    mean, c = y.mean(0), torch.cov(y.T, correction=0)
    t = c @ torch.linalg.inv(c + sigma**2 * torch.eye(len(c), dtype=c.dtype))
    # Monte Carlo over fresh noise draws: the affine map t (y + n - mean) + mean
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(20):
        x = y + sigma * torch.randn(y.shape, generator=gen, dtype=y.dtype)
        losses.append(float((((x - mean) @ t.T + mean - y) ** 2).mean()))
    assert train == pytest.approx(np.mean(losses), rel=3e-3)
    trivial = float(((y - mean) ** 2).mean())
    assert train < 0.7 * trivial and val == pytest.approx(train, rel=0.1)
    # a perturbed map does worse in expectation: the filter is optimal
    worse = t * 1.05
    assert float((((y - mean) @ (worse - torch.eye(len(t), dtype=t.dtype)).T) ** 2).sum(1).mean()
                 + sigma**2 * (worse**2).sum()) / y.shape[1] > train  # fmt: skip
    with pytest.raises(TypeError, match="config"):
        fs.linear_denoiser_loss([("n_train", 300)])


def _trained_pair_runs() -> pd.DataFrame:
    """Four tiny bias-free ReLU nets (two 'sgd', two 'adam') stored like chapter 10's runs."""
    rows = []
    config = fs.chapter_grid("quick")[0]
    for opt in ("sgd", "adam"):
        for seed in (0, 1):
            net = mlp([196] * 3, "relu", "he", False, seed + (10 if opt == "adam" else 0))
            params = torch.nn.utils.parameters_to_vector(net.parameters()).detach().numpy()
            rows.append({**config, "depth": 2, "init": "he", "optimizer": opt, "seed": seed,
                         "n_train": 300, "n_val": 50, "sharpness_samples": 300,
                         "status": "converged", "sharpness": 1.0, "final_train_loss": 0.1,
                         "params": params})  # fmt: skip
    return pd.DataFrame(rows)


def test_rescaling_keeps_the_function_and_moves_the_curvature():
    runs = _trained_pair_runs()
    net = fs.rebuild_model(runs.iloc[2])
    x = torch.randn(20, 196, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    moved = fs.rescale_layers(net, 1, 3.0)
    torch.testing.assert_close(moved(x), net(x))
    lin = [m for m in moved if isinstance(m, nn.Linear)]
    orig = [m for m in net if isinstance(m, nn.Linear)]
    torch.testing.assert_close(lin[0].weight, 3.0 * orig[0].weight)
    table = fs.rescaling_table(runs, 0, 0, 1, [0.5, 1.0, 4.0], dtype=torch.float64)
    assert np.allclose(table["loss at Adam"], table["loss at Adam"].iloc[1], rtol=1e-10)
    # lambda_max is not invariant: rescaling by 4 makes the Adam point sharper
    assert table["lambda_max Adam"].iloc[2] > 2 * table["lambda_max Adam"].iloc[1]
    assert (table["lambda_max SGD"] == table["lambda_max SGD"].iloc[0]).all()
    with pytest.raises(ValueError, match="layer"):
        fs.rescale_layers(net, 2, 2.0)
    with pytest.raises(ValueError, match="alpha"):
        fs.rescale_layers(net, 1, -1.0)
    with pytest.raises(ValueError, match="seed"):
        fs.rescaling_table(runs, 5, 0, 1, [1.0])
    with pytest.raises(TypeError, match="alphas"):
        fs.rescaling_table(runs, 0, 0, 1, 2.0)


def test_layer_table_norms_and_shares():
    runs = _trained_pair_runs()
    table = fs.layer_table(runs)
    assert list(table.index) == [1, 2]
    assert table["share of segment"].sum() == pytest.approx(1.0)
    w = [fs.rebuild_model(r) for _, r in runs.iterrows()]
    first = [m for m in w[0] if isinstance(m, nn.Linear)][0].weight.detach().numpy()
    second = [m for m in w[1] if isinstance(m, nn.Linear)][0].weight.detach().numpy()
    assert table.loc[1, "SGD ||W||_F"] == pytest.approx(
        (np.linalg.norm(first) + np.linalg.norm(second)) / 2
    )
