"""Trained models kept by what determines them, so that the same model is trained once.

Several chapters train the same model on the same clips: the DCASE 2020 baseline of one machine
type is the data chapter's twin check, the autoencoder chapter's reference, the sequence
chapter's and the GAN chapter's baseline. Training is deterministic on the CPU (same seed, same
numbers), so a model whose configuration, training clips, features, code and device all match
a stored one *is* that model: :func:`stored_fit` reads it back instead of training it again.

The key is a hash of: the detector's class and every field of its config except ``jobs`` (the
device it trains on included), the feature settings, feature code and numerics (all in
:func:`asdstudy.features.cache.feature_key`; the numerics are the CPU's code paths and the mode), the source of the model's
module and of the training loop, and the content hash of every training clip in order. Change
any of them and the key changes: nothing stale is read back. A stored file that cannot be read
is trained again, with a warning, and replaced. Writes are atomic (temporary file, then
``os.replace``). ``ASDSTUDY_MODEL_STORE=0`` switches the store off (every model trained).

A model read back says so: its ``history_.stored`` names the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Sequence

ENV_SWITCH = "ASDSTUDY_MODEL_STORE"
#: The modules whose source shapes every trained model besides the detector's own module.
TRAINING_CODE = ("asdstudy.training", "asdstudy.models.base", "asdstudy.models.frames")


def enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


@contextmanager
def switched(on: bool):
    """Within the block the store is on or off (``ASDSTUDY_MODEL_STORE``), as the caller says;
    the setting before it is restored after. A benchmark that times training switches it off."""
    before = os.environ.get(ENV_SWITCH)
    os.environ[ENV_SWITCH] = "1" if on else "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV_SWITCH, None)
        else:
            os.environ[ENV_SWITCH] = before


def store_dir() -> Path:
    from ..features.cache import cache_dir

    return cache_dir() / "models"


def model_key(det, paths: Sequence[str]) -> str:
    """The hash naming ``det``'s trained model on the clips ``paths`` (in this order)."""
    from ..features.cache import content_hash, feature_key
    from ..sweep import code_fingerprint
    from ..training import pick_device

    cfg = {k: v for k, v in dataclasses.asdict(det.config).items() if k != "jobs"}
    cfg["device"] = pick_device(det.config.device)
    params = det.input_params
    blob = {"class": f"{type(det).__module__}.{type(det).__qualname__}", "config": cfg,
            "features": feature_key("logmel", params.key()),
            "code": code_fingerprint([type(det).__module__, *TRAINING_CODE])}
    h = hashlib.blake2b(json.dumps(blob, sort_keys=True, default=str).encode(), digest_size=16)
    for p in paths:
        h.update(content_hash(p).encode())
    return h.hexdigest()


def _read(det, path: Path, extra: Sequence[str]) -> bool:
    import torch

    from ..training import History, pick_device

    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        model = det._make()
        model.load_state_dict(blob["model"])
        history = History(**blob["history"])
        values = {a: blob["extra"][a] for a in extra}
    except Exception as e:  # a damaged or foreign file: train again, and say so
        warnings.warn(f"stored model {path} could not be read ({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}); training it again "
                      "and replacing the file.", stacklevel=3)
        return False
    det.model_ = model.to(pick_device(det.config.device)).eval()
    history.stored = str(path)
    det.history_ = history
    for a, v in values.items():
        setattr(det, a, v)
    return True


def stored_fit(det, paths: Sequence[str], train: Callable[[], None], extra: Sequence[str] = ()) -> bool:
    """Read ``det``'s trained model from the store, or call ``train()`` and store the result.

    Args:
        det: a detector with ``config`` (a dataclass), ``input_params`` and ``_make()`` (a fresh
            module of its architecture).
        paths: its training clips, in the order training reads them.
        train: sets ``det.model_`` and ``det.history_`` (and the ``extra`` attributes).
        extra: further fitted attributes (floats or tensors) kept with the model, such as the
            sequence detectors' normalisation constants.

    Returns:
        True when the model was read back, False when it was trained here.
    """
    if not enabled():
        train()
        return False
    import torch

    from ..features.cache import tmp_path

    path = store_dir() / f"{model_key(det, paths)}.pt"
    if path.exists() and _read(det, path, extra):
        return True
    train()
    blob = {"model": det.model_.state_dict(), "history": dataclasses.asdict(det.history_),
            "extra": {a: getattr(det, a) for a in extra}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(path)
    torch.save(blob, tmp)
    os.replace(tmp, path)
    return False
