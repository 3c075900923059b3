"""The runner and the book, end to end on the smoke profile (papermill + jupyter-book)."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import nbformat
import papermill
import pytest
from click.testing import CliRunner

from asdstudy import ASDStudyError
from asdstudy import runner
from asdstudy.cli import main
from asdstudy.profiles import CHAPTER_ORDER, parameters

ROOT = Path(runner.__file__).resolve().parent.parent


def test_parameters_profile_and_overrides():
    p = parameters("data", "smoke", {"seed": 7})
    assert p["seed"] == 7 and p["profile"] == "smoke" and p["n_boot"] == 200
    assert parameters("data", "default")["n_boot"] == 1000
    with pytest.raises(ASDStudyError, match="has no parameter 'sed'.*seed"):
        parameters("data", "smoke", {"sed": 7})
    with pytest.raises(ASDStudyError, match="unknown profile 'huge'"):
        parameters("data", "huge")
    with pytest.raises(ASDStudyError, match="unknown chapter 'nope'"):
        parameters("nope")


def test_notebooks_are_clean_and_parameterised():
    for chapter in CHAPTER_ORDER:
        nb = nbformat.read(ROOT / "notebooks" / f"{chapter}.ipynb", as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert not any(c.get("outputs") for c in code), f"{chapter}: stored with outputs"
        tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{chapter}: needs exactly one cell tagged parameters"
        names = set(re.findall(r"^(\w+) =", tagged[0].source, flags=re.M))
        assert names == set(parameters(chapter, "smoke")), f"{chapter}: parameters cell and profiles differ"
        # papermill itself must read every parameter (it skips a line with a second "=", in a
        # comment too, and then warns "Passed unknown parameter" on every run)
        found = set(papermill.inspect_notebook(str(ROOT / "notebooks" / f"{chapter}.ipynb")))
        assert found == names, f"{chapter}: papermill does not see {sorted(names - found)}"


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    """Execute every chapter on the smoke profile into a copy of the repository, build strictly."""
    work = tmp_path_factory.mktemp("repo")
    for name in ("asdstudy", "notebooks", "book", "_config.yml", "_toc.yml"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, work / name, ignore=shutil.ignore_patterns(
                "chapters", "_results", "__pycache__", "*.egg-info"))
        else:
            shutil.copy(src, work / name)
    mp = pytest.MonkeyPatch()
    mp.setattr(runner, "repo_root", lambda: work)
    mp.setenv("ASDSTUDY_RESULTS", str(work / "book" / "_results"))
    mp.setenv("ASDSTUDY_DATA", str(work / "data"))
    mp.setenv("PYTHONPATH", str(work))  # the kernel imports the copied package
    index = runner.reproduce("smoke", progress=False, echo=lambda *_: None)
    # build strictly (warnings are errors) from a clean output folder
    shutil.rmtree(work / "_build")
    index = runner.build_book(strict=True, quiet=True, profile="smoke")
    yield work, index
    mp.undo()


def test_reproduce_builds_book_with_scoreboard(built_book):
    work, index = built_book
    assert index.exists()
    html_root = index.parent
    assert html_root == work / "_build/smoke/source/_build/html"  # a smoke book, beside the default one
    html = (html_root / "book/chapters/scoreboard.html").read_text()
    assert "Scoreboard: claimed versus reproduced" in html
    assert "0.9965" in html and "<details" in html  # a claim row, in its verdict group
    assert "The papers against themselves" in html and "impossible" in html  # the consistency audit
    assert "Directional findings" in html and 'href="ensemble.html"' in html  # answered-in links
    assert re.search(r"holds the synthetic|on the synthetic factory", html)
    m = re.search(r"The claims file holds\s*(?:<[^>]+>\s*)*(\d+)", html)
    assert m and int(m.group(1)) > 150  # the glued count, not a blank
    data = (html_root / "book/chapters/data.html").read_text()
    assert "<audio" in data and "reference detector" in data.lower()
    assert re.search(r"ranges from\s*(?:<[^>]+>\s*)*0\.\d{3}", data)  # glued AUC, formatted
    assert (work / "book/_results/smoke/data.csv").exists() and not (work / "book/_results/data.csv").exists()
    assert (work / "book/_profiles/smoke/data.ipynb").exists() and not (work / "book/chapters/data.ipynb").exists()


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.images = [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "img" and a.get("src"):
            self.images.append(a["src"])


def test_no_broken_internal_links_or_missing_images(built_book):
    work, index = built_book
    html_root = index.parent
    problems = []
    for page in html_root.rglob("*.html"):
        p = _Links()
        p.feed(page.read_text(errors="replace"))
        for ref in p.links + p.images:
            u = urlparse(ref)
            if u.scheme or ref.startswith(("#", "mailto:", "data:")) or not u.path:
                continue
            target = (page.parent / unquote(u.path)).resolve()
            if not target.exists():
                problems.append(f"{page.relative_to(html_root)} -> {ref}")
    assert not problems, problems[:10]


def test_second_reproduce_skips_unchanged(built_book, monkeypatch):
    work, _ = built_book
    monkeypatch.setattr(runner, "repo_root", lambda: work)
    monkeypatch.setattr(runner, "build_book", lambda **k: work / "_build/smoke/source/_build/html/index.html")
    said = []
    runner.reproduce("smoke", progress=False, echo=said.append)
    assert all("unchanged" in s for s in said if s.startswith("[") and not s.startswith("[book]")), said
    # a parameter change re-runs that chapter
    assert not runner.is_unchanged("metrics", parameters("metrics", "smoke", {"seed": 3}))
    # new results from another chapter make the scoreboard stale, not the others
    extra = work / "book" / "_results" / "smoke" / "autoencoders.csv"
    extra.write_text("chapter,paper,method,metric,value\nautoencoders,002,VAE,auc,0.9\n")
    try:
        assert not runner.is_unchanged("scoreboard", parameters("scoreboard", "smoke"))
        assert runner.is_unchanged("data", parameters("data", "smoke"))
    finally:
        extra.unlink()


def test_failing_cell_is_named_and_notebook_kept(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("profile = 'smoke'\nseed = 0\ndata_root = ''\njobs = 1\nn_boot = 10")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("raise ValueError('boom ' + str(seed))")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "notebooks" / "metrics.ipynb")
    monkeypatch.setattr(runner, "repo_root", lambda: tmp_path)
    monkeypatch.setenv("ASDSTUDY_RESULTS", str(tmp_path / "results"))
    with pytest.raises(runner.ChapterFailed, match=r"(?s)failed in cell \d+ of the executed notebook .*ValueError: boom 7.*kept at"):
        runner.run_chapter("metrics", "smoke", {"seed": 7}, progress=False)
    kept = tmp_path / "runs" / "metrics.failed.ipynb"
    assert kept.exists() and "boom 7" in kept.read_text()
    assert not (tmp_path / "book/chapters/metrics.ipynb").exists()
    assert not (tmp_path / "book/_profiles/smoke/metrics.ipynb").exists()
    assert not list((tmp_path / "runs").glob("metrics.work-*"))  # the work folder is gone


def test_cli_run_injects_parameter(tmp_path, monkeypatch):
    """`asdstudy run metrics --profile smoke -p seed 7` executes with the injected value."""
    work = tmp_path
    shutil.copytree(ROOT / "notebooks", work / "notebooks")
    monkeypatch.setattr(runner, "repo_root", lambda: work)
    monkeypatch.setenv("ASDSTUDY_RESULTS", str(work / "results"))
    r = CliRunner().invoke(main, ["run", "metrics", "--profile", "smoke", "-p", "seed", "7"])
    assert r.exit_code == 0, r.output
    nb = nbformat.read(work / "book/_profiles/smoke/metrics.ipynb", as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "seed = 7" in injected[0].source
    state = json.loads((work / "results/smoke/.runs/metrics.json").read_text())
    assert state["fingerprint"]["parameters"]["seed"] == 7
    r = CliRunner().invoke(main, ["run", "metrics", "-p", "sed", "7"])
    assert r.exit_code == 2 and "has no parameter 'sed'" in r.output


def test_peak_memory_sums_a_process_and_its_children():
    import subprocess
    import sys
    import time

    from asdstudy.runner import PeakMemory

    code = ("import subprocess, sys, time; b = bytearray(60_000_000); "
            "c = subprocess.Popen([sys.executable, '-c', 'b = bytearray(60_000_000); import time; time.sleep(3)']); "
            "time.sleep(3); c.wait()")
    proc = subprocess.Popen([sys.executable, "-c", code])
    with PeakMemory(proc.pid, interval=0.1) as watch:
        proc.wait()
    assert watch.peak > 120_000_000  # both processes' 60 MB counted together
    time.sleep(0.2)
    assert PeakMemory(proc.pid).tree_memory() == 0  # a finished process holds nothing


def test_the_watch_adds_up_the_cpu_time_of_a_process_and_its_children():
    import subprocess
    import sys

    from asdstudy.runner import PeakMemory, usage_text

    # the parent and its child each burn 1.5 s of CPU (process time, whatever else the machine
    # runs), then idle long enough for the watch to see their totals
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.5: pass\ntime.sleep(1)"
    code = (f"import subprocess, sys; c = subprocess.Popen([sys.executable, '-c', {burn!r}]); exec({burn!r}); c.wait()")
    proc = subprocess.Popen([sys.executable, "-c", code])
    with PeakMemory(proc.pid, interval=0.1) as watch:
        proc.wait()
    assert 3.0 <= watch.cpu_seconds() < 6.0
    assert usage_text({"seconds": 100.0, "cpu_seconds": 180.0, "peak_memory_gb": 2.4}) == \
        ", 180 CPU-s (1.8 cores busy on average), peak memory 2.40 GB (kernel and workers together)"
    assert usage_text({"seconds": 100.0}) == "" and usage_text({}) == ""


def test_a_chapter_runs_in_the_numerics_asked_for_and_its_record_says_so(tmp_path, monkeypatch):
    from asdstudy import numerics

    (tmp_path / "notebooks").mkdir()
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("profile = 'smoke'\nseed = 0\ndata_root = ''\njobs = 1\nn_boot = 10")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "import asdstudy, os, torch\nfrom asdstudy.results import device_name\n"
        "print('MKL_CBWR', os.environ.get('MKL_CBWR'), 'device', device_name(), 'threads', torch.get_num_threads())")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "notebooks" / "metrics.ipynb")
    monkeypatch.setattr(runner, "repo_root", lambda: tmp_path)
    monkeypatch.setenv("ASDSTUDY_RESULTS", str(tmp_path / "results"))
    for k in numerics.PORTABLE_ENV:  # restored (removed) after the test: the run sets them for its kernel
        monkeypatch.setenv(k, "")
    monkeypatch.setenv(numerics.VARIABLE, "portable")
    out = runner.run_chapter("metrics", "smoke", {"jobs": 1}, progress=False)
    text = out.read_text()
    assert "MKL_CBWR AVX2 device cpu:" in text and " portable" in text and "AVX512" not in text
    assert "threads 1" in text  # the chapter's jobs, whatever this machine's core count
    record = json.loads((tmp_path / "results/smoke/.runs/metrics.json").read_text())
    assert record["numerics"] == "portable" and record["fingerprint"]["numerics"] == "portable"
    # a native record keeps its old form, so switching modes re-runs the chapter
    monkeypatch.setenv(numerics.VARIABLE, "native")
    assert "numerics" not in runner.fingerprint("metrics", parameters("metrics", "smoke"))
    monkeypatch.setenv(numerics.VARIABLE, "turbo")
    with pytest.raises(ASDStudyError, match="ASDSTUDY_NUMERICS='turbo' is not a numerics mode"):
        runner.run_chapter("metrics", "smoke", progress=False)
