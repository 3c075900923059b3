"""Stacked frame vectors of a training set, written once to disk and memory-mapped by every
process that trains on them.

Paper 003's grid trains thousands of frame-level models per machine type on the same training
clips; materialising the frame vectors in every worker costs ``n_vectors x n_frames x n_mels x 4``
bytes each (about 3.5 GB for DCASE 2020 ToyCar at 128 mels and 5 frames, so about 28 GB with
8 workers). :func:`shared_frame_vectors` writes them once per (clips, feature, context) into
``<cache>/frames/<key>.f32`` -- under an exclusive lock, so concurrent workers wait for the one
writing instead of writing it twice -- and returns a read-only ``np.memmap``: every worker of
the machine reads the same pages of the operating system's page cache.

The key is the feature cache's identity (feature parameters + the feature code's fingerprint)
and the **content hash** of every clip in order, so a changed clip, parameter or feature code
never reads an old file. A file whose size does not match its record (a killed writer on a
filesystem without atomic rename, a truncated copy) is discarded and rewritten, with a warning.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from ..features.cache import _atomic_write_text, cache_dir, content_hash, feature_key
from ..features.logmel import LogMelParams, stack_frames

#: clips read from the feature cache at a time while the file is written (bounds the memory)
CHUNK = 256


def frames_key(paths: Sequence[str], params: LogMelParams, n_frames: int, channel: int = 0,
               root: str | Path | None = None) -> str:
    h = hashlib.blake2b(digest_size=12)
    h.update(feature_key("logmel", dict(params.key(), channel=channel)).encode())
    h.update(f"|{n_frames}|".encode())
    for p in paths:
        h.update(content_hash(p, root).encode())
    return h.hexdigest()


class ScaledRows:
    """Rows of a (memory-mapped) 2-D array, mapped by ``(x - shift) / scale`` and returned as a
    float32 tensor when indexed with a LongTensor -- the interface :func:`asdstudy.training.fit`
    reads batches through, so the whole array is never copied into memory.

    Args:
        X: (n, d) array (``np.memmap`` or ``np.ndarray``).
        shift, scale: the affine map applied per batch (float32 arithmetic, the same numbers
            as mapping the whole array first).
        stride: use every ``stride``-th row only.
    """

    def __init__(self, X: np.ndarray, shift: float = 0.0, scale: float = 1.0, stride: int = 1):
        self.X, self.shift, self.scale, self.stride = X, shift, scale, int(stride)
        self._n = (len(X) + self.stride - 1) // self.stride

    def __len__(self) -> int:
        return self._n

    @property
    def shape(self) -> tuple[int, int]:
        return (self._n, self.X.shape[1])

    def rows(self, idx) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64) * self.stride
        return (np.asarray(self.X[idx]) - self.shift) / self.scale

    def __getitem__(self, idx):
        import torch

        if isinstance(idx, torch.Tensor):
            idx = idx.numpy()
        return torch.from_numpy(np.ascontiguousarray(self.rows(idx), dtype=np.float32))


def _chunks(paths: Sequence[str], params: LogMelParams, n_frames: int, channel: int, n_jobs: int):
    """The stacked frame vectors of the clips, CHUNK clips at a time, through the feature cache."""
    from ..features import clip_logmels

    for i in range(0, len(paths), CHUNK):
        specs = clip_logmels(list(paths[i:i + CHUNK]), params, n_jobs=n_jobs, progress=False, channel=channel)
        yield [stack_frames(np.asarray(s), n_frames).astype(np.float32) for s in specs]


def shared_frame_vectors(paths: Sequence[str], params: LogMelParams, n_frames: int = 5, channel: int = 0,
                         n_jobs: int = 1, root: str | Path | None = None) -> tuple[np.memmap, np.ndarray]:
    """The stacked frame vectors of ``paths`` (in order) as a read-only memory map, written
    once under ``<cache>/frames/`` and shared by every process that asks for the same clips.

    Returns:
        (X, owner): X (n_vectors, n_frames * n_mels) float32 ``np.memmap`` with the same
        numbers as :func:`asdstudy.features.frame_vectors_of`, and per vector its clip's index.
    """
    paths = [str(p) for p in paths]
    if not paths:
        from .. import ASDStudyError

        raise ASDStudyError("shared_frame_vectors needs at least one clip.")
    folder = Path(root or cache_dir()) / "frames"
    folder.mkdir(parents=True, exist_ok=True)
    key = frames_key(paths, params, n_frames, channel, root)
    data, rec = folder / f"{key}.f32", folder / f"{key}.json"
    with open(folder / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one writer; the others wait and then read its file
        meta = _valid(data, rec)
        if meta is None:
            meta = _write(data, rec, paths, params, n_frames, channel, n_jobs)
    lengths = np.asarray(meta["lengths"], dtype=np.int64)
    X = np.memmap(data, dtype=np.float32, mode="r", shape=(int(lengths.sum()), meta["dim"]))
    return X, np.repeat(np.arange(len(lengths)), lengths)


def _valid(data: Path, rec: Path) -> dict | None:
    if not rec.exists():
        return None
    try:
        meta = json.loads(rec.read_text())
        want = int(sum(meta["lengths"])) * int(meta["dim"]) * 4
        ok = data.exists() and data.stat().st_size == want
    except Exception:
        ok = False
    if ok:
        return meta
    warnings.warn(f"the shared frame-vector file {data} does not match its record (an interrupted or damaged "
                  "write); it is written again.", stacklevel=3)
    data.unlink(missing_ok=True)
    rec.unlink(missing_ok=True)
    return None


def _write(data: Path, rec: Path, paths, params, n_frames, channel, n_jobs) -> dict:
    tmp = data.with_name(f".{data.stem}.tmp{os.getpid()}")
    lengths, dim = [], None
    try:
        with open(tmp, "wb") as fh:
            for stacks in _chunks(paths, params, n_frames, channel, n_jobs):
                for s in stacks:
                    dim = s.shape[1]
                    lengths.append(len(s))
                    fh.write(np.ascontiguousarray(s).tobytes())
        meta = {"lengths": lengths, "dim": int(dim), "n_frames": n_frames, "clips": len(paths),
                "params": params.key()}
        os.replace(tmp, data)
    finally:
        tmp.unlink(missing_ok=True)
    _atomic_write_text(rec, json.dumps(meta, default=str))
    return meta
