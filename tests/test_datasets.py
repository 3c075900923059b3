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


def _copy_set(tiny_synth, tmp_path):
    import shutil

    root = tmp_path / "set"
    shutil.copytree(tiny_synth / "dcase2020", root, ignore=shutil.ignore_patterns("ground_truth", ".asdstudy"))
    return root


def test_a_stray_file_of_another_layout_does_not_change_the_detected_layout(tiny_synth, tmp_path):
    import shutil

    root = _copy_set(tiny_synth, tmp_path)
    n = len(clip_table(root))
    one = next(root.rglob("*.wav"))
    shutil.copy(one, root / "section_00_source_train_normal_0000_strength_1.wav")
    assert detect_layout(root) == "dcase2020"
    with pytest.warns(UserWarning, match=r"1 WAV file\(s\) do not fit the dcase2020 layout and were skipped \(e.g. section_00"):
        df = clip_table(root)
    assert len(df) == n and df.attrs["skipped"] == [str(root / "section_00_source_train_normal_0000_strength_1.wav")]


def test_a_folder_mixing_layouts_is_refused_unless_a_layout_is_given(tiny_synth, tmp_path):
    import shutil

    root = _copy_set(tiny_synth, tmp_path)
    n = len(clip_table(root))
    wavs = sorted(root.rglob("*.wav"))
    (root / "other" / "fan" / "train").mkdir(parents=True)
    for i, w in enumerate(wavs[: n // 2]):
        shutil.copy(w, root / "other/fan/train" / f"section_00_source_train_normal_{i:04d}_a_1.wav")
    with pytest.raises(DatasetError, match=r"mixes dataset layouts \(\d+ dcase2020, \d+ dcase2021.*--layout dcase2020"):
        clip_table(root)
    with pytest.warns(UserWarning, match="skipped"):
        assert len(clip_table(root, layout="dcase2020")) == n


def test_a_half_unpacked_set_lists_with_a_warning(tiny_synth, tmp_path):
    root = _copy_set(tiny_synth, tmp_path)
    (root / ".unpack" / "dev_data_fan.zip").mkdir(parents=True)
    with pytest.warns(UserWarning, match=r"was being unpacked here when it stopped.*download. again"):
        clip_table(root)


def test_the_mimii_message_shows_its_pattern_literally(tmp_path):
    (tmp_path / "m").mkdir()
    with pytest.raises(DatasetError) as e:
        read_mimii(tmp_path / "m")
    assert "{normal,abnormal}" in str(e.value) and "{{" not in str(e.value)


def test_data_check_lists_every_bad_clip_at_once(tiny_synth, tmp_path):
    import numpy as np
    import soundfile as sf
    from click.testing import CliRunner

    from asdstudy.cli import main
    from asdstudy.datasets.check import check_folder

    root = _copy_set(tiny_synth, tmp_path)
    wavs = sorted((root / "dev_data/valve/train").glob("*.wav"))
    y, sr = sf.read(wavs[0])
    sf.write(wavs[0], np.zeros_like(y), sr, subtype="PCM_16")                     # silent
    raw = wavs[1].read_bytes()
    wavs[1].write_bytes(raw[: 44 + (len(raw) - 44) // 3])                          # truncated
    wavs[2].write_bytes(b"RIFF garbage")                                            # unreadable
    sf.write(wavs[3], y[: sr // 5], sr, subtype="PCM_16")                           # 0.2 s
    slider = sorted((root / "dev_data/slider/train").glob("*.wav"))
    sf.write(slider[0], y[: len(y) // 2], 8000, subtype="PCM_16")                   # 8 kHz
    sf.write(slider[1], np.stack([y] * 8, axis=1), sr, subtype="PCM_16")          # 8 channels
    bad = check_folder(root, n_jobs=1, progress=False)
    problems = dict(zip([p.split("/")[-3] + "/" + p.split("/")[-1] for p in bad.path], bad.problem))
    assert len(bad) == 6, problems
    assert "silent" in problems[f"valve/{wavs[0].name}"]
    assert "truncated" in problems[f"valve/{wavs[1].name}"]
    assert "unreadable" in problems[f"valve/{wavs[2].name}"]
    assert "too short (0.20 s" in problems[f"valve/{wavs[3].name}"]
    assert "8000 Hz (the dataset's rate is 16000 Hz)" in problems[f"slider/{slider[0].name}"]
    assert "8 channel(s) (dcase2020 clips have 1)" in problems[f"slider/{slider[1].name}"]
    assert bad.attrs["n_clips"] == len(list(root.rglob("*.wav")))
    r = CliRunner().invoke(main, ["data", "check", str(root), "-j", "1"])
    assert r.exit_code == 1 and "6 of" in r.output and r.output.count(": ") >= 6


def test_data_check_passes_a_good_set(tiny_synth, tmp_path):
    from click.testing import CliRunner

    from asdstudy.cli import main

    root = _copy_set(tiny_synth, tmp_path)
    r = CliRunner().invoke(main, ["data", "check", str(root), "-j", "1"])
    assert r.exit_code == 0 and "are fine (dcase2020 layout)" in r.output


def test_data_check_on_the_real_sample_clips(shared_data):
    from asdstudy.datasets.check import check_folder

    assert check_folder(shared_data / "dcase2020_task2_sample", n_jobs=1, progress=False).empty
    assert check_folder(shared_data / "mimii_sample", n_jobs=1, progress=False).empty  # 8 channels expected
