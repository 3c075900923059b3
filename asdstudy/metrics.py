"""Evaluation metrics exactly as the DCASE challenges and the five papers compute them.

Conventions: ``y_true`` is 1 for an anomaly (the positive class), 0 for normal; ``y_score`` is
an anomaly score, higher = more anomalous.

Two partial AUCs, both over FPR in [0, p] (p = 0.1 in every DCASE task), clearly named:

* :func:`pauc_mcclish` -- what ``sklearn.metrics.roc_auc_score(max_fpr=p)`` returns and what
  every official DCASE evaluator script computes: McClish's standardisation
  ``0.5 * (1 + (A - p^2/2) / (p - p^2/2))``; random scores give 0.5, perfect ones 1.
* :func:`pauc_raw` -- the raw area normalised by p, ``A / p``, as the DCASE task descriptions
  define it; random scores give p/2 = 0.05, perfect ones 1.

Examples
--------
>>> y = [0, 0, 1, 1]; s = [0.1, 0.4, 0.35, 0.8]
>>> auc(y, s)
0.75
>>> round(eer(y, s)[0], 3)
0.5
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import hmean, rankdata
from sklearn.metrics import roc_auc_score, roc_curve

from . import ASDStudyError

MAX_FPR = 0.1


class MetricError(ASDStudyError):
    pass


def _check(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(int).ravel()
    s = np.asarray(y_score, dtype=float).ravel()
    if y.shape != s.shape:
        raise MetricError(f"y_true has {y.size} values but y_score has {s.size}.")
    if not np.all(np.isfinite(s)):
        raise MetricError("y_score contains NaN or infinite values; check the detector's scores.")
    if set(np.unique(y)) - {0, 1}:
        raise MetricError("y_true must hold 0 (normal) and 1 (anomaly) only.")
    if y.min() == y.max():
        raise MetricError("AUC needs both normal (0) and anomalous (1) clips; only one class given.")
    return y, s


def auc(y_true, y_score) -> float:
    """Area under the ROC curve (``sklearn.metrics.roc_auc_score``)."""
    y, s = _check(y_true, y_score)
    return float(roc_auc_score(y, s))


def _partial_area(y, s, p):
    fpr, tpr, _ = roc_curve(y, s)
    stop = np.searchsorted(fpr, p, side="right")
    x = np.concatenate([fpr[:stop], [p]])
    # interpolate between the two ROC points around p, exactly as scikit-learn does
    yv = np.concatenate([tpr[:stop], [np.interp(p, fpr[stop - 1:stop + 1], tpr[stop - 1:stop + 1])]])
    return float(np.trapezoid(yv, x))


def pauc_raw(y_true, y_score, max_fpr: float = MAX_FPR) -> float:
    """Raw partial AUC over FPR in [0, max_fpr], divided by max_fpr (random: max_fpr / 2)."""
    y, s = _check(y_true, y_score)
    return _partial_area(y, s, max_fpr) / max_fpr


def pauc_mcclish(y_true, y_score, max_fpr: float = MAX_FPR) -> float:
    """McClish-standardised partial AUC, as ``roc_auc_score(max_fpr=...)`` (random: 0.5)."""
    y, s = _check(y_true, y_score)
    a = _partial_area(y, s, max_fpr)
    lo, hi = max_fpr**2 / 2, max_fpr
    return float(0.5 * (1 + (a - lo) / (hi - lo)))


def eer(y_true, y_score) -> tuple[float, float]:
    """Equal error rate and its threshold.

    Returns:
        (eer, threshold): the rate where the false positive rate equals the miss rate (linear
        interpolation between ROC points), and the score threshold there (clips with score >=
        threshold are called anomalous).
    """
    y, s = _check(y_true, y_score)
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    fnr = 1 - tpr
    d = fnr - fpr
    i = int(np.argmax(d <= 0))  # first point where the miss rate no longer exceeds FPR
    if i == 0:
        return float(fpr[0]), float(thr[0])
    w = d[i - 1] / (d[i - 1] - d[i]) if d[i - 1] != d[i] else 0.0
    rate = fpr[i - 1] + w * (fpr[i] - fpr[i - 1])
    t_hi = thr[i - 1] if np.isfinite(thr[i - 1]) else s.max()
    threshold = t_hi + w * (thr[i] - t_hi)
    return float(rate), float(threshold)


# ----------------------------------------------------------------------------------- thresholds

def threshold_max_f1(y_true, y_score) -> float:
    """The threshold (one of the scores) that maximises the anomaly-class F1."""
    y, s = _check(y_true, y_score)
    order = np.argsort(-s, kind="stable")
    ys, ss = y[order], s[order]
    tp = np.cumsum(ys)
    fp = np.cumsum(1 - ys)
    f1 = 2 * tp / (tp + fp + y.sum())
    last = np.r_[ss[1:] != ss[:-1], True]  # only cut between distinct scores
    f1 = np.where(last, f1, -1)
    return float(ss[int(np.argmax(f1))])


def threshold_closest_corner(y_true, y_score) -> float:
    """The ROC point closest to (FPR 0, TPR 1) -- paper 001's rule -- as a score threshold."""
    y, s = _check(y_true, y_score)
    fpr, tpr, thr = roc_curve(y, s)
    k = int(np.argmin(fpr**2 + (1 - tpr) ** 2))
    return float(thr[k]) if np.isfinite(thr[k]) else float(s.max())


def threshold_at_tpr(y_true, y_score, tpr_target: float = 0.8) -> float:
    """The highest threshold whose TPR reaches ``tpr_target`` (paper 001's GRU: 0.8)."""
    y, s = _check(y_true, y_score)
    pos = np.sort(s[y == 1])[::-1]
    k = int(np.ceil(tpr_target * pos.size)) - 1
    return float(pos[max(k, 0)])


def threshold_mean_std(normal_scores, k: float = 1.0) -> float:
    """mean + k * std of scores of normal clips (validation normals: an honest rule)."""
    s = np.asarray(normal_scores, dtype=float)
    if s.size < 2:
        raise MetricError("threshold_mean_std needs at least two normal scores.")
    return float(s.mean() + k * s.std(ddof=1))


def classification_report(y_true, y_score, threshold: float) -> pd.DataFrame:
    """Precision, recall, F1 and support per class, plus accuracy, at ``score >= threshold``."""
    y, s = _check(y_true, y_score)
    pred = (s >= threshold).astype(int)
    rows = []
    for cls, name in ((0, "normal"), (1, "anomaly")):
        tp = int(np.sum((pred == cls) & (y == cls)))
        p_n = int(np.sum(pred == cls))
        t_n = int(np.sum(y == cls))
        prec = tp / p_n if p_n else 0.0
        rec = tp / t_n if t_n else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        rows.append({"class": name, "precision": prec, "recall": rec, "f1": f1, "support": t_n})
    df = pd.DataFrame(rows).set_index("class")
    df.attrs["accuracy"] = float(np.mean(pred == y))
    df.attrs["threshold"] = float(threshold)
    return df


def report_row(y_true, y_score, threshold: float) -> dict:
    """One flat dict of :func:`classification_report`: precision/recall/f1 per class
    (``precision_normal``, ``recall_anomaly``, ...), accuracy, FPR and TPR at the threshold."""
    rep = classification_report(y_true, y_score, threshold)
    row = {f"{m}_{c}": float(rep.loc[c, m]) for c in ("normal", "anomaly") for m in ("precision", "recall", "f1")}
    row["accuracy"] = rep.attrs["accuracy"]
    row["fpr"] = 1.0 - row["recall_normal"]
    row["tpr"] = row["recall_anomaly"]
    return row


def threshold_mean_std_tuned(y_true, y_score, normal_scores, ks=np.arange(0.0, 4.01, 0.25)) -> float:
    """mean + k * std of ``normal_scores`` with k picked from ``ks`` to maximise the anomaly F1 on
    (y_true, y_score): paper 001's "tested different threshold values ... best performance on
    the test set" when (y_true, y_score) is the test set itself."""
    s = np.asarray(normal_scores, dtype=float)
    best, best_f1 = None, -1.0
    for k in ks:
        t = threshold_mean_std(s, k)
        f1 = report_row(y_true, y_score, t)["f1_anomaly"]
        if f1 > best_f1:
            best, best_f1 = t, f1
    return float(best)


#: Paper 001's threshold rules: name -> rule(y, scores, validation-normal scores) -> threshold.
THRESHOLD_RULES = {
    "ROC point closest to (0, 1)": lambda y, s, n: threshold_closest_corner(y, s),
    "TPR fixed at 0.8": lambda y, s, n: threshold_at_tpr(y, s, 0.8),
    "mean + k std of validation normals (k tuned)": lambda y, s, n: threshold_mean_std_tuned(y, s, n),
}

#: Where a threshold is chosen, in :func:`threshold_comparison`.
CHOSEN_ON = {
    "leaky_all": "as the paper: all test clips",
    "leaky_half": "leaky: evaluation half",
    "honest": "honest: calibration half -> evaluation half",
}


def threshold_comparison(scores: pd.DataFrame, normals: pd.DataFrame, rules: dict | None = None,
                         cal_fraction: float = 0.5, seed: int = 0, by: str = "unit") -> pd.DataFrame:
    """Decisions from threshold rules chosen leakily (on the clips reported) and honestly.

    Each unit's labelled test clips are split, stratified by label with a seeded draw, into a
    calibration part (``cal_fraction``) and an evaluation part. Per unit and rule a threshold
    is chosen three ways (:data:`CHOSEN_ON`): on all test clips and applied to them (what paper
    001 appears to have done), on the evaluation part itself, and on the calibration part only
    (honest). Decisions are pooled over units, then summarised per class.

    Args:
        scores: test clips with columns ``by``, ``label`` (0/1) and ``score``.
        normals: held-out training normals (never trained on) with ``by`` and ``score``: the
            "validation normals" of the mean + k std rule.
        rules: name -> rule(y, s, normal_scores) -> threshold; :data:`THRESHOLD_RULES` if None.

    Returns:
        One row per (rule, chosen_on) with :func:`report_row`'s columns, ``n`` (clips reported)
        and ``threshold`` (mean over units).
    """
    rules = THRESHOLD_RULES if rules is None else rules
    for col in (by, "label", "score"):
        if col not in scores:
            raise MetricError(f"threshold_comparison: the scores frame has no {col!r} column.")
    rng = np.random.default_rng(seed)
    preds = {(r, c): ([], [], []) for r in rules for c in CHOSEN_ON}  # labels, decisions, thresholds
    for unit, g in scores.groupby(by, sort=True):
        y, s = g["label"].to_numpy(int), g["score"].to_numpy(float)
        nrm = normals.loc[normals[by] == unit, "score"].to_numpy(float)
        cal = np.zeros(len(y), bool)
        for cls in (0, 1):
            idx = np.flatnonzero(y == cls)
            if idx.size < 2:
                raise MetricError(f"unit {unit}: need at least two clips of class {cls} to split into "
                                  "calibration and evaluation parts.")
            cal[rng.choice(idx, max(1, int(round(cal_fraction * idx.size))), replace=False)] = True
        ev = ~cal
        for r, rule in rules.items():
            for c, (fit_mask, eval_mask) in {"leaky_all": (slice(None), slice(None)),
                                             "leaky_half": (ev, ev), "honest": (cal, ev)}.items():
                t = rule(y[fit_mask], s[fit_mask], nrm)
                ys, ds, ts = preds[(r, c)]
                ys.append(y[eval_mask]); ds.append(s[eval_mask] >= t); ts.append(t)
    rows = []
    for (r, c), (ys, ds, ts) in preds.items():
        yy, dd = np.concatenate(ys), np.concatenate(ds).astype(float)
        rows.append({"rule": r, "chosen_on": CHOSEN_ON[c], **report_row(yy, dd, 0.5), "n": yy.size,
                     "threshold": float(np.mean(ts))})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------ bootstrap

def _auc_rows(y: np.ndarray, S: np.ndarray) -> np.ndarray:
    """AUC of each row of S (n_boot, n) for labels y (n_boot, n), via average ranks (ties ok)."""
    r = rankdata(S, axis=1)
    n_pos = y.sum(axis=1)
    n_neg = y.shape[1] - n_pos
    return ((r * y).sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float

    def __iter__(self):
        return iter((self.value, self.low, self.high))


def _pauc_area_rows(y: np.ndarray, S: np.ndarray, max_fpr: float) -> np.ndarray:
    """Raw partial ROC area up to ``max_fpr`` of each row of S, vectorised.

    Without ties between a normal and an anomalous score, the ROC is a staircase: the k-th
    normal (by descending score) moves FPR to k/N at the TPR of the anomalies ranked above it.
    Rows with such ties are computed by the exact (sklearn) routine instead.
    """
    order = np.argsort(-S, axis=1, kind="stable")
    ys = np.take_along_axis(y, order, axis=1)
    ss = np.take_along_axis(S, order, axis=1)
    n_pos = ys.sum(axis=1)
    n_neg = ys.shape[1] - n_pos
    tpr_at_neg = np.cumsum(ys, axis=1) / n_pos[:, None]  # TPR when reaching each position
    out = np.empty(S.shape[0])
    for r in range(S.shape[0]):  # cheap per-row bookkeeping; the sorting above is vectorised
        neg_tpr = tpr_at_neg[r][ys[r] == 0]
        N = n_neg[r]
        m = int(np.floor(max_fpr * N + 1e-12))
        area = neg_tpr[:m].sum() / N
        if m < N:
            area += (max_fpr - m / N) * neg_tpr[m]
        out[r] = area
    ties = (ss[:, 1:] == ss[:, :-1]) & (ys[:, 1:] != ys[:, :-1])
    for r in np.flatnonzero(ties.any(axis=1)):
        out[r] = _partial_area(y[r], S[r], max_fpr)
    return out


def _metric_rows(metric: str, y: np.ndarray, S: np.ndarray) -> np.ndarray:
    if metric == "auc":
        return _auc_rows(y, S)
    a = _pauc_area_rows(y, S, MAX_FPR)
    if metric == "pauc_raw":
        return a / MAX_FPR
    lo, hi = MAX_FPR**2 / 2, MAX_FPR
    return 0.5 * (1 + (a - lo) / (hi - lo))


def _boot_index(y: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) indices, normals and anomalies drawn separately (stratified)."""
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    return np.concatenate([rng.choice(pos, (n_boot, pos.size)), rng.choice(neg, (n_boot, neg.size))], axis=1)


#: Metrics of hard decisions (1 = anomaly) that :func:`decision_rows` computes.
DECISION_METRICS = ("accuracy", "precision_anomaly", "recall_anomaly", "f1_anomaly", "specificity")


def average_precision(y_true, y_score) -> float:
    """Average precision, sum over the distinct thresholds of (R_n - R_(n-1)) * P_n: the same
    value as ``sklearn.metrics.average_precision_score`` (a test checks it, ties included), in
    one sort, for the bootstrap's thousands of calls. No anomalous clip: nan."""
    y = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(y_score, float).ravel()
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # the last clip of each run of tied scores
    tps = np.cumsum(y)[last]
    if tps.size == 0 or tps[-1] == 0:
        return float("nan")
    precision = tps / (last + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def decision_rows(metric: str, y: np.ndarray, D: np.ndarray) -> np.ndarray:
    """A decision metric of each row of D (n_rows, n) against labels y (same shape), vectorised.

    Undefined ratios (no predicted anomalies for precision, ...) are 0, as sklearn's
    ``zero_division=0``.
    """
    y, D = np.atleast_2d(np.asarray(y, bool)), np.atleast_2d(np.asarray(D, bool))
    tp = (y & D).sum(axis=1)
    fp = (~y & D).sum(axis=1)
    fn = (y & ~D).sum(axis=1)
    tn = (~y & ~D).sum(axis=1)

    def ratio(a, b):
        return np.divide(a, b, out=np.zeros(a.shape, float), where=b > 0)

    if metric == "accuracy":
        return (tp + tn) / y.shape[1]
    if metric == "precision_anomaly":
        return ratio(tp, tp + fp)
    if metric == "recall_anomaly":
        return ratio(tp, tp + fn)
    if metric == "specificity":
        return ratio(tn, tn + fp)
    if metric == "f1_anomaly":
        return ratio(2 * tp, 2 * tp + fp + fn)
    raise MetricError(f"unknown decision metric {metric!r}; use one of {', '.join(DECISION_METRICS)}.")


def bootstrap_repeated(y_true, values, metric: str = "auc", n_boot: int = 1000, level: float = 0.95,
                       seed: int = 0) -> Interval:
    """Metric averaged over repeated predictions of the same clips, with a bootstrap CI.

    ``values`` is (n_repeats, n): scores (for auc / pauc_*) or 0/1 decisions (for the
    :data:`DECISION_METRICS`) of every clip in each repeat (e.g. out-of-fold predictions of
    repeated cross-validation). Each replicate resamples the clips once (stratified) and
    averages the metric over the repeats, so the interval reflects the clips, not the
    repeats' agreement.
    """
    y = np.asarray(y_true).astype(int)
    V = np.atleast_2d(np.asarray(values, float))
    if V.shape[1] != y.shape[0]:
        raise MetricError(f"values have {V.shape[1]} columns for {y.shape[0]} labels.")
    if metric in DECISION_METRICS:
        def rows(yy, vv):
            return decision_rows(metric, yy, vv > 0.5)
    elif metric in ("auc", "pauc_mcclish", "pauc_raw"):
        _check(y, V[0])

        def rows(yy, vv):
            return _metric_rows(metric, yy, vv)
    else:
        raise MetricError(f"unknown metric {metric!r}.")
    full = np.mean([rows(y[None], v[None])[0] for v in V])
    idx = _boot_index(y, n_boot, seed)
    boot = np.mean([rows(y[idx], v[idx]) for v in V], axis=0)
    a = (1 - level) / 2
    return Interval(float(full), float(np.quantile(boot, a)), float(np.quantile(boot, 1 - a)))


def bootstrap_values(y_true, y_score, metric: str = "auc", n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """The metric on ``n_boot`` stratified resamples (normals and anomalies drawn separately,
    so every replicate has both classes). ``metric``: auc, pauc_mcclish, pauc_raw or a
    callable(y, s) -> float."""
    y, s = _check(y_true, y_score)
    idx = _boot_index(y, n_boot, seed)
    if metric in ("auc", "pauc_mcclish", "pauc_raw"):
        return _metric_rows(metric, y[idx], s[idx])
    if not callable(metric):
        raise MetricError(f"unknown metric {metric!r}; use auc, pauc_mcclish, pauc_raw or a callable.")
    return np.array([metric(y[i], s[i]) for i in idx])


def _metric_fn(metric):
    fn = {"auc": auc, "pauc_mcclish": pauc_mcclish, "pauc_raw": pauc_raw}.get(metric, metric)
    if not callable(fn):
        raise MetricError(f"unknown metric {metric!r}; use auc, pauc_mcclish, pauc_raw or a callable.")
    return fn


def bootstrap_ci(y_true, y_score, metric: str = "auc", n_boot: int = 1000, level: float = 0.95,
                 seed: int = 0) -> Interval:
    """Percentile bootstrap confidence interval, resampling normals and anomalies separately
    (stratified, so every replicate has both classes).

    Args:
        metric: "auc", "pauc_mcclish", "pauc_raw" or a callable(y, s) -> float.
        n_boot: replicates.
        level: coverage (0.95 for a 95 % interval).
        seed: the resampling seed.

    Returns:
        Interval(value, low, high) with value the metric on the full data.
    """
    fn = _metric_fn(metric)
    vals = bootstrap_values(y_true, y_score, metric, n_boot, seed)
    a = (1 - level) / 2
    return Interval(float(fn(y_true, y_score)), float(np.quantile(vals, a)), float(np.quantile(vals, 1 - a)))


def bootstrap_mean_ci(units: list[tuple], metric: str = "auc", weights=None, n_boot: int = 1000,
                      level: float = 0.95, seed: int = 0) -> Interval:
    """CI of a (weighted) mean of a metric over units, e.g. the mean AUC over a machine type's
    ids or paper 003's test-size-weighted mean over machine types: each unit's clips are
    resampled independently and the replicates averaged.

    Args:
        units: [(y_true, y_score), ...] one pair per unit.
        weights: one weight per unit (None: the arithmetic mean).
    """
    fn = _metric_fn(metric)
    w = np.ones(len(units)) if weights is None else np.asarray(weights, dtype=float)
    if len(w) != len(units) or not len(units):
        raise MetricError(f"bootstrap_mean_ci needs one weight per unit ({len(units)} units, {len(w)} weights).")
    vals = np.array([bootstrap_values(y, s, metric, n_boot, seed + i) for i, (y, s) in enumerate(units)])
    point = np.array([fn(y, s) for y, s in units])
    reps = np.average(vals, axis=0, weights=w)
    a = (1 - level) / 2
    return Interval(float(np.average(point, weights=w)), float(np.quantile(reps, a)), float(np.quantile(reps, 1 - a)))


def paired_mean_difference_ci(units: list[tuple], metric: str = "auc", n_boot: int = 1000, level: float = 0.95,
                              seed: int = 0) -> Interval:
    """CI of the mean over units of metric(A) - metric(B), two detectors scored on the same
    clips: each replicate resamples each unit's clips once (stratified) and scores both
    detectors on that same resample, so the clips' shared difficulty cancels.

    Either side may be several detectors scored on the same clips (a 2-D array, one column per
    detector, e.g. one model per filter cutoff): its metric is then the mean of the columns'
    metrics, so the difference reads "A on average over its models minus B".

    Args:
        units: [(y_true, score_a, score_b), ...] one triple per unit, scores aligned clip by clip
            (each score a vector of n clips or an (n, m) array of m detectors).
    """
    if not units:
        raise MetricError("paired_mean_difference_ci needs at least one unit.")
    fn = _metric_fn(metric)
    diffs, point = [], []
    for i, (y, a, b) in enumerate(units):
        y = np.asarray(y).astype(int).ravel()
        A, B = (_columns(y, s, side) for s, side in ((a, "A"), (b, "B")))
        idx = _boot_index(y, n_boot, seed + i)
        yb = y[idx]
        side = [np.mean([_metric_rows(metric, yb, X[:, j][idx]) for j in range(X.shape[1])], axis=0) for X in (A, B)]
        diffs.append(side[0] - side[1])
        point.append(np.mean([fn(y, A[:, j]) for j in range(A.shape[1])])
                     - np.mean([fn(y, B[:, j]) for j in range(B.shape[1])]))
    reps = np.mean(diffs, axis=0)
    q = (1 - level) / 2
    return Interval(float(np.mean(point)), float(np.quantile(reps, q)), float(np.quantile(reps, 1 - q)))


def _columns(y: np.ndarray, s, side: str) -> np.ndarray:
    """Scores as an (n clips, m detectors) array, checked against the labels."""
    X = np.asarray(s, dtype=float)
    X = X[:, None] if X.ndim == 1 else X
    if X.ndim != 2 or X.shape[0] != y.size or X.shape[1] == 0:
        raise MetricError(f"paired scores of side {side} have shape {np.shape(s)} for {y.size} clips; score both "
                          "sides on the same clips (a vector, or one column per detector).")
    for j in range(X.shape[1]):
        _check(y, X[:, j])
    return X


def score_table(y_true, y_score, n_boot: int = 1000, seed: int = 0) -> dict:
    """AUC, both pAUCs and EER, with 95 % bootstrap CIs for the first three, in one dict."""
    out = {}
    for m in ("auc", "pauc_mcclish", "pauc_raw"):
        v = bootstrap_ci(y_true, y_score, m, n_boot=n_boot, seed=seed)
        out[m], out[f"{m}_low"], out[f"{m}_high"] = v.value, v.low, v.high
    out["eer"], out["eer_threshold"] = eer(y_true, y_score)
    y = np.asarray(y_true)
    out["n_normal"], out["n_anomaly"] = int((y == 0).sum()), int((y == 1).sum())
    return out


# ---------------------------------------------------------------------------------- aggregation

def aggregate(df: pd.DataFrame, value: str = "value", by: str = "machine", scheme: str = "dcase2020",
              weight: str | None = None) -> pd.Series:
    """Aggregate per-unit metric values the way each source does.

    Args:
        df: one row per unit (machine id, or section x domain).
        value: the column to aggregate.
        by: the grouping column (e.g. "machine"); "" for one overall number.
        scheme: "dcase2020" arithmetic mean; "dcase2021" harmonic mean (``scipy.stats.hmean``,
            the official 2021+ score); "weighted" mean weighted by ``weight`` (paper 003 weights
            machine types by their test-set size).
        weight: the weight column for "weighted" (e.g. "n_test").
    """
    if scheme == "dcase2020":
        f = lambda g: float(np.mean(g[value]))  # noqa: E731
    elif scheme == "dcase2021":
        f = lambda g: float(hmean(g[value]))  # noqa: E731
    elif scheme == "weighted":
        if not weight or weight not in df:
            raise MetricError("scheme 'weighted' needs a weight column, e.g. weight='n_test'.")
        f = lambda g: float(np.average(g[value], weights=g[weight]))  # noqa: E731
    else:
        raise MetricError(f"unknown aggregation scheme {scheme!r}; use dcase2020, dcase2021 or weighted.")
    if not by:
        return pd.Series({"all": f(df)})
    return df.groupby(by, sort=True).apply(f, include_groups=False)


def weighted_std(values, weights) -> float:
    """Standard deviation weighted by test-set size (the spread paper 003 reports beside Table 6)."""
    v, w = np.asarray(values, float), np.asarray(weights, float)
    m = np.average(v, weights=w)
    return float(np.sqrt(np.average((v - m) ** 2, weights=w)))
