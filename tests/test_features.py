import os
import shutil
from pathlib import Path

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


def _copy_clips(tiny_synth, tmp_path, n=2):
    src = sorted((tiny_synth / "dcase2020/dev_data/valve/train").glob("*.wav"))[:n]
    out = []
    for s in src:
        d = tmp_path / s.name
        shutil.copy2(s, d)
        out.append(str(d))
    return out


def test_a_clip_replaced_with_the_same_size_and_mtime_is_recomputed(tiny_synth, tmp_path):
    """`cp -p` / `rsync -a` of other bytes over a clip: same size, same mtime, new content."""
    a, b = _copy_clips(tiny_synth, tmp_path)
    p = LogMelParams(n_mels=32)
    first = clip_logmels([a], p, progress=False)[0]
    st = os.stat(a)
    assert os.path.getsize(b) == st.st_size
    with open(a, "r+b") as fh:  # overwrite in place (same inode), then restore the old mtime
        fh.write(Path(b).read_bytes())
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(a).st_mtime_ns == st.st_mtime_ns and os.stat(a).st_size == st.st_size
    again = clip_logmels([a], p, progress=False)[0]
    np.testing.assert_array_equal(again, logmel_file(b, p))
    assert np.abs(again - first).max() > 1.0  # the other clip's features, not the stale ones


def test_a_change_to_the_feature_code_changes_what_the_cache_returns(tiny_synth, tmp_path, monkeypatch):
    from asdstudy.features import cache as C

    (a,) = _copy_clips(tiny_synth, tmp_path, 1)
    p = LogMelParams(n_mels=32)
    clip_logmels([a], p, progress=False)
    old_dir = FeatureCache("logmel", dict(p.key(), channel=0)).path_for(a)
    # the same entry, served by "fixed" feature code: a different fingerprint, a different key
    monkeypatch.setattr(C, "code_fingerprint", lambda: "after-a-fix")
    new = FeatureCache("logmel", dict(p.key(), channel=0))
    assert new.path_for(a) != old_dir and new.get(a) is None
    calls = []
    monkeypatch.setattr(C, "_compute_one", lambda fn, path, cache: calls.append(path) or np.ones((3, 3), "float32"))
    out = C.extract([a], lambda x: None, "logmel", dict(p.key(), channel=0), progress=False)
    assert calls == [a] and out[0].shape == (3, 3)


def test_the_code_fingerprint_covers_audio_and_the_feature_modules():
    from asdstudy.features import cache as C

    C.code_fingerprint.cache_clear()
    fp = C.code_fingerprint()
    assert len(fp) == 16 and fp == C.code_fingerprint()


@pytest.mark.parametrize("damage", ["zeros same shape", "wrong shape", "wrong dtype", "garbage", "no record"])
def test_a_damaged_but_loadable_cache_entry_is_rejected(tiny_synth, tmp_path, damage):
    (a,) = _copy_clips(tiny_synth, tmp_path, 1)
    p = LogMelParams(n_mels=32)
    good = clip_logmels([a], p, progress=False)[0]
    cache = FeatureCache("logmel", dict(p.key(), channel=0))
    entry = cache.path_for(a)

    def spoil():
        if damage == "zeros same shape":
            np.save(entry, np.zeros_like(good))
        elif damage == "wrong shape":
            np.save(entry, good[:10])
        elif damage == "wrong dtype":
            np.save(entry, good.astype("float64"))
        elif damage == "garbage":
            entry.write_bytes(b"garbage")
        else:
            entry.with_suffix(".json").unlink()

    spoil()
    with pytest.warns(UserWarning, match="did not match their record"):
        again = clip_logmels([a], p, progress=False)[0]
    np.testing.assert_array_equal(again, good)  # recomputed, bit for bit
    spoil()
    assert cache.get(a) is None and cache.rejected == [a]
    assert not entry.exists()  # the bad entry is gone, recomputed on the next read


def test_a_missing_clip_raises_the_studys_audio_error(tmp_path):
    from asdstudy.audio import AudioError

    with pytest.raises(AudioError, match=r"gone\.wav: no such file.*data check"):
        clip_logmels([str(tmp_path / "gone.wav")], LogMelParams(n_mels=32), progress=False)


def test_features_have_the_same_bits_in_the_main_process_and_in_workers(tiny_synth, tmp_path):
    """Two BLAS threads sum in another order than one: without one_blas_thread the same clip's
    float32 log-mel differed in its last bits between the main process and a joblib worker."""
    from joblib import Parallel, delayed

    paths = _copy_clips(tiny_synth, tmp_path, 3)
    p = LogMelParams(n_mels=64)
    here = [logmel_file(x, p) for x in paths]
    there = Parallel(n_jobs=2)(delayed(logmel_file)(x, p) for x in paths)
    for a, b in zip(here, there):
        np.testing.assert_array_equal(a, b)


def test_every_bad_clip_of_a_call_is_reported_at_once(tiny_synth, tmp_path):
    import soundfile as sf

    from asdstudy.audio import AudioError

    good = _copy_clips(tiny_synth, tmp_path, 2)
    short = tmp_path / "short.wav"
    sf.write(short, np.full(3200, 0.1), 16000, subtype="PCM_16")
    slow = tmp_path / "slow.wav"
    sf.write(slow, np.full(16000, 0.1), 8000, subtype="PCM_16")
    paths = good + [str(short), str(slow), str(tmp_path / "gone.wav")]
    with pytest.raises(AudioError, match=r"(?s)^3 of 5 clips cannot be used(?=.*short.wav: only 0.200 s)(?=.*slow.wav: sample rate is 8000)(?=.*gone.wav: no such)"):
        clip_logmels(paths, LogMelParams(n_mels=32), progress=False, n_jobs=2)


def test_threads_of_one_process_writing_one_entry_do_not_collide(tmp_path):
    """A joblib worker extracts with threads: they share a pid, so a temporary named by the pid
    alone was shared, and the second thread's os.replace found it gone (FileNotFoundError)."""
    import threading

    from asdstudy.features.cache import tmp_path as tmp_name

    clip = tmp_path / "clip.bin"
    clip.write_bytes(b"0123456789" * 100)
    names, errors = [], []
    barrier = threading.Barrier(8)

    def write():
        try:
            names.append(tmp_name(tmp_path / "x.npy", ".npy"))
            barrier.wait()
            for _ in range(20):  # every thread writes the same entry (and the same feature.json)
                FeatureCache("toy", {"n": 1}, root=tmp_path / "cache").put(clip, np.arange(5.0))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(set(names)) == 8
    assert np.array_equal(FeatureCache("toy", {"n": 1}, root=tmp_path / "cache").get(clip), np.arange(5.0))
