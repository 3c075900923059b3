"""The autoencoders chapter's experiment (paper 002), in process on the smoke profile."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from asdstudy import plots
from asdstudy.experiments import autoencoders as X
from conftest import check_rows, is_figure, smoke_params


@pytest.fixture(scope="module")
def res(smoke_root):
    return X.run(smoke_params(X, smoke_root), progress=False)


def test_rows_are_sound(res):
    check_rows(res.rows, "autoencoders")
    r = res.rows
    assert set(r.paper) == {"002", "dcase2020-baseline"}
    # per id, mean (with CI), seed spread per method
    for method in X.PAPER_OF:
        m = r[r.method == method]
        assert set(m.unit) >= set(res.units) | {"mean"}
        assert m[(m.unit == "mean") & (m.metric == "auc")].ci_low.notna().all()


def test_training_units_as_the_paper_and_the_recipe(res):
    """The baseline (its official recipe) and the paper's AE train one model for all slider ids,
    the VAE one per id; the AE's other reading runs beside it under its own name."""
    det = res.cmp.detectors
    units = res.units
    assert len(units) > 1
    for method in ("DCASE baseline", "Dense AE"):
        assert len({id(det[(method, "slider", u)]) for u in units}) == 1
        assert set(res.first[res.first.method == method].training_unit) == {"machine"}
    for method in ("VAE", "Dense AE (one model per id)"):
        assert len({id(det[(method, "slider", u)]) for u in units}) == len(units)
        assert set(res.first[res.first.method == method].training_unit) == {"unit"}
    notes = res.rows[(res.rows.method == "DCASE baseline") & (res.rows.unit == units[0])].note
    assert notes.str.contains("one model per machine type").all()


def test_pooled_row_is_one_models_auc(res):
    """The AE's pooled AUC is one model's now, so it carries no 'separately trained' note."""
    pooled = res.rows[(res.rows.unit == "all") & (res.rows.metric == "auc")]
    assert len(pooled) == 1 and pooled.note.fillna("").iloc[0] == ""
    s0 = res.scores[(res.scores.seed == res.params.seeds[0]) & (res.scores.method == "Dense AE (one model per id)")]
    with pytest.raises(X.P.ASDStudyError, match="separately trained"):
        X.P.pooled_auc(s0, model="model")


def test_only_the_thresholded_ae_loses_held_out_clips(res):
    assert set(res.holdout.method) == {"Dense AE", "Dense AE (one model per id)"}


def test_early_stopping_is_set_for_the_papers_networks_only(smoke_root):
    p = smoke_params(X, smoke_root, patience=4)
    mk = X.makers(p)
    assert mk["Dense AE"](0).config.patience == 4 and mk["VAE"](0).config.patience == 4
    assert mk["DCASE baseline"](0).config.patience is None
    assert X.makers(smoke_params(X, smoke_root, patience=0))["VAE"](0).config.patience is None


def test_early_stopping_fires_for_the_ae(smoke_root):
    """Paper 002 stops on its validation loss: with a learning rate that cannot settle, training
    stops long before its epoch budget and restores the best epoch."""
    from asdstudy.models.autoencoders import AEConfig, AutoencoderDetector

    data = X.P.load_data(smoke_params(X, smoke_root), ["slider"])
    train = data.table[data.table.split == "train"].head(6)
    det = AutoencoderDetector(AEConfig(kind="ae", n_mels=64, epochs=60, batch_size=64, lr=0.5, patience=2,
                                       val_fraction=0.2, seed=0)).fit(train)
    h = det.history_
    assert h.stopped_early and len(h.train) < 60
    assert h.val[h.best_epoch] == min(h.val)


def test_unknown_training_unit_is_refused(smoke_root):
    with pytest.raises(X.P.ASDStudyError, match="parameter 'units'"):
        smoke_params(X, smoke_root, units={"VAE": "section"})
    from asdstudy.models.base import check_training_units
    with pytest.raises(X.P.ASDStudyError, match="training unit 'x'"):
        check_training_units({"a": None}, {"a": "x"})


def test_means_are_the_mean_over_ids(res):
    m = res.means.set_index(["method", "metric"]).value
    for method in X.PAPER_OF:
        assert m[(method, "auc")] == pytest.approx(res.first[res.first.method == method].auc.mean())


def test_honest_threshold_reads_held_out_normals_only(res, monkeypatch):
    seen = []
    real = X.M.threshold_mean_std
    monkeypatch.setattr(X.M, "threshold_mean_std", lambda s, k=1.0: seen.append(np.asarray(s)) or real(s, k))
    s0 = res.scores[(res.scores.seed == res.params.seeds[0]) & (res.scores.method == "Dense AE")]
    h0 = res.holdout[(res.holdout.seed == res.params.seeds[0]) & (res.holdout.method == "Dense AE")]
    out = X.threshold_decisions(s0, h0)
    assert len(seen) == 1  # one model for all ids, so one threshold
    assert sorted(np.concatenate(seen).tolist()) == sorted(h0.score.tolist())
    assert list(out.index) == [X.HONEST_RULE, X.LEAKY_RULE]
    rates = out.drop(columns="threshold")
    assert ((rates >= 0) & (rates <= 1)).all().all()
    assert out.loc[X.HONEST_RULE, "threshold"] == pytest.approx(real(h0.score, 2))


def test_vae_scores_two_ways_and_says_which(res):
    assert list(res.vae_scores.columns[:2]) == ["AUC (reconstruction MSE)", "AUC (negative ELBO)"]
    assert "paper" in res.vae_verdict


def test_parameter_counts_match_the_paper(res):
    assert (res.arch.parameters.iloc[:2].to_numpy() == res.arch.claimed.iloc[:2].to_numpy()).all()


def test_figures_draw(res):
    s0 = res.scores[res.scores.seed == res.params.seeds[0]]
    assert is_figure(plots.loss_curves(res.history))
    # every trained model is judged by the convergence rule, once
    assert len(res.convergence) == res.history.groupby(["method", "machine", "unit"]).ngroups
    assert set(res.convergence.iloc[:, -1]) <= {"yes", "no"}
    assert is_figure(plots.score_histograms(s0))
    assert is_figure(plots.spectrogram_grid([[o, r, (o - r) ** 2] for _, o, r in res.reconstructions],
                                            [["a", "b", "c"]] * len(res.reconstructions)))
    assert is_figure(plots.scatter_panels(res.latent, "PC 1", "PC 2", panel="id"))
    assert is_figure(plots.seed_dots(res.metrics))


def test_glue_and_discussion(res):
    g = res.glue()
    assert {"ae_mean_auc_vae", "ae_honest_f1", "ae_pooled_auc"} <= set(g)
    assert res.discussion.startswith("On synthetic-dcase2020")
