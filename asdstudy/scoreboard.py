"""The judge: every claim of the papers beside the number this study reproduced, and a verdict
by the rule of the claim's kind.

Each claim (:func:`asdstudy.results.load_claims`) declares its ``kind`` and the ``chapter``
whose result row answers it. The row is found by chapter, method, metric, unit and machine (a
claim's machine ``unknown`` matches any; a claim's ``pauc``, whose kind the papers rarely state,
is compared with the McClish pAUC every DCASE evaluator computes); two rows answering one claim
are an error, never a first match. The rules:

* ``value`` -- a metric. The answering row must carry its 95 % CI (a row without one is refused:
  :class:`JudgeError`). ``reproduced`` when the claim lies inside the CI, else ``not reproduced``.
* ``count`` -- a parameter count, feature count or dataset size: ``reproduced`` only when equal.
* ``direction`` -- "A is better than B": the claim's value is the claimed sign (+1 or -1) of a
  difference row (A - B, its CI from a paired bootstrap on the same clips). ``holds`` when the
  CI lies wholly on the claimed side, ``fails`` when wholly on the other, else ``undecided``.
  A claimed value of 0 reads "A is no worse than B" ("matches or exceeds", "is retained"): it
  ``holds`` when the whole CI lies above ``-NO_WORSE_MARGIN``, ``fails`` when the whole CI lies
  below it, else ``undecided`` (a non-inferiority test with a stated margin).
* ``by construction`` -- fixed by the protocol (e.g. recall at a threshold chosen for TPR 0.8):
  shown, never judged.
* ``not comparable`` -- the claim's note says why (a threshold rule the paper does not state, a
  number the paper calls hypothetical): shown, never judged.

Whatever the kind, a row computed on other data than the claim's (the synthetic factory, a
public stand-in for a private dataset) gives ``not comparable``, except directions, which are
judged on that data and labelled so ("holds on the synthetic factory"). Claims whose chapter
has not run are ``not yet run``; those it did not compute are ``not measured``. A claim row
with a ``formula`` is derived from other claim rows (:func:`derive`), never typed.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from . import ASDStudyError

KINDS = ("value", "count", "direction", "by construction", "not comparable")
VERDICTS = ("reproduced", "not reproduced", "holds", "fails", "undecided", "not comparable", "by construction",
            "not measured", "not yet run")
#: The verdict groups the opening figure counts (direction verdicts on other data are "holds on ...").
GROUPS = {"reproduced": "reproduced", "holds": "reproduced", "not reproduced": "not reproduced", "fails": "not reproduced",
          "undecided": "undecided", "not comparable": "not comparable", "by construction": "not comparable",
          "not measured": "not measured", "not yet run": "not yet run"}
METRIC_ALIASES = {"pauc": "pauc_mcclish"}
PRIVATE_DATASETS = {"paper000-private": "the paper's own data is not public"}
COLUMNS = ["paper", "source", "kind", "chapter", "method", "machine", "unit", "metric", "claimed", "reproduced",
           "ci_low", "ci_high", "difference", "dataset", "profile", "verdict", "reason"]


#: The margin of a "no worse" directional claim (claimed value 0), in the metric's units (AUC or
#: accuracy): a drop smaller than this counts as "retained".
NO_WORSE_MARGIN = 0.02


class JudgeError(ASDStudyError):
    """A claim that cannot be judged by its rule: duplicate answering rows, a value without CI."""


def claim_key(c) -> str:
    return f"{c.paper} / {c.method} / {c.machine} / {c.unit} / {c.metric}"


def derive(claims: pd.DataFrame) -> pd.DataFrame:
    """Evaluate the claim rows that carry a ``formula`` from the other claim rows.

    Formula: ``mean over unit in 00,02,04`` -- the mean of the same paper, method, machine
    and metric's claims for those units (the published per-id numbers).

    Raises:
        ASDStudyError: an unknown formula, or parts missing from the claims file.
    """
    out = claims.copy()
    for i, c in out[out["formula"].astype(str) != ""].iterrows():
        m = re.fullmatch(r"mean over unit in ([\w,]+)", str(c.formula).strip())
        if not m:
            raise ASDStudyError(f"claim {claim_key(c)}: unknown formula {c.formula!r}.")
        units = m.group(1).split(",")
        parts = claims[(claims.paper == c.paper) & (claims.method == c.method) & (claims.machine == c.machine)
                       & (claims.metric == c.metric) & claims.unit.isin(units) & (claims.formula.astype(str) == "")]
        if sorted(parts.unit) != sorted(units):
            raise ASDStudyError(f"claim {claim_key(c)}: formula needs units {units}, the claims file has "
                                f"{sorted(parts.unit)}.")
        out.at[i, "value"] = float(np.mean(parts["value"].astype(float)))
    out["value"] = out["value"].astype(float)
    return out


def check_claims(claims: pd.DataFrame) -> None:
    """The claims file's own invariants: known kinds, a chapter per claim, no claim twice."""
    bad = sorted(set(claims["kind"]) - set(KINDS))
    if bad:
        raise ASDStudyError(f"claims with unknown kind(s) {bad}; kinds are {', '.join(KINDS)}.")
    dup = claims[claims.duplicated(["paper", "method", "machine", "unit", "metric", "source"], keep=False)]
    if len(dup):
        raise ASDStudyError("claims listed twice: " + "; ".join(sorted({claim_key(r) for r in dup.itertuples()})))
    missing = claims[claims["chapter"].astype(str) == ""]
    if len(missing):
        raise ASDStudyError("claims without the chapter that answers them: "
                            + "; ".join(claim_key(r) for r in missing.itertuples()))


def _answers(claim, results: pd.DataFrame) -> pd.DataFrame:
    metric = METRIC_ALIASES.get(claim.metric, claim.metric)
    m = ((results["chapter"] == claim.chapter) & (results["method"] == claim.method)
         & (results["metric"] == metric) & (results["unit"].astype(str) == str(claim.unit)))
    if claim.machine not in ("unknown",):
        m &= results["machine"] == claim.machine
    return results[m]


def _scope(dataset: str) -> str:
    return "the synthetic factory" if str(dataset).startswith("synthetic") else str(dataset)


def judge(claim, row) -> tuple[str, str]:
    """The verdict and its reason for one claim and its answering row (a Series), by the rule of
    the claim's kind (see the module's docstring)."""
    kind = claim.kind
    value, lo, hi = float(row.value), float(row.ci_low), float(row.ci_high)
    has_ci = np.isfinite(lo) and np.isfinite(hi)
    if kind == "by construction":
        return "by construction", claim.note or "fixed by the protocol"
    if kind == "not comparable":
        return "not comparable", claim.note or "the claim cannot be re-made"
    same_data = str(claim.dataset) in ("any", str(row.dataset))
    if kind == "direction":
        if not has_ci:
            raise JudgeError(f"direction claim {claim_key(claim)}: its difference row has no CI (the chapter must "
                             "write a paired-bootstrap CI).")
        where = "" if same_data else f" on {_scope(row.dataset)}"
        shown = f"difference {value:+.3f} [{lo:+.3f}, {hi:+.3f}]: "
        if float(claim.value) == 0:  # "no worse than"
            m = NO_WORSE_MARGIN
            verdict = "holds" if lo > -m else "fails" if hi < -m else "undecided"
            return verdict + where, shown + {"holds": f"the CI lies above -{m:g} (no worse, within the margin)",
                                             "fails": f"the CI lies below -{m:g} (worse by more than the margin)",
                                             "undecided": f"the CI straddles -{m:g}, the no-worse margin"}[verdict]
        seen = 1 if lo > 0 else -1 if hi < 0 else 0
        verdict = "undecided" if seen == 0 else "holds" if seen == np.sign(float(claim.value)) else "fails"
        return verdict + where, shown + ("the CI includes 0" if seen == 0 else "the CI excludes 0")
    if kind == "value" and not has_ci:
        raise JudgeError(f"value claim {claim_key(claim)}: the {claim.chapter} chapter's row has no 95 % CI; "
                         "a value is judged only against its CI.")
    if not same_data:
        why = PRIVATE_DATASETS.get(claim.dataset, f"claimed on {claim.dataset}")
        return "not comparable", f"reproduced on {row.dataset} ({row.profile} profile); {why}"
    if kind == "count":
        same = abs(value - float(claim.value)) < 1e-9
        return ("reproduced", "equal") if same else ("not reproduced", f"{value:g} against {float(claim.value):g}")
    inside = lo <= float(claim.value) <= hi
    return ("reproduced", "claim inside the 95 % CI") if inside else ("not reproduced", "claim outside the 95 % CI")


def scoreboard(claims: pd.DataFrame, results: pd.DataFrame, executed: set[str] | None = None) -> pd.DataFrame:
    """Judge every claim against the row of its chapter that answers it.

    Args:
        claims: the claims table (:func:`~asdstudy.results.load_claims`).
        results: all result rows (may be empty).
        executed: chapters that have run; by default, those that wrote result rows.

    Returns:
        One row per claim with the columns of :data:`COLUMNS`.

    Raises:
        JudgeError: two result rows answer one claim, or a value/direction row lacks its CI.
    """
    check_claims(claims)
    claims = derive(claims)
    results = results.copy()
    if executed is None:
        executed = set(results["chapter"].dropna()) if "chapter" in results else set()
    rows = []
    for c in claims.itertuples(index=False):
        row = {k: getattr(c, k) for k in ("paper", "source", "kind", "chapter", "method", "machine", "unit", "metric")}
        row.update(claimed=float(c.value), reproduced=np.nan, ci_low=np.nan, ci_high=np.nan,
                   difference=np.nan, dataset="", profile="")
        if c.chapter not in executed:
            row.update(verdict="not yet run", reason=f"run `asdstudy run {c.chapter}`")
            rows.append(row)
            continue
        hit = _answers(c, results) if len(results) else results
        if len(hit) > 1:
            raise JudgeError(f"{len(hit)} rows of the {c.chapter} chapter answer the claim {claim_key(c)} "
                             f"(datasets {sorted(set(hit.dataset.astype(str)))}, domains "
                             f"{sorted(set(hit.domain.astype(str)))}); a claim is answered by exactly one row.")
        if hit.empty or not np.isfinite(float(hit.iloc[0].value)):
            if c.kind in ("not comparable", "by construction"):
                row.update(verdict=c.kind, reason=c.note)
            elif hit.empty:
                row.update(verdict="not measured", reason=f"the {c.chapter} chapter does not compute this number")
            else:
                note = hit.iloc[0].get("note", "")
                row.update(verdict="not measured", dataset=str(hit.iloc[0].dataset), profile=str(hit.iloc[0].profile),
                           reason=str(note) if isinstance(note, str) and note else "not computable in this run")
            rows.append(row)
            continue
        r = hit.iloc[0]
        row.update(reproduced=float(r.value), ci_low=float(r.ci_low), ci_high=float(r.ci_high),
                   difference=float(r.value) - float(c.value) if c.kind != "direction" else np.nan,
                   dataset=str(r.dataset), profile=str(r.profile))
        row["verdict"], row["reason"] = judge(c, r)
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def group_of(verdict: str) -> str:
    """The opening figure's group of a verdict ("holds on the synthetic factory" -> "reproduced"...)."""
    head = verdict.split(" on ")[0]
    if verdict != head:  # a direction judged on other data than the claim's
        return "on other data"
    return GROUPS.get(head, head)


ORDER = ("reproduced", "not reproduced", "undecided", "on other data", "not comparable", "not measured", "not yet run")
COLOURS = {"reproduced": "#2e7d32", "not reproduced": "#c62828", "undecided": "#f9a825", "on other data": "#6a8caf",
           "not comparable": "#9e9e9e", "not measured": "#d7ccc8", "not yet run": "#eeeeee"}
PAPER_TITLES = {"000": "000 boosting ensemble", "001": "001 LSTM / GRU", "002": "002 AE vs VAE", "003": "003 GANs",
                "004": "004 AST + k-NN", "dcase2020-baseline": "DCASE 2020 baseline"}


def summary(board: pd.DataFrame) -> pd.DataFrame:
    """Claims per paper and verdict group (every group a column, zeros included)."""
    t = pd.crosstab(board["paper"], board["verdict"].map(group_of))
    return t.reindex(columns=list(ORDER), fill_value=0)


def overview(board: pd.DataFrame, audit: pd.DataFrame | None = None):
    """The opening figure: per paper, its claims by verdict group (stacked bars) and, beside
    them, how its own numbers fare against each other (the consistency audit)."""
    import matplotlib.pyplot as plt

    t = summary(board)
    papers = list(t.index)
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.55 * len(papers) + 1.6), sharey=True,
                             gridspec_kw={"width_ratios": [3, 1.2]})
    left = np.zeros(len(papers))
    y = np.arange(len(papers))
    for g in ORDER:
        v = t[g].to_numpy()
        axes[0].barh(y, v, left=left, color=COLOURS[g], label=g, edgecolor="white", linewidth=0.5)
        for yi, (l, n) in enumerate(zip(left, v)):
            if n >= 3:
                axes[0].text(l + n / 2, yi, str(int(n)), ha="center", va="center", fontsize=8,
                             color="white" if g in ("reproduced", "not reproduced", "on other data") else "black")
        left += v
    axes[0].set(yticks=y, yticklabels=[PAPER_TITLES.get(p, p) for p in papers], xlabel="claims")
    axes[0].invert_yaxis()
    axes[0].legend(ncol=4, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.25 if len(papers) > 3 else -0.4),
                   frameon=False)
    axes[0].set_title("every claim, by verdict", fontsize=10)
    if audit is not None and len(audit):
        a = pd.crosstab(audit["paper"], audit["verdict"]).reindex(index=papers, fill_value=0)
        left = np.zeros(len(papers))
        for g, col in (("consistent", "#2e7d32"), ("within rounding", "#f9a825"), ("inconsistent", "#c62828"),
                       ("impossible", "#4a148c")):
            v = a[g].to_numpy() if g in a else np.zeros(len(papers))
            axes[1].barh(y, v, left=left, color=col, label=g, edgecolor="white", linewidth=0.5)
            left += v
        axes[1].legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.25 if len(papers) > 3 else -0.4), frameon=False)
    axes[1].set_title("the paper against itself", fontsize=10)
    axes[1].set_xlabel("checks")
    fig.tight_layout()
    return fig


def paper_sentences(board: pd.DataFrame, audit: pd.DataFrame | None = None) -> dict:
    """One sentence per paper (glue keys ``sentence_<paper>``) from the verdict counts and audit."""
    t = summary(board)
    out = {}
    for paper, r in t.iterrows():
        parts = [f"{int(r[g])} {g}" for g in ORDER if r[g]]
        text = f"{int(r.sum())} claims: " + ", ".join(parts)
        if audit is not None and len(audit):
            a = audit[audit["paper"] == paper]
            bad = int(a["verdict"].isin(["inconsistent", "impossible"]).sum())
            if len(a):
                text += (f"; {bad} of its {len(a)} internal checks fail" if bad else
                         f"; all {len(a)} internal checks pass")
        out[f"sentence_{paper.replace('-', '_')}"] = text + "."
    return out


def plot(board: pd.DataFrame):
    """Claimed (x) against reproduced (y) per paper, with 95 % CIs and the identity line, for
    the value claims between 0 and 1. Papers whose chapter has not run get a panel saying so."""
    import matplotlib.pyplot as plt

    papers = sorted(board["paper"].unique())
    ncols = min(3, len(papers))
    nrows = int(np.ceil(len(papers) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 4.2 * nrows), squeeze=False)
    for ax in axes.ravel()[len(papers):]:
        ax.set_visible(False)
    for ax, paper in zip(axes.ravel(), papers):
        b = board[(board["paper"] == paper) & board["reproduced"].notna() & (board["kind"] == "value")
                  & board["claimed"].between(0, 1)]
        ax.plot([0, 1], [0, 1], color="k", lw=0.8, ls="--")
        for group, g in b.groupby(b["verdict"].map(group_of)):
            err = np.vstack([g["reproduced"] - g["ci_low"], g["ci_high"] - g["reproduced"]])
            err = np.where(np.isfinite(err), np.abs(err), 0)
            ax.errorbar(g["claimed"], g["reproduced"], yerr=err, fmt="o", ms=4, capsize=2,
                        color=COLOURS.get(group, "tab:blue"), label=group)
        if b.empty:
            status = board.loc[board["paper"] == paper, "verdict"].mode()
            ax.text(0.5, 0.5, status.iloc[0] if len(status) else "", ha="center", va="center",
                    transform=ax.transAxes, fontsize=11, color="0.4")
        else:
            ax.legend(fontsize=7, loc="lower right")
        ax.set(title=PAPER_TITLES.get(paper, paper), xlabel="claimed", xlim=(0, 1.02), ylim=(0, 1.02))
        ax.set_aspect("equal")
    for row in axes:
        row[0].set_ylabel("reproduced")
    fig.tight_layout()
    return fig


def _fmt(x) -> str:
    return "" if pd.isna(x) else f"{x:.4g}"


def short_source(source: str, width: int = 26) -> str:
    """A claim's source as a short reference with the full text on hover."""
    import html

    text = str(source)
    short = text if len(text) <= width else text[: width - 1].rstrip() + "\u2026"
    return f'<span title="{html.escape(text)}">{html.escape(short)}</span>'


def display_table(board: pd.DataFrame, links: bool = True) -> pd.DataFrame:
    """One paper's rows of the board for the page, one line each: the source short (full on
    hover), the reproduced value with its CI in one column, the chapter that answers it linked."""
    def with_ci(r):
        if pd.isna(r.reproduced):
            return ""
        if pd.isna(r.ci_low):
            return _fmt(r.reproduced)
        return f"{r.reproduced:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]"

    chapter = board.chapter.map(lambda c: f'<a href="{c}.html">{c}</a>') if links else board.chapter
    return pd.DataFrame({
        "verdict": board.verdict, "kind": board.kind, "source": board.source.map(short_source) if links else board.source,
        "method": board.method, "machine": board.machine, "unit": board.unit,
        "metric": board.metric, "claimed": board.claimed.map(_fmt),
        "reproduced [95 % CI]": board.apply(with_ci, axis=1) if len(board) else [],
        "data": board.dataset, "answered in": chapter, "reason": board.reason}).reset_index(drop=True)


def claims_html(board: pd.DataFrame, paper: str) -> str:
    """A paper's claims as one collapsible table per verdict group (the page's filter)."""
    b = board[board["paper"] == paper]
    parts = []
    for group in ORDER:
        g = b[b["verdict"].map(group_of) == group]
        if not len(g):
            continue
        table = display_table(g).to_html(index=False, escape=False, border=0, classes="claims")
        opened = " open" if group in ("reproduced", "not reproduced", "undecided") else ""
        parts.append(f'<details{opened}><summary><b>{group}</b> ({len(g)})</summary>{table}</details>')
    return "\n".join(parts)


def direction_table(board: pd.DataFrame) -> pd.DataFrame:
    """The directional claims and their verdicts (on the claim's data or, labelled, on other data)."""
    d = board[board["kind"] == "direction"]
    return pd.DataFrame({"paper": d.paper, "claim": d.method, "machine": d.machine,
                         "claimed sign": d.claimed.map(lambda v: "A > B" if v > 0 else "A < B"),
                         "difference [95 % CI]": [("" if pd.isna(v) else f"{v:+.3f} [{lo:+.3f}, {hi:+.3f}]")
                                                  for v, lo, hi in zip(d.reproduced, d.ci_low, d.ci_high)],
                         "verdict": d.verdict, "source": d.source}).reset_index(drop=True)


def counts(board: pd.DataFrame, results: pd.DataFrame, audit: pd.DataFrame | None = None) -> dict:
    """Numbers the scoreboard page quotes: claims, verdict-group counts, audit, result rows."""
    g = board.verdict.map(group_of).value_counts()
    out = {"n_claims": len(board), "n_result_rows": len(results),
           "n_chapters_with_results": int(results.chapter.nunique()) if len(results) else 0,
           "n_by_construction": int((board.verdict == "by construction").sum())}
    out.update({f"n_{v.replace(' ', '_')}": int(g.get(v, 0)) for v in ORDER})
    if audit is not None:
        out["n_checks"] = len(audit)
        out["n_inconsistent_within"] = int(audit["verdict"].isin(["inconsistent", "impossible"]).sum())
    return out


def unclaimed(results: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Result rows per (chapter, paper, method, metric), and each chapter's provenance."""
    if not len(results):
        return pd.DataFrame(), pd.DataFrame()
    extra = results.groupby(["chapter", "paper", "method", "metric"]).size().rename("rows").reset_index()
    prov = results[["chapter", "profile", "seed", "device", "package_version", "git_revision", "timestamp"]]
    return extra, prov.drop_duplicates("chapter").reset_index(drop=True)
