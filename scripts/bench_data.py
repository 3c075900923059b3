"""Benchmark: synthetic-set generation (time, peak memory) and log-mel throughput.

Usage: python scripts/bench_data.py [--root /tmp/bench] [--profile default] [--jobs 2] [--clips 200]

Prints (not asserted; numbers go into the issue notes):
* wall time and peak RSS (this process and its workers) to generate the profile's set;
* log-mel clips/s for the librosa path (one clip at a time) and the torch path (batches of 32,
  CPU, and CUDA when present), on the same clips, and the largest dB difference between them.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import time

import numpy as np


def peak_rss_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, kids


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default="/tmp/asdstudy-bench")
    ap.add_argument("--profile", default="default")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--keep", action="store_true", help="keep the generated set")
    a = ap.parse_args(argv)

    from asdstudy.audio import load
    from asdstudy.datasets import clip_table
    from asdstudy.datasets.synthetic import generate
    from asdstudy.features import LogMelParams, logmel, logmel_torch

    shutil.rmtree(a.root, ignore_errors=True)
    t0 = time.perf_counter()
    generate(a.root, profile=a.profile, n_jobs=a.jobs, progress=False)
    gen_s = time.perf_counter() - t0
    table = clip_table(f"{a.root}/dcase2020")
    du = sum(__import__("os").path.getsize(p) for p in table.path) / 1e9
    own, kids = peak_rss_mb()
    print(f"generate --profile {a.profile} -j {a.jobs}: {len(table)} clips, {du:.2f} GB, "
          f"{gen_s:.1f} s ({len(table) / gen_s:.1f} clips/s); peak RSS main {own:.0f} MB, "
          f"largest worker {kids:.0f} MB")

    paths = table.path.tolist()[: a.clips]
    ys = [load(p)[0] for p in paths]
    p = LogMelParams(n_mels=128)
    logmel(ys[0], p)  # warm-up (numba compile)
    t0 = time.perf_counter()
    ref = [logmel(y, p) for y in ys]
    lib_s = time.perf_counter() - t0
    import torch

    batch = np.stack(ys)
    logmel_torch(batch[:2], p)
    t0 = time.perf_counter()
    out = torch.cat([logmel_torch(batch[i:i + 32], p) for i in range(0, len(batch), 32)])
    torch_s = time.perf_counter() - t0
    diff = float(np.max(np.abs(out.numpy() - np.stack(ref))))
    print(f"log-mel librosa: {len(ys) / lib_s:.1f} clips/s; torch CPU (batch 32, "
          f"{torch.get_num_threads()} threads): {len(ys) / torch_s:.1f} clips/s; max |diff| {diff:.4f} dB")
    if torch.cuda.is_available():
        logmel_torch(batch[:2], p, device="cuda")
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(0, len(batch), 32):
            logmel_torch(batch[i:i + 32], p, device="cuda")
        torch.cuda.synchronize()
        print(f"log-mel torch CUDA: {len(ys) / (time.perf_counter() - t0):.1f} clips/s")
    if not a.keep:
        shutil.rmtree(a.root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
