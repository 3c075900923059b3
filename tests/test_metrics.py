import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from asdstudy import metrics as M


def test_auc_hand_computed():
    # pairs (anomaly, normal): (0.35 > 0.1) yes, (0.35 > 0.4) no, (0.8 > both) yes yes -> 3/4
    assert M.auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert M.auc([0, 1], [0.5, 0.5]) == 0.5  # a tie counts half


def test_pauc_two_ways_hand_computed():
    # 10 normals, 2 anomalies. The top score is an anomaly, then a normal, then an anomaly:
    # ROC rises to TPR .5 at FPR 0, stays at .5 until FPR .1, then reaches 1 at FPR .1.
    y = [1, 0, 1] + [0] * 9
    s = [0.99, 0.98, 0.97] + list(np.linspace(0.5, 0.1, 9))
    raw_area = 0.5 * 0.1  # rectangle of height .5 over FPR [0, .1]
    assert M.pauc_raw(y, s) == pytest.approx(raw_area / 0.1)  # 0.5
    mcclish = 0.5 * (1 + (raw_area - 0.005) / (0.1 - 0.005))
    assert M.pauc_mcclish(y, s) == pytest.approx(mcclish)  # 0.7368...
    assert M.pauc_mcclish(y, s) == pytest.approx(roc_auc_score(y, s, max_fpr=0.1))


def test_pauc_random_and_perfect_reference_values():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(4000), np.ones(4000)]
    s = rng.random(8000)
    assert M.pauc_mcclish(y, s) == pytest.approx(0.5, abs=0.03)
    assert M.pauc_raw(y, s) == pytest.approx(0.05, abs=0.01)
    perfect = y + 0.01 * rng.random(8000)
    assert M.pauc_raw(y, perfect) == pytest.approx(1.0)
    assert M.pauc_mcclish(y, perfect) == pytest.approx(1.0)


def test_eer_hand_computed():
    rate, thr = M.eer([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert rate == pytest.approx(0.5) and thr == pytest.approx(0.4)
    rate, thr = M.eer([0, 0, 0, 1, 1, 1], [1, 2, 3, 4, 5, 6])
    assert rate == pytest.approx(0.0) and 3 < thr <= 4


def test_thresholds():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.6, 0.5, 0.7, 0.8, 0.9])
    # cut at 0.5: TP 4, FP 1 -> F1 8/9; cut at 0.7: TP 3, FP 0 -> F1 6/7 < 8/9
    assert M.threshold_max_f1(y, s) == 0.5
    # closest to (0,1): at 0.7 (FPR 0, TPR .75) distance .25; at 0.5 (FPR .25, TPR 1) .25 -> first
    assert M.threshold_closest_corner(y, s) in (0.5, 0.7)
    assert M.threshold_at_tpr(y, s, 0.75) == 0.7
    assert M.threshold_at_tpr(y, s, 0.8) == 0.5
    assert M.threshold_mean_std([1.0, 2.0, 3.0], k=2) == pytest.approx(2 + 2 * 1.0)
    with pytest.raises(M.MetricError, match="at least two"):
        M.threshold_mean_std([1.0])


def test_classification_report():
    rep = M.classification_report([0, 0, 1, 1], [0.1, 0.6, 0.7, 0.2], threshold=0.5)
    assert rep.loc["anomaly", "precision"] == 0.5 and rep.loc["anomaly", "recall"] == 0.5
    assert rep.loc["normal", "support"] == 2 and rep.attrs["accuracy"] == 0.5


def test_bootstrap_ci_contains_value_and_is_seeded():
    rng = np.random.default_rng(3)
    y = np.r_[np.zeros(60), np.ones(40)]
    s = y * 0.8 + rng.standard_normal(100)
    a = M.bootstrap_ci(y, s, "auc", n_boot=500, seed=1)
    b = M.bootstrap_ci(y, s, "auc", n_boot=500, seed=1)
    assert a == b and a.low < a.value < a.high
    assert a.value == pytest.approx(roc_auc_score(y, s))
    p = M.bootstrap_ci(y, s, "pauc_raw", n_boot=100, seed=1)
    assert p.low <= p.value <= p.high
    # the rank-based replicate AUC agrees with sklearn on a replicate with ties
    yy = np.array([[0, 1, 0, 1, 1]]); ss = np.array([[0.2, 0.2, 0.1, 0.9, 0.5]])
    assert M._auc_rows(yy, ss)[0] == pytest.approx(roc_auc_score(yy[0], ss[0]))


def test_input_errors():
    with pytest.raises(M.MetricError, match="only one class"):
        M.auc([0, 0], [0.1, 0.2])
    with pytest.raises(M.MetricError, match="NaN"):
        M.auc([0, 1], [np.nan, 0.2])
    with pytest.raises(M.MetricError, match="has 2 values but y_score has 3"):
        M.auc([0, 1], [0.1, 0.2, 0.3])


def test_aggregation_schemes():
    df = pd.DataFrame({"machine": ["a", "a", "b"], "value": [0.6, 0.9, 0.5], "n_test": [10, 30, 60]})
    assert M.aggregate(df, scheme="dcase2020")["a"] == pytest.approx(0.75)
    assert M.aggregate(df, scheme="dcase2021")["a"] == pytest.approx(2 / (1 / 0.6 + 1 / 0.9))
    overall = M.aggregate(df, by="", scheme="weighted", weight="n_test")["all"]
    assert overall == pytest.approx((0.6 * 10 + 0.9 * 30 + 0.5 * 60) / 100)
    with pytest.raises(M.MetricError, match="weight column"):
        M.aggregate(df, scheme="weighted")
    assert M.weighted_std([1, 3], [1, 1]) == pytest.approx(1.0)


def test_score_table_keys():
    t = M.score_table([0, 0, 1, 1, 0, 1], [0.1, 0.3, 0.8, 0.4, 0.2, 0.9], n_boot=50)
    for k in ("auc", "auc_low", "auc_high", "pauc_mcclish", "pauc_raw", "eer", "n_normal", "n_anomaly"):
        assert k in t
    assert t["auc"] == 1.0 and t["n_normal"] == 3


def test_vectorised_bootstrap_pauc_equals_the_exact_routine():
    from asdstudy.metrics import _pauc_area_rows, bootstrap_values
    rng = np.random.default_rng(4)
    for _ in range(30):
        n = int(rng.integers(6, 80))
        y = rng.integers(0, 2, n)
        y[:2] = [0, 1]
        s = np.round(rng.normal(size=n) + y, int(rng.integers(0, 3)))  # rounding makes ties
        S = np.stack([s, rng.permutation(s)])
        Y = np.stack([y, y])
        for r in range(2):
            exact = M.pauc_raw(Y[r], S[r]) * M.MAX_FPR
            assert np.isclose(_pauc_area_rows(Y[r:r + 1], S[r:r + 1], M.MAX_FPR)[0], exact)
    y = rng.integers(0, 2, 60); y[:2] = [0, 1]
    s = rng.normal(size=60) + y
    vals = bootstrap_values(y, s, "pauc_mcclish", n_boot=50, seed=1)
    slow = bootstrap_values(y, s, lambda a, b: M.pauc_mcclish(a, b), n_boot=50, seed=1)
    np.testing.assert_allclose(vals, slow)


def test_bootstrap_mean_ci_of_units():
    rng = np.random.default_rng(0)
    units = []
    for shift in (0.5, 1.0, 2.0):
        y = np.r_[np.zeros(40), np.ones(40)].astype(int)
        units.append((y, rng.normal(size=80) + shift * y))
    per_unit = [M.auc(y, s) for y, s in units]
    ci = M.bootstrap_mean_ci(units, "auc", n_boot=300)
    assert np.isclose(ci.value, np.mean(per_unit)) and ci.low < ci.value < ci.high
    w = M.bootstrap_mean_ci(units, "auc", weights=[1, 0, 0], n_boot=300)
    assert np.isclose(w.value, per_unit[0])
    # averaging three independent units narrows the interval compared with one unit alone
    one = M.bootstrap_ci(*units[0], "auc", n_boot=300)
    assert (ci.high - ci.low) < (one.high - one.low)
    with pytest.raises(M.MetricError, match="one weight per unit"):
        M.bootstrap_mean_ci(units, weights=[1, 2])


def test_decision_metrics_on_known_counts():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    d = np.array([1, 1, 0, 1, 0, 0, 0, 0])  # tp 2, fn 1, fp 1, tn 4
    assert M.decision_rows("accuracy", y, d)[0] == 6 / 8
    assert M.decision_rows("precision_anomaly", y, d)[0] == 2 / 3
    assert M.decision_rows("recall_anomaly", y, d)[0] == 2 / 3
    assert M.decision_rows("specificity", y, d)[0] == 4 / 5
    assert np.isclose(M.decision_rows("f1_anomaly", y, d)[0], 2 / 3)
    assert M.decision_rows("precision_anomaly", y, np.zeros(8))[0] == 0.0  # zero division -> 0
    with pytest.raises(M.MetricError, match="unknown decision metric"):
        M.decision_rows("kappa", y, d)


def test_bootstrap_over_repeats():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(40), np.ones(20)].astype(int)
    s = rng.normal(size=60) + y
    one = M.bootstrap_repeated(y, s[None], "auc", n_boot=300, seed=1)
    two = M.bootstrap_repeated(y, np.vstack([s, s]), "auc", n_boot=300, seed=1)
    assert np.isclose(one.value, M.auc(y, s)) and one == two
    assert one.low < one.value < one.high
    s2 = rng.normal(size=60) + y
    mixed = M.bootstrap_repeated(y, np.vstack([s, s2]), "auc", n_boot=300, seed=1)
    assert np.isclose(mixed.value, (M.auc(y, s) + M.auc(y, s2)) / 2)
    f1 = M.bootstrap_repeated(y, (s > 0.5)[None], "f1_anomaly", n_boot=300)
    assert f1.low <= f1.value <= f1.high
    with pytest.raises(M.MetricError, match="columns"):
        M.bootstrap_repeated(y, s[:10][None], "auc")


def test_average_precision_hand_computed_and_as_sklearn():
    from sklearn.metrics import average_precision_score

    from asdstudy.metrics import average_precision

    # ranks: 1 (pos), 2 (neg), 3 (pos): AP = 1/2 * 1 + 1/2 * 2/3
    assert average_precision([1, 0, 1], [0.9, 0.8, 0.7]) == pytest.approx(0.5 + 1 / 3)
    # a tie between a positive and a negative counts as one threshold: precision 1/2 at recall 1
    assert average_precision([1, 0], [0.5, 0.5]) == pytest.approx(0.5)
    assert np.isnan(average_precision([0, 0], [0.1, 0.2]))
    rng = np.random.default_rng(3)
    for _ in range(50):
        n = int(rng.integers(3, 80))
        y = rng.integers(0, 2, n)
        y[0] = 1
        s = np.round(rng.random(n), 1)  # many ties
        assert average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)
