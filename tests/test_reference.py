import numpy as np
import pytest

from asdstudy import ASDStudyError
from asdstudy.datasets import clip_table
from asdstudy.models.base import evaluate_per_unit
from asdstudy.models.reference import MahalanobisStats, clip_stats


def test_clip_stats_shape_and_values():
    a = np.array([[1.0, 2.0], [3.0, 2.0]])
    np.testing.assert_allclose(clip_stats([a]), [[2.0, 2.0, 1.0, 0.0]])


def test_reference_detector_protocol(tiny_synth):
    table = clip_table(tiny_synth / "dcase2020", machines=["slider"])
    metrics, scores = evaluate_per_unit(MahalanobisStats, table, n_boot=20)
    assert list(metrics.unit) == ["00", "02"]
    assert metrics.auc.between(0, 1).all() and (metrics.n_normal == 2).all()
    assert len(scores) == 8 and np.isfinite(scores.score).all()
    det = MahalanobisStats()
    train = table[(table.split == "train") & (table.id == "00")]
    det.fit(train)
    # training clips are closer to the fitted model than a clip of another machine type
    other = clip_table(tiny_synth / "dcase2020", machines=["valve"]).iloc[:3]
    assert det.score(other).min() > np.median(det.score(train))


def test_unfitted_detector_error(tiny_synth):
    table = clip_table(tiny_synth / "dcase2020", machines=["slider"])
    with pytest.raises(ASDStudyError, match="not fitted"):
        MahalanobisStats().score(table.iloc[:1])
