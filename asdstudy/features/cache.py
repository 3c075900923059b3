"""An on-disk feature cache that cannot serve stale or damaged features.

An entry is keyed by three things:

* the **content** of the clip: a BLAKE2b hash of the file's bytes, computed once and
  remembered by the file's path, size, modification time, change time and inode, so a clip
  replaced in place with the same size and mtime (``cp -p``, ``rsync -a``) is hashed again
  (its change time or inode differs) and recomputed when its bytes differ;
* the **feature definition**: its name and parameters;
* the **code** that computes it: a fingerprint of ``asdstudy/audio.py`` and every module of
  ``asdstudy/features`` (:func:`code_fingerprint`), so a fix in the feature code never reads
  features the old code computed.

Arrays are ``.npy`` files written atomically (temporary file, then rename) beside a small
record of their dtype, shape and a hash of their bytes; an entry whose array does not match
its record (truncated, replaced, zeroed) is discarded and recomputed, never returned. A clip
that is missing raises :class:`~asdstudy.audio.AudioError`.

The cache lives in ``$ASDSTUDY_CACHE`` if set, else ``~/.cache/asdstudy``.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .. import __version__
from ..audio import AudioError


def cache_dir() -> Path:
    return Path(os.environ.get("ASDSTUDY_CACHE", Path.home() / ".cache" / "asdstudy"))


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Hash of the code features are computed with: ``audio.py`` and ``features/*.py``."""
    pkg = Path(__file__).resolve().parent.parent
    h = hashlib.blake2b(digest_size=8)
    for p in [pkg / "audio.py", *sorted((pkg / "features").glob("*.py"))]:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _stat_key(p: Path) -> str:
    st = p.stat()
    return f"{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_ino}"


def content_hash(path: str | Path, root: str | Path | None = None) -> str:
    """BLAKE2b (16 bytes) of a clip's bytes, remembered by path + size + mtime + ctime + inode.

    Raises:
        AudioError: the clip does not exist.
    """
    p = Path(path).resolve()
    try:
        key = _stat_key(p)
    except FileNotFoundError:
        raise AudioError(f"{p}: no such file. Check the path, or regenerate/download the dataset "
                         "(`asdstudy data check` lists what is missing or damaged).") from None
    memo = Path(root or cache_dir()) / "content" / hashlib.sha1(str(p).encode()).hexdigest()[:2] / (
        hashlib.sha1(str(p).encode()).hexdigest() + ".json")
    try:
        rec = json.loads(memo.read_text())
        if rec.get("stat") == key and rec.get("path") == str(p):
            return rec["hash"]
    except Exception:
        pass
    h = hashlib.blake2b(digest_size=16)
    with open(p, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    _atomic_write_text(memo, json.dumps({"path": str(p), "stat": key, "hash": digest}))
    return digest


def tmp_path(path: Path, suffix: str = "") -> Path:
    """A temporary name beside ``path`` for an atomic write (write it, then ``os.replace``),
    unique to this process *and* thread: two threads of one process (a joblib worker extracting
    with threads) that write the same file at once must not share a temporary, or the second
    ``os.replace`` finds it gone."""
    import threading

    return path.with_name(f".{path.stem if suffix else path.name}.tmp{os.getpid()}-{threading.get_ident()}{suffix}")


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def array_digest(arr: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(arr).tobytes(), digest_size=16).hexdigest()


def feature_key(name: str, params: dict) -> str:
    """The hash naming a feature definition's cache folder: its name, parameters, the feature code
    and the numerics it is computed in (another CPU kind or mode gives other last bits, so a cache
    shared between machines or modes never hands one's arrays to the other)."""
    from ..numerics import label

    blob = json.dumps({"name": name, "params": params, "code": code_fingerprint(), "numerics": label()},
                      sort_keys=True, default=str)
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
        self.root = Path(root or cache_dir())
        self.dir = self.root / f"{name}-{feature_key(name, params)}"
        self.rejected: list[str] = []

    def path_for(self, clip: str | Path) -> Path:
        h = content_hash(clip, self.root)
        return self.dir / h[:2] / f"{h}.npy"

    def get(self, clip) -> np.ndarray | None:
        """The cached array of ``clip``, or None. An entry that does not match its record
        (dtype, shape, bytes) is deleted and reported in :attr:`rejected`."""
        p = self.path_for(clip)
        if not p.exists():
            return None
        meta = p.with_suffix(".json")
        try:
            rec = json.loads(meta.read_text())
            arr = np.load(p, allow_pickle=False)
            ok = (str(arr.dtype) == rec["dtype"] and list(arr.shape) == rec["shape"]
                  and array_digest(arr) == rec["digest"])
        except Exception:
            ok = False
        if ok:
            return arr
        self.rejected.append(str(clip))
        p.unlink(missing_ok=True)
        meta.unlink(missing_ok=True)
        return None

    def put(self, clip, arr: np.ndarray) -> None:
        arr = np.asarray(arr)
        p = self.path_for(clip)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = tmp_path(p, ".npy")
        np.save(tmp, arr)
        _atomic_write_text(p.with_suffix(".json"), json.dumps(
            {"clip": str(clip), "dtype": str(arr.dtype), "shape": list(arr.shape), "digest": array_digest(arr)}))
        os.replace(tmp, p)
        meta = self.dir / "feature.json"
        if not meta.exists():
            _atomic_write_text(meta, json.dumps({"name": self.name, "params": self.params, "code": code_fingerprint(),
                                                 "asdstudy": __version__}, default=str, indent=1))


def one_blas_thread():
    """Compute with one BLAS thread: OpenBLAS sums in another order with two threads than with
    one, so the same clip's float32 features would differ in their last bits between the main
    process (2 threads) and a joblib worker (1). Per-clip features are parallel over clips
    instead, so every clip's numbers are the same wherever they are computed."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _compute_one(fn: Callable, path: str, cache: FeatureCache | None):
    try:
        with one_blas_thread():
            arr = fn(path)
    except AudioError as exc:  # reported with every other bad clip of the call, not one per run
        return exc
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

    Raises:
        AudioError: every clip that could not be used (missing, corrupt, truncated, wrong rate,
            too short), all in one message.
    """
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    cache = FeatureCache(name, params, cache_root) if use_cache else None
    paths = [str(p) for p in paths]
    out: list[np.ndarray | None] = [None] * len(paths)
    todo = []
    bad: list[AudioError] = []
    for i, p in enumerate(paths):
        try:
            hit = cache.get(p) if cache is not None else None
        except AudioError as exc:  # a missing clip
            bad.append(exc)
            continue
        if hit is None:
            todo.append(i)
        else:
            out[i] = hit
    if cache is not None and cache.rejected:
        shown = ", ".join(Path(c).name for c in cache.rejected[:3])
        warnings.warn(f"{name}: {len(cache.rejected)} cached entr{'y' if len(cache.rejected) == 1 else 'ies'} did not "
                      f"match their record (damaged or replaced; e.g. {shown}) and are recomputed.", stacklevel=2)
    if todo:
        jobs = (delayed(_compute_one)(fn, paths[i], cache) for i in todo)
        results = Parallel(n_jobs=n_jobs, return_as="generator")(jobs)
        bar = tqdm(results, total=len(todo), desc=f"{name} ({len(paths) - len(todo)} cached)",
                   unit="clip", disable=not progress)
        for i, arr in zip(todo, bar):
            if isinstance(arr, AudioError):
                bad.append(arr)
            out[i] = arr
    if bad:
        if len(bad) == 1:
            raise bad[0]
        shown = "\n".join(f"  {e}" for e in bad[:20]) + (f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else "")
        raise AudioError(f"{len(bad)} of {len(paths)} clips cannot be used ({name}):\n{shown}\n"
                         "`asdstudy data check DIR` lists every bad clip of a folder; fetch or regenerate them.")
    return out  # type: ignore[return-value]
