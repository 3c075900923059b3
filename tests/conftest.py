"""Shared fixtures: the real sample clips (via $ASDSTUDY_SHARED_DATA) and a tiny synthetic set."""

from __future__ import annotations

import os
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
