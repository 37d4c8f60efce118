"""Tests of flatlib.experiments.hessian_spectrum and flatlib.figures.hessian_spectrum (chapter 11)
on tiny runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from flatlib.curvature.outliers import count_outliers
from flatlib.experiments import hessian_spectrum as hs
from flatlib.figures import hessian_spectrum as hs_fig


@pytest.fixture(scope="module")
def tiny_runs():
    clusters = []
    for act in ("relu", "tanh"):
        cfg = hs.cluster_grid("quick")[0] | {
            "activation": act, "k": 2, "n": 60, "steps": 20, "snapshots": [10, 20],
        }  # fmt: skip
        clusters.append(cfg | hs.run_cluster(cfg))
    widths = []
    for h, dec in ((2, False), (3, True)):
        cfg = hs.width_grid("quick")[0] | {"width": h, "n": 12, "steps": 30, "decompose": dec}
        widths.append(cfg | hs.run_width(cfg))
    return hs.ChapterRuns(pd.DataFrame(clusters), pd.DataFrame(widths))


def test_param_counts_match_the_paper():
    table = hs.check_param_counts()
    assert (table["parameters"] == table["paper"]).all()
    assert table["parameters"].tolist() == [4022, 4115, 4270, 4580, 5510]


def test_grids_cover_table1():
    full = hs.cluster_grid("full")
    assert len(full) == len(hs.PAPER_TABLE1) == 19
    assert {(c["algorithm"], c["activation"], c["cov"], c["k"]) for c in full} == {
        row[:4] for row in hs.PAPER_TABLE1
    }
    quick = hs.cluster_grid("quick")
    assert all(c["method"] == "lanczos" for c in quick) and len(quick) == 14
    with pytest.raises(ValueError, match="mode"):
        hs.width_grid("huge")


def test_cluster_run_records_consistent_counts(tiny_runs):
    for r in tiny_runs.clusters.itertuples():
        assert r.n_params == hs.PAPER_PARAMS[r.k]
        assert r.top.shape == (2, 2 * r.k + 10)
        assert np.all(np.diff(r.top, axis=1) <= 1e-12)
        assert count_outliers(r.top[-1], r.top.shape[1]) == {
            "gap": r.gap, "ratio": r.ratio, "elbow": r.elbow,
        }  # fmt: skip


def test_lanczos_top_matches_exact_spectrum():
    """The quick (Lanczos) and full (exact) paths agree on a narrow network."""
    base = hs.cluster_grid("quick")[0] | {"k": 3, "n": 60, "steps": 30, "hidden": 3,
                                          "snapshots": [0, 30]}  # fmt: skip
    lanczos = hs.run_cluster(base)
    exact = hs.run_cluster(base | {"method": "exact"})
    np.testing.assert_allclose(lanczos["top"][:, :4], exact["top"][:, :4], rtol=1e-4)
    np.testing.assert_allclose(exact["top"][-1], np.sort(exact["spectrum_end"])[::-1][:16])
    assert exact["spectrum_init"].size == exact["n_params"] == 100 * 3 + 3 + 12 + 12


def test_width_run_decomposition(tiny_runs):
    r = tiny_runs.widths[tiny_runs.widths["decompose"]].iloc[0]
    lam = np.asarray(r["spectrum_end"])
    assert lam.size == r["n_params"] and np.all(np.diff(lam) >= 0)
    np.testing.assert_allclose(r["top_H_end"], lam[::-1][:30])
    assert r["decomposition_error_end"] < 1e-12 and r["decomposition_error_init"] < 1e-12
    # G is PSD and its top eigenvalues by ARPACK at init are sorted
    assert np.asarray(r["ggn_spectrum_end"]).min() > -1e-10
    assert np.all(np.diff(r["top_G_init"]) <= 1e-12)
    rank, bound, n, tail = hs.ggn_rank(tiny_runs)
    assert rank <= bound == min(n, 12 * 9) < n
    assert tail < 1e-12


def test_tables_and_figures(tiny_runs):
    t = hs.table1(tiny_runs)
    assert len(t) == 2 and {"gap", "paper gap", "paper heur"} <= set(t.columns)
    row = t[t["setting"].str.startswith("GD ReLU")].iloc[0]
    assert (row["paper gap"], row["paper ratio"], row["paper heur"]) == (3, 4, 2)
    assert np.isnan(t[t["setting"].str.startswith("GD tanh")]["paper heur"]).all()
    assert list(hs.ggn_table(tiny_runs).index) == ["initial point", "after training"]
    assert list(hs.width_table(tiny_runs).index) == [2, 3]
    for fig in (hs_fig.plot_fig1(tiny_runs), hs_fig.plot_ggn(tiny_runs),
                hs_fig.plot_widths(tiny_runs, 5), hs_fig.plot_pca_hessian(tiny_runs)):  # fmt: skip
        assert isinstance(fig, Figure)
    slider = hs_fig.spectrum_slider(tiny_runs, ks=(2,))
    assert slider.stops["step"] == [10, 20]
    assert isinstance(slider.draw(k=2, activation="tanh", step=10), Figure)


def test_bad_inputs(tiny_runs):
    with pytest.raises(TypeError, match="runs"):
        hs.table1(tiny_runs.clusters)
    with pytest.raises(ValueError, match="no cluster runs"):
        hs_fig.plot_pca_hessian(tiny_runs, "sgd")


def test_edge_table_matches_the_stored_spectra(tiny_runs):
    table = hs.edge_table(tiny_runs)
    assert len(table) == sum(len(r.snapshot_steps) for r in tiny_runs.clusters.itertuples())
    for r in tiny_runs.clusters.itertuples():
        for step, top in zip(r.snapshot_steps, r.top, strict=True):
            row = table[(table["activation"] == r.activation) & (table["step"] == step)].iloc[0]
            lam = np.sort(top[top > 0])[::-1]
            assert {m: row[m] for m in ("gap", "ratio", "elbow")} == count_outliers(lam, lam.size)
            ratios = lam[:-1] / lam[1:]
            assert row["hessian k-1 ratio"] == pytest.approx(ratios[r.k - 2])
            assert row["largest ratio"] == pytest.approx(ratios.max())
            assert row["pca k-1 ratio"] == pytest.approx(r.pca[r.k - 2] / r.pca[r.k - 1])


def test_count_offsets_tallies_count_minus_k():
    table = pd.DataFrame(
        {
            "k": [2, 5, 10],
            "gap": [1, 4, 9],
            "ratio": [1, 5, 12],
            "elbow": [2, 4, 9],
            "paper gap": [3, 6, 2],
            "paper ratio": [4, 7, 12],
            "paper heur": [2.0, np.nan, 10.0],
        }
    )
    out = hs.count_offsets(table)
    assert out.loc[-1, "gap"] == 3 and out.loc[0, "ratio"] == 1 and out.loc[2, "ratio"] == 1
    assert out.loc[2, "paper ratio"] == 3 and out.loc[-1, "elbow"] == 2
    assert out["paper heur"].sum() == 2  # the N/A row is left out
    assert out.loc[-8, "paper gap"] == 1 and out.loc[1, "paper gap"] == 2
    assert (out.sum()[["gap", "ratio", "elbow", "paper gap", "paper ratio"]] == 3).all()
    with pytest.raises(TypeError, match="table1"):
        hs.count_offsets(table.drop(columns="k"))


def test_right_edge_and_profiles_brute_force(tiny_runs):
    right = hs.right_edge_table(tiny_runs, levels=(1e-2, 1e-4))
    profile = hs.edge_profile(tiny_runs, 5)
    assert list(right.index) == list(profile.columns) == [2, 3]
    for r in tiny_runs.widths.itertuples():
        lam = np.sort(np.asarray(r.spectrum_end))
        row = right.loc[r.width]
        assert row["above 0.01"] == np.sum(lam > 1e-2) and row["above 0.0001"] == np.sum(lam > 1e-4)
        counts = count_outliers(lam, 30)
        assert (row["gap"], row["ratio"], row["elbow"]) == tuple(counts.values())
        assert row["edge"] == lam[::-1][counts["gap"]] and row["lambda_1"] == lam[-1]
        assert row["bulk"] == np.sum(np.abs(lam) < 1e-3 * lam[-1])
        np.testing.assert_array_equal(profile[r.width], lam[::-1][:5])
    fractions = np.array([1e-6, 0.05, 0.5, 2.0])
    curves = hs.left_edge_curves(tiny_runs, fractions)
    for r in tiny_runs.widths.itertuples():
        neg = np.sort(np.asarray(r.spectrum_end))
        neg = neg[neg < 0]
        col = curves[r.width].to_numpy()
        assert np.isnan(col[0]) and np.isnan(col[-1])  # outside the negative eigenvalues
        if neg.size:
            x = np.arange(1, neg.size + 1) / r.n_params
            expected = np.interp(fractions, x, neg / neg[0], left=np.nan, right=np.nan)
            np.testing.assert_allclose(col, expected)
            by_index = hs.left_edge_curves(tiny_runs, [1.0], by="index")[r.width].iloc[0]
            assert by_index == 1.0  # the most negative eigenvalue over itself
    with pytest.raises(ValueError, match="by"):
        hs.left_edge_curves(tiny_runs, [0.1], by="rank")
    with pytest.raises(ValueError, match="points"):
        hs.left_edge_curves(tiny_runs, [0.0])
