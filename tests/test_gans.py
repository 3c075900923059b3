import numpy as np
import pytest
import torch

from asdstudy import ASDStudyError
from asdstudy.datasets import clip_table
from asdstudy.metrics import auc
from asdstudy.models.gans import (EGBAD, KINDS, GANConfig, GANDetector, GANomaly, LossWeights, SkipGANomaly,
                                  anomaly_scores, build, gan_loss, init_weights)
from asdstudy.models.gans import PAPER_GRID, PAPER_SETTINGS
from asdstudy.sweep import Sweep, expand_grid, grid_size, point_id
from asdstudy.training import fit, seed_everything

PARTS = {"discriminator": lambda m: m.discriminator_parameters(), "generator": lambda m: m.generator_parameters()}


@pytest.mark.parametrize("n_hidden,latent", [(3, 8), (4, 16), (3, 100)])
def test_shapes(n_hidden, latent):
    x = torch.randn(5, 640)
    e = EGBAD(640, 128, n_hidden, latent)
    x_hat, z = e(x)
    assert x_hat.shape == (5, 640) and z.shape == (5, latent)
    logit, feat = e.d(x, z)
    assert logit.shape == (5,) and feat.shape == (5, 128)
    g = GANomaly(640, 128, n_hidden, latent)
    x_hat, z, z_hat = g(x)
    assert x_hat.shape == (5, 640) and z.shape == z_hat.shape == (5, latent)
    s = SkipGANomaly(640, 128, n_hidden, latent)
    assert s(x).shape == (5, 640)
    # n_hidden blocks in every encoder, plus the batch-normalised latent layer
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in g.encoder1.modules()) == n_hidden + 1
    for m in (e, g, s):
        assert anomaly_scores(m, x).shape == (5,)


def test_skip_generator_really_uses_the_skips():
    s = SkipGANomaly(640, 128, 3, 8).eval()
    # the output layer reads [decoder state, first encoder layer]: 2 x 128 inputs
    assert s.generator.out.in_features == 256
    x = torch.randn(4, 640)
    base = s(x)
    with torch.no_grad():
        s.generator.code[0].weight.zero_(); s.generator.code[0].bias.zero_()
    # with the code zeroed, the output still depends on x through the skip connections
    y1, y2 = s(x), s(x + 1.0)
    assert not torch.allclose(y1, y2) and base.shape == y1.shape


def test_generator_and_discriminator_parameters_partition_the_model():
    for m in (EGBAD(), GANomaly(), SkipGANomaly()):
        d = {id(p) for p in m.discriminator_parameters()}
        g = {id(p) for p in m.generator_parameters()}
        assert d and g and not d & g and d | g == {id(p) for p in m.parameters()}


@pytest.mark.parametrize("cls", [EGBAD, GANomaly, SkipGANomaly])
def test_losses_are_finite_positive_scalars(cls):
    m = cls(64, 32, 3, 8)
    x = torch.randn(16, 64)
    for part in ("discriminator", "generator"):
        loss = gan_loss(m, x, part, LossWeights(1, 50, 1))
        assert loss.ndim == 0 and torch.isfinite(loss) and loss > 0
    with pytest.raises(ASDStudyError, match="part"):
        gan_loss(m, x, "critic")


@pytest.mark.parametrize("cls", [EGBAD, GANomaly, SkipGANomaly])
def test_one_adversarial_step_updates_both_networks(cls):
    seed_everything(0)
    m = cls(64, 32, 3, 8)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    hist = fit(m, lambda mm, xb, part: gan_loss(mm, xb, part), torch.randn(32, 64), epochs=1, batch_size=32,
               lr=2e-4, betas=(0.5, 0.999), progress=False, parts=PARTS)
    changed = {k for k, v in m.state_dict().items() if v.dtype.is_floating_point and not torch.equal(v, before[k])}
    assert any(k.startswith("discriminator.") for k in changed)
    assert any(not k.startswith("discriminator.") for k in changed)
    assert set(hist.parts) == {"discriminator", "generator"} and len(hist.parts["generator"]) == 1
    assert np.isclose(hist.train[0], hist.parts["discriminator"][0] + hist.parts["generator"][0])


@pytest.mark.parametrize("kind", KINDS)
def test_shifted_inputs_score_higher_after_a_short_fit(kind):
    seed_everything(0)
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(4, 64)).astype(np.float32)
    train = torch.from_numpy(rng.normal(size=(1024, 4)).astype(np.float32) @ basis * 0.3)
    m = build(GANConfig(kind=kind, n_mels=64, n_frames=1, latent=8, seed=0))
    fit(m, lambda mm, xb, part: gan_loss(mm, xb, part), train, epochs=8, batch_size=64, lr=1e-3,
        betas=(0.5, 0.999), progress=False, parts=PARTS)
    normal, shifted = anomaly_scores(m, train[:256]).numpy(), anomaly_scores(m, train[:256] + 1.5).numpy()
    # EGBAD (weakest, as in the paper) reaches ~0.86 here; GANomaly and Skip-GANomaly 1.0
    assert auc(np.r_[np.zeros(256), np.ones(256)], np.r_[normal, shifted]) > 0.8


def test_init_schemes():
    m = init_weights(GANomaly(64, 32, 3, 8), "normal")
    w = m.encoder1.body[0].weight.detach()
    assert abs(float(w.std()) - 0.02) < 0.005 and float(m.encoder1.body[0].bias.detach().abs().sum()) == 0
    m = init_weights(GANomaly(64, 32, 3, 8), "glorot_uniform")
    bound = np.sqrt(6 / (64 + 32))
    assert float(m.encoder1.body[0].weight.detach().abs().max()) <= bound
    with pytest.raises(ASDStudyError, match="initialisation"):
        init_weights(m, "he")


def test_config_checks():
    with pytest.raises(ASDStudyError, match="kind"):
        GANConfig(kind="bigan")
    with pytest.raises(ASDStudyError, match="dropout"):
        GANConfig(dropout=1.0)
    with pytest.raises(ASDStudyError, match="latent"):
        GANConfig(latent=0)
    with pytest.raises(ASDStudyError, match="val_fraction"):
        GANConfig(val_fraction=1.0)


@pytest.mark.parametrize("cls", [EGBAD, GANomaly, SkipGANomaly])
def test_latent_layer_has_batch_norm_and_relu(cls):
    """Paper 003: every layer but the decoder's output uses batch norm and ReLU, the latent code
    included; the original models' linear code is kept as an option."""
    m = cls(640, 128, 3, 8)
    code = (m.encoder.code if cls is EGBAD else m.encoder1.code if cls is GANomaly else m.generator.code)
    kinds = [type(layer) for layer in code]
    assert kinds == [torch.nn.Linear, torch.nn.BatchNorm1d, torch.nn.ReLU]
    m.eval()
    with torch.no_grad():
        z = m.encoder(torch.randn(7, 640)) if cls is EGBAD else m.encoder1(torch.randn(7, 640)) if cls is GANomaly else None
    if z is not None:
        assert (z >= 0).all()  # a ReLU code
    plain = cls(640, 128, 3, 8, latent_bn_relu=False)
    code = (plain.encoder.code if cls is EGBAD else plain.encoder1.code if cls is GANomaly else plain.generator.code)
    assert isinstance(code, torch.nn.Linear)
    assert isinstance(build(GANConfig(kind="ganomaly", latent_bn_relu=False)).encoder1.code, torch.nn.Linear)


@pytest.mark.parametrize("cls", [EGBAD, GANomaly, SkipGANomaly])
def test_both_score_rules(cls):
    """The own rule and paper 003's input-vs-generated distance, computed from the same model:
    the reconstruction rule is the mean |x - G(x)|; for GANomaly the own rule is the latent distance."""
    torch.manual_seed(0)
    m = cls(640, 128, 3, 8).eval()
    x = torch.randn(6, 640)
    rec = anomaly_scores(m, x, rule="reconstruction")
    with torch.no_grad():
        x_hat = m(x)[0] if cls in (EGBAD, GANomaly) else m(x)
    assert torch.allclose(rec, (x - x_hat).abs().mean(1))
    own = anomaly_scores(m, x, rule="own")
    if cls is GANomaly:
        with torch.no_grad():
            _, z, z_hat = m(x)
        assert torch.allclose(own, ((z - z_hat) ** 2).mean(1))
    assert not torch.allclose(own, rec)
    with pytest.raises(ASDStudyError, match="score rule"):
        anomaly_scores(m, x, rule="latent")


def test_detector_gives_both_scores(tiny_synth):
    t = clip_table(tiny_synth / "dcase2020", machines=["valve"])
    det = GANDetector(GANConfig(kind="ganomaly", epochs=1, batch_size=256, train_stride=8))
    det.fit(t[t.split == "train"])
    test = t[t.split == "test"]
    both = det.score_rules(test)
    assert list(both.columns) == ["own", "reconstruction"] and len(both) == len(test)
    assert np.allclose(both["own"], det.score(test))
    assert np.allclose(both["reconstruction"], det.score_spectrograms(det.spectrograms(test), "reconstruction"))


def test_detector_on_tiny_data(tiny_synth):
    t = clip_table(tiny_synth / "dcase2020", machines=["valve"])
    det = GANDetector(GANConfig(kind="skip", epochs=1, batch_size=256, train_stride=4))
    det.fit(t[t.split == "train"])
    test = t[t.split == "test"]
    s = det.score(test)
    assert s.shape == (len(test),) and np.isfinite(s).all()
    assert set(det.history_.parts) == {"discriminator", "generator"}


def test_a_held_out_share_makes_the_reconstruction_error_the_judged_curve(tiny_synth):
    """With val_fraction the convergence rule judges |x - G(x)| on held-out frame vectors (the
    anomaly score's quantity), not the adversarial losses; the floor is one pass over the data."""
    from asdstudy.models.gans import reconstruction_error

    t = clip_table(tiny_synth / "dcase2020", machines=["valve"])
    det = GANDetector(GANConfig(kind="ganomaly", epochs=12, batch_size=256, train_stride=8, converge=True,
                                min_epochs=2, val_fraction=0.2))
    det.fit(t[t.split == "train"])
    h = det.history_
    assert len(h.val) == len(h.train) >= 8  # never before one pass: 8 epochs of a fresh 1/8
    # the curve is a mean absolute error on inputs scaled to [-1, 1], not a sum of GAN losses
    assert all(0 < v < 2 for v in h.val)
    g = h.parts["generator"]
    assert not np.allclose(h.val, np.add(g, h.parts["discriminator"]))
    x = torch.zeros(4, 640)
    det.model_.eval()
    with torch.no_grad():
        assert float(reconstruction_error(det.model_, x)) == pytest.approx(float(det.model_(x)[0].abs().mean()))


# ----------------------------------------------------------------------------- grid and sweep

def test_paper_grid_and_settings():
    assert grid_size(PAPER_GRID) == 4 * 3 * 3 * 3 * 2 * 2 * 2 * 2 * 2 * 2 * 6  # Table 3
    assert set(PAPER_SETTINGS["ganomaly"]) == set(PAPER_SETTINGS["skip"]) == {
        "fan", "pump", "slider", "ToyCar", "ToyConveyor", "valve"}
    assert PAPER_SETTINGS["ganomaly"]["ToyCar"] == {"epochs": 90, "n_hidden": 4, "w_adv": 1, "w_con": 50,
                                                    "w_enc": 1, "batch_size": 512}
    assert PAPER_SETTINGS["skip"]["slider"]["batch_size"] == 512
    for kind in ("ganomaly", "skip"):
        for setting in PAPER_SETTINGS[kind].values():
            GANConfig(kind=kind, **setting)  # every published setting is a valid config


def test_grid_expansion_order_and_ids():
    pts = expand_grid({"latent": [8, 16], "w_con": [1, 50]}, fixed={"kind": "ganomaly"})
    assert pts == [{"kind": "ganomaly", "latent": 8, "w_con": 1}, {"kind": "ganomaly", "latent": 8, "w_con": 50},
                   {"kind": "ganomaly", "latent": 16, "w_con": 1}, {"kind": "ganomaly", "latent": 16, "w_con": 50}]
    assert point_id({"a": 1, "b": 2}) == point_id({"b": 2, "a": 1}) != point_id({"a": 1, "b": 3})
    with pytest.raises(ASDStudyError, match="non-empty list"):
        expand_grid({"latent": []})


def square(point):
    return [{"x": point["x"], "y": point["x"] ** 2}]


def test_sweep_runs_in_parallel_resumes_and_collects(tmp_path):
    pts = expand_grid({"x": [1, 2, 3, 4]})
    sweep = Sweep(tmp_path / "s", square)
    out = sweep.run(pts[:2], n_jobs=1, progress=False)
    assert sorted(out.y) == [1, 4]
    stamp = (tmp_path / "s" / f"{point_id(pts[0])}.json").stat().st_mtime_ns
    out = sweep.run(pts, n_jobs=2, progress=False)
    assert sorted(out.y) == [1, 4, 9, 16]
    assert (tmp_path / "s" / f"{point_id(pts[0])}.json").stat().st_mtime_ns == stamp  # not re-run
    with pytest.raises(ASDStudyError, match="no results"):
        Sweep(tmp_path / "empty", square).collect(pts)


def test_sweep_folder_run_and_status_from_the_cli(tmp_path):
    from click.testing import CliRunner

    from asdstudy.cli import main

    pts = expand_grid({"x": [5, 6]})
    Sweep(tmp_path, square).write_points(pts)
    cli = CliRunner()
    res = cli.invoke(main, ["sweep", "status", str(tmp_path)])
    assert res.exit_code == 0 and "2 points: 0 done, 0 failed, 2 pending" in res.output
    res = cli.invoke(main, ["sweep", "run", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert Sweep(tmp_path, square).collect(pts).y.tolist() == [25, 36]
    assert "2 done" in cli.invoke(main, ["sweep", "status", str(tmp_path)]).output
