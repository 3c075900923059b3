"""k-nearest-neighbour scoring of embeddings (paper 004: AST embeddings, k = 1).

:func:`knn_scores` is the mean distance from each test embedding to its ``k`` nearest training
embeddings (cosine or Euclidean). :class:`KNNDetector` puts it under the one protocol on top of
an already fitted embedder (one embedder for all machines; one k-NN per unit).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import ASDStudyError
from .base import SpectrogramDetector

METRICS = ("cosine", "euclidean")


def knn_scores(train, test, k: int = 1, metric: str = "cosine") -> np.ndarray:
    """Mean distance of each row of ``test`` to its ``k`` nearest rows of ``train``."""
    from sklearn.metrics import pairwise_distances

    if metric not in METRICS:
        raise ASDStudyError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}.")
    train, test = np.atleast_2d(np.asarray(train, float)), np.atleast_2d(np.asarray(test, float))
    if not 1 <= k <= len(train):
        raise ASDStudyError(f"k must be between 1 and the {len(train)} training embeddings, got {k}.")
    if train.shape[1] != test.shape[1]:
        raise ASDStudyError(f"train embeddings have {train.shape[1]} dimensions, test {test.shape[1]}.")
    d = pairwise_distances(test, train, metric=metric)
    return np.sort(d, axis=1)[:, :k].mean(axis=1)


class KNNDetector(SpectrogramDetector):
    """k-NN on the embeddings of a fitted embedder (``spectrograms(table)``, ``embed(specs)``,
    ``params``), e.g. :class:`~asdstudy.features.embeddings.ASTEmbedder`."""

    def __init__(self, embedder, k: int = 1, metric: str = "cosine", name: str = "AST + kNN"):
        self.embedder, self.k, self.metric, self.name = embedder, k, metric, name

    @property
    def input_params(self):
        return self.embedder.params

    def spectrograms(self, table: pd.DataFrame) -> list:
        return self.embedder.spectrograms(table)

    def fit(self, table: pd.DataFrame, y=None) -> "KNNDetector":
        self.train_ = self.embedder.embed(self.spectrograms(table))
        return self

    def score_spectrograms(self, specs) -> np.ndarray:
        self._check_fitted("train_")
        return knn_scores(self.train_, self.embedder.embed(list(specs)), self.k, self.metric)
