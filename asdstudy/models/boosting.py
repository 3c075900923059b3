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

import numpy as np
import pandas as pd

from .. import ASDStudyError

MODEL_NAMES = ("CatBoost", "XGBoost", "RandomForest", "ExtraTrees")

PAPER_PARAMS = {
    "CatBoost": dict(iterations=2000, learning_rate=0.05, depth=10, l2_leaf_reg=5, early_stopping_rounds=100,
                     class_weights=[1.0, 2.0], eval_metric="AUC"),
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
        return self.model.predict_proba(self._transform(X))[:, 1]


def best_f1(y, proba, thresholds=np.arange(0.2, 0.8, 0.01), strict: bool = True) -> tuple[float, float]:
    """(best F1, its threshold) over a grid; ``strict`` uses ``proba > t`` (the paper's weight
    step), otherwise ``proba >= t`` (its threshold step). Ties keep the first threshold."""
    from sklearn.metrics import f1_score

    y = np.asarray(y, int)
    p = np.asarray(proba, float)
    best, best_t = -1.0, float(thresholds[0])
    for t in thresholds:
        f = f1_score(y, (p > t) if strict else (p >= t), zero_division=0)
        if f > best:
            best, best_t = f, float(t)
    return float(best), best_t


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
