"""The one detector protocol every method of the study follows.

A detector is fitted on the training clips of one unit (a machine id or a section) and then
gives one anomaly score per clip, higher meaning more anomalous::

    det.fit(train_table)            # clip table rows (normal clips; paper 000 also uses labels)
    scores = det.score(test_table)  # np.ndarray of shape (n_clips,)

Clip tables are the pandas frames of :mod:`asdstudy.datasets`. :func:`evaluate_per_unit` runs
the protocol per unit and returns one tidy row of metrics per unit.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod

import numpy as np
import pandas as pd

from .. import ASDStudyError
from ..datasets import unit_column
from ..metrics import score_table


class Detector(ABC):
    """Base class: ``fit(table) -> self`` and ``score(table) -> (n_clips,) array``."""

    name: str = "detector"

    @abstractmethod
    def fit(self, table: pd.DataFrame, y=None) -> "Detector":
        ...

    @abstractmethod
    def score(self, table: pd.DataFrame) -> np.ndarray:
        ...

    def _check_fitted(self, attr: str):
        if not hasattr(self, attr):
            raise ASDStudyError(f"{type(self).__name__} is not fitted: call fit(train_table) first.")


def evaluate_per_unit(make_detector, table: pd.DataFrame, n_boot: int = 1000, seed: int = 0,
                      progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit a fresh detector per (machine, unit, domain-agnostic) on its train split; score its test split.

    Args:
        make_detector: zero-argument callable returning a new :class:`Detector`.
        table: clip table with train (label 0) and test (labelled) clips.
        n_boot: bootstrap replicates for the CIs.
        seed: bootstrap seed.

    Returns:
        (metrics, scores): metrics has one row per (machine, unit) with AUC, both pAUCs, their
        CIs, EER, counts and fit/score seconds; scores is the test table with a ``score`` column.
    """
    from tqdm.auto import tqdm

    table = table.assign(unit=unit_column(table))
    rows, scored = [], []
    groups = list(table.groupby(["machine", "unit"], sort=True))
    for (machine, unit), g in tqdm(groups, desc="units", disable=not progress):
        train = g[g["split"] == "train"]
        test = g[(g["split"] == "test") & g["label"].notna()]
        if train.empty or test.empty:
            raise ASDStudyError(f"{machine} unit {unit}: needs both train and labelled test clips "
                                f"(found {len(train)} train, {len(test)} test).")
        det = make_detector()
        t0 = time.perf_counter()
        det.fit(train)
        t1 = time.perf_counter()
        s = np.asarray(det.score(test), dtype=float)
        t2 = time.perf_counter()
        row = {"machine": machine, "unit": unit}
        row.update(score_table(test["label"].to_numpy(int), s, n_boot=n_boot, seed=seed))
        row.update(fit_s=t1 - t0, score_s=t2 - t1)
        rows.append(row)
        scored.append(test.assign(score=s))
    return pd.DataFrame(rows), pd.concat(scored, ignore_index=True)
