"""Loading audio clips, with errors that name the file and say what to do.

DCASE clips are mono 16 kHz PCM_16; raw MIMII clips have 8 channels, of which the DCASE tasks
use channel 0. :func:`load` reads any of them with soundfile, picks one channel, optionally
resamples, and refuses clips that are corrupt, empty, silent or shorter than asked.

Examples
--------
>>> import numpy as np, soundfile as sf, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "tone.wav")
>>> sf.write(path, 0.1 * np.sin(np.arange(16000) / 5), 16000, subtype="PCM_16")
>>> y, sr = load(path)
>>> y.shape, sr
((16000,), 16000)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from . import ASDStudyError

#: The sample rate of every DCASE and MIMII clip.
DCASE_SR = 16000


class AudioError(ASDStudyError):
    """A clip that cannot be used: corrupt, empty, silent, too short or the wrong rate."""


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says: sample rate, channels, frames and duration in seconds."""

    path: str
    samplerate: int
    channels: int
    frames: int
    subtype: str

    @property
    def duration(self) -> float:
        return self.frames / self.samplerate if self.samplerate else 0.0


def declared_frames(path: str | Path) -> int | None:
    """The frame count a WAV file's header promises (``data`` chunk size / block align), or None
    for other formats and streamed WAVs whose header gives no size. A file holding fewer frames
    than this was cut short (an interrupted copy or download)."""
    import struct

    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            block_align = None
            while True:
                hdr = fh.read(8)
                if len(hdr) < 8:
                    return None
                cid, size = hdr[:4], struct.unpack("<I", hdr[4:])[0]
                if cid == b"fmt ":
                    fmt = fh.read(size)
                    if len(fmt) >= 14:
                        block_align = struct.unpack("<H", fmt[12:14])[0]
                    if size % 2:
                        fh.read(1)
                elif cid == b"data":
                    if not block_align or size in (0, 0xFFFFFFFF):
                        return None
                    return size // block_align
                else:
                    fh.seek(size + (size % 2), 1)
    except OSError:
        return None


def info(path: str | Path) -> AudioInfo:
    """Read a clip's header without decoding it.

    Raises:
        AudioError: the file is missing or not a sound file soundfile can read.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file. Check the path or regenerate/download the dataset.")
    try:
        i = sf.info(str(path))
    except Exception as exc:  # soundfile raises RuntimeError / LibsndfileError
        raise AudioError(
            f"{path}: cannot be read as audio ({exc}). The file is corrupt or truncated: "
            "delete it and download or generate it again."
        ) from exc
    return AudioInfo(str(path), int(i.samplerate), int(i.channels), int(i.frames), str(i.subtype))


def load(
    path: str | Path,
    sr: int | None = None,
    channel: int = 0,
    expected_sr: int | None = None,
    min_duration: float = 0.1,
    allow_silent: bool = False,
    dtype: str = "float32",
) -> tuple[np.ndarray, int]:
    """Load one clip as a mono float array.

    Args:
        path: a WAV/FLAC file.
        sr: resample to this rate (librosa's soxr_hq); None keeps the file's rate.
        channel: which channel of a multichannel file (DCASE and MIMII use 0).
        expected_sr: if given, a file at any other rate is an error (before resampling).
        min_duration: seconds; shorter clips are an error.
        allow_silent: if False, an all-zero clip is an error.
        dtype: output dtype.

    Returns:
        (y, sr): y has shape (n_samples,), values in [-1, 1]; sr is the rate of y.

    Raises:
        AudioError: naming the file, for a missing, corrupt, empty, silent or too-short clip, a
            channel the file does not have, or an unexpected sample rate.
    """
    meta = info(path)
    if expected_sr is not None and meta.samplerate != expected_sr:
        raise AudioError(
            f"{path}: sample rate is {meta.samplerate} Hz, expected {expected_sr} Hz. "
            f"Nothing is resampled silently: check that this is the right dataset, or convert the clip to "
            f"{expected_sr} Hz (in code, load(path, sr={expected_sr}) resamples on request)."
        )
    if meta.frames == 0:
        raise AudioError(f"{path}: the file holds no samples (empty clip). Delete it and fetch it again.")
    if not 0 <= channel < meta.channels:
        raise AudioError(
            f"{path}: has {meta.channels} channel(s); channel {channel} does not exist. "
            f"Use a channel between 0 and {meta.channels - 1}."
        )
    try:
        data, file_sr = sf.read(str(path), dtype=dtype, always_2d=True)
    except Exception as exc:
        raise AudioError(
            f"{path}: decoding failed ({exc}). The file is corrupt or truncated: fetch it again."
        ) from exc
    promised = declared_frames(path)
    if promised is not None and data.shape[0] < promised:
        raise AudioError(
            f"{path}: truncated: its header promises {promised} samples ({promised / file_sr:.2f} s) but the "
            f"file holds {data.shape[0]} ({data.shape[0] / file_sr:.2f} s). The copy or download was cut short: "
            "fetch the file again.")
    y = np.ascontiguousarray(data[:, channel])
    if y.size == 0:
        raise AudioError(f"{path}: the file holds no samples (empty clip). Delete it and fetch it again.")
    if not np.all(np.isfinite(y)):
        raise AudioError(f"{path}: contains NaN or infinite samples; the file is corrupt.")
    if not allow_silent and not np.any(y):
        raise AudioError(
            f"{path}: every sample is zero (silent clip). A recording this quiet carries no "
            "machine sound; remove it from the dataset or pass allow_silent=True."
        )
    if sr is not None and sr != file_sr:
        import librosa

        y = librosa.resample(y, orig_sr=file_sr, target_sr=sr).astype(dtype, copy=False)
        file_sr = sr
    duration = y.size / file_sr
    if duration < min_duration:
        raise AudioError(
            f"{path}: only {duration:.3f} s long, shorter than the {min_duration} s required. "
            "The clip is truncated: fetch it again."
        )
    return y, int(file_sr)


def write(path: str | Path, y: np.ndarray, sr: int = DCASE_SR) -> None:
    """Write a mono clip as 16-bit PCM WAV (the DCASE format), clipping to [-1, 1]."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(y, -1.0, 1.0), sr, subtype="PCM_16", format="WAV")
