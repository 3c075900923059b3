"""Low- and high-pass filtering of the audio, and a sweep that retrains and rescores a detector
per cutoff (paper 004: cutoffs 400 Hz to 8 kHz in 400 Hz steps, filters applied to the audio
before any feature, at training and test time alike).

Filtered clips are written once as WAV files under the feature cache
(``<cache>/filtered/<kind>-<cutoff>/``), so every detector reads them through its usual path
and its own feature cache.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .. import ASDStudyError

#: The paper's cutoffs: 400 Hz to 8 kHz in 400 Hz steps.
PAPER_CUTOFFS = tuple(range(400, 8001, 400))
KINDS = ("lowpass", "highpass")


def filter_audio(y: np.ndarray, sr: int, kind: str, cutoff: float, order: int = 8) -> np.ndarray:
    """Zero-phase Butterworth low- or high-pass (second-order sections, forward-backward).

    A cutoff at or above the Nyquist frequency passes everything (low-pass) or nothing
    (high-pass); a cutoff at or below 0 the reverse.
    """
    from scipy.signal import butter, sosfiltfilt

    if kind not in KINDS:
        raise ASDStudyError(f"filter kind must be one of {', '.join(KINDS)}, got {kind!r}.")
    y = np.asarray(y, dtype=np.float64)
    nyq = sr / 2
    if cutoff >= nyq or cutoff <= 0:
        passes = (kind == "lowpass") == (cutoff >= nyq)
        return (y if passes else np.zeros_like(y)).astype(np.float32)
    sos = butter(order, cutoff / nyq, btype="low" if kind == "lowpass" else "high", output="sos")
    return sosfiltfilt(sos, y).astype(np.float32)


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
          progress: bool = True) -> pd.DataFrame:
    """Retrain and rescore per filter: ``run(filtered_table, kind, cutoff) -> DataFrame`` of
    metric rows is called once unfiltered (``kind == "none"``, cutoff 0) and once per (kind,
    cutoff), so that ``run`` can keep what it trained under that key; the rows are
    returned with ``kind`` and ``cutoff`` columns."""
    from tqdm.auto import tqdm

    jobs = [("none", 0)] + [(k, c) for k in kinds for c in cutoffs]
    out = []
    for kind, cutoff in tqdm(jobs, desc="filter sweep", disable=not progress):
        t = table if kind == "none" else filtered_table(table, kind, cutoff, sr, n_jobs)
        rows = run(t, kind, cutoff)
        out.append(rows.assign(kind=kind, cutoff=cutoff))
    return pd.concat(out, ignore_index=True)
