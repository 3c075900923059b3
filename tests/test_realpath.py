"""The paper profile's real-data path on a one-machine real-layout folder (built from the shared
real sample clips): chapters take their machine types from the clip table and name what is
missing. Too few clips for any accuracy claim; this checks that the path executes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from asdstudy import ASDStudyError, runner
from asdstudy.datasets import DatasetError
from conftest import repo_copy

ROOT = Path(runner.__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def slider_only(shared_data, tmp_path_factory) -> Path:
    """dev_data/slider/{train,test}: 75 real training normals and 6 real test clips of id 00."""
    root = tmp_path_factory.mktemp("real-slider")
    shutil.copytree(shared_data / "dcase2020_slider_train/dev_data/slider/train", root / "dev_data/slider/train")
    shutil.copytree(shared_data / "dcase2020_task2_sample/dev_data/slider/test", root / "dev_data/slider/test")
    return root


def test_run_data_with_the_paper_profile_on_a_one_machine_real_folder(slider_only, tmp_path, monkeypatch):
    repo_copy(tmp_path, monkeypatch)
    out = runner.run_chapter("data", "paper", {"data_root": str(slider_only), "jobs": 1}, progress=False)
    assert out == tmp_path / "book/_profiles/paper/data.ipynb"
    import pandas as pd

    rows = pd.read_csv(tmp_path / "results/paper/data.csv", dtype={"unit": str})
    assert set(rows["machine"].dropna()) == {"slider"} and (rows["dataset"] == "dcase2020").all()


def test_the_gan_chapter_takes_its_machine_types_from_the_clip_table(slider_only):
    from asdstudy.experiments import gans

    p = gans.Params.from_profile("gans", "paper", data_root=str(slider_only))
    assert p.machine_list == ["slider"]
    assert len(gans.Params.from_profile("gans", "default").machine_list) == 6  # synthetic: all six


def test_missing_machine_types_and_ids_are_named(slider_only):
    from asdstudy.experiments import autoencoders, ensemble
    from asdstudy.experiments import protocol as P

    p = autoencoders.Params.from_profile("autoencoders", "paper", data_root=str(slider_only))
    with pytest.raises(ASDStudyError, match=r"asks for slider id\(s\) 00, 02, 04.*no clips of id\(s\) 02, 04 \(found: 00\).*-p ids"):
        P.load_data(p, ["slider"], ids=p.ids)
    e = ensemble.Params.from_profile("ensemble", "paper", data_root=str(slider_only))
    with pytest.raises(DatasetError, match=r"no clips for machine type\(s\) ToyCar; found slider.*-p machines"):
        P.load_data(e, e.machines, variant="labelled")
    e = ensemble.Params.from_profile("ensemble", "paper", data_root=str(slider_only), machines=["slider"])
    with pytest.raises(DatasetError, match=r"need 206 anomalous and 572 normal.*found 3 and 78.*622 development"):
        P.load_data(e, e.machines, variant="labelled")


def test_the_paper_profile_refuses_the_synthetic_factory_and_an_implicit_root(tiny_synth, tmp_path, monkeypatch):
    from asdstudy.experiments import autoencoders
    from asdstudy.experiments import protocol as P

    monkeypatch.delenv("ASDSTUDY_DATA", raising=False)
    p = autoencoders.Params.from_profile("autoencoders", "paper")
    with pytest.raises(ASDStudyError, match=r"paper profile reads the real datasets: give their folder with `-p data_root DIR`"):
        P.load_data(p, ["slider"])
    p = autoencoders.Params.from_profile("autoencoders", "paper", data_root=str(tiny_synth))
    with pytest.raises(ASDStudyError, match=r"holds the synthetic factory's clips .*ground_truth"):
        P.load_data(p, ["slider"])
