"""Sequence models on log-mel frames: paper 001's LSTM next-frame predictor and GRU autoencoder.

Models (pure ``nn.Module``):

* :class:`LSTMPredictor` -- a 2-layer LSTM (input 128, hidden 256) reads 10 consecutive
  log-mel frames; a linear head maps its last hidden state to the next frame (128). A 313-frame
  clip gives 303 (window, next frame) pairs.
* :class:`GRUAutoencoder` -- a 2-layer GRU encoder (hidden 256) compresses a 10-frame window
  into its final hidden states; a symmetric 2-layer GRU decoder, started from those states and
  fed the top-layer code at every step, unrolls 10 steps; a linear layer maps each step back
  to 128 mel bands. The window is reconstructed in full.

Both read windows of ``window + 1`` frames (:class:`WindowSet`): the LSTM predicts frame
``window`` from frames ``0..window-1``; the GRU autoencoder reconstructs frames
``0..window-1``. So both see exactly the 303 windows of a 313-frame clip.

Windows are never materialised for a whole data set: :class:`WindowSet` keeps the clips'
spectrograms as one tensor and gathers a batch of windows by advanced indexing, so memory is
that of the spectrograms, not ten times more.

Detector (the one protocol, :mod:`asdstudy.models.base`): :class:`SequenceDetector` is fitted
per machine id on the windows of its training normals; a clip's score is the mean squared
error over its windows (and :meth:`SequenceDetector.window_errors` gives the error of every
window, to see *when* in a clip the model is surprised).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import ASDStudyError
from ..features import LogMelParams
from ..training import MIN_EPOCHS, History, fit, pick_device, seed_everything
from .base import SpectrogramDetector
from .store import stored_fit


class LSTMPredictor(nn.Module):
    """(B, window, n_mels) -> predicted next frame (B, n_mels)."""

    def __init__(self, n_mels: int = 128, hidden: int = 256, layers: int = 2):
        super().__init__()
        self.lstm = nn.LSTM(n_mels, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, n_mels)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


class GRUAutoencoder(nn.Module):
    """(B, window, n_mels) -> reconstruction (B, window, n_mels)."""

    def __init__(self, n_mels: int = 128, hidden: int = 256, layers: int = 2):
        super().__init__()
        self.encoder = nn.GRU(n_mels, hidden, num_layers=layers, batch_first=True)
        self.decoder = nn.GRU(hidden, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, n_mels)

    def encode(self, x):
        """Final hidden states of every encoder layer, (layers, B, hidden)."""
        _, h = self.encoder(x)
        return h

    def forward(self, x):
        h = self.encode(x)
        steps = h[-1].unsqueeze(1).expand(-1, x.shape[1], -1)  # the code, fed at every step
        out, _ = self.decoder(steps.contiguous(), h)
        return self.head(out)


def next_frame_loss(model, batch):
    """Mean squared error of the predicted next frame; ``batch`` is (B, window + 1, n_mels)."""
    return ((model(batch[:, :-1]) - batch[:, -1]) ** 2).mean()


def reconstruction_loss(model, batch):
    """Mean squared error of the reconstructed window; ``batch`` is (B, window + 1, n_mels)."""
    x = batch[:, :-1]
    return ((model(x) - x) ** 2).mean()


def window_errors_batch(model, batch) -> torch.Tensor:
    """Per-window mean squared error, (B,), for either model."""
    x = batch[:, :-1]
    if isinstance(model, LSTMPredictor):
        return ((model(x) - batch[:, -1]) ** 2).mean(dim=1)
    return ((model(x) - x) ** 2).mean(dim=(1, 2))


class WindowSet:
    """All ``length``-frame windows of equally long spectrograms, gathered on demand.

    ``ws[idx]`` for a LongTensor of flat window indices returns (len(idx), length, n_mels);
    window ``k`` is clip ``k // per_clip`` starting at frame ``k % per_clip``. With ``stride``
    > 1 only every stride-th window start is used (cheaper training on CPU).

    Args:
        specs: (n_clips, T, n_mels) array or tensor.
        length: frames per window (paper 001: 10 input frames + 1 target = 11).
        stride: step between window starts.
    """

    def __init__(self, specs, length: int = 11, stride: int = 1):
        self.specs = torch.as_tensor(np.asarray(specs, dtype=np.float32))
        if self.specs.ndim != 3:
            raise ASDStudyError(f"WindowSet needs spectrograms of shape (clips, frames, mels), got {tuple(self.specs.shape)}.")
        n, T, _ = self.specs.shape
        if T < length:
            raise ASDStudyError(f"clips of {T} frames are too short for windows of {length} frames.")
        if stride < 1:
            raise ASDStudyError(f"stride must be >= 1, got {stride}.")
        self.length, self.stride = length, stride
        self.per_clip = (T - length) // stride + 1
        self._offsets = torch.arange(length)

    def __len__(self) -> int:
        return self.specs.shape[0] * self.per_clip

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), self.length, self.specs.shape[2])

    def __getitem__(self, idx) -> torch.Tensor:
        idx = torch.as_tensor(idx, dtype=torch.long).reshape(-1)
        clip = idx // self.per_clip
        start = (idx % self.per_clip) * self.stride
        return self.specs[clip[:, None], start[:, None] + self._offsets]

    def clip_of(self, idx) -> np.ndarray:
        """The clip index each flat window index belongs to."""
        return np.asarray(idx) // self.per_clip


@dataclass
class SeqConfig:
    """Training and feature settings of one sequence detector (defaults: paper 001)."""

    kind: str = "lstm"  # "lstm" (next-frame predictor) or "gru" (sequence autoencoder)
    n_mels: int = 128
    window: int = 10
    hidden: int = 256
    layers: int = 2
    epochs: int = 10
    batch_size: int = 32  # the paper: LSTM 32, GRU 64
    lr: float = 1e-3
    #: each epoch trains on a fresh random 1/train_stride of the windows, so that every window
    #: is drawn over the epochs (1 = all of them every epoch, as the paper)
    train_stride: int = 1
    normalise: str = "minmax"  # "minmax" (to [0, 1] with the training clips' range), "standard", "none"
    val_fraction: float = 0.0
    seed: int = 0
    jobs: int = 1
    device: str | None = None
    #: stop once the validation curve (the training curve without a split) is flat by
    #: :func:`asdstudy.training.flatness`, after at least ``min_epochs`` and at least one pass
    #: over every window (``train_stride`` epochs); ``epochs`` is the cap
    converge: bool = False
    min_epochs: int = MIN_EPOCHS


PAPER_BATCH = {"lstm": 32, "gru": 64}
NAMES = {"lstm": "LSTM next-frame predictor", "gru": "GRU sequence autoencoder"}


class SequenceDetector(SpectrogramDetector):
    """Paper 001's LSTM predictor or GRU autoencoder as a detector.

    Scores are mean squared errors over a clip's windows, on log-mel frames normalised with the
    training clips' statistics (``config.normalise``; min-max to [0, 1] by default, which puts
    errors on the scale of the paper's thresholds of about 1e-3).

    Attributes (after fit): model_, history_, and the normalisation ``offset_`` / ``scale_``.
    """

    def __init__(self, config: SeqConfig):
        if config.kind not in NAMES:
            raise ASDStudyError(f"SeqConfig.kind must be one of {sorted(NAMES)}, got {config.kind!r}.")
        if config.normalise not in ("minmax", "standard", "none"):
            raise ASDStudyError(f"SeqConfig.normalise must be minmax, standard or none, got {config.normalise!r}.")
        self.config = config
        self.name = NAMES[config.kind]

    @property
    def input_params(self) -> LogMelParams:
        return LogMelParams(n_mels=self.config.n_mels)

    def _specs(self, table: pd.DataFrame) -> np.ndarray:
        return self._stack(self.spectrograms(table))

    @staticmethod
    def _stack(specs) -> np.ndarray:
        lengths = {s.shape[0] for s in specs}
        if len(lengths) != 1:
            raise ASDStudyError(f"clips have different numbers of frames ({sorted(lengths)}); "
                                "sequence detectors need equally long clips.")
        return np.stack(specs).astype(np.float32)

    def _normalised(self, specs: np.ndarray) -> np.ndarray:
        return (specs - self.offset_) / self.scale_

    def _make(self) -> nn.Module:
        c = self.config
        cls = LSTMPredictor if c.kind == "lstm" else GRUAutoencoder
        return cls(c.n_mels, c.hidden, c.layers)

    def fit(self, table: pd.DataFrame, y=None) -> "SequenceDetector":
        c = self.config

        def train():
            seed_everything(c.seed)
            specs = self._specs(table)
            if c.normalise == "minmax":
                self.offset_, self.scale_ = float(specs.min()), float(specs.max() - specs.min()) or 1.0
            elif c.normalise == "standard":
                self.offset_, self.scale_ = float(specs.mean()), float(specs.std()) or 1.0
            else:
                self.offset_, self.scale_ = 0.0, 1.0
            ws = WindowSet(self._normalised(specs), c.window + 1)
            self.model_ = self._make()
            loss = next_frame_loss if c.kind == "lstm" else reconstruction_loss
            self.history_: History = fit(self.model_, loss, ws, epochs=c.epochs, batch_size=c.batch_size, lr=c.lr,
                                         val_fraction=c.val_fraction, seed=c.seed, device=c.device, progress=False,
                                         desc=self.name, converge=c.converge, min_epochs=c.min_epochs,
                                         epoch_fraction=1.0 / c.train_stride)

        stored_fit(self, table["path"].tolist(), train, extra=("offset_", "scale_"))
        return self

    @torch.no_grad()
    def window_errors_of(self, specs: np.ndarray, batch: int = 4096) -> np.ndarray:
        """Per-window errors of already-computed log-mels (n_clips, T, n_mels) -> (n_clips, T - window)."""
        self._check_fitted("model_")
        ws = WindowSet(self._normalised(np.asarray(specs, dtype=np.float32)), self.config.window + 1)
        dev = pick_device(self.config.device)
        self.model_.eval().to(dev)
        out = [window_errors_batch(self.model_, ws[torch.arange(i, min(i + batch, len(ws)))].to(dev)).cpu()
               for i in range(0, len(ws), batch)]
        return torch.cat(out).numpy().reshape(-1, ws.per_clip)

    def window_errors(self, table: pd.DataFrame) -> np.ndarray:
        """Error of every window of every clip, (n_clips, T - window): 303 per 313-frame clip."""
        return self.window_errors_of(self._specs(table))

    def score_spectrograms(self, specs) -> np.ndarray:
        return self.window_errors_of(self._stack(specs)).mean(axis=1)
