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

import functools

import os
from pathlib import Path

import numpy as np
import pandas as pd
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
    model.checkpoint_ = str(ckpt)
    return model.eval().to(pick_device(device))


@torch.no_grad()
def cnn14_embeddings(model: Cnn14, waveforms, batch_size: int = 16, device: str | None = None) -> np.ndarray:
    """2048-d embeddings of equally long 32 kHz waveforms (n, samples), batched on the model's device."""
    dev = next(model.parameters()).device if device is None else torch.device(device)
    x = torch.as_tensor(np.asarray(waveforms, dtype=np.float32))
    out = [model(x[i:i + batch_size].to(dev))["embedding"].cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy()


def extract_cnn14(paths, model: Cnn14, progress: bool = True, cache: bool = True) -> pd.DataFrame:
    """2048-d CNN14 embeddings of clip files (resampled to 32 kHz, mono), one row per path with
    columns ``panns:0`` ... ``panns:2047``; cached per clip (keyed by the checkpoint's size and
    modification time), computed one clip at a time on the model's device."""
    from ..audio import load
    from .cache import extract as cached

    ckpt = getattr(model, "checkpoint_", None)
    key = {"sr": SR, "checkpoint": str(ckpt), "stat": list(_stat(ckpt)), "version": 1}

    def one(path: str) -> np.ndarray:
        y, _ = load(path, sr=SR)
        return cnn14_embeddings(model, y[None, :])[0]

    paths = [str(p) for p in paths]
    out = cached(paths, one, "panns-cnn14", key, n_jobs=1, use_cache=cache and ckpt is not None, progress=progress)
    return pd.DataFrame(np.vstack(out), columns=[f"panns:{i}" for i in range(EMBEDDING_DIM)], index=paths)


def _stat(path) -> tuple:
    if path is None:
        return ()
    st = Path(path).stat()
    return (st.st_size, int(st.st_mtime))


# ============================================================================================
# The Audio Spectrogram Transformer (paper 004), built with ``transformers``
# ============================================================================================

AST_HUB_ID = "MIT/ast-finetuned-audioset-10-10-0.4593"
AST_ENV_VAR = "ASDSTUDY_AST_WEIGHTS"
AST_MAX_FRAMES = 1024  # the AudioSet AST's input length (10.24 s at a 10 ms hop)


from dataclasses import asdict, dataclass  # noqa: E402


@dataclass(frozen=True)
class ASTInputParams:
    """The AST's input, computed as the AudioSet AST's own front end (``transformers``'
    ``ASTFeatureExtractor``, a Kaldi-style filterbank) so that pretrained weights see what they
    were trained on: 25 ms frames (400 samples at 16 kHz) every 10 ms without centring, the DC
    offset removed and pre-emphasis 0.97 per frame, a symmetric Hann window, a 512-point FFT,
    power, then

    * ``kind="mel"``: 128 Kaldi-mel triangles from 20 Hz to Nyquist, floor 2^-23, natural log
      (the extractor's features before its AudioSet normalisation);
    * ``kind="stft"``: the 257-bin power spectrum of the same frames, interpolated linearly to
      ``n_bins`` (128) so that the same patch grid and pretrained weights apply while the
      frequency axis stays linear (the point of the paper's STFT input), same floor and log.
    """

    kind: str = "mel"
    sr: int = 16000
    frame_length: int = 400
    hop_length: int = 160
    fft_length: int = 512
    preemphasis: float = 0.97
    n_bins: int = 128
    fmin: float = 20.0
    fmax: float | None = None
    filter_kind: str = ""       # "lowpass" / "highpass": filter the audio first (paper 004's sweep)
    cutoff: float = 0.0         # the filter's cutoff in Hz, strictly between 0 and Nyquist

    def __post_init__(self):
        if self.kind not in ("mel", "stft"):
            raise ASDStudyError(f"ASTInputParams.kind must be 'mel' or 'stft', got {self.kind!r}.")
        if self.filter_kind:
            from .filtering import KINDS

            if self.filter_kind not in KINDS:
                raise ASDStudyError(f"ASTInputParams.filter_kind must be one of {KINDS} (or empty), got "
                                    f"{self.filter_kind!r}.")
            if not 0 < self.cutoff < self.sr / 2:
                raise ASDStudyError(f"ASTInputParams.cutoff is {self.cutoff} Hz: a {self.filter_kind} cutoff must lie "
                                    f"strictly between 0 and the Nyquist frequency ({self.sr / 2:.0f} Hz).")

    @property
    def n_mels(self) -> int:  # for the explanation's band edges (mel inputs)
        return self.n_bins

    @property
    def mel_scale(self) -> str:  # the filterbank's mel scale, for the band edges in Hz
        return "kaldi"

    def key(self) -> dict:
        return asdict(self)


#: The AudioSet AST's input normalisation (``ASTFeatureExtractor``): (x - mean) / (2 std).
AUDIOSET_MEAN, AUDIOSET_STD = -4.2677393, 4.5689974
#: The log floor of the Kaldi filterbank (float32 epsilon).
LOG_FLOOR = 1.192092955078125e-07


@functools.lru_cache(maxsize=8)
def _kaldi_mel_filters(n_bins: int, fft_length: int, sr: int, fmin: float, fmax: float) -> np.ndarray:
    import warnings

    from transformers.audio_utils import mel_filter_bank

    with warnings.catch_warnings():  # the AST's filterbank has an empty lowest filter at 257 bins, as in AudioSet
        warnings.filterwarnings("ignore", message="At least one mel filter has all zero values")
        return mel_filter_bank(num_frequency_bins=fft_length // 2 + 1, num_mel_filters=n_bins, min_frequency=fmin,
                               max_frequency=fmax, sampling_rate=sr, norm=None, mel_scale="kaldi",
                               triangularize_in_mel_space=True)


def _frames_power(y: np.ndarray, p: ASTInputParams) -> np.ndarray:
    """Power spectrum (frames, fft_length // 2 + 1) of the Kaldi-style frames of ``y``."""
    y = np.asarray(y, np.float64)
    if len(y) < p.frame_length:
        raise ASDStudyError(f"a clip of {len(y)} samples is shorter than one AST frame ({p.frame_length} samples).")
    n = 1 + (len(y) - p.frame_length) // p.hop_length
    idx = np.arange(p.frame_length)[None, :] + p.hop_length * np.arange(n)[:, None]
    f = y[idx]
    f = f - f.mean(axis=1, keepdims=True)
    f = np.concatenate([f[:, :1] * (1 - p.preemphasis), f[:, 1:] - p.preemphasis * f[:, :-1]], axis=1)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(p.frame_length) / (p.frame_length - 1))  # symmetric Hann
    return np.abs(np.fft.rfft(f * window, n=p.fft_length, axis=1)) ** 2


def ast_spectrogram(y: np.ndarray, p: ASTInputParams = ASTInputParams()) -> np.ndarray:
    """Log filterbank or log power spectrogram (frames, n_bins), float32, of a mono waveform at
    ``p.sr`` (see :class:`ASTInputParams`); unnormalised, not padded."""
    S = _frames_power(y, p)
    fmax = p.fmax or p.sr / 2
    if p.kind == "mel":
        S = S @ _kaldi_mel_filters(p.n_bins, p.fft_length, p.sr, p.fmin, fmax)
    else:
        f_in = np.linspace(0, p.sr / 2, S.shape[1])
        f_out = np.linspace(0.0, fmax, p.n_bins)
        # linear interpolation along frequency, as one matrix
        idx = np.clip(np.searchsorted(f_in, f_out) - 1, 0, len(f_in) - 2)
        w = (f_out - f_in[idx]) / (f_in[idx + 1] - f_in[idx])
        M = np.zeros((p.n_bins, S.shape[1]))
        M[np.arange(p.n_bins), idx] = 1 - w
        M[np.arange(p.n_bins), idx + 1] = w
        S = S @ M.T
    return np.log(np.maximum(S, LOG_FLOOR)).astype(np.float32)


def _ast_spectrogram_file(path: str, p: ASTInputParams) -> np.ndarray:
    from ..audio import load

    y, _ = load(path, expected_sr=p.sr, min_duration=1.0)
    if p.filter_kind:
        from .filtering import filter_audio

        y = filter_audio(y, p.sr, p.filter_kind, p.cutoff)
    return ast_spectrogram(y, p)


def clip_ast_spectrograms(paths, p: ASTInputParams = ASTInputParams(), n_jobs: int = 1, progress: bool = False):
    """The AST input of many clips, computed in parallel and cached."""
    from functools import partial

    from .cache import extract as cached

    return cached([str(x) for x in paths], partial(_ast_spectrogram_file, p=p), "ast-input", p.key(),
                  n_jobs=n_jobs, progress=progress)


def find_ast_weights(source: str | Path | None = None) -> str | None:
    """Where pretrained AST weights can be loaded from without a download: ``source`` (a folder
    or a hub id already in the local Hugging Face cache), ``$ASDSTUDY_AST_WEIGHTS``, or
    ``<cache>/weights/ast``. None when there are none."""
    from .cache import cache_dir

    candidates = [source] if source else [os.environ.get(AST_ENV_VAR), cache_dir() / "weights" / "ast", AST_HUB_ID]
    for c in candidates:
        if not c:
            continue
        if Path(str(c)).is_dir() and (Path(str(c)) / "config.json").exists():
            return str(c)
        if "/" in str(c) and not Path(str(c)).exists():
            try:
                from huggingface_hub import try_to_load_from_cache

                hit = try_to_load_from_cache(str(c), "config.json")
                if isinstance(hit, str):
                    return str(c)
            except Exception:  # no hub client or no cache: not available
                pass
    return None


def small_ast_config(n_classes: int, n_frames: int, n_bins: int = 128, hidden: int = 96, layers: int = 2,
                     heads: int = 4, stride: int = 16):
    """A small AST (same architecture, fewer and narrower layers, non-overlapping patches) for
    training from scratch on a CPU."""
    from transformers import ASTConfig

    return ASTConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                     intermediate_size=2 * hidden, patch_size=16, frequency_stride=stride, time_stride=stride,
                     max_length=n_frames, num_mel_bins=n_bins, num_labels=n_classes)


class _Pairs:
    """Indexable (inputs, labels) for :func:`asdstudy.training.fit`."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    @property
    def shape(self):
        return self.x.shape

    def __getitem__(self, idx):
        return _Pairs(self.x[idx], self.y[idx])

    def to(self, dev):
        return _Pairs(self.x.to(dev), self.y.to(dev))


class ASTEmbedder:
    """Fine-tune an AST to classify machine + section, then embed clips at its pre-logits layer.

    Args:
        params: the input (:class:`ASTInputParams`).
        weights: pretrained weights (a folder or hub id, see :func:`find_ast_weights`); None
            trains :func:`small_ast_config` from scratch. ``"auto"`` uses pretrained weights
            when :func:`find_ast_weights` finds some.
        epochs, lr, batch_size: fine-tuning (paper: up to 10 epochs, Adam, lr 1e-5).
        small: keyword arguments of :func:`small_ast_config` (from-scratch model only).

    Attributes (after fit): ``model_``, ``classes_``, ``mean_``/``std_`` (the input normalisation:
    AudioSet's for pretrained weights, else the training clips'), ``pretrained_`` (the weights'
    source, or None), ``history_``.
    """

    def __init__(self, params: ASTInputParams = ASTInputParams(), weights: str | None = "auto", epochs: int = 10,
                 lr: float = 1e-5, batch_size: int = 16, seed: int = 0, device: str | None = None,
                 small: dict | None = None, jobs: int = 1):
        self.params, self.weights, self.epochs, self.lr = params, weights, epochs, lr
        self.batch_size, self.seed, self.device, self.small, self.jobs = batch_size, seed, device, small or {}, jobs

    def spectrograms(self, table) -> list:
        return clip_ast_spectrograms(table["path"].tolist(), self.params, n_jobs=self.jobs)

    def _inputs(self, specs) -> torch.Tensor:
        """Normalised as (x - mean) / (2 std), padded / cut to the model's length. A pretrained AST
        gets the AudioSet constants and the extractor's padding (zeros before normalisation),
        exactly what ``ASTFeatureExtractor`` gives it; a from-scratch one the training clips'
        statistics and zeros after normalisation."""
        T = self.n_frames_
        pad = (0.0 - self.mean_) / (2 * self.std_) if self.pretrained_ else 0.0
        out = np.full((len(specs), T, self.params.n_bins), pad, dtype=np.float32)
        for i, s in enumerate(specs):
            s = (np.asarray(s, np.float32) - self.mean_) / (2 * self.std_)
            n = min(T, len(s))
            out[i, :n] = s[:n]
        return torch.from_numpy(out)

    def _build(self, n_classes: int, n_frames: int):
        from transformers import ASTForAudioClassification

        source = find_ast_weights(None if self.weights == "auto" else self.weights) if self.weights else None
        if self.weights not in (None, "auto") and source is None:
            raise WeightsUnavailable(f"AST weights {self.weights!r} are not available on this machine (no such folder, "
                                     f"nor in the local Hugging Face cache); set ${AST_ENV_VAR} or pass weights=None.")
        if source is not None:
            try:
                model = ASTForAudioClassification.from_pretrained(source, num_labels=n_classes,
                                                                  ignore_mismatched_sizes=True, local_files_only=True)
            except (OSError, ValueError) as exc:
                raise WeightsUnavailable(f"AST weights at {source} could not be loaded ({str(exc).splitlines()[0]}); "
                                         "point weights= or $ASDSTUDY_AST_WEIGHTS at a saved AST model folder.") from None
            self.n_frames_ = model.config.max_length
        else:
            model = ASTForAudioClassification(small_ast_config(n_classes, n_frames, self.params.n_bins, **self.small))
            self.n_frames_ = n_frames
        self.pretrained_ = source
        return model

    def fit(self, specs, labels) -> "ASTEmbedder":
        from ..training import fit, seed_everything

        seed_everything(self.seed)
        labels = np.asarray(labels)
        self.classes_ = np.unique(labels)
        if len(self.classes_) < 2:
            raise ASDStudyError("fine-tuning needs at least two classes (machine + section combinations).")
        y = torch.as_tensor(np.searchsorted(self.classes_, labels))
        self.model_ = self._build(len(self.classes_), max(len(s) for s in specs))
        if self.pretrained_:
            self.mean_, self.std_ = AUDIOSET_MEAN, AUDIOSET_STD
        else:
            stacked = np.concatenate([np.asarray(s) for s in specs])
            self.mean_, self.std_ = float(stacked.mean()), float(stacked.std()) or 1.0
        data = _Pairs(self._inputs(specs), y)

        def loss(model, batch):
            return F.cross_entropy(model(input_values=batch.x).logits, batch.y)

        self.history_ = fit(self.model_, loss, data, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                            seed=self.seed, device=self.device, progress=False, desc="AST fine-tuning")
        return self

    @torch.no_grad()
    def _forward(self, specs, batch: int = 32):
        from ..training import pick_device

        if not hasattr(self, "model_"):
            raise ASDStudyError("ASTEmbedder is not fitted: call fit(specs, labels) first.")
        dev = pick_device(self.device)
        self.model_.eval().to(dev)
        x = self._inputs(specs)
        emb, logits = [], []
        for i in range(0, len(x), batch):
            xb = x[i:i + batch].to(dev)
            pooled = self.model_.audio_spectrogram_transformer(input_values=xb).pooler_output
            emb.append(pooled.cpu())
            logits.append(self.model_.classifier(pooled).cpu())
        return torch.cat(emb).numpy(), torch.cat(logits).numpy()

    def embed(self, specs) -> np.ndarray:
        """Pre-logits embeddings (n, hidden): 768-d for the AudioSet AST."""
        return self._forward(specs)[0]

    def predict(self, specs) -> np.ndarray:
        """Predicted class labels (as given to fit)."""
        return self.classes_[self._forward(specs)[1].argmax(axis=1)]
