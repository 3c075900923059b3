"""The "Running at scale" page's experiment: joblib vs a dask LocalCluster on one sweep."""

import numpy as np
import pytest

from asdstudy import ASDStudyError
from asdstudy.experiments import scale as X
from asdstudy.sweep import point_id
from conftest import smoke_params

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def res(smoke_root):
    return X.run(smoke_params(X, smoke_root))


def test_engines_give_identical_rows_and_timings(res):
    assert res.identical
    t = res.timings
    assert len(t) == 2 and (t["wall seconds"] > 0).all() and (t.points == res.params.n_points).all()


def test_estimate_scales_with_the_grid(res):
    e = res.estimate.set_index("sweep")
    total = e.iloc[0]
    assert total.points == 41472 * 2 * 6
    assert total["CPU-core years"] == pytest.approx(e.iloc[1:]["CPU-core years"].sum())
    assert res.seconds_per_vector >= 0


def test_per_vector_cost_is_the_slope_not_the_fixed_cost():
    pts = [{"train_stride": 4, "k": 0}, {"train_stride": 1, "k": 1}]
    secs = {point_id(pts[0]): 10 + 0.01 * 100, point_id(pts[1]): 10 + 0.01 * 400}
    assert X.per_vector_seconds(pts, secs, n_vectors=400, epochs=1) == pytest.approx(0.01)
    with pytest.raises(ASDStudyError, match="two training strides"):
        X.per_vector_seconds(pts[:1], secs, n_vectors=400, epochs=1)


def test_one_point_is_refused(smoke_root):
    with pytest.raises(ASDStudyError, match="'n_points'"):
        smoke_params(X, smoke_root, n_points=1)
