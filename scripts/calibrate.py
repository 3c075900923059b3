"""Calibration table of the synthetic factory: the reference detector's AUC per machine type.

Usage: python scripts/calibrate.py [--root data/synthetic] [--profile default] [--jobs 2]

Generates the set if needed, fits the Mahalanobis-on-clip-statistics detector per machine id,
and prints per-id and per-type AUC / pAUC with 95 % bootstrap CIs. The foundation requires
every machine type's mean AUC to lie in [0.60, 0.95]; the script exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time

from asdstudy.datasets import clip_table
from asdstudy.datasets.synthetic import generate
from asdstudy.models.base import evaluate_per_unit
from asdstudy.models.reference import MahalanobisStats


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default="data/synthetic")
    ap.add_argument("--profile", default="default")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)
    generate(a.root, profile=a.profile, seed=a.seed, n_jobs=a.jobs)
    t0 = time.time()
    table = clip_table(f"{a.root}/dcase2020")
    metrics, scores = evaluate_per_unit(lambda: MahalanobisStats(n_jobs=a.jobs), table, n_boot=1000)
    print(metrics[["machine", "unit", "auc", "auc_low", "auc_high", "pauc_mcclish", "n_normal",
                   "n_anomaly"]].round(3).to_string(index=False))
    per_type = metrics.groupby("machine")[["auc", "pauc_mcclish", "pauc_raw"]].mean().round(3)
    print("\nper machine type (arithmetic mean over ids, DCASE 2020 style):")
    print(per_type.to_string())
    if "anomaly_kind" in scores:
        from asdstudy.metrics import auc
        print("\nAUC per anomaly kind (all normals of the type vs that kind):")
        for (m, k), g in scores[scores.label == 1].groupby(["machine", "anomaly_kind"]):
            normals = scores[(scores.machine == m) & (scores.label == 0)]
            y = [0] * len(normals) + [1] * len(g)
            print(f"  {m:12s} {k:18s} n={len(g):3d} AUC={auc(y, list(normals.score) + list(g.score)):.3f}")
    print(f"\n({time.time() - t0:.0f} s for features and scoring)")
    ok = per_type["auc"].between(0.60, 0.95).all()
    print("calibration", "OK: every type in [0.60, 0.95]" if ok else "FAILED: a type is outside [0.60, 0.95]")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
