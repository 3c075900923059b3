"""Shared fixtures: the real sample clips (via $ASDSTUDY_SHARED_DATA) and a tiny synthetic set."""

from __future__ import annotations

import http.server
import os
import threading
from pathlib import Path

import pytest

from asdstudy.datasets.synthetic import Sizes, generate

SHARED_ENV = "ASDSTUDY_SHARED_DATA"
TINY = Sizes(n_train=4, n_test_normal=2, n_test_anomaly=2, n_target_train=1, n_labelled=12, max_ids=2)


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Tests never touch the user's feature cache or results."""
    os.environ["ASDSTUDY_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ.setdefault("ASDSTUDY_RESULTS", str(tmp_path_factory.mktemp("results")))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = os.environ.get(SHARED_ENV)
    if not root:
        pytest.skip(f"real sample clips not available: set {SHARED_ENV} to the shared data folder "
                    "(.ci/run sets it to ../shared/data)")
    path = Path(root)
    if not path.is_dir():
        pytest.skip(f"{SHARED_ENV}={root} is not a folder")
    return path


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory) -> Path:
    """A tiny DCASE 2020-layout synthetic set of slider and valve (2 ids, 8 clips each)."""
    root = tmp_path_factory.mktemp("synth")
    generate(root, sizes=TINY, machines=["slider", "valve"], progress=False)
    return root


class Server:
    """Serves bytes by path; can cut the first response short to simulate an interruption."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut_after: int | None = None
        self.requests: list[dict] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                data = outer.files.get(self.path)
                outer.requests.append({"path": self.path, "range": self.headers.get("Range")})
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if outer.cut_after is not None:
                    self.wfile.write(body[: outer.cut_after])
                    self.wfile.flush()
                    outer.cut_after = None
                    self.connection.shutdown(2)  # drop the connection mid-body
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.httpd.shutdown()


@pytest.fixture(scope="session")
def smoke_root(tmp_path_factory) -> Path:
    """One data root for the in-process experiment tests (smoke sets generated once)."""
    return tmp_path_factory.mktemp("smoke-data")


def repo_copy(dst: Path, monkeypatch, names=("asdstudy", "notebooks")) -> Path:
    """Copy the parts of the repository a chapter run needs into ``dst`` and make it the
    repository for in-process runs (``runner.repo_root``) and the kernels they start
    (PYTHONPATH); result rows go to ``dst/results``."""
    import shutil

    from asdstudy import runner

    root = Path(runner.__file__).resolve().parent.parent
    for name in names:
        shutil.copytree(root / name, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(runner, "repo_root", lambda: dst)
    monkeypatch.setenv("ASDSTUDY_RESULTS", str(dst / "results"))
    monkeypatch.setenv("PYTHONPATH", str(dst))
    return dst


def smoke_params(module, smoke_root, **changes):
    """A chapter's smoke-profile parameters on the shared smoke data root."""
    return module.Params.from_profile(module.CHAPTER, "smoke", data_root=str(smoke_root), **changes)


def check_rows(rows, chapter: str):
    """Invariants of every chapter's result rows: provenance on every row, a CI that contains
    its value wherever one is given, and a CI on every mean-over-units row."""
    import numpy as np

    assert len(rows) and (rows["chapter"] == chapter).all()
    for col in ("profile", "seed", "device", "package_version", "git_revision", "python", "numpy", "torch", "timestamp"):
        assert rows[col].notna().all() and (rows[col].astype(str) != "").all(), col
    has_ci = rows["ci_low"].notna()
    v = rows[has_ci]
    assert ((v["ci_low"] <= v["value"] + 1e-12) & (v["value"] <= v["ci_high"] + 1e-12)).all(), \
        v[(v["ci_low"] > v["value"]) | (v["value"] > v["ci_high"])][["method", "unit", "metric", "value", "ci_low", "ci_high"]]
    means = rows[(rows["unit"] == "mean") & rows["metric"].isin(["auc", "pauc_mcclish"]) & rows["value"].notna()]
    assert means["ci_low"].notna().all(), means[means["ci_low"].isna()][["method", "metric"]]
    finite = rows["value"].notna() | rows["note"].fillna("").astype(str).ne("")
    assert finite.all(), "a NaN result row without a note saying why"


def is_figure(fig) -> bool:
    import matplotlib.pyplot as plt

    ok = hasattr(fig, "axes") and len(fig.axes) > 0 and any(ax.has_data() for ax in fig.axes)
    plt.close(fig)
    return ok
