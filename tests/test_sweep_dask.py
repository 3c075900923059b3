"""Sweeps on a dask.distributed cluster: a LocalCluster of 2 worker processes on 127.0.0.1."""

import os
import signal
import time

import pytest

from asdstudy import ASDStudyError
from asdstudy.sweep import Sweep, expand_grid, point_id

distributed = pytest.importorskip("distributed")

import sweep_points as SP  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, silence_logs=40) as c:
        yield c


def test_same_rows_as_joblib_and_reruns_skip(cluster, tmp_path):
    pts = expand_grid({"seed": [0, 1, 2], "lr": [0.01, 0.05]})
    local = Sweep(tmp_path / "local", SP.train_tiny).run(pts, n_jobs=2, progress=False)
    dask = Sweep(tmp_path / "dask", SP.train_tiny).run(pts, scheduler=cluster.scheduler_address, progress=False)
    key = ["seed", "lr"]
    a = local.sort_values(key).reset_index(drop=True)[key + ["loss", "w0"]]
    b = dask.sort_values(key).reset_index(drop=True)[key + ["loss", "w0"]]
    assert a.equals(b)  # bit-identical: one torch thread per point on either engine
    stamp = (tmp_path / "dask" / f"{point_id(pts[0])}.json").stat().st_mtime_ns
    Sweep(tmp_path / "dask", SP.train_tiny).run(pts, scheduler=cluster.scheduler_address, progress=False)
    assert (tmp_path / "dask" / f"{point_id(pts[0])}.json").stat().st_mtime_ns == stamp
    st = Sweep(tmp_path / "dask", SP.train_tiny).status()
    assert (st.state == "done").all() and len(st) == 6


def test_killed_worker_leaves_no_partial_point_and_is_retried(cluster, tmp_path):
    import threading

    marker = tmp_path / "pid"
    pts = [{"x": 1, "marker": str(marker)}]
    sweep = Sweep(tmp_path / "s", SP.die_once)

    def kill_when_started():
        for _ in range(300):
            if marker.exists() and marker.read_text():
                os.kill(int(marker.read_text()), signal.SIGKILL)
                return
            time.sleep(0.1)

    t = threading.Thread(target=kill_when_started)
    t.start()
    out = sweep.run(pts, scheduler=cluster.scheduler_address, progress=False, retries=2)
    t.join()
    assert out.x.tolist() == [1]
    assert not list((tmp_path / "s").glob(".*.tmp"))


def test_point_that_always_kills_its_worker_is_reported_failed(cluster, tmp_path):
    from distributed import Client

    pts = [{"x": 1}]
    sweep = Sweep(tmp_path / "s", SP.always_die)
    with Client(cluster.scheduler_address) as client:
        with pytest.raises(ASDStudyError, match="1 of 1 sweep points failed"):
            sweep.run(pts, scheduler=client, progress=False, retries=0)
    st = sweep.status()
    assert st.state.tolist() == ["failed"] and "KilledWorker" in st.error.iloc[0]
    assert not list((tmp_path / "s").glob(f"{point_id(pts[0])}.json"))


def test_worker_that_cannot_see_the_data_root_names_path_and_worker(cluster, tmp_path):
    pts = [{"seed": 0, "lr": 0.01}, {"seed": 0, "lr": 0.02, "root": "/nonexistent/asd-data"}]
    sweep = Sweep(tmp_path / "s", SP.train_tiny)
    with pytest.raises(ASDStudyError, match="1 of 2 sweep points failed") as exc:
        sweep.run(pts, scheduler=cluster.scheduler_address, progress=False, retries=0)
    assert "cannot see the data root /nonexistent/asd-data" in str(exc.value)
    st = sweep.status().set_index("point_id")
    assert st.loc[point_id(pts[0]), "state"] == "done"
    assert "dask worker tcp://127.0.0.1" in st.loc[point_id(pts[1]), "error"]
    # the CLI counts the same and exits 1 on failures
    from click.testing import CliRunner

    from asdstudy.cli import main

    res = CliRunner().invoke(main, ["sweep", "status", str(tmp_path / "s")])
    assert res.exit_code == 1 and "2 points: 1 done, 1 failed, 0 pending" in res.output


def test_every_dask_worker_is_warmed_before_a_timing(cluster):
    from asdstudy.experiments import scale

    assert scale.warm_workers("dask", 2, cluster.scheduler_address) == 2


def test_unreachable_scheduler_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("ASDSTUDY_DASK_TIMEOUT", "2s")
    with pytest.raises(ASDStudyError, match="cannot reach the dask scheduler"):
        Sweep(tmp_path, SP.train_tiny).run([{"seed": 0, "lr": 0.1}], scheduler="tcp://127.0.0.1:9", progress=False)


def test_gan_chapter_sweep_on_the_cluster_gives_the_local_numbers(cluster, smoke_root, tmp_path, monkeypatch):
    from asdstudy.experiments import gans as X
    from conftest import smoke_params

    small = {"kinds": ["ganomaly"], "machines": ["valve"], "seeds": [0]}
    monkeypatch.setenv("ASDSTUDY_RESULTS", str(tmp_path / "local"))
    local = X.run(smoke_params(X, smoke_root, **small), progress=False)
    monkeypatch.setenv("ASDSTUDY_RESULTS", str(tmp_path / "dask"))
    remote = X.run(smoke_params(X, smoke_root, scheduler=cluster.scheduler_address, **small), progress=False)
    cols = ["method", "machine", "unit", "auc", "pauc_mcclish"]
    assert local.per_id[cols].reset_index(drop=True).equals(remote.per_id[cols].reset_index(drop=True))


def test_gan_chapter_notebook_runs_unchanged_with_a_scheduler_parameter(cluster, smoke_root, tmp_path, monkeypatch):
    """`asdstudy run gans -p scheduler ADDRESS`: the chapter's own notebook, through the runner,
    sends every sweep point to the cluster's workers."""
    import json

    from asdstudy import runner
    from conftest import repo_copy

    repo_copy(tmp_path, monkeypatch)
    over = {"scheduler": cluster.scheduler_address, "data_root": str(smoke_root), "kinds": ["ganomaly"],
            "machines": ["valve"], "seeds": [0], "jobs": 1}
    out = runner.run_chapter("gans", "smoke", over, progress=False)
    assert out == tmp_path / "book/_profiles/smoke/gans.ipynb"
    folder, = (tmp_path / "results").rglob("gans-smoke")
    records = [json.loads(p.read_text()) for p in folder.glob("*.json") if not p.name.endswith(".failed.json")
               and p.name not in ("sweep.json",)]
    records = [r for r in records if "worker" in r]
    addresses = set(cluster.scheduler_info["workers"])
    assert records and all(any(a in r["worker"] for a in addresses) for r in records)
