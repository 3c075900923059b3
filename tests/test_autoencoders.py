import numpy as np
import pytest
import torch

from asdstudy import ASDStudyError
from asdstudy.datasets import clip_table
from asdstudy.models.autoencoders import (VAE, AEConfig, AutoencoderDetector, BaselineAE, DenseAE,
                                          mse_loss, n_parameters, vae_loss)
from asdstudy.models.base import evaluate_per_unit
from asdstudy.training import fit, seed_everything


def test_parameter_counts_match_the_papers():
    assert n_parameters(DenseAE(320)) == 50_760  # paper 002, Table 2
    assert n_parameters(VAE(640)) == 861_480  # paper 002, Table 1
    # released DCASE 2020 baseline: 640-128x4(BN)-8(BN)-128x4(BN)-640
    expected = (640 * 128 + 128 + 256) + 3 * (128 * 128 + 128 + 256) + (128 * 8 + 8 + 16) \
        + (8 * 128 + 128 + 256) + 3 * (128 * 128 + 128 + 256) + (128 * 640 + 640)
    assert n_parameters(BaselineAE(640)) == expected


def test_shapes():
    x = torch.randn(7, 640)
    assert DenseAE(320)(torch.randn(7, 320)).shape == (7, 320)
    assert BaselineAE(640)(x).shape == (7, 640)
    recon, mu, logvar = VAE(640)(x)
    assert recon.shape == (7, 640) and mu.shape == (7, 20) and logvar.shape == (7, 20)
    v = VAE(640).eval()
    a, _, _ = v(x)
    b, _, _ = v(x)
    assert torch.equal(a, b)  # eval uses the mean: deterministic


@pytest.mark.parametrize("make,loss", [(lambda: DenseAE(320), mse_loss), (lambda: VAE(320), vae_loss),
                                       (lambda: BaselineAE(320), mse_loss)])
def test_training_reduces_the_loss(make, loss):
    seed_everything(0)
    X = torch.randn(512, 320) * 0.5 + torch.linspace(-1, 1, 320)
    model = make()
    model.eval()
    with torch.no_grad():
        before = float(loss(model, X))
    hist = fit(model, loss, X, epochs=3, batch_size=64, progress=False)
    with torch.no_grad():
        after = float(loss(model.eval(), X))
    assert after < before and hist.train[-1] < hist.train[0]


def test_seeded_runs_are_repeatable_on_cpu():
    X = torch.randn(300, 320)

    def run():
        seed_everything(5)
        m = VAE(320)
        h = fit(m, vae_loss, X, epochs=2, batch_size=32, seed=5, val_fraction=0.2, progress=False)
        return h, torch.cat([p.detach().flatten() for p in m.parameters()])

    (h1, p1), (h2, p2) = run(), run()
    assert h1.train == h2.train and h1.val == h2.val and torch.equal(p1, p2)


def test_early_stopping_restores_best_and_needs_validation():
    X = torch.randn(200, 320)
    m = DenseAE(320)
    h = fit(m, mse_loss, X, epochs=50, lr=0.05, val_fraction=0.25, patience=2, progress=False)
    assert h.best_epoch is not None and len(h.val) == len(h.train)
    assert h.stopped_early or len(h.train) == 50
    with pytest.raises(ASDStudyError, match="validation split"):
        fit(m, mse_loss, X, epochs=1, patience=2, progress=False)


def test_detectors_on_synthetic_clips(tiny_synth):
    table = clip_table(tiny_synth / "dcase2020", machines=["slider"])
    for kind in ("ae", "vae", "baseline"):
        cfg = AEConfig(kind=kind, n_mels=32, epochs=1, batch_size=256)
        metrics, scores = evaluate_per_unit(lambda: AutoencoderDetector(cfg), table, n_boot=10)
        assert len(metrics) == 2 and np.isfinite(scores.score).all()
    det = AutoencoderDetector(AEConfig(kind="vae", n_mels=32, epochs=1, batch_size=256))
    train = table[(table.split == "train") & (table.id == "00")]
    det.fit(train)
    comp = det.score_components(train)
    assert list(comp.columns) == ["mse", "neg_elbo"] and len(comp) == len(train)
    assert (comp.neg_elbo > comp.mse).all()
    assert det.latent_means(train).shape == (len(train), 20)
    orig, recon = det.reconstruct(train.path.iloc[0])
    assert orig.shape == recon.shape == (309, 32)


def test_scoring_real_sample_clips(shared_data):
    """Format check on the real DCASE clips (no accuracy claim): 10 s and 11 s clips score."""
    table = clip_table(shared_data / "dcase2020_task2_sample", machines=["ToyCar", "slider"])
    det = AutoencoderDetector(AEConfig(kind="ae", n_mels=64, epochs=1, batch_size=256))
    det.fit(table[table.machine == "slider"].assign(split="train"))
    s = det.score(table)
    assert s.shape == (len(table),) and np.isfinite(s).all()
