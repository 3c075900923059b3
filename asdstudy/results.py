"""Results are data: tidy result rows with provenance, the papers' claims, and their join.

A *result row* (:data:`RESULT_COLUMNS`) is one number a chapter computed: which chapter, paper,
method, data, unit and metric, its value and 95 % CI, how many clips, and the provenance
(profile, seed, device, versions, git revision, runtime). Chapters write them with
:func:`write_results` to ``<results dir>/<chapter>.csv``.

A *claim* is a number a paper states, kept in ``asdstudy/data/claims.csv`` with the table or
section it comes from (:func:`load_claims`). Claims are never results: the scoreboard
(:func:`scoreboard`) puts each claim beside the reproduced number of the same method, machine,
unit and metric, when a chapter produced one.
"""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from . import ASDStudyError, __version__

RESULT_COLUMNS = [
    "chapter", "paper", "method", "dataset", "machine", "unit", "domain", "metric", "value",
    "ci_low", "ci_high", "n_normal", "n_anomaly", "profile", "seed", "device", "runtime_s",
    "package_version", "git_revision", "python", "numpy", "torch", "timestamp", "note",
]
CLAIM_COLUMNS = ["paper", "source", "method", "dataset", "machine", "unit", "metric", "value", "kind", "chapter",
                 "formula", "note", "printed"]


def results_dir() -> Path:
    """Where chapters write their result CSVs: ``$ASDSTUDY_RESULTS`` or ``<repo>/book/_results``."""
    env = os.environ.get("ASDSTUDY_RESULTS")
    return Path(env) if env else repo_root() / "book" / "_results"


def output_dir(profile: str = "default") -> Path:
    """Where a chapter run writes its rows: the runner's private work folder
    (``$ASDSTUDY_RESULTS_OUT``, published only when the whole notebook has run); for a chapter
    module called from Python, the profile's own results folder (:func:`results_dir` for the
    default profile, ``<results_dir>/<profile>`` for the others), so that a smoke or paper run
    from Python never replaces the default rows the book shows. (The run record keeps the hash
    of the CSV it published, so rows written from Python make ``reproduce`` run that chapter
    again.)"""
    env = os.environ.get("ASDSTUDY_RESULTS_OUT")
    return Path(env) if env else profile_results_dir(profile)


def profile_results_dir(profile: str = "default") -> Path:
    """Where a profile's rows are published: :func:`results_dir` for the default profile (the
    book's), ``<results_dir>/<profile>`` for the others."""
    return results_dir() if profile in ("default", "", None) else results_dir() / profile


def data_root(value: str | os.PathLike | None = "") -> Path:
    """A chapter's data root: the parameter if given, else ``$ASDSTUDY_DATA``, else ``<repo>/data``."""
    if value:
        return Path(value).expanduser().resolve()
    env = os.environ.get("ASDSTUDY_DATA")
    return Path(env).resolve() if env else repo_root() / "data"


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@lru_cache(maxsize=1)
def git_revision() -> str:
    """The repository's commit (with ``-dirty`` when the tree has changes), or "unknown"."""
    try:
        root = repo_root()
        rev = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        if not rev:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except Exception:
        return "unknown"


def device_name() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            name = f"cuda:{torch.cuda.get_device_name(0)}"
        else:
            name = f"cpu:{platform.machine()}x{os.cpu_count()}"
    except Exception:  # no torch, or a broken CUDA setup: the CPU is what computes
        name = f"cpu:{platform.machine()}x{os.cpu_count()}"
    from .numerics import label

    return f"{name} {label()}"  # e.g. "cpu:x86_64x2 AVX512 native": the CPU's code paths decide the last bits


def provenance(profile: str = "", seed: int | None = None) -> dict:
    """Seed, profile, device, versions, git revision and a UTC timestamp."""
    try:
        import torch

        tv = torch.__version__
    except Exception:
        tv = "absent"
    return {"profile": profile, "seed": seed, "device": device_name(), "package_version": __version__,
            "git_revision": git_revision(), "python": platform.python_version(),
            "numpy": np.__version__, "torch": tv,
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds")}


@dataclass
class ResultWriter:
    """Collects result rows of one chapter run and writes them as one tidy CSV.

    Args:
        chapter: the chapter's name (``notebooks/<chapter>.ipynb``).
        profile, seed: the run's parameters, stamped on every row.
        dataset: the dataset label stamped on rows that do not give one.
    """

    chapter: str
    profile: str
    seed: int
    dataset: str = ""
    rows: list = field(default_factory=list)

    def add(self, paper: str, method: str, metric: str, value: float, machine: str = "",
            unit: str = "", domain: str = "", ci: tuple[float, float] | None = None,
            n_normal: int | None = None, n_anomaly: int | None = None, runtime_s: float | None = None,
            dataset: str | None = None, note: str = "") -> None:
        """One result row. A value that could not be computed here is NaN with a ``note``
        saying why (the scoreboard shows it as "not measured" with that reason)."""
        self.rows.append({"note": note,
            "chapter": self.chapter, "paper": paper, "method": method,
            "dataset": dataset or self.dataset, "machine": machine, "unit": unit, "domain": domain,
            "metric": metric, "value": float(value),
            "ci_low": ci[0] if ci else np.nan, "ci_high": ci[1] if ci else np.nan,
            "n_normal": n_normal, "n_anomaly": n_anomaly, "runtime_s": runtime_s})

    def add_metrics(self, paper: str, method: str, table: pd.DataFrame, unit_col: str = "unit",
                    metrics=("auc", "pauc_mcclish", "pauc_raw"), **kw) -> None:
        """Add rows from a per-unit metrics frame (as :func:`~asdstudy.models.base.evaluate_per_unit` returns)."""
        for _, r in table.iterrows():
            for m in metrics:
                ci = (r[f"{m}_low"], r[f"{m}_high"]) if f"{m}_low" in r else None
                self.add(paper, method, m, r[m], machine=r["machine"], unit=str(r[unit_col]), ci=ci,
                         n_normal=r.get("n_normal"), n_anomaly=r.get("n_anomaly"),
                         runtime_s=r.get("fit_s", np.nan) + r.get("score_s", 0.0), **kw)

    def add_frame(self, frame: pd.DataFrame, **defaults) -> None:
        """Add one result row per row of a result frame.

        The frame has a ``value`` column and any of ``paper``, ``method``, ``metric``,
        ``machine``, ``unit``, ``domain``, ``ci_low``/``ci_high``, ``n_normal``/``n_anomaly``,
        ``runtime_s``, ``dataset``, ``note``; ``defaults`` fill the ones it lacks (e.g.
        ``paper="002"``). A row with ``ci_low`` gets its CI; one without gets none.
        """
        keys = ("paper", "method", "metric", "machine", "unit", "domain", "n_normal", "n_anomaly",
                "runtime_s", "dataset", "note")
        for _, r in frame.iterrows():
            kw = {k: defaults[k] for k in keys if k in defaults}
            kw.update({k: r[k] for k in keys if k in r.index and not _missing(r[k])})
            for k in ("n_normal", "n_anomaly"):
                if k in kw and kw[k] is not None:
                    kw[k] = int(kw[k])
            if "unit" in kw:
                kw["unit"] = str(kw["unit"])
            lo, hi = r.get("ci_low", np.nan), r.get("ci_high", np.nan)
            ci = (float(lo), float(hi)) if not (_missing(lo) or _missing(hi)) else None
            missing = [k for k in ("paper", "method", "metric") if k not in kw]
            if missing:
                raise ASDStudyError(f"add_frame: rows lack {', '.join(missing)}; pass them as defaults.")
            self.add(kw.pop("paper"), kw.pop("method"), kw.pop("metric"), r["value"], ci=ci, **kw)

    def frame(self) -> pd.DataFrame:
        prov = provenance(self.profile, self.seed)
        df = pd.DataFrame(self.rows)
        for k, v in prov.items():
            df[k] = v
        return df.reindex(columns=RESULT_COLUMNS)

    def write(self, folder: str | Path | None = None) -> Path:
        return write_results(self.frame(), self.chapter, folder or output_dir(self.profile))


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and v == "")


def write_results(df: pd.DataFrame, chapter: str, folder: str | Path | None = None) -> Path:
    """Write a chapter's result rows (atomically) to ``<folder>/<chapter>.csv``."""
    missing = [c for c in ("chapter", "paper", "method", "metric", "value") if c not in df]
    if missing:
        raise ASDStudyError(f"result rows lack the column(s) {', '.join(missing)}.")
    folder = Path(folder) if folder else output_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{chapter}.csv"
    tmp = path.with_suffix(".csv.tmp")
    df.reindex(columns=RESULT_COLUMNS).to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path


def read_results(folder: str | Path | None = None) -> pd.DataFrame:
    """All result rows of all executed chapters (empty frame with the columns if none)."""
    folder = Path(folder) if folder else results_dir()
    files = sorted(folder.glob("*.csv")) if folder.exists() else []
    if not files:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    return pd.concat([pd.read_csv(f, dtype={"unit": str, "paper": str}) for f in files], ignore_index=True)


def load_claims() -> pd.DataFrame:
    """Every number the five papers (and the DCASE 2020 baseline README) claim."""
    with resources.files("asdstudy").joinpath("data/claims.csv").open() as fh:
        df = pd.read_csv(fh, dtype=str, keep_default_na=False)
    df["printed"] = df["value"]  # the digits as the paper prints them (their rounding matters to the audit)
    df["value"] = pd.to_numeric(df["value"].replace("", np.nan))
    return df[CLAIM_COLUMNS]
