"""The shared, memory-mapped frame vectors that GAN sweep workers train on."""

import multiprocessing as mp
import os

import numpy as np
import pytest
import torch

from asdstudy.datasets import clip_table
from asdstudy.features import LogMelParams, clip_logmels, frame_vectors_of
from asdstudy.models.frames import ScaledRows, shared_frame_vectors
from asdstudy.models.gans import GANConfig, GANDetector, LossWeights, build, gan_loss
from asdstudy.training import fit, seed_everything


@pytest.fixture()
def train_paths(tiny_synth):
    t = clip_table(tiny_synth / "dcase2020", machines=["valve"])
    return t[t.split == "train"]["path"].tolist()


def test_same_numbers_as_in_memory_and_written_once(train_paths, tmp_path):
    params = LogMelParams(n_mels=64)
    X, owner = shared_frame_vectors(train_paths, params, 5, root=tmp_path)
    ref, ref_owner = frame_vectors_of(clip_logmels(train_paths, params, progress=False), 5)
    assert isinstance(X, np.memmap) and X.dtype == np.float32 and not X.flags.writeable
    assert np.array_equal(np.asarray(X), ref) and np.array_equal(owner, ref_owner)
    files = sorted((tmp_path / "frames").glob("*.f32"))
    assert len(files) == 1
    inode = files[0].stat().st_ino
    shared_frame_vectors(train_paths, params, 5, root=tmp_path)  # a second caller reads the same file
    assert [f.stat().st_ino for f in (tmp_path / "frames").glob("*.f32")] == [inode]
    # another context length or clip list is another file
    shared_frame_vectors(train_paths, params, 3, root=tmp_path)
    shared_frame_vectors(train_paths[:-1], params, 5, root=tmp_path)
    assert len(list((tmp_path / "frames").glob("*.f32"))) == 3


def test_a_damaged_file_is_written_again_with_a_warning(train_paths, tmp_path):
    params = LogMelParams(n_mels=64)
    X, _ = shared_frame_vectors(train_paths, params, 5, root=tmp_path)
    ref = np.array(X)
    f = next((tmp_path / "frames").glob("*.f32"))
    with open(f, "r+b") as fh:
        fh.truncate(f.stat().st_size // 2)
    with pytest.warns(UserWarning, match="does not match its record"):
        X2, _ = shared_frame_vectors(train_paths, params, 5, root=tmp_path)
    assert np.array_equal(np.asarray(X2), ref)


def _worker(args):
    paths, root = args
    X, _ = shared_frame_vectors(paths, LogMelParams(n_mels=64), 5, root=root)
    return float(np.asarray(X).sum()), os.getpid()


def test_concurrent_workers_share_one_write(train_paths, tmp_path):
    with mp.get_context("spawn").Pool(3) as pool:
        out = pool.map(_worker, [(train_paths, str(tmp_path))] * 3)
    assert len({s for s, _ in out}) == 1
    assert len(list((tmp_path / "frames").glob("*.f32"))) == 1
    assert not list((tmp_path / "frames").glob(".*tmp*"))  # no writer's temporary file left


def test_scaled_rows_equal_scaling_the_whole_array():
    X = np.random.default_rng(0).uniform(-80, 0, size=(37, 6)).astype(np.float32)
    rows = ScaledRows(X, shift=-40.0, scale=40.0, stride=4)
    full = (X[::4] - (-40.0)) / 40.0
    assert len(rows) == len(full) == 10 and rows.shape == (10, 6)
    idx = torch.tensor([9, 0, 3])
    assert torch.equal(rows[idx], torch.from_numpy(full[[9, 0, 3]]))


def test_gan_trained_from_the_shared_file_equals_training_in_memory(tiny_synth):
    t = clip_table(tiny_synth / "dcase2020", machines=["valve"])
    train = t[t.split == "train"]
    cfg = GANConfig(kind="ganomaly", epochs=2, batch_size=128, train_stride=3, n_mels=64, seed=3)
    det = GANDetector(cfg).fit(train)
    # the former path: every frame vector in memory, scaled as a whole, then trained
    X, _ = frame_vectors_of(clip_logmels(train["path"].tolist(), det.input_params, progress=False), cfg.n_frames)
    lo = cfg.clip_db
    seed_everything(cfg.seed)
    model = build(cfg)
    w = LossWeights(cfg.w_adv, cfg.w_con, cfg.w_enc)
    h = fit(model, lambda m, xb, part: gan_loss(m, xb, part, w), (X - lo / 2) / (-lo / 2), epochs=cfg.epochs,
            batch_size=cfg.batch_size, lr=cfg.lr, betas=(cfg.beta1, 0.999), seed=cfg.seed, progress=False,
            epoch_fraction=1 / cfg.train_stride, parts={"discriminator": lambda m: m.discriminator_parameters(), "generator": lambda m: m.generator_parameters()})
    assert h.parts == det.history_.parts
    for k, v in model.state_dict().items():
        assert torch.equal(v, det.model_.state_dict()[k]), k
