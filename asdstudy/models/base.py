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


class SpectrogramDetector(Detector):
    """A detector whose input is one spectrogram per clip, so that explanations
    (:mod:`asdstudy.explain.slime`) can occlude parts of that input and re-score it.

    Subclasses give ``input_params`` (the :class:`~asdstudy.features.LogMelParams` of the
    input, whose mel bins map to Hz) and ``score_spectrograms(specs)`` for a list of (T, bins)
    arrays; ``spectrograms(table)`` and ``score(table)`` follow.
    """

    @property
    def jobs(self) -> int:
        """Feature worker processes: the detector's ``config.jobs`` where it has one."""
        return getattr(getattr(self, "config", None), "jobs", 1)

    @property
    @abstractmethod
    def input_params(self):
        ...

    @abstractmethod
    def score_spectrograms(self, specs) -> np.ndarray:
        ...

    def spectrograms(self, table: pd.DataFrame) -> list:
        from ..features import clip_logmels

        return clip_logmels(table["path"].tolist(), self.input_params, n_jobs=self.jobs, progress=False)

    def score(self, table: pd.DataFrame) -> np.ndarray:
        return self.score_spectrograms(self.spectrograms(table))


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
    run = run_methods({"detector": lambda _seed: make_detector()}, table, seeds=(seed,), n_boot=n_boot,
                      holdout_fraction=0.0, progress=progress)
    return (run["metrics"].drop(columns=["method", "seed"]),
            run["scores"].drop(columns=["method", "seed"]))


def run_methods(makers: dict, table: pd.DataFrame, seeds=(0,), n_boot: int = 1000,
                holdout_fraction: float = 0.1, progress: bool = True) -> dict:
    """Run several detectors per unit and seed, the way every chapter compares methods.

    For each (machine, unit): a seeded ``holdout_fraction`` of the training normals is held out
    (never trained on) so that thresholds can be chosen honestly on their scores; each method
    is fitted on the rest, once per seed, and scores the test clips and the held-out clips.

    Args:
        makers: {method name: callable(seed) -> new Detector}.
        table: clip table with train and labelled test clips.
        seeds: training seeds; metrics with CIs for each, the first seed's detectors are kept.
        n_boot: bootstrap replicates for the CIs.

    Returns:
        dict with ``metrics`` (one row per method, machine, unit, seed), ``scores`` (test clips
        with method, seed and score columns), ``holdout`` (held-out normal clips, same columns)
        and ``detectors`` ({(method, machine, unit): fitted detector of the first seed}).
    """
    from tqdm.auto import tqdm

    table = table.assign(unit=unit_column(table))
    metrics, scores, holdout, detectors = [], [], [], {}
    groups = list(table.groupby(["machine", "unit"], sort=True))
    total = len(groups) * len(makers) * len(seeds)
    bar = tqdm(total=total, desc="fits", disable=not progress)
    for (machine, unit), g in groups:
        train = g[g["split"] == "train"]
        test = g[(g["split"] == "test") & g["label"].notna()]
        rng = np.random.default_rng(12345)  # the same held-out clips for every method and seed
        n_hold = max(int(round(holdout_fraction * len(train))), 2 if len(train) >= 4 and holdout_fraction > 0 else 0)
        hold_idx = rng.permutation(len(train))[:n_hold]
        if train.empty or test.empty:
            raise ASDStudyError(f"{machine} unit {unit}: needs both train and labelled test clips "
                                f"(found {len(train)} train, {len(test)} test).")
        held = train.iloc[hold_idx]
        fit_on = train.drop(index=held.index)
        for name, make in makers.items():
            for seed in seeds:
                det = make(seed)
                t0 = time.perf_counter()
                det.fit(fit_on)
                t1 = time.perf_counter()
                s = np.asarray(det.score(test), dtype=float)
                row = {"method": name, "machine": machine, "unit": unit, "seed": seed}
                row.update(score_table(test["label"].to_numpy(int), s, n_boot=n_boot, seed=seed))
                row.update(fit_s=t1 - t0, score_s=time.perf_counter() - t1)
                metrics.append(row)
                scores.append(test.assign(method=name, seed=seed, score=s))
                if len(held):
                    holdout.append(held.assign(method=name, seed=seed, score=det.score(held)))
                if seed == seeds[0]:
                    detectors[(name, machine, unit)] = det
                bar.update(1)
    bar.close()
    return {"metrics": pd.DataFrame(metrics), "scores": pd.concat(scores, ignore_index=True),
            "holdout": pd.concat(holdout, ignore_index=True) if holdout else pd.DataFrame(),
            "detectors": detectors}
