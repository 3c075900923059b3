"""The shared protocol of the chapter experiments (asdstudy.experiments.protocol)."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from asdstudy import ASDStudyError
from asdstudy import metrics as M
from asdstudy.experiments import protocol as P
from asdstudy.results import ResultWriter, load_claims

REPO = Path(__file__).resolve().parent.parent
#: Paper 003, Table 2: test clips per machine type.
PAPER003_N_TEST = {"fan": 1875, "pump": 856, "slider": 1290, "ToyCar": 2459, "ToyConveyor": 3509, "valve": 879}


def scored(n_units=3, n=40, seed=0, shift=1.0):
    rng = np.random.default_rng(seed)
    parts = []
    for u in range(n_units):
        y = np.r_[np.zeros(n), np.ones(n)].astype(int)
        s = rng.normal(size=2 * n) + shift * y * (u + 1) / n_units
        parts.append(pd.DataFrame({"unit": f"{u:02d}", "label": y, "score": s, "machine": "fan", "method": "m",
                                   "path": [f"/x/{u}_{i}.wav" for i in range(2 * n)]}))
    return pd.concat(parts, ignore_index=True)


# ------------------------------------------------------------------------------ parameters

@dataclass
class _Params(P.ChapterParams):
    epochs: int = 3
    seeds: list = field(default_factory=lambda: [0])
    lr: float = 1e-3


def test_params_from_mapping_takes_declared_fields_and_coerces():
    p = _Params.from_mapping({"profile": "smoke", "epochs": 5, "lr": 1, "seeds": (1, 2), "unrelated": object()})
    assert (p.profile, p.epochs, p.lr, p.seeds) == ("smoke", 5, 1.0, [1, 2])
    assert isinstance(p.lr, float)


@pytest.mark.parametrize("key,value,needle", [
    ("seed", "abc", "'seed'"), ("epochs", 2.5, "'epochs'"), ("seeds", 3, "'seeds'"),
    ("epochs", -1, "at least 1"), ("jobs", 0, "'jobs'"), ("profile", "huge", "'profile'"),
])
def test_params_bad_values_name_the_parameter(key, value, needle):
    with pytest.raises(ASDStudyError, match=needle):
        _Params.from_mapping({key: value})


def test_params_from_profile_reads_the_profile():
    from asdstudy.experiments import autoencoders

    p = autoencoders.Params.from_profile("autoencoders", "smoke", data_root="/nowhere")
    assert p.profile == "smoke" and p.epochs == 1 and p.data_root == "/nowhere"


def test_load_data_missing_real_root_names_it(tmp_path):
    p = _Params(profile="paper", data_root=str(tmp_path / "absent"))
    with pytest.raises(ASDStudyError, match="absent"):
        P.load_data(p, ["slider"])
    with pytest.raises(ASDStudyError, match="variant"):
        P.load_data(p, ["slider"], variant="dcase2099")


# ------------------------------------------------------------------------------- splitting

def test_calibration_mask_is_stratified_and_seeded():
    y = np.r_[np.zeros(10), np.ones(6)].astype(int)
    a = P.calibration_mask(y, 0.5, np.random.default_rng(3))
    b = P.calibration_mask(y, 0.5, np.random.default_rng(3))
    assert np.array_equal(a, b)
    assert a[y == 0].sum() == 5 and a[y == 1].sum() == 3
    with pytest.raises(ASDStudyError, match="two clips of class 1"):
        P.calibration_mask(np.array([0, 0, 1]), 0.5, np.random.default_rng(0))


def test_split_halves_matches_threshold_comparisons_split():
    """One split routine: the halves are the ones metrics.threshold_comparison draws."""
    s = scored(n_units=2, n=6)
    halves = P.split_halves(s, 0.5, seed=4, by=("unit",))
    assert set(halves.unique()) == {"cal", "eval"}
    assert len(halves) == len(s)
    rng = np.random.default_rng(4)
    for _, g in s.groupby("unit"):
        cal = P.calibration_mask(g.label.to_numpy(), 0.5, rng)
        assert (halves[g.path[cal]] == "cal").all() and (halves[g.path[~cal]] == "eval").all()


# ------------------------------------------------------------------------------- evaluation

def test_mean_over_units_value_is_the_mean_and_inside_its_ci():
    s = scored()
    out = P.mean_over_units(s, by=("method", "machine"), metrics=("auc", "pauc_mcclish"), n_boot=200, seed=0)
    assert list(out.metric) == ["auc", "pauc_mcclish"]
    per_unit = [M.auc(g.label, g.score) for _, g in s.groupby("unit")]
    assert out.value.iloc[0] == pytest.approx(np.mean(per_unit))
    assert (out.ci_low <= out.value).all() and (out.value <= out.ci_high).all()
    assert out.n_units.iloc[0] == 3 and out.n_normal.iloc[0] == 120


def test_per_unit_metrics_has_cis_per_group():
    out = P.per_unit_metrics(scored(), by=("method", "unit"), n_boot=100)
    assert len(out) == 3
    for m in ("auc", "pauc_mcclish", "pauc_raw"):
        assert (out[f"{m}_low"] <= out[m]).all() and (out[m] <= out[f"{m}_high"]).all()


def test_pooled_auc_refuses_separately_trained_models_unless_labelled():
    s = scored()
    with pytest.raises(ASDStudyError, match="3 separately trained models"):
        P.pooled_auc(s, model="unit")
    ci, note = P.pooled_auc(s, model="unit", n_boot=100, allow_separate_models=True)
    assert "separately trained" in note
    assert ci.value == pytest.approx(M.auc(s.label, s.score))
    one = s[s.unit == "00"]
    ci1, note1 = P.pooled_auc(one, model="unit", n_boot=100)
    assert note1 == "" and ci1.low <= ci1.value <= ci1.high


def test_pooled_auc_needs_the_column_naming_the_model():
    with pytest.raises(ASDStudyError, match="no column \\['model'\\]"):
        P.pooled_auc(scored())


def test_run_methods_trains_one_model_per_machine_type_when_declared(smoke_root):
    """'machine': one fit on every id's normals, scored per id; 'unit': one fit per id."""
    from asdstudy.models.base import run_methods

    fits = []

    class Counting:
        def __init__(self, seed):
            self.seed = seed

        def fit(self, table, y=None):
            fits.append(sorted(table["id"].unique()))
            self.mean_ = 0.0
            return self

        def score(self, table):
            return np.arange(len(table), dtype=float)

    data = P.load_data(P.ChapterParams.from_profile("data", "smoke", data_root=str(smoke_root)), ["slider"])
    ids = sorted(data.table["id"].unique())
    out = run_methods({"per type": Counting, "per id": Counting}, data.table, seeds=(0,), n_boot=20, progress=False,
                      units={"per type": "machine"}, thresholded=["per id"])
    assert fits[0] == ids and all(len(f) == 1 for f in fits[1:]) and len(fits) == 1 + len(ids)
    m = out["metrics"]
    assert len(m) == 2 * len(ids) and set(m[m.method == "per type"].training_unit) == {"machine"}
    assert set(out["scores"][out["scores"].method == "per type"].model) == {"slider"}
    assert set(out["holdout"].method) == {"per id"}
    with pytest.raises(ASDStudyError, match="not among the methods"):
        run_methods({"a": Counting}, data.table, units={"b": "machine"}, progress=False)


def test_run_methods_in_parallel_gives_the_numbers_of_one_process(smoke_root):
    """n_jobs fits models in worker processes; they come back in job order, and a seeded
    autoencoder gives the same scores as when trained in this process."""
    from asdstudy.models.autoencoders import AEConfig, AutoencoderDetector
    from asdstudy.models.base import run_methods
    from asdstudy.models.store import switched

    data = P.load_data(P.ChapterParams.from_profile("data", "smoke", data_root=str(smoke_root)), ["slider"])

    def make(seed):
        return AutoencoderDetector(AEConfig(kind="ae", n_mels=64, epochs=2, batch_size=64, seed=seed))

    with switched(False):  # train both times, never read back
        one = run_methods({"ae": make}, data.table, seeds=(0, 1), n_boot=20, progress=False)
        two = run_methods({"ae": make}, data.table, seeds=(0, 1), n_boot=20, progress=False, n_jobs=2)
    cols = ["method", "machine", "unit", "seed", "auc"]
    pd.testing.assert_frame_equal(one["metrics"][cols], two["metrics"][cols])
    np.testing.assert_allclose(one["scores"]["score"], two["scores"]["score"], rtol=1e-5)
    assert set(two["detectors"]) == set(one["detectors"]) and all(len(d.history_.train) == 2 for d in two["detectors"].values())


def test_additional_training_ids_train_the_per_machine_models_only(smoke_root):
    """A unit with training clips and no test clips (DCASE 2020's additional-training ids):
    its clips join the per-machine-type models, no per-unit model is trained for it, it is
    evaluated nowhere, and the run says so."""
    from asdstudy.models.base import run_methods

    fits = []

    class Counting:
        def __init__(self, seed):
            pass

        def fit(self, table, y=None):
            fits.append(sorted(table["id"].unique()))
            return self

        def score(self, table):
            return np.arange(len(table), dtype=float)

    data = P.load_data(P.ChapterParams.from_profile("data", "smoke", data_root=str(smoke_root)), ["slider"])
    t = data.table
    ids = sorted(t["id"].unique())
    extra = ids[-1]
    t = t[~((t["id"] == extra) & (t["split"] == "test"))]  # the last id keeps training clips only
    with pytest.warns(UserWarning, match=f"slider {extra}.*per id train no model"):
        out = run_methods({"per type": Counting, "per id": Counting}, t, n_boot=20, progress=False,
                          units={"per type": "machine"})
    assert fits[0] == ids  # the per-type model saw the extra id's clips
    assert all(extra not in f for f in fits[1:]) and len(fits) == len(ids)  # 1 + (len(ids) - 1) per-id fits
    assert extra not in set(out["metrics"].unit) and out["training_only"] == [("slider", extra)]


def test_ci_separation_counts():
    first = pd.DataFrame({"method": ["a", "a", "b", "b"], "unit": ["0", "1", "0", "1"], "auc": [0.9, 0.5, 0.5, 0.5],
                          "auc_low": [0.85, 0.4, 0.4, 0.4], "auc_high": [0.95, 0.6, 0.6, 0.6]})
    assert P.ci_separation(first, "a", "b") == (1, 0, 2)
    assert P.ci_separation(first, "b", "a") == (0, 1, 2)


def test_share_ci():
    ci = P.share_ci([1, 0, 0, 1, 1, 0, 0, 0], n_boot=500, seed=1)
    assert ci.value == pytest.approx(3 / 8) and 0 <= ci.low <= ci.value <= ci.high <= 1


# ------------------------------------------------------------------------------ aggregation

def test_test_size_weights_sum_to_one_and_reproduce_paper003_table6():
    """Paper 003's Table 6 (weighted mean over machine types) follows from its Table 7 (per-type
    means) and Table 2 (test counts) with the study's weights."""
    w = P.test_size_weights({m: 1 for m in PAPER003_N_TEST}, PAPER003_N_TEST)
    assert w.sum() == pytest.approx(1.0)
    w3 = P.test_size_weights({"fan": 3, "pump": 2}, {"fan": 300, "pump": 100})
    assert w3.sum() == pytest.approx(1.0) and w3[0] == pytest.approx(0.25) and w3[-1] == pytest.approx(0.125)
    claims = load_claims()
    c = claims[claims.paper == "003"]
    for method in ("DCASE baseline", "EGBAD", "GANomaly", "Skip-GANomaly"):
        t7 = c[(c.source == "Table 7") & (c.method == method) & (c.metric == "auc")].set_index("machine").value
        t6 = c[(c.source == "Table 6") & (c.method == method) & (c.metric == "auc")].value.iloc[0]
        assert float(np.dot(w, t7.reindex(list(PAPER003_N_TEST)))) == pytest.approx(t6, abs=6e-4), method
    assert P.arithmetic_weights({"fan": 3, "pump": 2}).sum() == pytest.approx(1.0)


def test_machine_type_summary_weighted_vs_arithmetic():
    a = scored(n_units=2, seed=1).assign(machine="fan")
    b = scored(n_units=3, seed=2, shift=3.0).assign(machine="pump")
    s = pd.concat([a, b], ignore_index=True)
    n_test = {"fan": 300, "pump": 100}
    out = P.machine_type_summary(s, n_test, by=("method",), metrics=("auc",), n_boot=200).set_index("scheme")
    fan = np.mean([M.auc(g.label, g.score) for _, g in a.groupby("unit")])
    pump = np.mean([M.auc(g.label, g.score) for _, g in b.groupby("unit")])
    assert out.loc["weighted", "value"] == pytest.approx(0.75 * fan + 0.25 * pump)
    assert out.loc["arithmetic", "value"] == pytest.approx((fan + pump) / 2)
    assert (out.ci_low <= out.value).all() and (out.value <= out.ci_high).all()
    assert out.loc["weighted", "spread"] == pytest.approx(M.weighted_std([fan, pump], [300, 100]))


def test_aggregate_units_dcase2023_is_harmonic():
    df = pd.DataFrame({"machine": ["fan"] * 2, "auc": [0.5, 1.0]})
    assert float(P.aggregate_units(df, by="machine", scheme="dcase2023")["fan"]) == pytest.approx(2 / 3)
    assert float(P.aggregate_units(df, by="machine", scheme="dcase2020")["fan"]) == pytest.approx(0.75)


# ------------------------------------------------------------------------------ rows, claims

def test_add_frame_writes_rows_with_cis_and_defaults():
    w = ResultWriter("x", profile="smoke", seed=0, dataset="d")
    frame = pd.DataFrame({"method": ["m", "m"], "machine": ["fan", "fan"], "unit": ["mean", "00"],
                          "metric": ["auc", "auc"], "value": [0.7, 0.6], "ci_low": [0.6, np.nan], "ci_high": [0.8, np.nan],
                          "n_normal": [10, 5]})
    w.add_frame(frame, paper="002")
    df = w.frame()
    assert list(df.paper) == ["002", "002"] and df.ci_low.iloc[0] == 0.6 and np.isnan(df.ci_low.iloc[1])
    assert df.n_normal.iloc[0] == 10
    assert (df.git_revision != "").all() and (df.device != "").all()
    with pytest.raises(ASDStudyError, match="paper"):
        ResultWriter("x", "smoke", 0).add_frame(frame)


def test_claimed_and_fmt_ci():
    assert P.claimed("002", "VAE", "n_parameters") > 0
    assert np.isnan(P.claimed("002", "VAE", "no_such_metric"))
    assert P.fmt_ci(0.81234, 0.7, 0.9) == "0.812 [0.700, 0.900]"
    assert P.fmt_ci(0.5, np.nan, np.nan) == "0.500"


# ---------------------------------------------------------------------------- the house rules

NOTEBOOK_CODE_LIMIT = 100


def notebook_code_lines(path: Path) -> int:
    """Non-blank, non-comment code lines outside the cell tagged ``parameters``."""
    nb = json.loads(path.read_text())
    n = 0
    for c in nb["cells"]:
        if c["cell_type"] != "code" or "parameters" in c.get("metadata", {}).get("tags", []):
            continue
        n += sum(1 for line in "".join(c["source"]).splitlines() if line.strip() and not line.strip().startswith("#"))
    return n


def test_chapter_notebooks_are_short(capsys):
    counts = {p.stem: notebook_code_lines(p) for p in sorted((REPO / "notebooks").glob("*.ipynb"))}
    with capsys.disabled():
        print("\ncode lines per chapter notebook (outside the parameters cell):",
              ", ".join(f"{k} {v}" for k, v in counts.items()))
    over = {k: v for k, v in counts.items() if v > NOTEBOOK_CODE_LIMIT}
    assert not over, f"notebooks over {NOTEBOOK_CODE_LIMIT} code lines: {over}"


def test_notebooks_compute_no_metrics_themselves():
    """Chapter notebooks call experiments; metric functions are called in the package."""
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        if path.stem in ("metrics",):  # the page that defines the metrics shows them being called
            continue
        src = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
        for needle in ("M.auc(", "score_table(", "bootstrap_ci(", "bootstrap_mean_ci(", "run_methods("):
            assert needle not in src, f"{path.name} calls {needle}"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    pkg = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - node.level + 1]
                out.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_layers_run_one_way():
    """data -> features -> models -> experiments -> runner: nothing imports upwards."""
    below = ["datasets", "features", "models", "explain", "metrics", "results", "training", "audio", "sweep"]
    for path in (REPO / "asdstudy").rglob("*.py"):
        rel = path.relative_to(REPO / "asdstudy").parts[0].removesuffix(".py")
        imports = _imports(path)
        if rel in below:
            assert not any(i.startswith("asdstudy.experiments") for i in imports), f"{path} imports experiments"
        if rel == "experiments":
            assert not any(i.startswith("asdstudy.runner") or i.startswith("asdstudy.cli") for i in imports), \
                f"{path} imports the runner"


def test_timer_laps_name_where_the_time_went(monkeypatch):
    from asdstudy.experiments import protocol as P

    clock = iter([100.0, 103.0, 110.5, 111.0])
    monkeypatch.setattr(P.time, "time", lambda: next(clock))
    t = P.Timer()
    assert t.lap("data generation") == 3.0 and t.lap("twin check") == 7.5
    assert list(t.table()["phase"]) == ["data generation", "twin check"]
    assert P.phases_text(t.table()) == "data generation 3 s, twin check 8 s"
    assert t.seconds() == 11.0
    assert P.phases_text(None) == "(no phases recorded)"


def test_every_chapter_params_class_defaults_to_the_default_profile():
    """A chapter called from Python without a profile runs what the book runs."""
    import dataclasses

    from asdstudy.profiles import CHAPTER_ORDER, parameters, params_class

    for chapter in CHAPTER_ORDER:
        profile = parameters(chapter, "default")
        for f in dataclasses.fields(params_class(chapter)):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            if f.name in profile and f.name != "data_root":
                assert default == profile[f.name], f"{chapter}.{f.name}: class {default!r}, profile {profile[f.name]!r}"


def test_a_comparison_without_held_out_normals_says_how_many_training_clips_it_needs():
    from asdstudy.experiments.protocol import Comparison

    metrics = pd.DataFrame({"machine": ["slider", "slider"], "unit": ["00", "02"], "seed": [0, 0], "auc": [0.5, 0.6]})
    cmp = Comparison(metrics, pd.DataFrame({"seed": [0]}), pd.DataFrame(), {}, pd.DataFrame(), [0], 0.0)
    with pytest.raises(ASDStudyError, match=r"at least 4 training clips.*max_clips") as err:
        cmp.h0
    assert "slider 00, slider 02" in str(err.value)
    held = pd.DataFrame({"seed": [0, 1], "score": [1.0, 2.0]})
    assert Comparison(metrics, pd.DataFrame(), held, {}, pd.DataFrame(), [0, 1], 0.0).h0["score"].tolist() == [1.0]
