import numpy as np
import pytest
import soundfile as sf

from asdstudy.audio import AudioError, info, load, write


def _wav(path, y, sr=16000, subtype="PCM_16"):
    sf.write(str(path), y, sr, subtype=subtype)
    return path


def test_load_mono_roundtrip(tmp_path):
    y = 0.25 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    p = _wav(tmp_path / "a.wav", y)
    out, sr = load(p)
    assert sr == 16000 and out.shape == (16000,) and out.dtype == np.float32
    assert np.max(np.abs(out - y)) < 1e-4


def test_channel_pick_and_bad_channel(tmp_path):
    y = np.stack([np.full(8000, 0.1 * (c + 1)) for c in range(8)], axis=1)
    p = _wav(tmp_path / "eight.wav", y)
    assert info(p).channels == 8
    out, _ = load(p, channel=3)
    assert np.allclose(out, 0.4, atol=1e-4)
    with pytest.raises(AudioError, match="eight.wav.*8 channel"):
        load(p, channel=8)


def test_resample_and_expected_rate(tmp_path):
    p = _wav(tmp_path / "sr.wav", 0.1 * np.random.default_rng(0).standard_normal(44100), sr=44100)
    with pytest.raises(AudioError, match="sr.wav: sample rate is 44100 Hz, expected 16000"):
        load(p, expected_sr=16000)
    y, sr = load(p, sr=16000)
    assert sr == 16000 and abs(y.size - 16000) <= 1


def test_corrupt_empty_silent_short_missing(tmp_path):
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    with pytest.raises(AudioError, match="corrupt.wav.*corrupt"):
        load(bad)
    trunc = _wav(tmp_path / "trunc.wav", 0.1 * np.ones(16000))
    data = trunc.read_bytes()
    trunc.write_bytes(data[:40])
    with pytest.raises(AudioError, match="trunc.wav"):
        load(trunc)
    silent = _wav(tmp_path / "silent.wav", np.zeros(16000))
    with pytest.raises(AudioError, match="silent.wav.*silent"):
        load(silent)
    assert load(silent, allow_silent=True)[0].size == 16000
    short = _wav(tmp_path / "short.wav", 0.1 * np.ones(100))
    with pytest.raises(AudioError, match="short.wav.*shorter"):
        load(short)
    with pytest.raises(AudioError, match="nope.wav: no such file"):
        load(tmp_path / "nope.wav")


def test_write_clips_and_is_pcm16(tmp_path):
    p = tmp_path / "w.wav"
    write(p, np.array([2.0, -2.0, 0.5]))
    i = info(p)
    assert i.subtype == "PCM_16"
    y, _ = sf.read(str(p))
    assert y.max() <= 1.0 and y.min() >= -1.0


def test_real_dcase_and_mimii_clips(shared_data):
    toycar = sorted((shared_data / "dcase2020_task2_sample/dev_data/ToyCar/test").glob("*.wav"))[0]
    y, sr = load(toycar, expected_sr=16000)
    assert sr == 16000 and abs(y.size / sr - 11.0) < 0.1  # ToyCar clips are 11 s
    fan = sorted((shared_data / "dcase2020_task2_sample/dev_data/fan/test").glob("*.wav"))[0]
    assert abs(load(fan)[0].size / 16000 - 10.0) < 0.1
    mimii = shared_data / "mimii_sample/0_dB_slider/slider/id_00/normal/00000000.wav"
    assert info(mimii).channels == 8
    y0, _ = load(mimii, channel=0)
    y7, _ = load(mimii, channel=7)
    assert y0.shape == y7.shape and not np.allclose(y0, y7)


def test_a_truncated_wav_is_refused_naming_both_lengths(tmp_path):
    from asdstudy.audio import declared_frames

    p = tmp_path / "cut.wav"
    sf.write(p, 0.1 * np.sin(np.arange(160000) / 5), 16000, subtype="PCM_16")
    assert declared_frames(p) == 160000
    raw = p.read_bytes()
    p.write_bytes(raw[: 44 + 3 * 16000 * 2])  # header still promises 10 s; 3 s are left
    assert sf.info(str(p)).frames == 48000  # libsndfile alone would take it for a 3 s clip
    with pytest.raises(AudioError, match=r"cut.wav: truncated: its header promises 160000 samples \(10.00 s\) "
                                         r"but the file holds 48000 \(3.00 s\)"):
        load(p)
    assert declared_frames(tmp_path / "nothing.wav") is None


def test_the_feature_paths_refuse_other_rates_and_short_clips_instead_of_fixing_them(tmp_path):
    from asdstudy.features import LogMelParams, clip_logmels, logmel_file

    for sr in (8000, 44100):
        p = tmp_path / f"rate{sr}.wav"
        sf.write(p, 0.1 * np.sin(np.arange(sr * 2) / 5), sr, subtype="PCM_16")
        with pytest.raises(AudioError, match=rf"rate{sr}.wav: sample rate is {sr} Hz, expected 16000 Hz"):
            clip_logmels([str(p)], LogMelParams(n_mels=32), progress=False, use_cache=False)
    short = tmp_path / "short.wav"
    sf.write(short, 0.1 * np.sin(np.arange(3200) / 5), 16000, subtype="PCM_16")  # 0.2 s
    with pytest.raises(AudioError, match=r"short.wav: only 0.200 s long, shorter than the 1.0 s required"):
        logmel_file(str(short), LogMelParams(n_mels=32))
