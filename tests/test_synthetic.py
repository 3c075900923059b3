import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from asdstudy.datasets import clip_table
from asdstudy.datasets.synthetic import (ANOMALIES, IDS, MACHINES, ClipSpec, Sizes, SyntheticDataError,
                                         generate, ground_truth, plan, synthesize)

from conftest import TINY


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*.wav")):
        h.update(p.relative_to(folder).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def test_layout_naming_and_format(tiny_synth):
    root = tiny_synth / "dcase2020" / "dev_data" / "slider"
    train = sorted((root / "train").glob("*.wav"))
    test = sorted((root / "test").glob("*.wav"))
    assert len(train) == 2 * TINY.n_train and len(test) == 2 * (TINY.n_test_normal + TINY.n_test_anomaly)
    assert train[0].name == "normal_id_00_00000000.wav"
    assert {p.name.split("_id_")[0] for p in test} == {"normal", "anomaly"}
    i = sf.info(str(test[0]))
    assert (i.samplerate, i.channels, i.subtype, i.frames) == (16000, 1, "PCM_16", 160000)


def test_same_seed_same_bytes_regardless_of_jobs(tmp_path):
    sizes = Sizes(n_train=2, n_test_normal=1, n_test_anomaly=2, max_ids=1)
    a = generate(tmp_path / "a", sizes=sizes, machines=["fan"], n_jobs=1, progress=False)
    b = generate(tmp_path / "b", sizes=sizes, machines=["fan"], n_jobs=2, progress=False)
    c = generate(tmp_path / "c", sizes=sizes, machines=["fan"], seed=1, progress=False)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_ids_are_different_instances_and_anomalies_differ():
    y0, _ = synthesize(ClipSpec("dcase2020", "slider", "00", "train", 0, 0, 0))
    y2, _ = synthesize(ClipSpec("dcase2020", "slider", "02", "train", 0, 0, 0))
    assert not np.allclose(y0, y2)
    ya, truth = synthesize(ClipSpec("dcase2020", "slider", "00", "test", 1, 0, 0))
    assert truth["anomaly_kind"] in {k.name for k in ANOMALIES["slider"]}
    assert 0 <= truth["severity"] <= 1 and truth["band_lo"] < truth["band_hi"]
    assert np.max(np.abs(ya)) <= 0.9 + 1e-9


@pytest.mark.parametrize("machine", MACHINES)
def test_every_machine_and_anomaly_kind_renders(machine):
    seen = set()
    for i in range(40):
        y, t = synthesize(ClipSpec("dcase2020", machine, IDS[machine][0], "test", 1, i, 0))
        assert y.shape == (160000,) and np.all(np.isfinite(y)) and np.std(y) > 1e-3
        seen.add(t["anomaly_kind"])
        if len(seen) == len(ANOMALIES[machine]):
            break
    assert seen == {k.name for k in ANOMALIES[machine]}
    assert len(ANOMALIES[machine]) >= 2


def test_ground_truth_matches_files(tiny_synth):
    gt = ground_truth(tiny_synth, "dcase2020")
    assert set(gt.machine) == {"slider", "valve"}
    anomalies = gt[gt.label == 1]
    assert anomalies.anomaly_kind.notna().all() and (anomalies.band_hi > anomalies.band_lo).all()
    assert gt[gt.label == 0].anomaly_kind.isna().all()
    # one SNR per machine id (+-1 dB jitter), ids at different SNRs
    per_id = gt.groupby(["machine", "unit"]).snr_db.agg(["min", "max", "mean"])
    assert (per_id["max"] - per_id["min"] <= 2.0).all()
    assert per_id["mean"].round().isin([6.0, 0.0, -6.0]).all()
    assert per_id.loc["slider", "mean"].round().nunique() == 2
    table = clip_table(tiny_synth / "dcase2020")
    assert table.dataset.iloc[0] == "synthetic-dcase2020"
    assert table.anomaly_kind.notna().sum() == len(anomalies)


def test_dcase2021_variant_sections_domains(tmp_path):
    sizes = Sizes(n_train=3, n_test_normal=1, n_test_anomaly=1, n_target_train=1, max_ids=2)
    out = generate(tmp_path, sizes=sizes, machines=["pump"], variant="dcase2021", progress=False)
    names = sorted(p.name for p in (out / "dev_data/pump/train").glob("*.wav"))
    assert names[0].startswith("section_00_source_train_normal_0000_speed_100")
    assert any("_target_train_" in n for n in names)
    table = clip_table(out)
    assert set(table.section) == {"00", "01"} and set(table.domain) == {"source", "target"}
    tgt = table[table.domain == "target"]
    speeds = {json.loads(a)["speed"] for a in tgt.attributes}
    assert speeds and "100" not in speeds
    assert (out / "dev_data/pump/target_test").is_dir()


def test_labelled_variant_has_anomalies_in_train():
    specs = plan("labelled", "slider", Sizes(n_labelled=200), 0)
    df = pd.DataFrame([{"split": s.split, "label": s.label, "rel": s.relpath} for s in specs])
    assert len(df) == 200 and df.rel.is_unique
    assert abs(df.label.mean() - 0.265) < 0.01
    assert df[df.split == "train"].label.sum() > 0 and (df.split == "test").sum() == 40


def test_rerun_skips_and_refuses_other_params(tmp_path, capsys):
    sizes = Sizes(n_train=1, n_test_normal=1, n_test_anomaly=1, max_ids=1)
    generate(tmp_path, sizes=sizes, machines=["valve"], progress=False)
    generate(tmp_path, sizes=sizes, machines=["valve"], progress=True)
    assert "already generated" in capsys.readouterr().out
    with pytest.raises(SyntheticDataError, match="other parameters.*--force"):
        generate(tmp_path, sizes=sizes, machines=["valve"], seed=5, progress=False)
    generate(tmp_path, sizes=sizes, machines=["valve"], seed=5, force=True, progress=False)


def test_foreign_folder_is_not_overwritten(tmp_path):
    target = tmp_path / "dcase2020/dev_data/fan"
    target.mkdir(parents=True)
    (target / "precious.wav").write_bytes(b"x")
    with pytest.raises(SyntheticDataError, match="no generator manifest"):
        generate(tmp_path, sizes=Sizes(n_train=1, n_test_normal=1, n_test_anomaly=1, max_ids=1),
                 machines=["fan"], progress=False)
    assert (target / "precious.wav").exists()


def test_interrupted_generation_leaves_nothing_complete(tmp_path, monkeypatch):
    import asdstudy.datasets.synthetic as syn

    calls = {"n": 0}
    real = syn._write_one

    def flaky(spec, tmp_root, snrs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(spec, tmp_root, snrs)

    monkeypatch.setattr(syn, "_write_one", flaky)
    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path, sizes=Sizes(n_train=3, n_test_normal=1, n_test_anomaly=1, max_ids=1),
                 machines=["fan"], progress=False)
    assert not (tmp_path / "dcase2020/dev_data/fan").exists()
    assert not syn.is_generated(tmp_path, "dcase2020", "fan")


def test_unknown_inputs():
    with pytest.raises(SyntheticDataError, match="unknown machine type 'drill'"):
        plan("dcase2020", "drill", Sizes(), 0)
    with pytest.raises(SyntheticDataError, match="unknown variant"):
        plan("dcase2030", "fan", Sizes(), 0)
    with pytest.raises(SyntheticDataError, match="unknown profile"):
        generate("/tmp/never", profile="huge", progress=False)


def test_default_profile_makes_the_dcase2021_variant_at_the_size_explain_reads():
    from collections import Counter

    from asdstudy.datasets.synthetic import PROFILE_SIZES, plan

    sizes = PROFILE_SIZES["default"]
    c = Counter((s.unit, s.domain, s.split, s.label) for s in plan("dcase2021", "fan", sizes.of("dcase2021"), 0))
    assert c[("00", "source", "train", 0)] == 40 and c[("00", "target", "train", 0)] == sizes.n_target_train
    assert c[("01", "target", "test", 0)] == 20 and c[("01", "target", "test", 1)] == 20
    d = Counter((s.unit, s.split, s.label) for s in plan("dcase2020", "fan", sizes.of("dcase2020"), 0))
    assert d[("00", "train", 0)] == 100 and d[("00", "test", 1)] == 50  # the twin's own size
    assert sizes.of("labelled") is sizes
    lab = Counter(s.split for s in plan("labelled", "fan", sizes.of("labelled"), 0))
    assert lab["train"] + lab["test"] == sizes.n_labelled == 200


def test_a_set_of_the_profile_is_regenerated_when_the_profiles_sizes_change(tmp_path, monkeypatch):
    from asdstudy.datasets import synthetic as S

    small = Sizes(n_train=2, n_test_normal=1, n_test_anomaly=1, n_target_train=1, n_labelled=6, max_ids=1)
    monkeypatch.setitem(S.PROFILE_SIZES, "smoke", small)
    S.generate(tmp_path, profile="smoke", machines=["valve"], progress=False)
    assert len(list((tmp_path / "dcase2020" / "dev_data" / "valve").rglob("*.wav"))) == 4
    monkeypatch.setitem(S.PROFILE_SIZES, "smoke", Sizes(n_train=3, n_test_normal=1, n_test_anomaly=1, max_ids=1))
    S.generate(tmp_path, profile="smoke", machines=["valve"], progress=False)  # stale: regenerated, no error
    assert len(list((tmp_path / "dcase2020" / "dev_data" / "valve").rglob("*.wav"))) == 5
    with pytest.raises(SyntheticDataError, match="generated with other parameters"):  # an explicit request is kept
        S.generate(tmp_path, profile="smoke", machines=["valve"], progress=False, sizes=small)
