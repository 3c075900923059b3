"""Hyperparameter grids and sweeps that run locally in parallel or on a cluster, point by point.

A *grid* is a dict of lists (the search space as data, e.g. paper 003's Table 3);
:func:`expand_grid` turns it into *points*: plain dicts of JSON-serialisable values, each with a
stable id (:func:`point_id`, a hash of its content). A :class:`Sweep` runs a top-level function
``fn(point) -> list of result dicts`` over points and stores each point's rows in
``<folder>/<point id>.json`` the moment it finishes (atomically: a killed worker never leaves
a half-written point):

* locally, :meth:`Sweep.run` dispatches points with joblib (``n_jobs`` worker processes);
* on a cluster, ``Sweep.run(points, scheduler="tcp://host:8786")`` (or a
  ``dask.distributed.Client``, or ``$ASDSTUDY_DASK_SCHEDULER``) submits every point as a dask
  future with retries; results stream back as they complete, with a progress bar. Workers need
  the data root and the sweep folder on a filesystem they all share; a worker that cannot see
  them fails its point with a message naming the path and the worker;
* re-running skips points already stored, so an interrupted sweep resumes where it stopped;
* every point runs with one torch thread, so its numbers do not depend on the engine or the
  number of workers;
* ``asdstudy sweep status FOLDER`` counts points done, failed (with their errors) and pending;
  ``asdstudy sweep run FOLDER --scheduler ADDRESS`` runs a folder's ``points.jsonl``.
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
import json
import os
import socket
import time
from pathlib import Path
from typing import Callable

import pandas as pd

from . import ASDStudyError
from .numerics import mode


def expand_grid(grid: dict[str, list], fixed: dict | None = None) -> list[dict]:
    """All combinations of a grid's values, in a stable order (keys as given), each merged
    over ``fixed``.

    >>> expand_grid({"a": [1, 2], "b": ["x"]}, fixed={"c": 0})
    [{'c': 0, 'a': 1, 'b': 'x'}, {'c': 0, 'a': 2, 'b': 'x'}]
    """
    for key, values in grid.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ASDStudyError(f"grid entry {key!r} must be a non-empty list of values, got {values!r}.")
    keys = list(grid)
    return [{**(fixed or {}), **dict(zip(keys, combo))} for combo in itertools.product(*(grid[k] for k in keys))]


def grid_size(grid: dict[str, list]) -> int:
    n = 1
    for values in grid.values():
        n *= len(values)
    return n


def point_id(point: dict) -> str:
    """A short stable hash of a point's content (key order does not matter)."""
    return hashlib.sha1(json.dumps(point, sort_keys=True, default=str).encode()).hexdigest()[:12]


def code_fingerprint(modules: list[str]) -> str:
    """A short hash of the source of modules (dotted names): put it in every point so that
    results computed by older code are not reused."""
    h = hashlib.sha1()
    for name in modules:
        h.update(name.encode())
        h.update(Path(importlib.import_module(name).__file__).read_bytes())
    return h.hexdigest()[:12]


ENV_SCHEDULER = "ASDSTUDY_DASK_SCHEDULER"
META = "sweep.json"
POINTS = "points.jsonl"


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return f"dask worker {get_worker().address} ({socket.gethostname()}, pid {os.getpid()})"
    except Exception:
        return f"{socket.gethostname()}, pid {os.getpid()}"


def _check_paths(point: dict, folder: Path) -> None:
    """A point's data root and the sweep folder must be visible where it runs."""
    root = point.get("root")
    if root and not Path(root).exists():
        raise ASDStudyError(f"{_worker_name()} cannot see the data root {root}: every worker needs the data on a "
                            "filesystem it shares with the client (mount it at the same path).")
    if not folder.is_dir():
        raise ASDStudyError(f"{_worker_name()} cannot see the sweep folder {folder}: every worker needs it on a "
                            "shared filesystem to store its points.")


def _check_numerics(expected: str | None) -> None:
    """A point must run in the numerics the client runs in (:mod:`asdstudy.numerics`), or its
    numbers would not be the client's: a dask worker started without the client's mode is refused."""
    if expected is None:
        return
    from . import numerics

    here = numerics.mode()
    if here != expected:
        raise ASDStudyError(f"{_worker_name()} runs {here} numerics, but the sweep's client runs {expected}: start "
                            f"every worker with {numerics.VARIABLE}={expected} in its environment, so that its "
                            "points' numbers are the ones the client would compute.")
    numerics.describe()  # portable, but the libraries loaded before the pins: refused with its own message


def _run_one(fn: Callable, point: dict, folder: Path, threads: int | None = None,
             numerics_mode: str | None = None) -> list[dict]:
    import torch

    folder = Path(folder)
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        _check_paths(point, folder)
        _check_numerics(numerics_mode)
        return _run_and_store(fn, point, folder)
    finally:
        torch.set_num_threads(previous)


def _run_and_store(fn: Callable, point: dict, folder: Path) -> list[dict]:
    t0 = time.perf_counter()
    rows = fn(point)
    seconds = time.perf_counter() - t0
    pid = point_id(point)
    from .numerics import label

    record = {"point": point, "point_id": pid, "seconds": seconds, "rows": rows, "worker": _worker_name(),
              "numerics": label()}
    tmp = folder / f".{pid}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(record, default=float))
    os.replace(tmp, folder / f"{pid}.json")  # atomic: a half-written point never looks done
    (folder / f"{pid}.failed.json").unlink(missing_ok=True)
    return rows


def _function_name(fn: Callable) -> str:
    return f"{fn.__module__}:{fn.__qualname__}"


def load_function(target: str) -> Callable:
    """``module:function`` -> the function (e.g. ``asdstudy.models.gans:sweep_point``)."""
    module, _, name = target.partition(":")
    if not module or not name:
        raise ASDStudyError(f"function {target!r} must read MODULE:FUNCTION, e.g. asdstudy.models.gans:sweep_point.")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ASDStudyError(f"cannot load the sweep function {target!r}: {exc}") from None


def _client(scheduler):
    """A dask.distributed Client for an address, or the Client given."""
    try:
        from distributed import Client
    except ImportError:
        raise ASDStudyError("a dask scheduler was given but dask.distributed is not installed: "
                            "pip install 'dask[distributed]'.") from None
    if isinstance(scheduler, Client):
        return scheduler, False
    try:
        return Client(str(scheduler), timeout=os.environ.get("ASDSTUDY_DASK_TIMEOUT", "20s")), True
    except OSError as exc:
        raise ASDStudyError(f"cannot reach the dask scheduler at {scheduler}: {exc}. Start one "
                            "(`dask scheduler`, or a LocalCluster) or unset $ASDSTUDY_DASK_SCHEDULER.") from None


class Sweep:
    """Points of a grid run through one function, each point's rows stored as it finishes.

    Args:
        folder: where the per-point JSON files live (created).
        fn: a *top-level* (picklable) function ``fn(point: dict) -> list[dict]``.
    """

    def __init__(self, folder: str | Path, fn: Callable):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.fn = fn

    def done(self, point: dict) -> bool:
        return (self.folder / f"{point_id(point)}.json").exists()

    def run(self, points: list[dict], n_jobs: int = 1, progress: bool = True,
            threads_per_point: int = 1, scheduler=None, retries: int = 2) -> pd.DataFrame:
        """Run the points not yet stored; return all rows of ``points``.

        Args:
            n_jobs: local joblib worker processes (ignored with a scheduler).
            threads_per_point: torch threads per point whatever the engine (float sums in torch
                depend on the thread count, so a point's numbers do not depend on how it ran).
            scheduler: a dask scheduler address, a ``distributed.Client``, or None
                (``$ASDSTUDY_DASK_SCHEDULER`` if set, else joblib).
            retries: dask retries per point (a point whose worker died is resubmitted).

        Raises:
            ASDStudyError: naming every point that failed, with its error (each failure is
                also stored as ``<point id>.failed.json``; stored points stay stored).
        """
        scheduler = scheduler or os.environ.get(ENV_SCHEDULER) or None
        self.write_points(points)
        todo = [p for p in points if not self.done(p)]
        if todo:
            if scheduler:
                self._run_dask(todo, scheduler, progress, threads_per_point, retries)
            else:
                self._run_joblib(todo, n_jobs, progress, threads_per_point)
        failed = [p for p in points if not self.done(p)]
        if failed:
            errors = [self._failure(p) for p in failed]
            shown = "; ".join(f"{point_id(p)}: {e}" for p, e in zip(failed[:3], errors[:3]))
            raise ASDStudyError(f"{len(failed)} of {len(points)} sweep points failed in {self.folder} ({shown}). "
                                f"The others are stored; `asdstudy sweep status {self.folder}` lists every failure, "
                                "and running the sweep again retries only the failed points.")
        return self.collect(points)

    def _record_failure(self, point: dict, error: str) -> None:
        pid = point_id(point)
        tmp = self.folder / f".{pid}.failed.tmp"
        tmp.write_text(json.dumps({"point_id": pid, "point": point, "error": error}, default=str))
        os.replace(tmp, self.folder / f"{pid}.failed.json")

    def _failure(self, point: dict) -> str:
        f = self.folder / f"{point_id(point)}.failed.json"
        return json.loads(f.read_text())["error"] if f.exists() else "no result stored"

    def _run_joblib(self, todo, n_jobs, progress, threads):
        from joblib import Parallel, delayed
        from tqdm.auto import tqdm

        if n_jobs == 1:
            results = [_safe_run(self.fn, p, self.folder, threads, mode())
                       for p in tqdm(todo, desc="sweep", disable=not progress)]
        else:
            jobs = (delayed(_safe_run)(self.fn, p, self.folder, threads, mode()) for p in todo)
            results = list(tqdm(Parallel(n_jobs=n_jobs, return_as="generator")(jobs), total=len(todo), desc="sweep",
                                disable=not progress))
        for p, err in zip(todo, results):
            if err:
                self._record_failure(p, err)

    def _run_dask(self, todo, scheduler, progress, threads, retries):
        from distributed import as_completed
        from tqdm.auto import tqdm

        client, own = _client(scheduler)
        try:
            futures = {client.submit(_run_one, self.fn, p, str(self.folder), threads, mode(),
                                     key=f"sweep-point-{point_id(p)}",
                                     retries=retries, pure=False): p for p in todo}
            bar = tqdm(total=len(futures), desc=f"sweep on {client.scheduler.address}", disable=not progress)
            for fut in as_completed(futures):
                if fut.status == "error":
                    exc = fut.exception()
                    self._record_failure(futures[fut], f"{type(exc).__name__}: {exc}")
                fut.release()
                bar.update(1)
            bar.close()
        finally:
            if own:
                client.close()

    def status(self) -> pd.DataFrame:
        """One row per point of ``points.jsonl``: id, state (done / failed / pending), error, seconds."""
        path = self.folder / POINTS
        if not path.exists():
            raise ASDStudyError(f"{path} not found: not a sweep folder (Sweep.run writes it).")
        rows = []
        for line in path.read_text().splitlines():
            p = json.loads(line)
            pid = point_id(p)
            done, failed = self.folder / f"{pid}.json", self.folder / f"{pid}.failed.json"
            if done.exists():
                rows.append({"point_id": pid, "state": "done", "error": "",
                             "seconds": json.loads(done.read_text())["seconds"]})
            elif failed.exists():
                rows.append({"point_id": pid, "state": "failed", "error": json.loads(failed.read_text())["error"],
                             "seconds": float("nan")})
            else:
                rows.append({"point_id": pid, "state": "pending", "error": "", "seconds": float("nan")})
        return pd.DataFrame(rows, columns=["point_id", "state", "error", "seconds"])

    def write_points(self, points: list[dict], path: str | Path | None = None) -> Path:
        """Write the points as JSON lines (one unit of work per line) and the sweep's function
        (``sweep.json``), so that ``asdstudy sweep run/status FOLDER`` can take the folder up."""
        path = Path(path) if path else self.folder / POINTS
        known = []
        if path.exists():
            known = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        ids = {point_id(p) for p in known}
        merged = known + [p for p in points if point_id(p) not in ids]
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(p, sort_keys=True, default=str) + "\n" for p in merged))
        os.replace(tmp, path)
        (self.folder / META).write_text(json.dumps({"function": _function_name(self.fn)}))
        return path

    @classmethod
    def open(cls, folder: str | Path, function: str | None = None) -> "Sweep":
        """The sweep stored in ``folder``, with its function from ``sweep.json`` unless given."""
        folder = Path(folder)
        if not function:
            meta = folder / META
            if not meta.exists():
                raise ASDStudyError(f"{meta} not found: pass the function as MODULE:FUNCTION.")
            function = json.loads(meta.read_text())["function"]
        return cls(folder, load_function(function))

    def points(self) -> list[dict]:
        path = self.folder / POINTS
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []

    def collect(self, points: list[dict] | None = None) -> pd.DataFrame:
        """All stored rows (of ``points`` only, if given) as one frame, with point_id and seconds."""
        wanted = None if points is None else {point_id(p) for p in points}
        frames = []
        for f in sorted(self.folder.glob("*.json")):
            if f.name == META or f.name.endswith(".failed.json"):
                continue
            rec = json.loads(f.read_text())
            if wanted is not None and rec["point_id"] not in wanted:
                continue
            frames.append(pd.DataFrame(rec["rows"]).assign(point_id=rec["point_id"], seconds=rec["seconds"]))
        if wanted is not None:
            missing = len(wanted) - len(frames)
            if missing:
                raise ASDStudyError(f"{missing} of {len(wanted)} sweep points have no results in {self.folder}; "
                                    "run them (Sweep.run) before collecting.")
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _safe_run(fn: Callable, point: dict, folder: Path, threads: int | None,
              numerics_mode: str | None = None) -> str | None:
    """Run one point in a joblib worker; the error text instead of raising (recorded by the caller)."""
    try:
        _run_one(fn, point, folder, threads, numerics_mode)
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
