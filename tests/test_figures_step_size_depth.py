"""Checks of flatlib.figures.step_size_depth (chapter 9, Sec. 6, Figs. 4-5) on synthetic run
tables whose answers are known in advance; no training, a few seconds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flatlib import full_results as fr
from flatlib import linear
from flatlib.data import FULL_SPLITS, full_scale_source
from flatlib.figures import step_size_depth as ssd

TRIVIAL = 0.05


def _table(max_lr: dict[int, float], lrs=(0.5, 1.0, 2.0, 4.0, 8.0), scale: float = 1.0):
    """Tiles converge iff lr <= max_lr[depth]; sharpness = scale * depth / (10 * lr) there."""
    rows = []
    for m, top in max_lr.items():
        for lr in lrs:
            ok = lr <= top
            rows.append(
                {
                    "depth": m,
                    "lr": lr,
                    "status": "converged" if ok else "diverged",
                    "sharpness": scale * m / (10 * lr) if ok else np.nan,
                    "final_train_loss": 0.8 * TRIVIAL if ok else np.nan,
                    "trivial_loss": TRIVIAL,
                    "curve_steps": np.arange(1, 6) * 10,
                    "train_loss_curve": np.linspace(0.1, 0.04, 5),
                }
            )
    return pd.DataFrame(rows)


def test_map_max_step_and_flattest_on_known_table():
    runs = _table({2: 8.0, 4: 4.0, 8: 2.0})
    table = ssd.sharpness_map(runs)
    assert list(table.index) == [2, 4, 8] and list(table.columns) == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert table.loc[4, 1.0] == pytest.approx(0.4) and np.isnan(table.loc[8, 4.0])
    assert ssd.max_convergent_step(runs).tolist() == [8.0, 4.0, 2.0]
    np.testing.assert_allclose(ssd.flattest_sharpness_by_depth(runs), [0.025, 0.1, 0.4])
    assert ssd.loglog_slope([2, 4, 8], [8.0, 4.0, 2.0]) == pytest.approx(-1.0)
    assert ssd.loglog_slope([1, 2, np.nan], [3.0, 12.0, 1.0]) == pytest.approx(2.0)


def test_stable_step_counts_bounded_runs_that_learned_nothing():
    runs = _table({2: 4.0, 4: 2.0})
    runs.loc[runs["lr"] == 2.0, "final_train_loss"] = 0.99 * TRIVIAL  # bounded, still trivial
    runs.loc[(runs["depth"] == 2) & (runs["lr"] == 4.0), "status"] = "not converged"
    assert ssd.max_stable_step(runs).tolist() == [4.0, 2.0]
    assert ssd.max_convergent_step(runs).tolist() == [1.0, 1.0]
    gone = runs.assign(status="diverged")
    assert ssd.max_stable_step(gone).isna().all()


def test_collapsed_and_unmeasured_tiles_are_not_converged():
    runs = _table({2: 8.0})
    runs.loc[runs["lr"] == 8.0, "final_train_loss"] = 0.99 * TRIVIAL  # outputs the mean digit
    runs.loc[runs["lr"] == 4.0, "sharpness"] = np.nan  # never measured
    mask = ssd.converged_mask(runs)
    assert mask.tolist() == [True, True, True, False, False]
    assert ssd.max_convergent_step(runs).tolist() == [2.0]
    assert ssd.converged_mask(runs, useful_ratio=1.0).tolist()[-1]


def test_findings_detects_each_direction():
    identity = _table({2: 8.0, 4: 4.0, 8: 2.0})
    he = _table({2: 4.0, 4: 1.0, 8: 0.5}, scale=2.0)
    f = ssd.findings(identity, he)
    assert f.lr_slope == pytest.approx(-1.0) and f.flattest_slope == pytest.approx(2.0)
    assert f.he_less_tolerant and f.he_sharper and f.all_within_bound
    assert f.table().shape == (3, 6)
    assert f.stable_slope_identity == pytest.approx(-1.0) and f.stable_slope_he < -1.0
    # swapped roles: identity is now the less tolerant and sharper one
    g = ssd.findings(he, identity)
    assert not g.he_less_tolerant and not g.he_sharper
    # He never converging is less tolerant, but says nothing about sharpness
    never = he.assign(status="diverged", sharpness=np.nan)
    h = ssd.findings(identity, never)
    assert h.he_less_tolerant and not h.he_sharper and h.max_lr_he.isna().all()
    assert np.isnan(h.stable_slope_he)
    # a tile above 2/eta breaks the stability check
    bad = identity.copy()
    bad.loc[(bad["depth"] == 2) & (bad["lr"] == 8.0), "sharpness"] = 0.3
    assert not ssd.findings(bad, he).all_within_bound


def test_scale_comparison_reads_a_committed_full_result(tmp_path):
    identity = _table({2: 8.0, 4: 4.0, 8: 2.0})
    he = _table({2: 4.0, 4: 1.0, 8: 0.5}, scale=2.0)
    alone = ssd.scale_comparison(identity, he, None)
    assert list(alone.columns) == ["quick", "full"] and alone["full"].isna().all()
    assert alone.loc["slope of max convergent lr (identity)", "quick"] == pytest.approx(-1.0)
    assert alone.loc["He sharper where both converge", "quick"] is True
    # full mode with the roles swapped, stored and read back through flatlib.full_results
    runs = pd.concat([he.assign(init="identity"), identity.assign(init="he")], ignore_index=True)
    fr.save("step_size_depth", {"runs": runs}, "digits", "cmd", tmp_path)
    full = fr.load("step_size_depth", tmp_path)
    assert len(ssd.full_runs(full, "he")) == len(identity)
    assert len(ssd.plot_fig4(ssd.full_runs(full, "identity")).axes) >= 2
    both = ssd.scale_comparison(identity, he, full)
    assert both.loc["He sharper where both converge", "full"] is False
    # flattest He tiles 0.1, 0.8, 3.2 at m = 2, 4, 8: slope log(32) / log(4) = 2.5
    assert both.loc["slope of flattest sharpness (identity)", "full"] == pytest.approx(2.5)
    with pytest.raises(TypeError, match="full"):
        ssd.full_runs(runs, "he")


def test_stability_table_margins():
    runs = _table({2: 8.0})
    table = ssd.stability_table(runs)
    np.testing.assert_allclose(table["2/eta"], 2.0 / table["lr"])
    np.testing.assert_allclose(table["margin"], 1.0 - table["lambda_max"] * table["lr"] / 2)
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


def test_grids_quick_and_full():
    quick = ssd.chapter_grid("he", "quick")
    assert {c["section_radius"] for c in quick} == {ssd.SECTION_RADIUS}
    assert len(quick) == len(ssd.QUICK_DEPTHS) * len(ssd.QUICK_HE_LRS)
    assert {c["init"] for c in quick} == {"he"} and quick[0]["n_train"] == 1000
    assert {c["epochs"] for c in quick} == {ssd.QUICK_HE_OVERRIDES["epochs"]}
    assert set(ssd.QUICK_LRS) <= set(ssd.QUICK_HE_LRS)  # every identity tile has a He twin
    ident = ssd.chapter_grid("identity", "quick")
    assert len(ident) == len(ssd.QUICK_DEPTHS) * len(ssd.QUICK_LRS)
    assert {c["epochs"] for c in ident} == {ssd.QUICK_OVERRIDES["epochs"]}
    full = ssd.chapter_grid("identity", "full")
    assert {c["size"] for c in full} == {28}
    assert full[0]["n_train"] == FULL_SPLITS[full_scale_source()][0]
    assert max(c["depth"] for c in full) == 20
    tile = ssd.FIG5B_TILE["full"]
    assert any(c["depth"] == tile["depth"] and c["lr"] == tile["lr"] for c in full)
    tile = ssd.FIG5B_TILE["quick"]
    assert any(c["depth"] == tile["depth"] and c["lr"] == tile["lr"] for c in quick)


def test_bad_arguments_raise():
    runs = _table({2: 8.0})
    with pytest.raises(ValueError, match="init"):
        ssd.chapter_grid("xavier", "quick")
    with pytest.raises(ValueError, match="mode"):
        ssd.chapter_grid("he", "huge")
    with pytest.raises(ValueError, match="useful_ratio"):
        ssd.converged_mask(runs, useful_ratio=-1.0)
    with pytest.raises(ValueError, match="columns"):
        ssd.sharpness_map(runs.drop(columns="sharpness"))
    with pytest.raises(TypeError, match="runs"):
        ssd.max_convergent_step(runs.to_dict())
    with pytest.raises(ValueError, match="positive"):
        ssd.loglog_slope([1, 2], [1.0, -1.0])
    with pytest.raises(ValueError, match="two distinct"):
        ssd.loglog_slope([2, 2], [1.0, 3.0])
    with pytest.raises(ValueError, match="rtol"):
        ssd.stability_table(runs, rtol=-0.1)
    with pytest.raises(ValueError, match="prediction"):
        ssd.plot_fig4(runs, prediction=[1.0, 2.0])


def test_figures_and_slider_render():
    identity = _table({2: 8.0, 4: 4.0})
    he = _table({2: 2.0, 4: 0.5}, scale=3.0)
    fig = ssd.plot_fig4(identity, prediction=[0.1, 0.2])
    assert len(fig.axes) == 4 and "slope -1.00" in fig.axes[2].get_title()
    fig = ssd.plot_fig5(identity, he, depth=4, lr=1.0)
    labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert labels[:2] == ["identity init (converged)", "He init (diverged)"]
    with pytest.raises(ValueError, match="no tile"):
        ssd.plot_fig5(identity, he, depth=3, lr=1.0)
    slider = ssd.tile_slider(identity, he)
    assert len(slider.all_keys()) == 2 * 5
    assert slider.frame((0, 0))[:4] == b"\x89PNG"


def test_tile_cross_section_panel():
    identity = _table({2: 8.0, 4: 4.0})
    he = _table({2: 2.0, 4: 0.5}, scale=3.0)
    radii = np.linspace(-1, 1, 5)
    identity["section_radii"] = [radii] * len(identity)
    identity["section_loss"] = [r["final_train_loss"] + 0.5 * r["sharpness"] * radii**2
                                for _, r in identity.iterrows()]  # fmt: skip
    fig = ssd.tile_slider(identity, he).draw(depth=4, lr=1.0)
    section = fig.axes[2]
    measured, quadratic, he_line = section.lines
    # a measured section that is exactly quadratic lies on the dashed lambda_max r^2 / 2
    lam = 4 / 10
    np.testing.assert_allclose(measured.get_ydata(), 0.5 * lam * radii**2)
    np.testing.assert_allclose(quadratic.get_ydata()[[0, -1]], [0.5 * lam] * 2)
    assert he_line.get_label() == "He: no section (not converged)"  # he diverges at lr 1
