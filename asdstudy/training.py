"""The one torch training loop every neural chapter uses.

:func:`fit` trains a model by minibatch Adam on an in-memory tensor of examples with a
per-batch loss you supply, and returns the loss history for plotting. It handles the device
(CUDA when present, else CPU), seeding that makes CPU runs repeatable (Python, NumPy and torch
seeds, deterministic algorithms, a seeded shuffling generator), an optional validation split
with early stopping (the best weights are restored), a progress bar and optional checkpoints.

Example
-------
>>> import torch
>>> model = torch.nn.Linear(4, 4)
>>> X = torch.randn(256, 4)
>>> hist = fit(model, lambda m, xb: ((m(xb) - xb) ** 2).mean(), X, epochs=2, progress=False)
>>> len(hist.train)
2
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import ASDStudyError


#: The convergence rule of the default profile: a loss curve is *flat* when its last
#: ``FLAT_WINDOW`` share of epochs improves its best value by less than ``FLAT_TOLERANCE``
#: (relative to the best value before that window).
FLAT_WINDOW = 0.2
FLAT_TOLERANCE = 0.02
#: Fewest epochs before the rule may stop a training (``fit(converge=True)``): 10, so that the
#: rule's window (the last 20 %) holds at least two epochs. At 5 the window was one epoch, and one
#: noisy epoch stopped the DCASE baseline on the twin's valve at AUC 0.55 where 18 epochs gave 0.63.
MIN_EPOCHS = 10
#: The validation curve is judged on a fixed, seeded subset of the held-out examples no larger
#: than one epoch's training draw (and at least this many, or all of them when fewer). Where an
#: epoch trains on a share of the examples (``epoch_fraction`` < 1) the whole held-out tenth was
#: up to twice an epoch's draw: validating it took 39 % of the sequence chapter's training time
#: (profiled). With every example every epoch nothing changes: the held-out set is smaller than
#: an epoch.
VAL_FLOOR = 1024


def window_epochs(n_epochs: int, window: float = FLAT_WINDOW) -> int:
    """How many of ``n_epochs`` (>= 2) epochs the rule's window holds: the last ``window`` share,
    at least one, and never all of them (something must lie before the window)."""
    return min(n_epochs - 1, max(1, math.ceil(window * n_epochs)))


def flatness(losses, window: float = FLAT_WINDOW, tolerance: float = FLAT_TOLERANCE) -> tuple[bool, float]:
    """Whether a loss curve has converged by the rule: the last ``window`` share of its epochs
    (at least one) improves the lowest loss seen before them by less than ``tolerance``.

    Returns:
        (flat, improvement): improvement = (best before the window - best in the window) /
        |best before the window|; 0 or negative means the window did not improve at all. A curve
        of fewer than 2 epochs has no window to judge: (False, nan).

    >>> flat, improvement = flatness([1.0, 0.5, 0.3, 0.2, 0.199])
    >>> flat, round(improvement, 4)
    (True, 0.005)
    >>> flatness([1.0, 0.5, 0.3, 0.2, 0.15])[0]
    False
    """
    x = np.asarray([v for v in losses], dtype=float)
    if len(x) < 2 or not np.isfinite(x).all():
        return False, float("nan")
    k = window_epochs(len(x), window)
    before, inside = x[:-k].min(), x[-k:].min()
    improvement = float((before - inside) / abs(before)) if before else float("inf")
    return improvement < tolerance, improvement


def pick_device(device: str | None = None) -> str:
    """``device`` if given, else "cuda" when torch sees a GPU, else "cpu"."""
    import torch

    if device:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ASDStudyError(f"device {device!r} requested but torch sees no CUDA GPU; use device='cpu'.")
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def _on_threads(fn: Callable, args: tuple, threads: int | None):
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    return fn(*args)


def side_by_side(fn: Callable, tasks, n_jobs: int = 1):
    """``fn(*args)`` for every ``args`` of ``tasks``, results in task order (an iterator). With
    ``n_jobs`` > 1 and more than one task on a CPU they run ``n_jobs`` at a time in worker
    processes (loky) on one torch thread each, for work that two threads do not speed up (a
    small AST steps 1.0x, an LSTM scores 1.5x faster on two, measured); otherwise one after the
    other here, on the process's threads. ``fn`` and the arguments must be picklable (closures
    are: joblib sends them by value)."""
    tasks = list(tasks)
    if n_jobs > 1 and len(tasks) > 1 and pick_device() == "cpu":
        from joblib import Parallel, delayed

        return Parallel(n_jobs=min(n_jobs, len(tasks)), backend="loky", return_as="generator")(
            delayed(_on_threads)(fn, args, 1) for args in tasks)
    return (_on_threads(fn, args, None) for args in tasks)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, and ask torch for deterministic kernels."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


@dataclass
class History:
    """Loss per epoch (train and, with a validation split, validation) and the best epoch."""

    train: list[float] = field(default_factory=list)
    val: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    seconds: float = 0.0
    device: str = "cpu"
    #: adversarial training: each part's (e.g. "discriminator", "generator") mean loss per epoch
    parts: dict[str, list[float]] = field(default_factory=dict)
    #: training stopped because the curve met the convergence rule (``fit(converge=True)``)
    converged: bool = False
    #: read back from the model store (:mod:`asdstudy.models.store`): the file; "" when trained here
    stored: str = ""
    #: held-out examples the validation curve is computed on (0: no validation split)
    val_examples: int = 0

    def flat(self) -> tuple[bool, float]:
        """:func:`flatness` of the validation curve (the training curve when there is none)."""
        return flatness(self.val or self.train)


def fit(
    model,
    loss_fn: Callable,
    X,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    weight_decay: float = 0.0,
    val_fraction: float = 0.0,
    patience: int | None = None,
    seed: int = 0,
    device: str | None = None,
    progress: bool = True,
    checkpoint: str | Path | None = None,
    desc: str = "train",
    parts: dict[str, Callable] | None = None,
    converge: bool = False,
    min_epochs: int = MIN_EPOCHS,
    epoch_fraction: float = 1.0,
    monitor: Callable | None = None,
) -> History:
    """Train ``model`` on the rows of ``X`` with Adam.

    Args:
        model: a torch ``nn.Module`` (moved to the device).
        loss_fn: ``loss_fn(model, batch) -> scalar tensor``.
        X: the training examples: a tensor or array of shape (n_examples, ...), or any object
            with ``len()`` whose ``X[LongTensor]`` returns a batch tensor (such as
            :class:`asdstudy.models.sequence.WindowSet`, which gathers windows on demand).
        epochs, batch_size, lr, betas, weight_decay: the optimiser's settings.
        val_fraction: hold out this fraction of X (a seeded random subset) for validation. The
            validation curve is computed on the same seeded subset of the held-out examples every
            epoch, of as many as one epoch trains on (at least ``VAL_FLOOR``; all of them when
            fewer): ``History.val_examples`` says how many.
        patience: stop after this many epochs without a better validation loss and restore the
            best weights (needs val_fraction > 0).
        seed: seeds initialisation-independent randomness (shuffling, dropout, sampling).
        device: "cpu", "cuda" or None (auto).
        progress: show a tqdm bar over epochs.
        checkpoint: save the model's state_dict here after every epoch (and the best one).
        parts: adversarial (multi-optimiser) training: ``{part: params_fn}`` with
            ``params_fn(model)`` giving that part's parameters, e.g.
            ``{"discriminator": lambda m: m.discriminator.parameters(), "generator": ...}``.
            Each batch then takes one Adam step per part, in the given order, on
            ``loss_fn(model, batch, part)`` (so the generator's loss sees the discriminator just
            updated). ``History.parts`` keeps each part's loss curve; ``History.train`` their sum.
        converge: stop as soon as the validation curve (the training curve without a validation
            split) is flat by :func:`flatness`, after at least ``min_epochs`` epochs and at least
            one pass over every example (``1 / epoch_fraction`` epochs); ``epochs`` is then the
            cap. ``History.converged`` says whether the rule stopped it.
        epoch_fraction: each epoch trains on a fresh, seeded random share of this size of the
            training examples (1: all of them every epoch). Unlike a fixed stride, which trains
            on the same subset every epoch, every example is drawn over the epochs; an epoch
            then costs this fraction of a full pass.
        monitor: ``monitor(model, batch) -> scalar tensor``: the quantity the validation curve
            tracks instead of the training loss (needs ``val_fraction > 0``). An adversarial
            model's summed losses can sit level from the first epoch while its reconstruction
            still improves; the convergence rule and ``patience`` then judge this curve.

    Returns:
        :class:`History` of the losses.
    """
    import time

    import torch
    from tqdm.auto import tqdm

    if not 0 < epoch_fraction <= 1:
        raise ASDStudyError(f"epoch_fraction is {epoch_fraction}; it must lie in (0, 1] (1: every example every epoch).")
    if patience is not None and val_fraction <= 0:
        raise ASDStudyError("early stopping (patience) needs a validation split: set val_fraction > 0.")
    if monitor is not None and val_fraction <= 0:
        raise ASDStudyError("a monitored validation curve (monitor) needs a validation split: set val_fraction > 0.")
    dev = pick_device(device)
    if not hasattr(X, "__getitem__") or isinstance(X, np.ndarray) or not hasattr(X, "__len__"):
        X = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    elif isinstance(X, torch.Tensor):
        X = X.float()
    if len(X) < 2:
        raise ASDStudyError(f"need at least two training examples, got {len(X)}.")
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(X), generator=gen)
    n_val = int(round(val_fraction * len(X)))
    val_idx, tr_idx = perm[:n_val], perm[n_val:]
    model.to(dev)
    # foreach: the multi-tensor Adam; the same numbers as the per-parameter loop, fewer small
    # kernels per step (a small dense model at batch 128 steps about 40 % faster on a CPU)
    if parts:
        opts = {name: torch.optim.Adam(params_fn(model), lr=lr, betas=betas, weight_decay=weight_decay, foreach=True)
                for name, params_fn in parts.items()}
        steps = [(name, opt, lambda m, xb, name=name: loss_fn(m, xb, name)) for name, opt in opts.items()]
    else:
        steps = [("loss", torch.optim.Adam(model.parameters(), lr=lr, betas=betas, weight_decay=weight_decay, foreach=True),
                  loss_fn)]
    per_epoch = max(1, math.ceil(epoch_fraction * len(tr_idx)))
    judge_idx = val_idx[:min(n_val, max(VAL_FLOOR, per_epoch))]  # a prefix of a seeded permutation
    hist = History(device=dev, val_examples=len(judge_idx))
    floor = max(min_epochs, math.ceil(1 / epoch_fraction - 1e-9))  # min_epochs, and one pass over every example
    best, best_state, waited = float("inf"), None, 0
    t0 = time.time()
    bar = tqdm(range(epochs), desc=desc, disable=not progress, unit="epoch")
    for epoch in bar:
        model.train()
        order = tr_idx[torch.randperm(len(tr_idx), generator=gen)]
        if epoch_fraction < 1:
            order = order[:per_epoch]
        # losses summed on the device and read once per epoch: no host sync per step (on a GPU
        # a float() per step would stall the queue); float64, so the sums equal the host's
        totals = {name: torch.zeros((), dtype=torch.float64, device=dev) for name, _, _ in steps}
        n = 0
        for i in range(0, len(order), batch_size):
            xb = X[order[i:i + batch_size]].to(dev)
            if xb.shape[0] < 2 and any(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules()):
                continue  # batch norm cannot train on a single example
            for name, opt, step_loss in steps:
                opt.zero_grad()
                loss = step_loss(model, xb)
                loss.backward()
                opt.step()
                totals[name] += loss.detach().double() * xb.shape[0]
            n += xb.shape[0]
        totals = {name: float(v) for name, v in totals.items()}
        if parts:
            for name in totals:
                hist.parts.setdefault(name, []).append(totals[name] / max(n, 1))
        hist.train.append(sum(totals.values()) / max(n, 1))
        if n_val:
            model.eval()
            with torch.no_grad():
                judge = [monitor] if monitor is not None else [step_loss for _, _, step_loss in steps]
                n_judge = len(judge_idx)
                vl = [sum(float(f(model, X[judge_idx[i:i + 4096]].to(dev))) for f in judge)
                      * min(4096, n_judge - i) for i in range(0, n_judge, 4096)]
            hist.val.append(sum(vl) / n_judge)
            if hist.val[-1] < best:
                best, best_state, waited, hist.best_epoch = hist.val[-1], copy.deepcopy(model.state_dict()), 0, epoch
            else:
                waited += 1
        bar.set_postfix(loss=f"{hist.train[-1]:.4g}", **({"val": f"{hist.val[-1]:.4g}"} if n_val else {}))
        if checkpoint:
            torch.save(model.state_dict(), checkpoint)
        if patience is not None and waited >= patience:
            hist.stopped_early = True
            break
        if converge and epoch + 1 >= floor and hist.flat()[0]:
            hist.converged = True
            break
    if best_state is not None and patience is not None:
        model.load_state_dict(best_state)
        if checkpoint:
            torch.save(best_state, checkpoint)
    model.eval()
    hist.seconds = time.time() - t0
    return hist
