"""The paper profile proven on real-layout replicas: `asdstudy preflight` and the replica builder."""

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asdstudy import ASDStudyError
from asdstudy import preflight as PF
from asdstudy.datasets import clip_table
from asdstudy.datasets.replica import DCASE2020_ADDITIONAL, DCASE2021_MACHINES, build_replica


@pytest.fixture(scope="session")
def replica(tmp_path_factory) -> Path:
    """Every dataset the paper profile reads, in miniature (real sample clips where CI has them)."""
    shared = os.environ.get("ASDSTUDY_SHARED_DATA")
    # 4 training clips per unit: the fewest with held-out normals for the threshold rules
    # (preflight.MIN_CLIPS), with or without the real sample clips
    return build_replica(tmp_path_factory.mktemp("replica"), shared=shared if shared and Path(shared).is_dir() else None,
                         n_train=4, n_test=2, jobs=2)


def test_replica_has_the_real_layouts(replica):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # each reader skips the other dataset's files, and says so
        d20 = clip_table(replica, layout="dcase2020")
        d21 = clip_table(replica, layout="dcase2021")
    # DCASE 2020: development ids with both splits, additional-training ids with training clips only
    for m, extra in DCASE2020_ADDITIONAL.items():
        t = d20[d20.machine == m]
        assert set(extra) <= set(t.id) and t[t.id.isin(extra)].split.eq("train").all()
        assert {"train", "test"} <= set(t[~t.id.isin(extra)].split)
    assert (replica / "dcase2020" / "eval_data" / "fan" / "train").is_dir()
    # DCASE 2021: seven machine types, development sections 00-02 with both domains, 03-05 train only
    assert set(d21.machine) == set(DCASE2021_MACHINES)
    assert set(d21.section) == {f"{s:02d}" for s in range(6)}
    assert set(d21[d21.section.isin(["03", "04", "05"])].split) == {"train"}
    assert set(d21[d21.split == "test"].domain) == {"source", "target"}
    # no ground truth: it looks like downloaded data
    assert not list(replica.rglob("ground_truth*"))
    if os.environ.get("ASDSTUDY_SHARED_DATA"):
        info = sf.info(next((replica / "mimii").rglob("*.wav")))
        assert info.channels == 8 and info.samplerate == 16000


def test_cut_parameters_keep_every_branch():
    from asdstudy.profiles import parameters

    for chapter in PF.CHAPTERS:
        cut = PF.cut_parameters(chapter, "/data", 3, 2)
        full = parameters(chapter, "paper")
        assert cut["profile"] == "paper" and cut["max_clips"] == max(3, PF.MIN_CLIPS.get(chapter, 0))
        assert cut["n_boot"] == 20
        for key in ("machines", "machine", "ids", "kinds", "settings", "cutoffs", "inputs", "both_units"):
            if key in full:
                assert cut[key] == full[key], (chapter, key)
    assert PF.cut_parameters("explain", "/data", 3, 2)["cutoffs"] == list(range(400, 8000, 400))


def test_work_counts_the_planned_clip_passes():
    import pandas as pd

    table = pd.DataFrame({"split": ["train"] * 10 + ["test"] * 4, "machine": "slider"})
    q = {"epochs": 100, "seeds": [0, 1, 2], "both_units": ["Dense AE"]}
    assert PF.work("autoencoders", q, table) == 4 * 3 * 100 * 10 + 4
    # paper 004 on real data: the AST, the baseline beside it, SLIME on the AST only
    x = {"inputs": ["mel"], "epochs": 2, "cutoffs": [1000], "sweep_epochs": 2, "slime_clips": 0, "n_masks": 10,
         "detector_epochs": 3}
    assert PF.work("explain", {**x, "profile": "paper"}, table) == (2 + 2 * 2) * 10 + 1 * 3 * 10 + 1 * 10 * 4
    assert PF.work("explain", {**x, "profile": "default"}, table) == (2 + 2 * 2) * 10 + 5 * 3 * 10 + 6 * 10 * 4
    # every explanation is repeated per occlusion fill
    assert PF.work("explain", {**x, "profile": "default", "slime_fills": ["silence", "normal"]}, table) == \
        (2 + 2 * 2) * 10 + 5 * 3 * 10 + 6 * 10 * 4 * 2


def test_preflight_passes_every_chapter_on_the_replica(replica, tmp_path):
    df = PF.preflight(replica, PF.CHAPTERS, max_clips=2, jobs=2, out=tmp_path / "pf")
    assert list(df.index) == list(PF.CHAPTERS)
    assert (df.status == "passed").all(), df[["status", "error"]].to_string()
    planned = df[df.warnings == ""]
    assert len(planned) and (planned.filter(like="planned").iloc[:, 0] > 0).all()
    assert (df["work ratio"][df.warnings == ""] > 1).all()  # the paper run is bigger than the cut one
    # nothing was published: the notebooks and rows stay in the preflight folder
    assert (tmp_path / "pf" / "explain.ipynb").exists() and list((tmp_path / "pf" / "results").glob("*.csv"))


def test_a_broken_replica_names_the_failing_cell(replica, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(replica / "dcase2020", broken / "dcase2020")
    victim = sorted((broken / "dcase2020" / "dev_data" / "slider" / "test").glob("anomaly_id_00_*.wav"))[0]
    victim.write_bytes(victim.read_bytes()[:2000])  # a download cut short
    df = PF.preflight(broken, ["autoencoders"], max_clips=50, jobs=1, out=tmp_path / "pf")
    r = df.loc["autoencoders"]
    assert r.status == "FAILED" and r.error.startswith("cell ") and "truncated" in r.error


def test_preflight_refuses_a_missing_root_and_unknown_chapters(tmp_path):
    with pytest.raises(ASDStudyError, match="not a folder"):
        PF.preflight(tmp_path / "nowhere")
    with pytest.raises(ASDStudyError, match="unknown chapter"):
        PF.preflight(tmp_path, ["scoreboard"])


def test_cap_clips_keeps_every_group():
    import pandas as pd

    from asdstudy.experiments.protocol import cap_clips

    t = pd.DataFrame({"machine": "fan", "id": np.repeat(["00", "02"], 10), "split": "train", "label": 0,
                      "path": [f"c{i}" for i in range(20)]})
    c = cap_clips(t, 3, seed=0)
    assert c.groupby("id").size().tolist() == [3, 3] and c.path.is_unique
    assert cap_clips(t, 3, seed=0).equals(c)


def test_plan_hours_keep_two_significant_figures():
    """A chapter whose cut run takes a second plans a few thousandths of an hour, not 0.00."""
    assert PF._significant(0.00423) == 0.0042
    assert PF._significant(12.34) == 12.0
    assert PF._significant(0.0) == 0.0
    assert PF._significant(float("nan")) == 0.0
    assert PF._significant(-0.0567) == -0.057
