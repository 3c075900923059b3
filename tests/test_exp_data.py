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


def test_the_twin_check_sets_the_baseline_beside_its_published_results(res):
    from asdstudy import calibration as C

    cal = res.calibration
    assert set(cal.index) == set(res.machines)  # every machine type of the factory has a published figure
    assert (cal["twin AUC low"] <= cal["twin AUC"]).all() and (cal["twin AUC"] <= cal["twin AUC high"]).all()
    assert cal.loc["slider", "published AUC"] == pytest.approx(0.8499)  # the four-id mean the README prints
    assert cal.loc["slider", "published id spread"] == pytest.approx(0.9633 - 0.7022)
    assert (cal["AUC difference"] == cal["twin AUC"] - cal["published AUC"]).all()
    inside = (cal["AUC difference"].abs() <= C.BAND) & (cal["pAUC difference"].abs() <= C.BAND)
    assert list(cal["calibrated"]) == ["yes" if i else "no" for i in inside]
    assert set(res.calibration_history.machine) == set(res.machines)  # one model per machine type
    assert len(res.calibration_convergence) == len(res.machines)
    assert res.glue()["calibration_convergence_text"].endswith(("at this budget.", "unfinished models.", "too few to judge.",
                                                                "rather than trained again."))
    rows = res.rows[res.rows.paper == "calibration"]
    assert set(rows.metric) == {"auc", "pauc"} and rows.ci_low.notna().all()
    assert res.calibration_text.startswith(("On all", "The twin matches"))


def test_calibration_verdict_names_the_types_outside_the_band():
    import pandas as pd

    from asdstudy import calibration as C

    t = pd.DataFrame({"AUC difference": [0.01, -0.2], "pAUC difference": [0.0, 0.01],
                      "calibrated": ["yes", "no"]}, index=["fan", "valve"])
    text = C.verdict(t)
    assert "1 of 2 machine types" in text and "valve (AUC -0.200" in text and "fan" not in text.split("misses")[1]
    assert C.verdict(t.iloc[:1]).startswith("On all 1 machine types")


def test_the_twin_spectra_sit_beside_the_real_clips(res, monkeypatch):
    import os

    shared = os.environ.get("ASDSTUDY_SHARED_DATA")
    if not shared:
        pytest.skip("ASDSTUDY_SHARED_DATA is not set (CI sets it to ../shared/data)")
    spectra, text = X.mean_spectra(res.data.table, X.shared_data_root(shared), n_per_machine=4)
    assert set(spectra.source) == {"twin (synthetic)", "real sample clips"}
    assert spectra.groupby(["machine", "source"]).size().eq(128).all()  # 128 mel bands per curve
    assert "slider 78" in text  # 3 sample test normals + 75 training normals of slider id 00
    none, text = X.mean_spectra(res.data.table, None, n_per_machine=2)
    assert set(none.source) == {"twin (synthetic)"} and "No real sample clips" in text


def test_calibration_epochs_zero_switches_the_check_off(smoke_root):
    """The paper profile runs no twin check (real data): 0 is valid there, negative is not;
    every other epochs parameter still needs at least 1 (found by the preflight)."""
    from asdstudy import ASDStudyError
    from asdstudy.experiments import autoencoders as A

    X.Params.from_profile("data", "paper", data_root=str(smoke_root)).validate()
    with pytest.raises(ASDStudyError, match="calibration_epochs"):
        X.Params.from_profile("data", "smoke", data_root=str(smoke_root), calibration_epochs=-1).validate()
    with pytest.raises(ASDStudyError, match="'epochs' is 0; it must be at least 1"):
        A.Params.from_profile("autoencoders", "smoke", data_root=str(smoke_root), epochs=0).validate()
