"""Paper 000's supervised pipeline: cleaning, variance filter, robust scaling, SMOTE, four
tree ensembles, an F1-weighted ensemble and a searched threshold.

Everything that learns from data -- the variance filter, the scaler, SMOTE and the model -- is
fitted on the training rows only (:class:`BoostingPipeline`); validation or test rows are only
transformed. SMOTE therefore never sees, and never interpolates towards, a held-out clip.

The paper's hyperparameters (its Section 3.6) are in :data:`PAPER_PARAMS`; ``scale`` in
:func:`make_model` shrinks the number of boosting rounds / trees for a CPU budget and is
recorded wherever it is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import ASDStudyError

MODEL_NAMES = ("CatBoost", "XGBoost", "RandomForest", "ExtraTrees")

PAPER_PARAMS = {
    # border_count 254 is CatBoost's CPU default, written out so that a GPU run (whose default
    # is 128) keeps the paper's CPU settings
    "CatBoost": dict(iterations=2000, learning_rate=0.05, depth=10, l2_leaf_reg=5, early_stopping_rounds=100,
                     class_weights=[1.0, 2.0], eval_metric="AUC", border_count=254),
    "XGBoost": dict(n_estimators=2000, max_depth=10, learning_rate=0.05, reg_alpha=0.2, reg_lambda=0.2,
                    subsample=0.8, colsample_bytree=0.8, scale_pos_weight=2.0, eval_metric="logloss",
                    early_stopping_rounds=100),
    "RandomForest": dict(n_estimators=500, max_depth=15, min_samples_split=5, min_samples_leaf=2,
                         class_weight="balanced"),
    "ExtraTrees": dict(n_estimators=500, max_depth=15, min_samples_split=5, min_samples_leaf=2,
                       class_weight="balanced"),
}
EARLY_STOPPING = {"CatBoost", "XGBoost"}


def cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return False


def make_model(name: str, seed: int = 42, scale: float = 1.0, n_jobs: int = 1, gpu: bool | None = None,
               early_stopping: bool = True):
    """One of the paper's four classifiers with its published settings.

    Args:
        scale: multiply the number of boosting rounds / trees (1.0 = the paper's).
        gpu: use CatBoost's and XGBoost's GPU task types (default: when CUDA is present).
        early_stopping: keep the boosters' early stopping (needs an eval set at fit).
    """
    if name not in PAPER_PARAMS:
        raise ASDStudyError(f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}.")
    if scale <= 0:
        raise ASDStudyError(f"scale must be > 0, got {scale}.")
    gpu = cuda_available() if gpu is None else gpu
    p = dict(PAPER_PARAMS[name])
    for key in ("iterations", "n_estimators"):
        if key in p:
            p[key] = max(10, int(round(p[key] * scale)))
    if not early_stopping:
        p.pop("early_stopping_rounds", None)
    if name == "CatBoost":
        from catboost import CatBoostClassifier

        return CatBoostClassifier(**p, random_seed=seed, verbose=0, thread_count=n_jobs,
                                  allow_writing_files=False, **({"task_type": "GPU"} if gpu else {}))
    if name == "XGBoost":
        from xgboost import XGBClassifier

        return XGBClassifier(**p, random_state=seed, n_jobs=n_jobs, tree_method="hist",
                             device="cuda" if gpu else "cpu")
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

    cls = RandomForestClassifier if name == "RandomForest" else ExtraTreesClassifier
    return cls(**p, random_state=seed, n_jobs=n_jobs)


def clean(X) -> np.ndarray:
    """The paper's cleaning: NaN -> 0, +-inf -> +-1e10, clipped to [-1e10, 1e10]."""
    X = np.nan_to_num(np.asarray(X, dtype=np.float64), nan=0.0, posinf=1e10, neginf=-1e10)
    return np.clip(X, -1e10, 1e10)


class BoostingPipeline:
    """clean -> VarianceThreshold(0.001) -> RobustScaler -> [SMOTE k=3] -> model, fitted on
    training rows only.

    Args:
        model: an unfitted classifier (:func:`make_model`).
        smote: oversample the anomalies of the training rows to balance the classes.
        seed: SMOTE's seed.

    Attributes (after fit): ``kept_`` (bool mask of the columns the variance filter kept),
    ``n_resampled_`` (training rows after SMOTE), ``resampled_`` ((X, y) as the model saw them).
    """

    def __init__(self, model, smote: bool = True, seed: int = 42, variance_threshold: float = 0.001,
                 k_neighbors: int = 3):
        self.model, self.smote, self.seed = model, smote, seed
        self.variance_threshold, self.k_neighbors = variance_threshold, k_neighbors

    def _transform(self, X) -> np.ndarray:
        return self.scaler_.transform(self.selector_.transform(clean(X)))

    def fit(self, X, y, X_val=None, y_val=None) -> "BoostingPipeline":
        from sklearn.feature_selection import VarianceThreshold
        from sklearn.preprocessing import RobustScaler

        y = np.asarray(y, dtype=int)
        if set(np.unique(y)) != {0, 1}:
            raise ASDStudyError("the supervised pipeline needs both classes (0 normal, 1 anomaly) in its training rows.")
        Xc = clean(X)
        self.selector_ = VarianceThreshold(self.variance_threshold).fit(Xc)
        self.kept_ = self.selector_.get_support()
        self.scaler_ = RobustScaler().fit(self.selector_.transform(Xc))
        Xs = self.scaler_.transform(self.selector_.transform(Xc))
        if self.smote:
            from imblearn.over_sampling import SMOTE

            k = min(self.k_neighbors, int((y == 1).sum()) - 1)
            if k < 1:
                raise ASDStudyError("SMOTE needs at least two anomalous training rows.")
            Xs, y = SMOTE(k_neighbors=k, random_state=self.seed).fit_resample(Xs, y)
        self.resampled_ = (Xs, y)
        self.n_resampled_ = len(y)
        kw = {}
        name = type(self.model).__name__
        wants_eval = getattr(self.model, "get_params", lambda: {})().get("early_stopping_rounds") is not None
        if wants_eval:
            if X_val is None:
                raise ASDStudyError(f"{name} uses early stopping: pass X_val, y_val (the rows it may stop on).")
            Xv = self._transform(X_val)
            kw = {"eval_set": (Xv, np.asarray(y_val, int))} if "CatBoost" in name else \
                {"eval_set": [(Xv, np.asarray(y_val, int))], "verbose": False}
        self.model.fit(Xs, y, **kw)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Probability of the anomaly class, (n,)."""
        if not hasattr(self, "scaler_"):
            raise ASDStudyError("BoostingPipeline is not fitted: call fit(X, y) first.")
        Xt = self._transform(X)
        jobs = getattr(self.model, "n_jobs", None)
        if hasattr(self.model, "estimators_") and jobs not in (None, 1):
            # a scikit-learn forest on several threads adds its trees' probabilities in the order
            # the threads finish: the sums then differ in their last bits from run to run, break
            # ties between clips differently and move the AUC; one thread adds them in tree order
            self.model.set_params(n_jobs=1)
            try:
                return self.model.predict_proba(Xt)[:, 1]
            finally:
                self.model.set_params(n_jobs=jobs)
        return self.model.predict_proba(Xt)[:, 1]


def best_f1(y, proba, thresholds=np.arange(0.2, 0.8, 0.01), strict: bool = True) -> tuple[float, float]:
    """(best F1, its threshold) over a grid; ``strict`` uses ``proba > t`` (the paper's weight
    step), otherwise ``proba >= t`` (its threshold step). Ties keep the first threshold."""
    from ..metrics import decision_rows

    y = np.asarray(y, int)
    p = np.asarray(proba, float)
    t = np.asarray(thresholds, float)
    D = (p[None, :] > t[:, None]) if strict else (p[None, :] >= t[:, None])
    f1 = decision_rows("f1_anomaly", np.broadcast_to(y.astype(bool), D.shape), D)  # F1 of every threshold at once
    i = int(np.argmax(f1))  # the first of equal maxima
    return float(f1[i]), float(t[i])


def ensemble_weights(probas: dict[str, np.ndarray], y) -> dict[str, float]:
    """The paper's F1 weights: each model's best F1 over thresholds 0.2..0.79 (step 0.01,
    ``proba > t``), normalised to sum 1."""
    f1 = {name: best_f1(y, p)[0] for name, p in probas.items()}
    total = sum(f1.values())
    if total <= 0:
        return {name: 1.0 / len(f1) for name in f1}
    return {name: v / total for name, v in f1.items()}


def combine(probas: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    return sum(weights[name] * np.asarray(probas[name], float) for name in weights)


def search_threshold(y, proba) -> float:
    """The paper's threshold: F1-maximising over 0.2..0.795 in steps of 0.005 (``proba >= t``)."""
    return best_f1(y, proba, np.arange(0.2, 0.8, 0.005), strict=False)[1]


def importance_by_family(model, names, kept=None) -> pd.Series:
    """Share of a fitted model's feature importance per family (the part of a column name before
    ``:``; PANNs columns are ``panns:...``). ``kept`` maps back through the variance filter."""
    names = np.asarray(names)
    if kept is not None:
        names = names[kept]
    imp = np.asarray(getattr(model, "feature_importances_", None) if not hasattr(model, "get_feature_importance")
                     else model.get_feature_importance(), dtype=float)
    if imp.shape[0] != names.shape[0]:
        raise ASDStudyError(f"{imp.shape[0]} importances for {names.shape[0]} columns.")
    fam = pd.Series(imp, index=[str(n).split(":", 1)[0] for n in names])
    out = fam.groupby(level=0).sum()
    return out / out.sum() if out.sum() > 0 else out


# ----------------------------------------------------------------------------- the protocols
#
# One "arm" fits the four models on some rows (``fit``), lets the boosters stop early, weights
# the ensemble and searches the thresholds on other rows (``select``), and scores a third set
# (``evaluate``). The paper's protocol uses the same rows for select and evaluate; the honest
# protocols keep them apart.

ENSEMBLE = "Ensemble"


@dataclass
class Arm:
    """What one arm produced.

    Attributes:
        proba: model name (and ``"Ensemble"``) -> anomaly probability of the evaluated rows.
        decision: the same keys -> 0/1 decisions at the thresholds chosen on the select rows.
        weights: the ensemble weights (F1 on the select rows, normalised).
        thresholds: per model the threshold of its best F1 on the select rows
            (``proba > t``); for the ensemble the searched threshold (``proba >= t``).
        fit_seconds: training time of each model.
        pipelines: the fitted :class:`BoostingPipeline` per model.
        n_fit, n_select: rows used to fit and to select.
    """

    proba: dict
    decision: dict
    weights: dict
    thresholds: dict
    fit_seconds: dict
    pipelines: dict
    n_fit: int = 0
    n_select: int = 0
    best_iterations: dict = field(default_factory=dict)


def _best_iteration(model) -> int | None:
    for attr in ("best_iteration_", "best_iteration"):
        v = getattr(model, attr, None)
        if v is not None:
            return int(v)
    get = getattr(model, "get_best_iteration", None)
    return int(get()) if callable(get) and get() is not None else None


def run_arm(X_fit, y_fit, X_select, y_select, X_eval, models=MODEL_NAMES, smote: bool = True,
            seed: int = 42, scale: float = 1.0, n_jobs: int = 1, gpu: bool | None = None) -> Arm:
    """Fit ``models`` on the fit rows, select on the select rows, score the eval rows."""
    import time

    proba_sel, proba, dec, thr, secs, pipes, its = {}, {}, {}, {}, {}, {}, {}
    for name in models:
        t0 = time.perf_counter()
        pipe = BoostingPipeline(make_model(name, seed, scale, n_jobs, gpu), smote=smote, seed=seed)
        pipe.fit(X_fit, y_fit, X_select, y_select)
        secs[name] = time.perf_counter() - t0
        pipes[name] = pipe
        its[name] = _best_iteration(pipe.model)
        proba_sel[name] = pipe.predict_proba(X_select)
        proba[name] = pipe.predict_proba(X_eval)
        thr[name] = best_f1(y_select, proba_sel[name])[1]
        dec[name] = (proba[name] > thr[name]).astype(int)
    weights = ensemble_weights(proba_sel, y_select)
    thr[ENSEMBLE] = search_threshold(y_select, combine(proba_sel, weights))
    proba[ENSEMBLE] = combine(proba, weights)
    dec[ENSEMBLE] = (proba[ENSEMBLE] >= thr[ENSEMBLE]).astype(int)
    return Arm(proba, dec, weights, thr, secs, pipes, len(y_fit), len(y_select), its)


def stratified_split(y, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held) of a stratified split holding out ``fraction`` of the rows
    (sklearn's ``train_test_split``, as the paper)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    keep, held = train_test_split(idx, test_size=fraction, stratify=np.asarray(y, int), random_state=seed)
    return np.sort(keep), np.sort(held)


def paper_protocol(X, y, val_fraction: float = 0.15, seed: int = 42, **kw) -> tuple[Arm, np.ndarray]:
    """The paper as published: a stratified 85/15 split (seed 42); early stopping, ensemble
    weights, thresholds *and* the reported metrics all on the same validation rows.

    Returns (arm, validation indices).
    """
    X, y = np.asarray(X), np.asarray(y, int)
    fit, val = stratified_split(y, val_fraction, seed)
    return run_arm(X[fit], y[fit], X[val], y[val], X[val], seed=seed, **kw), val


@dataclass
class CVResult:
    """Out-of-fold predictions of repeated stratified cross-validation.

    ``proba[name]`` and ``decision[name]`` are (n_repeats, n) arrays: every clip is scored once
    per repeat, by models that never saw it -- neither for fitting, nor early stopping, nor
    ensemble weights, nor thresholds. ``weights``, ``thresholds`` and ``fit_seconds`` are lists
    over the folds.
    """

    proba: dict
    decision: dict
    weights: list
    thresholds: list
    fit_seconds: list
    importances: list = field(default_factory=list)


def cross_validate(X, y, n_splits: int = 5, n_repeats: int = 1, select_fraction: float = 0.15,
                   seed: int = 42, names=None, progress: bool = False, **kw) -> CVResult:
    """The honest protocol: repeated stratified k-fold; inside each training fold a stratified
    ``select_fraction`` is set aside for early stopping, ensemble weights and thresholds, and
    the untouched outer fold is scored.

    Args:
        names: column names; when given, the importance share per feature family of every
            fitted model is kept (``importances``).
        kw: passed to :func:`run_arm` (models, smote, scale, n_jobs, gpu).
    """
    from sklearn.model_selection import RepeatedStratifiedKFold

    X, y = np.asarray(X), np.asarray(y, int)
    if min(np.bincount(y, minlength=2)) < n_splits:
        raise ASDStudyError(f"{n_splits}-fold cross-validation needs at least {n_splits} clips of each class; "
                            f"got {np.bincount(y, minlength=2).tolist()} (normal, anomaly).")
    cv = RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=seed)
    folds = list(cv.split(X, y))
    out = CVResult({}, {}, [], [], [])
    it = folds
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(folds, desc="cross-validation folds")
    for k, (train, test) in enumerate(it):
        r = k // n_splits
        fit_i, sel_i = stratified_split(y[train], select_fraction, seed + k)
        fit, sel = train[fit_i], train[sel_i]
        arm = run_arm(X[fit], y[fit], X[sel], y[sel], X[test], seed=seed, **kw)
        for name in arm.proba:
            out.proba.setdefault(name, np.full((n_repeats, len(y)), np.nan))[r, test] = arm.proba[name]
            out.decision.setdefault(name, np.full((n_repeats, len(y)), -1))[r, test] = arm.decision[name]
        out.weights.append(arm.weights)
        out.thresholds.append(arm.thresholds)
        out.fit_seconds.append(arm.fit_seconds)
        if names is not None:
            out.importances.append({n: importance_by_family(p.model, names, p.kept_) for n, p in arm.pipelines.items()})
    return out


def metrics_table(y, proba: dict, decision: dict, n_boot: int = 1000, seed: int = 0,
                  metrics=("auc", "average_precision", "accuracy", "precision_anomaly", "recall_anomaly",
                           "f1_anomaly", "specificity")) -> pd.DataFrame:
    """One row per model: each metric with a 95 % bootstrap CI (columns ``m``, ``m_low``,
    ``m_high``). ``proba``/``decision`` values are (n,) or (n_repeats, n); repeats are averaged
    (:func:`asdstudy.metrics.bootstrap_repeated`)."""
    from .. import metrics as M

    y = np.asarray(y, int)
    rows = []
    for name in proba:
        P = np.atleast_2d(np.asarray(proba[name], float))
        D = np.atleast_2d(np.asarray(decision[name], float))
        row = {"model": name}
        for m in metrics:
            if m == "average_precision":
                iv = _bootstrap_ap(y, P, n_boot, seed)
            else:
                iv = M.bootstrap_repeated(y, D if m in M.DECISION_METRICS else P, m, n_boot=n_boot, seed=seed)
            row.update({m: iv.value, f"{m}_low": iv.low, f"{m}_high": iv.high})
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def _bootstrap_ap(y, P, n_boot, seed):
    from ..metrics import Interval, _boot_index, average_precision

    idx = _boot_index(y, n_boot, seed)
    full = np.mean([average_precision(y, p) for p in P])
    boot = np.array([np.mean([average_precision(y[i], p[i]) for p in P]) for i in idx])
    return Interval(float(full), float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975)))


# ------------------------------------------------------------------- the paper's final step

#: Paper 000's final step: CatBoost alone on every development clip, applied at 0.35.
FINAL_THRESHOLD = 0.35


@dataclass
class FinalModel:
    """CatBoost retrained on all development clips (SMOTE, no early stopping) and applied to the
    held-out clips, with the paper's test-prediction statistics.

    Attributes:
        proba: anomaly probability of each held-out clip.
        predicted: 0/1 decisions at ``threshold``.
        n_train, n_resampled: development rows before and after SMOTE.
        prior: the development set's anomalous share.
        n_predicted: held-out clips predicted anomalous; ``share`` their share.
        chi2, p_value: chi-square goodness of fit of (predicted anomalous, predicted normal)
            against the counts the development prior expects (1 degree of freedom).
        top: the 20 most important features (name, importance), in the model's own units.
        iterations: boosting rounds trained.
    """

    proba: np.ndarray
    predicted: np.ndarray
    threshold: float
    n_train: int
    n_resampled: int
    prior: float
    n_predicted: int
    share: float
    chi2: float
    p_value: float
    top: pd.DataFrame
    iterations: int
    pipeline: object


def final_catboost(X_dev, y_dev, X_test, names, threshold: float = FINAL_THRESHOLD, seed: int = 42,
                   scale: float = 1.0, n_jobs: int = 1, gpu: bool | None = None, n_top: int = 20) -> FinalModel:
    """The paper's last step: CatBoost alone, trained on all ``X_dev`` rows (SMOTE to balance, no
    early stopping, so no validation rows are needed), applied at ``threshold`` to the held-out
    rows, which have no labels in the paper: what it reports is the share predicted anomalous
    against the development prior and a chi-square test of the two."""
    from scipy.stats import chisquare

    y_dev = np.asarray(y_dev, int)
    pipe = BoostingPipeline(make_model("CatBoost", seed, scale, n_jobs, gpu, early_stopping=False), smote=True, seed=seed)
    pipe.fit(X_dev, y_dev)
    proba = pipe.predict_proba(X_test)
    pred = (proba >= threshold).astype(int)
    n, k = len(pred), int(pred.sum())
    prior = float(y_dev.mean())
    chi2, p_value = chisquare([k, n - k], [n * prior, n * (1 - prior)])
    kept_names = np.asarray(names)[pipe.kept_]
    imp = pipe.model.get_feature_importance()
    order = np.argsort(imp)[::-1][:n_top]
    top = pd.DataFrame({"feature": kept_names[order], "importance": imp[order]})
    return FinalModel(proba, pred, threshold, len(y_dev), pipe.n_resampled_, prior, k, k / n, float(chi2),
                      float(p_value), top, int(pipe.model.tree_count_), pipe)

