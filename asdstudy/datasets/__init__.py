"""Datasets as clip tables: the synthetic factory, DCASE 2020-2023 Task 2 and MIMII.

:func:`clip_table` turns a folder into the study's one clip table (columns in
:data:`COLUMNS`), recognising the layout; the synthetic factory's folders are read by the same
DCASE readers, plus their ground truth.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .dcase import read_dcase2020, read_dcase2021
from .mimii import dcase_like_split, read_mimii
from .table import COLUMNS, DatasetError, make_table, unit_column

__all__ = ["COLUMNS", "DatasetError", "clip_table", "read_dcase2020", "read_dcase2021",
           "read_mimii", "dcase_like_split", "make_table", "unit_column", "detect_layout"]


def detect_layout(root: str | Path) -> str:
    """Guess a folder's layout from its file names: dcase2020, dcase2021 or mimii."""
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{root}: dataset folder not found. Generate the synthetic set with "
                           "`asdstudy data generate` or download a real one with "
                           "`asdstudy data download`.")
    for wav in root.rglob("*.wav"):
        name = wav.name
        if name.startswith("section_"):
            return "dcase2021"
        if "id_" in name:
            return "dcase2020"
        if wav.parent.name in ("normal", "abnormal"):
            return "mimii"
    raise DatasetError(f"{root}: no audio clips found; is this the right folder?")


def clip_table(root: str | Path, layout: str = "auto", machines=None) -> pd.DataFrame:
    """Read a dataset folder into a clip table.

    Args:
        root: the folder (e.g. ``data/synthetic/dcase2020`` or an unpacked DCASE archive root).
        layout: "auto", "dcase2020", "dcase2021" (also 2022/2023) or "mimii".
        machines: keep only these machine types.

    Returns:
        DataFrame with the columns of :data:`COLUMNS`. For synthetic data the ground-truth
        columns (anomaly_kind, severity, band_lo, band_hi, snr_db, speed) are added.
    """
    root = Path(root).resolve()
    layout = detect_layout(root) if layout == "auto" else layout
    readers = {"dcase2020": read_dcase2020, "dcase2021": read_dcase2021, "dcase2022": read_dcase2021,
               "dcase2023": read_dcase2021, "mimii": read_mimii}
    if layout not in readers:
        raise DatasetError(f"unknown layout {layout!r}; choose from auto, {', '.join(readers)}")
    df = readers[layout](root)
    gt = root / "ground_truth"
    if gt.is_dir():
        from .synthetic import ground_truth

        truth = ground_truth(root.parent, root.name).drop(
            columns=["relpath", "machine", "unit", "domain", "split", "label"])
        df["dataset"] = f"synthetic-{root.name}"
        df = df.merge(truth, on="path", how="left")
    if machines:
        machines = [machines] if isinstance(machines, str) else list(machines)
        missing = sorted(set(machines) - set(df["machine"]))
        if missing:
            raise DatasetError(f"{root}: no clips for machine type(s) {', '.join(missing)}; "
                               f"found {', '.join(sorted(df['machine'].unique()))}.")
        df = df[df["machine"].isin(machines)].reset_index(drop=True)
    return df
