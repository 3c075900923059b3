"""An on-disk feature cache, so that re-running a chapter does not recompute features.

A cached array is keyed by the clip's identity (absolute path, size, modification time) and by
the feature's name and parameters: change a parameter, or regenerate a clip, and the key
changes. Arrays are ``.npy`` files written atomically (temporary file, then rename), so an
interrupted extraction never leaves a truncated entry behind.

The cache lives in ``$ASDSTUDY_CACHE`` if set, else ``~/.cache/asdstudy``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .. import __version__


def cache_dir() -> Path:
    return Path(os.environ.get("ASDSTUDY_CACHE", Path.home() / ".cache" / "asdstudy"))


def clip_key(path: str | Path) -> str:
    p = Path(path).resolve()
    st = p.stat()
    return f"{p}|{st.st_size}|{st.st_mtime_ns}"


def feature_key(name: str, params: dict) -> str:
    blob = json.dumps({"name": name, "params": params}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


class FeatureCache:
    """Read-through cache of per-clip arrays for one feature definition.

    Args:
        name: the feature's name (e.g. "logmel").
        params: its parameters (any JSON-serialisable dict).
        root: cache folder (default :func:`cache_dir`).
    """

    def __init__(self, name: str, params: dict, root: str | Path | None = None):
        self.name = name
        self.params = params
        self.dir = Path(root or cache_dir()) / f"{name}-{feature_key(name, params)}"

    def path_for(self, clip: str | Path) -> Path:
        h = hashlib.sha1(clip_key(clip).encode()).hexdigest()
        return self.dir / h[:2] / f"{h}.npy"

    def get(self, clip) -> np.ndarray | None:
        p = self.path_for(clip)
        if p.exists():
            try:
                return np.load(p)
            except Exception:  # a damaged entry is recomputed, never trusted
                p.unlink(missing_ok=True)
        return None

    def put(self, clip, arr: np.ndarray) -> None:
        p = self.path_for(clip)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(f".tmp{os.getpid()}.npy")
        np.save(tmp, arr)
        os.replace(tmp, p)
        meta = self.dir / "feature.json"
        if not meta.exists():
            meta.write_text(json.dumps({"name": self.name, "params": self.params,
                                        "asdstudy": __version__}, default=str, indent=1))


def _compute_one(fn: Callable, path: str, cache: FeatureCache | None):
    arr = fn(path)
    if cache is not None:
        cache.put(path, arr)
    return arr


def extract(
    paths: Sequence[str | Path],
    fn: Callable[[str], np.ndarray],
    name: str,
    params: dict,
    n_jobs: int = 1,
    use_cache: bool = True,
    progress: bool = True,
    cache_root: str | Path | None = None,
) -> list[np.ndarray]:
    """Apply ``fn(path) -> array`` to every clip, in parallel, through the cache.

    Args:
        paths: clip files.
        fn: the per-clip feature function (must be picklable for n_jobs > 1).
        name, params: the feature's identity, part of the cache key.
        n_jobs: joblib worker processes.
        use_cache: read and write the cache.
        progress: show a progress bar.
        cache_root: cache folder override.

    Returns:
        One array per clip, in the order of ``paths``.
    """
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    cache = FeatureCache(name, params, cache_root) if use_cache else None
    paths = [str(p) for p in paths]
    out: list[np.ndarray | None] = [None] * len(paths)
    todo = []
    for i, p in enumerate(paths):
        hit = cache.get(p) if cache is not None else None
        if hit is None:
            todo.append(i)
        else:
            out[i] = hit
    if todo:
        jobs = (delayed(_compute_one)(fn, paths[i], cache) for i in todo)
        results = Parallel(n_jobs=n_jobs, return_as="generator")(jobs)
        bar = tqdm(results, total=len(todo), desc=f"{name} ({len(paths) - len(todo)} cached)",
                   unit="clip", disable=not progress)
        for i, arr in zip(todo, bar):
            out[i] = arr
    return out  # type: ignore[return-value]
