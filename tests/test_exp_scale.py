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


def test_paper004_plan_counts_the_explain_chapter_paper_profile():
    from asdstudy.experiments import explain

    e = explain.Params.from_profile("explain", "paper")
    plan = X.paper004_plan(e)
    assert plan["n_train"] == 7 * 6 * 1003 and plan["n_test"] == 7 * 3 * 400
    # both inputs' ASTs, then the sweep's 19 cutoffs x 2 kinds (its unfiltered model is Table 1's)
    assert len(e.cutoffs) == 19 and plan["models"] == 2 + 38
    assert plan["clip_steps"] == 42126 * (2 * 10 + 38 * 10)
    assert plan["slime_forwards"] == 1000 * 8400
    est = X.paper004_estimate({"step_s": 2.0, "forward_s": 0.5, "threads": 1}, plan).set_index("work")
    assert est.iloc[1]["CPU-core years"] == pytest.approx(plan["clip_steps"] * 2.0 / 3.156e7)
    assert est.iloc[0]["CPU-core years"] == pytest.approx(est.iloc[1:]["CPU-core years"].sum())
    assert est.iloc[0]["count"] == plan["clip_steps"] + plan["embedding_forwards"] + plan["slime_forwards"]


def test_time_ast_times_a_step_and_a_forward_and_restores_threads():
    import torch

    from asdstudy.features.embeddings import small_ast_config

    before = torch.get_num_threads()
    t = X.time_ast(small_ast_config(4, 64, 32, hidden=16, layers=1, heads=2), threads=1)
    assert t["step_s"] > 0 and t["forward_s"] > 0 and t["threads"] == 1 and t["device"] == "cpu"
    assert 0 < t["parameters"] < 1e6 and torch.get_num_threads() == before


def test_smoke_run_says_the_ast_was_not_timed(res):
    assert not res.ast_timing and res.ast_estimate.empty
    assert "not timed" in res.glue()["scale_ast_summary"]


def test_joblib_workers_are_warmed():
    assert 1 <= X.warm_workers("joblib", 2) <= 2
