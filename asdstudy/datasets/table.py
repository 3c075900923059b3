"""The clip table: one row per clip, the same columns for every dataset."""

from __future__ import annotations

import pandas as pd

from .. import ASDStudyError

#: Columns of every clip table, in order, with their meaning.
COLUMNS = {
    "path": "absolute or root-relative path of the audio file",
    "dataset": "dcase2020 | dcase2021 | dcase2023 | mimii | synthetic-<variant>",
    "machine": "machine type (fan, pump, slider, valve, ToyCar, ToyConveyor, ...)",
    "id": "machine id, two digits (DCASE 2020, MIMII); None where sections are used",
    "section": "section, two digits (DCASE 2021+); None where ids are used",
    "domain": "source | target (DCASE 2021+); source elsewhere",
    "split": "train | test",
    "label": "0 normal, 1 anomaly, <NA> unknown (evaluation sets)",
    "attributes": "JSON object: file-name attributes, MIMII SNR, archive subset, ...",
}


class DatasetError(ASDStudyError):
    """A dataset folder that is missing, empty or laid out unexpectedly."""


def make_table(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df["label"] = df["label"].astype("Int64")
    for col in ("id", "section"):
        df[col] = df[col].astype("string")
    return df.sort_values(["machine", "id", "section", "domain", "split", "path"],
                          na_position="first", kind="stable").reset_index(drop=True)


def unit_column(df: pd.DataFrame) -> pd.Series:
    """The per-unit key the metrics aggregate over: the id where present, else the section."""
    return df["id"].fillna(df["section"])
