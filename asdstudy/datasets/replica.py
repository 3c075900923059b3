"""Real-layout replicas: miniatures of the real datasets, exactly as their archives unpack.

:func:`build_replica` writes under one root what a user who downloaded every dataset the
``paper`` profile reads would have (directory tree, file naming, ids and sections, splits and
domains), with a handful of clips per unit, so that ``asdstudy preflight`` and the tests can run
every chapter's paper-profile code path without the real data::

    <root>/dcase2020/dev_data/<machine>/{train,test}/...          DCASE 2020 development
    <root>/dcase2020/eval_data/<machine>/train/normal_id_XX_...     additional training ids
    <root>/dcase2021/dev_data/<machine>/{train,source_test,target_test}/section_0{0,1,2}_...
    <root>/dcase2021/eval_data/<machine>/train/section_0{3,4,5}_... evaluation-set training
    <root>/mimii/<snr>_dB_<machine>/<machine>/id_XX/{normal,abnormal}/NNNNNNNN.wav   (8 channels)

Clips: the real sample clips of ``$ASDSTUDY_SHARED_DATA`` where they exist (DCASE 2020 test
clips of every machine type, slider id 00 training clips, MIMII slider), renumbered into free
slots, and the synthetic factory's clips of the same machine type everywhere else (gearbox and
ToyTrain for DCASE 2021, from its extra machine types). No ground truth, no manifest: the
replica looks like downloaded data, which the paper profile accepts. It tests layouts and code
paths only; no number computed on it means anything.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from . import synthetic as syn

#: DCASE 2020 Task 2: development ids and the additional-training ids per machine type.
DCASE2020_IDS = {"fan": ("00", "02", "04", "06"), "pump": ("00", "02", "04", "06"), "slider": ("00", "02", "04", "06"),
                 "valve": ("00", "02", "04", "06"), "ToyCar": ("01", "02", "03", "04"),
                 "ToyConveyor": ("01", "02", "03")}
DCASE2020_ADDITIONAL = {"fan": ("01", "03", "05"), "pump": ("01", "03", "05"), "slider": ("01", "03", "05"),
                        "valve": ("01", "03", "05"), "ToyCar": ("05", "06", "07"), "ToyConveyor": ("04", "05", "06")}
#: DCASE 2021 Task 2: seven machine types, development sections 00-02, evaluation 03-05.
DCASE2021_MACHINES = ("fan", "gearbox", "pump", "slider", "ToyCar", "ToyTrain", "valve")

_RE20 = re.compile(r"^(?P<label>normal|anomaly)_id_(?P<id>\d+)_(?P<num>\d+)\.wav$")
_RE21 = re.compile(r"^section_(?P<sec>\d+)_(?P<rest>.+)\.wav$")


def _sizes(n_train: int, n_test: int) -> syn.Sizes:
    return syn.Sizes(n_train=n_train, n_test_normal=n_test, n_test_anomaly=n_test, n_target_train=1, max_ids=None)


def _generate(tmp: Path, machines, variant: str, sizes: syn.Sizes, seed: int, jobs: int) -> Path:
    syn.generate(tmp / f"s{seed}", profile="smoke", machines=list(machines), variant=variant, sizes=sizes, seed=seed,
                 n_jobs=jobs, progress=False)
    return tmp / f"s{seed}" / variant / "dev_data"


def _dcase2020(root: Path, tmp: Path, n_train: int, n_test: int, jobs: int, shared: Path | None) -> None:
    dev = _generate(tmp, DCASE2020_IDS, "dcase2020", _sizes(n_train, n_test), 0, jobs)
    ids_made = {m: syn.IDS[m] for m in DCASE2020_IDS}
    for m, ids in DCASE2020_IDS.items():
        for i, want in enumerate(ids):
            have = ids_made[m][i % len(ids_made[m])]  # the factory makes 3-4 ids: reuse one as the 4th
            for split in ("train", "test"):
                for wav in sorted((dev / m / split).glob(f"*_id_{have}_*.wav")):
                    g = _RE20.match(wav.name)
                    out = root / "dev_data" / m / split / f"{g['label']}_id_{want}_{g['num']}.wav"
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(wav, out)
    # the additional training set (eval_data_train_<machine>.zip): training normals of other ids
    extra = _generate(tmp, DCASE2020_IDS, "dcase2020", _sizes(n_train, 1), 1, jobs)
    for m, ids in DCASE2020_ADDITIONAL.items():
        for i, want in enumerate(ids):
            have = syn.IDS[m][i % len(syn.IDS[m])]
            for wav in sorted((extra / m / "train").glob(f"normal_id_{have}_*.wav")):
                out = root / "eval_data" / m / "train" / f"normal_id_{want}_{_RE20.match(wav.name)['num']}.wav"
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(wav, out)
    if shared is None:
        return
    # real clips into free numbers of the same machine, id, split and label
    for wav in sorted((shared / "dcase2020_task2_sample" / "dev_data").glob("*/test/*.wav")):
        g = _RE20.match(wav.name)
        if g:
            m = wav.parent.parent.name
            shutil.copyfile(wav, root / "dev_data" / m / "test" / f"{g['label']}_id_{g['id']}_{900000 + int(g['num']):08d}.wav")
    for wav in sorted((shared / "dcase2020_slider_train" / "dev_data" / "slider" / "train").glob("*.wav"))[:n_train]:
        g = _RE20.match(wav.name)
        shutil.copyfile(wav, root / "dev_data" / "slider" / "train" / f"normal_id_{g['id']}_{900000 + int(g['num']):08d}.wav")


def _dcase2021(root: Path, tmp: Path, n_train: int, n_test: int, jobs: int) -> None:
    dev = _generate(tmp, DCASE2021_MACHINES, "dcase2021", _sizes(n_train, n_test), 0, jobs)
    for wav in sorted(dev.rglob("*.wav")):
        out = root / "dev_data" / wav.relative_to(dev)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(wav, out)
    # the evaluation set's training sections 03-05 (eval_data_<machine>_train.zip)
    ev = _generate(tmp, DCASE2021_MACHINES, "dcase2021", _sizes(n_train, 1), 1, jobs)
    for wav in sorted(ev.glob("*/train/*.wav")):
        g = _RE21.match(wav.name)
        out = root / "eval_data" / wav.parent.parent.name / "train" / f"section_{int(g['sec']) + 3:02d}_{g['rest']}.wav"
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(wav, out)


def _mimii(root: Path, shared: Path | None) -> None:
    if shared is None or not (shared / "mimii_sample").is_dir():
        return
    shutil.copytree(shared / "mimii_sample", root, dirs_exist_ok=True)


def build_replica(dest: str | Path, shared: str | Path | None = None, n_train: int = 3, n_test: int = 2,
                  jobs: int = 1) -> Path:
    """Write the miniature of every dataset under ``dest`` (see the module docstring) and return it.

    Args:
        shared: the folder of real sample clips (``$ASDSTUDY_SHARED_DATA``); None: synthetic only.
        n_train, n_test: clips per unit (training; test per condition and domain).
    """
    dest = Path(dest)
    shared = Path(shared) if shared else None
    with tempfile.TemporaryDirectory(prefix="replica-") as t:
        tmp = Path(t)
        _dcase2020(dest / "dcase2020", tmp, n_train, n_test, jobs, shared)
        _dcase2021(dest / "dcase2021", tmp, n_train, n_test, jobs)
        _mimii(dest / "mimii", shared)
    return dest
