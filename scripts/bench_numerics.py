"""Benchmark: what the portable numerics cost. The hot loops of the chapters (a GANomaly training
step at batch 512, an LSTM training step at batch 32, LSTM scoring of 4,096 windows), one thread,
in fresh processes under ASDSTUDY_NUMERICS=native and =portable, alternating, median of rounds.

Usage: python scripts/bench_numerics.py [--rounds 3]

Prints milliseconds per step (not asserted; numbers go into the issue notes and the
``asdstudy.numerics`` docstring).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

LOOPS = r"""
import asdstudy, json, time, torch
from asdstudy.models.gans import GANomaly, gan_loss
from asdstudy.models.sequence import LSTMPredictor, window_errors_batch
from asdstudy.numerics import label
torch.set_num_threads(1); torch.manual_seed(0)

def ms(fn, n, warm=3):
    for _ in range(warm):
        fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n * 1000

x, gan = torch.rand(512, 640), GANomaly()
od = torch.optim.Adam(gan.discriminator_parameters(), 2e-4)
og = torch.optim.Adam(gan.generator_parameters(), 2e-4)
def gan_step():
    od.zero_grad(); gan_loss(gan, x, "discriminator").backward(); od.step()
    og.zero_grad(); gan_loss(gan, x, "generator").backward(); og.step()
lstm, w = LSTMPredictor(), torch.rand(32, 11, 128)
lo = torch.optim.Adam(lstm.parameters(), 1e-3)
def lstm_step():
    lo.zero_grad(); ((lstm(w[:, :-1]) - w[:, -1]) ** 2).mean().backward(); lo.step()
big = torch.rand(4096, 11, 128)
with torch.no_grad():
    lstm.eval()
    score = ms(lambda: window_errors_batch(lstm, big), 4, 1)
print(json.dumps({"label": label(), "GANomaly step, batch 512": ms(gan_step, 40),
                  "LSTM step, batch 32": ms(lstm_step, 100), "LSTM scoring, 4,096 windows": score}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    import json

    from asdstudy.numerics import PORTABLE_ENV, VARIABLE

    runs: dict = {"native": [], "portable": []}
    for _ in range(args.rounds):
        for mode in runs:
            env = {k: v for k, v in os.environ.items() if k not in PORTABLE_ENV}
            env[VARIABLE] = mode
            out = subprocess.run([sys.executable, "-c", LOOPS], env=env, capture_output=True, text=True, check=True)
            runs[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    loops = [k for k in runs["native"][0] if k != "label"]
    print(f"{'loop (one thread)':32s} {'native':>10s} {'portable':>10s} {'cost':>7s}")
    print(f"{'(code paths)':32s} {runs['native'][0]['label']:>10s} {runs['portable'][0]['label']:>10s}")
    for loop in loops:
        n = statistics.median(r[loop] for r in runs["native"])
        p = statistics.median(r[loop] for r in runs["portable"])
        print(f"{loop:32s} {n:8.1f} ms {p:8.1f} ms {100 * (p / n - 1):+6.0f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
