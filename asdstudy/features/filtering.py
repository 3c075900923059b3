"""Zero-phase low- and high-pass filtering of a waveform, part of the feature code (its
fingerprint keys the feature cache, so a change here recomputes every filtered feature).

Paper 004 filters the audio before any feature, at training and test time alike; the study
does so inside the feature pipeline (:class:`asdstudy.features.embeddings.ASTInputParams`'s
``filter_kind`` / ``cutoff``) instead of writing filtered copies of every clip.
"""

from __future__ import annotations

import numpy as np

from .. import ASDStudyError

KINDS = ("lowpass", "highpass")


def filter_audio(y: np.ndarray, sr: int, kind: str, cutoff: float, order: int = 8) -> np.ndarray:
    """Zero-phase Butterworth low- or high-pass (second-order sections, forward-backward).

    A cutoff at or above the Nyquist frequency passes everything (low-pass) or nothing
    (high-pass); a cutoff at or below 0 the reverse.
    """
    from scipy.signal import butter, sosfiltfilt

    if kind not in KINDS:
        raise ASDStudyError(f"filter kind must be one of {', '.join(KINDS)}, got {kind!r}.")
    y = np.asarray(y, dtype=np.float64)
    nyq = sr / 2
    if cutoff >= nyq or cutoff <= 0:
        passes = (kind == "lowpass") == (cutoff >= nyq)
        return (y if passes else np.zeros_like(y)).astype(np.float32)
    sos = butter(order, cutoff / nyq, btype="low" if kind == "lowpass" else "high", output="sos")
    return sosfiltfilt(sos, y).astype(np.float32)
