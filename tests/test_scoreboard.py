"""The judge: each claim kind's rule on hand-made rows, keyed answers, derived claims, and the
consistency audit of the five papers on the real claims file."""

import numpy as np
import pandas as pd
import pytest

from asdstudy import metrics as M
from asdstudy.consistency import audit
from asdstudy.results import load_claims
from asdstudy.scoreboard import (ORDER, JudgeError, claims_html, derive, direction_table, display_table, overview,
                                 paper_sentences, plot, scoreboard, summary)


def _claim(paper="002", source="Table 3", method="VAE", dataset="dcase2020-dev", machine="slider", unit="00",
           metric="auc", value=0.95, kind="value", chapter="autoencoders", formula="", note=""):
    return dict(paper=paper, source=source, method=method, dataset=dataset, machine=machine, unit=unit, metric=metric,
                value=value, kind=kind, chapter=chapter, formula=formula, note=note, printed=str(value))


def _claims():
    return pd.DataFrame([
        _claim(),
        _claim(unit="02", metric="pauc", value=0.65),
        _claim(source="Table 2", method="Dense AE", unit="all", metric="n_parameters", value=50760, kind="count", dataset="any"),
        _claim(source="Table 4", method="Dense AE", unit="all", metric="recall_anomaly", value=0.62, kind="not comparable",
               note="threshold rule not stated"),
        _claim(paper="000", source="T", method="CatBoost", dataset="paper000-private", machine="unknown", unit="all",
               value=0.9965, chapter="ensemble"),
        _claim(paper="001", source="T", method="LSTM", dataset="mimii-course", unit="all", value=0.94, chapter="sequence"),
        _claim(paper="001", source="T2", method="GRU", dataset="mimii-course", unit="all", metric="recall_anomaly",
               value=0.80, kind="by construction", chapter="sequence", note="TPR fixed at 0.8"),
        _claim(paper="004", source="S3", method="STFT - Mel", dataset="dcase2021-dev", machine="pump", unit="mean",
               metric="auc_difference", value=1, kind="direction", chapter="explain"),
        _claim(paper="004", source="S3", method="STFT - Mel", dataset="dcase2021-dev", machine="fan", unit="mean",
               metric="auc_difference", value=-1, kind="direction", chapter="explain"),
        _claim(paper="004", source="S3", method="STFT - Mel", dataset="dcase2021-dev", machine="valve", unit="mean",
               metric="auc_difference", value=1, kind="direction", chapter="explain"),
    ])


def _row(paper, method, metric, value, unit, machine="slider", dataset="dcase2020-dev", ci=(np.nan, np.nan),
         chapter="autoencoders", domain=""):
    return {"chapter": chapter, "paper": paper, "method": method, "metric": metric, "value": value,
            "unit": unit, "machine": machine, "dataset": dataset, "ci_low": ci[0], "ci_high": ci[1],
            "profile": "paper", "domain": domain, "note": ""}


def _results(*extra):
    return pd.DataFrame([
        _row("002", "VAE", "auc", 0.93, "00", ci=(0.90, 0.96)),              # claim 0.95 inside the CI
        _row("002", "VAE", "pauc_mcclish", 0.80, "02", ci=(0.75, 0.85)),     # claim 0.65 outside (pauc alias)
        _row("002", "Dense AE", "n_parameters", 50760, "all"),               # a count: exact, no CI needed
        _row("002", "Dense AE", "recall_anomaly", 0.7, "all", ci=(0.6, 0.8)),
        _row("000", "CatBoost", "auc", 0.9, "all", machine="slider", dataset="synthetic-labelled",
             ci=(0.85, 0.95), chapter="ensemble"),
        _row("001", "GRU", "recall_anomaly", 0.80, "all", dataset="mimii-course", ci=(0.7, 0.9), chapter="sequence"),
        _row("004", "STFT - Mel", "auc_difference", 0.04, "mean", machine="pump", dataset="dcase2021-dev",
             ci=(0.01, 0.07), chapter="explain"),                             # wholly above 0: holds
        _row("004", "STFT - Mel", "auc_difference", 0.03, "mean", machine="fan", dataset="dcase2021-dev",
             ci=(0.01, 0.05), chapter="explain"),                             # above 0, claimed below: fails
        _row("004", "STFT - Mel", "auc_difference", 0.01, "mean", machine="valve", dataset="synthetic-dcase2021",
             ci=(-0.02, 0.04), chapter="explain"),                            # straddles 0, on other data
        *extra,
    ])


def test_each_kind_is_judged_by_its_own_rule():
    b = scoreboard(_claims(), _results()).set_index(["paper", "method", "machine", "metric"])
    v = lambda *k: b.loc[k, "verdict"]  # noqa: E731
    assert v("002", "VAE", "slider", "auc") == "reproduced"
    assert np.isclose(b.loc[("002", "VAE", "slider", "auc"), "difference"], -0.02)
    assert v("002", "VAE", "slider", "pauc") == "not reproduced"
    assert v("002", "Dense AE", "slider", "n_parameters") == "reproduced"
    r = b.loc[("002", "Dense AE", "slider", "recall_anomaly")]
    assert r.verdict == "not comparable" and r.reason == "threshold rule not stated" and r.reproduced == 0.7
    r = b.loc[("000", "CatBoost", "unknown", "auc")]
    assert r.verdict == "not comparable" and "not public" in r.reason and r.reproduced == 0.9
    assert v("001", "LSTM", "slider", "auc") == "not measured"  # the sequence chapter ran, without this row
    r = b.loc[("001", "GRU", "slider", "recall_anomaly")]
    assert r.verdict == "by construction" and r.reproduced == 0.8  # shown, never judged
    assert v("004", "STFT - Mel", "pump", "auc_difference") == "holds"
    assert v("004", "STFT - Mel", "fan", "auc_difference") == "fails"
    assert v("004", "STFT - Mel", "valve", "auc_difference") == "undecided on the synthetic factory"


def test_a_no_worse_direction_uses_the_stated_margin():
    from asdstudy.scoreboard import NO_WORSE_MARGIN

    assert NO_WORSE_MARGIN == 0.02
    claims = pd.DataFrame([_claim(paper="004", source="S2.5", method="high-pass - unfiltered", dataset="dcase2021-dev",
                                  machine=m, unit="mean", metric="auc_difference", value=0, kind="direction",
                                  chapter="explain") for m in ("pump", "fan", "valve", "slider")])
    cis = {"pump": (-0.015, 0.03),   # a drop smaller than the margin at worst: holds
           "fan": (-0.09, -0.03),    # wholly below -0.02: fails
           "valve": (-0.05, 0.01),   # straddles -0.02: undecided
           "slider": (0.01, 0.05)}   # an improvement is no worse: holds
    res = pd.DataFrame([_row("004", "high-pass - unfiltered", "auc_difference", sum(ci) / 2, "mean", machine=m,
                             dataset="dcase2021-dev", ci=ci, chapter="explain") for m, ci in cis.items()])
    b = scoreboard(claims, res).set_index("machine")
    assert b.verdict.to_dict() == {"pump": "holds", "fan": "fails", "valve": "undecided", "slider": "holds"}
    assert "straddles -0.02" in b.loc["valve", "reason"]


def test_a_count_must_be_equal_and_is_data_independent_when_declared():
    res = _results()
    res.loc[res.metric == "n_parameters", "value"] = 50761
    res.loc[res.metric == "n_parameters", "dataset"] = "synthetic-dcase2020"
    b = scoreboard(_claims(), res)
    assert b[b.metric == "n_parameters"].verdict.iloc[0] == "not reproduced"


def test_a_value_row_without_a_ci_is_refused_not_judged():
    res = _results()
    res.loc[res.metric == "auc", ["ci_low", "ci_high"]] = np.nan
    with pytest.raises(JudgeError, match=r"value claim 002 / VAE / slider / 00 / auc: .*no 95 % CI"):
        scoreboard(_claims(), res)
    res = _results()
    res.loc[res.metric == "auc_difference", ["ci_low", "ci_high"]] = np.nan
    with pytest.raises(JudgeError, match="direction claim .* no CI"):
        scoreboard(_claims(), res)


def test_two_rows_answering_one_claim_are_an_error_not_a_first_match():
    with pytest.raises(JudgeError, match=r"2 rows of the autoencoders chapter answer the claim 002 / VAE / slider / 00 / auc"):
        scoreboard(_claims(), _results(_row("002", "VAE", "auc", 0.5, "00", ci=(0.4, 0.6), domain="target")))
    # the same numbers from another chapter do not answer this claim (keyed by chapter)
    b = scoreboard(_claims(), _results(_row("002", "VAE", "auc", 0.5, "00", ci=(0.4, 0.6), chapter="sequence")))
    assert b[(b.method == "VAE") & (b.metric == "auc")].reproduced.iloc[0] == 0.93


def test_the_claims_file_declares_kinds_chapters_and_no_duplicates():
    claims = load_claims()
    b = scoreboard(claims, pd.DataFrame(columns=["chapter", "paper"]))
    assert len(b) == len(claims) and set(b.verdict) == {"not yet run"}
    dup = pd.concat([claims, claims.iloc[[0]]])
    with pytest.raises(Exception, match="claims listed twice: 000 / CatBoost"):
        scoreboard(dup, pd.DataFrame(columns=["chapter", "paper"]))
    bad = claims.copy()
    bad.loc[0, "kind"] = "vibes"
    with pytest.raises(Exception, match="unknown kind"):
        scoreboard(bad, pd.DataFrame(columns=["chapter", "paper"]))


def test_derived_claims_are_computed_from_the_published_parts():
    d = derive(load_claims())
    base = d[(d.paper == "dcase2020-baseline") & (d.machine == "slider") & (d.unit == "mean")].set_index("metric")
    assert base.loc["auc", "value"] == pytest.approx(0.8991, abs=5e-5)   # (0.9633 + 0.7881 + 0.9460) / 3
    assert base.loc["pauc", "value"] == pytest.approx(0.7289, abs=5e-5)  # (0.8185 + 0.6288 + 0.7395) / 3
    vae = d[(d.paper == "002") & (d.method == "VAE") & (d.unit == "mean") & (d.metric == "auc")].value.iloc[0]
    assert base.loc["auc", "value"] > vae  # the three-id baseline beats paper 002's VAE mean
    bad = load_claims()
    bad.loc[bad.formula != "", "formula"] = "mean over unit in 00,99"
    with pytest.raises(Exception, match="formula needs units"):
        derive(bad)


def test_the_consistency_audit_finds_each_known_contradiction():
    a = audit(load_claims())
    find = lambda paper, text: a[(a.paper == paper) & a.rule.str.contains(text, regex=False)]  # noqa: E731
    assert find("002", "Table 4's confusion matrix").verdict.iloc[0] == "impossible"
    assert "446 false positives" in find("002", "Table 4's confusion matrix").arithmetic.iloc[0]
    gru_f1 = find("001", "GRU sequence autoencoder), anomaly class")
    assert gru_f1.verdict.iloc[0] == "within rounding" and "0.8644" in gru_f1.arithmetic.iloc[0]
    assert find("001", "1 - FPR").verdict.iloc[0] == "inconsistent"
    assert find("001", "class ratio").verdict.iloc[0] == "consistent"
    assert find("000", "feature taxonomy").verdict.iloc[0] == "inconsistent" and "= 259" in find("000", "feature taxonomy").arithmetic.iloc[0]
    assert find("000", "precision at threshold 0.2 in two tables").verdict.iloc[0] == "inconsistent"
    assert find("000", "recall at threshold 0.5").verdict.iloc[0] == "inconsistent"
    assert "0.943" in find("000", "CatBoost's F1 from its confusion matrix").arithmetic.iloc[0]
    assert find("002", "Table 3 mean AUC").verdict.iloc[0] == "consistent"
    assert find("003", "Table 6 AUC of GANomaly").verdict.iloc[0] == "consistent"
    assert find("003", "Table 6 +- of GANomaly AUC").verdict.iloc[0] == "inconsistent"
    assert find("003", "Table 6 +- of Skip-GANomaly AUC").verdict.iloc[0] == "inconsistent"
    assert (find("003", "PAUC from Table 7").verdict == "inconsistent").all()  # no pAUC +- is derivable
    assert find("003", "best pAUC").verdict.iloc[0] == "inconsistent"
    assert find("003", "hours of audio").verdict.iloc[0] == "inconsistent"
    assert find("003", "Skip-GANomaly PAUC ('to 72%')").verdict.iloc[0] == "inconsistent"  # 72.64 % truncated
    assert find("003", "GANomaly AUC ('to 88%')").verdict.iloc[0] == "consistent"
    assert find("004", "STFT matches or exceeds Mel").verdict.iloc[0] == "inconsistent"
    assert set(a.verdict) <= {"consistent", "within rounding", "inconsistent", "impossible"}


def test_paired_difference_ci_cancels_shared_difficulty():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(60), np.ones(40)].astype(int)
    base = rng.normal(size=100) + y
    a, b = base + 0.3 * y, base  # a is b plus a little separation on the anomalies
    ci = M.paired_mean_difference_ci([(y, a, b)], n_boot=300, seed=0)
    assert ci.low > 0 and ci.value == pytest.approx(M.auc(y, a) - M.auc(y, b))
    same = M.paired_mean_difference_ci([(y, b, b)], n_boot=100)
    assert same.value == same.low == same.high == 0
    with pytest.raises(M.MetricError, match="same clips"):
        M.paired_mean_difference_ci([(y, a, b[:10])])
    # one side as several detectors (one column each): the mean of their metrics
    two = M.paired_mean_difference_ci([(y, np.c_[a, a], b)], n_boot=300, seed=0)
    assert (two.value, two.low, two.high) == pytest.approx((ci.value, ci.low, ci.high))
    half = M.paired_mean_difference_ci([(y, np.c_[a, b], b)], n_boot=300, seed=0)
    assert half.value == pytest.approx(ci.value / 2)
    with pytest.raises(M.MetricError, match="side B"):
        M.paired_mean_difference_ci([(y, a, np.c_[b, b][:50])])


def test_the_page_parts_render():
    import matplotlib.pyplot as plt

    claims = pd.concat([_claims(), pd.DataFrame([_claim(paper="003", source="Table 7 " + "x" * 40, chapter="gans")])])
    b = scoreboard(claims, _results())
    checks = audit(load_claims())
    s = summary(b)
    assert list(s.columns) == list(ORDER) and s.values.sum() == len(b)
    fig = overview(b, checks)
    assert len(fig.axes) == 2 and fig.axes[0].has_data()
    plt.close(fig)
    fig = plot(b)
    assert len(fig.axes) >= len(set(b.paper))
    plt.close(fig)
    t = display_table(b)
    assert '<a href="autoencoders.html">autoencoders</a>' in set(t["answered in"])
    html = claims_html(b, "003")
    assert 'title="Table 7 xxxx' in html and "\u2026" in html and "<details" in html
    sentences = paper_sentences(b, checks)
    assert "internal checks" in sentences["sentence_002"]
    d = direction_table(b)
    assert set(d.verdict) == {"holds", "fails", "undecided on the synthetic factory"}
