"""Point functions for the sweep tests (importable by dask workers)."""

import os
import signal
import time
from pathlib import Path


def train_tiny(point):
    """A few seeded torch steps: rows that depend on the float arithmetic of the point."""
    import torch

    torch.manual_seed(point["seed"])
    x = torch.randn(256, 8)
    y = x @ torch.arange(8.0) + 0.1 * torch.randn(256)
    w = torch.zeros(8, requires_grad=True)
    opt = torch.optim.SGD([w], lr=point["lr"])
    for _ in range(20):
        opt.zero_grad()
        loss = ((x @ w - y) ** 2).mean()
        loss.backward()
        opt.step()
    return [{"seed": point["seed"], "lr": point["lr"], "loss": float(loss), "w0": float(w[0])}]


def die_once(point):
    """Sleeps on its first attempt (the test kills this process by its PID), returns on the next."""
    marker = Path(point["marker"])
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        time.sleep(60)
    return [{"x": point["x"]}]


def always_die(point):
    os.kill(os.getpid(), signal.SIGKILL)
