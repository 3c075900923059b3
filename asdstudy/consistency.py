"""The papers against themselves: rules that check each paper's numbers against its own others.

Each rule is a small function of the claims table (:func:`asdstudy.results.load_claims`) and
returns :class:`Finding` rows: which paper, what was checked, the arithmetic (shown in the book),
and a verdict -- ``consistent``, ``within rounding`` (they agree only if the printed inputs sit
at the edge of their rounding), ``inconsistent`` (they disagree beyond the rounding of the
printed digits) or ``impossible`` (no data set of the stated size can give them). Printed
numbers are treated as intervals of their last digit (0.94 is anything in [0.935, 0.945)), so
rounding alone never makes a paper inconsistent.

The facts a rule needs beyond the claims (the DCASE 2020 slider test-set counts, clip
durations) are constants here with their source.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: DCASE 2020 Task 2 development set, slider ids 00/02/04 test clips (normal, anomalous): the
#: official archives' file counts (100/356, 100/267, 100/178).
SLIDER_TEST_00_02_04 = (300, 801)
#: Seconds per clip (DCASE 2020: ToyCar 11 s, the others 10 s).
CLIP_SECONDS = {"ToyCar": 11.0}
#: consistent; "within rounding": the printed numbers agree only at the edge of their rounding
#: (flagged, not counted as a contradiction); inconsistent; impossible.
VERDICTS = ("consistent", "within rounding", "inconsistent", "impossible")


@dataclass
class Finding:
    paper: str
    rule: str
    where: str
    arithmetic: str
    verdict: str

    def row(self) -> dict:
        return dict(self.__dict__)


class Printed(float):
    """A claimed number that remembers how many digits the paper printed."""

    def __new__(cls, value: float, printed: str):
        obj = super().__new__(cls, value)
        obj.printed = printed
        return obj


def _half_ulp(x: float) -> float:
    """Half a unit of the last printed digit of ``x`` (0.5e-2 for "1.00")."""
    s = getattr(x, "printed", None) or f"{x:.6f}".rstrip("0")
    decimals = len(s.split(".")[1]) if "." in s else 0
    return 0.5 * 10 ** (-decimals)


def _interval(x: float) -> tuple[float, float]:
    h = _half_ulp(x)
    return x - h, x + h


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def _get(claims, paper, method, metric, machine=None, unit=None, source=None):
    q = claims[(claims.paper == paper) & (claims.method == method) & (claims.metric == metric)]
    if machine is not None:
        q = q[q.machine == machine]
    if unit is not None:
        q = q[q.unit == unit]
    if source is not None:
        q = q[q.source.str.startswith(source)]
    if len(q) != 1:
        return None
    return Printed(float(q.value.iloc[0]), str(q.printed.iloc[0]) if "printed" in q else "")


def f1_interval(p: float, r: float) -> tuple[float, float]:
    """The range of F1 = 2PR/(P+R) over the rounding intervals of P and R (F1 rises in both)."""
    (pl, ph), (rl, rh) = _interval(p), _interval(r)
    f = lambda a, b: 2 * a * b / (a + b)  # noqa: E731
    return f(pl, rl), f(ph, rh)


def f1_rule(claims, paper, method, where, p_metric, r_metric, f_metric, **sel) -> Finding | None:
    p, r, f = (_get(claims, paper, method, m, **sel) for m in (p_metric, r_metric, f_metric))
    if None in (p, r, f):
        return None
    lo, hi = f1_interval(p, r)
    exact = 2 * p * r / (p + r)
    if _interval(f)[0] <= exact < _interval(f)[1]:
        verdict = "consistent"
    else:
        verdict = "within rounding" if _overlap((lo, hi), _interval(f)) else "inconsistent"
    return Finding(paper, f"F1 from precision and recall ({method})", where,
                   f"2 x {p:g} x {r:g} / ({p:g} + {r:g}) = {exact:.4f}, printed as {f.printed or f}; only P and R at the "
                   f"edge of their rounding reach it (range {lo:.4f}-{hi:.4f})" if verdict == "within rounding" else
                   f"2 x {p:g} x {r:g} / ({p:g} + {r:g}) = {exact:.4f} (rounding range {lo:.4f}-{hi:.4f}); printed F1 {f:g}",
                   verdict)


def rules_001(claims) -> list[Finding]:
    out = []
    for method, where in (("LSTM next-frame predictor", "Table 1"), ("GRU sequence autoencoder", "Table 2")):
        for cls in ("normal", "anomaly"):
            f = f1_rule(claims, "001", method, where, f"precision_{cls}", f"recall_{cls}", f"f1_{cls}")
            if f:
                f.rule += f", {cls} class"
                out.append(f)
    fpr = _get(claims, "001", "GRU sequence autoencoder", "fpr_at_threshold")
    rn = _get(claims, "001", "GRU sequence autoencoder", "recall_normal")
    if fpr is not None and rn is not None:
        lo, hi = 1 - _interval(fpr)[1], 1 - _interval(fpr)[0]
        ok = _overlap((lo, hi), _interval(rn))
        out.append(Finding("001", "normal recall = 1 - FPR (GRU)", "Section 3 step 5 vs Table 2",
                           f"1 - {fpr:g} = {1 - fpr:.3f}; Table 2 prints normal recall {rn:g}",
                           "consistent" if ok else "inconsistent"))
    # the anomalous-to-normal ratio Tables 1-2 imply (TP+FN over TN+FP from recall/precision)
    p_a, r_a, p_n, r_n = (_get(claims, "001", "LSTM next-frame predictor", m) for m in
                          ("precision_anomaly", "recall_anomaly", "precision_normal", "recall_normal"))
    if None not in (p_a, r_a, p_n, r_n):
        # with A anomalous and N normal clips: TP = r_a A, FP = TP (1 - p_a) / p_a = (1 - r_n) N
        ratio = (1 - r_n) * p_a / ((1 - p_a) * r_a)
        a, n = SLIDER_TEST_00_02_04
        out.append(Finding("001", "class ratio implied by Table 1", "Table 1",
                           f"anomalous / normal = (1 - {r_n:g}) x {p_a:g} / ((1 - {p_a:g}) x {r_a:g}) = {ratio:.2f}; "
                           f"DCASE 2020 slider ids 00/02/04 hold {n}/{a} = {n / a:.2f} (evidence for which data the paper used)",
                           "consistent" if abs(ratio - n / a) / (n / a) < 0.25 else "inconsistent"))
    return out


def rules_002(claims) -> list[Finding]:
    out = []
    for metric in ("auc", "pauc"):
        parts = [_get(claims, "002", "VAE", metric, "slider", u) for u in ("00", "02", "04")]
        mean = _get(claims, "002", "VAE", metric, "slider", "mean")
        if None not in parts and mean is not None:
            m = float(np.mean(parts))
            half = sum(_half_ulp(x) for x in parts) / 3 + _half_ulp(mean)
            out.append(Finding("002", f"Table 3 mean {metric.upper()} from its ids", "Table 3",
                               f"({' + '.join(f'{x:g}' for x in parts)}) / 3 = {m:.6f}; printed {mean:g}",
                               "consistent" if abs(m - mean) <= half else "inconsistent"))
    p, r = (_get(claims, "002", "Dense AE", m) for m in ("precision_anomaly", "recall_anomaly"))
    acc = _get(claims, "002", "Dense AE", "accuracy")
    if None not in (p, r):
        n, a = SLIDER_TEST_00_02_04
        tp = r * a
        fp = tp * (1 - p) / p
        verdict = "impossible" if fp > n else "consistent"
        text = (f"recall {r:g} of {a} anomalous clips gives TP = {tp:.0f}; precision {p:g} then needs "
                f"FP = TP (1 - P) / P = {fp:.0f} false positives, from only {n} normal clips")
        if acc is not None and fp <= n:
            text += f"; accuracy would be {(tp + n - fp) / (n + a):.3f} (printed {acc:g})"
        out.append(Finding("002", "Table 4's confusion matrix on the slider test set", "Table 4", text, verdict))
        f = f1_rule(claims, "002", "Dense AE", "Table 4", "precision_anomaly", "recall_anomaly", "f1_anomaly")
        if f:
            out.append(f)
    return out


def rules_000(claims) -> list[Finding]:
    out = []
    cats = claims[(claims.paper == "000") & claims.metric.str.startswith("n_features:")]
    total = _get(claims, "000", "Handcrafted features", "n_features")
    if len(cats) and total is not None:
        s = int(cats.value.sum())
        out.append(Finding("000", "feature taxonomy adds up to its total", "Table: Complete taxonomy of traditional audio features",
                           " + ".join(f"{int(v)}" for v in cats.value) + f" = {s}; the table's TOTAL and the text say {int(total)}",
                           "consistent" if s == total else "inconsistent"))
    imp = "Table: Threshold impact analysis"
    sens = "Table: Threshold sensitivity analysis"
    for t in ("0.2", "0.35", "0.5", "0.7"):
        a = _get(claims, "000", "Ensemble", f"precision_anomaly@{t}", source=imp)
        b = _get(claims, "000", "Ensemble", f"precision_anomaly@{t}+sens", source=sens)
        if a is not None and b is not None:
            out.append(Finding("000", f"precision at threshold {t} in two tables", f"{imp} vs {sens}",
                               f"{a:g} vs {b:g}", "consistent" if _overlap(_interval(a), _interval(b)) else "inconsistent"))
        tpr = _get(claims, "000", "CatBoost", f"tpr@{t}")
        rec = _get(claims, "000", "Ensemble", f"recall_anomaly@{t}", source=imp)
        if tpr is not None and rec is not None:
            out.append(Finding("000", f"recall at threshold {t}: operating points vs threshold impact", f"Table: Performance at "
                               f"different operating thresholds vs {imp}", f"TPR {tpr:g} vs recall {rec:g}",
                               "consistent" if _overlap(_interval(tpr), _interval(rec)) else "inconsistent"))
        fpr = _get(claims, "000", "CatBoost", f"fpr@{t}")
        fp, tn = (_get(claims, "000", "Ensemble", f"{m}@{t}", source=sens) for m in ("fp", "tn"))
        if None not in (fpr, fp, tn):
            out.append(Finding("000", f"FPR at threshold {t}: operating points vs sensitivity counts",
                               f"Table: Performance at different operating thresholds vs {sens}",
                               f"FP / (FP + TN) = {fp:g} / {fp + tn:g} = {fp / (fp + tn):.3f}; printed FPR {fpr:g}",
                               "consistent" if _overlap(_interval(fpr), (fp / (fp + tn),) * 2) else "inconsistent"))
    for t in ("0.2", "0.3", "0.35", "0.5", "0.7"):
        tp, fp, fn = (_get(claims, "000", "Ensemble", f"{m}@{t}", source=sens) for m in ("tp", "fp", "fn"))
        pr = _get(claims, "000", "Ensemble", f"precision_anomaly@{t}+sens", source=sens)
        if None not in (tp, fp, fn, pr):
            out.append(Finding("000", f"precision from counts at threshold {t}", sens,
                               f"TP / (TP + FP) = {tp:g} / {tp + fp:g} = {tp / (tp + fp):.3f}; printed {pr:g}",
                               "consistent" if _overlap(_interval(pr), (tp / (tp + fp),) * 2) else "inconsistent"))
    tn, fp, fn, tp = (_get(claims, "000", "CatBoost", m, source="Table: Confusion matrix") for m in ("tn", "fp", "fn", "tp"))
    f1 = _get(claims, "000", "CatBoost", "f1_anomaly")
    if None not in (tn, fp, fn, tp, f1):
        implied = 2 * tp / (2 * tp + fp + fn)
        out.append(Finding("000", "CatBoost's F1 from its confusion matrix", "Table: Confusion matrix (CatBoost) vs Table: "
                           "Ensemble vs individual models", f"2 x {tp:g} / (2 x {tp:g} + {fp:g} + {fn:g}) = {implied:.3f}; "
                           f"CatBoost's F1 is printed as {f1:g} (the matrix equals the ensemble's at threshold 0.35)",
                           "consistent" if _overlap(_interval(f1), (implied,) * 2) else "inconsistent"))
    f = f1_rule(claims, "000", "Ensemble", "Table: Ensemble vs individual models", "precision_anomaly", "recall_anomaly", "f1_anomaly")
    if f:
        out.append(f)
    return out


def rules_003(claims) -> list[Finding]:
    out = []
    n_test = {r.machine: float(r.value) for r in claims[(claims.paper == "003") & (claims.metric == "n_test")].itertuples()}
    n_train = {r.machine: float(r.value) for r in claims[(claims.paper == "003") & (claims.metric == "n_train")].itertuples()}
    for method in ("DCASE baseline", "EGBAD", "GANomaly", "Skip-GANomaly"):
        for metric in ("auc", "pauc"):
            per = {m: _get(claims, "003", method, metric, m, "mean") for m in n_test}
            table6 = _get(claims, "003", method, metric, "all", "weighted")
            if None in per.values() or table6 is None:
                continue
            w = np.array([n_test[m] for m in per])
            v = np.array(list(per.values()))
            mean = float(np.sum(w * v) / w.sum())
            out.append(Finding("003", f"Table 6 {metric.upper()} of {method} = Table 7 weighted by Table 2 test counts",
                               "Table 6 vs Tables 7 and 2", f"sum(n_test x value) / sum(n_test) = {mean:.4f}; Table 6 prints {table6:g}",
                               "consistent" if abs(mean - table6) <= 0.0002 else "inconsistent"))
            std6 = _get(claims, "003", method, f"{metric}_std", "all", "weighted")
            if std6 is not None:  # Table 7 has four decimals: its rounding moves a std by < 0.0001
                std = float(np.sqrt(np.sum(w * (v - mean) ** 2) / w.sum()))
                plain = float(np.std(v, ddof=1))
                ok = min(abs(std - std6), abs(plain - std6)) <= 0.0002
                out.append(Finding("003", f"Table 6 +- of {method} {metric.upper()} from Table 7", "Table 6 vs Tables 7 and 2",
                                   f"weighted std of Table 7 = {std:.4f} (unweighted {plain:.4f}); Table 6 prints {std6:g}",
                                   "consistent" if ok else "inconsistent"))
    pauc = {m: _get(claims, "003", "Skip-GANomaly", "pauc", m, "mean") for m in n_test}
    if None not in pauc.values():
        best = max(pauc, key=pauc.get)
        out.append(Finding("003", "Skip-GANomaly's best pAUC machine", "Section 6 text vs Table 7",
                           f"the text names fan ({pauc['fan']:g}); Table 7's highest is {best} ({pauc[best]:g})",
                           "consistent" if best == "fan" else "inconsistent"))
    for m, claimed in ((r.machine, float(r.value)) for r in claims[(claims.paper == "003") & (claims.metric == "auc_deterioration_vs_baseline")].itertuples()):
        base, egbad = _get(claims, "003", "DCASE baseline", "auc", m, "mean"), _get(claims, "003", "EGBAD", "auc", m, "mean")
        if None in (base, egbad):
            continue
        lo = _interval(base)[0] / _interval(egbad)[1] - 1
        hi = _interval(base)[1] / _interval(egbad)[0] - 1
        out.append(Finding("003", f"EGBAD's AUC deterioration on {m}", "Section 6.1 vs Table 7",
                           f"baseline / EGBAD - 1 = {base:g} / {egbad:g} - 1 = {base / egbad - 1:.2%} (rounding range "
                           f"{lo:.2%}-{hi:.2%}); the text says {claimed:.2%}",
                           "consistent" if lo - 0.00005 <= claimed <= hi + 0.00005 else "inconsistent"))
    for method in ("GANomaly", "Skip-GANomaly"):  # Section 6's whole percents of its own Table 6
        for metric in ("auc", "pauc"):
            text = _get(claims, "003", f"{method} (Section 6 text)", metric, "all", "weighted")
            table6 = _get(claims, "003", method, metric, "all", "weighted")
            if None in (text, table6):
                continue
            ok = _overlap(_interval(text), _interval(table6))
            out.append(Finding("003", f"Section 6's {method} {metric.upper()} ('to {text:.0%}') against Table 6",
                               "Section 6 text vs Table 6",
                               f"Table 6 prints {table6:.2%}, which rounds to {round(float(table6) * 100):.0f} %; the text says "
                               f"{text:.0%}" + ("" if ok else " (the figure truncated, not rounded)"),
                               "consistent" if ok else "inconsistent"))
    if n_train and n_test:
        seconds = sum((n_train.get(m, 0) + n_test.get(m, 0)) * CLIP_SECONDS.get(m, 10.0) for m in n_test)
        out.append(Finding("003", "hours of audio", "Abstract vs Table 2",
                           f"(train + test clips) x clip length = {seconds / 3600:.1f} h; the abstract says over 180 h",
                           "consistent" if seconds / 3600 >= 180 else "inconsistent"))
    return out


def rules_004(claims) -> list[Finding]:
    mel = {r.machine: float(r.value) for r in claims[(claims.paper == "004") & (claims.method == "AST (Mel) + kNN") & (claims.metric == "auc")].itertuples()}
    stft = {r.machine: float(r.value) for r in claims[(claims.paper == "004") & (claims.method == "AST (STFT) + kNN") & (claims.metric == "auc")].itertuples()}
    worse = sorted(m for m in mel if m != "fan" and m in stft and stft[m] < mel[m])
    return [Finding("004", "STFT matches or exceeds Mel, excluding Fan", "Section 3.1 vs Table 1",
                    ", ".join(f"{m}: STFT {stft[m]:g} vs Mel {mel[m]:g}" for m in sorted(stft) if m in mel),
                    "consistent" if not worse else "inconsistent")]


RULES = {"000": rules_000, "001": rules_001, "002": rules_002, "003": rules_003, "004": rules_004}


def audit(claims: pd.DataFrame) -> pd.DataFrame:
    """Every rule of every paper on the claims table: one row per finding."""
    rows = [f.row() for rule in RULES.values() for f in rule(claims)]
    return pd.DataFrame(rows, columns=["paper", "rule", "where", "arithmetic", "verdict"])
