"""``asdstudy data check``: open every clip of a folder and list every bad one at once.

A clip is bad when it cannot be read, holds no samples, holds fewer frames than its header
promises (a cut-short copy), is silent, holds NaN or infinite samples, has another sample rate
or channel count than its dataset (16 kHz; one channel for DCASE, eight for raw MIMII), or is
much shorter than the other clips of its machine type (below :data:`SHORT_FRACTION` of their
median duration, or under :data:`MIN_SECONDS`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..audio import DCASE_SR, declared_frames

#: A clip shorter than this share of its machine type's median duration is "too short".
SHORT_FRACTION = 0.9
#: No dataset here has clips shorter than this (seconds).
MIN_SECONDS = 1.0
COLUMNS = ["path", "machine", "samplerate", "channels", "seconds", "problem"]


def inspect_clip(path: str) -> dict:
    """What one clip holds: rate, channels, duration, and its own problems (not the folder's)."""
    import soundfile as sf

    out = {"path": path, "samplerate": np.nan, "channels": np.nan, "seconds": np.nan, "problems": []}
    try:
        data, sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception as exc:
        out["problems"].append(f"unreadable ({str(exc).splitlines()[0][:80]})")
        return out
    out.update(samplerate=sr, channels=data.shape[1], seconds=data.shape[0] / sr if sr else 0.0)
    promised = declared_frames(path)
    if data.shape[0] == 0:
        out["problems"].append("empty (no samples)")
        return out
    if promised is not None and data.shape[0] < promised:
        out["problems"].append(f"truncated ({data.shape[0] / sr:.2f} s of the {promised / sr:.2f} s its header promises)")
    if not np.all(np.isfinite(data)):
        out["problems"].append("NaN or infinite samples")
    elif not np.any(data):
        out["problems"].append("silent (every sample is zero)")
    return out


def check_folder(root: str | Path, layout: str = "auto", n_jobs: int = 2, progress: bool = True,
                 expected_sr: int = DCASE_SR) -> pd.DataFrame:
    """Every bad clip under ``root``, one row per clip (its problems joined by "; ").

    Args:
        root: a dataset folder (any layout :func:`~asdstudy.datasets.detect_layout` knows; WAVs
            that fit no layout are checked too).
        layout: "auto" or the layout to expect (sets the expected channel count).
        n_jobs: worker processes.
        expected_sr: the dataset's sample rate.

    Returns:
        A frame with :data:`COLUMNS` (empty when every clip is fine); ``attrs["n_clips"]`` holds
        how many clips were opened.
    """
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    from . import detect_layout
    from .table import DatasetError

    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found.")
    paths = sorted(str(p) for p in root.rglob("*.wav") if ".unpack" not in p.parts)
    if not paths:
        raise DatasetError(f"{root}: no WAV files found; is this the right folder?")
    if layout == "auto":
        try:
            layout = detect_layout(root)
        except DatasetError:
            layout = "unknown"
    channels = 8 if layout == "mimii" else 1
    jobs = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(inspect_clip)(p) for p in paths)
    rows = list(tqdm(jobs, total=len(paths), desc=f"checking {root.name}", unit="clip", disable=not progress))
    df = pd.DataFrame(rows)
    df["machine"] = [_machine_of(Path(p), root, layout) for p in df["path"]]
    for i, r in df.iterrows():
        if not r["problems"] or not any(x.startswith(("unreadable", "empty")) for x in r["problems"]):
            if r["samplerate"] == r["samplerate"] and int(r["samplerate"]) != expected_sr:
                r["problems"].append(f"{int(r['samplerate'])} Hz (the dataset's rate is {expected_sr} Hz)")
            if r["channels"] == r["channels"] and int(r["channels"]) != channels:
                r["problems"].append(f"{int(r['channels'])} channel(s) ({layout} clips have {channels})")
    med = df.groupby("machine")["seconds"].transform("median")
    for i in df.index[(df["seconds"] < SHORT_FRACTION * med) | (df["seconds"] < MIN_SECONDS)]:
        if not any(x.startswith(("truncated", "empty")) for x in df.at[i, "problems"]):
            df.at[i, "problems"].append(f"too short ({df.at[i, 'seconds']:.2f} s; its machine type's clips last "
                                        f"{med[i]:.2f} s)")
    bad = df[df["problems"].map(bool)].copy()
    bad["problem"] = bad["problems"].map("; ".join)
    out = bad.reindex(columns=COLUMNS).reset_index(drop=True)
    out.attrs["n_clips"] = len(df)
    out.attrs["layout"] = layout
    return out


def _machine_of(path: Path, root: Path, layout: str) -> str:
    parts = path.relative_to(root).parts
    if layout == "mimii":
        return path.parent.parent.parent.name
    if len(parts) >= 3 and path.parent.name in ("train", "test", "source_test", "target_test"):
        return path.parent.parent.name
    return parts[0] if len(parts) > 1 else ""
