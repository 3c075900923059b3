"""The training loop's convergence rule (the default profile's 'trained until flat')."""

import doctest
import math

import pytest
import torch

import asdstudy.training as T
from asdstudy.training import fit, flatness


def test_flatness_known_values():
    assert flatness([1.0, 0.5, 0.3, 0.2, 0.199])[0]                      # last epoch improves 0.5 %
    flat, imp = flatness([1.0, 0.5, 0.3, 0.2, 0.15])
    assert not flat and math.isclose(imp, 0.25)                          # 0.2 -> 0.15 is 25 %
    # the window is the last 20 % of the epochs (10 epochs: the last 2), judged against the best before it
    curve = [1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.299, 0.298]
    assert math.isclose(flatness(curve)[1], (0.3 - 0.298) / 0.3)
    assert flatness([1.0, 1.1, 1.2])[0] and flatness([1.0, 1.1, 1.2])[1] < 0  # a rising curve improves nothing
    assert flatness([1.0])[0] is False and math.isnan(flatness([1.0])[1])
    assert not flatness([1.0, float("nan")])[0]
    assert flatness([1.0, 0.985], tolerance=0.02)[0] and not flatness([1.0, 0.975], tolerance=0.02)[0]


def test_fit_stops_when_the_curve_is_flat():
    torch.manual_seed(0)
    X = torch.randn(512, 4)

    def loss(m, xb):
        return ((m(xb) - xb) ** 2).mean()

    h = fit(torch.nn.Linear(4, 4), loss, X, epochs=200, lr=0.05, batch_size=64, val_fraction=0.2, progress=False,
            converge=True)
    assert h.converged and 5 <= len(h.val) < 200 and h.flat()[0]
    full = fit(torch.nn.Linear(4, 4), loss, X, epochs=12, lr=0.05, batch_size=64, val_fraction=0.2, progress=False)
    assert not full.converged and len(full.val) == 12
    # the rule never fires before min_epochs
    early = fit(torch.nn.Linear(4, 4), loss, X, epochs=50, lr=0.05, batch_size=64, progress=False, converge=True,
                min_epochs=9)
    assert len(early.train) >= 9


def test_the_validation_curve_is_judged_on_an_epochs_worth_of_held_out_examples():
    X = torch.arange(20000, dtype=torch.float32).reshape(-1, 1)

    def loss(m, xb):  # the batch's mean value (plus a zero that needs the model's gradient)
        return (m.weight * 0).sum() + xb[:, 0].mean()

    seed, n_val = 3, 4000
    held_out = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))[:n_val]
    # an epoch trains on a tenth of the 16000 training examples: the curve is judged on 1600
    # held-out ones, the same seeded ones every epoch
    h = fit(torch.nn.Linear(1, 1), loss, X, epochs=3, val_fraction=0.2, epoch_fraction=0.1, seed=seed,
            progress=False)
    assert h.val_examples == 1600
    assert h.val == pytest.approx([float(X[held_out[:1600], 0].mean())] * 3, rel=1e-6)
    # every example every epoch: the whole held-out set, as before
    full = fit(torch.nn.Linear(1, 1), loss, X, epochs=1, val_fraction=0.2, seed=seed, progress=False)
    assert full.val_examples == n_val and full.val[0] == pytest.approx(float(X[held_out, 0].mean()), rel=1e-6)
    # never fewer than VAL_FLOOR held-out examples, unless fewer are held out
    tiny = fit(torch.nn.Linear(1, 1), loss, X, epochs=1, val_fraction=0.2, epoch_fraction=0.001, seed=seed,
               progress=False)
    assert tiny.val_examples == T.VAL_FLOOR
    assert fit(torch.nn.Linear(1, 1), loss, X[:100], epochs=1, val_fraction=0.2, progress=False).val_examples == 20
    assert fit(torch.nn.Linear(1, 1), loss, X[:100], epochs=1, progress=False).val_examples == 0


def test_training_module_examples():
    assert doctest.testmod(T).failed == 0


def test_convergence_table_judges_each_model():
    from asdstudy.experiments.protocol import convergence_table, convergence_text
    from asdstudy.training import History

    done = History(train=[1, 0.5, 0.4, 0.39, 0.389], val=[1, 0.6, 0.5, 0.45, 0.449], val_examples=640)
    going = History(train=[1.0, 0.8, 0.6, 0.4, 0.2])
    t = convergence_table([("AE", done), ("LSTM", going)])
    assert list(t.index) == ["AE", "LSTM"] and list(t["epochs run"]) == [5, 5]
    assert list(t["curve judged"]) == ["validation", "training"] and list(t.iloc[:, -1]) == ["yes", "no"]
    assert t.loc["AE", "on examples"] == 640 and t["on examples"].isna().tolist() == [False, True]
    assert math.isclose(t.loc["LSTM", "improvement in the last 20 % of epochs"], 0.5)
    assert convergence_text(t) == ("1 of 2 trained models meet the convergence rule at this budget; 1 were still "
                                   "improving when training stopped, so their numbers are those of unfinished models.")
    one = convergence_table([("GAN", History(train=[1.0]))])
    assert convergence_text(one).endswith("1 trained for fewer than 2 epochs, too few to judge.")
    assert convergence_text(t.iloc[:1]).startswith("All 1 trained models")


def test_convergence_text_says_which_models_were_read_back():
    from asdstudy.experiments.protocol import convergence_table, convergence_text
    from asdstudy.training import History

    here = History(train=[1, 0.5, 0.4, 0.39, 0.389])
    back = History(train=[1, 0.5, 0.4, 0.39, 0.389], stored="/cache/models/abc.pt")
    t = convergence_table([("AE", here), ("baseline", back)])
    assert list(t["trained"]) == ["here", "read back"]
    assert convergence_text(t) == ("All 2 trained models meet the convergence rule at this budget. 1 of them were read "
                                   "back from the model store, trained earlier (by another chapter or an earlier run) "
                                   "with the same settings, clips and code, rather than trained again.")


@pytest.mark.parametrize("converge", [True, False])
def test_the_training_rule_is_stated_from_the_parameter(converge):
    from asdstudy.experiments.protocol import ChapterParams, training_rule_text

    p = ChapterParams(converge=converge)
    text = training_rule_text(p)
    if converge:
        assert "until its validation loss" in text and f"at least {T.MIN_EPOCHS} epochs" in text
        assert "the epochs named here are the cap" in text and text.endswith("whether it met the rule.")
        assert f"as many as one epoch trains on (at least {T.VAL_FLOOR:,}" in text
        assert training_rule_text(p, table=False).endswith("or all held-out ones when fewer).")
    else:
        assert text.startswith("Every model trains for exactly the epochs named here") and "table below" in text
        assert "table" not in training_rule_text(p, table=False)


def test_fit_stops_at_the_rule_not_before_min_epochs():
    import torch

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    X = torch.randn(64, 4)
    h = T.fit(model, lambda m, xb: (m(xb) ** 2).mean() * 0 + 1.0 + 0 * m(xb).sum(), X, epochs=50, batch_size=16,
              lr=1e-3, progress=False, converge=True, min_epochs=7)
    assert h.converged and len(h.train) == 7  # a constant loss is flat at once; the floor holds it to 7


def test_epoch_fraction_draws_a_fresh_share_each_epoch_and_every_example_over_the_epochs():
    import torch

    seen = []

    class Spy:
        def __init__(self, n):
            self.X = torch.arange(n, dtype=torch.float32)[:, None]

        def __len__(self):
            return len(self.X)

        def __getitem__(self, idx):
            seen.append(idx.clone())
            return self.X[idx]

    model = torch.nn.Linear(1, 1)
    T.fit(model, lambda m, xb: (m(xb) ** 2).mean(), Spy(40), epochs=30, batch_size=10, progress=False,
          epoch_fraction=0.25)
    per_epoch = [torch.cat(seen[i:i + 1]) for i in range(len(seen))]
    assert all(len(b) == 10 for b in per_epoch) and len(per_epoch) == 30  # a quarter (one batch) per epoch
    assert len({tuple(sorted(b.tolist())) for b in per_epoch}) > 1  # not the same subset every epoch
    assert set(torch.cat(per_epoch).tolist()) == set(range(40))  # every example drawn over the epochs
    T.fit(torch.nn.Linear(1, 1), lambda m, xb: (m(xb) ** 2).mean(), torch.zeros(8, 1), epochs=1, batch_size=8,
          progress=False)
    with pytest.raises(T.ASDStudyError, match="epoch_fraction is 0"):
        T.fit(model, lambda m, xb: (m(xb) ** 2).mean(), Spy(4), epochs=1, progress=False, epoch_fraction=0)


def test_a_monitor_replaces_the_validation_loss_and_the_rule_judges_it():
    """An adversarial model's summed losses can sit level while its reconstruction improves:
    with ``monitor`` the validation curve (and so the convergence rule) tracks the monitored
    quantity, not the training losses."""
    torch.manual_seed(0)
    X = torch.randn(400, 4)

    def constant_loss(m, xb):  # level from the first epoch: the rule would stop at min_epochs
        return 1.0 + 0 * m(xb).sum()

    def recon_loss(m, xb):
        return ((m(xb) - xb) ** 2).mean()

    plain = fit(torch.nn.Linear(4, 4), constant_loss, X, epochs=40, lr=0.01, batch_size=50, val_fraction=0.2,
                progress=False, converge=True, min_epochs=3)
    assert plain.converged and len(plain.val) == 3 and set(plain.val) == {1.0}
    model = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Linear(2, 4))  # a bottleneck: the error floors
    judged = fit(model, lambda m, xb: constant_loss(m, xb) + recon_loss(m, xb), X, epochs=200, lr=0.01,
                 batch_size=50, val_fraction=0.2, progress=False, converge=True, monitor=recon_loss, min_epochs=3)
    # the validation curve is the reconstruction error itself: falling, then flat by the rule
    assert judged.val[0] > 1.2 * judged.val[-1] and judged.converged and judged.flat()[0]
    assert len(judged.val) > 3  # the falling reconstruction kept it training past the floor
    with torch.no_grad():
        final = float(recon_loss(model, X))
    assert abs(judged.val[-1] - final) < 0.1 * final + 0.05
    with pytest.raises(T.ASDStudyError, match="monitor.*val_fraction"):
        fit(torch.nn.Linear(4, 4), recon_loss, X, epochs=1, progress=False, monitor=recon_loss)
