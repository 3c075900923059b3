"""Features: DCASE-baseline log-mel (librosa and torch), frame stacks, sequences, and a cache.

The one call most chapters need is :func:`clip_logmels`: log-mel spectrograms of many clips,
computed in parallel through the on-disk cache.
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

import numpy as np

from ..audio import load
from .cache import FeatureCache, extract
from .logmel import LogMelParams, logmel, logmel_torch, sequence_windows, stack_frames

__all__ = ["LogMelParams", "logmel", "logmel_torch", "stack_frames", "sequence_windows",
           "clip_logmels", "clip_frame_vectors", "frame_vectors_of", "logmel_file", "FeatureCache", "extract"]


#: Shortest clip the feature functions accept (seconds): every dataset here has 2 s clips or longer.
MIN_CLIP_SECONDS = 1.0


def logmel_file(path: str, params: LogMelParams = LogMelParams(), channel: int = 0) -> np.ndarray:
    """Load one clip (channel ``channel``) and return its log-mel. A clip at any rate other than
    ``params.sr`` is refused (never resampled silently), as is one shorter than
    :data:`MIN_CLIP_SECONDS` or truncated against its header."""
    y, _ = load(path, expected_sr=params.sr, channel=channel, min_duration=MIN_CLIP_SECONDS)
    return logmel(y, params)


def clip_logmels(paths: Sequence[str], params: LogMelParams = LogMelParams(), n_jobs: int = 1,
                 use_cache: bool = True, progress: bool = True, channel: int = 0) -> list[np.ndarray]:
    """Log-mel spectrograms (T, n_mels) of many clips, cached on disk and computed in parallel."""
    key = dict(params.key(), channel=channel)
    return extract(paths, partial(logmel_file, params=params, channel=channel), "logmel", key,
                   n_jobs=n_jobs, use_cache=use_cache, progress=progress)


def clip_frame_vectors(paths: Sequence[str], params: LogMelParams, n_frames: int = 5, n_jobs: int = 1
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Stacked frame vectors of many clips, as the frame-level detectors read them.

    Returns:
        (X, owner): X (n_vectors, n_frames * n_mels) float32, and for each vector the index of
        the clip (in ``paths``) it came from.
    """
    return frame_vectors_of(clip_logmels(list(paths), params, n_jobs=n_jobs, progress=False), n_frames)


def frame_vectors_of(specs, n_frames: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """:func:`clip_frame_vectors` of already-computed log-mels (each (T, n_mels))."""
    stacks = [stack_frames(np.asarray(s), n_frames) for s in specs]
    owner = np.concatenate([np.full(len(s), i) for i, s in enumerate(stacks)])
    return np.concatenate(stacks).astype(np.float32), owner
