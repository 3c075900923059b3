"""Numerics modes: the pins of the portable mode make a run's numbers independent of the CPU's
vector unit; the mode is checked, recorded and refused when it could not take effect."""

import os
import subprocess
import sys

import pytest

from asdstudy import ASDStudyError, numerics

# A few steps of each kind of numeric work the chapters do: an LSTM (oneDNN), a dense network
# trained with Adam (MKL and torch's own loops) and the log-mel features (OpenBLAS and NumPy).
# It prints one hash of everything it computed.
WORK = r"""
import asdstudy  # first, as a chapter does: in portable mode it sets the pins before the libraries load
import hashlib, numpy as np, torch
from asdstudy.features.logmel import logmel
from asdstudy.models.sequence import LSTMPredictor
torch.manual_seed(0); torch.set_num_threads(1)
h = hashlib.sha256()
lstm = LSTMPredictor(16, 16, 2); opt = torch.optim.Adam(lstm.parameters(), 1e-3); x = torch.rand(32, 11, 16)
dense = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.BatchNorm1d(32), torch.nn.ReLU(), torch.nn.Linear(32, 64))
opt2 = torch.optim.Adam(dense.parameters(), 1e-3); z = torch.rand(256, 64)
for _ in range(10):
    opt.zero_grad(); ((lstm(x[:, :-1]) - x[:, -1]) ** 2).mean().backward(); opt.step()
    opt2.zero_grad(); ((dense(z) - z) ** 2).mean().backward(); opt2.step()
with torch.no_grad():
    h.update(lstm(x[:, :-1]).numpy().tobytes()); h.update(dense.eval()(z).numpy().tobytes())
rng = np.random.default_rng(0)
y = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000) + 0.1 * rng.standard_normal(16000)).astype(np.float32)
h.update(logmel(y).astype(np.float32).tobytes())
print(h.hexdigest()[:16])
"""

# An AVX2 machine, imitated on this one by capping each library at AVX2 by its own switch. Written
# out here rather than taken from numerics.PORTABLE_ENV, so that a library the portable mode
# forgets to pin makes the two runs differ.
AVX2_MACHINE = {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2",
                "OPENBLAS_CORETYPE": "Haswell", "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR AVX512_SKX"}


def _run(extra: dict) -> str:
    env = {k: v for k, v in os.environ.items()
           if k not in numerics.PORTABLE_ENV and k not in AVX2_MACHINE and k != numerics.VARIABLE}
    env.update(extra)
    out = subprocess.run([sys.executable, "-c", WORK], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


def test_portable_numerics_give_an_avx2_machines_numbers_on_this_one():
    native, avx2_machine = _run({}), _run(AVX2_MACHINE)
    if native == avx2_machine:
        pytest.skip("this CPU runs the same code paths as an AVX2 machine: nothing to tell apart here")
    # native numbers depend on the CPU; portable ones are an AVX2 machine's, native or portable
    assert _run({numerics.VARIABLE: "portable"}) == avx2_machine
    assert _run({**AVX2_MACHINE, numerics.VARIABLE: "portable"}) == avx2_machine


def test_the_mode_is_read_checked_and_applied():
    assert numerics.mode({}) == "native" and numerics.mode({numerics.VARIABLE: " Portable "}) == "portable"
    with pytest.raises(ASDStudyError, match=r"ASDSTUDY_NUMERICS='fast' is not a numerics mode: use 'native'"):
        numerics.mode({numerics.VARIABLE: "fast"})
    env = {numerics.VARIABLE: "portable"}
    assert numerics.apply(env) == "portable" and env["MKL_CBWR"] == "AVX2" and env["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    env = {}
    assert numerics.apply(env) == "native" and env == {}


def test_portable_is_refused_where_the_libraries_loaded_before_the_pins(monkeypatch):
    import torch  # noqa: F401  (loaded by this test process without pins)

    monkeypatch.setenv(numerics.VARIABLE, "portable")
    for k in numerics.PORTABLE_ENV:
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(ASDStudyError, match="loaded before the pins were set .* export MKL_CBWR='AVX2'"):
        numerics.describe()
    monkeypatch.delenv(numerics.VARIABLE)
    info = numerics.describe()
    assert info["mode"] == "native" and not info["pinned"]
    assert "native numerics" in numerics.reproducibility_text(info)
    assert "any Intel CPU with AVX2" in numerics.reproducibility_text({**info, "mode": "portable"})


def test_every_result_row_names_the_numerics_it_was_computed_in(monkeypatch):
    from asdstudy.results import provenance

    monkeypatch.delenv(numerics.VARIABLE, raising=False)
    device = provenance()["device"]
    assert device.endswith(" native") and device.startswith(("cpu:", "cuda:"))


def test_a_sweep_worker_in_other_numerics_than_its_client_is_refused(tmp_path, monkeypatch):
    import json

    from asdstudy import sweep

    sys.path.insert(0, os.path.dirname(__file__))
    import sweep_points as SP

    monkeypatch.delenv(numerics.VARIABLE, raising=False)
    point = {"seed": 0, "lr": 0.1}
    with pytest.raises(ASDStudyError, match=r"runs native numerics, but the sweep's client runs portable: "
                                            r"start every worker with ASDSTUDY_NUMERICS=portable"):
        sweep._run_one(SP.train_tiny, point, tmp_path, 1, "portable")
    assert not list(tmp_path.glob("*.json"))  # nothing stored
    rows = sweep.Sweep(tmp_path, SP.train_tiny).run([point], n_jobs=1, progress=False)
    assert len(rows) == 1
    stored = json.loads((tmp_path / f"{sweep.point_id(point)}.json").read_text())
    assert stored["numerics"].endswith(" native")
