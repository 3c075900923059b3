"""The data chapter: where the clips come from, how they sound and how hard the task is.

Every profile but ``paper`` generates (or finds) the synthetic factory's sets: the DCASE
2020-layout set every chapter reads, and the DCASE 2021-style and labelled variants the
explain and ensemble chapters read (generated here once so that the runner's data fingerprint
is settled after this chapter). The ``paper`` profile describes the real dataset found under
``data_root``, taking its machine types from the clip table itself.

The task's difficulty is measured with a deliberately simple reference detector (Mahalanobis
distance of clip log-mel statistics), per machine id with bootstrap CIs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from .. import metrics as M
from ..datasets import clip_table
from ..datasets import synthetic as syn
from ..datasets.download import RECORDS, dcase2020_archives
from ..models.base import evaluate_per_unit
from ..models.reference import MahalanobisStats
from ..results import ResultWriter
from . import protocol as P

CHAPTER = "data"
REFERENCE = "Reference: Mahalanobis on clip log-mel statistics"
#: The reference detector's calibration target (AUC per machine id).
TARGET = (0.6, 0.95)


@dataclass
class Params(P.ChapterParams):
    machines: object = "all"
    n_audio_seconds: float = 4.0
    #: epochs of the DCASE 2020 baseline trained on the twin for the calibration check (0: no
    #: check, as on real data, where the baseline's own reproduction is the GAN chapter's)
    calibration_epochs: int = 40
    #: the real sample clips the twin's spectra are set beside ("": $ASDSTUDY_SHARED_DATA, else
    #: ../shared/data beside the repository; none found: the figure is left out, said so)
    shared_data: str = ""

    ZERO_SWITCHES_OFF: ClassVar[tuple] = ("calibration_epochs",)

    def validate(self):
        super().validate()
        if int(self.calibration_epochs) < 0:
            raise P.ASDStudyError(f"parameter 'calibration_epochs' is {self.calibration_epochs}; use 0 (no check) or more.")


@dataclass
class Result:
    params: Params
    data: P.ChapterData
    machines: list
    anomaly_kinds: pd.DataFrame
    variant_counts: pd.DataFrame
    balance: pd.DataFrame
    variant_plan: pd.DataFrame
    labelled_fraction: float
    ref_metrics: pd.DataFrame
    ref_scores: pd.DataFrame
    ref_means: pd.DataFrame
    per_kind: pd.DataFrame
    archives: pd.DataFrame
    calibration: pd.DataFrame     # the baseline on the twin vs published, per machine type
    calibration_text: str
    calibration_history: pd.DataFrame
    calibration_convergence: pd.DataFrame  # each machine type's baseline against the convergence rule
    spectra: pd.DataFrame         # mean log-mel spectrum per machine type: twin vs real sample clips
    spectra_text: str
    rows: pd.DataFrame
    gen_seconds: float
    seconds: float
    phases: pd.DataFrame = None  # seconds per phase of the chapter

    @property
    def levels(self) -> pd.DataFrame:
        """The factory's anomaly levels per machine type (offset in dB, width), as calibrated."""
        return levels_table(self.machines)

    def glue(self) -> dict:
        t = self.data.table
        per_type = self.ref_metrics.groupby("machine").auc.mean()
        return {"n_clips": len(t), "n_machines": t["machine"].nunique(), "n_units": t.groupby(["machine", "id"]).ngroups,
                "labelled_fraction": self.labelled_fraction, "ref_auc_min": per_type.min(), "ref_auc_max": per_type.max(),
                "ref_auc_min_machine": per_type.idxmin(), "ref_auc_max_machine": per_type.idxmax(),
                "data_chapter_seconds": self.seconds, "data_phases_text": P.phases_text(self.phases), "calibration_text": self.calibration_text,
                "spectra_text": self.spectra_text, "calibration_epochs": self.params.calibration_epochs,
                "calibration_convergence_text": P.convergence_text(self.calibration_convergence)}


def levels_table(machines) -> pd.DataFrame:
    """Per machine type: the anomaly level offset (dB) and width the factory uses, and where
    they come from (the level search of ``scripts/calibrate.py`` or the factory's defaults)."""
    return pd.DataFrame([{"machine": m, "level offset (dB)": syn.LEVELS.get(m, syn.Levels()).offset_db,
                          "level width": syn.LEVELS.get(m, syn.Levels()).width,
                          "set by": "calibrate.py --search" if m in syn.LEVELS else "factory default"}
                         for m in machines]).set_index("machine")


def anomaly_kinds(machines) -> pd.DataFrame:
    """The factory's anomaly kinds per machine type: band and level."""
    return pd.DataFrame([
        {"machine": m, "anomaly kind": k.name, "band (Hz)": f"{k.band[0]:.0f}-{k.band[1]:.0f}",
         "level re machine (dB)": f"{syn.anomaly_level_db(m, k, 0.0):+.1f} to {syn.anomaly_level_db(m, k, 1.0):+.1f}"}
        for m in machines if m in syn.ANOMALIES for k in syn.ANOMALIES[m]]).set_index(["machine", "anomaly kind"])


def load(p: Params, progress: bool = False) -> tuple[P.ChapterData, list, pd.DataFrame]:
    """The profile's data; for synthetic profiles also the variants the other chapters read."""
    from ..profiles import parameters as chapter_parameters

    root = P.real_data_root(p) if p.profile == "paper" else p.data_path()
    if p.profile == "paper":
        # the DCASE 2020 layout papers 000-003 read; a root may also hold DCASE 2021 (paper 004)
        table = clip_table(root, layout="dcase2020", machines=None)
        machines = P.machine_list(p.machines, default=sorted(table["machine"].unique()))
        table = table[table["machine"].isin(machines)]
        if table.empty:
            raise P.ASDStudyError(f"no clips of {', '.join(machines)} under {root}; check data_root or download the "
                                  "dataset first (`asdstudy data download`).")
        data = P.ChapterData(table.reset_index(drop=True), str(table["dataset"].iloc[0]), root, False)
        return data, sorted(data.table["machine"].unique()), pd.DataFrame()
    machines = P.machine_list(p.machines)
    data = P.load_data(p, machines, data_seed=p.seed, progress=progress)
    syn_root = syn.synthetic_root(root, p.profile, p.seed)
    variants = {"labelled": (chapter_parameters("ensemble", p.profile)["machines"], "ensemble (paper 000)"),
                "dcase2021": (chapter_parameters("explain", p.profile)["machines"], "explain (paper 004)")}
    rows = []
    for variant, (ms, used_by) in variants.items():
        syn.generate(syn_root, profile=p.profile, machines=ms, variant=variant, seed=p.seed, n_jobs=p.jobs, progress=progress)
        rows.append({"variant": variant, "machine types": ", ".join(ms),
                     "clips": len(clip_table(syn_root / variant, machines=ms)), "used by": used_by})
    return data, machines, pd.DataFrame(rows).set_index("variant")


def class_balance(table: pd.DataFrame) -> pd.DataFrame:
    return (table.assign(label=table["label"].map({0: "normal", 1: "anomaly"}))
            .groupby(["machine", "id", "split", "label"]).size().unstack("label", fill_value=0))


def variant_plan(profile: str, machines, seed: int) -> tuple[pd.DataFrame, float]:
    """Sizes of the DCASE 2021-style and labelled variants, and the labelled set's anomalous share."""
    sizes = syn.PROFILE_SIZES[profile]
    rows = []
    for variant in ("dcase2021", "labelled"):
        for m in machines:
            df = pd.DataFrame([{"domain": s.domain, "split": s.split, "label": s.label} for s in syn.plan(variant, m, sizes.of(variant), seed)])
            for (dom, split), g in df.groupby(["domain", "split"]):
                rows.append({"variant": variant, "machine": m, "domain": dom, "split": split,
                             "normal": int((g["label"] == 0).sum()), "anomaly": int((g["label"] == 1).sum())})
    v = pd.DataFrame(rows)
    lab = v[v["variant"] == "labelled"]
    return v.set_index(["variant", "machine", "domain", "split"]), float(lab.anomaly.sum() / (lab.normal + lab.anomaly).sum())


def reference_difficulty(table: pd.DataFrame, p: Params) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The reference detector per machine id (one model per id), AUC and pAUCs with CIs."""
    return evaluate_per_unit(lambda: MahalanobisStats(n_jobs=p.jobs), table, n_boot=p.n_boot, seed=p.seed)


def auc_per_anomaly_kind(scores: pd.DataFrame) -> pd.DataFrame:
    """The reference detector's AUC per anomaly kind: each kind's clips against all normal test
    clips of the machine type (scores of the per-id models; kinds are spread over ids)."""
    if "anomaly_kind" not in scores:
        return pd.DataFrame()
    rows = []
    for (m, k), g in scores[scores["label"] == 1].groupby(["machine", "anomaly_kind"]):
        normals = scores[(scores["machine"] == m) & (scores["label"] == 0)]
        y = np.r_[np.zeros(len(normals)), np.ones(len(g))]
        rows.append({"machine": m, "anomaly kind": k, "clips": len(g), "AUC": M.auc(y, np.r_[normals["score"], g["score"]]),
                     "median severity": g["severity"].median()})
    return pd.DataFrame(rows).set_index(["machine", "anomaly kind"])


def archives() -> pd.DataFrame:
    """The archives the downloader knows, per dataset."""
    d20 = dcase2020_archives()
    rows = [{"dataset": f"dcase2020 ({subset})", "Zenodo record": g.url.iloc[0].split("/record/")[1].split("/")[0],
             "archives": len(g), "machine types": ", ".join(sorted(g.machine)), "checksums": "pinned MD5"}
            for subset, g in d20.groupby("subset", sort=False)]
    for name, (record, pattern, ms) in RECORDS.items():
        rows.append({"dataset": name, "Zenodo record": record, "archives": len(ms) * (3 if "{snr}" in pattern else 1),
                     "machine types": ", ".join(ms), "checksums": "from the record's metadata"})
    return pd.DataFrame(rows).set_index("dataset")


def calibration(data: P.ChapterData, p: Params) -> tuple[pd.DataFrame, str, pd.DataFrame, list, pd.DataFrame]:
    """The twin check (:mod:`asdstudy.calibration`) on the chapter's synthetic set; on real data
    or with ``calibration_epochs`` 0 an empty table and the sentence why."""
    from .. import calibration as C

    if not data.synthetic:
        return pd.DataFrame(), ("This is real data: the twin check does not apply (the baseline's own reproduction on "
                                "it is in the GAN chapter)."), pd.DataFrame(), [], pd.DataFrame()
    if not p.calibration_epochs:
        return pd.DataFrame(), "The twin check was not run (calibration_epochs 0).", pd.DataFrame(), [], pd.DataFrame()
    run = C.baseline_on_twin(data.table, p.calibration_epochs, seed=p.seed, n_boot=p.n_boot, jobs=p.jobs,
                             converge=p.converge)
    table = C.calibration_table(run["means"], run["per_id"])
    curves = pd.DataFrame([{"machine": m, "epoch": i + 1, "loss": v, "curve": "train"}
                           for m, h in run["history"].items() for i, v in enumerate(h.train)]
                          + [{"machine": m, "epoch": i + 1, "loss": v, "curve": "validation"}
                             for m, h in run["history"].items() for i, v in enumerate(h.val)])
    rows = run["means"].assign(unit="mean")
    conv = P.convergence_table([(f"DCASE baseline / {m}", h) for m, h in run["history"].items()])
    return table, C.verdict(table), curves, [rows, run["per_id"]], conv


def shared_data_root(value: str = ""):
    """The folder of real sample clips: the parameter, else ``$ASDSTUDY_SHARED_DATA``, else
    ``../shared/data`` beside the repository; None when none exists."""
    import os
    from pathlib import Path

    from ..results import repo_root

    for cand in (value, os.environ.get("ASDSTUDY_SHARED_DATA", ""), str(repo_root().parent / "shared" / "data")):
        if cand and Path(cand).expanduser().is_dir():
            return Path(cand).expanduser().resolve()
    return None


def mean_spectra(table: pd.DataFrame, shared, n_per_machine: int = 30, seed: int = 0, jobs: int = 1
                 ) -> tuple[pd.DataFrame, str]:
    """The mean log-mel spectrum (128 mels, DCASE baseline settings; mean over frames and clips)
    of normal clips per machine type: the twin's (``n_per_machine`` training normals) beside the
    real sample clips' (every normal clip of the machine type in the shared sample), so a reader
    sees how close the twin's spectra are. Returns the frame and a sentence on what was found."""
    from ..features import LogMelParams, clip_logmels

    params = LogMelParams(n_mels=128)
    twin = table[table["label"] == 0].sample(frac=1, random_state=seed).groupby("machine").head(n_per_machine)
    real = pd.DataFrame()
    if shared is not None:
        parts = []
        for sub in ("dcase2020_task2_sample", "dcase2020_slider_train"):
            if (shared / sub).is_dir():
                parts.append(clip_table(shared / sub, layout="dcase2020"))
        real = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        if len(real):
            real = real[(real["label"] == 0) & real["machine"].isin(twin["machine"].unique())]
    rows = []
    for source, t in (("twin (synthetic)", twin), ("real sample clips", real)):
        if t.empty:
            continue
        specs = clip_logmels(t["path"].tolist(), params, n_jobs=jobs, progress=False)
        for m, idx in t.reset_index(drop=True).groupby("machine").groups.items():
            mean = np.mean([specs[i].mean(axis=0) for i in idx], axis=0)
            rows += [{"machine": m, "source": source, "mel band": b, "mean log-mel (dB)": float(v), "clips": len(idx)}
                     for b, v in enumerate(mean)]
    frame = pd.DataFrame(rows)
    if shared is None:
        text = ("No real sample clips were found (set ASDSTUDY_SHARED_DATA or -p shared_data), so the twin's "
                "spectra are shown alone.")
    elif real.empty:
        text = f"The real sample folder {shared} has no normal clips of these machine types; the twin is shown alone."
    else:
        n = real.groupby("machine").size()
        text = ("Real: the normal clips of the DCASE 2020 development sample in the shared folder ("
                + ", ".join(f"{m} {k}" for m, k in n.items()) + " clips) -- a handful, so the real curve is itself "
                "uncertain; twin: " + f"{n_per_machine} training normals per machine type.")
    return frame, text


def run(p: Params, progress: bool = False) -> Result:
    timer = P.Timer()
    data, machines, variant_counts = load(p, progress)
    gen_seconds = timer.lap("data generation")
    plan, frac = variant_plan(p.profile, machines, p.seed) if data.synthetic else (pd.DataFrame(), float("nan"))
    ref_metrics, ref_scores = reference_difficulty(data.table, p)
    ref_means = P.mean_over_units(ref_scores.assign(method=REFERENCE), by=("method", "machine"),
                                  metrics=("auc", "pauc_mcclish"), n_boot=p.n_boot, seed=p.seed)
    w = ResultWriter(CHAPTER, profile=p.profile, seed=p.seed, dataset=data.dataset)
    w.add_metrics("reference", REFERENCE, ref_metrics)
    w.add_frame(ref_means[ref_means["metric"] == "auc"].assign(unit="mean"), paper="reference")
    timer.lap("reference detector")
    cal, cal_text, cal_curves, cal_rows, cal_conv = calibration(data, p)
    timer.lap("twin check (DCASE baseline per machine type)")
    if cal_rows:
        means, per_id = cal_rows
        means = means.drop(columns="method")
        w.add_frame(means[means["metric"] == "auc"], paper="calibration", method="DCASE baseline on the twin",
                    note=f"one model per machine type, until flat (at most {p.calibration_epochs} epochs); mean over ids")
        w.add_frame(means[means["metric"] == "pauc_mcclish"].assign(metric="pauc"), paper="calibration",
                    method="DCASE baseline on the twin",
                    note=f"one model per machine type, until flat (at most {p.calibration_epochs} epochs); mean over ids; McClish")
    spectra, spectra_text = (mean_spectra(data.table, shared_data_root(p.shared_data), seed=p.seed, jobs=p.jobs)
                             if data.synthetic else (pd.DataFrame(), "Real data: no twin to compare."))
    timer.lap("mean spectra")
    rows = w.frame()
    w.write()
    return Result(params=p, data=data, machines=machines, anomaly_kinds=anomaly_kinds(machines),
                  variant_counts=variant_counts, balance=class_balance(data.table), variant_plan=plan,
                  labelled_fraction=frac, ref_metrics=ref_metrics, ref_scores=ref_scores, ref_means=ref_means,
                  per_kind=auc_per_anomaly_kind(ref_scores), archives=archives(), calibration=cal, calibration_text=cal_text,
                  calibration_history=cal_curves, calibration_convergence=cal_conv, spectra=spectra, spectra_text=spectra_text, rows=rows, gen_seconds=gen_seconds,
                  seconds=timer.seconds(), phases=timer.table())
