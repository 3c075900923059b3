import hashlib
import io
import json

import numpy as np
import pytest
import torch

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
