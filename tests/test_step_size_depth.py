"""Checks of flatlib.experiments.step_size_depth and flatlib.figures.step_size_depth (chapter 9,
Sec. 6, Figs. 4-5) on synthetic run tables whose answers are known in advance; no training, a
few seconds."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from flatlib import records as fr
from flatlib.experiments import step_size_depth as ssd
from flatlib.experiments.sweep import EPOCH_CAP, NOISE_STD, TARGET_LOSS
from flatlib.figures import step_size_depth as ssd_fig
from flatlib.theory import linear

TARGET = 0.03
LRS = (0.5, 1.0, 2.0, 4.0, 8.0)


def _table(max_lr: dict[int, float], lrs=LRS, scale: float = 1.0, beyond: str = "diverged"):
    """Tiles converge iff lr <= max_lr[depth], with sharpness = scale * depth / (10 * lr)
    there; the tiles above the edge end with status ``beyond``."""
    rows = []
    for m, top in max_lr.items():
        for lr in lrs:
            ok = lr <= top
            status = "converged" if ok else beyond
            checks = np.array([0.05, 0.04, 0.9 * TARGET]) if ok else np.array([0.06, 0.05, 0.045])
            rows.append(
                {
                    "depth": m,
                    "lr": lr,
                    "status": status,
                    "sharpness": scale * m / (10 * lr) if ok else np.nan,
                    "final_train_loss": np.nan if status == "diverged" else checks[-1],
                    "trivial_loss": 0.05,
                    "target_loss": TARGET,
                    "initial_loss": 0.4,
                    "check_steps": np.array([600, 1200, 1800]),
                    "check_loss": checks,
                    "curve_steps": np.array([600, 1200, 1800]),
                    "train_loss_curve": checks * 1.1,
                }
            )
    return pd.DataFrame(rows)


def test_converged_rule_is_status_and_finite_sharpness():
    runs = _table({2: 2.0}, beyond="not converged")
    runs.loc[runs["lr"] == 1.0, "sharpness"] = np.nan  # converged but never measured
    mask = ssd.converged_mask(runs)
    assert mask.tolist() == [True, False, True, False, False]
    # a finite sharpness does not make a run converged: the status decides
    runs.loc[runs["lr"] == 4.0, "sharpness"] = 0.01
    assert not ssd.converged_mask(runs).iloc[3]
    counts = ssd.outcome_counts(runs)
    assert counts.to_dict() == {"converged": 2, "not converged": 3, "diverged": 0, "tiles": 5}
    # the loss no longer matters: a converged run whose loss is high still counts
    runs.loc[0, "final_train_loss"] = 10.0
    assert ssd.converged_mask(runs).iloc[0]


def test_map_max_step_and_flattest_on_known_table():
    runs = _table({2: 8.0, 4: 4.0, 8: 2.0})
    table = ssd.sharpness_map(runs)
    assert list(table.index) == [2, 4, 8] and list(table.columns) == list(LRS)
    assert table.loc[4, 1.0] == pytest.approx(0.4) and np.isnan(table.loc[8, 4.0])
    assert ssd.max_convergent_step(runs).tolist() == [8.0, 4.0, 2.0]
    np.testing.assert_allclose(ssd.flattest_sharpness_by_depth(runs), [0.025, 0.1, 0.4])
    losses = ssd.loss_map(runs)
    assert losses.loc[8, 2.0] == pytest.approx(0.9 * TARGET) and np.isnan(losses.loc[8, 4.0])


def test_loss_at_check_picks_the_kth_check():
    runs = _table({2: 1.0})
    runs.loc[runs["lr"] == 8.0, "check_loss"] = pd.Series([np.array([0.07])], index=[4])
    first, third = ssd.loss_at_check(runs), ssd.loss_at_check(runs, check=3)
    np.testing.assert_allclose(first.loc[2].to_numpy(), [0.05, 0.05, 0.06, 0.06, 0.07])
    assert third.loc[2, 0.5] == pytest.approx(0.9 * TARGET) and np.isnan(third.loc[2, 8.0])
    with pytest.raises(ValueError, match="check"):
        ssd.loss_at_check(runs, check=0)
    with pytest.raises(TypeError, match="check"):
        ssd.loss_at_check(runs, check=1.0)
    with pytest.raises(ValueError, match="check_loss"):
        ssd.loss_at_check(runs.drop(columns="check_loss"))


def test_slopes():
    assert ssd.loglog_slope([2, 4, 8], [8.0, 4.0, 2.0]) == pytest.approx(-1.0)
    assert ssd.loglog_slope([1, 2, np.nan], [3.0, 12.0, 1.0]) == pytest.approx(2.0)
    series = pd.Series([16.0, np.nan, 4.0], index=[2, 4, 8])
    assert ssd.depth_slope(series) == pytest.approx(-1.0)
    assert np.isnan(ssd.depth_slope(pd.Series([np.nan, 3.0], index=[2, 4])))
    assert np.isnan(ssd.depth_slope(pd.Series([], dtype=float)))
    # per depth, sharpness ~ 1/lr: slope -1 against the step size
    trend = ssd.step_trend(_table({2: 8.0, 4: 0.5}))
    assert trend.loc[2] == pytest.approx(-1.0) and np.isnan(trend.loc[4])


def test_stable_step_counts_bounded_runs_that_missed_the_target():
    runs = _table({2: 4.0, 4: 2.0})
    runs.loc[(runs["depth"] == 2) & (runs["lr"] == 8.0), "status"] = "not converged"
    assert ssd.max_stable_step(runs).tolist() == [8.0, 2.0]
    assert ssd.max_convergent_step(runs).tolist() == [4.0, 2.0]
    assert ssd.max_stable_step(runs.assign(status="diverged")).isna().all()


def test_findings_detects_each_direction():
    identity = _table({2: 8.0, 4: 4.0, 8: 2.0})
    he = _table({2: 4.0, 4: 1.0, 8: 0.5}, scale=2.0)
    f = ssd.findings(identity, he)
    assert f.lr_slope == pytest.approx(-1.0) and f.flattest_slope == pytest.approx(2.0)
    assert f.stable_slope_identity == pytest.approx(-1.0) and f.stable_slope_he < -1.0
    assert f.he_less_tolerant and f.he_sharper is True and f.all_within_bound
    assert f.diverged_only_he == 5 and f.diverged_only_identity == 0
    assert f.counts_identity["converged"] == 12 and f.counts_he["converged"] == 7
    assert f.table().shape == (3, 6)
    assert f.max_ratio == pytest.approx(0.8)  # He, depth 8, lr 0.5: sharpness 3.2, 2/eta = 4
    # swapped roles: identity is now the less tolerant and sharper one
    g = ssd.findings(he, identity)
    assert not g.he_less_tolerant and g.he_sharper is False
    # one tile the other way round (identity diverged, He did not) spoils "less tolerant"
    mixed = he.copy()
    mixed.loc[(mixed["depth"] == 8) & (mixed["lr"] == 8.0), "status"] = "not converged"
    m = ssd.findings(identity, mixed)
    assert (m.diverged_only_he, m.diverged_only_identity) == (5, 1) and not m.he_less_tolerant
    # He never converging: no slopes, nothing to compare the sharpness with
    never = he.assign(status="not converged", sharpness=np.nan)
    h = ssd.findings(identity, never)
    assert h.he_sharper is None and h.max_lr_he.isna().all() and h.counts_he["converged"] == 0
    assert not h.he_less_tolerant and h.diverged_only_identity == 3
    assert np.isnan(ssd.findings(never, never).lr_slope)
    # a tile above 2/eta breaks the stability check
    bad = identity.copy()
    bad.loc[(bad["depth"] == 2) & (bad["lr"] == 8.0), "sharpness"] = 0.3
    worse = ssd.findings(bad, he)
    assert not worse.all_within_bound and worse.max_ratio == pytest.approx(1.2)
    assert worse.n_checked - worse.n_within == 1


def test_scale_comparison_without_and_with_a_record(tmp_path):
    identity = _table({2: 8.0, 4: 4.0, 8: 2.0})
    he = _table({2: 4.0, 4: 1.0, 8: 0.5}, scale=2.0)
    alone = ssd.scale_comparison(identity, he, None)
    assert list(alone.columns) == ["quick", "full"] and alone["full"].isna().all()
    assert alone.loc["slope of max convergent lr (identity)", "quick"] == pytest.approx(-1.0)
    assert alone.loc["He sharper where both converge", "quick"] is True
    assert alone.loc["converged tiles (He)", "quick"] == "7 of 15"
    # a record with the roles swapped, stored and read back through flatlib.records;
    # a record has no per-epoch checks, only the logged curve
    runs = pd.concat([he.assign(init="identity"), identity.assign(init="he")], ignore_index=True)
    runs = runs.drop(columns=["check_steps", "check_loss"])
    fr.save("step_size_depth", {"runs": runs}, "digits", "cmd", tmp_path)
    full = fr.load("step_size_depth", tmp_path)
    assert len(ssd.full_runs(full, "he")) == len(identity)
    assert len(ssd_fig.plot_fig4(ssd.full_runs(full, "identity")).axes) >= 2
    both = ssd.scale_comparison(identity, he, full)
    assert both.loc["He sharper where both converge", "full"] is False
    # flattest He tiles 0.1, 0.8, 3.2 at m = 2, 4, 8: slope log(32) / log(4) = 2.5
    assert both.loc["slope of flattest sharpness (identity)", "full"] == pytest.approx(2.5)
    with pytest.raises(TypeError, match="full"):
        ssd.full_runs(runs, "he")
    with pytest.raises(TypeError, match="full"):
        ssd.scale_comparison(identity, he, runs)


def test_stability_table_ratios():
    runs = _table({2: 8.0})
    table = ssd.stability_table(runs)
    np.testing.assert_allclose(table["2/eta"], 2.0 / table["lr"])
    np.testing.assert_allclose(table["ratio"], table["lambda_max"] * table["lr"] / 2)
    assert table["within"].all()
    runs.loc[0, "sharpness"] = 2.0 / 0.5 * 1.01  # 1 % above the bound: inside the 2 % tolerance
    assert ssd.stability_table(runs)["within"].iloc[0]
    assert not ssd.stability_table(runs, rtol=0.0)["within"].iloc[0]


def test_theorem1_prediction_scales_by_output_dimension():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 5))
    T = np.diag([2.0, 1.0, 0.5, 0.3, 0.1])
    y = x @ T.T
    pred = ssd.theorem1_prediction([1, 2, 4], x, y)
    that = linear.optimal_map(x, y)
    expected = [2 * m * np.linalg.norm(that, 2) ** (2 * (1 - 1 / m)) / 5 for m in (1, 2, 4)]
    np.testing.assert_allclose(pred, expected, rtol=1e-12)
    assert pred[2] / pred[1] == pytest.approx(2 * 2.0**0.5, rel=1e-6)


def test_grids_follow_the_protocol():
    ident = ssd.chapter_grid("identity", "quick")
    he = ssd.chapter_grid("he", "quick")
    assert len(ident) == len(he) == len(ssd.QUICK_DEPTHS) * len(ssd.QUICK_LRS)
    assert {c["section_radius"] for c in ident + he} == {ssd.SECTION_RADIUS}
    assert {c["init"] for c in he} == {"he"} and {c["init"] for c in ident} == {"identity"}
    assert {c["epochs"] for c in ident} == {EPOCH_CAP["quick"]}
    assert {c["epochs"] for c in he} == {ssd.QUICK_HE_EPOCHS} and ssd.QUICK_HE_EPOCHS < EPOCH_CAP[
        "quick"
    ]
    for c in ident + he:
        assert (c["size"], c["noise_std"], c["target_loss"]) == (
            14, NOISE_STD["quick"], TARGET_LOSS["quick"])  # fmt: skip
        assert c["bias"] is False and c["noise"] == "fresh" and c["dtype"] == "float32"
    full = ssd.chapter_grid("identity", "full")
    assert {c["size"] for c in full} == {28} and {c["epochs"] for c in full} == {EPOCH_CAP["full"]}
    assert {2, 4, 8, 12, 16} <= {c["depth"] for c in full}
    assert len({c["lr"] for c in full}) >= 6
    full_he = ssd.chapter_grid("he", "full")
    pairs = {(c["depth"], c["lr"]) for c in full}
    assert {(c["depth"], c["lr"]) for c in full_he} <= pairs  # every He tile has a twin
    for mode, grids in (("quick", (ident, he)), ("full", (full, full_he))):
        tile = ssd.FIG5B_TILE[mode]
        for grid in grids:
            assert any(c["depth"] == tile["depth"] and c["lr"] == tile["lr"] for c in grid)


def test_training_curve_prefers_the_checks():
    row = _table({2: 8.0}).iloc[0]
    steps, loss = ssd.training_curve(row)
    np.testing.assert_allclose(steps, [0, 600, 1200, 1800])
    np.testing.assert_allclose(loss, [0.4, 0.05, 0.04, 0.9 * TARGET])
    steps, loss = ssd.training_curve(row.drop(["check_steps", "check_loss"]))
    np.testing.assert_allclose(loss, row["train_loss_curve"])
    steps, loss = ssd.training_curve(pd.Series({"status": "diverged"}))
    assert steps.size == loss.size == 0


def test_bad_arguments_raise():
    runs = _table({2: 8.0})
    with pytest.raises(ValueError, match="init"):
        ssd.chapter_grid("xavier", "quick")
    with pytest.raises(ValueError, match="mode"):
        ssd.chapter_grid("he", "huge")
    with pytest.raises(ValueError, match="columns"):
        ssd.sharpness_map(runs.drop(columns="sharpness"))
    with pytest.raises(ValueError, match="columns"):
        ssd.loss_map(runs.drop(columns="final_train_loss"))
    with pytest.raises(ValueError, match="runs must not be empty"):
        ssd.converged_mask(runs.iloc[:0])
    with pytest.raises(TypeError, match="runs"):
        ssd.max_convergent_step(runs.to_dict())
    with pytest.raises(TypeError, match="he"):
        ssd.findings(runs, runs.to_dict())
    with pytest.raises(ValueError, match="positive"):
        ssd.loglog_slope([1, 2], [1.0, -1.0])
    with pytest.raises(ValueError, match="two distinct"):
        ssd.loglog_slope([2, 2], [1.0, 3.0])
    with pytest.raises(TypeError, match="values"):
        ssd.depth_slope([1.0, 2.0])
    with pytest.raises(ValueError, match="rtol"):
        ssd.stability_table(runs, rtol=-0.1)
    with pytest.raises(TypeError, match="rtol"):
        ssd.stability_table(runs, rtol="0.1")
    with pytest.raises(ValueError, match="prediction"):
        ssd_fig.plot_fig4(runs, prediction=[1.0, 2.0])
    with pytest.raises(TypeError, match="row"):
        ssd.training_curve(runs)
    with pytest.raises(ValueError, match="depths"):
        ssd.theorem1_prediction([], np.eye(3), np.eye(3))
    with pytest.raises(ValueError, match="depths"):
        ssd.theorem1_prediction([0], np.eye(3), np.eye(3))
    with pytest.raises(TypeError, match="depths"):
        ssd.theorem1_prediction(4, np.eye(3), np.eye(3))


def test_figures_and_slider_render():
    identity = _table({2: 8.0, 4: 4.0})
    he = _table({2: 2.0, 4: 0.5}, scale=3.0, lrs=LRS[:3])  # a smaller He grid
    fig = ssd_fig.plot_fig4(identity, prediction=[0.1, 0.2])
    assert len(fig.axes) == 4 and "slope -1.00" in fig.axes[2].get_title()
    nothing = identity.assign(status="not converged")
    assert "fewer than two" in ssd_fig.plot_fig4(nothing).axes[2].get_title()
    fig = ssd_fig.plot_fig5(identity, he, depth=4, lr=1.0)
    labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert labels[:3] == ["identity init (converged)", "He init (diverged)", f"target {TARGET:g}"]
    curve = fig.axes[1].lines[0]
    np.testing.assert_allclose(curve.get_xdata(), [0, 600, 1200, 1800])
    with pytest.raises(ValueError, match="no tile"):
        ssd_fig.plot_fig5(identity, he, depth=3, lr=1.0)
    with pytest.raises(ValueError, match="He runs"):
        ssd_fig.plot_fig5(identity, he, depth=4, lr=8.0)
    slider = ssd_fig.tile_slider(identity, he)
    assert len(slider.all_keys()) == 2 * 5
    assert slider.frame((0, 0))[:4] == b"\x89PNG"
    fig = slider.draw(depth=2, lr=8.0)  # a tile the He grid does not have
    assert "He (not run)" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "He: no section (not run)" in [
        t.get_text() for t in fig.axes[2].get_legend().get_texts()
    ]


def test_tile_cross_section_panel():
    identity = _table({2: 8.0, 4: 4.0})
    he = _table({2: 2.0, 4: 0.5}, scale=3.0)
    radii = np.linspace(-1, 1, 5)
    identity["section_radii"] = [radii] * len(identity)
    identity["section_loss"] = [r["final_train_loss"] + 0.5 * r["sharpness"] * radii**2
                                for _, r in identity.iterrows()]  # fmt: skip
    fig = ssd_fig.tile_slider(identity, he).draw(depth=4, lr=1.0)
    section = fig.axes[2]
    measured, quadratic, he_line = section.lines
    # a measured section that is exactly quadratic lies on the dashed lambda_max r^2 / 2
    lam = 4 / 10
    np.testing.assert_allclose(measured.get_ydata(), 0.5 * lam * radii**2)
    np.testing.assert_allclose(quadratic.get_ydata()[[0, -1]], [0.5 * lam] * 2)
    assert he_line.get_label() == "He: no section (diverged)"  # he diverges at lr 1


def test_experiments_module_draws_nothing():
    """The analysis layer imports neither matplotlib nor flatlib.figures nor flatlib.records."""
    code = (
        "import sys, flatlib.experiments.step_size_depth; "
        "print(sorted(m for m in ('matplotlib', 'flatlib.figures', 'flatlib.records') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
