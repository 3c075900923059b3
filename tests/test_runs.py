"""Chapter runs that cannot lie: atomic publication, signals, the per-chapter lock, per-profile
results, and parameters refused before a kernel starts (faults injected as a user meets them)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from asdstudy import ASDStudyError, runner
from asdstudy.cli import main
from asdstudy.profiles import parameters

ROOT = Path(runner.__file__).resolve().parent.parent

# a chapter that writes its rows, then (for seed 2) says so in a flag file and keeps running
BODY = [
    "from pathlib import Path\nimport time\nfrom asdstudy.results import ResultWriter",
    "w = ResultWriter('metrics', profile, seed)\nw.add('x', 'method', 'auc', seed / 10)\nw.write()",
    "if seed == 2:\n    Path('../runs/flag').write_text('rows written')\n    time.sleep(300)",
    "print('done', seed)",
]


def _notebook(folder: Path) -> None:
    (folder / "notebooks").mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("profile = 'default'\nseed = 0\ndata_root = ''\njobs = 1\nn_boot = 10")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params] + [nbformat.v4.new_code_cell(c) for c in BODY]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "notebooks" / "metrics.ipynb")


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A copy of the package with a quick 'metrics' chapter; in-process and subprocess runs
    (PYTHONPATH) both see this copy as the repository."""
    shutil.copytree(ROOT / "asdstudy", tmp_path / "asdstudy", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "_toc.yml", tmp_path / "_toc.yml")
    _notebook(tmp_path)
    monkeypatch.setattr(runner, "repo_root", lambda: tmp_path)
    monkeypatch.setenv("ASDSTUDY_RESULTS", str(tmp_path / "book" / "_results"))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    return tmp_path


def _published(repo: Path, profile: str = "default") -> dict:
    res = repo / "book" / "_results" / ("" if profile == "default" else profile)
    nb = (repo / "book" / "chapters" if profile == "default" else repo / "book" / "_profiles" / profile) / "metrics.ipynb"
    files = {"notebook": nb, "csv": res / "metrics.csv", "record": res / ".runs" / "metrics.json"}
    return {k: p.read_bytes() if p.exists() else None for k, p in files.items()}


def _cli(repo: Path, *args) -> subprocess.Popen:
    code = "from asdstudy.cli import main; main()"
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=repo, env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 120) -> None:
    t0 = time.time()
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"run ended early: {proc.communicate()}")
        if time.time() - t0 > seconds:
            proc.kill()
            raise AssertionError("the run never reached its slow cell")
        time.sleep(0.2)


def _alive_with(text: str) -> list[int]:
    """Processes whose command line mentions ``text`` (Linux /proc)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if text in (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


def test_a_finished_run_publishes_notebook_rows_and_a_record_naming_both(repo):
    out = runner.run_chapter("metrics", "default", {"seed": 1}, progress=False)
    pub = _published(repo)
    assert out == repo / "book/chapters/metrics.ipynb" and all(pub.values())
    record = json.loads(pub["record"])
    assert record["outputs"]["csv"] == runner._sha(pub["csv"])
    assert record["outputs"]["notebook"] == runner._sha(pub["notebook"])
    assert b",0.1," in pub["csv"]
    assert runner.is_unchanged("metrics", parameters("metrics", "default", {"seed": 1}))
    assert not list((repo / "runs").glob("metrics.work-*"))


def test_a_torn_or_foreign_csv_makes_the_chapter_run_again(repo):
    runner.run_chapter("metrics", "default", {"seed": 1}, progress=False)
    params = parameters("metrics", "default", {"seed": 1})
    csv = repo / "book/_results/metrics.csv"
    csv.write_text(csv.read_text().replace(",0.1,", ",0.9,"))  # a half-published or hand-edited CSV
    assert not runner.is_unchanged("metrics", params)
    runner.run_chapter("metrics", "default", {"seed": 1}, progress=False)
    assert runner.is_unchanged("metrics", params) and ",0.1," in csv.read_text()
    csv.unlink()  # rows gone, notebook and record still there
    assert not runner.is_unchanged("metrics", params)


def test_sigkill_after_the_rows_were_written_publishes_nothing(repo):
    runner.run_chapter("metrics", "default", {"seed": 1}, progress=False)
    before = _published(repo)
    proc = _cli(repo, "run", "metrics", "-p", "seed", "2")
    _wait_for(repo / "runs/flag", proc)
    work = list((repo / "runs").glob("metrics.work-*"))
    assert work and (work[0] / "results/metrics.csv").exists()  # the new rows exist, privately
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert _published(repo) == before  # notebook, CSV and record exactly as they were
    assert runner.is_unchanged("metrics", parameters("metrics", "default", {"seed": 1}))
    assert not runner.is_unchanged("metrics", parameters("metrics", "default", {"seed": 2}))
    for _ in range(50):  # the papermill child dies with the runner, the kernel with papermill
        if not _alive_with(str(work[0])):
            break
        time.sleep(0.2)
    assert not _alive_with(str(work[0]))
    # the next run clears the dead run's work folder and publishes its own
    (repo / "runs/flag").unlink()
    runner.run_chapter("metrics", "default", {"seed": 3}, progress=False)
    assert not work[0].exists() and b",0.3," in _published(repo)["csv"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_kernel_and_publishes_nothing(repo, sig):
    runner.run_chapter("metrics", "default", {"seed": 1}, progress=False)
    before = _published(repo)
    proc = _cli(repo, "run", "metrics", "-p", "seed", "2")
    _wait_for(repo / "runs/flag", proc)
    work = list((repo / "runs").glob("metrics.work-*"))[0]
    t0 = time.time()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert time.time() - t0 < 30, "the run went on after the signal"
    assert proc.returncode == 130, (out, err)
    assert "nothing was published" in err and "interrupted.ipynb" in err
    assert _published(repo) == before
    assert (repo / "runs/metrics.interrupted.ipynb").exists() and not work.exists()
    time.sleep(2)
    assert not _alive_with(str(work))


def test_a_second_concurrent_run_of_a_chapter_is_refused(repo):
    proc = _cli(repo, "run", "metrics", "-p", "seed", "2")
    try:
        _wait_for(repo / "runs/flag", proc)
        with pytest.raises(runner.ChapterBusy, match=r"(?i)'metrics' is already running \(pid \d+, started .*wait"):
            runner.run_chapter("metrics", "default", {"seed": 1}, progress=False)
        r = CliRunner().invoke(main, ["run", "metrics", "-p", "seed", "1"])
        assert r.exit_code == 2 and "already running" in r.output
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert not (repo / "book/chapters/metrics.ipynb").exists()


def test_each_profile_publishes_in_its_own_place(repo):
    runner.run_chapter("metrics", "default", {"seed": 1}, progress=False)
    default = _published(repo)
    out = runner.run_chapter("metrics", "smoke", {"seed": 3}, progress=False)
    assert out == repo / "book/_profiles/smoke/metrics.ipynb"
    assert _published(repo) == default  # the book's default results are untouched
    smoke = _published(repo, "smoke")
    assert all(smoke.values()) and b",0.3," in smoke["csv"] and b",smoke," in smoke["csv"]
    assert runner.is_unchanged("metrics", parameters("metrics", "smoke", {"seed": 3}))
    assert runner.is_unchanged("metrics", parameters("metrics", "default", {"seed": 1}))


@pytest.mark.parametrize("chapter, args, message", [
    ("metrics", ["-p", "seed", "abc"], r"parameter 'seed' is 'abc' \(str\); it must be int"),
    ("autoencoders", ["-p", "epochs", "-1"], r"parameter 'epochs' is -1; it must be at least 1"),
    ("gans", ["-p", "jobs", "0"], r"parameter 'jobs' is 0; it must be a positive number"),
    ("ensemble", ["-p", "embeddings", "maybe"], r"parameter 'embeddings' is 'maybe'; use auto or off"),
    ("metrics", ["-p", "sed", "1"], r"has no parameter 'sed'"),
])
def test_an_invalid_parameter_is_refused_before_any_kernel_starts(repo, monkeypatch, chapter, args, message):
    import re

    started = []
    monkeypatch.setattr(runner, "_execute", lambda *a, **k: started.append(a) or 0)
    (repo / "notebooks" / f"{chapter}.ipynb").write_bytes((repo / "notebooks" / "metrics.ipynb").read_bytes())
    r = CliRunner().invoke(main, ["run", chapter, *args])
    assert r.exit_code == 2, r.output
    assert re.search(message, " ".join(r.output.split())), r.output
    assert not started and not list((repo / "runs").glob("*.work-*"))


def test_reproduce_validates_every_chapter_before_running_any(repo, monkeypatch):
    ran = []
    monkeypatch.setattr(runner, "run_chapter", lambda *a, **k: ran.append(a))
    with pytest.raises(ASDStudyError, match="parameter 'jobs' is -2"):
        runner.reproduce("smoke", {"jobs": -2}, echo=lambda *_: None)
    assert not ran


def test_every_profile_parameter_has_a_declared_type():
    from asdstudy.profiles import CHAPTER_ORDER, PROFILES

    for chapter in CHAPTER_ORDER:
        for profile in PROFILES:
            parameters(chapter, profile, validate=True)  # raises on an undeclared or invalid value
