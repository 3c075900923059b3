import numpy as np
import pytest

from asdstudy import ASDStudyError
from asdstudy.features import handcrafted as H
from asdstudy.models import boosting as B


def _tone(seconds=1.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(H.SR * seconds)) / H.SR
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.normal(size=t.size)).astype(np.float32)


def test_names_and_counts():
    assert H.N_FEATURES == len(H.NAMES) == 253 == H.CLAIMED and len(set(H.NAMES)) == 253
    assert "spectral:rolloff95_mean" in H.NAMES  # the table's 'Rolloff (85 %, 95 %)'
    counts = {fam: len(n) for fam, n in H.FAMILIES.items()}
    assert counts == {"statistics": 9, "spectral": 24, "mfcc": 120, "temporal": 6, "chroma": 72, "mel": 4,
                      "tonnetz": 12, "poly": 4, "tempogram": 2}
    assert sum(H.CLAIMED_BY_TABLE.values()) == 259 != H.CLAIMED
    assert list(H.family_of(["mfcc:mfcc00_mean", "panns:7"])) == ["mfcc", "panns"]


def test_fast_features_equal_the_papers_code_and_are_deterministic():
    y = _tone(1.5)
    ref = H.reference_features(y)
    fast = H.handcrafted_features(y)
    assert fast.shape == ref.shape == (253,)
    np.testing.assert_allclose(fast, ref, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(fast, H.handcrafted_features(y))
    # the named columns mean what they say
    assert np.isclose(fast[H.NAMES.index("statistics:max")], y.max())
    assert np.isclose(fast[H.NAMES.index("statistics:p75")], np.percentile(y, 75))


def test_bad_audio_is_refused_clearly():
    with pytest.raises(ASDStudyError, match="22050"):
        H.handcrafted_features(_tone(), sr=16000)
    with pytest.raises(ASDStudyError, match="mono"):
        H.handcrafted_features(np.zeros((2, 30000), np.float32))
    with pytest.raises(ASDStudyError, match="too short"):
        H.handcrafted_features(np.zeros(100, np.float32))


# --------------------------------------------------------------------------- the pipeline

def _data(n0=60, n1=20, d=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n0 + n1, d))
    y = np.r_[np.zeros(n0), np.ones(n1)].astype(int)
    X[y == 1, :3] += 2.0
    X[:, -1] = 5.0  # a constant column: removed by the variance filter
    return X, y


def test_smote_sees_training_rows_only():
    X, y = _data()
    # a held-out anomaly far away from everything: SMOTE must not interpolate towards it
    X_val = np.vstack([X[:5], np.full((1, X.shape[1]), 50.0)])
    y_val = np.r_[np.zeros(5), 1].astype(int)
    pipe = B.BoostingPipeline(B.make_model("RandomForest", scale=0.1), smote=True, seed=0)
    pipe.fit(X, y, X_val, y_val)
    Xs, ys = pipe.resampled_
    assert (ys == 0).sum() == (ys == 1).sum() == 60 and pipe.n_resampled_ == 120
    train_scaled = pipe.scaler_.transform(pipe.selector_.transform(B.clean(X)))
    far = pipe.scaler_.transform(pipe.selector_.transform(B.clean(X_val[-1:])))[0]
    # every synthetic row lies inside the box of the training anomalies, far from the held-out one
    lo, hi = train_scaled[y == 1].min(0), train_scaled[y == 1].max(0)
    synth = Xs[len(y):]
    assert np.all(synth >= lo - 1e-9) and np.all(synth <= hi + 1e-9)
    assert np.linalg.norm(synth - far, axis=1).min() > 10
    assert pipe.kept_.sum() == X.shape[1] - 1  # the constant column went


def test_boosters_need_their_early_stopping_rows():
    X, y = _data()
    pipe = B.BoostingPipeline(B.make_model("XGBoost", scale=0.01, gpu=False), smote=False)
    with pytest.raises(ASDStudyError, match="early stopping"):
        pipe.fit(X, y)
    pipe.fit(X, y, X[:30], y[:30])
    p = pipe.predict_proba(X)
    assert p.shape == (80,) and np.all((p >= 0) & (p <= 1))
    with pytest.raises(ASDStudyError, match="unknown model"):
        B.make_model("LightGBM")


def test_ensemble_weights_and_threshold_on_a_hand_made_case():
    y = np.array([0, 0, 0, 1, 1])
    probas = {"a": np.array([0.1, 0.2, 0.3, 0.7, 0.9]),   # separable: best F1 1.0
              "b": np.array([0.1, 0.6, 0.3, 0.7, 0.25])}  # best F1 2/3, at t = 0.2
    f1a, ta = B.best_f1(y, probas["a"])
    f1b, _ = B.best_f1(y, probas["b"])
    assert f1a == 1.0 and np.isclose(ta, 0.3) and np.isclose(f1b, 2 / 3)
    w = B.ensemble_weights(probas, y)
    assert np.isclose(w["a"], 1 / (1 + 2 / 3)) and np.isclose(sum(w.values()), 1.0)
    combined = B.combine(probas, w)
    np.testing.assert_allclose(combined, w["a"] * probas["a"] + w["b"] * probas["b"])
    # threshold: first of 0.2, 0.205, ... reaching the best F1 with proba >= t; np.arange makes
    # the 21st grid value 0.30000000000000016, just above 0.3, as in the paper's own code
    assert np.isclose(B.search_threshold(y, probas["a"]), 0.3)
    assert B.search_threshold(y, probas["a"]) > 0.3


def test_importance_by_family_sums_to_one():
    X, y = _data()
    names = [f"panns:{i}" for i in range(6)] + [f"mfcc:m{i}" for i in range(6)]
    pipe = B.BoostingPipeline(B.make_model("ExtraTrees", scale=0.1), smote=False).fit(X, y)
    imp = B.importance_by_family(pipe.model, names, pipe.kept_)
    assert set(imp.index) == {"panns", "mfcc"} and np.isclose(imp.sum(), 1.0)
    assert imp["panns"] > imp["mfcc"]  # the signal sits in columns 0-2


def test_cross_validation_never_scores_a_clip_its_models_saw(monkeypatch):
    rng = np.random.default_rng(1)
    n = 90
    y = (np.arange(n) % 3 == 0).astype(int)
    X = np.c_[np.arange(n), rng.normal(size=(n, 4)) + y[:, None]]  # column 0 names the clip
    seen = []
    real = B.run_arm

    def spy(X_fit, y_fit, X_select, y_select, X_eval, **kw):
        seen.append((set(X_fit[:, 0]), set(X_select[:, 0]), set(X_eval[:, 0])))
        return real(X_fit, y_fit, X_select, y_select, X_eval, **kw)

    monkeypatch.setattr(B, "run_arm", spy)
    cv = B.cross_validate(X, y, n_splits=3, n_repeats=2, models=("RandomForest", "ExtraTrees"), scale=0.05)
    assert len(seen) == 6
    for fit, sel, ev in seen:
        assert not (fit & sel) and not (fit & ev) and not (sel & ev)
        assert len(fit | sel | ev) == n
    for r in range(2):  # the eval folds of one repeat partition the clips
        evals = [s[2] for s in seen[3 * r:3 * r + 3]]
        assert sum(len(e) for e in evals) == n and set().union(*evals) == set(range(n))
    for name in ("RandomForest", "ExtraTrees", "Ensemble"):
        assert cv.proba[name].shape == (2, n) and np.isfinite(cv.proba[name]).all()
        assert set(np.unique(cv.decision[name])) <= {0, 1}
    with pytest.raises(ASDStudyError, match="at least 5 clips of each class"):
        B.cross_validate(X[:12], np.r_[np.zeros(9), np.ones(3)].astype(int), n_splits=5)


def test_an_arm_decides_at_the_thresholds_it_chose():
    X, y = _data()
    order = np.random.default_rng(0).permutation(len(y))
    X, y = X[order], y[order]
    arm = B.run_arm(X[:60], y[:60], X[60:], y[60:], X, models=("RandomForest", "ExtraTrees"), scale=0.05, seed=3)
    assert np.isclose(sum(arm.weights.values()), 1.0) and 0.2 <= arm.thresholds["Ensemble"] < 0.8
    np.testing.assert_array_equal(arm.decision["Ensemble"], arm.proba["Ensemble"] >= arm.thresholds["Ensemble"])
    np.testing.assert_array_equal(arm.decision["ExtraTrees"], arm.proba["ExtraTrees"] > arm.thresholds["ExtraTrees"])
    np.testing.assert_allclose(arm.proba["Ensemble"], B.combine({k: arm.proba[k] for k in arm.weights}, arm.weights))
    assert arm.n_fit == 60 and arm.n_select == len(y) - 60 and set(arm.fit_seconds) == {"RandomForest", "ExtraTrees"}
    table = B.metrics_table(y, arm.proba, arm.decision, n_boot=50)
    assert list(table.index) == ["RandomForest", "ExtraTrees", "Ensemble"]
    assert (table["auc_low"] <= table["auc"]).all() and (table["auc"] <= table["auc_high"]).all()


def _dcase_like_table(n_norm_test=30, n_anom=40, n_norm_train=100):
    import pandas as pd

    rows = ([("test", 0)] * n_norm_test + [("test", 1)] * n_anom + [("train", 0)] * n_norm_train)
    return pd.DataFrame({"path": [f"c{i}.wav" for i in range(len(rows))], "machine": "pump",
                         "split": [r[0] for r in rows], "label": pd.array([r[1] for r in rows], dtype="Int64")})


def test_labelled_set_has_the_papers_sizes_and_balance():
    from asdstudy.datasets import DatasetError
    from asdstudy.datasets.labelled import labelled_set

    t = labelled_set(_dcase_like_table(), "pump", n_dev=62, n_test=16, anomaly_fraction=0.265, seed=0)
    assert len(t) == 78 and t.path.is_unique
    assert (t.split == "train").sum() == 62 and (t.split == "test").sum() == 16
    assert t.label.sum() == round(78 * 0.265)
    # the stratified split keeps the balance on both sides
    assert abs(t[t.split == "test"].label.mean() - 0.265) < 0.07
    # all 30 test-split normals are used before any training normal
    src = _dcase_like_table().set_index("path")
    chosen_normals = t[t.label == 0].path
    assert (src.loc[chosen_normals, "split"] == "test").sum() == 30
    # the mix is reported: where every clip came from
    assert (t.set_index("path").source_split == src.loc[t.path, "split"]).all()
    assert (t[t.label == 1].source_split == "test").all()
    again = labelled_set(_dcase_like_table(), "pump", n_dev=62, n_test=16, seed=0)
    assert t.equals(again)
    with pytest.raises(DatasetError, match="need 53 anomalous"):
        labelled_set(_dcase_like_table(n_anom=10), "pump", n_dev=160, n_test=40)
    with pytest.raises(DatasetError, match="no labelled clips of machine type 'fan'"):
        labelled_set(_dcase_like_table(), "fan")


def test_final_catboost_counts_and_statistics_on_a_labelled_toy_set():
    """Paper 000's final step: CatBoost alone on all development rows, SMOTE to balance (457
    normals -> 914 rows at the paper's sizes; here 46 -> 92), no early stopping, threshold 0.35,
    the share predicted anomalous and its chi-square test against the development prior."""
    from scipy.stats import chisquare

    from asdstudy.models import boosting as B

    rng = np.random.default_rng(0)
    y_dev = np.r_[np.zeros(46, int), np.ones(16, int)]
    X_dev = rng.normal(size=(62, 6)) + y_dev[:, None] * 1.5
    y_test = np.r_[np.zeros(12, int), np.ones(4, int)]
    X_test = rng.normal(size=(16, 6)) + y_test[:, None] * 1.5
    fin = B.final_catboost(X_dev, y_dev, X_test, [f"f{i}" for i in range(6)], scale=0.02, seed=0)
    assert fin.n_train == 62 and fin.n_resampled == 92 and fin.threshold == 0.35
    assert fin.n_predicted == int((fin.proba >= 0.35).sum()) and fin.share == fin.n_predicted / 16
    assert fin.prior == pytest.approx(16 / 62)
    assert fin.p_value == pytest.approx(chisquare([fin.n_predicted, 16 - fin.n_predicted],
                                                  [16 * 16 / 62, 16 * 46 / 62]).pvalue)
    assert fin.iterations == 40  # 2000 x 0.02 rounds, none stopped early
    assert len(fin.top) == 6 and fin.top.importance.is_monotonic_decreasing
    assert fin.pipeline.model.get_params().get("early_stopping_rounds") is None


def test_catboost_keeps_the_papers_cpu_borders_on_a_gpu():
    from asdstudy.models.boosting import make_model

    for gpu in (False, True):
        assert make_model("CatBoost", gpu=gpu).get_params()["border_count"] == 254


def test_best_f1_equals_the_per_threshold_loop_of_sklearn():
    """best_f1 scores every threshold at once; it must pick what the paper's loop over
    sklearn's f1_score picks (the first of equal maxima), strict and not."""
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(5)
    grid = np.arange(0.2, 0.8, 0.01)
    for _ in range(40):
        y = rng.integers(0, 2, 60)
        p = np.round(rng.random(60), 2)
        for strict in (True, False):
            f = [f1_score(y, (p > t) if strict else (p >= t), zero_division=0) for t in grid]
            i = int(np.argmax(f))
            assert B.best_f1(y, p, grid, strict) == (pytest.approx(f[i]), pytest.approx(float(grid[i])))


def test_a_forest_scores_the_same_bits_on_any_number_of_threads():
    """A forest on two threads adds its trees' probabilities in the order the threads finish;
    the pipeline scores with one thread, in tree order: bit for bit the sum over the trees in
    order, every time, and the model keeps its two threads for fitting."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 6))
    y = (X[:, 0] + 0.5 * rng.normal(size=120) > 0.6).astype(int)
    pipe = B.BoostingPipeline(B.make_model("RandomForest", seed=1, scale=0.1, n_jobs=2), smote=False).fit(X, y)
    Xt = pipe._transform(X)
    in_order = np.zeros(len(X))
    for tree in pipe.model.estimators_:
        in_order += tree.predict_proba(Xt)[:, 1]
    in_order /= len(pipe.model.estimators_)
    for _ in range(5):
        np.testing.assert_array_equal(pipe.predict_proba(X), in_order)
    assert pipe.model.n_jobs == 2
