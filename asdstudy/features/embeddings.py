"""Pretrained audio embeddings: PANNs CNN14 (paper 000).

:class:`Cnn14` is the CNN14 network of Kong et al. (2020) at 32 kHz -- log-mel front end (1024-
point STFT, hop 320, 64 mel bands from 50 Hz to 14 kHz), six convolution blocks (64 to 2048
channels), global pooling, a 2048-unit embedding layer and the 527-class AudioSet head --
with parameter names chosen so that the official checkpoint (Zenodo record 3987831,
``Cnn14_mAP=0.431.pth``, whose ``"model"`` entry is a state_dict) loads into it with
``strict=True``. Its front end uses torchlibrosa's STFT and mel filter bank, as the original.

Weights are never fetched as a side effect: :func:`find_checkpoint` looks at an explicit path,
then ``$ASDSTUDY_PANNS_CHECKPOINT``, then the cache folder; :func:`download_checkpoint` fetches
it (with the checksum Zenodo publishes for the file) only when called. Without weights,
:func:`load_cnn14` raises :class:`WeightsUnavailable` with one clear sentence, and chapters
report that embeddings are unavailable instead of computing them from random weights.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import ASDStudyError

SR = 32000
CHECKPOINT_NAME = "Cnn14_mAP=0.431.pth"
ZENODO_RECORD = "3987831"
CHECKPOINT_URL = f"https://zenodo.org/record/{ZENODO_RECORD}/files/Cnn14_mAP%3D0.431.pth"
ENV_VAR = "ASDSTUDY_PANNS_CHECKPOINT"
EMBEDDING_DIM = 2048


class WeightsUnavailable(ASDStudyError):
    """Pretrained weights are not on this machine (and were not downloaded)."""


class ConvBlock(nn.Module):
    """Two 3x3 convolutions (no bias), each with batch norm and ReLU, then 2-D pooling."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x, pool_size=(2, 2)):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, pool_size)


class Cnn14(nn.Module):
    """Waveform (B, samples) at 32 kHz -> {"embedding": (B, 2048), "clipwise": (B, 527)}."""

    def __init__(self, sample_rate: int = SR, window_size: int = 1024, hop_size: int = 320, mel_bins: int = 64,
                 fmin: float = 50.0, fmax: float = 14000.0, classes: int = 527):
        super().__init__()
        from torchlibrosa.stft import LogmelFilterBank, Spectrogram

        self.spectrogram_extractor = Spectrogram(n_fft=window_size, hop_length=hop_size, win_length=window_size,
                                                 window="hann", center=True, pad_mode="reflect",
                                                 freeze_parameters=True)
        self.logmel_extractor = LogmelFilterBank(sr=sample_rate, n_fft=window_size, n_mels=mel_bins, fmin=fmin,
                                                 fmax=fmax, ref=1.0, amin=1e-10, top_db=None,
                                                 freeze_parameters=True)
        self.bn0 = nn.BatchNorm2d(mel_bins)
        widths = [1, 64, 128, 256, 512, 1024, 2048]
        for i in range(6):
            setattr(self, f"conv_block{i + 1}", ConvBlock(widths[i], widths[i + 1]))
        self.fc1 = nn.Linear(2048, 2048)
        self.fc_audioset = nn.Linear(2048, classes)

    def forward(self, waveform):
        x = self.logmel_extractor(self.spectrogram_extractor(waveform))  # (B, 1, T, mels)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        for i in range(6):
            x = getattr(self, f"conv_block{i + 1}")(x, pool_size=(2, 2) if i < 5 else (1, 1))
            x = F.dropout(x, 0.2, self.training)
        x = x.mean(dim=3)  # over mel bins
        x = x.max(dim=2).values + x.mean(dim=2)  # over time
        x = F.dropout(x, 0.5, self.training)
        x = F.relu(self.fc1(x))
        embedding = F.dropout(x, 0.5, self.training)
        return {"embedding": embedding, "clipwise": torch.sigmoid(self.fc_audioset(x))}


def cache_folder() -> Path:
    from .cache import cache_dir

    return cache_dir() / "weights"


def find_checkpoint(path: str | Path | None = None) -> Path | None:
    """The CNN14 checkpoint: ``path`` if given (must exist), else ``$ASDSTUDY_PANNS_CHECKPOINT``,
    else ``<cache>/weights/Cnn14_mAP=0.431.pth``; None if none is there."""
    if path:
        p = Path(path)
        if not p.is_file():
            raise WeightsUnavailable(f"no CNN14 checkpoint at {p}; download {CHECKPOINT_URL} there "
                                     "or pass another path.")
        return p
    env = os.environ.get(ENV_VAR)
    if env and Path(env).is_file():
        return Path(env)
    p = cache_folder() / CHECKPOINT_NAME
    return p if p.is_file() else None


def download_checkpoint(folder: str | Path | None = None, url: str = CHECKPOINT_URL, md5: str | None = None,
                        api: str | None = None, progress: bool = True) -> Path:
    """Fetch the checkpoint into ``folder`` (default: the cache) with checksum verification.

    The MD5 is ``md5`` if given, else the one Zenodo publishes in the record's metadata (``api``:
    another Zenodo API base, for tests). Uses the study's resumable downloader.
    """
    from ..datasets.download import fetch_file, record_checksums

    folder = Path(folder) if folder else cache_folder()
    if md5 is None:
        md5 = record_checksums(ZENODO_RECORD, api).get(CHECKPOINT_NAME)
        if md5 is None:
            raise ASDStudyError(f"Zenodo record {ZENODO_RECORD} lists no checksum for {CHECKPOINT_NAME}; "
                                "pass md5= to verify the file yourself.")
    return fetch_file(url, folder, CHECKPOINT_NAME, md5, progress)


def load_cnn14(path: str | Path | None = None, device: str | None = None) -> Cnn14:
    """CNN14 with the official AudioSet weights, in eval mode, on ``device``.

    Raises:
        WeightsUnavailable: no checkpoint found (nothing is downloaded here).
    """
    from ..training import pick_device

    ckpt = find_checkpoint(path)
    if ckpt is None:
        raise WeightsUnavailable(
            f"PANNs CNN14 weights are not available on this machine: put {CHECKPOINT_NAME} (Zenodo record "
            f"{ZENODO_RECORD}) in {cache_folder()}, set ${ENV_VAR}, or call asdstudy.features.embeddings.download_checkpoint().")
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    state = state.get("model", state)
    model = Cnn14()
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise ASDStudyError(f"{ckpt} does not match the CNN14 architecture ({str(exc).splitlines()[-1].strip()}); "
                            f"is it {CHECKPOINT_NAME}?") from None
    if missing or [k for k in unexpected if not k.startswith("spec_augmenter")]:
        raise ASDStudyError(f"{ckpt} does not match the CNN14 architecture (missing {missing[:3]}, "
                            f"unexpected {unexpected[:3]}); is it {CHECKPOINT_NAME}?")
    return model.eval().to(pick_device(device))


@torch.no_grad()
def cnn14_embeddings(model: Cnn14, waveforms, batch_size: int = 16, device: str | None = None) -> np.ndarray:
    """2048-d embeddings of equally long 32 kHz waveforms (n, samples), batched on the model's device."""
    dev = next(model.parameters()).device if device is None else torch.device(device)
    x = torch.as_tensor(np.asarray(waveforms, dtype=np.float32))
    out = [model(x[i:i + batch_size].to(dev))["embedding"].cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy()
