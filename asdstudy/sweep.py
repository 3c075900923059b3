"""Hyperparameter grids and sweeps that run locally in parallel or anywhere else, point by point.

A *grid* is a dict of lists (the search space as data, e.g. paper 003's Table 3);
:func:`expand_grid` turns it into *points*: plain dicts of JSON-serialisable values, each with a
stable id (:func:`point_id`, a hash of its content). A :class:`Sweep` runs a top-level function
``fn(point) -> list of result dicts`` over points and stores each point's rows in
``<folder>/<point id>.json`` the moment it finishes:

* locally, :meth:`Sweep.run` dispatches points with joblib (``n_jobs`` worker processes);
* re-running skips points already stored, so an interrupted sweep resumes where it stopped;
* on a cluster, write the points with :meth:`Sweep.write_points` (one JSON line per point), run
  ``fn`` for each line on any machine (``python -m asdstudy.sweep FOLDER INDEX MODULE:FUNCTION``
  runs one), copy the resulting JSON files into the folder, and :meth:`Sweep.collect` gathers
  them as one frame -- the same as a local run.
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable

import pandas as pd

from . import ASDStudyError


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


def _run_one(fn: Callable, point: dict, folder: Path, threads: int | None = None) -> list[dict]:
    import torch

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _run_and_store(fn, point, folder)
    finally:
        torch.set_num_threads(previous)


def _run_and_store(fn: Callable, point: dict, folder: Path) -> list[dict]:
    t0 = time.perf_counter()
    rows = fn(point)
    seconds = time.perf_counter() - t0
    pid = point_id(point)
    record = {"point": point, "point_id": pid, "seconds": seconds, "rows": rows}
    tmp = folder / f".{pid}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(record, default=float))
    os.replace(tmp, folder / f"{pid}.json")  # atomic: a half-written point never looks done
    return rows


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
            threads_per_point: int = 1) -> pd.DataFrame:
        """Run the points not yet stored (joblib processes when n_jobs > 1); return all rows.

        Every point runs with ``threads_per_point`` torch threads whatever ``n_jobs`` is, so a
        point's numbers do not depend on how many workers ran the sweep (float sums in torch
        depend on the thread count).
        """
        from joblib import Parallel, delayed
        from tqdm.auto import tqdm

        todo = [p for p in points if not self.done(p)]
        if todo:
            if n_jobs == 1:
                for p in tqdm(todo, desc="sweep", disable=not progress):
                    _run_one(self.fn, p, self.folder, threads_per_point)
            else:
                jobs = (delayed(_run_one)(self.fn, p, self.folder, threads_per_point) for p in todo)
                list(tqdm(Parallel(n_jobs=n_jobs, return_as="generator")(jobs), total=len(todo), desc="sweep",
                          disable=not progress))
        return self.collect(points)

    def write_points(self, points: list[dict], path: str | Path | None = None) -> Path:
        """Write the points as JSON lines (one unit of work per line) for dispatch elsewhere."""
        path = Path(path) if path else self.folder / "points.jsonl"
        path.write_text("".join(json.dumps(p, sort_keys=True) + "\n" for p in points))
        return path

    def collect(self, points: list[dict] | None = None) -> pd.DataFrame:
        """All stored rows (of ``points`` only, if given) as one frame, with point_id and seconds."""
        wanted = None if points is None else {point_id(p) for p in points}
        frames = []
        for f in sorted(self.folder.glob("*.json")):
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


def main(argv: list[str] | None = None) -> int:
    """``python -m asdstudy.sweep FOLDER INDEX MODULE:FUNCTION``: run line INDEX of
    FOLDER/points.jsonl through MODULE.FUNCTION and store its rows (one cluster task)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3:
        print(main.__doc__, file=sys.stderr)
        return 2
    folder, index, target = Path(argv[0]), int(argv[1]), argv[2]
    lines = (folder / "points.jsonl").read_text().splitlines()
    if not 0 <= index < len(lines):
        print(f"index {index} out of range: {folder / 'points.jsonl'} has {len(lines)} points", file=sys.stderr)
        return 2
    module, _, name = target.partition(":")
    fn = getattr(importlib.import_module(module), name)
    _run_one(fn, json.loads(lines[index]), folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
