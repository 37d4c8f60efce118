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
