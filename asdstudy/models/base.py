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


#: The training units a method may declare: one model per machine type (trained on the
#: training normals of all its ids / sections, as the official DCASE 2020 baseline and papers
#: 001 and 003 do) or one model per id / section (the unit the metrics are reported on).
TRAINING_UNITS = ("machine", "unit")


def check_training_units(makers: dict, units: dict | None) -> dict:
    """``units`` completed for every method of ``makers`` (default: per id / section), bad
    values refused naming the method and what is allowed."""
    units = dict(units or {})
    unknown = sorted(set(units) - set(makers))
    if unknown:
        raise ASDStudyError(f"training units given for {unknown}, which are not among the methods {list(makers)}.")
    for name in makers:
        units.setdefault(name, "unit")
        if units[name] not in TRAINING_UNITS:
            raise ASDStudyError(f"method {name!r}: training unit {units[name]!r}; use 'machine' (one model per "
                                "machine type) or 'unit' (one model per id / section).")
    return units


def _fit_one(make, seed: int, train: pd.DataFrame, threads: int | None = 1):
    """One model of :func:`run_methods`: made, fitted and timed (in a worker: on ``threads``
    torch threads). Returns (detector, fit seconds)."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    det = make(seed)
    t0 = time.perf_counter()
    det.fit(train)
    return det, time.perf_counter() - t0


def fit_many(tasks, n_jobs: int = 1) -> list:
    """Fit ``(make, seed, train)`` tasks, ``n_jobs`` at a time in worker processes (one torch
    thread each), else one after the other here. Returns [(detector, fit seconds)] in task
    order, so results never depend on which finished first (an iterator when parallel)."""
    tasks = list(tasks)
    if n_jobs > 1 and len(tasks) > 1:
        from joblib import Parallel, delayed

        return Parallel(n_jobs=n_jobs, backend="loky", return_as="generator")(
            delayed(_fit_one)(make, seed, train) for make, seed, train in tasks)
    return (_fit_one(make, seed, train, threads=None) for make, seed, train in tasks)


def run_methods(makers: dict, table: pd.DataFrame, seeds=(0,), n_boot: int = 1000,
                holdout_fraction: float = 0.1, progress: bool = True, units: dict | None = None,
                thresholded=None, n_jobs: int = 1) -> dict:
    """Run several detectors per training unit and seed, the way every chapter compares methods.

    For each (machine, unit): a seeded ``holdout_fraction`` of the training normals is held out
    (never trained on) so that thresholds can be chosen honestly on their scores. Each method
    is fitted once per seed per its declared training unit (``units[method]``): ``"unit"``, one
    model per id / section on that unit's remaining normals; ``"machine"``, one model per
    machine type on the remaining normals of all its units. Either way the metrics are per
    unit (the DCASE scoring unit), and every score row names the model that produced it
    (``model``: ``machine`` or ``machine/unit``), so pooled figures can be taken from one
    model's scores only. Only the methods in ``thresholded`` (default: all) lose the held-out
    clips to threshold choice; the others train on every training normal, as the papers did.

    Args:
        makers: {method name: callable(seed) -> new Detector}.
        table: clip table with train and labelled test clips.
        seeds: training seeds; metrics with CIs for each, the first seed's detectors are kept.
        n_boot: bootstrap replicates for the CIs.
        units: {method name: "machine" | "unit"}; methods not named train per unit. A unit with
            training clips but no test clips (DCASE 2020's additional-training ids) adds its
            clips to its machine type's per-machine models, trains no per-unit model, is
            evaluated nowhere, and is named in a warning and in ``training_only``.
        thresholded: the methods whose decisions need a threshold from held-out normals (None:
            all); held-out clips are scored only for these.
        n_jobs: fit this many models at once, each in its own process with one torch thread
            (small dense models gain little from a second thread, much from a second model);
            the fitted detectors come back in job order, so the results do not depend on which
            finished first. 1: one after the other in this process.

    Returns:
        dict with ``metrics`` (one row per method, machine, unit, seed, with ``training_unit``),
        ``scores`` (test clips with method, seed, model and score columns), ``holdout``
        (held-out normal clips, same columns) and ``detectors`` ({(method, machine, unit): the
        first seed's fitted detector that scored that unit}; a per-machine model appears under
        each of its units).
    """
    from tqdm.auto import tqdm

    units = check_training_units(makers, units)
    thresholded = set(makers) if thresholded is None else set(thresholded)
    if thresholded - set(makers):
        raise ASDStudyError(f"thresholded names {sorted(thresholded - set(makers))}, which are not among the "
                            f"methods {list(makers)}.")
    table = table.assign(unit=unit_column(table))
    parts = {}  # (machine, unit) -> (fit_on, held, test, every training normal in table order)
    extra = {}  # (machine, unit) -> training clips of a unit without test clips
    for (machine, unit), g in table.groupby(["machine", "unit"], sort=True):
        train = g[g["split"] == "train"]
        test = g[(g["split"] == "test") & g["label"].notna()]
        if test.empty and len(train):
            # e.g. DCASE 2020's additional-training ids 01/03/05: as the baseline does, they train
            # the per-machine-type models and are evaluated nowhere
            extra[(machine, unit)] = train
            continue
        if train.empty or test.empty:
            raise ASDStudyError(f"{machine} unit {unit}: needs both train and labelled test clips "
                                f"(found {len(train)} train, {len(test)} test).")
        rng = np.random.default_rng(12345)  # the same held-out clips for every method and seed
        n_hold = max(int(round(holdout_fraction * len(train))), 2 if len(train) >= 4 and holdout_fraction > 0 else 0)
        held = train.iloc[rng.permutation(len(train))[:n_hold]]
        parts[(machine, unit)] = (train.drop(index=held.index), held, test, train)
    if not parts:
        raise ASDStudyError("no unit has both training and labelled test clips; "
                            f"units with training clips only: {sorted(extra)}.")
    per_unit = [n for n in makers if units[n] == "unit"]
    if extra:
        import warnings

        warnings.warn(f"{len(extra)} unit(s) have training clips but no test clips ({', '.join(f'{m} {u}' for m, u in sorted(extra))}): "
                      "their clips train the one-model-per-machine-type methods only"
                      + (f"; {', '.join(per_unit)} train no model for them" if per_unit else "") + ".", stacklevel=2)
    machines = sorted({m for m, _ in parts})
    jobs = []  # (method, seed, model name, [(machine, unit), ...])
    for name in makers:
        for seed in seeds:
            if units[name] == "machine":
                jobs += [(name, seed, m, [k for k in parts if k[0] == m]) for m in machines]
            else:
                jobs += [(name, seed, f"{m}/{u}", [(m, u)]) for m, u in parts]
    metrics, scores, holdout, detectors = [], [], [], {}

    def training_set(name, keys):
        # the methods that keep every training normal train on them in the table's order, so the
        # same method on the same clips is the same model in every chapter (asdstudy.models.store)
        fit_on = [parts[k][0] if name in thresholded else parts[k][3] for k in keys]
        if units[name] == "machine":
            fit_on += [t for (m, _), t in sorted(extra.items()) if m == keys[0][0]]
        return pd.concat(fit_on)

    bar = tqdm(total=len(jobs), desc="fits", disable=not progress)
    fitted = fit_many(((makers[name], seed, training_set(name, keys)) for name, seed, _, keys in jobs), n_jobs)
    for (name, seed, model, keys), (det, fit_s) in zip(jobs, fitted):
        hold = name in thresholded
        for machine, unit in keys:
            _, held, test, _ = parts[(machine, unit)]
            t1 = time.perf_counter()
            s = np.asarray(det.score(test), dtype=float)
            row = {"method": name, "machine": machine, "unit": unit, "seed": seed, "training_unit": units[name]}
            row.update(score_table(test["label"].to_numpy(int), s, n_boot=n_boot, seed=seed))
            row.update(fit_s=fit_s / len(keys), score_s=time.perf_counter() - t1)
            metrics.append(row)
            scores.append(test.assign(method=name, seed=seed, model=model, score=s))
            if hold and len(held):
                holdout.append(held.assign(method=name, seed=seed, model=model, score=det.score(held)))
            if seed == seeds[0]:
                detectors[(name, machine, unit)] = det
        bar.update(1)
    bar.close()
    metrics = pd.DataFrame(metrics).sort_values(["machine", "unit", "method", "seed"], kind="stable",
                                                key=lambda c: c.map(list(makers).index) if c.name == "method" else c)
    return {"metrics": metrics.reset_index(drop=True), "scores": pd.concat(scores, ignore_index=True),
            "holdout": pd.concat(holdout, ignore_index=True) if holdout else pd.DataFrame(),
            "detectors": detectors, "training_only": sorted(extra)}
