"""Readers for the DCASE Task 2 datasets (2020 to 2023) into one clip table.

Dataset card
------------
**DCASE 2020 Task 2** (Koizumi et al., 2020): machine sounds from ToyADMOS (ToyCar,
ToyConveyor) and MIMII (fan, pump, slider, valve), mono 16 kHz, 10 s (ToyCar 11 s). Zenodo
3678171 (development), 3727685 (additional training), 3841772 (evaluation). CC BY-NC-SA 4.0.
Layout after unzip::

    dev_data/<machine>/train/normal_id_XX_NNNNNNNN.wav
    dev_data/<machine>/test/{normal,anomaly}_id_XX_NNNNNNNN.wav
    eval_data/<machine>/test/id_XX_NNNNNNNN.wav            (evaluation: no labels)

**DCASE 2021-2023 Task 2**: sections instead of ids, a source and a target domain, attributes
in the file name, e.g.
``<machine>/train/section_00_source_train_normal_0000_strength_1_ambient.wav`` (2021),
``<machine>/test/section_00_target_test_anomaly_0003_vel_8.wav`` (2023).

The clip table (one row per clip, see :data:`~asdstudy.datasets.COLUMNS`) is what every
chapter consumes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from .table import DatasetError, make_table

RE_2020 = re.compile(r"^(?:(?P<label>normal|anomaly)_)?id_(?P<id>\d+)_(?P<num>\d+)\.wav$")
RE_2021 = re.compile(
    r"^section_(?P<section>\d+)_(?P<domain>source|target)_(?P<split>train|test)"
    r"(?:_(?P<label>normal|anomaly))?_(?P<num>\d+)(?:_(?P<attrs>.+))?\.wav$"
)


def parse_attributes(attrs: str | None) -> dict:
    """Turn an attribute tail like ``strength_1_ambient`` or ``vel_8_loc_A`` into a dict.

    Pairs ``key_value`` are read left to right; a token with no value (``ambient``) maps to
    True. A single opaque token (``A1Spd28VMic1``, DCASE 2021 ToyCar) is kept under ``"raw"``.
    """
    if not attrs:
        return {}
    tokens = attrs.split("_")
    if len(tokens) == 1:
        return {"raw": tokens[0]}
    out: dict = {}
    i = 0
    while i < len(tokens):
        key = tokens[i]
        if i + 1 < len(tokens) and re.fullmatch(r"-?[\d.]+[A-Za-z]*|[A-Z]\w*", tokens[i + 1]):
            out[key] = tokens[i + 1]
            i += 2
        else:
            out[key] = True
            i += 1
    return out


def _label(text: str | None):
    return {"normal": 0, "anomaly": 1}.get(text or "", None)


def read_dcase2020(root: str | Path, dataset: str = "dcase2020") -> pd.DataFrame:
    """Clip table of a DCASE 2020 Task 2 folder (``dev_data``/``eval_data`` or a machine folder).

    Args:
        root: the folder holding ``dev_data`` and/or ``eval_data`` (or one of them, or one
            ``<machine>`` folder with ``train``/``test`` below it).
        dataset: the value of the ``dataset`` column.

    Raises:
        DatasetError: the folder is missing or holds no DCASE 2020 clip.
    """
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{root}: dataset folder not found. Download it with "
                           "`asdstudy data download dcase2020-dev --dest ...` or generate the "
                           "synthetic set with `asdstudy data generate`.")
    rows = []
    for wav in sorted(root.rglob("*.wav")):
        m = RE_2020.match(wav.name)
        if not m or wav.parent.name not in ("train", "test"):
            continue
        machine = wav.parent.parent.name
        part = wav.parent.parent.parent.name
        subset = {"dev_data": "development", "eval_data": "evaluation"}.get(part, part)
        if part == "eval_data" and wav.parent.name == "train":
            subset = "additional_training"  # eval_data_train_<machine>.zip unpacks here
        label = _label(m["label"])
        if wav.parent.name == "train" and label is None:
            label = 0
        rows.append({"path": str(wav), "dataset": dataset, "machine": machine, "id": m["id"],
                     "section": None, "domain": "source", "split": wav.parent.name,
                     "label": label, "attributes": json.dumps({"subset": subset})})
    if not rows:
        raise DatasetError(f"{root}: no DCASE 2020 clips found (expected files like "
                           "dev_data/<machine>/test/anomaly_id_00_00000000.wav).")
    return make_table(rows)


def read_dcase2021(root: str | Path, dataset: str = "dcase2021") -> pd.DataFrame:
    """Clip table of a DCASE 2021, 2022 or 2023 Task 2 folder (sections, domains, attributes).

    Folders ``train``, ``test``, ``source_test`` and ``target_test`` below each machine folder
    are read; labels come from the file name (evaluation files without one get NaN).
    """
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{root}: dataset folder not found. Download it with "
                           "`asdstudy data download ...` or generate the synthetic variant with "
                           "`asdstudy data generate --variant dcase2021`.")
    rows = []
    for wav in sorted(root.rglob("*.wav")):
        m = RE_2021.match(wav.name)
        if not m:
            continue
        label = _label(m["label"])
        if m["split"] == "train" and label is None:
            label = 0
        machine = wav.parent.parent.name
        rows.append({"path": str(wav), "dataset": dataset, "machine": machine, "id": None,
                     "section": m["section"], "domain": m["domain"], "split": m["split"],
                     "label": label, "attributes": json.dumps(parse_attributes(m["attrs"]))})
    if not rows:
        raise DatasetError(f"{root}: no DCASE 2021+ clips found (expected files like "
                           "<machine>/train/section_00_source_train_normal_0000_<attrs>.wav).")
    return make_table(rows)
