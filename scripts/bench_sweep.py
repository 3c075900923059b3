"""Benchmark: wall time of a small paper-003 sweep with 1 and with 2 worker processes.

Usage: python scripts/bench_sweep.py [--root DATA] [--points 8] [--epochs 3]

Runs the same GANomaly points (one machine type of the default synthetic set, features
already cached) into two fresh folders, once with n_jobs=1 and once with n_jobs=2, and prints
the wall times and the speed-up. Results are identical either way (checked).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from asdstudy.datasets import synthetic as syn
from asdstudy.models.gans import PAPER_COMMON, sweep_point
from asdstudy.runner import data_root
from asdstudy.sweep import Sweep, expand_grid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default="")
    ap.add_argument("--machine", default="slider")
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    root = syn.synthetic_root(data_root(args.root), "default", 0)
    syn.generate(root, profile="default", machines=[args.machine], progress=False)
    base = {**PAPER_COMMON, "root": str(root / "dcase2020"), "machine": args.machine, "kind": "ganomaly",
            "epochs": args.epochs, "batch_size": 512, "train_stride": 8, "seed": 0}
    points = expand_grid({"lr": [2e-4, 1e-3], "w_con": [1, 50], "latent": [8, 16]}, fixed=base)
    sweep_point(points[0])  # warm the feature cache outside the timing
    times, frames = {}, {}
    for n_jobs in (1, 2):
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            frames[n_jobs] = Sweep(Path(d), sweep_point).run(points, n_jobs=n_jobs, progress=False)
            times[n_jobs] = time.perf_counter() - t0
    a = frames[1].sort_values(["point_id", "row", "path", "part", "epoch"]).score.to_numpy(float)
    b = frames[2].sort_values(["point_id", "row", "path", "part", "epoch"]).score.to_numpy(float)
    same = np.allclose(a, b, equal_nan=True)
    print(f"{len(points)} points, {args.epochs} epochs each, {args.machine}:")
    for n, t in times.items():
        print(f"  n_jobs={n}: {t:.1f} s ({t / len(points):.1f} s per point)")
    print(f"  speed-up 2 vs 1 workers: {times[1] / times[2]:.2f}x; identical scores: {same}")


if __name__ == "__main__":
    main()
