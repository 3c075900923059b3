import numpy as np
import pandas as pd

from asdstudy.results import load_claims
from asdstudy.scoreboard import VERDICTS, plot, scoreboard, summary


def _claims():
    return pd.DataFrame([
        {"paper": "002", "source": "Table 3", "method": "VAE", "dataset": "dcase2020-dev", "machine": "slider",
         "unit": "00", "metric": "auc", "value": 0.95, "note": ""},
        {"paper": "002", "source": "Table 3", "method": "VAE", "dataset": "dcase2020-dev", "machine": "slider",
         "unit": "02", "metric": "pauc", "value": 0.65, "note": ""},
        {"paper": "002", "source": "Table 2", "method": "Dense AE", "dataset": "dcase2020-dev", "machine": "slider",
         "unit": "all", "metric": "n_parameters", "value": 50760, "note": ""},
        {"paper": "002", "source": "Table 4", "method": "Dense AE", "dataset": "dcase2020-dev", "machine": "slider",
         "unit": "all", "metric": "recall_anomaly", "value": 0.62, "note": ""},
        {"paper": "000", "source": "T", "method": "CatBoost", "dataset": "paper000-private", "machine": "unknown",
         "unit": "all", "metric": "auc", "value": 0.9965, "note": ""},
        {"paper": "001", "source": "T", "method": "LSTM", "dataset": "mimii-course", "machine": "slider",
         "unit": "all", "metric": "auc", "value": 0.94, "note": ""},
    ])


def _row(paper, method, metric, value, unit, machine="slider", dataset="dcase2020-dev", ci=(np.nan, np.nan),
         chapter="autoencoders"):
    return {"chapter": chapter, "paper": paper, "method": method, "metric": metric, "value": value,
            "unit": unit, "machine": machine, "dataset": dataset, "ci_low": ci[0], "ci_high": ci[1],
            "profile": "paper"}


def test_verdicts_on_hand_made_rows():
    results = pd.DataFrame([
        _row("002", "VAE", "auc", 0.93, "00", ci=(0.90, 0.96)),              # inside CI
        _row("002", "VAE", "pauc_mcclish", 0.80, "02", ci=(0.75, 0.85)),     # outside CI (pauc alias)
        _row("002", "Dense AE", "n_parameters", 50760, "all"),               # exact, no CI
        _row("000", "CatBoost", "auc", 0.9, "all", machine="slider", dataset="synthetic-labelled",
             ci=(0.85, 0.95), chapter="ensemble"),
    ])
    b = scoreboard(_claims(), results).set_index(["paper", "method", "metric"])
    assert b.loc[("002", "VAE", "auc"), "verdict"] == "reproduced"
    assert np.isclose(b.loc[("002", "VAE", "auc"), "difference"], -0.02)
    assert b.loc[("002", "VAE", "pauc"), "verdict"] == "not reproduced"
    assert b.loc[("002", "Dense AE", "n_parameters"), "verdict"] == "reproduced"
    assert b.loc[("002", "Dense AE", "recall_anomaly"), "verdict"] == "not measured"
    r = b.loc[("000", "CatBoost", "auc")]
    assert r.verdict == "not comparable" and "not public" in r.reason and r.reproduced == 0.9
    assert b.loc[("001", "LSTM", "auc"), "verdict"] == "not yet run"
    assert "asdstudy run sequence" in b.loc[("001", "LSTM", "auc"), "reason"]


def test_synthetic_data_is_not_comparable():
    results = pd.DataFrame([_row("002", "VAE", "auc", 0.95, "00", dataset="synthetic-dcase2020", ci=(0.9, 1.0))])
    b = scoreboard(_claims(), results)
    r = b[(b.method == "VAE") & (b.metric == "auc")].iloc[0]
    assert r.verdict == "not comparable" and "synthetic-dcase2020" in r.reason


def test_real_claims_with_no_results_are_all_not_yet_run():
    claims = load_claims()
    b = scoreboard(claims, pd.DataFrame(columns=["chapter", "paper"]))
    assert len(b) == len(claims) and set(b.verdict) == {"not yet run"}
    s = summary(b)
    assert list(s.columns) == list(VERDICTS) and s["not yet run"].sum() == len(claims)
    fig = plot(b)
    assert len(fig.axes) == len(set(claims.paper))


def test_uncomputable_row_is_not_measured_with_its_reason():
    row = _row("000", "CatBoost", "auc", np.nan, "all", machine="pump", dataset="synthetic-labelled",
               chapter="ensemble")
    row["note"] = "PANNs CNN14 weights are not available on this machine"
    b = scoreboard(_claims(), pd.DataFrame([row]))
    r = b[(b.paper == "000") & (b.metric == "auc")].iloc[0]
    assert r.verdict == "not measured" and r.reason == row["note"] and np.isnan(r.reproduced)
