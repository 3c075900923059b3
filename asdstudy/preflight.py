"""The paper profile proven before a GPU hour is spent: ``asdstudy preflight``.

:func:`preflight` runs every chapter's notebook with the ``paper`` profile on the user's real
data, each loop cut short (:data:`CUTS`: one epoch, one seed, few bootstrap replicates, few
masks, at most ``max_clips`` clips per machine, unit, split, condition and domain) but every
branch kept (every machine type, id / section, domain, filter cutoff, class and setting the
paper profile visits). Nothing is published: the executed notebooks and their rows stay in
the preflight folder. Per chapter it reports passed, or the failing cell and its error; and a
**resource plan**: the measured seconds of the cut run scaled by the ratio of the paper
profile's planned work to the cut run's work (:func:`work`, in training-clip passes), the peak
host memory of the run, and the feature cache it wrote scaled by the clip ratio, with a
warning where the plan exceeds the free disk or the machine's memory.

Assumptions of the plan (printed with it): cost grows linearly with the clip passes the
chapter makes (a batch costs its clips: true on a CPU, pessimistic on a GPU, which batches
better); the cut run's fixed costs (kernel start, imports, one-off compilation) are scaled
too, so small plans are overestimated; memory is the largest process's peak of the cut run
(the paper run holds more clips in memory where a chapter loads a whole machine type at once).
"""

from __future__ import annotations

import os
import resource
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import ASDStudyError
from .profiles import parameters

#: The chapters the paper profile runs, in order (the metrics page has no data; the scale page
#: times a sweep, the scoreboard reads rows).
CHAPTERS = ("data", "autoencoders", "sequence", "gans", "ensemble", "explain")

#: Every loop cut short; nothing that chooses a branch (machines, ids, sections, cutoffs, kinds,
#: settings) is changed.
CUTS: dict[str, dict] = {
    "data": {},
    "autoencoders": {"epochs": 1, "seeds": [0], "patience": 1},
    "sequence": {"epochs": 1, "ae_epochs": 1, "seeds": [0], "train_stride": 25},
    "gans": {"seeds": [0], "baseline_epochs": 1, "epoch_cap": 1},
    "ensemble": {"scale": 0.005, "cv_folds": 2, "cv_repeats": 1},
    # every cutoff, machine, section and domain kept; the ASTs tiny, one clip per group
    "explain": {"epochs": 1, "sweep_epochs": 1, "n_masks": 4, "slime_clips": 1, "detector_epochs": 1,
                "n_train": 1, "n_test": 1, "small": {"hidden": 16, "layers": 1, "heads": 2}, "batch_size": 32},
}


#: The fewest clips per group a chapter's code path needs (held-out normals for thresholds
#: need at least four training clips per unit).
MIN_CLIPS = {"autoencoders": 4, "sequence": 4, "ensemble": 4}


def cut_parameters(chapter: str, data_root: str, max_clips: int, jobs: int) -> dict:
    """The paper profile's parameters of ``chapter`` with the preflight's cuts."""
    max_clips = max(int(max_clips), MIN_CLIPS.get(chapter, 0))
    over = {**CUTS[chapter], "data_root": str(data_root), "max_clips": max_clips, "jobs": int(jobs), "n_boot": 20}
    return parameters(chapter, "paper", over, validate=True)


# ------------------------------------------------------------------------------ the plan

def chapter_table(chapter: str, params: dict) -> pd.DataFrame:
    """The clips a chapter reads with these parameters (the clip table only: no features)."""
    from .experiments import protocol as P
    from .profiles import params_class

    p = params_class(chapter).from_mapping(params)
    if chapter in ("autoencoders", "sequence"):
        return P.load_data(p, [p.machine], ids=p.ids).table
    if chapter == "gans":
        return P.load_data(p, p.machine_list).table
    if chapter == "ensemble":
        return P.load_data(p, p.machines, variant="labelled").table
    if chapter == "explain":
        from .experiments.explain import subsample

        t = P.load_data(p, p.machines, variant="dcase2021").table
        return subsample(t[t["label"].notna() | (t["split"] == "train")], p.n_train, p.n_test, p.seed)
    from .datasets import clip_table

    t = clip_table(P.real_data_root(p), layout="dcase2020")
    return P.cap_clips(t, p.max_clips, p.seed) if p.max_clips else t


def work(chapter: str, params: dict, table: pd.DataFrame) -> float:
    """Training-clip passes (clips x epochs, summed over every model the chapter trains, plus
    the scoring passes that dominate where training does not) of one run of ``chapter``."""
    q = params
    train = table[table["split"] == "train"]
    n_train, n_test = len(train), int((table["split"] == "test").sum())
    seeds = len(q.get("seeds", [0]))
    if chapter == "data":
        return float(len(table))
    if chapter == "autoencoders":
        return (3 + len(q.get("both_units", []))) * seeds * q["epochs"] * n_train + n_test
    if chapter == "sequence":
        return seeds * (2 * q["epochs"] / q["train_stride"] + q["ae_epochs"]) * n_train + n_test
    if chapter == "gans":
        from .models.gans import PAPER_SETTINGS

        total = 0.0
        cap = q.get("epoch_cap") or 10**9
        for m, g in train.groupby("machine"):
            n = len(g) / q["base"].get("train_stride", 1)
            for kind in q["kinds"]:
                if kind == "egbad":
                    epochs = q["base"]["epochs"]
                elif q["settings"] == "paper":
                    epochs = PAPER_SETTINGS[kind][m]["epochs"] if m in PAPER_SETTINGS[kind] else q["base"]["epochs"]
                else:
                    from .sweep import grid_size

                    epochs = q["base"]["epochs"] * grid_size(q["grid"])
                total += min(epochs, cap) * n * seeds
            total += min(q["baseline_epochs"], cap) * len(g) * seeds
        return total
    if chapter == "ensemble":
        sets = 3 if q.get("embeddings") != "off" else 1
        return q["scale"] * n_train * (q["cv_folds"] * q["cv_repeats"] * 2 * sets + 6)
    if chapter == "explain":
        asts = len(q["inputs"]) * q["epochs"] + 2 * len(q["cutoffs"]) * q["sweep_epochs"]
        if q["sweep_epochs"] != q["epochs"]:
            asts += q["sweep_epochs"]
        explained = n_test if not q["slime_clips"] else min(n_test, q["slime_clips"] * 2 * table["machine"].nunique() * 6)
        # on real data (the paper profile) only the DCASE baseline is trained beside the AST and
        # only the AST is explained (no ground-truth band to score other explanations against)
        real = q.get("profile") == "paper"
        detectors, explained_models = (1, 1) if real else (5, 6)
        fills = len(q.get("slime_fills") or ["silence"])  # every explanation is repeated per occlusion fill
        return (asts * n_train + detectors * q["detector_epochs"] * n_train
                + explained_models * q["n_masks"] * explained * fills)
    raise ASDStudyError(f"no work model for chapter {chapter!r}")


def _dir_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def _peak_rss_bytes() -> int:
    """The largest finished child process's peak resident memory so far (Linux: KiB)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def _total_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):  # pragma: no cover
        return 0


@dataclass
class ChapterCheck:
    chapter: str
    passed: bool
    error: str
    seconds: float
    work_cut: float
    work_paper: float
    peak_rss: int
    cache_bytes: int
    clips_cut: int
    clips_paper: int
    note: str = ""

    @property
    def hours(self) -> float:
        return self.seconds * self.work_paper / max(self.work_cut, 1e-9) / 3600

    @property
    def disk(self) -> float:
        return self.cache_bytes * self.clips_paper / max(self.clips_cut, 1)


def preflight(data_root: str | Path, chapters=CHAPTERS, max_clips: int = 4, jobs: int = 2,
              out: str | Path | None = None, progress: bool = False) -> pd.DataFrame:
    """Run every chapter's paper-profile path, cut short, on ``data_root``; the checks and the plan.

    Returns one row per chapter: passed / failing cell, measured seconds, planned device hours,
    peak host memory (GB), feature-cache disk (GB) for the full run, and warnings. The executed
    notebooks and rows are kept under ``out`` (default ``runs/preflight``); nothing is published.
    """
    from .features.cache import cache_dir
    from .runner import _execute, _first_error, repo_root

    root = Path(data_root)
    if not root.is_dir():
        raise ASDStudyError(f"preflight: the data root {root} is not a folder; download the datasets there first "
                            "(`asdstudy data download ...`).")
    bad = [c for c in chapters if c not in CHAPTERS]
    if bad:
        raise ASDStudyError(f"preflight: unknown chapter(s) {bad}; choose from {', '.join(CHAPTERS)}.")
    out = Path(out) if out else repo_root() / "runs" / "preflight"
    (out / "results").mkdir(parents=True, exist_ok=True)
    cache = cache_dir()
    checks = []
    for chapter in chapters:
        params = cut_parameters(chapter, str(root), max_clips, jobs)
        full = parameters(chapter, "paper", {"data_root": str(root)}, validate=True)
        try:
            t_cut = chapter_table(chapter, params)
        except ASDStudyError as exc:  # the data root lacks what the chapter needs: a finding in itself
            checks.append(ChapterCheck(chapter, False, f"before any cell: {exc}", 0.0, 1.0, 0.0, 0, 0, 0, 0))
            continue
        w_cut, n_cut = work(chapter, params, t_cut), len(t_cut)
        try:  # the full run's size; a root too small for it still gets its code path checked
            t_full = chapter_table(chapter, full)
            w_full, n_full, no_plan = work(chapter, full, t_full), len(t_full), ""
        except ASDStudyError as exc:
            w_full, n_full, no_plan = float("nan"), 0, f"no plan: the full paper run cannot start here ({exc})"
        env = dict(os.environ, ASDSTUDY_RESULTS=str(out / "results"), ASDSTUDY_RESULTS_OUT=str(out / "results"),
                   ASDSTUDY_CHAPTERS=str(out))
        env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
        before = _dir_bytes(cache) if cache.exists() else 0
        nb = out / f"{chapter}.ipynb"
        t0 = time.time()
        rc = _execute(repo_root() / "notebooks" / f"{chapter}.ipynb", nb, params, env, progress)
        seconds = time.time() - t0
        error = ""
        if rc != 0:
            err = _first_error(nb)
            error = (f"cell {err['cell']} (execution count {err['count']}): {err['ename']}: {err['evalue']}" if err
                     else f"papermill exit {rc}, no cell error recorded")
        grown = max(0, (_dir_bytes(cache) if cache.exists() else 0) - before)
        checks.append(ChapterCheck(chapter, rc == 0, error, seconds, w_cut, w_full, _peak_rss_bytes(), grown,
                                   n_cut, n_full, no_plan))
    return plan_frame(checks, cache)


def _significant(x: float, digits: int = 2) -> float:
    """``x`` to ``digits`` significant figures: a plan of a few seconds must not read as 0.00 hours."""
    import math

    return 0.0 if x == 0 or not math.isfinite(x) else round(x, digits - 1 - math.floor(math.log10(abs(x))))


def plan_frame(checks: list[ChapterCheck], cache: Path) -> pd.DataFrame:
    """The per-chapter table, with warnings where the plan exceeds free disk or memory."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    cache.mkdir(parents=True, exist_ok=True)
    free, mem = shutil.disk_usage(cache).free, _total_memory()
    rows = []
    for c in checks:
        warn = [c.note] if c.note else []
        if c.passed and c.disk > free:
            warn.append(f"the feature cache would need {c.disk / 1e9:.0f} GB; {free / 1e9:.0f} GB are free at {cache}")
        if c.passed and mem and c.peak_rss > 0.8 * mem:
            warn.append(f"peak memory {c.peak_rss / 1e9:.1f} GB is over 80 % of this machine's {mem / 1e9:.0f} GB")
        rows.append({"chapter": c.chapter, "status": "passed" if c.passed else "FAILED", "error": c.error,
                     "seconds (cut run)": round(c.seconds, 1), "clips (cut / paper)": f"{c.clips_cut} / {c.clips_paper}",
                     "work ratio": round(c.work_paper / max(c.work_cut, 1e-9), 1),
                     f"planned {device} hours": _significant(c.hours) if c.passed else float("nan"),
                     "peak host memory so far (GB)": round(c.peak_rss / 1e9, 2),
                     "feature cache, paper run (GB)": round(c.disk / 1e9, 2) if c.passed else float("nan"),
                     "warnings": "; ".join(warn)})
    df = pd.DataFrame(rows).set_index("chapter")
    passed = df[df["status"] == "passed"]
    total_disk = passed["feature cache, paper run (GB)"].sum(skipna=True) * 1e9
    df.attrs["total_hours"] = float(passed[f"planned {device} hours"].sum(skipna=True))
    df.attrs["total_disk_gb"] = float(total_disk / 1e9)
    df.attrs["device"] = device
    df.attrs["warning"] = (f"all chapters together need about {total_disk / 1e9:.0f} GB of feature cache; {free / 1e9:.0f} GB "
                           f"are free at {cache}" if total_disk > free else "")
    return df


ASSUMPTIONS = ("Planned hours = the cut run's seconds x (the paper run's clip passes / the cut run's); cost taken as "
               "linear in clip passes (a batch costs its clips: true on a CPU, pessimistic on a GPU); fixed costs are "
               "scaled too, so small plans are overestimated. Memory is the largest process's peak so far in the cut "
               "run. Disk is the feature cache the cut run wrote, scaled by the clip ratio.")
