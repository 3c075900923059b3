"""The reproduction runner: papermill chapters, skip-if-unchanged, and the book build.

* :func:`run_chapter` executes ``notebooks/<chapter>.ipynb`` with papermill, with the chapter's
  profile parameters and the user's overrides, into ``book/chapters/<chapter>.ipynb``. A failure
  names the failing cell and keeps the executed notebook in ``runs/<chapter>.failed.ipynb``.
* :func:`reproduce` runs every chapter in order, skipping a chapter whose notebook, parameters,
  package (version and source) and data are unchanged since its last successful run, then
  builds the book.
* :func:`build_book` renders the book with Jupyter Book 1.x from what has been executed; a
  chapter not run yet appears as a page saying so.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from . import ASDStudyError, __version__
from .profiles import CHAPTER_ORDER, CONSUMES_RESULTS, parameters
from .results import data_root, repo_root, results_dir

TITLES = {
    "data": "The data",
    "metrics": "The metrics",
    "scoreboard": "Scoreboard: claimed versus reproduced",
    "autoencoders": "Autoencoders versus VAEs (paper 002)",
    "sequence": "LSTM prediction and GRU autoencoders (paper 001)",
    "gans": "GAN detectors (paper 003)",
    "ensemble": "The supervised ensemble (paper 000)",
    "explain": "Explaining detector decisions (paper 004)",
    "scale": "Running at scale",
}


class ChapterFailed(ASDStudyError):
    pass


def executed_dir() -> Path:
    return repo_root() / "book" / "chapters"


def runs_dir() -> Path:
    return repo_root() / "runs"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def package_fingerprint() -> str:
    """Hash of the package's source files (so a code change re-runs the chapters)."""
    h = hashlib.sha256()
    pkg = Path(__file__).resolve().parent
    for p in sorted(pkg.rglob("*")):
        if p.suffix in (".py", ".csv", ".yml") and "__pycache__" not in p.parts:
            h.update(p.relative_to(pkg).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def data_fingerprint(root: Path) -> str:
    """Hash of the dataset manifests under the data root (generator and download markers)."""
    h = hashlib.sha256()
    if root.exists():
        for p in sorted(root.rglob(".asdstudy/*.json")):
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def results_fingerprint(exclude: str) -> str:
    """Hash of the other chapters' result files and of which chapters are executed."""
    h = hashlib.sha256()
    for p in sorted(results_dir().glob("*.csv")):
        if p.stem != exclude:
            h.update(p.name.encode())
            h.update(p.read_bytes())
    for p in sorted(executed_dir().glob("*.ipynb")):
        h.update(p.name.encode())
    return h.hexdigest()[:16]


def fingerprint(chapter: str, params: dict) -> dict:
    nb = repo_root() / "notebooks" / f"{chapter}.ipynb"
    fp = {"notebook": _sha(nb.read_bytes()), "parameters": params, "version": __version__,
          "package": package_fingerprint(), "data": data_fingerprint(data_root(params.get("data_root")))}
    if chapter in CONSUMES_RESULTS:  # the scoreboard reads every other chapter's results
        fp["results"] = results_fingerprint(exclude=chapter)
    return fp


def _state_path(chapter: str) -> Path:
    return results_dir() / ".runs" / f"{chapter}.json"


def is_unchanged(chapter: str, params: dict) -> bool:
    state = _state_path(chapter)
    if not state.exists() or not (executed_dir() / f"{chapter}.ipynb").exists():
        return False
    try:
        old = json.loads(state.read_text())["fingerprint"]
    except Exception:
        return False
    return old == json.loads(json.dumps(fingerprint(chapter, params), default=str))


def run_chapter(chapter: str, profile: str = "default", overrides: dict | None = None,
                progress: bool = True) -> Path:
    """Execute one chapter notebook with papermill.

    Args:
        chapter: the notebook's name in ``notebooks/`` (e.g. "data").
        profile: smoke, default or paper.
        overrides: parameter values replacing the profile's.
        progress: show papermill's cell progress bar.

    Returns:
        The executed notebook, ``book/chapters/<chapter>.ipynb``.

    Raises:
        ChapterFailed: naming the failing cell and where the executed notebook was kept.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    src = repo_root() / "notebooks" / f"{chapter}.ipynb"
    if not src.exists():
        raise ASDStudyError(f"no notebook {src}; chapters: {', '.join(CHAPTER_ORDER)}.")
    params = parameters(chapter, profile, overrides)
    runs_dir().mkdir(parents=True, exist_ok=True)
    executed_dir().mkdir(parents=True, exist_ok=True)
    work = runs_dir() / f"{chapter}.running.ipynb"
    os.environ.setdefault("ASDSTUDY_RESULTS", str(results_dir()))
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    os.environ.setdefault("TQDM_MININTERVAL", "5")
    t0 = time.time()
    try:
        pm.execute_notebook(str(src), str(work), parameters=params, kernel_name="python3",
                            progress_bar=progress, cwd=str(repo_root() / "notebooks"),
                            request_save_on_cell_execute=True, log_output=False)
    except PapermillExecutionError as exc:
        failed = runs_dir() / f"{chapter}.failed.ipynb"
        if work.exists():
            os.replace(work, failed)
        raise ChapterFailed(
            f"chapter {chapter!r} ({profile}) failed in cell {exc.cell_index} of the executed notebook (execution count "
            f"{exc.exec_count}): {exc.ename}: {exc.evalue}\nThe executed notebook is kept at {failed}; "
            "open it to see the full traceback.") from None
    except BaseException:
        if work.exists():  # interrupted: keep what ran for inspection, publish nothing
            os.replace(work, runs_dir() / f"{chapter}.interrupted.ipynb")
        raise
    _hide_injected_parameters(work)
    out = executed_dir() / f"{chapter}.ipynb"
    os.replace(work, out)
    (executed_dir() / f"{chapter}.md").unlink(missing_ok=True)
    state = _state_path(chapter)
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"fingerprint": fingerprint(chapter, params), "profile": profile,
                                 "seconds": round(time.time() - t0, 1)}, default=str, indent=1))
    return out


def _hide_injected_parameters(path: Path) -> None:
    """Keep papermill's injected parameters cell out of the rendered book: each chapter shows
    its effective parameters once, in a line of its own (``asdstudy.report.params_line``)."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = tags + ["remove-cell"]
    nbformat.write(nb, str(path))


def write_placeholders() -> list[str]:
    """A page for every chapter of the table of contents that has not been executed yet."""
    missing = []
    executed_dir().mkdir(parents=True, exist_ok=True)
    for chapter in toc_chapters():
        if not (executed_dir() / f"{chapter}.ipynb").exists():
            missing.append(chapter)
            (executed_dir() / f"{chapter}.md").write_text(
                f"# {TITLES.get(chapter, chapter)}\n\n"
                f"This chapter has not been run yet. Run it with `asdstudy run {chapter}` "
                "(or `asdstudy reproduce` for the whole book), then rebuild with `asdstudy book`.\n")
    return missing


def toc_chapters() -> list[str]:
    import yaml

    toc = yaml.safe_load((repo_root() / "_toc.yml").read_text())
    files = []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(toc)
    return [f.split("/")[-1] for f in files if f.startswith("book/chapters/")]


def build_book(strict: bool = False, quiet: bool = False) -> Path:
    """Build the HTML book into ``_build/html`` and return the path of its ``index.html``.

    Args:
        strict: treat Sphinx warnings as errors (``-W -n --keep-going``); the tests use it.
        quiet: capture the builder's output (shown on failure).
    """
    write_placeholders()
    # Sphinx does not overwrite a static file it copied before: drop the book's own ones so
    # that an edited stylesheet always reaches the built pages
    for css in (repo_root() / "book" / "_static").glob("*"):
        (repo_root() / "_build" / "html" / "_static" / css.name).unlink(missing_ok=True)
    exe = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(exe) if exe.exists() else "jupyter-book", "build", str(repo_root()), "--builder", "html"]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    proc = subprocess.run(cmd, cwd=repo_root(), capture_output=quiet, text=True)
    if proc.returncode != 0:
        log = (proc.stdout or "")[-4000:] + (proc.stderr or "")[-4000:] if quiet else ""
        raise ASDStudyError(f"the book build failed (exit {proc.returncode}).\n{log}")
    index = repo_root() / "_build" / "html" / "index.html"
    return index


def reproduce(profile: str = "default", overrides: dict | None = None, progress: bool = True,
              echo=print) -> Path:
    """Run every chapter in order (skipping unchanged ones), then build the book."""
    for chapter in CHAPTER_ORDER:
        params = parameters(chapter, profile, overrides)
        if is_unchanged(chapter, params):
            echo(f"[{chapter}] unchanged since its last successful run (notebook, parameters, "
                 "package and data): skipped")
            continue
        echo(f"[{chapter}] running ({profile})")
        t0 = time.time()
        run_chapter(chapter, profile, overrides, progress=progress)
        echo(f"[{chapter}] done in {time.time() - t0:.0f} s")
    echo("[book] building")
    return build_book()


def _parse_value(text: str):
    import yaml

    try:
        return yaml.safe_load(text)
    except Exception:
        return text


def register(main):
    """Add the runner's commands (run, reproduce, book) to the CLI group."""
    import click

    @main.command()
    @click.argument("chapter")
    @click.option("--profile", type=click.Choice(["smoke", "default", "paper"]), default="default",
                  show_default=True)
    @click.option("-p", "--param", "params", type=(str, str), multiple=True, metavar="KEY VALUE",
                  help="Override a parameter (repeat); values are read as YAML (7, 0.5, true, [a, b]).")
    def run(chapter, profile, params):
        """Execute one chapter notebook into the book (papermill)."""
        overrides = {k: _parse_value(v) for k, v in params}
        out = run_chapter(chapter, profile, overrides)
        click.echo(f"executed {out}; rebuild the book with `asdstudy book`")

    @main.command("reproduce")
    @click.option("--profile", type=click.Choice(["smoke", "default", "paper"]), default="default",
                  show_default=True)
    @click.option("--jobs", "-j", type=int, default=None, help="Worker processes for every chapter.")
    def reproduce_cmd(profile, jobs):
        """Run every chapter in order (skipping unchanged ones), then build the book."""
        index = reproduce(profile, {"jobs": jobs} if jobs else None, echo=click.echo)
        click.echo(f"book: {index}")

    @main.command()
    @click.option("--strict", is_flag=True, help="Warnings are errors.")
    def book(strict):
        """Build the book from the executed chapters."""
        click.echo(f"book: {build_book(strict=strict)}")
