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
          progress: bool = True, copies: bool = False) -> pd.DataFrame:
    """Retrain and rescore per filter: ``run(table, kind, cutoff) -> DataFrame`` of metric rows
    is called once unfiltered (``kind == "none"``, cutoff 0) and once per (kind, cutoff), so
    that ``run`` can keep what it trained under that key; the rows are returned with ``kind``
    and ``cutoff`` columns. ``run`` gets the unfiltered table and applies the filter in its
    feature pipeline, unless ``copies`` (then ``table``'s paths point at filtered WAV copies
    written by :func:`filtered_table`)."""
    from tqdm.auto import tqdm

    jobs = [("none", 0)] + [(k, c) for k in kinds for c in cutoffs]
    out = []
    for kind, cutoff in tqdm(jobs, desc="filter sweep", disable=not progress):
        t = table if kind == "none" or not copies else filtered_table(table, kind, cutoff, sr, n_jobs)
        rows = run(t, kind, cutoff)
        out.append(rows.assign(kind=kind, cutoff=cutoff))
    return pd.concat(out, ignore_index=True)
