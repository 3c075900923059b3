"""Paper 000's handcrafted librosa features: nine families, named columns.

The paper (its Section 3.4.2) lists nine families and claims 253 features in total. What its
listed code computes, at librosa's defaults on audio loaded at 22,050 Hz:

=================  =====  ==============================================================
family             count  what
=================  =====  ==============================================================
statistics             9  mean, std, max, min, median, kurtosis, skew, 25th/75th percentile
spectral              24  centroid, rolloff 85 %, rolloff 95 %, bandwidth, flatness (mean, std);
                          contrast 7 x 2
mfcc                 120  20 MFCCs, their deltas and delta-deltas, each mean and std
temporal               6  zero-crossing rate and RMS: mean, std, max
chroma                72  chroma STFT / CQT / CENS, 12 x mean and std each
mel                    4  64-band log-mel: mean, std, max, min
tonnetz               12  tonnetz of the harmonic part: 6 x mean and std
poly                   4  first-order polynomial fit of the spectrum: 2 x mean and std
tempogram              2  mean and std
=================  =====  ==============================================================

That is 253 features (:data:`N_FEATURES`), the paper's count, once its table's "Rolloff (85 %,
95 %)" is read as two roll-offs (librosa's default 85 % and ``roll_percent=0.95``), each with
mean and std. The same table's category counts add up to 259 (it gives the spectral family 30),
which the book's consistency audit reports. The paper shows code only for the centroid and the
contrast; the roll-offs, bandwidth and flatness are taken here with the same mean-and-std
statistics.

Two implementations give the same numbers (a test checks it):

* :func:`reference_features` -- the paper's code as listed: every librosa call from the
  waveform, so the STFT is computed about ten times and the constant-Q transform twice;
* :func:`handcrafted_features` -- the same calls fed one shared magnitude STFT, one shared
  log-mel spectrogram (MFCC and onset strength), one shared CQT (chroma CQT and CENS) and the
  harmonic part separated from the shared STFT. :func:`extract` runs it in parallel with an
  on-disk cache.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from .. import ASDStudyError

SR = 22050  # librosa's default rate, which the paper's feature code uses

FAMILIES = {
    "statistics": ["mean", "std", "max", "min", "median", "kurtosis", "skew", "p25", "p75"],
    "spectral": [f"{f}_{s}" for f in ("centroid", "rolloff", "rolloff95", "bandwidth", "flatness") for s in ("mean", "std")]
    + [f"contrast{b}_{s}" for s in ("mean", "std") for b in range(7)],
    "mfcc": [f"{kind}{i:02d}_{s}" for kind in ("mfcc", "delta", "delta2") for s in ("mean", "std") for i in range(20)],
    "temporal": [f"{f}_{s}" for f in ("zcr", "rms") for s in ("mean", "std", "max")],
    "chroma": [f"{kind}{i:02d}_{s}" for kind in ("chroma_stft", "chroma_cqt", "chroma_cens") for s in ("mean", "std")
               for i in range(12)],
    "mel": ["mel_mean", "mel_std", "mel_max", "mel_min"],
    "tonnetz": [f"tonnetz{i}_{s}" for s in ("mean", "std") for i in range(6)],
    "poly": [f"poly{i}_{s}" for s in ("mean", "std") for i in range(2)],
    "tempogram": ["tempogram_mean", "tempogram_std"],
}
#: Each family's name in the paper's category table ("Complete taxonomy of traditional audio features").
TAXONOMY = {"statistics": "Statistical", "spectral": "Spectral", "mfcc": "MFCCs", "temporal": "Temporal",
            "chroma": "Chroma", "mel": "Mel-Spectrogram", "tonnetz": "Tonnetz", "poly": "Polynomial",
            "tempogram": "Tempogram"}
#: Column names, ``family:feature``, in the order of the feature vector.
NAMES = [f"{fam}:{n}" for fam, names in FAMILIES.items() for n in names]
N_FEATURES = len(NAMES)
CLAIMED = 253  # the paper's count
CLAIMED_BY_TABLE = {"statistics": 9, "spectral": 30, "mfcc": 120, "temporal": 6, "chroma": 72, "mel": 4,
                    "tonnetz": 12, "poly": 4, "tempogram": 2}


def family_of(names) -> np.ndarray:
    """The family of each column name (``family:feature``)."""
    return np.array([str(n).split(":", 1)[0] for n in names])


def _ms(x) -> list[float]:
    """Mean and std over time of each row (per-row means first, then stds), as the paper."""
    x = np.atleast_2d(x)
    return list(np.mean(x, axis=1)) + list(np.std(x, axis=1))


def _statistics(y) -> list[float]:
    from scipy.stats import kurtosis, skew

    return [np.mean(y), np.std(y), np.max(y), np.min(y), np.median(y), kurtosis(y), skew(y),
            np.percentile(y, 25), np.percentile(y, 75)]


def _check(y, sr):
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ASDStudyError(f"handcrafted features need mono audio (1-D), got shape {y.shape}.")
    if sr != SR:
        raise ASDStudyError(f"handcrafted features are defined at {SR} Hz (librosa's default, as the paper); "
                            f"got {sr} Hz: load the clip with sr={SR}.")
    if y.size < 2048:
        raise ASDStudyError(f"a clip of {y.size} samples is too short for 2048-point frames.")
    return y


def reference_features(y, sr: int = SR) -> np.ndarray:
    """The paper's listed code, call by call from the waveform (slow; the values of record)."""
    import librosa

    y = _check(y, sr)
    f = _statistics(y)
    for fn in (librosa.feature.spectral_centroid, librosa.feature.spectral_rolloff,
               partial(librosa.feature.spectral_rolloff, roll_percent=0.95), librosa.feature.spectral_bandwidth):
        v = fn(y=y, sr=sr)[0]
        f += [np.mean(v), np.std(v)]
    v = librosa.feature.spectral_flatness(y=y)[0]
    f += [np.mean(v), np.std(v)]
    f += _ms(librosa.feature.spectral_contrast(y=y, sr=sr))
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20)
    for m in (mfcc, librosa.feature.delta(mfcc), librosa.feature.delta(mfcc, order=2)):
        f += _ms(m)
    for v in (librosa.feature.zero_crossing_rate(y)[0], librosa.feature.rms(y=y)[0]):
        f += [np.mean(v), np.std(v), np.max(v)]
    f += _ms(librosa.feature.chroma_stft(y=y, sr=sr))
    f += _ms(librosa.feature.chroma_cqt(y=y, sr=sr))
    f += _ms(librosa.feature.chroma_cens(y=y, sr=sr))
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_mels=64), ref=np.max)
    f += [np.mean(mel_db), np.std(mel_db), np.max(mel_db), np.min(mel_db)]
    f += _ms(librosa.feature.tonnetz(y=librosa.effects.harmonic(y), sr=sr))
    f += _ms(librosa.feature.poly_features(y=y, sr=sr, order=1))
    onset = librosa.onset.onset_strength(y=y, sr=sr)
    tg = librosa.feature.tempogram(onset_envelope=onset, sr=sr)
    f += [np.mean(tg), np.std(tg)]
    return np.asarray(f, dtype=np.float64)


def handcrafted_features(y, sr: int = SR) -> np.ndarray:
    """The same 253 values as :func:`reference_features`, computing each transform once."""
    import librosa

    y = _check(y, sr)
    n_fft, hop = 2048, 512
    D = librosa.stft(y, n_fft=n_fft, hop_length=hop)  # librosa's defaults in every call below
    S = np.abs(D)
    P = S**2
    f = _statistics(y)
    for fn in (librosa.feature.spectral_centroid, librosa.feature.spectral_rolloff,
               partial(librosa.feature.spectral_rolloff, roll_percent=0.95), librosa.feature.spectral_bandwidth):
        v = fn(S=S, sr=sr)[0]
        f += [np.mean(v), np.std(v)]
    v = librosa.feature.spectral_flatness(S=S)[0]
    f += [np.mean(v), np.std(v)]
    f += _ms(librosa.feature.spectral_contrast(S=S, sr=sr))
    log_mel = librosa.power_to_db(librosa.feature.melspectrogram(S=P, sr=sr))  # mfcc's and onset's input
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=20)
    for m in (mfcc, librosa.feature.delta(mfcc), librosa.feature.delta(mfcc, order=2)):
        f += _ms(m)
    for v in (librosa.feature.zero_crossing_rate(y)[0], librosa.feature.rms(y=y)[0]):
        f += [np.mean(v), np.std(v), np.max(v)]
    f += _ms(librosa.feature.chroma_stft(S=P, sr=sr))
    tuning = librosa.estimate_tuning(y=y, sr=sr, bins_per_octave=36)
    C = np.abs(librosa.cqt(y, sr=sr, hop_length=hop, n_bins=7 * 36, bins_per_octave=36, tuning=tuning))
    f += _ms(librosa.feature.chroma_cqt(C=C, sr=sr))
    f += _ms(librosa.feature.chroma_cens(C=C, sr=sr))
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=P, sr=sr, n_mels=64), ref=np.max)
    f += [np.mean(mel_db), np.std(mel_db), np.max(mel_db), np.min(mel_db)]
    harmonic = librosa.istft(librosa.decompose.hpss(D)[0], hop_length=hop, n_fft=n_fft, length=len(y))
    f += _ms(librosa.feature.tonnetz(y=harmonic, sr=sr))
    f += _ms(librosa.feature.poly_features(S=S, sr=sr, order=1))
    onset = librosa.onset.onset_strength(S=log_mel, sr=sr)
    tg = librosa.feature.tempogram(onset_envelope=onset, sr=sr)
    f += [np.mean(tg), np.std(tg)]
    return np.asarray(f, dtype=np.float64)


def _one(path: str) -> np.ndarray:
    from ..audio import load

    y, sr = load(path, sr=SR, min_duration=1.0)  # resampled to 22.05 kHz on purpose: the paper's librosa.load
    try:
        return handcrafted_features(y, sr)
    except ASDStudyError as e:
        raise ASDStudyError(f"{path}: {e}") from None


def extract(paths, n_jobs: int = 1, progress: bool = True, cache: bool = True) -> pd.DataFrame:
    """Handcrafted features of many clips: one row per path, :data:`NAMES` as columns.

    Runs in ``n_jobs`` processes and caches each clip's vector on disk (keyed by the clip's
    identity and the feature definition), so a second call is a read.
    """
    from .cache import extract as cached

    paths = [str(p) for p in paths]
    out = cached(paths, _one, "handcrafted", {"sr": SR, "n": N_FEATURES, "version": 1}, n_jobs=n_jobs,
                 use_cache=cache, progress=progress)
    return pd.DataFrame(np.vstack(out), columns=NAMES, index=paths)
