"""The explain chapter's experiment (paper 004), in process on the smoke profile."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from asdstudy import ASDStudyError
from asdstudy import plots
from asdstudy.experiments import explain as X
from conftest import check_rows, is_figure, smoke_params


@pytest.fixture(scope="module")
def res(smoke_root):
    return X.run(smoke_params(X, smoke_root), progress=False)


def test_rows_are_sound(res):
    check_rows(res.rows, "explain")
    means = res.rows[(res.rows.unit == "mean") & (res.rows.metric == "auc") & res.rows.method.isin(X.NAME.values())]
    assert len(means) == len(res.params.inputs) * len(res.params.machines) and means.ci_low.notna().all()


def test_explanation_accuracy_beside_chance(res):
    e = res.expl
    assert set(e.index) >= {"AST (Mel) + kNN", "DCASE baseline AE"}
    assert e["explanation accuracy"].between(0, 1).all() and e.chance.between(0, 1).all()
    assert (e.ci_low <= e["explanation accuracy"]).all() and (e["explanation accuracy"] <= e.ci_high).all()


def test_an_explanation_counts_only_for_a_detector_above_chance(res):
    """The stated rule: explanation accuracy is evidence only where the detector's mean AUC has
    its CI above 0.5; the mark follows the CI, and the discussion states the rule."""
    e = res.expl
    assert (e["detector AUC low"] <= e["detector mean AUC"]).all() and (e["detector mean AUC"] <= e["detector AUC high"]).all()
    above = e["detector AUC low"] > 0.5
    assert (e.loc[above, "detector above chance"] == "yes").all()
    assert e.loc[~above, "detector above chance"].str.startswith("no").all()
    assert X.EXPLAIN_RULE in res.discussion and res.glue()["xp_explain_rule"] == X.EXPLAIN_RULE


def test_sweep_covers_every_cutoff_once(res):
    s = res.sweep_rows
    assert set(zip(s.kind, s.cutoff)) == {("none", 0)} | {(k, c) for k in ("lowpass", "highpass") for c in res.params.cutoffs}


def test_centroid_figure_is_per_frame(res):
    """Figure 2 is the centroid per frame over time (mean over clips), not one number per clip."""
    cc = res.centroid_curves
    n_clips = res.table[(res.table.split == "train")].groupby("machine").size()
    for m, g in cc.groupby("machine"):
        assert len(g) > 20 and g.frame.tolist() == list(range(len(g)))  # one row per frame
        assert (g.q25_hz <= g.q75_hz).all() and n_clips[m] > 1
    assert set(cc.machine) == set(res.params.machines)
    assert is_figure(plots.lines(cc, x="time_s", y="centroid_hz", series="machine", ncols=1))


def test_explanation_misses_are_split(res):
    e = res.expl
    total = e["explanation accuracy"] + e["top band wrong"] + e["no occlusion flips the decision"]
    assert total.round(9).eq(1).all()
    # no flip, split by why: the two reasons add up to it
    why = e[X.NO_FLIP_RAISED] + e[X.NO_FLIP_OTHER]
    assert (why - e["no occlusion flips the decision"]).abs().max() < 1e-9
    assert "what an occluded band holds" in res.glue()["xp_slime_reading"] and "minimum" in res.glue()["xp_slime_reading"]


def test_other_detectors_train_as_their_papers(res, smoke_root):
    assert X.DETECTOR_UNITS["DCASE baseline AE"] == "machine" and set(X.DETECTOR_UNITS) == set(X.other_detectors(res.params))
    fits = []

    class Count:
        def fit(self, table):
            fits.append(sorted(table["section"].unique()))
            return self

        def score(self, table):
            return table.index.to_numpy(float)

    train, test = res.table[res.table.split == "train"], res.table[res.table.split == "test"]
    fitted, _, _ = X.fit_per_section(Count, train, test, "machine")
    machines = train.machine.nunique()
    assert len(fits) == machines and len({id(d) for d in fitted.values()}) == machines
    fits.clear()
    X.fit_per_section(Count, train, test, "section")
    sections = train.groupby(["machine", "section"]).ngroups
    assert len(fits) == sections
    # several detectors in one pool: each keeps its own unit and its own models
    fits.clear()
    out = X.fit_detectors({"a": Count, "b": Count}, {"a": "machine", "b": "section"}, train, test)
    assert len(fits) == machines + sections
    assert len({id(d) for d in out["a"][0].values()}) == machines
    assert len({id(d) for d in out["b"][0].values()}) == sections
    assert not {id(d) for d in out["a"][0].values()} & {id(d) for d in out["b"][0].values()}
    assert out["a"][1]["score"].tolist() == out["b"][1]["score"].tolist()  # same clips scored, same order
    with pytest.raises(X.P.ASDStudyError, match="training unit 'clip' of b"):
        X.fit_detectors({"a": Count, "b": Count}, {"a": "machine", "b": "clip"}, train, test)


def test_sweep_reuses_table1_model_only_at_the_same_budget(smoke_root):
    assert X.reuses_table1_model(smoke_params(X, smoke_root, epochs=3, sweep_epochs=3))
    assert not X.reuses_table1_model(smoke_params(X, smoke_root, epochs=3, sweep_epochs=2))


def test_figure_units_follow_the_paper_or_say_why_not(res):
    import pandas as pd

    t = pd.DataFrame({"machine": ["fan", "gearbox"], "section": ["00", "01"], "domain": ["source", "target"]})
    got, text = X.view_unit(t, {"machine": "gearbox", "section": "01", "domain": "source"}, ["fan"])
    assert got == {"machine": "gearbox", "section": "01", "domain": "source"} and text.startswith("As in the paper")
    got, text = X.view_unit(t[t.machine == "fan"], {"machine": "gearbox", "section": "01"}, ["fan"])
    assert got == {"machine": "fan", "section": "00"} and "machine gearbox, section 01" in text and "not in this data" in text
    # the synthetic factory has no gearbox: the chapter says which machine it shows instead
    assert "gearbox" in res.figure_units["fig5"] and "not in this data" in res.figure_units["fig5"]
    assert res.figure_units["fig4"].startswith("As in the paper")
    assert set(res.heat.index.get_level_values(0)) <= set(res.params.machines)


def test_mobilenet_rows_say_why_they_are_not_measured(res):
    mb = res.rows[res.rows.method == "MobileNetV2 (baseline)"]
    assert len(mb) == len(res.params.machines) and mb.value.isna().all() and mb.note.str.contains("not re-run").all()


def test_ast_note_says_weights_are_missing(res):
    assert "not available" in res.ast_note and "from scratch" in res.ast_note


def test_nyquist_cutoff_refused(smoke_root):
    with pytest.raises(ASDStudyError, match="Nyquist"):
        smoke_params(X, smoke_root, cutoffs=[4000, 8000])


def test_figures_draw(res):
    c = res.centroids
    assert is_figure(plots.bars(c.centroid_hz, c.across_clips_std_hz))
    assert is_figure(plots.heatmap(res.heat, xlabels=res.heat_bands))
    sw = res.sweep_rows
    base = sw[sw.kind == "none"]
    assert is_figure(plots.lines(sw[sw.kind != "none"], "cutoff", "auc", series="machine", panel="kind",
                                 reference=base.assign(kind="lowpass")))
    assert is_figure(plots.score_histograms(res.similarity, panel="view", bins=10))
    assert is_figure(plots.scatter_panels(res.tsne, "t-SNE 1", "t-SNE 2", panel="view"))
    e = res.expl_fills.rename(columns={"explanation accuracy": "value"}).reset_index(names="detector")
    e["detector"] = e["detector"] + " | " + e["fill"] + " fill"  # as the chapter draws it
    assert e["detector"].is_unique
    fig = plots.interval_dots(e, "detector", marker="chance", reference=None)  # chance is per row: no 0.5 line
    assert is_figure(fig) and not [ln for ln in fig.axes[0].lines if ln.get_linestyle() == "--"]
    assert [ln for ln in plots.interval_dots(e, "detector").axes[0].lines if ln.get_linestyle() == "--"]


def test_filter_directions_are_written_with_their_ci(res):
    d = res.filter_directions
    auc = d[d.metric == "auc_difference"]
    assert set(zip(auc.method, auc.machine)) == {(X.filter_method("mel", k), m) for k in ("lowpass", "highpass")
                                                 for m in res.params.machines}
    assert set(d[d.metric == "accuracy_difference"].method) == {X.ACCURACY_METHOD.format(n) for n in X.FILTER_NAME.values()}
    assert ((d.ci_low <= d.value + 1e-12) & (d.value <= d.ci_high + 1e-12)).all()
    rows = res.rows[res.rows.metric.isin(["auc_difference", "accuracy_difference"])]
    assert rows.ci_low.notna().all() and len(rows) >= len(d)
    assert is_figure(plots.interval_dots(d.assign(f=d.method + d.machine), "f", reference=0, xlim=(-1, 1)))


def _kept(shift):
    """A hand-made sweep: one machine, two sections; the filtered models' scores are the
    unfiltered ones plus ``shift(cutoff)`` times the label (more separation when positive)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 40
    base = pd.DataFrame({"clip": [f"c{i}" for i in range(2 * n)], "machine": "fan", "section": np.repeat([0, 1], n),
                         "domain": "source", "label": np.tile(np.r_[np.zeros(n // 2), np.ones(n // 2)].astype(int), 2)})
    base["score"] = rng.normal(size=2 * n) + base["label"]
    hits = pd.Series(1.0, index=base["clip"].values)
    kept = {("none", 0): (base, hits)}
    for kind in ("lowpass", "highpass"):
        for c in (1000, 3000):
            s = base.assign(score=base["score"] + shift(kind, c) * base["label"])
            kept[(kind, c)] = (s.sample(frac=1, random_state=c), hits * (0.5 if kind == "lowpass" else 1.0))
    return kept


def test_filter_directions_pair_the_same_clips():
    from asdstudy import metrics as M

    p = X.Params(n_boot=200)
    same = X.filter_directions(_kept(lambda k, c: 0.0), p, "mel")  # filtered = unfiltered: exactly 0, CI [0, 0]
    assert (same.loc[same.metric == "auc_difference", ["value", "ci_low", "ci_high"]].abs() < 1e-12).all().all()
    d = X.filter_directions(_kept(lambda k, c: -3.0 if k == "lowpass" else 0.0), p, "mel").set_index(["method", "machine"])
    low = d.loc[(X.filter_method("mel", "lowpass"), "fan")]
    assert low.ci_high < 0 and low.n_normal == 40 and low.n_anomaly == 40
    acc = d.loc[(X.ACCURACY_METHOD.format("low-pass"), "all")]
    assert acc.value == acc.ci_low == acc.ci_high == -0.5  # every clip: 0.5 hit against 1
    # one cutoff helps, one hurts: the mean over cutoffs of the two AUC changes
    k = _kept(lambda kind, c: 2.0 if c == 1000 else -2.0)
    both = X.filter_directions(k, p, "mel").set_index(["method", "machine"]).loc[(X.filter_method("mel", "highpass"), "fan")]
    base, = [v[0] for key, v in k.items() if key == ("none", 0)]
    want = []
    for c in (1000, 3000):
        f = k[("highpass", c)][0].set_index("clip").loc[base["clip"]]
        want.append(sum(M.auc(g.label, f.loc[g["clip"], "score"].to_numpy()) - M.auc(g.label, g.score) for _, g in base.groupby("section")) / 2)
    assert both.value == pytest.approx(sum(want) / 2)


def test_sweep_store_names_everything_the_results_depend_on(res):
    from dataclasses import replace

    p, table = res.params, res.table.head(6)
    base = X.sweep_store(p, table, None, "mel")
    assert X.sweep_store(replace(p, jobs=7), table, None, "mel") == base  # workers change no number
    assert X.sweep_store(replace(p, sweep_epochs=9), table, None, "mel") != base
    assert X.sweep_store(p, table, None, "stft") != base
    assert X.sweep_store(p, table.head(5), None, "mel") != base
    assert X.sweep_store(p, table, "/no/such/weights", "mel") != base


def test_the_chapter_says_what_its_sweep_trained_and_explained(res):
    g = res.glue()
    assert g["xp_sweep_resumed"].startswith("All ") or "read back" in g["xp_sweep_resumed"]
    assert "All 5 detectors" in g["xp_detectors_note"]
    assert f"explains {res.params.slime_clips} test clips" in g["xp_slime_reading"] and "(the paper profile: 20)" in g["xp_slime_reading"]
    assert X.detectors_note(False, res.params).startswith("These recordings carry no ground-truth")
    # a finished chapter removes its stored sweep: only an interrupted run is ever resumed
    weights = X.ast_weights(res.params)[0]
    assert not X.sweep_store(res.params, res.table, weights, res.params.inputs[0]).exists()


def test_the_no_flip_text_says_why_from_the_numbers():
    import pandas as pd

    e = pd.DataFrame({"no occlusion flips the decision": [0.6, 0.4, 0.0], X.NO_FLIP_RAISED: [0.5, 0.1, 0.0],
                      X.NO_FLIP_OTHER: [0.1, 0.3, 0.0]}, index=["AE", "kNN", "clean"])
    t = X.no_flip_text(e)
    assert "scored higher than the clip for AE:" in t and "For kNN the occluded versions mostly did not" in t
    assert "clean" not in t
    assert X.no_flip_text(e.assign(**{"no occlusion flips the decision": 0.0})) == ""


def test_every_explanation_is_scored_under_each_fill(res):
    """The fill table: every explained detector once per occlusion fill; the first fill's rows are
    the explanation table's; the other fills get result rows of their own, named by the fill."""
    ef, e = res.expl_fills, res.expl
    fills = list(res.params.slime_fills)
    assert fills == ["silence", "normal"] and list(ef.columns) == X.FILL_COLUMNS
    assert ef.groupby(level=0).fill.apply(list).map(lambda f: f == fills).all() and set(ef.index) == set(e.index)
    first = ef[ef.fill == fills[0]]
    np.testing.assert_allclose(first["explanation accuracy"].to_numpy(float),
                               e.loc[first.index, "explanation accuracy"].to_numpy(float))
    assert ((ef.ci_low <= ef["explanation accuracy"]) & (ef["explanation accuracy"] <= ef.ci_high)).all()
    rows = res.rows[res.rows.metric == "slime_explanation_accuracy"]
    assert len(rows) == len(ef) and rows.method.str.endswith("[normal fill]").sum() == len(e)
    reading = res.glue()["xp_slime_reading"]
    assert "the clip's minimum" in reading and "training normals" in reading
    assert X.slime_reading(res.params, scored=False).count("training normals") == 0


def test_the_fill_text_says_what_the_fill_changes():
    import pandas as pd

    def table(acc, lo, hi, explained, fill):
        return pd.DataFrame({"fill": fill, "explanation accuracy": acc, "ci_low": lo, "ci_high": hi, "chance": 0.4,
                             "explained clips": explained, "no occlusion flips the decision": 0.0,
                             X.NO_FLIP_RAISED: 0.0}, index=["AE", "LSTM"])

    silence = table([0.1, 0.15], [0.02, 0.05], [0.2, 0.25], [0.4, 0.45], "silence")
    same = pd.concat([silence, table([0.12, 0.14], [0.04, 0.05], [0.22, 0.24], [0.7, 0.75], "normal")])
    t = X.fill_text(same)
    assert "explains 70% to 75% of the anomalous clips per detector (against 40% to 45%)" in t
    assert "For 2 of 2 detectors the two accuracies' CIs overlap" in t and "rises" not in t
    assert "For AE, LSTM the accuracy's CI lies below chance under both fills" in t
    up = pd.concat([silence, table([0.6, 0.14], [0.5, 0.05], [0.7, 0.24], [0.9, 0.75], "normal")])
    t = X.fill_text(up)
    assert "rises with the normal fill, CIs apart, for AE." in t and "For 1 of 2 detectors" in t
    assert "For LSTM the accuracy's CI lies below chance" in t
    assert X.fill_text(silence) == ""  # one fill: nothing to compare


def test_slime_fills_are_checked(smoke_root):
    with pytest.raises(ASDStudyError, match="slime_fills"):
        smoke_params(X, smoke_root, slime_fills=["zeros"])
    with pytest.raises(ASDStudyError, match="slime_fills"):
        smoke_params(X, smoke_root, slime_fills=["normal", "normal"])
    with pytest.raises(ASDStudyError, match="'slime_fills' is 'normal'.*must be list"):
        smoke_params(X, smoke_root, slime_fills="normal")


def test_slime_explains_sections_side_by_side_as_it_would_one_after_the_other():
    """With jobs > 1 the sections are explained in worker processes; every number is the one
    the serial run gives, in the same order."""
    import dataclasses

    class Distance:  # a detector of distance from a flat normal spectrum
        def score_spectrograms(self, specs):
            return np.array([float(np.abs(s.mean(axis=0) - 1.0).sum()) for s in specs])

    rng = np.random.default_rng(0)
    tasks = [(Distance(), [rng.random((20, 16)) * (1 + k) for _ in range(3)], 6.0 + k,
              {"silence": None, "normal": np.ones(16)}) for k in range(3)]
    p = X.Params.from_profile("explain", "smoke")
    assert p.jobs > 1
    side_by_side = X._explain_all(tasks, p)
    in_turn = X._explain_all(tasks, dataclasses.replace(p, jobs=1))
    assert len(side_by_side) == 3
    for a, b in zip(side_by_side, in_turn):
        assert set(a) == {"silence", "normal"} and all(a[f].fill == f for f in a)
        for f in a:
            np.testing.assert_array_equal(a[f].importance, b[f].importance)
            np.testing.assert_array_equal(a[f].flipped, b[f].flipped)
    assert any(np.abs(e[f].importance).sum() > 0 for e in side_by_side for f in e)  # something was explained
