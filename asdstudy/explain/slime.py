"""SLIME for one-class anomaly detectors (paper 004's adaptation of Mishra et al.'s SLIME).

For one clip: split the detector's input spectrogram into ``n_bands`` equal groups of frequency
bins; draw ``n_masks`` random on/off patterns over the bands (the first is "all on"); occlude
the "off" bands; score every
occluded version with the detector; turn scores into labels with the EER threshold (1 =
anomaly); fit a linear surrogate on the patterns, weighted by their closeness to the
un-occluded clip. The surrogate's coefficients are the bands' importances for the "anomaly"
decision.

``n_bands`` bands have only 2 ** n_bands patterns, so random draws repeat (the paper's 1,000 over
8 bands hold at most 256 distinct ones): each distinct pattern is scored once and its score
given to every draw of it (:func:`distinct_masks`). The surrogate still sees all ``n_masks``
draws, so the explanation is the one scoring every draw would give, at a fraction of the
detector passes.

What an occluded band holds, the paper does not say; the study reads it two ways (``fill``):
``"silence"``, the clip's minimum (silence in a log spectrogram: what removing a component
means in Mishra et al.'s SLIME), and ``"normal"``, the band's mean level over the detector's
training normals (:func:`normal_level`), the "grey" of image LIME. A detector of reconstruction
or distance error reads silence where it learned machine sound as a fault, so under
``"silence"`` occlusion can only raise an anomaly's score; under ``"normal"`` occluding the
fault's band can make the clip look normal.

Works for any :class:`~asdstudy.models.base.SpectrogramDetector` (it needs
``score_spectrograms``); the band edges in Hz come from the detector's ``input_params``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import ASDStudyError

N_BANDS = 8  # the paper's eight interpretable components
N_MASKS = 1000  # the paper's number of synthesised samples
#: What an occluded band holds (see the module docstring): the clip's minimum, or the band's mean
#: level over the detector's training normals.
FILLS = ("silence", "normal")


def band_edges(n_bins: int, n_bands: int = N_BANDS) -> np.ndarray:
    """Bin indices (n_bands + 1,) splitting ``n_bins`` frequency bins into equal contiguous bands."""
    if not 1 <= n_bands <= n_bins:
        raise ASDStudyError(f"n_bands must be between 1 and the {n_bins} frequency bins, got {n_bands}.")
    return np.round(np.linspace(0, n_bins, n_bands + 1)).astype(int)


def bin_frequencies(params) -> np.ndarray:
    """Edges in Hz (n_bins + 1,) of the input bins of a detector: mel bins for a
    :class:`~asdstudy.features.LogMelParams`, linear bins for an object with ``kind == "stft"``."""
    import librosa

    fmax = params.fmax or params.sr / 2
    if getattr(params, "kind", "mel") == "stft":  # the AST's STFT input: 0 Hz .. fmax, linear
        return np.linspace(0.0, fmax, params.n_bins + 1)
    # mel filter i peaks at centre i+1 and spans centres i..i+2; the edges between neighbouring
    # bins are taken half-way (in mel) between their peaks. The AST's filterbank is Kaldi's
    # (mel = 1127 ln(1 + f / 700)); librosa's log-mels use the Slaney scale.
    if getattr(params, "mel_scale", "slaney") == "kaldi":
        to_mel, to_hz = (lambda f: 1127.0 * np.log1p(np.asarray(f) / 700.0)), (lambda m: 700.0 * np.expm1(m / 1127.0))
    else:
        to_mel, to_hz = librosa.hz_to_mel, librosa.mel_to_hz
    mel = to_mel(np.array([params.fmin, fmax]))
    centres = np.linspace(mel[0], mel[1], params.n_mels + 2)[1:-1]
    inner = (centres[1:] + centres[:-1]) / 2
    return np.r_[params.fmin, to_hz(inner), fmax]


def bands_hz(params, n_bands: int = N_BANDS) -> pd.DataFrame:
    """The bands' frequency ranges: columns ``band``, ``lo_hz``, ``hi_hz``."""
    f = bin_frequencies(params)
    e = band_edges(len(f) - 1, n_bands)
    return pd.DataFrame({"band": np.arange(n_bands), "lo_hz": f[e[:-1]], "hi_hz": f[e[1:]]})


def random_masks(n_masks: int, n_bands: int = N_BANDS, seed: int = 0, keep: float = 0.5) -> np.ndarray:
    """(n_masks, n_bands) 0/1 patterns, 1 = band kept; the first row keeps every band."""
    if n_masks < 2:
        raise ASDStudyError(f"n_masks must be at least 2, got {n_masks}.")
    rng = np.random.default_rng(seed)
    z = (rng.random((n_masks, n_bands)) < keep).astype(np.int8)
    z[0] = 1
    return z


def distinct_masks(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct patterns of ``masks`` (n_distinct, n_bands) and, for every row of ``masks``,
    the index of its pattern among them (n_masks,): ``distinct[index]`` equals ``masks``."""
    z = np.asarray(masks)
    distinct, index = np.unique(z, axis=0, return_inverse=True)
    return distinct, np.asarray(index).reshape(-1)


def occlude(spec: np.ndarray, mask: np.ndarray, edges: np.ndarray, fill=None) -> np.ndarray:
    """A copy of ``spec`` (T, n_bins) with the bands whose mask entry is 0 set to ``fill``: a
    number, or one value per bin (n_bins,), e.g. :func:`normal_level` (default: the
    spectrogram's minimum)."""
    out = np.array(spec, copy=True)
    value = np.asarray(float(np.min(spec)) if fill is None else fill, dtype=out.dtype)
    if value.ndim and value.shape != (out.shape[1],):
        raise ASDStudyError(f"an occlusion fill per bin needs {out.shape[1]} values (one per frequency bin), got "
                            f"shape {value.shape}.")
    for b in np.flatnonzero(np.asarray(mask) == 0):
        out[:, edges[b]:edges[b + 1]] = value[edges[b]:edges[b + 1]] if value.ndim else value
    return out


def normal_level(specs) -> np.ndarray:
    """The mean level per frequency bin (n_bins,) over every frame of ``specs``: the detector's
    input spectrograms of its training normals, for ``fill="normal"``."""
    specs = list(specs)
    if not specs:
        raise ASDStudyError("normal_level needs the training normals' spectrograms; none were given.")
    total = sum(np.asarray(s, float).sum(axis=0) for s in specs)
    return total / sum(len(s) for s in specs)


def eer_labels(scores, threshold: float) -> np.ndarray:
    """The paper's Eq. 1: 1 (anomaly) where score >= the EER threshold, else 0."""
    return (np.asarray(scores, float) >= threshold).astype(int)


def kernel_weights(masks: np.ndarray, width: float = 0.25) -> np.ndarray:
    """LIME's exponential kernel on the cosine distance between each pattern and "all on"."""
    z = np.asarray(masks, float)
    norm = np.linalg.norm(z, axis=1)
    cos = np.divide(z.sum(axis=1), norm * np.sqrt(z.shape[1]), out=np.zeros(len(z)), where=norm > 0)
    d = 1.0 - cos
    return np.exp(-(d**2) / width**2)


def surrogate(masks: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None, alpha: float = 1.0
              ) -> tuple[np.ndarray, float]:
    """Weighted ridge regression of ``target`` on the patterns: (coefficients, weighted R^2)."""
    from sklearn.linear_model import Ridge

    z = np.asarray(masks, float)
    t = np.asarray(target, float)
    w = kernel_weights(z) if weights is None else weights
    model = Ridge(alpha=alpha).fit(z, t, sample_weight=w)
    return model.coef_.copy(), float(model.score(z, t, sample_weight=w))


@dataclass
class Explanation:
    """SLIME's output for a set of clips.

    Attributes:
        importance: (n_clips, n_bands) surrogate coefficients for the anomaly label.
        fit: (n_clips,) the surrogates' weighted R^2.
        flipped: (n_clips,) fraction of occluded versions whose label differs from the
            un-occluded clip's.
        bands: the bands in Hz (:func:`bands_hz`).
        scored: how many occluded versions of each clip the detector scored: the distinct
            patterns among the ``n_masks`` draws (:func:`distinct_masks`).
        raised: (n_clips,) fraction of occluded versions scoring higher (more anomalous) than
            the un-occluded clip: where no occlusion flips an anomaly's label, this tells a
            detector that reads the occlusion itself as a fault (near 1) from one that ignores
            the bands (near 0).
        fill: what the occluded bands held (one of :data:`FILLS`).
    """

    importance: np.ndarray
    fit: np.ndarray
    flipped: np.ndarray
    bands: pd.DataFrame
    raised: np.ndarray
    fill: str
    scored: int = 0


def explain(detector, specs, threshold: float, n_bands: int = N_BANDS, n_masks: int = N_MASKS, seed: int = 0,
            target: str = "label", progress: bool = False, fill: str = "silence",
            reference: np.ndarray | None = None) -> Explanation:
    """SLIME explanations of ``detector`` for the clips ``specs`` (its input spectrograms).

    Args:
        detector: a fitted detector with ``score_spectrograms(list of (T, bins))`` and
            ``input_params``.
        specs: the clips' input spectrograms (``detector.spectrograms(table)``).
        threshold: the EER threshold of the detector's scores (:func:`asdstudy.metrics.eer`).
        target: ``label`` (the paper: EER labels) or ``score`` (the raw scores, standardised).
        fill: what an occluded band holds: ``"silence"`` (each clip's minimum) or ``"normal"``
            (``reference``, the mean level per bin of the detector's training normals,
            :func:`normal_level`).
    """
    from tqdm.auto import tqdm

    if target not in ("label", "score"):
        raise ASDStudyError(f"target must be 'label' or 'score', got {target!r}.")
    if fill not in FILLS:
        raise ASDStudyError(f"fill must be one of {FILLS}, got {fill!r}.")
    if fill == "normal" and reference is None:
        raise ASDStudyError("fill='normal' needs reference=normal_level(the detector's training spectrograms).")
    specs = list(specs)
    if not specs:
        raise ASDStudyError("no spectrograms to explain.")
    n_bins = specs[0].shape[1]
    edges = band_edges(n_bins, n_bands)
    z = random_masks(n_masks, n_bands, seed)
    w = kernel_weights(z)
    patterns, draw = distinct_masks(z)  # each distinct occlusion scored once
    imp, fit, flipped, raised = [], [], [], []
    value = reference if fill == "normal" else None  # None: each clip's own minimum
    for spec in tqdm(specs, desc="SLIME", unit="clip", disable=not progress):
        scores = np.asarray(detector.score_spectrograms([occlude(spec, m, edges, value) for m in patterns]),
                            float)[draw]
        labels = eer_labels(scores, threshold)
        flipped.append(float(np.mean(labels != labels[0])))
        raised.append(float(np.mean(scores[1:] > scores[0])))  # z[0] keeps every band: the clip itself
        t = labels if target == "label" else (scores - scores.mean()) / (scores.std() or 1.0)
        if np.ptp(t) == 0:  # every version gets the same label: no band matters locally
            imp.append(np.zeros(n_bands)), fit.append(np.nan)
            continue
        c, r2 = surrogate(z, t, w)
        imp.append(c), fit.append(r2)
    bands = bands_hz(detector.input_params, n_bands) if hasattr(detector, "input_params") else \
        pd.DataFrame({"band": np.arange(n_bands)})
    return Explanation(np.vstack(imp), np.asarray(fit), np.asarray(flipped), bands, np.asarray(raised), fill,
                       scored=len(patterns))


def towards_correct(importance: np.ndarray, y) -> np.ndarray:
    """Importance for the *correct* decision (the paper's heatmaps): the anomaly coefficients of
    anomalous clips, their negatives for inliers."""
    sign = np.where(np.asarray(y, int) == 1, 1.0, -1.0)
    return np.asarray(importance) * sign[:, None]


def median_heatmap(importance: np.ndarray, groups: pd.DataFrame) -> pd.DataFrame:
    """Median importance per band over the clips of each group (rows: the groups' value
    combinations; columns: bands)."""
    df = pd.DataFrame(importance, index=pd.MultiIndex.from_frame(groups.reset_index(drop=True)))
    return df.groupby(level=list(range(groups.shape[1]))).median()


def explanation_accuracy(importance: np.ndarray, bands: pd.DataFrame, band_lo, band_hi) -> pd.DataFrame:
    """How often the most important band (largest anomaly coefficient) overlaps the band the
    anomaly was injected in, per clip, beside the chance of that by picking a band at random.

    Returns one row per clip: ``top_band``, ``hit`` (bool), ``chance`` (the fraction of bands
    that overlap the injected one), ``explained`` (False where every coefficient is 0).
    """
    imp = np.asarray(importance, float)
    lo_b, hi_b = bands["lo_hz"].to_numpy(), bands["hi_hz"].to_numpy()
    lo = np.asarray(band_lo, float)[:, None]
    hi = np.asarray(band_hi, float)[:, None]
    overlap = (lo_b[None] < hi) & (hi_b[None] > lo)
    top = imp.argmax(axis=1)
    return pd.DataFrame({"top_band": top, "hit": overlap[np.arange(len(top)), top],
                         "chance": overlap.mean(axis=1), "explained": np.any(imp != 0, axis=1)})
