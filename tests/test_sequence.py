import numpy as np
import pandas as pd
import pytest
import torch

from asdstudy import ASDStudyError
from asdstudy import metrics as M
from asdstudy.datasets import clip_table
from asdstudy.features import sequence_windows
from asdstudy.models.sequence import (GRUAutoencoder, LSTMPredictor, SeqConfig, SequenceDetector, WindowSet,
                                      next_frame_loss, reconstruction_loss, window_errors_batch)
from asdstudy.training import fit, seed_everything


def test_313_frames_give_303_windows_with_the_right_targets():
    spec = np.arange(313 * 4, dtype=np.float32).reshape(313, 4)
    inputs, targets = sequence_windows(spec, 10)
    assert inputs.shape == (303, 10, 4) and targets.shape == (303, 4)
    np.testing.assert_array_equal(inputs[0], spec[:10])
    np.testing.assert_array_equal(targets[0], spec[10])
    np.testing.assert_array_equal(inputs[302], spec[302:312])
    np.testing.assert_array_equal(targets[302], spec[312])


def test_windowset_gathers_the_same_windows_without_copying_them():
    specs = np.random.default_rng(0).normal(size=(3, 313, 8)).astype(np.float32)
    ws = WindowSet(specs, 11)
    assert ws.per_clip == 303 and len(ws) == 909 and ws.shape == (909, 11, 8)
    inputs, targets = sequence_windows(specs[1], 10)
    batch = ws[torch.tensor([303, 303 + 57, 605])]  # clip 1, windows 0, 57, 302
    np.testing.assert_array_equal(batch[0, :10].numpy(), inputs[0])
    np.testing.assert_array_equal(batch[1, :10].numpy(), inputs[57])
    np.testing.assert_array_equal(batch[1, 10].numpy(), targets[57])
    np.testing.assert_array_equal(batch[2, 10].numpy(), specs[1, 312])
    assert list(ws.clip_of([0, 302, 303, 908])) == [0, 0, 1, 2]
    strided = WindowSet(specs, 11, stride=20)
    assert strided.per_clip == 16  # starts 0, 20, ..., 300
    np.testing.assert_array_equal(strided[torch.tensor([1])][0].numpy(), specs[0, 20:31])


def test_windowset_rejects_bad_input():
    with pytest.raises(ASDStudyError, match="too short"):
        WindowSet(np.zeros((1, 5, 4)), 11)
    with pytest.raises(ASDStudyError, match="clips, frames, mels"):
        WindowSet(np.zeros((5, 4)), 2)


def test_output_shapes():
    x = torch.randn(6, 10, 128)
    assert LSTMPredictor()(x).shape == (6, 128)
    assert GRUAutoencoder()(x).shape == (6, 10, 128)
    assert GRUAutoencoder().encode(x).shape == (2, 6, 256)
    batch = torch.randn(6, 11, 128)
    assert window_errors_batch(LSTMPredictor(), batch).shape == (6,)
    assert window_errors_batch(GRUAutoencoder(), batch).shape == (6,)


@pytest.mark.parametrize("make,loss", [(lambda: LSTMPredictor(16, 32), next_frame_loss),
                                       (lambda: GRUAutoencoder(16, 32), reconstruction_loss)])
def test_a_few_epochs_reduce_the_loss(make, loss):
    seed_everything(0)
    t = torch.arange(120, dtype=torch.float32)
    # a smooth, predictable sequence: sinusoids per band
    specs = torch.sin(t[None, :, None] * 0.3 + torch.arange(16)[None, None, :] * 0.5 + torch.arange(4)[:, None, None])
    ws = WindowSet(specs, 11)
    model = make()
    with torch.no_grad():
        before = float(loss(model.eval(), ws[torch.arange(len(ws))]))
    hist = fit(model, loss, ws, epochs=4, batch_size=32, progress=False)
    with torch.no_grad():
        after = float(loss(model.eval(), ws[torch.arange(len(ws))]))
    assert after < 0.5 * before and hist.train[-1] < hist.train[0]


def test_fit_on_a_windowset_is_repeatable():
    specs = torch.randn(2, 40, 8)

    def run():
        seed_everything(3)
        m = LSTMPredictor(8, 16)
        h = fit(m, next_frame_loss, WindowSet(specs, 11), epochs=2, batch_size=16, seed=3, val_fraction=0.2,
                progress=False)
        return h.train + h.val

    assert run() == run()


def test_detector_scores_every_clip_and_rejects_unknown_kinds(tiny_synth):
    t = clip_table(tiny_synth / "dcase2020", machines=["slider"])
    t = t[t.id == t.id.iloc[0]]
    det = SequenceDetector(SeqConfig(kind="gru", hidden=16, epochs=1, train_stride=50))
    with pytest.raises(ASDStudyError, match="not fitted"):
        det.score(t)
    det.fit(t[t.split == "train"])
    test = t[t.split == "test"]
    errs = det.window_errors(test)
    assert errs.shape == (len(test), 303)
    np.testing.assert_allclose(det.score(test), errs.mean(axis=1))
    assert det.offset_ < det.scale_ + det.offset_
    with pytest.raises(ASDStudyError, match="kind"):
        SequenceDetector(SeqConfig(kind="transformer"))
    with pytest.raises(ASDStudyError, match="normalise"):
        SequenceDetector(SeqConfig(normalise="zscore"))


# ------------------------------------------------------------------ thresholds (paper 001's rules)

def test_threshold_rules_on_hand_made_scores():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.6, 0.5, 0.7, 0.8, 0.9, 0.95])
    # closest to (0, 1): threshold 0.7 gives FPR 0, TPR 0.8 (distance 0.2); 0.5 gives FPR .25, TPR 1
    assert M.threshold_closest_corner(y, s) == 0.7
    # TPR 0.8 = 4 of 5 anomalies: the 4th highest anomaly score
    assert M.threshold_at_tpr(y, s, 0.8) == 0.7
    r = M.report_row(y, s, 0.7)
    assert r["tpr"] == 0.8 and r["fpr"] == 0.0 and r["precision_anomaly"] == 1.0
    assert r["recall_normal"] == 1.0 and r["precision_normal"] == 0.8 and np.isclose(r["accuracy"], 8 / 9)
    normals = np.array([0.1, 0.3])  # mean 0.2, std 0.1414
    t = M.threshold_mean_std_tuned(y, s, normals, ks=[0.0, 1.0, 2.0, 3.0, 4.0])
    # k=0 -> 0.2: F1 0.769; k=1 -> 0.341 and k=2 -> 0.483: all 5 anomalies + the 0.6 normal,
    # F1 0.909; k=3 -> 0.624: F1 0.889. The first k reaching the best F1 wins.
    assert np.isclose(t, 0.2 + 1 * np.std(normals, ddof=1))


def test_threshold_comparison_shows_the_leak():
    rng = np.random.default_rng(0)
    rows = []
    for unit in ("00", "02"):
        y = np.r_[np.zeros(40), np.ones(40)]
        rows.append(pd.DataFrame({"unit": unit, "label": y.astype(int), "score": rng.normal(size=80) + 0.8 * y}))
    scores = pd.concat(rows, ignore_index=True)
    normals = pd.DataFrame({"unit": ["00"] * 5 + ["02"] * 5, "score": rng.normal(size=10)})
    out = M.threshold_comparison(scores, normals, seed=1)
    assert len(out) == len(M.THRESHOLD_RULES) * len(M.CHOSEN_ON)
    assert set(out.chosen_on) == set(M.CHOSEN_ON.values())
    by = out.set_index(["rule", "chosen_on"])
    assert (out.loc[out.chosen_on == M.CHOSEN_ON["leaky_all"], "n"] == 160).all()
    assert (out.loc[out.chosen_on != M.CHOSEN_ON["leaky_all"], "n"] == 80).all()
    # the F1-tuned rule chosen on the evaluation half is at least as good there as any
    # threshold chosen elsewhere: the optimism the leak buys
    rule = "mean + k std of validation normals (k tuned)"
    assert by.loc[(rule, M.CHOSEN_ON["leaky_half"]), "f1_anomaly"] >= by.loc[(rule, M.CHOSEN_ON["honest"]), "f1_anomaly"]
    with pytest.raises(ASDStudyError, match="'score'"):
        M.threshold_comparison(scores.drop(columns="score"), normals)
