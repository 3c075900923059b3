"""The "Running at scale" page: the same sweep on joblib and on a dask cluster, measured, and
what the papers' full sweeps would cost.

A small GAN sweep (paper 003's detectors at a tiny budget on the profile's synthetic set) runs
twice, once with local joblib worker processes and once on a ``dask.distributed``
``LocalCluster`` with as many single-threaded workers; the rows must be identical (one torch
thread per point whatever the engine) and the wall times give each engine's throughput. The
full grid's cost is extrapolated from the measured seconds per frame vector processed.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..models.gans import PAPER_GRID, sweep_point
from ..sweep import Sweep, expand_grid, grid_size
from . import protocol as P

CHAPTER = "scale"
#: Paper 003: two searched models (GANomaly, Skip-GANomaly) on six machine types, trained for
#: 10 epochs on every frame vector at batch 16 (Tables 3-5).
PAPER003 = {"models": 2, "epochs": 10, "train_stride": 1}
#: Paper 003, Table 2: training clips per machine type (10 s clips -> 313 frames -> 309 vectors).
PAPER003_TRAIN_CLIPS = {"fan": 3675, "pump": 3349, "slider": 2804, "ToyCar": 4000, "ToyConveyor": 3000, "valve": 3291}
VECTORS_PER_CLIP = 309
#: DCASE 2021 Task 2 (its task description): seven machine types; per type and section 1,000
#: source-domain and 3 target-domain training clips, and 100 normal + 100 anomalous test clips
#: per domain. Sections 00-02 are the development set; paper 004's 42 classes (7 x 6 sections)
#: also need the evaluation set's training sections 03-05.
DCASE2021 = {"machines": 7, "train_per_section": 1003, "test_per_section": 400, "sections": 6, "test_sections": 3}
#: The full AST's input: 10 s clips at a 10 ms hop padded to 1,024 frames of 128 bins (paper 004
#: fine-tunes the AudioSet-pretrained base model, 86 M parameters).
AST_INPUT = {"frames": 1024, "bins": 128}


@dataclass
class Params(P.ChapterParams):
    machine: str = "valve"
    n_points: int = 8
    epochs: int = 1
    train_stride: int = 32
    scheduler: str = ""   # an existing cluster to measure instead of a LocalCluster started here
    time_ast: bool = True  # time one training step and one forward of the full AST (paper 004's estimate)

    def validate(self):
        super().validate()
        for name in ("n_points", "train_stride"):
            P._positive(self, name)
        if self.n_points < 2:
            raise P.ASDStudyError(f"parameter 'n_points' is {self.n_points}; the benchmark needs at least 2 points.")


@dataclass
class Result:
    params: Params
    data: P.ChapterData
    timings: pd.DataFrame
    identical: bool
    estimate: pd.DataFrame
    seconds_per_vector: float
    n_vectors: int
    ast_timing: dict
    ast_estimate: pd.DataFrame
    seconds: float

    def glue(self) -> dict:
        t = self.timings.set_index("engine")
        return {"scale_points": self.params.n_points, "scale_identical": "identical" if self.identical else "NOT identical",
                "scale_joblib_pps": t["points per minute"].iloc[0], "scale_dask_pps": t["points per minute"].iloc[1],
                "scale_ratio": t["points per minute"].iloc[1] / t["points per minute"].iloc[0],
                "scale_grid_points": int(self.estimate["points"].iloc[0]),
                "scale_grid_cpu_years": float(self.estimate["CPU-core years"].iloc[0]),
                "scale_seconds_per_vector": self.seconds_per_vector, "scale_minutes": self.seconds / 60,
                "scale_ast_summary": self.ast_summary()}

    def ast_summary(self) -> str:
        """Paper 004's estimate in words (or why it was not made)."""
        if not self.ast_timing:
            return "The full AST was not timed in this run (parameter time_ast is false), so there is no estimate."
        t = self.ast_timing
        return (f"One training step of the full AST (random weights of the real architecture, {t['parameters'] / 1e6:.0f} M "
                f"parameters, one clip of {AST_INPUT['frames']} x {AST_INPUT['bins']}, {t['threads']} thread) took "
                f"{t['step_s']:.1f} s here and one forward pass {t['forward_s']:.1f} s, so the plan below is about "
                f"{float(self.ast_estimate['CPU-core years'].iloc[0]):.1f} CPU-core years.")


def bench_points(p: Params, data: P.ChapterData) -> list[dict]:
    """``n_points`` GANomaly points of a small grid over learning rate and w_con at a tiny budget."""
    grid = {"lr": [1e-4, 2e-4, 5e-4, 1e-3], "w_con": [1, 10, 50, 100]}
    base = {"root": str(data.root), "kind": "ganomaly", "machine": p.machine, "seed": p.seed, "epochs": p.epochs,
            "batch_size": 512, "train_stride": p.train_stride, "latent": 8, "n_hidden": 3, "w_adv": 1, "w_enc": 1,
            # timed: every engine trains every point (no read-back from the model store)
            "model_store": False}
    pts = expand_grid(grid, fixed=base)[: p.n_points]
    # every other point trains on four times the vectors, so that the per-vector cost can be
    # told apart from the fixed cost of a point (loading, building, scoring)
    return [{**q, "train_stride": max(1, p.train_stride // 4)} if i % 2 else q for i, q in enumerate(pts)]


def _warm() -> int:
    """Import what a GAN point needs (torch, the package's models), in a worker process."""
    import os

    import torch  # noqa: F401

    from ..models import gans  # noqa: F401
    return os.getpid()


def warm_workers(engine: str, jobs: int, scheduler=None) -> int:
    """Start and warm the engine's worker processes before a timing, so that both engines are
    timed on the sweep itself and neither on starting Python and importing torch. Returns
    the number of distinct worker processes warmed."""
    if engine == "joblib":
        from joblib import Parallel, delayed

        return len(set(Parallel(n_jobs=jobs)(delayed(_warm)() for _ in range(4 * jobs))))
    from distributed import Client

    with Client(scheduler, timeout="30s") as client:
        return len(client.run(_warm))


def measure(points: list[dict], engine: str, jobs: int, scheduler=None) -> tuple[float, pd.DataFrame]:
    """Wall seconds of a fresh sweep of ``points`` on one engine (its workers warmed first), and
    its rows."""
    warm_workers(engine, jobs, scheduler)
    with tempfile.TemporaryDirectory() as folder:
        sweep = Sweep(Path(folder), sweep_point)
        t0 = time.perf_counter()
        rows = sweep.run(points, n_jobs=jobs, progress=False, scheduler=scheduler if engine != "joblib" else None)
        return time.perf_counter() - t0, rows


def compare_engines(p: Params, points: list[dict]) -> tuple[pd.DataFrame, bool, pd.Series]:
    """The same points on joblib and on a dask cluster (a LocalCluster of ``jobs`` single-threaded
    worker processes on 127.0.0.1 unless ``scheduler`` names one)."""
    t_local, rows_local = measure(points, "joblib", p.jobs)
    if p.scheduler:
        t_dask, rows_dask = measure(points, "dask", p.jobs, p.scheduler)
        label = f"dask cluster at {p.scheduler}"
    else:
        from distributed import LocalCluster

        with LocalCluster(n_workers=p.jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None, silence_logs=40) as cluster:
            t_dask, rows_dask = measure(points, "dask", p.jobs, cluster.scheduler_address)
        label = f"dask LocalCluster, {p.jobs} workers x 1 thread"
    key = ["point_id", "row", "path", "part", "epoch"]

    def norm(r):
        return r.drop(columns=["seconds"]).sort_values([k for k in key if k in r]).reset_index(drop=True)

    identical = norm(rows_local).equals(norm(rows_dask))
    n = len(points)
    timings = pd.DataFrame([
        {"engine": f"joblib, {p.jobs} processes", "points": n, "wall seconds": t_local, "points per minute": 60 * n / t_local},
        {"engine": label, "points": n, "wall seconds": t_dask, "points per minute": 60 * n / t_dask}])
    point_seconds = rows_local.groupby("point_id").seconds.first()
    timings["median seconds per point"] = float(point_seconds.median())
    return timings, identical, point_seconds


def per_vector_seconds(points: list[dict], point_seconds: pd.Series, n_vectors: int, epochs: int) -> float:
    """Seconds per frame vector trained on: the slope of point time against vectors trained on
    (epochs x vectors / stride) over the benchmark's two strides, so that a point's fixed cost
    (loading, building, scoring the test clips) does not count."""
    from ..sweep import point_id

    x = np.array([epochs * n_vectors / q["train_stride"] for q in points], float)
    y = np.array([point_seconds[point_id(q)] for q in points], float)
    if np.ptp(x) == 0:
        raise P.ASDStudyError("the benchmark needs points at two training strides (n_points >= 2).")
    slope = float(np.polyfit(x, y, 1)[0])
    return max(slope, 0.0)


def full_grid_estimate(per_vector: float) -> pd.DataFrame:
    """Paper 003's full search from the measured cost per frame vector trained on.

    Assumes a point's training time grows with the frame vectors it trains on (epochs x
    vectors / stride, with the training clips of the paper's Table 2); the paper's batch of 16
    makes more optimiser steps per vector than the 512 used here, and each point also pays a
    fixed cost, so this is a lower bound.
    """
    vectors = {m: n * VECTORS_PER_CLIP for m, n in PAPER003_TRAIN_CLIPS.items()}
    per_grid = grid_size(PAPER_GRID)
    rows = []
    for m, v in vectors.items():
        sec = per_vector * PAPER003["epochs"] * v / PAPER003["train_stride"]
        rows.append({"sweep": f"paper 003, {m}", "points": per_grid * PAPER003["models"], "seconds per point (estimate)": sec})
    t = pd.DataFrame(rows)
    t["CPU-core years"] = t["points"] * t["seconds per point (estimate)"] / 3.156e7
    total = pd.DataFrame([{"sweep": "paper 003, full grid (Table 3), all six types", "points": int(t.points.sum()),
                           "seconds per point (estimate)": float(np.average(t["seconds per point (estimate)"], weights=t.points)),
                           "CPU-core years": float(t["CPU-core years"].sum())}])
    out = pd.concat([total, t], ignore_index=True)
    out["days on 100 single-core workers"] = out["CPU-core years"] * 365.25 / 100
    return out


def time_ast(config=None, n_frames: int = AST_INPUT["frames"], n_bins: int = AST_INPUT["bins"], threads: int = 1,
             seed: int = 0, device: str = "cpu") -> dict:
    """Seconds of one training step (forward, backward, Adam) and of one forward pass of an AST
    on one clip, with ``threads`` torch threads (one per sweep point, as the sweeps run).

    The weights are random: a step costs the same whatever their values, so the real
    architecture (``config`` None: the base model paper 004 fine-tunes) is timed without the
    pretrained weights. One untimed step first, so allocation is not counted. ``device="cuda"``
    times it on a GPU (a GPU plan: pass that timing to :func:`paper004_estimate`).
    """
    import torch
    import torch.nn.functional as F
    from transformers import ASTConfig, ASTForAudioClassification

    cfg = config or ASTConfig(max_length=n_frames, num_mel_bins=n_bins, num_labels=2 * DCASE2021["machines"] * 3)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(seed)
        model = ASTForAudioClassification(cfg).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-5)
        x, y = torch.randn(1, cfg.max_length, cfg.num_mel_bins, device=device), torch.tensor([0], device=device)
        sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)

        def step():
            opt.zero_grad()
            F.cross_entropy(model(input_values=x).logits, y).backward()
            opt.step()
            sync()

        step()
        t0 = time.perf_counter()
        step()
        step_s = time.perf_counter() - t0
        with torch.no_grad():
            t0 = time.perf_counter()
            model(input_values=x)
            sync()
            forward_s = time.perf_counter() - t0
        return {"step_s": step_s, "forward_s": forward_s, "parameters": sum(q.numel() for q in model.parameters()),
                "threads": threads, "device": str(device)}
    finally:
        torch.set_num_threads(previous)


def paper004_plan(explain_params) -> dict:
    """Paper 004's work as the explain chapter's parameters plan it: fine-tunings (each input's
    AST, then the sweep's filtered retrainings, and an unfiltered one unless the sweep reuses
    Table 1's model), clip-steps, forward passes (the
    k-NN embeddings of every model, SLIME's masks on every test clip)."""
    n_train = DCASE2021["machines"] * DCASE2021["sections"] * DCASE2021["train_per_section"]
    n_test = DCASE2021["machines"] * DCASE2021["test_sections"] * DCASE2021["test_per_section"]
    from .explain import reuses_table1_model

    e = explain_params
    sweep_models = (0 if reuses_table1_model(e) else 1) + 2 * len(e.cutoffs)
    models = len(e.inputs) + sweep_models
    return {"n_train": n_train, "n_test": n_test, "models": models,
            "clip_steps": n_train * (len(e.inputs) * e.epochs + sweep_models * e.sweep_epochs),
            "embedding_forwards": models * (n_train + n_test), "slime_forwards": e.n_masks * n_test}


def paper004_estimate(timing: dict, plan: dict) -> pd.DataFrame:
    """CPU-core time of paper 004's plan from the measured per-clip costs (one thread).

    Assumes a step's cost grows with the clips in its batch (the paper's batch of 12 costs 12
    one-clip steps; a GPU batches far better, so run the preflight there for a GPU plan) and
    leaves out feature extraction, the filtering of the audio and the five other detectors.
    """
    rows = [{"work": f"paper 004, fine-tunings ({plan['models']} AST trainings; count: clips x epochs)", "count": plan["clip_steps"],
             "seconds each": timing["step_s"]},
            {"work": "paper 004, k-NN embeddings of every model (count: forward passes)", "count": plan["embedding_forwards"],
             "seconds each": timing["forward_s"]},
            {"work": "paper 004, SLIME (count: masks x test clips)", "count": plan["slime_forwards"],
             "seconds each": timing["forward_s"]}]
    t = pd.DataFrame(rows)
    t["CPU-core years"] = t["count"] * t["seconds each"] * timing["threads"] / 3.156e7
    total = pd.DataFrame([{"work": "paper 004, all of the above", "count": int(t["count"].sum()),
                           "seconds each": np.nan, "CPU-core years": float(t["CPU-core years"].sum())}])
    out = pd.concat([total, t], ignore_index=True)
    out["days on 100 single-core workers"] = out["CPU-core years"] * 365.25 / 100
    return out


def run(p: Params, progress: bool = False) -> Result:
    from ..features import LogMelParams, clip_logmels

    timer = P.Timer()
    data = P.load_data(p, [p.machine])
    train = data.train
    # features cached first, so both engines time training and scoring, not feature extraction
    clip_logmels(data.table["path"].tolist(), LogMelParams(n_mels=128, clip_db=-80.0), n_jobs=p.jobs, progress=progress)
    frames = clip_logmels(train["path"].iloc[:1].tolist(), LogMelParams(n_mels=128, clip_db=-80.0), progress=False)[0].shape[0]
    n_vectors = len(train) * (frames - 4)
    points = bench_points(p, data)
    timings, identical, point_seconds = compare_engines(p, points)
    per_vector = per_vector_seconds(points, point_seconds, n_vectors, p.epochs)
    estimate = full_grid_estimate(per_vector)
    ast_timing, ast_est = {}, pd.DataFrame()
    if p.time_ast:
        from . import explain

        ast_timing = time_ast()
        plan = paper004_plan(explain.Params.from_profile("explain", "paper"))
        ast_est = paper004_estimate(ast_timing, plan)
    return Result(params=p, data=data, timings=timings, identical=identical, estimate=estimate,
                  seconds_per_vector=per_vector, n_vectors=int(n_vectors), ast_timing=ast_timing,
                  ast_estimate=ast_est, seconds=timer.seconds())
