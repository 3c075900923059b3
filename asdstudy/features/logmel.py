"""Log-mel features as the DCASE 2020 Task 2 baseline computes them, and their frame stacks.

The baseline's recipe: ``librosa.feature.melspectrogram(y, sr, n_fft=1024, hop_length=512,
n_mels=n_mels, power=2.0)`` (librosa defaults otherwise: Hann window, centred frames with
constant (zero) padding, Slaney mel filters), then ``20 / power * log10(mel + eps)`` with
``eps = sys.float_info.epsilon``. A 10 s clip at 16 kHz gives 313 frames.

Two implementations give the same numbers:

* :func:`logmel` -- librosa, one clip at a time (the reference);
* :func:`logmel_torch` -- a batched torch path (CPU or CUDA) using ``torch.stft`` and the same
  librosa mel matrix. It matches librosa to within ``TORCH_TOLERANCE_DB`` (float32 arithmetic;
  measured in ``tests/test_features.py``).

Paper 003 uses a dB spectrogram clipped at -80 dB instead (``clip_db=-80`` with
``ref="max"``); :class:`LogMelParams` carries that choice so the cache keys differ.

Examples
--------
>>> import numpy as np
>>> y = np.random.default_rng(0).standard_normal(160000).astype("float32") * 0.1
>>> logmel(y, LogMelParams(n_mels=64)).shape
(313, 64)
>>> stack_frames(np.zeros((313, 64)), 5).shape
(309, 320)
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass

import numpy as np

from .. import ASDStudyError

EPS = sys.float_info.epsilon
#: Largest absolute difference (dB) allowed between the torch and librosa paths in the tests.
TORCH_TOLERANCE_DB = 0.05


@dataclass(frozen=True)
class LogMelParams:
    """Parameters of a log-mel front end (defaults: the DCASE 2020 baseline with 128 mels).

    Attributes:
        sr: sample rate the clip must have (Hz).
        n_fft: FFT size; the window length equals it.
        hop_length: hop in samples.
        n_mels: mel bands.
        power: 2 for a power spectrogram, 1 for magnitude.
        fmin, fmax: mel filter range (fmax None = sr / 2).
        clip_db: if set, use ``10*log10(S/max(S))`` floored at this many dB (paper 003's
            ``power_to_db(ref=np.max)`` with -80 dB); else the baseline's ``20/power*log10(S+eps)``.
    """

    sr: int = 16000
    n_fft: int = 1024
    hop_length: int = 512
    n_mels: int = 128
    power: float = 2.0
    fmin: float = 0.0
    fmax: float | None = None
    clip_db: float | None = None

    def key(self) -> dict:
        return asdict(self)


def _mel_basis(p: LogMelParams) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=p.sr, n_fft=p.n_fft, n_mels=p.n_mels, fmin=p.fmin, fmax=p.fmax)


def _to_db(mel: np.ndarray, p: LogMelParams, xp=np):
    if p.clip_db is None:
        return 20.0 / p.power * xp.log10(mel + EPS)
    ref = mel.max(axis=(-2, -1), keepdims=True) if xp is np else mel.amax(dim=(-2, -1), keepdim=True)
    amin = 1e-10
    db = 10.0 * xp.log10(mel.clip(min=amin)) - 10.0 * xp.log10(ref.clip(min=amin))
    return db.clip(min=p.clip_db)


def logmel(y: np.ndarray, params: LogMelParams = LogMelParams()) -> np.ndarray:
    """Log-mel spectrogram of one clip with librosa.

    Args:
        y: mono samples at ``params.sr``, shape (n_samples,).
        params: front-end parameters.

    Returns:
        float32 array of shape (n_frames, n_mels): time first, as the detectors consume it.
    """
    import librosa

    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ASDStudyError(f"logmel expects a mono 1-D signal, got shape {y.shape}; pick a channel first.")
    from .cache import one_blas_thread

    with one_blas_thread():  # the same bits in any process (see one_blas_thread)
        mel = librosa.feature.melspectrogram(y=y, sr=params.sr, n_fft=params.n_fft,
                                             hop_length=params.hop_length, n_mels=params.n_mels,
                                             power=params.power, fmin=params.fmin, fmax=params.fmax)
    return _to_db(mel, params).T.astype(np.float32)


def logmel_torch(batch, params: LogMelParams = LogMelParams(), device: str | None = None):
    """Batched log-mel with torch (CPU or CUDA), matching :func:`logmel`.

    Args:
        batch: array or tensor of shape (batch, n_samples) (all clips the same length).
        params: front-end parameters.
        device: "cpu", "cuda" or None (the batch's device, or CPU for numpy input).

    Returns:
        torch.Tensor of shape (batch, n_frames, n_mels), float32, on ``device``.
    """
    import torch

    x = torch.as_tensor(np.asarray(batch) if not isinstance(batch, torch.Tensor) else batch,
                        dtype=torch.float32)
    if x.ndim == 1:
        x = x[None]
    if device is not None:
        x = x.to(device)
    window = torch.hann_window(params.n_fft, periodic=True, device=x.device)
    spec = torch.stft(x, n_fft=params.n_fft, hop_length=params.hop_length, window=window,
                      center=True, pad_mode="constant", return_complex=True)
    mag = spec.abs() ** params.power  # (B, 1 + n_fft/2, T)
    basis = torch.as_tensor(_mel_basis(params), device=x.device)
    mel = torch.matmul(basis, mag)  # (B, n_mels, T)
    return _to_db(mel, params, xp=torch).transpose(1, 2).contiguous()


def stack_frames(spec: np.ndarray, n_frames: int = 5) -> np.ndarray:
    """Concatenate ``n_frames`` consecutive frames into context vectors (the baseline's input).

    Args:
        spec: (T, n_mels) log-mel of one clip.
        n_frames: context length.

    Returns:
        (T - n_frames + 1, n_frames * n_mels): row t is frames t..t+n_frames-1 concatenated,
        frame by frame (``[f_t | f_t+1 | ...]``), as the DCASE baseline lays them out.
    """
    spec = np.asarray(spec)
    T, M = spec.shape
    if T < n_frames:
        raise ASDStudyError(f"a clip of {T} frames is shorter than the {n_frames}-frame context.")
    view = np.lib.stride_tricks.sliding_window_view(spec, (n_frames, M))[:, 0]  # (T-n+1, n, M)
    return view.reshape(T - n_frames + 1, n_frames * M)


def sequence_windows(spec: np.ndarray, length: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Windows of ``length`` frames and the frame that follows each (next-frame prediction).

    Args:
        spec: (T, n_mels).
        length: window length (paper 001: 10).

    Returns:
        (inputs, targets): inputs (T - length, length, n_mels) -- a strided view, not a copy --
        and targets (T - length, n_mels), target i being frame i + length. 313 frames give 303.
    """
    spec = np.asarray(spec)
    T, M = spec.shape
    if T <= length:
        raise ASDStudyError(f"a clip of {T} frames is too short for {length}-frame windows.")
    windows = np.lib.stride_tricks.sliding_window_view(spec, (length, M))[:, 0]
    return windows[: T - length], spec[length:]
