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
    assert H.N_FEATURES == len(H.NAMES) == 251 and len(set(H.NAMES)) == 251
    counts = {fam: len(n) for fam, n in H.FAMILIES.items()}
    assert counts == {"statistics": 9, "spectral": 22, "mfcc": 120, "temporal": 6, "chroma": 72, "mel": 4,
                      "tonnetz": 12, "poly": 4, "tempogram": 2}
    assert sum(H.CLAIMED_BY_TABLE.values()) == 259 != H.CLAIMED
    assert list(H.family_of(["mfcc:mfcc00_mean", "panns:7"])) == ["mfcc", "panns"]


def test_fast_features_equal_the_papers_code_and_are_deterministic():
    y = _tone(1.5)
    ref = H.reference_features(y)
    fast = H.handcrafted_features(y)
    assert fast.shape == ref.shape == (251,)
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
