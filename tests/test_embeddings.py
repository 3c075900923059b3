import hashlib
import io
import json

import numpy as np
import pytest
import torch

from asdstudy import ASDStudyError
from asdstudy.features import embeddings as E



def test_cnn14_shapes_with_random_weights():
    torch.manual_seed(0)
    m = E.Cnn14().eval()
    out = m(torch.randn(2, E.SR))  # one second at 32 kHz
    assert out["embedding"].shape == (2, E.EMBEDDING_DIM) and out["clipwise"].shape == (2, 527)
    assert torch.all((out["clipwise"] >= 0) & (out["clipwise"] <= 1))
    emb = E.cnn14_embeddings(m, np.random.default_rng(0).normal(size=(3, E.SR)).astype(np.float32), batch_size=2)
    assert emb.shape == (3, 2048) and np.isfinite(emb).all()


def test_the_official_parameter_names_and_a_state_dict_round_trip(tmp_path, monkeypatch):
    m = E.Cnn14()
    names = set(m.state_dict())
    # names of the official checkpoint's tensors (a few of each kind)
    for key in ("spectrogram_extractor.stft.conv_real.weight", "logmel_extractor.melW", "bn0.running_mean",
                "conv_block1.conv1.weight", "conv_block6.bn2.num_batches_tracked", "fc1.bias",
                "fc_audioset.weight"):
        assert key in names
    assert m.conv_block6.conv2.weight.shape == (2048, 2048, 3, 3) and m.fc1.weight.shape == (2048, 2048)
    ckpt = tmp_path / E.CHECKPOINT_NAME
    torch.save({"model": m.state_dict(), "iteration": 0}, ckpt)
    loaded = E.load_cnn14(ckpt, device="cpu")
    for k, v in m.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    monkeypatch.setenv(E.ENV_VAR, str(ckpt))
    assert E.find_checkpoint() == ckpt


def test_no_checkpoint_gives_one_clear_sentence(tmp_path, monkeypatch):
    monkeypatch.delenv(E.ENV_VAR, raising=False)
    monkeypatch.setenv("ASDSTUDY_CACHE", str(tmp_path))
    assert E.find_checkpoint() is None
    with pytest.raises(E.WeightsUnavailable, match="PANNs CNN14 weights are not available on this machine"):
        E.load_cnn14()
    with pytest.raises(E.WeightsUnavailable, match="no CNN14 checkpoint at"):
        E.find_checkpoint(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"model": {"fc1.weight": torch.zeros(3)}}, bad)
    with pytest.raises(E.ASDStudyError, match="does not match the CNN14 architecture"):
        E.load_cnn14(bad)


def test_download_verifies_the_checksum_from_the_record(server, tmp_path):
    buf = io.BytesIO()
    torch.save({"model": {}}, buf)
    data = buf.getvalue()
    server.files[f"/api/records/{E.ZENODO_RECORD}"] = json.dumps(
        {"files": [{"key": E.CHECKPOINT_NAME, "checksum": "md5:" + hashlib.md5(data).hexdigest()}]}).encode()
    server.files["/Cnn14.pth"] = data
    path = E.download_checkpoint(tmp_path, url=server.url + "/Cnn14.pth", api=server.url + "/api", progress=False)
    assert path.read_bytes() == data and path.name == E.CHECKPOINT_NAME
    with pytest.raises(E.ASDStudyError, match="checksum mismatch"):
        E.download_checkpoint(tmp_path / "other", url=server.url + "/Cnn14.pth", md5="0" * 32, progress=False)


def test_ast_input_follows_the_paper():
    from asdstudy.features.embeddings import ASTInputParams, ast_spectrogram

    y = np.random.default_rng(0).normal(size=16000).astype(np.float32)  # 1 s at 16 kHz
    mel = ast_spectrogram(y)
    stft = ast_spectrogram(y, ASTInputParams(kind="stft"))
    assert mel.shape == stft.shape == (98, 128)  # 25 ms frames every 10 ms, not centred; 128 bins
    assert mel.dtype == np.float32 and np.isfinite(mel).all()
    # a 4 kHz tone lands half-way up the linear STFT axis, much higher on the mel axis
    t = np.arange(16000) / 16000
    tone = np.sin(2 * np.pi * 4000 * t).astype(np.float32)
    peak_stft = ast_spectrogram(tone, ASTInputParams(kind="stft")).mean(0).argmax()
    peak_mel = ast_spectrogram(tone).mean(0).argmax()
    assert abs(peak_stft - 64) <= 1 and peak_mel > 90
    with pytest.raises(ASDStudyError, match="kind"):
        ASTInputParams(kind="cqt")


def test_ast_input_equals_the_feature_extractor_on_a_real_clip(shared_data):
    """The AST's Mel input is the AudioSet AST's own front end: transformers' ASTFeatureExtractor
    (Kaldi filterbank) on a real DCASE clip, before and after its AudioSet normalisation."""
    from transformers import ASTFeatureExtractor

    from asdstudy.audio import load
    from asdstudy.features.embeddings import AUDIOSET_MEAN, AUDIOSET_STD, ast_spectrogram

    clip = sorted((shared_data / "dcase2020_slider_train").rglob("*.wav"))[0]
    y, sr = load(clip, expected_sr=16000)
    ours = ast_spectrogram(y)
    fe = ASTFeatureExtractor(max_length=len(ours), do_normalize=False)
    theirs = fe(y, sampling_rate=sr, return_tensors="np")["input_values"][0]
    assert ours.shape == theirs.shape == (1 + (len(y) - 400) // 160, 128)
    assert np.abs(ours - theirs).max() < 1e-3
    normed = ASTFeatureExtractor(max_length=len(ours))(y, sampling_rate=sr, return_tensors="np")["input_values"][0]
    assert np.abs((ours - AUDIOSET_MEAN) / (2 * AUDIOSET_STD) - normed).max() < 1e-3


def test_ast_mel_band_edges_use_the_kaldi_scale():
    from asdstudy.explain.slime import bin_frequencies
    from asdstudy.features.embeddings import ASTInputParams

    f = bin_frequencies(ASTInputParams())
    assert f[0] == 20.0 and f[-1] == 8000.0 and len(f) == 129 and np.all(np.diff(f) > 0)
    assert np.allclose(bin_frequencies(ASTInputParams(kind="stft")), np.linspace(0, 8000, 129))


def test_ast_forward_shapes_and_embedder_with_random_weights(monkeypatch, tmp_path):
    from asdstudy.features.embeddings import ASTEmbedder, small_ast_config
    from transformers import ASTForAudioClassification

    cfg = small_ast_config(n_classes=3, n_frames=64, n_bins=128, hidden=32, layers=1, heads=2)
    model = ASTForAudioClassification(cfg).eval()
    x = torch.randn(2, 64, 128)
    with torch.no_grad():
        out = model(input_values=x)
        pooled = model.audio_spectrogram_transformer(input_values=x).pooler_output
    assert out.logits.shape == (2, 3) and pooled.shape == (2, 32)

    monkeypatch.setenv("ASDSTUDY_CACHE", str(tmp_path))
    monkeypatch.delenv("ASDSTUDY_AST_WEIGHTS", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rng = np.random.default_rng(0)
    specs = [rng.normal(size=(60, 128)).astype(np.float32) + (k % 2) for k in range(8)]
    labels = ["fan-00", "fan-01"] * 4
    emb = ASTEmbedder(weights="auto", epochs=2, lr=1e-3, batch_size=4, small=dict(hidden=32, layers=1, heads=2))
    emb.fit(specs, labels)
    assert emb.pretrained_ is None and emb.n_frames_ == 60  # nothing pretrained here: from scratch
    assert np.isclose(emb.mean_, np.concatenate(specs).mean(), atol=1e-4)
    e = emb.embed(specs[:3] + [specs[0][:40]])  # a shorter clip is padded
    assert e.shape == (4, 32) and np.isfinite(e).all()
    assert set(emb.predict(specs)) <= {"fan-00", "fan-01"}
    assert len(emb.history_.train) == 2
    # a filter sweep stores its trained models and reads them back on resume: same embeddings
    from asdstudy.explain import filters as FL

    FL._save({"model": emb}, tmp_path / "setting.pt")
    back = FL._load(tmp_path / "setting.pt")["model"]
    assert np.array_equal(back.embed(specs[:3]), emb.embed(specs[:3]))


def test_missing_ast_weights_are_named(tmp_path, monkeypatch):
    from asdstudy.features.embeddings import ASTEmbedder, WeightsUnavailable, find_ast_weights

    monkeypatch.setenv("ASDSTUDY_CACHE", str(tmp_path))
    monkeypatch.delenv("ASDSTUDY_AST_WEIGHTS", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert find_ast_weights() is None
    folder = tmp_path / "weights" / "ast"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    assert find_ast_weights() == str(folder)  # the cache folder is found
    specs = [np.zeros((20, 128), np.float32), np.ones((20, 128), np.float32)]
    with pytest.raises(WeightsUnavailable, match="not available on this machine"):
        ASTEmbedder(weights=str(tmp_path / "nope")).fit(specs, ["a", "b"])
