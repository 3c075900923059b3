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

from . import ASDStudyError, __version__, numerics
from .profiles import CHAPTER_ORDER, CONSUMES_RESULTS, parameters
from .results import data_root, profile_results_dir, repo_root

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


class ChapterInterrupted(ASDStudyError):
    """A run stopped by SIGINT or SIGTERM: nothing was published."""


class ChapterBusy(ASDStudyError):
    """Another run of the same chapter holds its lock."""


#: The profile the committed book shows; runs of the other profiles publish beside it.
BOOK_PROFILE = "default"


def executed_dir(profile: str | None = None) -> Path:
    """Where the executed notebooks of ``profile`` are published.

    The default profile's are the book's own pages (``book/chapters``); another profile's go to
    ``book/_profiles/<profile>`` so that a smoke run never replaces what the book shows. Inside
    a chapter's kernel (no argument) it is the folder the runner names in
    ``$ASDSTUDY_CHAPTERS``.
    """
    env = os.environ.get("ASDSTUDY_CHAPTERS")
    if profile is None and env:
        return Path(env)
    if profile in (None, BOOK_PROFILE):
        return repo_root() / "book" / "chapters"
    return repo_root() / "book" / "_profiles" / profile


def published_results(profile: str) -> Path:
    """Where the result rows of ``profile`` are published: the results folder for the default
    profile (``$ASDSTUDY_RESULTS`` or ``book/_results``), ``<that>/<profile>`` for the others."""
    return profile_results_dir(profile)


def runs_dir() -> Path:
    return repo_root() / "runs"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _file_sha(path: Path) -> str | None:
    return _sha(path.read_bytes()) if path.exists() else None


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


def results_fingerprint(exclude: str, profile: str = BOOK_PROFILE) -> str:
    """Hash of the other chapters' result files and of which chapters are executed."""
    h = hashlib.sha256()
    folder = published_results(profile)
    for p in sorted(folder.glob("*.csv")) if folder.exists() else []:
        if p.stem != exclude:
            h.update(p.name.encode())
            h.update(p.read_bytes())
    for p in sorted(executed_dir(profile).glob("*.ipynb")):
        h.update(p.name.encode())
    return h.hexdigest()[:16]


def fingerprint(chapter: str, params: dict) -> dict:
    nb = repo_root() / "notebooks" / f"{chapter}.ipynb"
    profile = params.get("profile", BOOK_PROFILE)
    fp = {"notebook": _sha(nb.read_bytes()), "parameters": params, "version": __version__,
          "package": package_fingerprint(), "data": data_fingerprint(data_root(params.get("data_root")))}
    if numerics.mode() != "native":  # other numerics, other numbers (native records keep their form)
        fp["numerics"] = numerics.mode()
    if chapter in CONSUMES_RESULTS:  # the scoreboard reads every other chapter's results
        fp["results"] = results_fingerprint(exclude=chapter, profile=profile)
    return fp


def _state_path(chapter: str, profile: str = BOOK_PROFILE) -> Path:
    return published_results(profile) / ".runs" / f"{chapter}.json"


def last_record(chapter: str, profile: str = BOOK_PROFILE) -> dict | None:
    """The record of the chapter's last published run (seconds, peak memory, fingerprint), if any."""
    try:
        return json.loads(_state_path(chapter, profile).read_text())
    except (OSError, ValueError):
        return None


def is_unchanged(chapter: str, params: dict) -> bool:
    """True when the published run of ``chapter`` is complete and was made with these
    parameters, this notebook, package and data: its record exists, and the published notebook
    and result CSV are byte for byte the ones the record names (a torn or foreign write of
    either makes the chapter run again)."""
    profile = params.get("profile", BOOK_PROFILE)
    nb = executed_dir(profile) / f"{chapter}.ipynb"
    record = last_record(chapter, profile)
    if record is None or not nb.exists():
        return False
    try:
        old = record["fingerprint"]
        outputs = record["outputs"]
    except Exception:
        return False
    if outputs.get("notebook") != _file_sha(nb):
        return False
    if outputs.get("csv") != _file_sha(published_results(profile) / f"{chapter}.csv"):
        return False
    return old == json.loads(json.dumps(fingerprint(chapter, params), default=str))


class _Lock:
    """One run per chapter at a time: an exclusive ``flock`` on ``runs/<chapter>.lock``."""

    def __init__(self, chapter: str):
        self.path = runs_dir() / f"{chapter}.lock"
        self.chapter = chapter
        self.fh = None

    def __enter__(self):
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.fh.seek(0)
            holder = self.fh.read().strip() or "another process"
            self.fh.close()
            raise ChapterBusy(
                f"chapter {self.chapter!r} is already running ({holder}); its lock is {self.path}. "
                "Wait for that run to finish (or stop it), then run again.") from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
        self.fh.flush()
        return self

    def __exit__(self, *exc):
        import fcntl

        self.fh.seek(0)
        self.fh.truncate()
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clear_stale_work(chapter: str) -> None:
    """Remove work folders of this chapter left by runs that were killed (their pid is gone)."""
    import shutil

    for w in runs_dir().glob(f"{chapter}.work-*"):
        try:
            pid = int(w.name.rsplit("-", 1)[1])
        except ValueError:
            continue
        if pid == os.getpid() or not _pid_alive(pid):
            shutil.rmtree(w, ignore_errors=True)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the papermill child gets SIGTERM if the runner dies (even by SIGKILL)."""
    os.setsid()
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _first_error(nb_path: Path) -> dict:
    """The failing cell of an executed notebook: index, execution count, exception."""
    import nbformat

    try:
        nb = nbformat.read(str(nb_path), as_version=4)
    except Exception:
        return {}
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "error":
                return {"cell": i, "count": cell.get("execution_count"), "ename": out.get("ename"),
                        "evalue": out.get("evalue")}
    return {}


class PeakMemory:
    """The largest summed memory of a process and all its descendants (the kernel and its worker
    processes), sampled every ``interval`` seconds in a background thread. Each process counts
    its proportional set size (PSS) where the system reports it: pages shared by several
    processes (a memory-mapped file of frame vectors read by every sweep worker) are counted
    once in all, not once per process as resident sizes would; elsewhere its resident size.

    It also adds up the CPU time (user + system) of every process of the tree it has seen
    (:meth:`cpu_seconds`): CPU seconds over wall seconds is how many cores a chapter kept busy
    on average, the measure of how much a faster schedule could still gain. A process's last
    ``interval`` before it exits is not seen."""

    def __init__(self, pid: int, interval: float = 0.5):
        import threading

        self.pid, self.interval, self.peak = pid, interval, 0
        self._cpu: dict = {}  # (pid, create time) -> the largest user + system seconds seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def tree_memory(self) -> int:
        import psutil

        try:
            root = psutil.Process(self.pid)
            procs = [root] + root.children(recursive=True)
        except psutil.Error:
            return 0
        total = 0
        for p in procs:
            try:
                t = p.cpu_times()
                key = (p.pid, p.create_time())
                self._cpu[key] = max(self._cpu.get(key, 0.0), t.user + t.system)
            except psutil.Error:
                pass
            try:
                info = p.memory_full_info()
                total += getattr(info, "pss", info.rss)
            except psutil.AccessDenied:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            except psutil.Error:
                pass
        return total

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of every process of the tree seen so far."""
        return float(sum(self._cpu.values()))

    def _watch(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.tree_memory())
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


def _execute(src: Path, out: Path, params: dict, env: dict, progress: bool, usage: dict | None = None) -> int:
    """Run papermill in a child process (its own session) so that SIGINT/SIGTERM stop the kernel
    and nothing is published. Returns papermill's exit code; ``usage["peak_rss"]`` receives the
    peak memory (bytes) of the child's whole process tree."""
    import signal

    import yaml

    pfile = out.with_suffix(".parameters.yml")
    pfile.write_text(yaml.safe_dump(params, sort_keys=False))
    cmd = [sys.executable, "-m", "papermill", str(src), str(out), "-f", str(pfile), "-k", "python3",
           "--cwd", str(repo_root() / "notebooks"), "--request-save-on-cell-execute", "--no-log-output",
           "--progress-bar" if progress else "--no-progress-bar"]
    child = subprocess.Popen(cmd, env=env, preexec_fn=_die_with_parent,
                             stdout=None if progress else subprocess.DEVNULL,
                             stderr=None if progress else subprocess.PIPE, text=True)
    stopped = {}

    def stop(signum, _frame):
        stopped["signal"] = signum
        try:
            os.killpg(child.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    watch = PeakMemory(child.pid).__enter__()
    try:
        try:
            _, err = child.communicate()
        except BaseException:
            stop(signal.SIGINT, None)
            raise
        finally:
            if child.poll() is None:
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait()
    finally:
        watch.__exit__()
        if usage is not None:
            usage["peak_rss"] = watch.peak
            usage["cpu_seconds"] = watch.cpu_seconds()
        for s, h in old.items():
            signal.signal(s, h)
    if stopped:
        raise ChapterInterrupted(signal.Signals(stopped["signal"]).name)
    if child.returncode and not progress and err:
        sys.stderr.write(err[-3000:])
    return child.returncode


def run_chapter(chapter: str, profile: str = "default", overrides: dict | None = None,
                progress: bool = True) -> Path:
    """Execute one chapter notebook with papermill and publish it atomically.

    The run holds the chapter's lock, executes into a private work folder
    (``runs/<chapter>.work-<pid>``: the notebook, and the result rows the kernel writes there
    through ``$ASDSTUDY_RESULTS_OUT``), and only when every cell has run publishes the notebook
    and the CSV (``os.replace``) and then the run record holding both files' hashes. A failure,
    SIGINT or SIGTERM publishes nothing: the previous published notebook, rows and record stay
    as they were. Parameters are validated before any kernel starts.

    Args:
        chapter: the notebook's name in ``notebooks/`` (e.g. "data").
        profile: smoke, default or paper (each publishes in its own place, see
            :func:`executed_dir`).
        overrides: parameter values replacing the profile's.
        progress: show papermill's cell progress bar.

    Returns:
        The published notebook.

    Raises:
        ChapterFailed: naming the failing cell and where the executed notebook was kept.
        ChapterInterrupted: stopped by a signal; nothing published.
        ChapterBusy: another run of the chapter holds its lock.
    """
    import shutil

    src = repo_root() / "notebooks" / f"{chapter}.ipynb"
    if not src.exists():
        raise ASDStudyError(f"no notebook {src}; chapters: {', '.join(CHAPTER_ORDER)}.")
    params = parameters(chapter, profile, overrides, validate=True)
    numerics.apply()  # the kernel and its workers inherit the pins of the mode asked for
    runs_dir().mkdir(parents=True, exist_ok=True)
    with _Lock(chapter):
        _clear_stale_work(chapter)
        work = runs_dir() / f"{chapter}.work-{os.getpid()}"
        (work / "results").mkdir(parents=True)
        nb_work = work / f"{chapter}.ipynb"
        pub_nb_dir, pub_results = executed_dir(profile), published_results(profile)
        env = dict(os.environ, ASDSTUDY_RESULTS=str(pub_results), ASDSTUDY_RESULTS_OUT=str(work / "results"),
                   ASDSTUDY_CHAPTERS=str(pub_nb_dir))
        # float sums depend on how many threads share them: the kernel computes on `jobs` threads
        # (its workers on one each) whatever the machine's core count, so the same parameters give
        # the same numbers on a 2-core laptop and a 64-core server of the same CPU kind
        threads = str(max(1, int(params.get("jobs") or 1)))
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
        env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
        env.setdefault("TQDM_MININTERVAL", "5")
        t0 = time.time()
        usage = {}
        try:
            try:
                rc = _execute(src, nb_work, params, env, progress, usage)
            except (ChapterInterrupted, KeyboardInterrupt) as exc:
                kept = runs_dir() / f"{chapter}.interrupted.ipynb"
                if nb_work.exists():
                    os.replace(nb_work, kept)
                raise ChapterInterrupted(
                    f"chapter {chapter!r} ({profile}) was stopped ({exc or 'SIGINT'}) after "
                    f"{time.time() - t0:.0f} s; nothing was published, the previous results stay as they were. "
                    f"What had run is kept at {kept}.") from None
            if rc != 0:
                failed = runs_dir() / f"{chapter}.failed.ipynb"
                err = _first_error(nb_work)
                if nb_work.exists():
                    os.replace(nb_work, failed)
                where = (f"in cell {err['cell']} of the executed notebook (execution count {err['count']}): "
                         f"{err['ename']}: {err['evalue']}") if err else f"(papermill exit {rc}, no cell error recorded)"
                raise ChapterFailed(
                    f"chapter {chapter!r} ({profile}) failed {where}\nThe executed notebook is kept at {failed}; "
                    "open it to see the full traceback. Nothing was published.")
            _hide_injected_parameters(nb_work)
            _publish(chapter, profile, params, work, time.time() - t0, usage.get("peak_rss", 0),
                     usage.get("cpu_seconds", 0.0))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return pub_nb_dir / f"{chapter}.ipynb"


def _publish(chapter: str, profile: str, params: dict, work: Path, seconds: float, peak_rss: int = 0,
             cpu_seconds: float = 0.0) -> None:
    """Move a finished run's notebook and rows into place, then write the record naming both."""
    pub_nb_dir, pub_results = executed_dir(profile), published_results(profile)
    pub_nb_dir.mkdir(parents=True, exist_ok=True)
    pub_results.mkdir(parents=True, exist_ok=True)
    nb, csv = pub_nb_dir / f"{chapter}.ipynb", pub_results / f"{chapter}.csv"
    state = _state_path(chapter, profile)
    state.unlink(missing_ok=True)  # a publish torn below leaves no record, so the chapter re-runs
    new_csv = work / "results" / f"{chapter}.csv"
    if new_csv.exists():
        os.replace(new_csv, csv)
    else:
        csv.unlink(missing_ok=True)  # this run wrote no rows: the old ones are not its
    os.replace(work / f"{chapter}.ipynb", nb)
    (pub_nb_dir / f"{chapter}.md").unlink(missing_ok=True)
    state.parent.mkdir(parents=True, exist_ok=True)
    record = {"fingerprint": fingerprint(chapter, params), "profile": profile, "seconds": round(seconds, 1),
              "peak_memory_gb": round(peak_rss / 1e9, 2), "cpu_seconds": round(cpu_seconds, 1),
              "numerics": numerics.mode(), "outputs": {"notebook": _file_sha(nb), "csv": _file_sha(csv)}}
    tmp = state.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(record, default=str, indent=1))
    os.replace(tmp, state)


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


def write_placeholders(folder: Path | None = None) -> list[str]:
    """A page for every chapter of the table of contents that has not been executed yet."""
    folder = folder or executed_dir(BOOK_PROFILE)
    missing = []
    folder.mkdir(parents=True, exist_ok=True)
    for chapter in toc_chapters():
        if not (folder / f"{chapter}.ipynb").exists():
            missing.append(chapter)
            (folder / f"{chapter}.md").write_text(
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


def book_source(profile: str = BOOK_PROFILE) -> Path:
    """The folder Jupyter Book builds for ``profile``: the repository itself for the book's own
    profile; for another one a staged copy (``_build/<profile>/source``) of the book's pages
    with that profile's executed chapters in place of the default ones."""
    import shutil

    root = repo_root()
    if profile == BOOK_PROFILE:
        write_placeholders()
        return root
    published = executed_dir(profile)
    if not any(published.glob("*.ipynb")):
        raise ASDStudyError(f"no chapter has been run with the {profile} profile yet ({published} is empty); "
                            f"run `asdstudy run CHAPTER --profile {profile}` or `asdstudy reproduce --profile {profile}`.")
    stage = root / "_build" / profile / "source"
    for name in ("_config.yml", "_toc.yml"):
        stage.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / name, stage / name)
    if (stage / "book").exists():
        shutil.rmtree(stage / "book")
    shutil.copytree(root / "book", stage / "book",
                    ignore=shutil.ignore_patterns("chapters", "_results", "_profiles", "__pycache__"))
    shutil.copytree(published, stage / "book" / "chapters", ignore=shutil.ignore_patterns("*.md"))
    write_placeholders(stage / "book" / "chapters")
    return stage


def build_book(strict: bool = False, quiet: bool = False, profile: str = BOOK_PROFILE) -> Path:
    """Build the HTML book and return the path of its ``index.html``.

    The default profile's book is ``_build/html``; another profile's is built from its own
    executed chapters into ``_build/<profile>/source/_build/html`` (see :func:`book_source`).

    Args:
        strict: treat Sphinx warnings as errors (``-W -n --keep-going``); the tests use it.
        quiet: capture the builder's output (shown on failure).
        profile: whose executed chapters the book shows.
    """
    src = book_source(profile)
    # Sphinx does not overwrite a static file it copied before: drop the book's own ones so
    # that an edited stylesheet always reaches the built pages
    for css in (src / "book" / "_static").glob("*"):
        (src / "_build" / "html" / "_static" / css.name).unlink(missing_ok=True)
    exe = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(exe) if exe.exists() else "jupyter-book", "build", str(src), "--builder", "html"]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    proc = subprocess.run(cmd, cwd=src, capture_output=quiet, text=True)
    if proc.returncode != 0:
        log = (proc.stdout or "")[-4000:] + (proc.stderr or "")[-4000:] if quiet else ""
        raise ASDStudyError(f"the book build failed (exit {proc.returncode}).\n{log}")
    return src / "_build" / "html" / "index.html"


def usage_text(record: dict) -> str:
    """", 1,234 CPU-s (1.8 cores busy on average), peak memory 2.40 GB (kernel and workers
    together)" from a chapter's run record; the parts the record lacks are left out."""
    cpu, seconds, peak = record.get("cpu_seconds"), record.get("seconds"), record.get("peak_memory_gb")
    text = ""
    if cpu and seconds:
        text += f", {cpu:,.0f} CPU-s ({cpu / seconds:.1f} cores busy on average)"
    if peak:
        text += f", peak memory {peak:.2f} GB (kernel and workers together)"
    return text


def reproduce(profile: str = "default", overrides: dict | None = None, progress: bool = True,
              echo=print) -> Path:
    """Run every chapter in order (skipping unchanged ones), then build the book."""
    every = {c: parameters(c, profile, overrides, validate=True) for c in CHAPTER_ORDER}  # all, before any runs
    for chapter in CHAPTER_ORDER:
        params = every[chapter]
        if is_unchanged(chapter, params):
            echo(f"[{chapter}] unchanged since its last successful run (notebook, parameters, "
                 "package and data): skipped")
            continue
        echo(f"[{chapter}] running ({profile})")
        t0 = time.time()
        run_chapter(chapter, profile, overrides, progress=progress)
        echo(f"[{chapter}] done in {time.time() - t0:.0f} s" + usage_text(last_record(chapter, profile) or {}))
    echo("[book] building")
    return build_book(profile=profile)


def _parse_value(text: str):
    import yaml

    try:
        return yaml.safe_load(text)
    except Exception:
        return text


def register(main):
    """Add the runner's commands (run, reproduce, preflight, book) to the CLI group."""
    import click
    import pandas as pd

    from .preflight import CHAPTERS as PREFLIGHT_CHAPTERS

    @main.command()
    @click.argument("chapter")
    @click.option("--profile", type=click.Choice(["smoke", "default", "paper"]), default="default",
                  show_default=True)
    @click.option("-p", "--param", "params", type=(str, str), multiple=True, metavar="KEY VALUE",
                  help="Override a parameter (repeat); values are read as YAML (7, 0.5, true, [a, b]).")
    def run(chapter, profile, params):
        """Execute one chapter notebook into the book (papermill)."""
        overrides = {k: _parse_value(v) for k, v in params}
        try:
            out = run_chapter(chapter, profile, overrides)
        except ChapterInterrupted as exc:
            click.secho(f"interrupted: {exc}", fg="yellow", err=True)
            sys.exit(130)
        flag = "" if profile == BOOK_PROFILE else f" --profile {profile}"
        click.echo(f"published {out}; rebuild the book with `asdstudy book{flag}`")

    @main.command("reproduce")
    @click.option("--profile", type=click.Choice(["smoke", "default", "paper"]), default="default",
                  show_default=True)
    @click.option("--jobs", "-j", type=int, default=None, help="Worker processes for every chapter.")
    def reproduce_cmd(profile, jobs):
        """Run every chapter in order (skipping unchanged ones), then build the book."""
        try:
            index = reproduce(profile, {"jobs": jobs} if jobs else None, echo=click.echo)
        except ChapterInterrupted as exc:
            click.secho(f"interrupted: {exc}", fg="yellow", err=True)
            sys.exit(130)
        click.echo(f"book: {index}")

    @main.command()
    @click.option("--data-root", required=True, type=click.Path(path_type=Path),
                  help="The folder holding the real datasets (as `asdstudy data download --dest` filled it).")
    @click.option("--profile", type=click.Choice(["paper"]), default="paper", show_default=True,
                  help="The profile whose code path is proven (only paper).")
    @click.option("--chapters", default=",".join(PREFLIGHT_CHAPTERS), show_default=True,
                  help="Comma-separated chapters.")
    @click.option("--max-clips", type=int, default=4, show_default=True,
                  help="Clips per machine, unit, split, condition and domain in the cut run.")
    @click.option("--jobs", "-j", type=int, default=2, show_default=True, help="Worker processes.")
    @click.option("--out", type=click.Path(path_type=Path), default=None,
                  help="Where the executed notebooks and rows go (default runs/preflight).")
    def preflight(data_root, profile, chapters, max_clips, jobs, out):
        """Run every chapter's paper-profile path, each loop cut short, on DATA_ROOT: passed or the
        failing cell per chapter, and a resource plan (device hours, memory, disk). Exit 1 when a
        chapter fails."""
        from .preflight import ASSUMPTIONS, preflight as run_preflight

        names = [c.strip() for c in chapters.split(",") if c.strip()]
        try:
            df = run_preflight(data_root, names, max_clips=max_clips, jobs=jobs, out=out)
        except ChapterInterrupted as exc:
            click.secho(f"interrupted: {exc}", fg="yellow", err=True)
            sys.exit(130)
        with pd.option_context("display.max_columns", None, "display.width", 200, "display.max_colwidth", 120):
            click.echo(df.drop(columns=["error", "warnings"]).to_string())
        for chapter, r in df.iterrows():
            if r["error"]:
                click.secho(f"{chapter}: FAILED {r['error']}", fg="red")
            if r["warnings"]:
                click.secho(f"{chapter}: warning: {r['warnings']}", fg="yellow")
        click.echo(f"plan: about {df.attrs['total_hours']:.1f} {df.attrs['device']} hours and "
                   f"{df.attrs['total_disk_gb']:.0f} GB of feature cache for the chapters that passed.")
        if df.attrs["warning"]:
            click.secho(f"warning: {df.attrs['warning']}", fg="yellow")
        click.echo(f"assumptions: {ASSUMPTIONS}")
        sys.exit(0 if (df["status"] == "passed").all() else 1)

    @main.command()
    @click.option("--strict", is_flag=True, help="Warnings are errors.")
    @click.option("--profile", type=click.Choice(["smoke", "default", "paper"]), default="default",
                  show_default=True, help="Whose executed chapters the book shows.")
    def book(strict, profile):
        """Build the book from the executed chapters."""
        click.echo(f"book: {build_book(strict=strict, profile=profile)}")
