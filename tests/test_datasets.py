import json

import pandas as pd
import pytest

from asdstudy.datasets import (COLUMNS, DatasetError, clip_table, dcase_like_split, detect_layout,
                               read_dcase2020, read_dcase2021, read_mimii)
from asdstudy.datasets.dcase import parse_attributes


def test_dcase2020_reader_on_real_sample(shared_data):
    df = read_dcase2020(shared_data / "dcase2020_task2_sample")
    assert list(df.columns) == list(COLUMNS)
    assert len(df) == 36 and set(df.machine) == {"fan", "pump", "slider", "valve", "ToyCar", "ToyConveyor"}
    assert (df.groupby("machine").label.sum() == 3).all()
    row = df[df.path.str.endswith("ToyCar/test/anomaly_id_04_00000005.wav")].iloc[0]
    assert (row.id, row.split, row.label, json.loads(row.attributes)["subset"]) == ("04", "test", 1, "development")
    assert detect_layout(shared_data / "dcase2020_task2_sample") == "dcase2020"


def test_mimii_reader_on_real_sample(shared_data):
    root = shared_data / "mimii_sample"
    df = read_mimii(root)
    assert len(df) == 8 and set(df.id) == {"00", "02", "04", "06"}
    assert df.label.sum() == 4 and set(df.split) == {"all"}
    assert {json.loads(a)["snr_db"] for a in df.attributes} == {0}
    assert detect_layout(root) == "mimii"
    split = dcase_like_split(df)
    assert set(split.split) == {"test"}  # one normal + one anomaly per id: both go to test


def test_dcase2021_names(tmp_path):
    files = [
        "fan/train/section_00_source_train_normal_0000_strength_1_ambient.wav",
        "fan/target_test/section_01_target_test_anomaly_0003_strength_3_ambient.wav",
        "ToyCar/train/section_02_source_train_normal_0001_A1Spd28VMic1.wav",
        "gearbox/test/section_03_source_test_0004.wav",  # evaluation: no label
        "slider/test/section_00_target_test_anomaly_0003_vel_8_ac_0.05.wav",
    ]
    for f in files:
        p = tmp_path / f
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    df = read_dcase2021(tmp_path)
    assert len(df) == 5
    r = df[df.machine == "fan"].set_index("split")
    assert r.loc["train", "section"] == "00" and r.loc["train", "label"] == 0
    assert r.loc["test", "domain"] == "target" and r.loc["test", "label"] == 1
    assert json.loads(r.loc["test", "attributes"]) == {"strength": "3", "ambient": True}
    assert json.loads(df[df.machine == "ToyCar"].attributes.iloc[0]) == {"raw": "A1Spd28VMic1"}
    assert pd.isna(df[df.machine == "gearbox"].label.iloc[0])
    assert parse_attributes("vel_8_ac_0.05") == {"vel": "8", "ac": "0.05"}


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(DatasetError, match="nowhere: dataset folder not found.*asdstudy data"):
        clip_table(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no audio clips found"):
        clip_table(tmp_path / "empty")
    with pytest.raises(DatasetError, match="no DCASE 2020 clips"):
        read_dcase2020(tmp_path / "empty")
    with pytest.raises(DatasetError, match="no MIMII clips"):
        read_mimii(tmp_path / "empty")
    with pytest.raises(DatasetError, match="unknown layout"):
        clip_table(tmp_path / "empty", layout="esc50")


def test_machine_filter(tiny_synth):
    df = clip_table(tiny_synth / "dcase2020", machines=["valve"])
    assert set(df.machine) == {"valve"}
    with pytest.raises(DatasetError, match="no clips for machine type\\(s\\) fan"):
        clip_table(tiny_synth / "dcase2020", machines=["fan"])


def test_dcase2020_additional_training_and_evaluation_names(tmp_path):
    for f in ("eval_data/fan/train/normal_id_01_00000000.wav", "eval_data/fan/test/id_01_00000003.wav",
              "dev_data/fan/test/anomaly_id_00_00000000.wav"):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_bytes(b"")
    df = read_dcase2020(tmp_path).set_index("split")
    subsets = {json.loads(a)["subset"] for a in df.attributes}
    assert subsets == {"additional_training", "evaluation", "development"}
    ev = df[df.attributes.str.contains('"evaluation"')].iloc[0]
    assert pd.isna(ev.label) and ev.id == "01"
