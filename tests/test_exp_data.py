"""The data chapter's experiment and the worked examples of the metrics chapter."""

import matplotlib

matplotlib.use("Agg")

import pytest

from asdstudy import plots
from asdstudy.experiments import data as X
from asdstudy.experiments import worked as W
from conftest import check_rows, is_figure, smoke_params


@pytest.fixture(scope="module")
def res(smoke_root):
    return X.run(smoke_params(X, smoke_root))


def test_rows_are_sound(res):
    check_rows(res.rows, "data")
    means = res.rows[res.rows.unit == "mean"]
    assert set(means.machine) == set(res.machines) and means.ci_low.notna().all()


def test_variants_for_the_other_chapters_are_ready(res):
    assert set(res.variant_counts.index) == {"labelled", "dcase2021"}
    assert (res.variant_counts.clips > 0).all()
    assert res.labelled_fraction == pytest.approx(0.25, abs=0.05)


def test_glue_values(res):
    g = res.glue()
    assert g["n_machines"] == 6 and g["ref_auc_min"] <= g["ref_auc_max"]


def test_paper_profile_on_missing_root_names_it(tmp_path):
    p = X.Params(profile="paper", data_root=str(tmp_path))
    with pytest.raises(Exception, match=str(tmp_path)):
        X.run(p)


def test_figures_draw(res):
    assert is_figure(plots.clip_gallery(plots.examples(res.data.table, "fan")))
    r = res.ref_metrics.rename(columns={"auc": "value", "auc_low": "ci_low", "auc_high": "ci_high"})
    assert is_figure(plots.interval_dots(r, "machine", band=X.TARGET))


def test_worked_examples():
    n, wins, auc = W.pair_count()
    assert n == 25 and wins / n == pytest.approx(auc)
    y, a, b, t = W.two_detectors(0)
    assert t.loc["A", "AUC"] == pytest.approx(t.loc["B", "AUC"], abs=1e-3)
    assert t.loc["A", "pAUC (McClish)"] > t.loc["B", "pAUC (McClish)"]
    rules, eer = W.threshold_rules()
    assert len(rules) == 5 and 0 <= eer <= 1
    per_id, agg, overall = W.aggregation_example()
    assert agg.loc["fan", "harmonic (DCASE 2021+)"] < agg.loc["fan", "arithmetic (DCASE 2020)"]
