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


def test_pooled_row_says_it_mixes_per_id_models(res):
    pooled = res.rows[(res.rows.unit == "all") & (res.rows.metric == "auc")]
    assert len(pooled) == 1 and "separately trained" in pooled.note.iloc[0]


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
    assert len(seen) == len(res.units)
    assert sorted(np.concatenate(seen).tolist()) == sorted(h0.score.tolist())
    assert list(out.index) == [X.HONEST_RULE, X.LEAKY_RULE]
    assert ((out >= 0) & (out <= 1)).all().all()


def test_vae_scores_two_ways_and_says_which(res):
    assert list(res.vae_scores.columns[:2]) == ["AUC (reconstruction MSE)", "AUC (negative ELBO)"]
    assert "paper" in res.vae_verdict


def test_parameter_counts_match_the_paper(res):
    assert (res.arch.parameters.iloc[:2].to_numpy() == res.arch.claimed.iloc[:2].to_numpy()).all()


def test_figures_draw(res):
    s0 = res.scores[res.scores.seed == res.params.seeds[0]]
    assert is_figure(plots.loss_curves(res.history))
    assert is_figure(plots.score_histograms(s0))
    assert is_figure(plots.spectrogram_grid([[o, r, (o - r) ** 2] for _, o, r in res.reconstructions],
                                            [["a", "b", "c"]] * len(res.reconstructions)))
    assert is_figure(plots.scatter_panels(res.latent, "PC 1", "PC 2", panel="id"))
    assert is_figure(plots.seed_dots(res.metrics))


def test_glue_and_discussion(res):
    g = res.glue()
    assert {"ae_mean_auc_vae", "ae_honest_f1", "ae_pooled_auc"} <= set(g)
    assert res.discussion.startswith("On synthetic-dcase2020")
