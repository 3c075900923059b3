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
