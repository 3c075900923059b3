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


def test_final_step_and_probe(res):
    fin = res.final
    n_dev, n_held = (res.data.table.split == "train").sum(), (res.data.table.split == "test").sum()
    assert fin.n_train == n_dev and len(fin.proba) == n_held
    assert fin.n_resampled == 2 * (res.data.table[res.data.table.split == "train"].label == 0).sum()
    t = res.final_table
    assert t.loc["held-out clips", "paper"] == 156 and t.loc["development rows after SMOTE", "paper"] == 914
    r = res.rows
    row = r[(r.method == "CatBoost final") & (r.metric == "n_predicted_anomalous")]
    assert row.value.iloc[0] == fin.n_predicted and row.ci_low.iloc[0] <= fin.n_predicted <= row.ci_high.iloc[0]
    assert "text" in res.probe and res.mix.to_numpy().sum() == len(res.data.table)


def test_split_probe_finds_a_split_that_leaves_a_trace(smoke_root):
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 60
    table = pd.DataFrame({"path": [f"c{i}" for i in range(2 * n)], "label": 0,
                          "source_split": ["train"] * n + ["test"] * n})
    feats = pd.DataFrame(rng.normal(size=(2 * n, 4)), index=table.path)
    feats.iloc[:n, 0] += 3.0  # the training split's normals sound different
    p = smoke_params(X, smoke_root, embeddings="off")
    out = X.split_probe(feats, table, p)
    assert out["auc"].low > 0.8 and "it can" in out["text"]
    same = X.split_probe(feats, table.assign(source_split="test"), p)
    assert same["auc"] is None and "does not apply" in same["text"]


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
