"""The ensemble chapter's experiment (paper 000), in process on the smoke profile."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from asdstudy import ASDStudyError
from asdstudy import plots
from asdstudy.experiments import ensemble as X
from conftest import check_rows, is_figure, smoke_params


@pytest.fixture(scope="module")
def res(smoke_root):
    return X.run(smoke_params(X, smoke_root, embeddings="off"), progress=False)


def test_rows_are_sound(res):
    check_rows(res.rows, "ensemble")
    r = res.rows
    paper = r[(r.method == "Ensemble") & (r.metric == "auc")]
    assert int(paper.n_normal.iloc[0] + paper.n_anomaly.iloc[0]) == len(res.y_val)
    cv = r[(r.method == "Ensemble (cross-validated)") & (r.metric == "auc")]
    assert int(cv.n_normal.iloc[0] + cv.n_anomaly.iloc[0]) == (res.data.table.split == "train").sum()
    missing = r[r.value.isna()]
    assert len(missing) and missing.note.str.contains("PANNs").all()


def test_panns_off_is_said(res):
    assert "switched off" in res.panns_note and res.feature_sets == ["handcrafted only"]


def test_gap_is_paper_minus_cv(res):
    g = res.gap
    assert np.allclose(g["F1 optimism (paper - CV)"], g["F1, paper's way"] - g["F1, cross-validated"])
    assert list(g.index) == X.MODELS


def test_every_arm_is_in_the_ablation(res):
    arms = set(zip(res.cv_table.features, res.cv_table.balancing))
    assert arms == {("handcrafted only", "SMOTE"), ("handcrafted only", "no SMOTE")}
    assert len(X.ablation_frame(res.cv_table)) == 2 * len(res.cv_table)


def test_bad_parameters_are_named(smoke_root):
    with pytest.raises(ASDStudyError, match="'scale'"):
        smoke_params(X, smoke_root, scale=0.0)
    with pytest.raises(ASDStudyError, match="'cv_folds'"):
        smoke_params(X, smoke_root, cv_folds=1)


def test_figures_draw(res):
    arm = res.paper
    from sklearn.metrics import confusion_matrix

    assert is_figure(plots.confusion_matrices({"Ensemble": confusion_matrix(res.y_val, arm.decision["Ensemble"], labels=[0, 1])}))
    assert is_figure(plots.pr_roc(res.y_val, arm.proba))
    assert is_figure(plots.lines(res.f1_curve, "threshold", "F1", series="series", vlines={"t": 0.35}))
    assert is_figure(plots.grouped_bars(X.ablation_frame(res.cv_table), group="model", series="arm", panel="metric"))
    assert is_figure(plots.grouped_bars(X.protocol_frame(res.paper_table, res.main_cv, res.held_table), group="model",
                                        series="protocol"))
