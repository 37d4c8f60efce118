"""Tests of flatlib.experiments.batch_basins (Sagun et al., Sec. 4.1) and its figures (ch. 12)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import flatlib
from flatlib.curvature.hessian import (
    HessianOperator,
    exact_hessian,
    get_vector,
    interpolate,
    set_vector,
)
from flatlib.experiments import batch_basins as bb
from flatlib.nets.classifier import cross_entropy
from flatlib.nets.models import mlp

# A tiny but complete configuration: a few seconds for a whole two-phase run.
TINY = dict(
    n_train=120,
    n_val=40,
    hidden=[6],
    large_batch=60,
    steps_large=40,
    steps_small=30,
    record_every=5,
    top_k=3,
    eig_tol=1e-8,
    n_alphas=4,
    n_radii=5,
    lr=0.2,
)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FLATLIB_CACHE", str(tmp_path))
    return tmp_path


@pytest.fixture
def tiny_run(cache):
    runs = bb.run_experiment(seeds=(0,), small_batches=(8,), mode="quick", progress=False, **TINY)
    assert runs["status"].tolist() == ["ok"], runs.get("error")
    return runs.iloc[0]


def _model_for(row):
    data = bb.load_data(row)
    model = mlp([data[0].shape[1], *row["hidden"], 10], "relu", "he", seed=0)
    return model, data


def test_phase2_starts_exactly_at_phase1_end(tiny_run):
    assert np.array_equal(tiny_run["theta_switch"], tiny_run["theta_large"])
    assert not np.array_equal(tiny_run["theta_small"], tiny_run["theta_large"])
    # the step axis is continuous across the switch and the switch is recorded once
    steps = np.asarray(tiny_run["steps"])
    assert np.all(np.diff(steps) > 0) and steps[-1] == TINY["steps_large"] + TINY["steps_small"]
    assert (steps == TINY["steps_large"]).sum() == 1


def test_segment_ends_reproduce_end_point_losses(tiny_run):
    """Segment at alpha=0/1 vs the losses recorded by train_classifier and a fresh forward."""
    a = np.asarray(tiny_run["alphas"])
    seg = np.asarray(tiny_run["seg_train_loss"])
    assert seg[a == 0][0] == pytest.approx(tiny_run["loss_large"], abs=1e-13)
    assert seg[a == 1][0] == pytest.approx(tiny_run["loss_small"], abs=1e-13)
    model, (x, y, xv, yv) = _model_for(tiny_run)
    for theta, key in (
        (tiny_run["theta_large"], "loss_large"),
        (tiny_run["theta_small"], "loss_small"),
    ):
        set_vector(model, torch.tensor(theta))
        with torch.no_grad():
            assert float(cross_entropy(model(x), y)) == pytest.approx(tiny_run[key], abs=1e-13)


def test_segment_profile_matches_hessian_interpolate(tiny_run):
    model, (x, y, _, _) = _model_for(tiny_run)
    other, _ = _model_for(tiny_run)
    ta, tb = tiny_run["theta_large"], tiny_run["theta_small"]
    alphas = np.array([-0.5, 0.0, 0.3, 1.0, 1.7])
    before = get_vector(model).clone()
    loss, acc = bb.segment_profile(model, ta, tb, x, y, alphas)
    assert torch.equal(get_vector(model), before)  # parameters restored
    set_vector(model, torch.tensor(ta))
    set_vector(other, torch.tensor(tb))
    ref = interpolate(HessianOperator(model, cross_entropy, x, y), other, alphas)
    np.testing.assert_allclose(loss, ref, rtol=1e-12, atol=1e-14)
    assert np.all((acc >= 0) & (acc <= 1))


def test_eigenvalues_and_rayleigh_against_exact_hessian(tiny_run):
    model, (x, y, _, _) = _model_for(tiny_run)
    for theta, eig, ray in (
        (tiny_run["theta_large"], tiny_run["eig_large"], tiny_run["rayleigh_large"]),
        (tiny_run["theta_small"], tiny_run["eig_small"], tiny_run["rayleigh_small"]),
    ):
        set_vector(model, torch.tensor(theta))
        H = exact_hessian(HessianOperator(model, cross_entropy, x, y))
        top = np.sort(np.linalg.eigvalsh(H))[::-1][: TINY["top_k"]]
        np.testing.assert_allclose(eig, top, rtol=1e-6)
        u = tiny_run["theta_small"] - tiny_run["theta_large"]
        u = u / np.linalg.norm(u)
        assert ray == pytest.approx(u @ H @ u, rel=1e-9)
        assert ray <= eig[0]


def test_cache_and_shared_phase1(cache, monkeypatch):
    calls = {"p1": 0, "p2": 0}
    real1, real2 = bb.run_large_batch, bb.run_batch_switch

    def count1(config):
        calls["p1"] += 1
        return real1(config)

    def count2(config):
        calls["p2"] += 1
        return real2(config)

    monkeypatch.setattr(bb, "run_large_batch", count1)
    monkeypatch.setattr(bb, "run_batch_switch", count2)
    first = bb.run_experiment(seeds=(0,), small_batches=(8, 60), progress=False, **TINY)
    assert calls == {"p1": 1, "p2": 2}  # one Phase I shared by both small batches
    again = bb.run_experiment(seeds=(0,), small_batches=(8, 60), progress=False, **TINY)
    assert calls == {"p1": 1, "p2": 2}  # everything read back from disk
    for name in ("theta_small", "seg_train_loss", "eig_small"):
        for i in range(2):
            assert np.array_equal(first.iloc[i][name], again.iloc[i][name])


def test_reruns_are_reproducible(cache, tmp_path):
    a = bb.run_batch_switch(bb.batch_switch_config("quick", small_batch=8, **TINY))
    flatlib.config.set_cache_dir(tmp_path / "other")
    b = bb.run_batch_switch(bb.batch_switch_config("quick", small_batch=8, **TINY))
    assert np.array_equal(a["theta_small"], b["theta_small"])
    assert a["barrier"] == b["barrier"]


@given(data=st.data(), n=st.integers(1, 10), extend=st.integers(0, 3))
def test_barrier_height_brute_force(data, n, extend):
    alphas = bb.segment_alphas(extend / n, n)
    losses = data.draw(st.lists(st.floats(0.0, 10.0), min_size=alphas.size, max_size=alphas.size))
    inside = losses[extend : extend + n + 1]
    expected = max(inside) - max(inside[0], inside[-1])
    assert bb.barrier_height(alphas, losses) == pytest.approx(expected)
    assert bb.barrier_height(alphas, losses) >= 0


def test_segment_alphas_hit_end_points_exactly():
    a = bb.segment_alphas(1.0, 20)
    assert a[0] == -1.0 and a[-1] == 2.0 and (a == 0).sum() == 1 and (a == 1).sum() == 1
    assert np.allclose(np.diff(a), 0.05)


def test_loss_jump():
    steps = np.array([0, 10, 20, 30, 40])
    losses = np.array([1.0, 0.5, 1.5, 0.4, 2.0])
    assert bb.loss_jump(steps, losses, 10, 20) == pytest.approx(3.0)
    assert bb.loss_jump(steps, losses, 10, 10) == pytest.approx(3.0)
    assert bb.loss_jump(steps, losses, 20, 10) == pytest.approx(0.4 / 1.5)


def test_bad_input():
    with pytest.raises(ValueError, match="unknown config keys"):
        bb.batch_switch_config("quick", batch=3)
    with pytest.raises(ValueError, match="small_batch"):
        bb.batch_switch_config("quick", small_batch=0)
    with pytest.raises(TypeError, match="lr"):
        bb.batch_switch_config("quick", lr="fast")
    with pytest.raises(ValueError, match="mode"):
        bb.batch_switch_config("huge")
    with pytest.raises(TypeError, match="hidden"):
        bb.batch_switch_config("quick", hidden=64)
    with pytest.raises(ValueError, match="seeds"):
        bb.batch_switch_grid(seeds=(), small_batches=(32,))
    with pytest.raises(ValueError, match="end points"):
        bb.barrier_height([0.0, 0.5], [1.0, 2.0])
    with pytest.raises(ValueError, match="shape"):
        bb.barrier_height([0.0, 1.0], [1.0])
    with pytest.raises(ValueError, match="switch_step"):
        bb.loss_jump([0, 1, 2], [1.0, 1.0, 1.0], 5, 1)
    with pytest.raises(ValueError, match="window"):
        bb.loss_jump([0, 1, 2], [1.0, 1.0, 1.0], 2, 1)
    with pytest.raises(ValueError, match="extend"):
        bb.segment_alphas(-1.0, 10)
    model = mlp([4, 3, 10], seed=0)
    x, y = torch.zeros(5, 4, dtype=torch.float64), torch.zeros(5, dtype=torch.long)
    theta = get_vector(model).numpy()
    with pytest.raises(ValueError, match="theta_a"):
        bb.segment_profile(model, theta[:-1], theta, x, y, [0.0, 1.0])
    with pytest.raises(ValueError, match="non-zero"):
        bb.rayleigh_quotient(model, x, y, theta, np.zeros_like(theta))


def test_figures_draw_and_reject_bad_runs(cache):
    from flatlib.figures import batch_basins as fb
    from flatlib.figures.widgets import SliderFigure

    runs = bb.run_experiment(seeds=(0,), small_batches=(8, 60), progress=False, **TINY)
    table = bb.summary_table(runs)
    assert list(table["small batch"]) == [8, 60]
    for fig in (
        fb.plot_two_phase(runs, 0, 8),
        fb.plot_eigenvalues(runs, 8),
        fb.plot_segment(runs, 0, 8),
        fb.plot_directions(runs, 0, 60),
    ):
        assert fig.axes
    assert isinstance(fb.batch_slider(runs), SliderFigure)
    with pytest.raises(ValueError, match="no run"):
        fb.plot_segment(runs, seed=5, small_batch=8)
    with pytest.raises(TypeError, match="DataFrame"):
        bb.summary_table([1, 2])
    with pytest.raises(ValueError, match="columns"):
        bb.summary_table(runs.drop(columns=["alphas"]))


@pytest.fixture
def tiny_runs(cache):
    """A two-phase run (small batch 8) and its control (the large batch 60 kept)."""
    runs = bb.run_experiment(seeds=(0,), small_batches=(8, 60), progress=False, **TINY)
    assert runs["status"].tolist() == ["ok", "ok"], runs.get("error")
    return runs


def test_switch_and_segment_tables_brute_force(tiny_runs):
    switch = bb.switch_table(tiny_runs)
    segments = bb.segment_table(tiny_runs)
    for i, r in tiny_runs.reset_index(drop=True).iterrows():
        steps, acc = np.asarray(r["steps"]), np.asarray(r["train_acc"])
        n1, window = TINY["steps_large"], max(TINY["record_every"], TINY["steps_small"] // 10)
        after = [j for j, s in enumerate(steps) if n1 < s <= n1 + window]
        at = list(steps).index(n1)
        assert switch.loc[i, "acc drop"] == pytest.approx(acc[at] - min(acc[j] for j in after))
        assert switch.loc[i, "jump"] == r["jump"] and switch.loc[i, "val jump"] == r["val_jump"]
        assert switch.loc[i, "end / switch loss"] == pytest.approx(
            r["loss_small"] / r["loss_large"]
        )
        a, tl = np.asarray(r["alphas"]), np.asarray(r["seg_train_loss"])
        inside = [tl[j] for j in range(a.size) if 0 <= a[j] <= 1]
        rises = [inside[j + 1] - inside[j] for j in range(len(inside) - 1)]
        assert segments.loc[i, "largest rise"] == pytest.approx(max(rises))
        assert segments.loc[i, "beyond LB"] == pytest.approx(tl[0] / r["loss_large"])
        assert segments.loc[i, "beyond SB"] == pytest.approx(tl[-1] / r["loss_small"])
        assert segments.loc[i, "train SB / LB"] == pytest.approx(r["loss_small"] / r["loss_large"])
        past = [tl[j] for j in range(a.size) if a[j] > 1]
        assert segments.loc[i, "dip beyond SB"] == pytest.approx(min(past) / r["loss_small"])


def test_outlier_and_equal_steps_tables(tiny_runs):
    from flatlib.curvature.outliers import count_outliers

    counts = bb.outlier_table(tiny_runs, classes=2)
    assert len(counts) == 2 * len(tiny_runs)
    for _, c in counts.iterrows():
        r = tiny_runs[tiny_runs["small_batch"] == c["small batch"]].iloc[0]
        eig = np.asarray(r["eig_large" if c["end"] == "Phase I" else "eig_small"])
        assert {m: c[m] for m in ("gap", "ratio", "elbow")} == count_outliers(eig, eig.size)
        assert c["edge ratio"] == pytest.approx(eig[0] / eig[1])
        assert c["steps"] == TINY["steps_large"] + (c["end"] == "Phase II") * TINY["steps_small"]
    with pytest.raises(ValueError, match="classes"):
        bb.outlier_table(tiny_runs, classes=3)  # only top_k = 3 eigenvalues stored
    equal = bb.equal_steps_table(tiny_runs)
    assert len(equal) == 1  # the control has no partner of its own
    e, sb = equal.iloc[0], tiny_runs.iloc[0]
    control = tiny_runs[tiny_runs["small_batch"] == TINY["large_batch"]].iloc[0]
    assert e["lambda control"] == control["lambda_small"] and e["lambda SB"] == sb["lambda_small"]
    c = int(e["count"])
    assert e["top-c lower"] == int(np.sum(sb["eig_small"][:c] < control["eig_small"][:c]))
    assert bb.equal_steps_table(tiny_runs.iloc[:1]).empty  # no control, no row


def test_section_table_and_directional_curvature(tiny_runs):
    sections = bb.section_table(tiny_runs)
    r = tiny_runs.iloc[0]
    assert sections.loc[0, "share LB"] == pytest.approx(r["rayleigh_large"] / r["lambda_large"])
    radii, xs = np.asarray(r["radii"]), np.asarray(r["xs_small_top"])
    centre = xs[np.argmin(np.abs(radii))]
    assert sections.loc[0, "growth top SB"] == pytest.approx(max(xs[0], xs[-1]) / centre)
    # the gradient difference against the exact Hessian, and against the stored HVP value
    model, (x, y, _, _) = _model_for(r)
    u = r["theta_small"] - r["theta_large"]
    before = get_vector(model).clone()
    fd = bb.directional_curvature(model, x, y, r["theta_large"], 3 * u)  # any length of u
    assert torch.equal(get_vector(model), before)  # parameters restored
    set_vector(model, torch.tensor(r["theta_large"]))
    H = exact_hessian(HessianOperator(model, cross_entropy, x, y))
    u_hat = u / np.linalg.norm(u)
    assert fd == pytest.approx(u_hat @ H @ u_hat, rel=1e-6)
    check = bb.curvature_check(tiny_runs)
    assert (check["rel. diff"] < 1e-6).all(), check
    with pytest.raises(ValueError, match="non-zero"):
        bb.directional_curvature(model, x, y, r["theta_large"], np.zeros_like(u))
    with pytest.raises(ValueError, match="eps"):
        bb.directional_curvature(model, x, y, r["theta_large"], u, eps=0.0)


def test_eigenvalue_figure_shows_the_control(tiny_runs):
    from flatlib.figures import batch_basins as fb

    fig = fb.plot_eigenvalues(tiny_runs, 8)
    assert len(fig.axes[0].lines) == 3  # Phase I end, Phase II end, control end
    assert len(fb.plot_eigenvalues(tiny_runs.iloc[:1], 8).axes[0].lines) == 2
