"""The twin check: the DCASE 2020 baseline on the synthetic factory against its published results.

Usage: python scripts/calibrate.py [--data-root data] [--profile default] [--seed 0] [--epochs N]
       [--jobs 2] [--reference] [--fixed-epochs] [--search] [--machines valve,fan]

Generates the profile's synthetic set if needed (``<data-root>/synthetic/<profile>-seed<seed>``),
trains the DCASE 2020 Task 2 baseline autoencoder by its official recipe (one model per machine
type, 128 mels, 5 frames, batch 512; ``--epochs`` defaults to the data chapter's
``calibration_epochs`` of the profile) and prints, per machine type, its mean AUC and pAUC over
ids with 95 % bootstrap CIs beside the published development results, the spread between ids,
and whether the type lies within +-0.05 on both (:mod:`asdstudy.calibration`). Exits 1 when a
machine type lies outside the band. The baseline stops once its validation loss is flat (the
study's convergence rule) with ``--epochs`` as the cap; ``--fixed-epochs`` trains exactly
``--epochs``. ``--search`` then searches, per machine type, the anomaly level offset and width
(:class:`asdstudy.datasets.synthetic.Levels`) that bring the baseline closest to the published
figures, re-mixing the anomalous clips from their generator parts without retraining, and
prints the ``LEVELS`` table to put in :mod:`asdstudy.datasets.synthetic`. ``--reference`` also prints the reference detector's table
(Mahalanobis on clip statistics), the factory's earlier calibration target.
"""

from __future__ import annotations

import argparse
import sys
import time

from asdstudy import calibration as C
from asdstudy.datasets import clip_table
from asdstudy.datasets import synthetic as syn
from asdstudy.profiles import parameters


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default="data")
    ap.add_argument("--profile", default="default")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--reference", action="store_true")
    ap.add_argument("--fixed-epochs", action="store_true")
    ap.add_argument("--search", action="store_true")
    ap.add_argument("--machines", default="", help="comma-separated machine types (default: all six)")
    ap.add_argument("--search-seeds", default="", help="with --search: further seeds whose twins the levels must fit "
                    "too (comma-separated); each is generated and gets its own baseline")
    a = ap.parse_args(argv)
    epochs = a.epochs if a.epochs is not None else int(parameters("data", a.profile)["calibration_epochs"])
    if epochs < 1:
        print(f"the {a.profile} profile runs no twin check (calibration_epochs 0); pass --epochs N", file=sys.stderr)
        return 2

    def twin(seed):
        """The profile's synthetic set of this seed (generated if needed) and its clip table."""
        root = syn.synthetic_root(a.data_root, a.profile, seed)
        syn.generate(root, profile=a.profile, seed=seed, n_jobs=a.jobs)
        return root, clip_table(root / "dcase2020", layout="dcase2020")

    root, table = twin(a.seed)
    if a.machines:
        wanted = [m.strip() for m in a.machines.split(",") if m.strip()]
        unknown = sorted(set(wanted) - set(table["machine"]))
        if unknown:
            print(f"--machines names {unknown}, not in {root}; it holds {sorted(table['machine'].unique())}", file=sys.stderr)
            return 2
        table = table[table["machine"].isin(wanted)]
    t0 = time.time()
    run = C.baseline_on_twin(table, epochs, seed=a.seed, jobs=a.jobs, progress=True, converge=not a.fixed_epochs)
    cal = C.calibration_table(run["means"], run["per_id"])
    trained = {m: len(h.train) for m, h in run["history"].items()}
    how = f"{epochs} epochs" if a.fixed_epochs else f"until flat, at most {epochs} epochs"
    print(f"DCASE 2020 baseline, one model per machine type, {how}, on {root} ({time.time() - t0:.0f} s)")
    print("epochs trained:", ", ".join(f"{m} {n}" for m, n in sorted(trained.items())), "\n")
    print(run["per_id"][["machine", "unit", "auc", "pauc_mcclish"]].round(3).to_string(index=False), "\n")
    print(cal.round(3).to_string(), "\n")
    if a.reference:
        from asdstudy.models.base import evaluate_per_unit
        from asdstudy.models.reference import MahalanobisStats

        metrics, _ = evaluate_per_unit(lambda: MahalanobisStats(n_jobs=a.jobs), table, n_boot=1000)
        print("reference detector, mean AUC over ids:")
        print(metrics.groupby("machine")[["auc", "pauc_mcclish"]].mean().round(3).to_string(), "\n")
    print(C.verdict(cal))
    if a.search:
        t0 = time.time()
        more = []
        for extra in [int(x) for x in a.search_seeds.split(",") if x.strip()]:
            t2 = twin(extra)[1]
            t2 = t2[t2["machine"].isin(table["machine"].unique())]
            print(f"training the baseline on the seed-{extra} twin for the search")
            more.append((t2, C.baseline_on_twin(t2, epochs, seed=extra, jobs=a.jobs, progress=True,
                                                converge=not a.fixed_epochs), extra))
        found = C.search_levels(table, run, syn.PROFILE_SIZES[a.profile], seed=a.seed, progress=True, more=more)
        print(f"\nsearched in {time.time() - t0:.0f} s:\n{found.round(3).to_string()}\n")
        print("LEVELS: dict[str, Levels] = {")
        for m, r in found.iterrows():
            print(f'    "{m}": Levels({r["offset_db"]:.2f}, {r["width"]}),')
        print("}")
    return 0 if (cal["calibrated"] != "no").all() else 1


if __name__ == "__main__":
    sys.exit(main())
