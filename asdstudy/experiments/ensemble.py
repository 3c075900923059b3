"""Paper 000's experiment: a supervised boosting ensemble on PANNs embeddings and handcrafted
features, run (a) as published and (b) under honest protocols.

What the paper did: 2048-d PANNs CNN14 embeddings plus handcrafted librosa features per clip,
VarianceThreshold(0.001), RobustScaler, SMOTE, then CatBoost, XGBoost, a random forest and
extra trees, combined with F1-derived weights and a searched threshold; a stratified 85/15
split (seed 42) whose 15 % stopped the boosters, set the weights, chose the thresholds and was
reported on.

What the study does: (a) exactly that (:func:`paper_arm`); (b) repeated stratified
cross-validation where an inner 15 % of each training fold does the stopping, weighting and
thresholding and the untouched outer fold is scored, and a held-out split scored once
(:func:`honest_arms`); the ablations the paper only imagined (feature sets x SMOTE); importance
by feature family; the gap between the protocols; the paper's final step (:func:`final_step`:
CatBoost alone retrained on every development clip, applied at 0.35 to the held-out clips,
with the paper's test-prediction statistics); and a probe of the labelled set itself
(:func:`split_probe`: can a classifier tell which dataset split a normal clip came from?).
Every metric has a bootstrap CI.

Thresholds: each single model's decisions use its own threshold, the best F1 on the rows it
selects on over 0.20..0.79 in steps of 0.01 (``proba > t``, the step the paper's weight search
uses); the ensemble's is the paper's searched threshold (0.200..0.795 in steps of 0.005,
``proba >= t``). The paper does not say which threshold its single models' accuracies use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import metrics as M
from ..features import handcrafted as H
from ..features.embeddings import WeightsUnavailable, extract_cnn14, load_cnn14
from ..models import boosting as B
from ..results import ResultWriter
from . import protocol as P

CHAPTER = "ensemble"
SHOW = ("auc", "average_precision", "accuracy", "precision_anomaly", "recall_anomaly", "f1_anomaly", "specificity")
MODELS = list(B.MODEL_NAMES) + [B.ENSEMBLE]
NO_EMB = "PANNs CNN14 weights were not available on this machine, so this number could not be computed."


@dataclass
class Params(P.ChapterParams):
    machines: list = field(default_factory=lambda: ["pump", "fan"])
    embeddings: str = "auto"
    panns_checkpoint: str = ""
    scale: float = 0.05
    val_fraction: float = 0.15
    split_seed: int = 42
    cv_folds: int = 5
    cv_repeats: int = 1

    def validate(self):
        super().validate()
        if self.embeddings not in ("auto", "off"):
            raise P.ASDStudyError(f"parameter 'embeddings' is {self.embeddings!r}; use auto or off.")
        if not 0 < self.scale <= 1:
            raise P.ASDStudyError(f"parameter 'scale' is {self.scale}; it must lie in (0, 1] (1.0 = the paper's sizes).")
        if not 0 < self.val_fraction < 1:
            raise P.ASDStudyError(f"parameter 'val_fraction' is {self.val_fraction}; it must lie strictly between 0 and 1.")
        if self.cv_folds < 2:
            raise P.ASDStudyError(f"parameter 'cv_folds' is {self.cv_folds}; cross-validation needs at least 2 folds.")
        P._positive(self, "cv_repeats")


@dataclass
class Result:
    params: Params
    data: P.ChapterData
    data_note: str
    counts: pd.DataFrame
    families: pd.DataFrame
    feature_seconds: float
    panns_note: str
    feature_sets: list
    main_set: str
    y_val: np.ndarray
    paper: B.Arm
    paper_table: pd.DataFrame
    fit_table: pd.DataFrame
    claimed_table: pd.DataFrame
    f1_curve: pd.DataFrame
    cv_table: pd.DataFrame
    main_cv: pd.DataFrame
    held_table: pd.DataFrame
    importance: pd.DataFrame
    importance_note: str
    gap: pd.DataFrame
    final: B.FinalModel         # the paper's final step: CatBoost on every development clip, at 0.35
    final_table: pd.DataFrame   # its test-prediction statistics beside the paper's
    probe: dict                 # can the split a normal came from be told apart? (auc Interval or None, text)
    mix: pd.DataFrame           # the labelled set's clips by label and source split
    rows: pd.DataFrame
    board: pd.DataFrame
    discussion: str
    cv_seconds: float
    seconds: float

    def glue(self) -> dict:
        return {"ens_data_note": self.data_note, "ens_n_features": H.N_FEATURES, "ens_n_claimed": H.CLAIMED,
                "ens_n_by_table": sum(H.CLAIMED_BY_TABLE.values()), "ens_feature_seconds": self.feature_seconds,
                "ens_panns_note": self.panns_note, "ens_scale": self.params.scale, "ens_n_val": len(self.y_val),
                "ens_chapter_minutes": self.seconds / 60, "ens_probe_text": self.probe["text"],
                "ens_final_n": self.final.n_predicted, "ens_final_share": self.final.share,
                "ens_final_p": self.final.p_value, "ens_final_prior": self.final.prior}


def data_note(p: Params, data: P.ChapterData) -> str:
    if not data.synthetic:
        return ("Paper 000's data is not public. This run draws a labelled set of the paper's sizes (622 development "
                "clips, 156 held-out clips, 26.5 % anomalous) from the DCASE 2020 development clips of "
                + ", ".join(p.machines) + " (anomalies from the test split; normals from the test split, then the "
                "training split).")
    return ("Paper 000's data is not public; this run uses the synthetic factory's labelled set for "
            + ", ".join(p.machines) + ", whose anomalies are injected faults of known kind and band, "
            "drawn with the paper's class balance (26.5 % anomalous).")


def family_table() -> pd.DataFrame:
    """Features per family: what the paper's listed code yields beside what its table says."""
    by_family = pd.Series(H.family_of(H.NAMES)).value_counts().reindex(list(H.FAMILIES)).rename("listed code yields")
    t = pd.DataFrame({"listed code yields": by_family,
                      "paper's table says": pd.Series(H.CLAIMED_BY_TABLE).reindex(by_family.index)})
    t.loc["total"] = [by_family.sum(), sum(H.CLAIMED_BY_TABLE.values())]
    return t.astype("Int64")


def panns_features(p: Params, paths: list[str], progress: bool) -> tuple[pd.DataFrame | None, str]:
    """PANNs CNN14 embeddings when the checkpoint is found; else None and one sentence saying so."""
    if p.embeddings == "off":
        return None, "PANNs embeddings were switched off for this run (embeddings parameter), so only the handcrafted arm runs."
    try:
        cnn14 = load_cnn14(p.panns_checkpoint or None)
        panns = extract_cnn14(paths, cnn14, progress=progress)
        return panns, f"PANNs CNN14 embeddings ({panns.shape[1]} dimensions) were computed from {cnn14.checkpoint_}."
    except WeightsUnavailable:
        return None, ("The PANNs CNN14 checkpoint is not available on this machine, so the embeddings (and every number "
                      "that needs them) are missing from this run and only the handcrafted arm runs.")


def paper_arm(X_dev, y_dev, p: Params, smote: bool = True) -> tuple[B.Arm, np.ndarray]:
    """The paper's protocol as published: stopping, weights, thresholds and the reported metrics
    all on one stratified 15 % validation split (seed 42)."""
    return B.paper_protocol(X_dev, y_dev, val_fraction=p.val_fraction, seed=p.split_seed, scale=p.scale,
                            n_jobs=p.jobs, smote=smote)


def honest_arms(feature_sets: dict, dev, held, y_dev, y_held, p: Params, progress: bool):
    """Cross-validation of every feature set with and without SMOTE, and the held-out split
    (main feature set, with SMOTE) scored once by models fitted on the development clips."""
    cv = {}
    for fs_name, frame in feature_sets.items():
        for smote in (True, False):
            cv[(fs_name, "SMOTE" if smote else "no SMOTE")] = B.cross_validate(
                rows_of(frame, dev), y_dev, n_splits=p.cv_folds, n_repeats=p.cv_repeats, seed=p.split_seed,
                names=list(frame.columns), smote=smote, scale=p.scale, n_jobs=p.jobs, progress=progress)
    X_all = next(iter(feature_sets.values()))
    X_dev, X_held = rows_of(X_all, dev), rows_of(X_all, held)
    fit_i, sel_i = B.stratified_split(y_dev, p.val_fraction, p.split_seed)
    held_arm = B.run_arm(X_dev[fit_i], y_dev[fit_i], X_dev[sel_i], y_dev[sel_i], X_held, seed=p.split_seed,
                         scale=p.scale, n_jobs=p.jobs)
    return cv, held_arm


def final_step(X_all: pd.DataFrame, dev, held, y_dev, p: Params) -> tuple[B.FinalModel, pd.DataFrame]:
    """Paper 000's final step (its Section 4.4): CatBoost alone, retrained on all development
    clips (SMOTE, no early stopping), applied at threshold 0.35 to the held-out clips; the share
    predicted anomalous against the development prior, its chi-square test, the probabilities
    (for the histogram) and the top-20 features. Beside each statistic, the paper's value."""
    fin = B.final_catboost(rows_of(X_all, dev), y_dev, rows_of(X_all, held), list(X_all.columns), seed=p.split_seed,
                           scale=p.scale, n_jobs=p.jobs)
    claims = P.claims_of("000")
    c = claims[claims["method"].isin(["CatBoost final", "dataset"])].set_index("metric")["value"]
    t = pd.DataFrame([
        {"statistic": "development clips", "here": fin.n_train, "paper": c.get("n_development")},
        {"statistic": "development rows after SMOTE", "here": fin.n_resampled, "paper": c.get("n_after_smote")},
        {"statistic": "held-out clips", "here": len(fin.proba), "paper": c.get("n_test")},
        {"statistic": "development prior (anomalous share)", "here": round(fin.prior, 4), "paper": 0.265},
        {"statistic": f"held-out clips predicted anomalous at {fin.threshold}", "here": fin.n_predicted,
         "paper": c.get("n_predicted_anomalous")},
        {"statistic": "share predicted anomalous", "here": round(fin.share, 4),
         "paper": round(c.get("n_predicted_anomalous", np.nan) / c.get("n_test", np.nan), 4)},
        {"statistic": "chi-square p (predicted share vs prior)", "here": round(fin.p_value, 4), "paper": c.get("chi2_p")},
        {"statistic": "boosting rounds (no early stopping)", "here": fin.iterations, "paper": np.nan},
    ]).set_index("statistic")
    return fin, t


def split_probe(features: pd.DataFrame, table: pd.DataFrame, p: Params) -> dict:
    """Can a classifier tell the normal clips drawn from a dataset's training split from those
    drawn from its test split? Every anomaly comes from a test split, so if it can, a supervised
    model may learn "which split" instead of "which condition". Out-of-fold probabilities of a
    random forest on the handcrafted features (stratified 5-fold), AUC with a bootstrap CI.
    Returns {"auc": Interval or None, "n_train_split", "n_test_split", "text"}."""
    normals = table[table["label"] == 0]
    src = normals["source_split"] if "source_split" in normals else pd.Series("test", index=normals.index)
    n_tr, n_te = int((src == "train").sum()), int((src == "test").sum())
    out = {"auc": None, "n_train_split": n_tr, "n_test_split": n_te}
    if min(n_tr, n_te) < 10:
        out["text"] = (f"The labelled set's normals come from one dataset split ({n_te} from test splits, {n_tr} from "
                       "training splits): there is no split for a model to learn, so the probe does not apply.")
        return out
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    y = (src == "train").to_numpy(int)
    X = B.clean(features.loc[normals["path"]].to_numpy())
    clf = RandomForestClassifier(n_estimators=200, random_state=p.split_seed, n_jobs=p.jobs)
    proba = cross_val_predict(clf, X, y, cv=StratifiedKFold(5, shuffle=True, random_state=p.split_seed),
                              method="predict_proba")[:, 1]
    ci = M.bootstrap_ci(y, proba, "auc", n_boot=p.n_boot, seed=p.seed)
    out["auc"] = ci
    verdict = ("it can: the split leaves a trace a supervised model may exploit" if ci.low > 0.6 else
               "it cannot tell them apart much better than chance" if ci.low <= 0.5 else
               "it can, a little")
    out["text"] = (f"Normals in the labelled set: {n_te} from test splits, {n_tr} from training splits. A random forest "
                   f"trying to tell the two apart from the handcrafted features reaches AUC {P.fmt_ci(ci.value, ci.low, ci.high)}"
                   f" (out of fold): {verdict}.")
    return out


def rows_of(frame: pd.DataFrame, part: pd.DataFrame) -> np.ndarray:
    return frame.loc[part["path"]].to_numpy()


def importance_table(cv_main: B.CVResult) -> pd.DataFrame:
    """Share of each model's importance per feature family, mean over the folds."""
    return pd.concat({(k, name): s for k, fold in enumerate(cv_main.importances) for name, s in fold.items()},
                     names=["fold", "model", "family"]).groupby(["model", "family"]).mean().unstack(0).fillna(0)


def gap_table(paper_table, main_cv, held_table) -> pd.DataFrame:
    """The same pipeline under three protocols; the paper's F1 optimism over cross-validation."""
    def pick(t, metric):
        return t[metric].reindex(MODELS)

    gap = pd.DataFrame({"AUC, paper's way": pick(paper_table, "auc"), "AUC, cross-validated": pick(main_cv, "auc"),
                        "AUC, held-out split": pick(held_table, "auc"), "F1, paper's way": pick(paper_table, "f1_anomaly"),
                        "F1, cross-validated": pick(main_cv, "f1_anomaly"), "F1, held-out split": pick(held_table, "f1_anomaly")})
    gap["F1 optimism (paper - CV)"] = gap["F1, paper's way"] - gap["F1, cross-validated"]
    return gap


def protocol_frame(paper_table, main_cv, held_table, metric: str = "f1_anomaly") -> pd.DataFrame:
    """Tidy (model, protocol, value, ci_low, ci_high) of one metric under the three protocols, for a bar figure."""
    parts = []
    for lab, t in (("paper's way", paper_table), ("cross-validated", main_cv), ("held-out", held_table)):
        t = t.reindex(MODELS)
        parts.append(pd.DataFrame({"model": MODELS, "protocol": lab, "value": t[metric].to_numpy(),
                                   "ci_low": t[f"{metric}_low"].to_numpy(), "ci_high": t[f"{metric}_high"].to_numpy()}))
    return pd.concat(parts, ignore_index=True)


def ablation_frame(cv_table: pd.DataFrame) -> pd.DataFrame:
    """Tidy (metric, model, arm, value, ci) of AUC and F1 per cross-validated arm, for a bar figure."""
    parts = []
    for metric in ("auc", "f1_anomaly"):
        t = cv_table[cv_table["model"].isin(MODELS)]
        parts.append(pd.DataFrame({"metric": f"{metric} (cross-validated)", "model": t["model"],
                                   "arm": t["features"] + ", " + t["balancing"], "value": t[metric],
                                   "ci_low": t[f"{metric}_low"], "ci_high": t[f"{metric}_high"]}))
    return pd.concat(parts, ignore_index=True)


def result_rows(p, data, paper_table, main_cv, held_table, y_val, y_dev, y_held, arm, nosmote_table, ablation,
                share_emb, panns_present, kept, n_columns, final=None, probe=None) -> ResultWriter:
    """Paper-protocol rows answer the claims; the honest numbers are separate methods."""
    w = ResultWriter(CHAPTER, profile=p.profile, seed=p.seed, dataset=data.dataset)
    machine = "+".join(p.machines)

    def add_table(t, suffix, y, note=""):
        for name, r in t.iterrows():
            for m in SHOW:
                w.add("000", f"{name}{suffix}", m, r[m], machine=machine, unit="all", ci=(r[f"{m}_low"], r[f"{m}_high"]),
                      n_normal=int((y == 0).sum()), n_anomaly=int((y == 1).sum()), note=note)

    add_table(paper_table, "", y_val)
    add_table(main_cv, " (cross-validated)", y_dev)
    add_table(held_table, " (held-out split)", y_held)
    for name, v in arm.weights.items():
        w.add("000", name, "ensemble_weight", v, machine=machine, unit="all")
    w.add("000", "Ensemble", "threshold", arm.thresholds["Ensemble"], machine=machine, unit="all")
    nos = nosmote_table.loc["Ensemble"]
    for m in ("recall_anomaly", "precision_anomaly", "f1_anomaly"):
        w.add("000", "Ensemble without SMOTE", m, nos[m], machine=machine, unit="all", ci=(nos[f"{m}_low"], nos[f"{m}_high"]))
    for method, t in ablation.items():
        for m in ("auc", "f1_anomaly"):
            if t is None:
                w.add("000", method, m, np.nan, machine=machine, unit="all", note=NO_EMB)
            else:
                w.add("000", method, m, t[m], machine=machine, unit="all", ci=(t[f"{m}_low"], t[f"{m}_high"]))
    for m, v in (("importance_share_embeddings", share_emb), ("importance_share_handcrafted", 1 - share_emb)):
        w.add("000", "PANNs + handcrafted", m, v, machine=machine, unit="all", note="" if panns_present else NO_EMB)
    w.add("000", "Handcrafted features", "n_features", H.N_FEATURES, machine=machine, unit="all")
    if final is not None:
        fin = final
        w.add("000", "dataset", "n_development", fin.n_train, machine=machine, unit="all")
        w.add("000", "dataset", "n_test", len(fin.proba), machine=machine, unit="all")
        w.add("000", "dataset", "n_after_smote", fin.n_resampled, machine=machine, unit="all")
        share = P.share_ci(fin.predicted, n_boot=p.n_boot, seed=p.seed)
        w.add("000", "CatBoost final", "n_predicted_anomalous", fin.n_predicted, machine=machine, unit="all",
              ci=(share.low * len(fin.proba), share.high * len(fin.proba)),
              note=f"CatBoost retrained on all {fin.n_train} development clips, threshold {fin.threshold}; CI by bootstrap over clips")
        w.add("000", "CatBoost final", "chi2_p", fin.p_value, machine=machine, unit="all",
              note="chi-square goodness of fit of the predicted counts against the development prior")
    if probe is not None and probe.get("auc") is not None:
        a = probe["auc"]
        w.add("000", "split probe (train- vs test-split normals)", "auc", a.value, machine=machine, unit="all",
              ci=(a.low, a.high), n_normal=probe["n_test_split"], n_anomaly=probe["n_train_split"],
              note="the study's check of its labelled set, not a claim of the paper")
    for family, label in H.TAXONOMY.items():  # the paper's category table, family by family
        w.add("000", "Handcrafted features", f"n_features:{label}", len(H.FAMILIES[family]), machine=machine, unit="all")
    if panns_present:
        w.add("000", "VarianceThreshold(0.001)", "n_features_after_selection", kept, machine=machine, unit="all")
    else:
        w.add("000", "VarianceThreshold(0.001)", "n_features_after_selection", np.nan, machine=machine, unit="all",
              note=f"without the 2048 PANNs columns the filter sees {n_columns} columns, not 2301 ({kept} kept here)")
    return w


def discussion(p, data, paper_table, main_cv, held_table, cv_table, main_set, panns_note, n_val) -> str:
    pe, ce, he = (t.loc["Ensemble"] for t in (paper_table, main_cv, held_table))
    text = (f"On {data.dataset} ({p.profile} profile, {p.scale:g} of the paper's boosting rounds and trees) the ensemble "
            f"scores AUC {P.fmt_ci(pe.auc, pe.auc_low, pe.auc_high)} and anomaly F1 {pe.f1_anomaly:.3f} the paper's way, "
            f"on {n_val} validation clips; cross-validated it scores AUC {P.fmt_ci(ce.auc, ce.auc_low, ce.auc_high)} and F1 "
            f"{ce.f1_anomaly:.3f}, and on the held-out split AUC {he.auc:.3f} and F1 {he.f1_anomaly:.3f}. ")
    singles = main_cv.auc.reindex(list(B.MODEL_NAMES))
    best = singles.idxmax()
    text += (f"Cross-validated, the best single model by AUC is {best} ({singles[best]:.3f}); the ensemble "
             + ("beats every single model. " if main_cv.auc["Ensemble"] >= singles.max() else "does not beat it. "))
    sm, ns = (cv_table[(cv_table["features"] == main_set) & (cv_table["balancing"] == b) & (cv_table["model"] == "Ensemble")].iloc[0]
              for b in ("SMOTE", "no SMOTE"))
    text += (f"SMOTE moves the cross-validated ensemble's anomaly recall from {ns.recall_anomaly:.3f} to {sm.recall_anomaly:.3f} "
             f"and its F1 from {ns.f1_anomaly:.3f} to {sm.f1_anomaly:.3f}. ")
    text += panns_note + " "
    text += ("The paper's own numbers are not comparable: its data is private; these are "
             + ("synthetic clips." if data.synthetic else "DCASE 2020 clips of the paper's sizes."))
    return text


def run(p: Params, progress: bool = True) -> Result:
    timer = P.Timer()
    data = P.load_data(p, p.machines, variant="labelled")
    table = data.table.assign(label=data.table["label"].astype(int))
    dev = table[table["split"] == "train"].reset_index(drop=True)
    held = table[table["split"] == "test"].reset_index(drop=True)
    counts = table.groupby(["split", "label"]).size().unstack().rename(columns={0: "normal", 1: "anomalous"})
    counts.index = counts.index.map({"train": "development (the paper's 622)", "test": "held out (the paper's 156)"})
    t0 = P.Timer()
    paths = table["path"].tolist()
    hand = H.extract(paths, n_jobs=p.jobs, progress=progress)
    feature_seconds = t0.seconds()
    panns, panns_note = panns_features(p, paths, progress)
    feature_sets = {"handcrafted only": hand}
    if panns is not None:
        feature_sets = {"PANNs + handcrafted": pd.concat([panns, hand], axis=1), "PANNs only": panns, "handcrafted only": hand}
    main_set = next(iter(feature_sets))
    X_all = feature_sets[main_set]
    X_dev, y_dev = rows_of(X_all, dev), dev["label"].to_numpy()
    y_held = held["label"].to_numpy()
    # (a) the paper's protocol
    arm, val_idx = paper_arm(X_dev, y_dev, p)
    arm_nosmote, _ = paper_arm(X_dev, y_dev, p, smote=False)
    y_val = y_dev[val_idx]
    paper_table = B.metrics_table(y_val, arm.proba, arm.decision, n_boot=p.n_boot, seed=p.seed)
    fit_table = pd.DataFrame({"fit seconds": arm.fit_seconds, "rounds kept by early stopping": arm.best_iterations,
                              "ensemble weight": arm.weights, "threshold": arm.thresholds}).round(3)
    claims = P.claims_of("000")
    fit_table["claimed weight"] = claims[claims["metric"] == "ensemble_weight"].set_index("method")["value"].reindex(fit_table.index)
    claimed_tab = claims[claims["method"].isin(MODELS)].pivot_table(index="method", columns="metric", values="value", aggfunc="first")
    claimed_tab = claimed_tab.reindex(columns=[c for c in SHOW if c in claimed_tab.columns])
    grid = np.arange(0.2, 0.8, 0.005)
    f1_curve = pd.DataFrame({"threshold": grid, "F1": [M.decision_rows("f1_anomaly", y_val, arm.proba["Ensemble"] >= t)[0]
                                                       for t in grid], "series": "Ensemble"})
    # (b) honest protocols and ablations
    t0 = P.Timer()
    cv, held_arm = honest_arms(feature_sets, dev, held, y_dev, y_held, p, progress)
    cv_seconds = t0.seconds()
    parts = []
    for (fs_name, sm), r in cv.items():
        t = B.metrics_table(y_dev, r.proba, r.decision, n_boot=p.n_boot, seed=p.seed)
        parts.append(t.assign(features=fs_name, balancing=sm).reset_index())
    cv_table = pd.concat(parts, ignore_index=True)
    main_cv = cv_table[(cv_table["features"] == main_set) & (cv_table["balancing"] == "SMOTE")].set_index("model")
    held_table = B.metrics_table(y_held, held_arm.proba, held_arm.decision, n_boot=p.n_boot, seed=p.seed)
    imp = importance_table(cv[(main_set, "SMOTE")])
    if panns is not None:
        share_emb = float(imp.loc["panns", "CatBoost"]) if "panns" in imp.index else 0.0
        imp_note = f"CatBoost puts {share_emb:.1%} of its importance on the PANNs embeddings (paper: 42.3 %)."
    else:
        share_emb = np.nan
        imp_note = "Without the embeddings the paper's 42.3 % / 57.7 % split cannot be measured here."
    ablation = {}
    for fs_name, method in (("PANNs only", "PANNs only"), ("handcrafted only", "Handcrafted only")):
        if fs_name not in feature_sets:
            ablation[method] = None
        elif fs_name == main_set:
            ablation[method] = paper_table.loc["Ensemble"]
        else:
            a, _ = paper_arm(rows_of(feature_sets[fs_name], dev), y_dev, p)
            ablation[method] = B.metrics_table(y_val, a.proba, a.decision, n_boot=p.n_boot, seed=p.seed).loc["Ensemble"]
    nosmote_table = B.metrics_table(y_val, arm_nosmote.proba, arm_nosmote.decision, n_boot=p.n_boot, seed=p.seed)
    kept = int(arm.pipelines["CatBoost"].kept_.sum())
    final, final_tab = final_step(X_all, dev, held, y_dev, p)
    probe = split_probe(hand, table, p)
    src = table["source_split"] if "source_split" in table else pd.Series("synthetic", index=table.index)
    mix = table.assign(source_split=src).groupby(["split", "label", "source_split"]).size().unstack("source_split",
                                                                                                    fill_value=0)
    w = result_rows(p, data, paper_table, main_cv, held_table, y_val, y_dev, y_held, arm, nosmote_table, ablation,
                    share_emb, panns is not None, kept, X_all.shape[1], final, probe)
    rows = w.frame()
    w.write()
    return Result(
        params=p, data=data, data_note=data_note(p, data), counts=counts, families=family_table(),
        feature_seconds=feature_seconds, panns_note=panns_note, feature_sets=list(feature_sets), main_set=main_set,
        y_val=y_val, paper=arm, paper_table=paper_table, fit_table=fit_table, claimed_table=claimed_tab.round(4),
        f1_curve=f1_curve, cv_table=cv_table, main_cv=main_cv, held_table=held_table, importance=imp,
        importance_note=imp_note, gap=gap_table(paper_table, main_cv, held_table), final=final,
        final_table=final_tab, probe=probe, mix=mix, rows=rows,
        board=P.chapter_board("000", rows, CHAPTER),
        discussion=discussion(p, data, paper_table, main_cv, held_table, cv_table, main_set, panns_note, len(y_val)),
        cv_seconds=cv_seconds, seconds=timer.seconds())
