"""The metrics chapter's worked examples: each metric of the book computed on small, visible
score sets by :mod:`asdstudy.metrics`, so that the page can show the numbers next to their
definitions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import metrics as M

#: Five normal and five anomalous clips with hand-picked scores.
EXAMPLE = pd.DataFrame({"label": [0, 0, 0, 0, 0, 1, 1, 1, 1, 1],
                        "score": [0.10, 0.20, 0.30, 0.45, 0.70, 0.40, 0.55, 0.60, 0.80, 0.90]})


def pair_count(example: pd.DataFrame = EXAMPLE) -> tuple[int, float, float]:
    """(anomalous-normal pairs, pairs ranked the right way round with ties as half, AUC)."""
    a = example.score[example.label == 1].to_numpy()[:, None]
    n = example.score[example.label == 0].to_numpy()[None, :]
    wins = float((a > n).sum() + 0.5 * (a == n).sum())
    return a.size * n.size, wins, M.auc(example.label, example.score)


def two_detectors(seed: int = 0, n: int = 400):
    """Two detectors with (nearly) equal AUC but different pAUCs: A puts 30 % of anomalies far
    above every normal and overlaps on the rest; B shifts every anomaly a little, the shift
    tuned so that both AUCs agree to three decimals.

    Returns (labels, scores_a, scores_b, table of AUC / McClish pAUC / raw pAUC per detector).
    """
    rng = np.random.default_rng(seed)
    y = np.r_[np.zeros(n), np.ones(n)]
    a = np.r_[rng.normal(0, 1, n), np.where(rng.random(n) < 0.3, rng.normal(4, 0.5, n), rng.normal(0.35, 1, n))]
    b = np.r_[rng.normal(0, 1, n), rng.normal(0.0, 1, n)]
    shifts = np.linspace(0, 2, 2001)
    aucs = np.array([M.auc(y, np.r_[b[:n], b[n:] + s]) for s in shifts])
    b[n:] += shifts[int(np.argmin(np.abs(aucs - M.auc(y, a))))]
    table = pd.DataFrame({d: {"AUC": M.auc(y, s), "pAUC (McClish)": M.pauc_mcclish(y, s), "pAUC (raw, A/p)": M.pauc_raw(y, s)}
                          for d, s in (("A", a), ("B", b))}).T
    return y, a, b, table


def threshold_rules(example: pd.DataFrame = EXAMPLE) -> tuple[pd.DataFrame, float]:
    """Every threshold rule of the papers applied to the worked example, and its EER."""
    s, y = example.score.to_numpy(), example.label.to_numpy()
    rate, t_eer = M.eer(y, s)
    rules = {
        "EER threshold (paper 004)": t_eer,
        "max F1 over the scores (paper 000's search)": M.threshold_max_f1(y, s),
        "ROC point closest to (0, 1) (paper 001, LSTM)": M.threshold_closest_corner(y, s),
        "TPR fixed at 0.8 (paper 001, GRU)": M.threshold_at_tpr(y, s, 0.8),
        "mean + 2 std of normal scores": M.threshold_mean_std(s[y == 0], k=2),
    }
    rows = []
    for name, t in rules.items():
        rep = M.classification_report(y, s, t)
        rows.append({"rule": name, "threshold": t, "precision (anomaly)": rep.loc["anomaly", "precision"],
                     "recall (anomaly)": rep.loc["anomaly", "recall"], "F1 (anomaly)": rep.loc["anomaly", "f1"],
                     "accuracy": rep.attrs["accuracy"]})
    return pd.DataFrame(rows).set_index("rule"), rate


def aggregation_example() -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """Per-id values of two machine types aggregated the DCASE 2020, DCASE 2021+ and paper 003 ways."""
    per_id = pd.DataFrame({"machine": ["fan", "fan", "fan", "valve", "valve"], "unit": ["00", "02", "04", "00", "02"],
                           "value": [0.95, 0.90, 0.55, 0.80, 0.70], "n_test": [200, 200, 200, 120, 120]})
    agg = pd.DataFrame({"arithmetic (DCASE 2020)": M.aggregate(per_id, scheme="dcase2020"),
                        "harmonic (DCASE 2021+)": M.aggregate(per_id, scheme="dcase2021"),
                        "test-size weighted (paper 003)": M.aggregate(per_id, scheme="weighted", weight="n_test")})
    overall = float(M.aggregate(per_id, by="", scheme="weighted", weight="n_test")["all"])
    return per_id, agg, overall
