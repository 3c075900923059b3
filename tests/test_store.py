"""The model store: the same model (config, clips, code, device) is trained once, and nothing
stale or damaged is ever read back."""

import shutil

import numpy as np
import pytest
import torch

from asdstudy.datasets import clip_table
from asdstudy.models import store
from asdstudy.models.autoencoders import AEConfig, AutoencoderDetector, dcase_baseline
from asdstudy.models.gans import GANConfig, GANDetector
from asdstudy.models.sequence import SeqConfig, SequenceDetector


@pytest.fixture
def fresh_store(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "store_dir", lambda: tmp_path / "models")
    return tmp_path / "models"


def _tables(root, machine="slider"):
    t = clip_table(root, layout="dcase2020", machines=[machine])
    return t[t["split"] == "train"].reset_index(drop=True), t[t["split"] == "test"].reset_index(drop=True)


def _counting_fit(monkeypatch, module):
    calls = []
    real = module.fit

    def counted(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(module, "fit", counted)
    return calls


def test_a_stored_model_is_the_trained_one(tiny_synth, fresh_store, monkeypatch):
    import asdstudy.models.autoencoders as A

    calls = _counting_fit(monkeypatch, A)
    train, test = _tables(tiny_synth)
    cfg = AEConfig(kind="baseline", n_mels=128, epochs=2, batch_size=512, seed=3)
    first = AutoencoderDetector(cfg).fit(train)
    second = AutoencoderDetector(cfg).fit(train)
    assert len(calls) == 1  # trained once
    assert first.history_.stored == "" and second.history_.stored.endswith(".pt")
    assert second.history_.train == first.history_.train and second.history_.val == first.history_.val
    np.testing.assert_array_equal(first.score(test), second.score(test))
    for a, b in zip(first.model_.state_dict().values(), second.model_.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("change", ["epochs", "seed", "clips", "content", "numerics"])
def test_anything_that_shapes_the_model_changes_its_key(tiny_synth, tmp_path, change, monkeypatch):
    train, _ = _tables(tiny_synth)
    det = AutoencoderDetector(AEConfig(kind="baseline", n_mels=128, epochs=2, seed=0))
    paths = train["path"].tolist()
    key = store.model_key(det, paths)
    assert store.model_key(AutoencoderDetector(AEConfig(kind="baseline", n_mels=128, epochs=2, seed=0, jobs=4)),
                           paths) == key  # workers do not shape the model
    if change == "epochs":
        other = store.model_key(AutoencoderDetector(AEConfig(kind="baseline", n_mels=128, epochs=3, seed=0)), paths)
    elif change == "seed":
        other = store.model_key(AutoencoderDetector(AEConfig(kind="baseline", n_mels=128, epochs=2, seed=1)), paths)
    elif change == "clips":
        other = store.model_key(det, paths[:-1])
    elif change == "numerics":  # another CPU kind or mode: neither the model nor its features are shared
        from asdstudy import numerics
        from asdstudy.features.cache import feature_key

        before = feature_key("logmel", {"n_mels": 128})
        monkeypatch.setattr(numerics, "label", lambda: "AVX2 portable")
        other = store.model_key(det, paths)
        assert feature_key("logmel", {"n_mels": 128}) != before
    else:  # the same path with other bytes: a regenerated data set
        copy = tmp_path / "clip.wav"
        shutil.copy(paths[0], copy)
        before = store.model_key(det, [str(copy)] + paths[1:])
        data = bytearray(copy.read_bytes())
        data[-2:] = b"\x01\x02" if data[-2:] != b"\x01\x02" else b"\x03\x04"
        copy.write_bytes(bytes(data))
        other = store.model_key(det, [str(copy)] + paths[1:])
        assert other != before
        return
    assert other != key


def test_a_damaged_store_file_is_trained_again_with_a_warning(tiny_synth, fresh_store, monkeypatch):
    import asdstudy.models.autoencoders as A

    train, test = _tables(tiny_synth)
    cfg = AEConfig(kind="baseline", n_mels=128, epochs=1, batch_size=512, seed=0)
    ref = AutoencoderDetector(cfg).fit(train)
    (stored,) = fresh_store.glob("*.pt")
    stored.write_bytes(b"not a model")
    calls = _counting_fit(monkeypatch, A)
    with pytest.warns(UserWarning, match="could not be read.*training it again"):
        again = AutoencoderDetector(cfg).fit(train)
    assert len(calls) == 1 and again.history_.stored == ""
    np.testing.assert_array_equal(ref.score(test), again.score(test))
    assert AutoencoderDetector(cfg).fit(train).history_.stored == str(stored)  # replaced, readable again


def test_the_store_can_be_switched_off(tiny_synth, fresh_store, monkeypatch):
    import asdstudy.models.autoencoders as A

    monkeypatch.setenv(store.ENV_SWITCH, "0")
    calls = _counting_fit(monkeypatch, A)
    train, _ = _tables(tiny_synth)
    cfg = AEConfig(kind="baseline", n_mels=128, epochs=1, seed=0)
    AutoencoderDetector(cfg).fit(train)
    AutoencoderDetector(cfg).fit(train)
    assert len(calls) == 2 and not fresh_store.exists()


def test_sequence_and_gan_detectors_come_back_whole(tiny_synth, fresh_store):
    train, test = _tables(tiny_synth)
    seq = SeqConfig(kind="lstm", hidden=16, layers=1, epochs=1, train_stride=50, seed=0)
    a = SequenceDetector(seq).fit(train)
    b = SequenceDetector(seq).fit(train)
    assert b.history_.stored and (b.offset_, b.scale_) == (a.offset_, a.scale_)
    np.testing.assert_array_equal(a.score(test), b.score(test))
    gan = GANConfig(kind="ganomaly", epochs=1, batch_size=256, train_stride=16, seed=0)
    g1 = GANDetector(gan).fit(train)
    g2 = GANDetector(gan).fit(train)
    assert g2.history_.stored and g2.history_.parts == g1.history_.parts
    np.testing.assert_array_equal(g1.score_rules(test).to_numpy(), g2.score_rules(test).to_numpy())


def test_every_chapter_builds_the_same_baseline_so_it_is_stored_once(tiny_synth):
    """The data chapter's twin check, the AE, sequence and GAN chapters all build the DCASE
    baseline from one recipe: on the same clips at the same budget it is one stored model."""
    from asdstudy import calibration
    from asdstudy.experiments import autoencoders as XA
    from asdstudy.experiments import sequence as XS

    train, _ = _tables(tiny_synth)
    paths = train["path"].tolist()
    ae = XA.Params(epochs=3, baseline_epochs=7, converge=True, jobs=1)
    seq = XS.Params(ae_epochs=7, converge=True, jobs=2)
    built = [calibration.baseline_makers(7, jobs=3, converge=True)["DCASE baseline"](0),
             XA.makers(ae)["DCASE baseline"](0), XS.makers(seq)["DCASE baseline"](0),
             AutoencoderDetector(dcase_baseline(7, 0, 1, True))]
    assert len({store.model_key(d, paths) for d in built}) == 1
    assert store.model_key(XA.makers(XA.Params(baseline_epochs=8, converge=True))["DCASE baseline"](0), paths) != \
        store.model_key(built[0], paths)


def test_a_sweep_point_can_switch_the_store_off_so_a_benchmark_times_training(tiny_synth, fresh_store, monkeypatch):
    from asdstudy.models.gans import sweep_point

    monkeypatch.delenv(store.ENV_SWITCH, raising=False)
    q = {"root": str(tiny_synth), "kind": "ganomaly", "machine": "slider", "epochs": 1, "batch_size": 256,
         "train_stride": 16, "seed": 0}

    def stored(rows):
        return {r["stored"] for r in rows if r["row"] == "loss"}

    assert stored(sweep_point(q)) == {False}  # trained and stored
    assert stored(sweep_point(q)) == {True}  # read back
    assert stored(sweep_point({**q, "model_store": False})) == {False}  # timed: trained again
    assert store.enabled()  # the switch is restored after the point
    with store.switched(False):
        assert not store.enabled()
    assert store.enabled()
