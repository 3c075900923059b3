"""The twin's calibration: generator parts and levels, the fast re-mixer, the level search."""

import numpy as np
import pytest

from asdstudy import calibration as C
from asdstudy.datasets import clip_table
from asdstudy.datasets import synthetic as syn
from asdstudy.features.logmel import LogMelParams, logmel

from conftest import TINY


def _anomalous_specs(machine="valve", n=3):
    return [s for s in syn.plan("dcase2020", machine, TINY, 0) if s.split == "test" and s.label == 1][:n]


def test_default_levels_are_the_factory_first_calibration():
    """Levels() keeps the former rule: every kind's range moved up 3 dB, severity mapped linearly."""
    k = syn.ANOMALIES["valve"][0]
    for sev in (0.0, 0.3, 1.0):
        assert syn.anomaly_level_db("gearbox", k, sev, syn.Levels()) == pytest.approx(3.0 + k.level_db[0] + sev * (k.level_db[1] - k.level_db[0]))
    # a narrower width keeps the middle and shrinks the range about it; the offset moves it
    mid = syn.anomaly_level_db("valve", k, 0.5, syn.Levels(-7.0, 0.25))
    assert mid == pytest.approx(-7.0 + sum(k.level_db) / 2)
    span = syn.anomaly_level_db("valve", k, 1.0, syn.Levels(-7.0, 0.25)) - syn.anomaly_level_db("valve", k, 0.0, syn.Levels(-7.0, 0.25))
    assert span == pytest.approx(0.25 * (k.level_db[1] - k.level_db[0]))


def test_synthesize_is_compose_of_parts_and_records_the_level():
    spec = _anomalous_specs(n=1)[0]
    y, truth = syn.synthesize(spec)
    parts = syn.clip_parts(spec)
    z, level = syn.compose(parts)
    assert np.array_equal(y, z) and truth["level_db"] == level
    assert truth["level_db"] == pytest.approx(syn.anomaly_level_db("valve", parts["kind"], truth["severity"]))
    # a louder fault changes only the anomalous clip, never the parts' draws
    louder, level2 = syn.compose(parts, syn.Levels(20.0, 1.0))
    assert level2 > level and not np.array_equal(louder, y)
    normal = next(s for s in syn.plan("dcase2020", "valve", TINY, 0) if s.label == 0)
    n_parts = syn.clip_parts(normal)
    assert n_parts["anom"] is None and np.isnan(syn.compose(n_parts)[1])
    assert np.array_equal(syn.compose(n_parts, syn.Levels(20.0, 0.1))[0], syn.synthesize(normal)[0])


@pytest.mark.parametrize("levels", [syn.Levels(), syn.Levels(-12.0, 0.2), syn.Levels(25.0, 0.5)])
def test_remixer_equals_logmel_of_the_composed_clip(levels):
    """The linear-STFT shortcut gives the log-mel of the clip compose() makes (peak limit included)."""
    parts = [syn.clip_parts(s) for s in _anomalous_specs(n=3)]
    params = LogMelParams(n_mels=64)
    fast = C.Remixer(parts, params).spectrograms(levels)
    for f, p in zip(fast, parts):
        ref = logmel(syn.compose(p, levels)[0].astype(np.float32), params)
        assert f.shape == ref.shape and np.abs(f - ref).max() < 1e-3


@pytest.fixture(scope="module")
def twin(tiny_synth):
    table = clip_table(tiny_synth / "dcase2020", layout="dcase2020")
    table = table[table["machine"] == "valve"]
    return table, C.baseline_on_twin(table, epochs=2, n_boot=20, converge=False)


def test_level_metrics_follow_the_levels(twin):
    table, run = twin
    det = next(iter(run["detectors"].values()))
    specs = C._anomaly_specs(table, "valve", TINY, 0)
    rem = C.Remixer([syn.clip_parts(s) for s in specs], det.input_params)
    normals = run["scores"][run["scores"]["label"] == 0]
    # buried (-60 dB) the anomalous clips are other normal clips; dominant (+40 dB) they are the
    # fault's sound (which a 2-epoch model need not score higher: the search reports, not assumes)
    scores = [C.level_metrics(det, rem, [s.unit for s in specs], normals, syn.Levels(o, 0.3)) for o in (-60, 40)]
    assert scores[0] != scores[1]
    # at the default levels the re-mix scores what the written files score
    base = C.level_metrics(det, rem, [s.unit for s in specs], normals, syn.Levels())
    assert base["auc"] == pytest.approx(run["means"].query("metric == 'auc'")["value"].iloc[0], abs=1e-9)


def test_search_returns_one_setting_per_type_and_its_distance(twin):
    table, run = twin
    found = C.search_levels(table, run, TINY, widths=(0.3, 1.0), steps=3)
    assert list(found.index) == ["valve"]
    r = found.loc["valve"]
    assert r["width"] in (0.3, 1.0) and C.OFFSET_RANGE[0] <= r["offset_db"] <= C.OFFSET_RANGE[1]
    assert r["worst"] == pytest.approx(max(abs(r["auc"] - r["published AUC"]), abs(r["pauc"] - r["published pAUC"])))
    assert r["published AUC"] == pytest.approx(0.665, abs=1e-3)


def test_search_refuses_a_set_the_generator_does_not_rebuild(twin):
    from dataclasses import replace

    from asdstudy import ASDStudyError

    table, run = twin
    with pytest.raises(ASDStudyError, match="same seed and sizes"):  # more clips than the plan has
        C._anomaly_specs(table, "valve", replace(TINY, n_test_anomaly=1), 0)
    with pytest.raises(ASDStudyError, match="another seed"):  # the files were made with seed 0
        C.search_levels(table, run, TINY, seed=5, widths=(1.0,), steps=1)


def test_levels_table_names_where_each_setting_comes_from():
    from asdstudy.experiments.data import levels_table

    t = levels_table(["valve", "gearbox"])
    assert t.loc["valve", "set by"] == "calibrate.py --search"
    assert t.loc["valve", "level offset (dB)"] == syn.LEVELS["valve"].offset_db
    assert t.loc["gearbox", "set by"] == "factory default" and t.loc["gearbox", "level width"] == 1.0
    # every DCASE 2020 type the baseline has a published figure for is calibrated
    assert set(syn.LEVELS) == set(C.published().index)


def test_search_over_several_twins_matches_their_mean(twin):
    """The same twin given twice: every mean equals the single-twin value, and the row says 2 seeds."""
    table, run = twin
    one = C.search_levels(table, run, TINY, widths=(1.0,), steps=2, nudges=())
    two = C.search_levels(table, run, TINY, widths=(1.0,), steps=2, nudges=(), more=[(table, run, 0)])
    assert two.loc["valve", "seeds"] == 2 and one.loc["valve", "seeds"] == 1
    for col in ("offset_db", "auc", "pauc", "worst"):
        assert two.loc["valve", col] == pytest.approx(one.loc["valve", col])
