"""Low- and high-pass filtering of the audio, and a sweep that retrains and rescores a detector
per cutoff (paper 004: cutoffs 400 Hz to 8 kHz in 400 Hz steps, filters applied to the audio
before any feature, at training and test time alike).

:func:`sweep` hands ``run`` the unfiltered table and the filter: the AST applies it inside its
feature pipeline (no filtered copies on disk). :func:`filtered_table` still writes filtered WAV
copies (under ``<cache>/filtered/<kind>-<cutoff>/``) for a detector that reads audio files
itself.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..features.filtering import KINDS, filter_audio  # noqa: F401  (re-exported)

#: The paper's cutoffs: 400 Hz to 8 kHz in 400 Hz steps.
PAPER_CUTOFFS = tuple(range(400, 8001, 400))


def _filtered_path(folder: Path, path: str) -> Path:
    h = hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:16]
    return folder / f"{Path(path).stem}-{h}.wav"


def _write_one(path: str, out: Path, kind: str, cutoff: float, sr: int) -> None:
    import soundfile as sf

    from ..audio import load

    if out.exists():
        return
    y, _ = load(path, expected_sr=sr)
    tmp = out.with_suffix(f".tmp{os.getpid()}.wav")
    sf.write(tmp, filter_audio(y, sr, kind, cutoff), sr, subtype="FLOAT")
    os.replace(tmp, out)


def filtered_table(table: pd.DataFrame, kind: str, cutoff: float, sr: int = 16000, n_jobs: int = 1,
                   root: str | Path | None = None) -> pd.DataFrame:
    """The clip table with ``path`` pointing at filtered copies (written once, in parallel)."""
    from joblib import Parallel, delayed

    from ..features.cache import cache_dir

    folder = Path(root) if root else cache_dir() / "filtered" / f"{kind}-{int(cutoff)}-{sr}"
    folder.mkdir(parents=True, exist_ok=True)
    outs = [_filtered_path(folder, p) for p in table["path"]]
    Parallel(n_jobs=n_jobs)(delayed(_write_one)(p, o, kind, cutoff, sr)
                            for p, o in zip(table["path"], outs) if not o.exists())
    return table.assign(path=[str(o) for o in outs])


def sweep(run, table: pd.DataFrame, cutoffs=PAPER_CUTOFFS, kinds=KINDS, sr: int = 16000, n_jobs: int = 1,
          progress: bool = True, copies: bool = False, store: str | Path | None = None,
          keep: dict | None = None) -> pd.DataFrame:
    """Retrain and rescore per filter: ``run(table, kind, cutoff)`` is called once unfiltered
    (``kind == "none"``, cutoff 0) and once per (kind, cutoff); it returns the metric rows (a
    DataFrame) or a dict whose ``"rows"`` are the metric rows and whose other entries the caller
    wants back (trained models, per-clip scores) through ``keep[(kind, cutoff)]``. The rows are
    returned with ``kind`` and ``cutoff`` columns. ``run`` gets the unfiltered table and applies
    the filter in its feature pipeline, unless ``copies`` (then ``table``'s paths point at
    filtered WAV copies written by :func:`filtered_table`).

    With ``store`` (a folder that names everything the results depend on, see
    :func:`asdstudy.experiments.explain.sweep_store`), each setting's return value is saved there
    the moment it finishes (atomically) and a later call reads it instead of training again: an
    interrupted sweep resumes at the first setting it had not finished. ``keep["resumed"]`` then
    lists the settings that were read back.

    With ``n_jobs`` > 1 the settings still to run are run ``n_jobs`` at a time in worker processes
    (:func:`run_settings`); ``run`` must then be picklable (a closure is: joblib sends it by value)."""
    from tqdm.auto import tqdm

    jobs = [("none", 0)] + [(k, c) for k in kinds for c in cutoffs]
    folder = Path(store) if store else None
    if folder:
        folder.mkdir(parents=True, exist_ok=True)
    done, resumed, todo = {}, [], []
    for kind, cutoff in jobs:
        saved = folder / f"{kind}-{int(cutoff)}.pt" if folder else None
        res = _load(saved) if saved is not None and saved.exists() else None
        if res is not None:
            resumed.append((kind, cutoff))
            done[(kind, cutoff)] = res
        else:
            t = table if kind == "none" or not copies else filtered_table(table, kind, cutoff, sr, n_jobs)
            todo.append((t, kind, cutoff, saved))
    bar = tqdm(total=len(todo), desc="filter sweep", disable=not progress)
    for (_, kind, cutoff, _), res in zip(todo, run_settings(run, todo, n_jobs)):
        done[(kind, cutoff)] = res
        bar.update()
    bar.close()
    out = []
    for kind, cutoff in jobs:
        res = done[(kind, cutoff)]
        rows = res["rows"] if isinstance(res, dict) else res
        if keep is not None:
            keep[(kind, cutoff)] = res
        out.append(rows.assign(kind=kind, cutoff=cutoff))
    if keep is not None:
        keep["resumed"] = resumed
    return pd.concat(out, ignore_index=True)


def _run_setting(run, table: pd.DataFrame, kind: str, cutoff: float, saved: Path | None):
    """One setting of :func:`sweep`, stored the moment it finishes (in the worker that ran it)."""
    res = run(table, kind, cutoff)
    if saved is not None:
        _save(res, saved)
    return res


def run_settings(run, todo: list, n_jobs: int = 1):
    """``run(table, kind, cutoff)`` for every ``(table, kind, cutoff, saved)`` of ``todo``, results
    in that order; side by side in workers when ``n_jobs`` > 1 on a CPU
    (:func:`asdstudy.training.side_by_side`)."""
    from ..training import side_by_side

    return side_by_side(_run_setting, [(run, *item) for item in todo], n_jobs)


def _save(obj, path: Path) -> None:
    import torch

    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _load(path: Path):
    """A stored setting, or None (with a warning, the file removed) when it cannot be read."""
    import warnings

    import torch

    try:
        return torch.load(path, weights_only=False)
    except Exception as exc:
        warnings.warn(f"the stored filter-sweep setting {path} cannot be read ({exc}); it is removed and that "
                      "setting trained again.", stacklevel=3)
        path.unlink(missing_ok=True)
        return None
