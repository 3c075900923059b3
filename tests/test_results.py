import pandas as pd
import pytest

from asdstudy import ASDStudyError
from asdstudy.results import (CLAIM_COLUMNS, RESULT_COLUMNS, ResultWriter, load_claims, provenance,
                              read_results, write_results)


def test_claims_file_is_complete_and_well_formed():
    c = load_claims()
    assert list(c.columns) == CLAIM_COLUMNS
    assert set(c.paper) >= {"000", "001", "002", "003", "004", "dcase2020-baseline"}
    derived = c.formula != ""
    assert c.value[~derived].notna().all() and c.value[derived].isna().all()  # derived ones are computed
    assert c.source.str.len().gt(0).all() and c.chapter.str.len().gt(0).all()
    assert set(c.kind) <= {"value", "count", "direction", "by construction", "not comparable"}
    key = ["paper", "source", "method", "machine", "unit", "metric"]
    assert not c.duplicated(key).any()

    def claim(paper, method, metric, machine=None, unit=None):
        q = c[(c.paper == paper) & (c.method == method) & (c.metric == metric)]
        if machine:
            q = q[q.machine == machine]
        if unit:
            q = q[q.unit == unit]
        assert len(q) == 1, (paper, method, metric, machine, unit)
        return q.value.iloc[0]

    assert claim("000", "CatBoost", "auc") == 0.9965
    assert claim("001", "LSTM next-frame predictor", "auc") == 0.9406
    assert claim("001", "GRU sequence autoencoder", "auc") == 0.892
    assert claim("002", "VAE", "auc", "slider", "mean") == pytest.approx(0.888733)
    assert claim("002", "Dense AE", "auc") == 0.7662
    assert claim("003", "GANomaly", "auc", "all", "weighted") == 0.8816
    assert claim("003", "EGBAD", "auc", "all", "weighted") == 0.4623
    assert claim("004", "AST (STFT) + kNN", "auc", "gearbox") == 0.81
    # Table 7 complete: 5 methods x 6 machines x 2 metrics
    assert len(c[(c.paper == "003") & (c.source == "Table 7")]) == 60
    # Table 1 of paper 004 complete: 4 methods x 7 machines
    assert len(c[(c.paper == "004") & (c.source == "Table 1")]) == 28
    # the VAE's mean equals the mean of its per-id claims (internal consistency of Table 3)
    ids = c[(c.paper == "002") & (c.method == "VAE") & (c.metric == "auc") & c.unit.isin(["00", "02", "04"])]
    assert ids.value.mean() == pytest.approx(claim("002", "VAE", "auc", "slider", "mean"), abs=1e-6)


def test_result_writer_roundtrip(tmp_path):
    w = ResultWriter("autoencoders", profile="smoke", seed=3, dataset="synthetic-dcase2020")
    w.add("002", "VAE", "auc", 0.8, machine="slider", unit="00", ci=(0.7, 0.9), n_normal=5, n_anomaly=5)
    path = w.write(tmp_path)
    assert path.name == "autoencoders.csv"
    df = read_results(tmp_path)
    assert list(df.columns) == RESULT_COLUMNS and len(df) == 1
    r = df.iloc[0]
    assert (r.seed, r.profile, r.unit, r.ci_low, r.paper) == (3, "smoke", "00", 0.7, "002")
    assert r.git_revision and r.device.startswith(("cpu", "cuda")) and r.package_version


def test_empty_results_and_bad_rows(tmp_path):
    assert list(read_results(tmp_path / "none").columns) == RESULT_COLUMNS
    with pytest.raises(ASDStudyError, match="lack the column"):
        write_results(pd.DataFrame({"value": [1]}), "x", tmp_path)


def test_provenance_fields():
    p = provenance("default", 7)
    assert p["seed"] == 7 and p["profile"] == "default" and p["torch"]


def test_rows_written_from_python_stay_in_their_profiles_folder(tmp_path, monkeypatch):
    """A smoke or paper run of a chapter module from Python never replaces the default rows."""
    from asdstudy.results import ResultWriter, output_dir

    monkeypatch.setenv("ASDSTUDY_RESULTS", str(tmp_path))
    monkeypatch.delenv("ASDSTUDY_RESULTS_OUT", raising=False)
    for profile, where in (("default", tmp_path), ("smoke", tmp_path / "smoke"), ("paper", tmp_path / "paper")):
        w = ResultWriter("data", profile, 0)
        w.add("x", "m", "auc", 0.5)
        assert w.write() == where / "data.csv" and output_dir(profile) == where
    monkeypatch.setenv("ASDSTUDY_RESULTS_OUT", str(tmp_path / "work"))  # inside a runner's kernel
    w = ResultWriter("data", "paper", 0)
    w.add("x", "m", "auc", 0.5)
    assert w.write() == tmp_path / "work" / "data.csv"
