import numpy as np
import pytest

from asdstudy import ASDStudyError
from asdstudy.features import (LogMelParams, clip_logmels, logmel, logmel_file, logmel_torch,
                               sequence_windows, stack_frames)
from asdstudy.features.cache import FeatureCache
from asdstudy.features.logmel import TORCH_TOLERANCE_DB


@pytest.fixture(scope="module")
def clip():
    rng = np.random.default_rng(0)
    t = np.arange(160000) / 16000
    return (0.1 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def test_dcase_baseline_formula(clip):
    import librosa

    p = LogMelParams(n_mels=64)
    out = logmel(clip, p)
    assert out.shape == (313, 64)
    mel = librosa.feature.melspectrogram(y=clip, sr=16000, n_fft=1024, hop_length=512, n_mels=64, power=2.0)
    expected = (10.0 * np.log10(mel + np.finfo(float).eps)).T
    np.testing.assert_allclose(out, expected, atol=1e-4)


def test_torch_matches_librosa_within_tolerance(clip):
    for p in (LogMelParams(n_mels=128), LogMelParams(n_mels=64), LogMelParams(clip_db=-80.0)):
        ref = logmel(clip, p)
        out = logmel_torch(np.stack([clip, clip[::-1].copy()]), p).numpy()
        assert out.shape == (2, 313, p.n_mels)
        assert np.max(np.abs(out[0] - ref)) < TORCH_TOLERANCE_DB
        assert np.max(np.abs(out[1] - logmel(clip[::-1].copy(), p))) < TORCH_TOLERANCE_DB


def test_clip_db_floor(clip):
    out = logmel(clip, LogMelParams(clip_db=-80.0))
    assert out.max() == pytest.approx(0.0, abs=1e-5) and out.min() >= -80.0


def test_stack_frames_layout():
    spec = np.arange(7 * 3).reshape(7, 3).astype(float)
    v = stack_frames(spec, 5)
    assert v.shape == (3, 15)
    np.testing.assert_array_equal(v[1], spec[1:6].ravel())
    assert stack_frames(np.zeros((313, 128)), 5).shape == (309, 640)
    with pytest.raises(ASDStudyError, match="shorter than the 5-frame"):
        stack_frames(np.zeros((4, 3)), 5)


def test_sequence_windows_counts_and_targets():
    spec = np.random.default_rng(1).standard_normal((313, 128))
    x, y = sequence_windows(spec, 10)
    assert x.shape == (303, 10, 128) and y.shape == (303, 128)
    np.testing.assert_array_equal(x[0], spec[:10])
    np.testing.assert_array_equal(y[0], spec[10])
    np.testing.assert_array_equal(x[-1], spec[302:312])
    np.testing.assert_array_equal(y[-1], spec[312])
    assert not x.flags.owndata  # a view, not a copy


def test_mono_required():
    with pytest.raises(ASDStudyError, match="mono"):
        logmel(np.zeros((2, 16000)))


def test_cache_hit_and_key_changes(tiny_synth, tmp_path):
    paths = sorted(str(p) for p in (tiny_synth / "dcase2020/dev_data/valve/train").glob("*.wav"))[:3]
    p64 = LogMelParams(n_mels=64)
    a = clip_logmels(paths, p64, progress=False)
    cache = FeatureCache("logmel", dict(p64.key(), channel=0))
    assert all(cache.path_for(p).exists() for p in paths)
    np.testing.assert_array_equal(cache.get(paths[0]), a[0])
    np.testing.assert_array_equal(a[1], logmel_file(paths[1], p64))
    b = clip_logmels(paths, LogMelParams(n_mels=32), progress=False, n_jobs=2)
    assert b[0].shape == (313, 32)
    # a damaged entry is recomputed, not trusted
    cache.path_for(paths[0]).write_bytes(b"garbage")
    c = clip_logmels(paths, p64, progress=False)
    np.testing.assert_array_equal(c[0], a[0])


def test_real_clips_features(shared_data):
    fan = sorted((shared_data / "dcase2020_task2_sample/dev_data/fan/test").glob("*.wav"))[0]
    assert logmel_file(str(fan), LogMelParams(n_mels=64)).shape == (313, 64)
    toycar = sorted((shared_data / "dcase2020_task2_sample/dev_data/ToyCar/test").glob("*.wav"))[0]
    assert logmel_file(str(toycar)).shape == (344, 128)  # 11 s
    mimii = shared_data / "mimii_sample/0_dB_slider/slider/id_02/abnormal/00000000.wav"
    assert logmel_file(str(mimii), channel=0).shape == (313, 128)
