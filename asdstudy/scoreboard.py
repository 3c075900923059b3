"""The scoreboard: every claim of the papers beside the number this study reproduced.

A claim (:func:`asdstudy.results.load_claims`) matches a result row when paper, method, metric,
unit and machine agree (a claim's machine ``unknown`` matches any machine; a claim's ``pauc``,
whose kind the papers rarely state, is compared with the McClish pAUC every DCASE evaluator
computes). The verdict:

* ``reproduced`` -- same dataset, and the claimed value lies inside the reproduced value's 95 %
  CI (or, for a number without a CI such as a parameter count, equals it);
* ``not reproduced`` -- same dataset, claimed value outside the CI;
* ``not comparable`` -- the reproduction ran on other data (the synthetic factory, or a public
  stand-in for a private dataset): the reason says which;
* ``not measured`` -- the paper's chapter ran but did not compute this number;
* ``not yet run`` -- the paper's chapter has not been executed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .profiles import PAPER_CHAPTERS

VERDICTS = ("reproduced", "not reproduced", "not comparable", "not measured", "not yet run")
METRIC_ALIASES = {"pauc": "pauc_mcclish"}
PRIVATE_DATASETS = {"paper000-private": "the paper's own data is not public"}
COLUMNS = ["paper", "source", "method", "machine", "unit", "metric", "claimed", "reproduced",
           "ci_low", "ci_high", "difference", "dataset", "profile", "verdict", "reason"]


def _match(claim: pd.Series, results: pd.DataFrame) -> pd.DataFrame:
    metric = METRIC_ALIASES.get(claim.metric, claim.metric)
    m = ((results["paper"] == claim.paper) & (results["method"] == claim.method)
         & (results["metric"] == metric) & (results["unit"].astype(str) == str(claim.unit)))
    if claim.machine not in ("unknown",):
        m &= results["machine"] == claim.machine
    return results[m]


def scoreboard(claims: pd.DataFrame, results: pd.DataFrame, executed: set[str] | None = None,
               tolerance: float = 1e-6) -> pd.DataFrame:
    """Join claims with result rows and give each claim a verdict.

    Args:
        claims: the claims table.
        results: all result rows (may be empty).
        executed: chapters that have run; by default, those that wrote result rows.
        tolerance: absolute tolerance for numbers without a confidence interval.

    Returns:
        One row per claim with the columns of :data:`COLUMNS`.
    """
    results = results.copy()
    if executed is None:
        executed = set(results["chapter"].dropna()) if "chapter" in results else set()
    rows = []
    for _, c in claims.iterrows():
        row = {k: c[k] for k in ("paper", "source", "method", "machine", "unit", "metric")}
        row.update(claimed=float(c.value), reproduced=np.nan, ci_low=np.nan, ci_high=np.nan,
                   difference=np.nan, dataset="", profile="")
        chapter = PAPER_CHAPTERS.get(c.paper, "")
        if chapter not in executed:
            row.update(verdict="not yet run", reason=f"run `asdstudy run {chapter}`" if chapter else "")
            rows.append(row)
            continue
        hit = _match(c, results)
        if hit.empty:
            row.update(verdict="not measured", reason=f"the {chapter} chapter does not compute this number")
            rows.append(row)
            continue
        r = hit.iloc[0]
        if not np.isfinite(float(r.value)):
            note = r.get("note", "")
            row.update(verdict="not measured", dataset=str(r.dataset), profile=str(r.profile),
                       reason=str(note) if isinstance(note, str) and note else "not computable in this run")
            rows.append(row)
            continue
        row.update(reproduced=float(r.value), ci_low=float(r.ci_low), ci_high=float(r.ci_high),
                   difference=float(r.value) - float(c.value), dataset=str(r.dataset),
                   profile=str(r.profile))
        if str(r.dataset) != str(c.dataset):
            why = PRIVATE_DATASETS.get(c.dataset, f"claimed on {c.dataset}")
            row.update(verdict="not comparable",
                       reason=f"reproduced on {r.dataset} ({r.profile} profile); {why}")
        elif np.isfinite(row["ci_low"]) and np.isfinite(row["ci_high"]):
            inside = row["ci_low"] <= c.value <= row["ci_high"]
            row.update(verdict="reproduced" if inside else "not reproduced",
                       reason="claim inside the 95 % CI" if inside else "claim outside the 95 % CI")
        else:
            same = abs(row["difference"]) <= tolerance
            row.update(verdict="reproduced" if same else "not reproduced",
                       reason="equal (no CI)" if same else "differs (no CI)")
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def summary(board: pd.DataFrame) -> pd.DataFrame:
    """Counts of verdicts per paper (every verdict a column, zeros included)."""
    t = pd.crosstab(board["paper"], board["verdict"])
    return t.reindex(columns=list(VERDICTS), fill_value=0)


def plot(board: pd.DataFrame):
    """Claimed (x) against reproduced (y) per paper, with 95 % CIs and the identity line.

    Papers whose chapter has not run get an empty panel that says so.
    """
    import matplotlib.pyplot as plt

    papers = sorted(board["paper"].unique())
    ncols = min(3, len(papers))
    nrows = int(np.ceil(len(papers) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 4.2 * nrows), squeeze=False)
    for ax in axes.ravel()[len(papers):]:
        ax.set_visible(False)
    colours = {"reproduced": "tab:green", "not reproduced": "tab:red", "not comparable": "tab:grey"}
    for ax, paper in zip(axes.ravel(), papers):
        b = board[(board["paper"] == paper) & board["reproduced"].notna()
                  & board["claimed"].between(0, 1)]
        ax.plot([0, 1], [0, 1], color="k", lw=0.8, ls="--")
        for verdict, g in b.groupby("verdict"):
            err = np.vstack([g["reproduced"] - g["ci_low"], g["ci_high"] - g["reproduced"]])
            err = np.where(np.isfinite(err), np.abs(err), 0)
            ax.errorbar(g["claimed"], g["reproduced"], yerr=err, fmt="o", ms=4, capsize=2,
                        color=colours.get(verdict, "tab:blue"), label=verdict)
        if b.empty:
            status = board.loc[board["paper"] == paper, "verdict"].mode()
            ax.text(0.5, 0.5, status.iloc[0] if len(status) else "", ha="center", va="center",
                    transform=ax.transAxes, fontsize=11, color="0.4")
        else:
            ax.legend(fontsize=7, loc="lower right")
        ax.set(title=f"paper {paper}", xlabel="claimed", xlim=(0, 1.02), ylim=(0, 1.02))
        ax.set_aspect("equal")
    for row in axes:
        row[0].set_ylabel("reproduced")
    fig.tight_layout()
    return fig


def _fmt(x) -> str:
    return "" if pd.isna(x) else f"{x:.4g}"


def display_table(board: pd.DataFrame) -> pd.DataFrame:
    """One paper's rows of the board for the page: the reproduced value with its CI in one
    column, numbers to four significant digits."""
    def with_ci(r):
        if pd.isna(r.reproduced):
            return ""
        if pd.isna(r.ci_low):
            return _fmt(r.reproduced)
        return f"{r.reproduced:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]"

    return pd.DataFrame({
        "source": board.source, "method": board.method, "machine": board.machine, "unit": board.unit,
        "metric": board.metric, "claimed": board.claimed.map(_fmt),
        "reproduced [95 % CI]": board.apply(with_ci, axis=1) if len(board) else [],
        "difference": board.difference.map(_fmt), "data": board.dataset, "verdict": board.verdict,
        "reason": board.reason}).reset_index(drop=True)


def counts(board: pd.DataFrame, results: pd.DataFrame) -> dict:
    """Numbers the scoreboard page quotes: claims, verdict counts, result rows and chapters."""
    c = board.verdict.value_counts()
    out = {"n_claims": len(board), "n_result_rows": len(results),
           "n_chapters_with_results": int(results.chapter.nunique()) if len(results) else 0}
    out.update({f"n_{v.replace(' ', '_')}": int(c.get(v, 0)) for v in VERDICTS})
    return out


def unclaimed(results: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Result rows per (chapter, paper, method, metric), and each chapter's provenance."""
    if not len(results):
        return pd.DataFrame(), pd.DataFrame()
    extra = results.groupby(["chapter", "paper", "method", "metric"]).size().rename("rows").reset_index()
    prov = results[["chapter", "profile", "seed", "device", "package_version", "git_revision", "timestamp"]]
    return extra, prov.drop_duplicates("chapter").reset_index(drop=True)
