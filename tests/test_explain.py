import numpy as np
import pandas as pd
import pytest

from asdstudy import ASDStudyError
from asdstudy import metrics as M
from asdstudy.explain import filters as FL
from asdstudy.explain import slime as S
from asdstudy.features import LogMelParams
from asdstudy.models.knn import knn_scores


class OneBandDetector:
    """Scores a clip by the mean level of bins 80-95 only (band 5 of 8 over 128 bins)."""

    input_params = LogMelParams(n_mels=128)

    def score_spectrograms(self, specs):
        return np.array([np.asarray(s)[:, 80:96].mean() for s in specs])


def test_bands_masks_and_occlusion():
    e = S.band_edges(128, 8)
    assert e.tolist() == [0, 16, 32, 48, 64, 80, 96, 112, 128]
    assert S.band_edges(10, 3).tolist() == [0, 3, 7, 10]
    with pytest.raises(ASDStudyError, match="n_bands"):
        S.band_edges(4, 8)
    z = S.random_masks(500, 8, seed=1)
    assert z.shape == (500, 8) and z[0].all() and set(np.unique(z)) == {0, 1}
    assert abs(z[1:].mean() - 0.5) < 0.05
    np.testing.assert_array_equal(z, S.random_masks(500, 8, seed=1))
    spec = np.arange(20 * 128, dtype=float).reshape(20, 128)
    out = S.occlude(spec, np.array([1, 0, 1, 1, 1, 1, 1, 0]), e)
    assert (out[:, 16:32] == spec.min()).all() and (out[:, 112:] == spec.min()).all()
    np.testing.assert_array_equal(out[:, :16], spec[:, :16])
    np.testing.assert_array_equal(out[:, 32:112], spec[:, 32:112])
    bands = S.bands_hz(LogMelParams(n_mels=128), 8)
    assert bands.lo_hz.iloc[0] == 0 and np.isclose(bands.hi_hz.iloc[-1], 8000)
    assert (bands.hi_hz.to_numpy()[:-1] == bands.lo_hz.to_numpy()[1:]).all()
    width = (bands.hi_hz - bands.lo_hz).to_numpy()
    assert width[-1] > 5 * width[0]  # mel bands widen with frequency


def test_eer_labelling():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9])
    rate, thr = M.eer(y, s)
    labels = S.eer_labels(s, thr)
    fpr = labels[y == 0].mean()
    fnr = 1 - labels[y == 1].mean()
    assert np.isclose(rate, 0.25) and fpr == fnr == 0.25
    assert S.eer_labels([1.0, 2.0, 3.0], 2.0).tolist() == [0, 1, 1]


def test_slime_finds_the_band_a_one_band_detector_uses():
    rng = np.random.default_rng(0)
    specs = [rng.normal(size=(30, 128)) + (2.0 if i % 2 else 0.0) * (np.arange(128) >= 80) * (np.arange(128) < 96)
             for i in range(6)]
    det = OneBandDetector()
    y = np.arange(6) % 2
    _, thr = M.eer(y, det.score_spectrograms(specs))
    ex = S.explain(det, specs, thr, n_bands=8, n_masks=200, seed=0)
    assert ex.importance.shape == (6, 8) and len(ex.bands) == 8
    anomalous = ex.importance[y == 1]
    assert (anomalous.argmax(axis=1) == 5).all()
    assert (np.abs(np.delete(anomalous, 5, axis=1)) < 0.1).all() and (anomalous[:, 5] > 0.5).all()
    # importance towards the correct decision is positive on the used band for both classes
    # wherever the occlusion changed the label
    correct = S.towards_correct(ex.importance, y)
    assert (correct[y == 1, 5] > 0).all()
    acc = S.explanation_accuracy(anomalous, ex.bands, [ex.bands.lo_hz[5] + 10] * 3, [ex.bands.hi_hz[5] - 10] * 3)
    assert acc.hit.all() and np.allclose(acc.chance, 1 / 8)
    heat = S.median_heatmap(correct, pd.DataFrame({"condition": np.where(y == 1, "anomaly", "inlier")}))
    assert heat.shape == (2, 8) and list(heat.index) == ["anomaly", "inlier"]
    # raised: the share of occluded versions scoring above the clip. Occluding the used band (to
    # the clip's minimum) lowers this detector's score and no other band changes it
    assert ex.raised.shape == (6,) and (ex.raised == 0).all()


class CountingDetector(OneBandDetector):
    """OneBandDetector that counts the spectrograms it scores."""

    def __init__(self):
        self.seen = 0

    def score_spectrograms(self, specs):
        self.seen += len(specs)
        return super().score_spectrograms(specs)


def _explain_every_draw(det, specs, thr, n_masks, seed, fill="silence", reference=None):
    """SLIME as it was before distinct patterns: every one of the n_masks draws scored."""
    z = S.random_masks(n_masks, 8, seed)
    e = S.band_edges(128, 8)
    out = []
    for spec in specs:
        sc = det.score_spectrograms([S.occlude(spec, m, e, reference if fill == "normal" else None) for m in z])
        lab = S.eer_labels(sc, thr)
        out.append((S.surrogate(z, lab)[0] if np.ptp(lab) else np.zeros(8), np.mean(lab != lab[0]),
                    np.mean(sc[1:] > sc[0])))
    return out


def test_each_distinct_pattern_is_scored_once_and_the_explanation_is_unchanged():
    z = np.array([[1, 1], [0, 1], [1, 1], [0, 1], [1, 0]])
    distinct, index = S.distinct_masks(z)
    assert len(distinct) == 3 and index.shape == (5,)
    np.testing.assert_array_equal(distinct[index], z)
    # the paper's 1,000 draws over 8 bands hold at most 2 ** 8 patterns
    assert len(S.distinct_masks(S.random_masks(1000, 8, seed=0))[0]) <= 256
    rng = np.random.default_rng(3)
    specs = [rng.normal(size=(20, 128)) + (1.5 if i % 2 else 0.0) * (np.arange(128) >= 80) * (np.arange(128) < 96)
             for i in range(4)]
    ref = rng.normal(size=128)
    for n_masks, fill in ((300, "silence"), (64, "normal")):
        det = CountingDetector()
        ex = S.explain(det, specs, 0.3, n_bands=8, n_masks=n_masks, seed=0, fill=fill, reference=ref)
        n_distinct = len(S.distinct_masks(S.random_masks(n_masks, 8, seed=0))[0])
        assert ex.scored == n_distinct < n_masks and det.seen == len(specs) * n_distinct
        for i, (imp, flipped, raised) in enumerate(_explain_every_draw(OneBandDetector(), specs, 0.3, n_masks, 0,
                                                                       fill, ref)):
            np.testing.assert_allclose(ex.importance[i], imp, atol=1e-12)
            assert ex.flipped[i] == flipped and ex.raised[i] == raised


class SilenceIsAnomalous(OneBandDetector):
    """Scores the distance from a learned level: occluding any band (to the clip's minimum) moves
    the clip away from it, so every occlusion raises the score."""

    def score_spectrograms(self, specs):
        return np.array([float(np.abs(s).mean()) for s in specs])


def test_raised_tells_a_detector_that_reads_occlusion_as_a_fault():
    rng = np.random.default_rng(1)
    specs = [rng.normal(size=(30, 128)) * 0.1 for _ in range(3)]
    ex = S.explain(SilenceIsAnomalous(), specs, threshold=-1.0, n_bands=8, n_masks=50, seed=0)
    assert (ex.flipped == 0).all()  # every version is "anomaly" (score above -1): no flip
    assert (ex.raised == 1).all()   # and every occluded version scores higher than the clip


def test_occlusion_fills_silence_or_the_normal_level():
    e = S.band_edges(128, 8)
    spec = np.arange(20 * 128, dtype=float).reshape(20, 128)
    level = np.linspace(-5.0, 5.0, 128)
    out = S.occlude(spec, np.array([1, 0, 1, 1, 1, 1, 1, 1]), e, level)
    np.testing.assert_array_equal(out[:, 16:32], np.broadcast_to(level[16:32], (20, 16)))
    np.testing.assert_array_equal(out[:, 32:], spec[:, 32:])
    with pytest.raises(ASDStudyError, match="one per frequency bin"):
        S.occlude(spec, np.zeros(8), e, level[:10])
    # the normal level: the mean per bin over every frame of every training spectrogram
    train = [np.full((10, 128), 1.0), np.full((30, 128), 3.0)]
    np.testing.assert_allclose(S.normal_level(train), np.full(128, 2.5))
    with pytest.raises(ASDStudyError, match="training normals"):
        S.normal_level([])
    with pytest.raises(ASDStudyError, match="needs reference"):
        S.explain(OneBandDetector(), [spec], 0.0, fill="normal")
    with pytest.raises(ASDStudyError, match="fill must be one of"):
        S.explain(OneBandDetector(), [spec], 0.0, fill="zeros")


class DistanceFromNormal(OneBandDetector):
    """A detector of distance from the learned level 0 in band 5 only (bins 80-95): a fault there
    raises the score, and so does silence put there."""

    def score_spectrograms(self, specs):
        return np.array([float(np.abs(np.asarray(s)[:, 80:96]).mean()) for s in specs])


def test_the_fill_decides_whether_occlusion_can_clear_a_fault():
    """Silence (the clip's minimum) in the fault's band keeps an anomaly anomalous for a detector of
    distance from normal: no flip, no explanation. The training normals' level there makes it
    normal: the decision flips on that band only and the explanation points at it."""
    rng = np.random.default_rng(2)
    normals = [rng.normal(size=(30, 128)) * 0.1 for _ in range(8)]
    faults = []
    for _ in range(4):
        s = rng.normal(size=(30, 128)) * 0.1
        s[:, 80:96] += 2.0
        s[:, :16] -= 4.0  # a quiet low band: the clip's minimum is far below the normal level
        faults.append(s)
    det = DistanceFromNormal()
    y = np.r_[np.zeros(8), np.ones(4)].astype(int)
    _, thr = M.eer(y, det.score_spectrograms(normals + faults))
    silence = S.explain(det, faults, thr, n_bands=8, n_masks=100, seed=0, fill="silence")
    assert silence.fill == "silence" and (silence.flipped == 0).all() and (silence.importance == 0).all()
    normal = S.explain(det, faults, thr, n_bands=8, n_masks=100, seed=0, fill="normal",
                       reference=S.normal_level(normals))
    assert normal.fill == "normal" and (normal.flipped > 0).all() and (normal.importance.argmax(axis=1) == 5).all()
    acc = S.explanation_accuracy(normal.importance, normal.bands, [normal.bands.lo_hz[5] + 10] * 4,
                                 [normal.bands.hi_hz[5] - 10] * 4)
    assert acc.hit.all()


def _tone(f, sr=16000, seconds=1.0):
    t = np.arange(int(sr * seconds)) / sr
    return np.sin(2 * np.pi * f * t)


def _gain_db(y_in, y_out):
    core = slice(2000, -2000)  # away from the edges
    return 20 * np.log10(np.std(y_out[core]) / np.std(y_in[core]))


def test_filters_attenuate_what_they_should():
    sr = 16000
    for f in (200, 500, 1000, 2000, 4000, 6000):
        x = _tone(f, sr)
        lp = _gain_db(x, FL.filter_audio(x, sr, "lowpass", 1600))
        hp = _gain_db(x, FL.filter_audio(x, sr, "highpass", 1600))
        if f <= 1000:
            assert lp > -1 and hp < -30, (f, lp, hp)
        elif f >= 2000:
            assert hp > -1 and lp < -30, (f, lp, hp)
    x = _tone(3000, sr)
    np.testing.assert_allclose(FL.filter_audio(x, sr, "lowpass", 8000), x.astype(np.float32))
    assert not FL.filter_audio(x, sr, "highpass", 8000).any()
    assert FL.PAPER_CUTOFFS[0] == 400 and FL.PAPER_CUTOFFS[-1] == 8000 and len(FL.PAPER_CUTOFFS) == 20
    with pytest.raises(ASDStudyError, match="filter kind"):
        FL.filter_audio(x, sr, "bandpass", 1000)


def test_filtered_table_writes_once(tmp_path):
    import soundfile as sf

    wav = tmp_path / "a.wav"
    sf.write(wav, (0.4 * _tone(300) + 0.4 * _tone(5000)).astype(np.float32), 16000)
    t = pd.DataFrame({"path": [str(wav)], "label": [0]})
    ft = FL.filtered_table(t, "highpass", 2000, root=tmp_path / "f")
    y, sr = sf.read(ft.path[0])
    assert sr == 16000 and abs(_gain_db(0.4 * _tone(5000), y)) < 1  # the 300 Hz part is gone
    mtime = (tmp_path / "f").stat().st_mtime_ns
    FL.filtered_table(t, "highpass", 2000, root=tmp_path / "f")
    assert (tmp_path / "f").stat().st_mtime_ns == mtime


def test_knn_scores_on_a_toy_case():
    train = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    test = np.array([[0.0, 0.1], [1.0, 0.0]])
    np.testing.assert_allclose(knn_scores(train, test, k=1, metric="euclidean"), [0.1, 0.0])
    np.testing.assert_allclose(knn_scores(train, test, k=2, metric="euclidean"),
                               [(0.1 + np.sqrt(1.01)) / 2, (0 + 1.0) / 2])
    cos = knn_scores(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[2.0, 0.0], [1.0, 1.0]]), k=1)
    np.testing.assert_allclose(cos, [0.0, 1 - np.sqrt(0.5)], atol=1e-12)
    with pytest.raises(ASDStudyError, match="k must be"):
        knn_scores(train, test, k=4)
    with pytest.raises(ASDStudyError, match="metric"):
        knn_scores(train, test, metric="manhattan")


def test_the_ast_filters_inside_its_feature_pipeline(tmp_path):
    """Paper 004's sweep filters the audio before any feature; the AST does it in its feature
    pipeline (keyed in the cache), so no filtered copies of the clips are written."""
    import soundfile as sf

    from asdstudy.features.embeddings import ASTInputParams, clip_ast_spectrograms

    sr = 16000
    t = np.arange(sr) / sr
    y = (0.3 * np.sin(2 * np.pi * 500 * t) + 0.3 * np.sin(2 * np.pi * 6000 * t)).astype(np.float32)
    path = tmp_path / "tone.wav"
    sf.write(path, y, sr)
    plain, = clip_ast_spectrograms([path], ASTInputParams(kind="stft"))
    hp, = clip_ast_spectrograms([path], ASTInputParams(kind="stft", filter_kind="highpass", cutoff=3000))
    lp, = clip_ast_spectrograms([path], ASTInputParams(kind="stft", filter_kind="lowpass", cutoff=3000))
    low, high = round(500 / 8000 * 127), round(6000 / 8000 * 127)  # the tones' bins on the linear axis
    power = {name: s.mean(axis=0) for name, s in (("plain", plain), ("hp", hp), ("lp", lp))}
    assert power["hp"][low] < power["plain"][low] - 5 and abs(power["hp"][high] - power["plain"][high]) < 0.5
    assert power["lp"][high] < power["plain"][high] - 5 and abs(power["lp"][low] - power["plain"][low]) < 0.5
    with pytest.raises(ASDStudyError, match="Nyquist"):
        ASTInputParams(filter_kind="highpass", cutoff=8000)
    with pytest.raises(ASDStudyError, match="filter_kind"):
        ASTInputParams(filter_kind="bandpass", cutoff=1000)


def test_sweep_passes_the_unfiltered_table_unless_copies_are_asked(tmp_path, monkeypatch):
    import pandas as pd

    seen = []

    def run(t, kind, cutoff):
        seen.append((kind, cutoff, list(t["path"])))
        return pd.DataFrame({"auc": [0.5]})

    monkeypatch.setattr(FL, "filtered_table", lambda *a, **k: (_ for _ in ()).throw(AssertionError("copies written")))
    table = pd.DataFrame({"path": ["a.wav", "b.wav"]})
    rows = FL.sweep(run, table, cutoffs=[1000, 2000], progress=False)
    assert len(rows) == 5 and all(paths == ["a.wav", "b.wav"] for _, _, paths in seen)
    assert [(k, c) for k, c, _ in seen] == [("none", 0), ("lowpass", 1000), ("lowpass", 2000), ("highpass", 1000),
                                              ("highpass", 2000)]


def test_a_sweep_runs_its_settings_in_workers_on_one_thread_each_in_order(tmp_path):
    import os

    import pandas as pd

    def run(t, kind, cutoff):
        import torch

        return {"rows": pd.DataFrame({"auc": [cutoff / 1e4]}), "pid": os.getpid(), "threads": torch.get_num_threads()}

    keep = {}
    rows = FL.sweep(run, pd.DataFrame({"path": ["a.wav"]}), cutoffs=[1000, 2000], n_jobs=2, progress=False,
                    store=tmp_path / "s", keep=keep)
    assert list(rows.auc) == [0.0, 0.1, 0.2, 0.1, 0.2] and list(rows.kind) == ["none"] + ["lowpass"] * 2 + ["highpass"] * 2
    settings = [k for k in keep if k != "resumed"]
    assert all(keep[k]["pid"] != os.getpid() and keep[k]["threads"] == 1 for k in settings)
    assert len(list((tmp_path / "s").glob("*.pt"))) == 5  # every setting stored by the worker that ran it
    again = {}
    FL.sweep(run, pd.DataFrame({"path": ["a.wav"]}), cutoffs=[1000, 2000], n_jobs=2, progress=False,
             store=tmp_path / "s", keep=again)
    assert again["resumed"] == settings


def test_a_stored_sweep_resumes_where_it_was_interrupted(tmp_path):
    import pandas as pd

    calls = []

    def run(t, kind, cutoff):
        calls.append((kind, cutoff))
        if len(calls) == 3 and fail[0]:
            raise KeyboardInterrupt  # the run is stopped during its third setting
        return {"rows": pd.DataFrame({"auc": [cutoff / 1e4]}), "model": f"model-{kind}-{cutoff}"}

    table = pd.DataFrame({"path": ["a.wav"]})
    fail = [True]
    with pytest.raises(KeyboardInterrupt):
        FL.sweep(run, table, cutoffs=[1000, 2000], progress=False, store=tmp_path / "s")
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["lowpass-1000.pt", "none-0.pt"]  # nothing half-written
    fail[0], calls[:] = False, []
    keep = {}
    rows = FL.sweep(run, table, cutoffs=[1000, 2000], progress=False, store=tmp_path / "s", keep=keep)
    assert calls == [("lowpass", 2000), ("highpass", 1000), ("highpass", 2000)]  # only what was not finished
    assert keep["resumed"] == [("none", 0), ("lowpass", 1000)]
    assert keep[("lowpass", 1000)]["model"] == "model-lowpass-1000"  # what the caller keeps comes back too
    assert list(rows.auc) == [0.0, 0.1, 0.2, 0.1, 0.2] and list(rows.kind) == ["none"] + ["lowpass"] * 2 + ["highpass"] * 2
    # a stored setting that cannot be read is trained again, with a warning
    (tmp_path / "s" / "highpass-2000.pt").write_bytes(b"not a torch file")
    calls[:] = []
    with pytest.warns(UserWarning, match="cannot be read"):
        FL.sweep(run, table, cutoffs=[1000, 2000], progress=False, store=tmp_path / "s")
    assert calls == [("highpass", 2000)]
