"""The explain chapter's experiment (paper 004), in process on the smoke profile."""

import matplotlib

matplotlib.use("Agg")

import pytest

from asdstudy import ASDStudyError
from asdstudy import plots
from asdstudy.experiments import explain as X
from conftest import check_rows, is_figure, smoke_params


@pytest.fixture(scope="module")
def res(smoke_root):
    return X.run(smoke_params(X, smoke_root), progress=False)


def test_rows_are_sound(res):
    check_rows(res.rows, "explain")
    means = res.rows[(res.rows.unit == "mean") & (res.rows.metric == "auc") & res.rows.method.isin(X.NAME.values())]
    assert len(means) == len(res.params.inputs) * len(res.params.machines) and means.ci_low.notna().all()


def test_explanation_accuracy_beside_chance(res):
    e = res.expl
    assert set(e.index) >= {"AST (Mel) + kNN", "DCASE baseline AE"}
    assert e["explanation accuracy"].between(0, 1).all() and e.chance.between(0, 1).all()
    assert (e.ci_low <= e["explanation accuracy"]).all() and (e["explanation accuracy"] <= e.ci_high).all()


def test_sweep_covers_every_cutoff_once(res):
    s = res.sweep_rows
    assert set(zip(s.kind, s.cutoff)) == {("none", 0)} | {(k, c) for k in ("lowpass", "highpass") for c in res.params.cutoffs}


def test_ast_note_says_weights_are_missing(res):
    assert "not available" in res.ast_note and "from scratch" in res.ast_note


def test_nyquist_cutoff_refused(smoke_root):
    with pytest.raises(ASDStudyError, match="Nyquist"):
        smoke_params(X, smoke_root, cutoffs=[4000, 8000])


def test_figures_draw(res):
    c = res.centroids
    assert is_figure(plots.bars(c.centroid_hz, c.across_clips_std_hz))
    assert is_figure(plots.heatmap(res.heat, xlabels=res.heat_bands))
    sw = res.sweep_rows
    base = sw[sw.kind == "none"]
    assert is_figure(plots.lines(sw[sw.kind != "none"], "cutoff", "auc", series="machine", panel="kind",
                                 reference=base.assign(kind="lowpass")))
    assert is_figure(plots.score_histograms(res.similarity, panel="view", bins=10))
    assert is_figure(plots.scatter_panels(res.tsne, "t-SNE 1", "t-SNE 2", panel="view"))
    e = res.expl.rename(columns={"explanation accuracy": "value"}).reset_index(names="detector")
    assert is_figure(plots.interval_dots(e, "detector", marker="chance"))
