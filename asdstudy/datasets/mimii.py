"""Reader for the raw MIMII dataset.

Dataset card
------------
**MIMII** (Purohit et al., DCASE 2019 Workshop): sounds of malfunctioning industrial machines
(fan, pump, slider, valve), four machine ids each, recorded with an 8-channel circular
microphone array at 16 kHz, 10 s clips, mixed with factory noise at -6, 0 and 6 dB SNR.
Zenodo record 3384388, archives ``<snr>_<machine>.zip``. CC BY-SA 4.0. Layout after unzip::

    <snr>_<machine>/<machine>/id_XX/{normal,abnormal}/NNNNNNNN.wav

MIMII has no train/test split: every clip gets ``split="all"``; :func:`dcase_like_split`
makes the DCASE-style one (test = all anomalies plus as many normals, train = the rest).
DCASE used channel 0; pass ``channel`` to the loader for another one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .table import DatasetError, make_table

RE_SNR = re.compile(r"^(?P<snr>-?\d+)_dB_(?P<machine>\w+)$")


def read_mimii(root: str | Path) -> pd.DataFrame:
    """Clip table of a raw MIMII folder (one or more ``<snr>_<machine>`` folders below ``root``)."""
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{root}: MIMII folder not found. Download it with "
                           "`asdstudy data download mimii --machines slider --dest ...`.")
    rows = []
    for wav in sorted(root.rglob("*.wav")):
        cond = wav.parent.name
        if cond not in ("normal", "abnormal") or not wav.parent.parent.name.startswith("id_"):
            continue
        machine = wav.parent.parent.parent.name
        snr = None
        for parent in wav.parents:
            m = RE_SNR.match(parent.name)
            if m:
                snr = int(m["snr"])
                break
        rows.append({"path": str(wav), "dataset": "mimii", "machine": machine,
                     "id": wav.parent.parent.name[3:], "section": None, "domain": "source",
                     "split": "all", "label": int(cond == "abnormal"),
                     "attributes": json.dumps({"snr_db": snr, "channels": 8})})
    if not rows:
        raise DatasetError(f"{root}: no MIMII clips found (expected "
                           "<snr>_<machine>/<machine>/id_XX/{normal,abnormal}/NNNNNNNN.wav).")
    return make_table(rows)


def dcase_like_split(table: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Assign train/test per machine id the DCASE 2020 way: all anomalies and an equal number of
    normals go to test, the remaining normals to train."""
    out = table.copy()
    rng = np.random.default_rng(seed)
    for _, g in out.groupby(["machine", "id"]):
        normals = g.index[g["label"] == 0].to_numpy()
        n_anom = int((g["label"] == 1).sum())
        test_normals = rng.permutation(normals)[: min(n_anom, len(normals))]
        out.loc[g.index, "split"] = "train"
        out.loc[g.index[g["label"] == 1], "split"] = "test"
        out.loc[test_normals, "split"] = "test"
    return out
