"""Figures of the book, one function per kind of figure.

Each function takes a tidy result frame (or arrays an experiment returned), draws it and
returns the matplotlib figure; nothing here computes a number that the book reports. Chapters
call them in one line each, so the figure a reader sees is the one the tests drew.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .audio import load
from .features import LogMelParams, logmel

#: Width of a full-width figure in inches (the book's text column at 1400 px is ~10 in at 100 dpi).
FULL = 12.0


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _grid(n: int, ncols: int | None = None, width: float = FULL, height: float = 3.2, **kw):
    plt = _plt()
    ncols = min(n, ncols or n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height * nrows), squeeze=False, **kw)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()


# ------------------------------------------------------------------------------ clip figures

def examples(table: pd.DataFrame, machine: str) -> pd.DataFrame:
    """One normal test clip and, per anomaly kind, its most severe anomalous clip."""
    t = table[(table["machine"] == machine) & (table["split"] == "test")]
    picks = [t[t["label"] == 0].iloc[:1].assign(example="normal")]
    if "anomaly_kind" in t:
        for kind, g in t[t["label"] == 1].groupby("anomaly_kind"):
            picks.append(g.sort_values("severity", ascending=False).iloc[:1].assign(example=kind))
    else:
        picks.append(t[t["label"] == 1].iloc[:1].assign(example="anomaly"))
    return pd.concat(picks, ignore_index=True)


def clip_gallery(picks: pd.DataFrame, params: LogMelParams = LogMelParams(n_mels=128), title: str = ""):
    """A row per clip: waveform (left) and log-mel spectrogram (right), shared colour scale."""
    plt = _plt()
    n = len(picks)
    fig, axes = plt.subplots(n, 2, figsize=(FULL, 1.9 * n), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1.4]})
    clips = [load(p) for p in picks["path"]]
    specs = [logmel(y, params) for y, _ in clips]
    lo, hi = np.percentile(np.concatenate([s.ravel() for s in specs]), [2, 99.8])
    for i, (row, (y, sr), spec) in enumerate(zip(picks.itertuples(), clips, specs)):
        t = np.arange(y.size) / sr
        axes[i, 0].plot(t, y, lw=0.3, color="tab:red" if row.label == 1 else "tab:blue")
        axes[i, 0].set(xlim=(0, t[-1]), ylabel=row.example)
        extra = ""
        if getattr(row, "severity", None) is not None and np.isfinite(getattr(row, "severity", np.nan)):
            extra = f"  severity {row.severity:.2f}, band {row.band_lo:.0f}-{row.band_hi:.0f} Hz"
        axes[i, 1].imshow(spec.T, origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap="magma",
                          extent=(0, spec.shape[0] * params.hop_length / params.sr, 0, params.n_mels))
        axes[i, 1].set_title(f"{row.example}{extra}", fontsize=8, loc="left")
        axes[i, 1].set_ylabel("mel band")
    axes[-1, 0].set_xlabel("time (s)")
    axes[-1, 1].set_xlabel("time (s)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def spectrogram_grid(images: list[list[np.ndarray]], titles: list[list[str]], shared_scale: list[bool] | None = None,
                     ylabel: str = "mel band", xlabel: str = "frame"):
    """Rows of spectrogram-like images (e.g. original / reconstructed / error triptychs).

    Args:
        images: rows of (T, bins) arrays.
        titles: one title per image.
        shared_scale: per column, whether the row's first image's 2-99.8 % range is used.
    """
    plt = _plt()
    nrows, ncols = len(images), max(len(r) for r in images)
    shared_scale = shared_scale or [True] * ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(FULL, 2.6 * nrows), squeeze=False, sharey=True)
    for i, row in enumerate(images):
        lo, hi = np.percentile(row[0], [2, 99.8])
        for j, img in enumerate(row):
            kw = {"vmin": lo, "vmax": hi} if shared_scale[j] else {}
            axes[i, j].imshow(np.asarray(img).T, origin="lower", aspect="auto", cmap="magma", **kw)
            axes[i, j].set_title(titles[i][j], fontsize=9)
        axes[i, 0].set_ylabel(ylabel)
    for ax in axes[-1]:
        ax.set_xlabel(xlabel)
    fig.tight_layout()
    return fig


def spectrogram_with_curves(specs: list[np.ndarray], curves: pd.DataFrame, titles: list[str]):
    """Spectrograms in columns, with curves under each (e.g. window error over time).

    Args:
        specs: one (T, bins) array per column.
        curves: tidy frame with ``column`` (index into specs), ``row`` (curve name), ``x``, ``y``
            and ``anomalous`` (bool, colours the line).
    """
    plt = _plt()
    rows = list(dict.fromkeys(curves["row"]))
    fig, axes = plt.subplots(1 + len(rows), len(specs), figsize=(FULL, 2.2 * (1 + len(rows))), sharex="col",
                             squeeze=False, gridspec_kw={"height_ratios": [1.4] + [1] * len(rows)})
    for c, spec in enumerate(specs):
        axes[0, c].imshow(spec.T, origin="lower", aspect="auto", cmap="magma")
        axes[0, c].set(title=titles[c], ylabel="mel band")
        for r, name in enumerate(rows, start=1):
            g = curves[(curves["column"] == c) & (curves["row"] == name)]
            colour = "tab:red" if g["anomalous"].any() else "tab:blue"
            axes[r, c].plot(g["x"], g["y"], lw=0.9, color=colour)
            axes[r, c].axhline(g["y"].mean(), color="k", lw=0.8, ls="--")
            axes[r, c].set(ylabel=name)
        axes[-1, c].set_xlabel("frame")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------ curves

def loss_curves(history: pd.DataFrame, panel: str = "method", series: str = "unit", log: bool = True,
                ncols: int = 3, title: str = "{}"):
    """Loss per epoch: one panel per ``panel`` value, one line per (``series``, ``part``).

    Args:
        history: tidy frame with ``epoch``, ``loss``, ``part`` (train / validation, or
            discriminator / generator) and the ``panel`` and ``series`` columns.
    """
    panels = list(dict.fromkeys(history[panel]))
    fig, axes = _grid(len(panels), ncols, height=3.0)
    styles = {"validation": "--", "generator": "-", "discriminator": ":"}
    for ax, p in zip(axes, panels):
        g = history[history[panel] == p]
        for (s, part), h in g.groupby([series, "part"], sort=False):
            ax.plot(h["epoch"], h["loss"], ls=styles.get(part, "-"), marker="o", ms=2.5, lw=1, label=f"{s} {part}")
        ax.set(title=title.format(p), xlabel="epoch", ylabel="loss")
        if log and (g["loss"] > 0).all():
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def score_histograms(scores: pd.DataFrame, panel: str = "method", xlabel: str = "anomaly score", ncols: int = 3,
                     score: str = "score", bins: int = 40, thresholds: dict | None = None):
    """Histograms of normal and anomalous clips' scores, one panel per ``panel`` value;
    ``thresholds`` ({label: value}) are drawn as vertical lines on every panel (the paper 002
    Figure 8 view: where a threshold cuts the two distributions)."""
    panels = list(dict.fromkeys(scores[panel]))
    fig, axes = _grid(len(panels), ncols, height=3.0)
    for ax, p in zip(axes, panels):
        g = scores[scores[panel] == p]
        edges = np.histogram_bin_edges(g[score], bins)
        ax.hist(g[score][g["label"] == 0], edges, alpha=0.6, label="normal", color="tab:blue")
        ax.hist(g[score][g["label"] == 1], edges, alpha=0.6, label="anomalous", color="tab:red")
        for (name, t), ls in zip((thresholds or {}).items(), ("-", "--", ":", "-.")):
            ax.axvline(t, color="k", ls=ls, lw=1.2, label=f"{name}: {t:.3g}")
        ax.set(title=str(p), xlabel=xlabel, ylabel="clips")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def roc_axes(ax, y_true, y_score, label: str, max_fpr: float = 0.1, shade: bool = True):
    """Draw one ROC curve; shade the FPR <= max_fpr strip the pAUCs integrate over."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y_true, y_score)
    ax.plot(fpr, tpr, label=label)
    if shade:
        ax.axvspan(0, max_fpr, color="0.9", zorder=0)
    ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01))
    return ax


def roc_panels(scores: pd.DataFrame, panel: str = "method", curve: str = "unit", points: pd.DataFrame | None = None,
               titles: dict | None = None, ncols: int = 2):
    """ROC curves, one panel per ``panel`` value and one curve per ``curve`` value.

    Args:
        points: optional operating points with the ``panel`` and ``curve`` columns, ``fpr``
            and ``tpr`` (drawn as ringed markers in the curve's colour).
    """
    from .metrics import auc

    panels = list(dict.fromkeys(scores[panel]))
    fig, axes = _grid(len(panels), ncols, height=4.2)
    for ax, p in zip(axes, panels):
        g = scores[scores[panel] == p]
        for j, (c, gc) in enumerate(g.groupby(curve, sort=True)):
            roc_axes(ax, gc["label"], gc["score"], label=f"{c} (AUC {auc(gc['label'], gc['score']):.3f})", shade=j == 0)
            if points is not None:
                pt = points[(points[panel] == p) & (points[curve] == c)]
                ax.plot(pt["fpr"], pt["tpr"], "o", color=ax.lines[-2].get_color(), ms=7, mec="k")
        ax.set_title((titles or {}).get(p, str(p)), fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def pr_roc(y, probas: dict[str, np.ndarray], labels: dict[str, str] | None = None):
    """ROC and precision-recall curves of several models' probabilities on the same clips."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(FULL * 0.8, 4))
    for name, p in probas.items():
        fpr, tpr, _ = roc_curve(y, p)
        prec, rec, _ = precision_recall_curve(y, p)
        lab = (labels or {}).get(name, name)
        axes[0].plot(fpr, tpr, label=lab)
        axes[1].plot(rec, prec, label=lab)
    axes[0].plot([0, 1], [0, 1], "k:", lw=0.8)
    axes[0].set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    axes[1].set(xlabel="recall", ylabel="precision", title="precision-recall")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def confusion_matrices(matrices: dict[str, np.ndarray]):
    """2 x 2 confusion matrices (rows true, columns predicted), one panel each."""
    fig, axes = _grid(len(matrices), len(matrices), width=4.2 * len(matrices), height=3.8)
    for ax, (title, cm) in zip(axes, matrices.items()):
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=12)
        ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["normal", "anomaly"], yticklabels=["normal", "anomaly"],
               xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    return fig


def lines(frame: pd.DataFrame, x: str, y: str, series: str, panel: str | None = None, reference: pd.DataFrame | None = None,
          ylabel: str = "", xlabel: str = "", ylim=None, ncols: int = 2, vlines: dict | None = None):
    """Line plots: one panel per ``panel`` value, one line per ``series`` value.

    Args:
        reference: optional frame with ``panel``/``series`` columns and ``y``: dotted horizontal
            lines in the series' colour (e.g. the unfiltered AUC in a filter sweep).
        vlines: {label: x} vertical markers.
    """
    panels = list(dict.fromkeys(frame[panel])) if panel else [None]
    fig, axes = _grid(len(panels), ncols, height=3.2)
    for ax, p in zip(axes, panels):
        g = frame if p is None else frame[frame[panel] == p]
        for s, gs in g.groupby(series, sort=False):
            ax.plot(gs[x], gs[y], "o-", ms=3, label=str(s))
            if reference is not None:
                r = reference[(reference[series] == s) & ((reference[panel] == p) if panel else True)]
                if len(r):
                    ax.axhline(float(r[y].iloc[0]), ls=":", lw=0.8, color=ax.lines[-1].get_color())
        for lab, xv in (vlines or {}).items():
            ax.axvline(xv, color="0.4", ls="--", lw=0.8, label=lab)
        ax.set(title="" if p is None else str(p), xlabel=xlabel or x, ylabel=ylabel or y)
        if ylim:
            ax.set_ylim(*ylim)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------ comparisons

def grouped_bars(frame: pd.DataFrame, group: str, series: str, value: str = "value", low: str | None = "ci_low",
                 high: str | None = "ci_high", panel: str | None = None, ylabel: str = "", ylim=(0, 1.02),
                 chance: float | None = 0.5, ncols: int = 2, err: str | None = None):
    """Grouped bars with error bars: x = ``group``, one bar per ``series``, one panel per ``panel``.

    Error bars span [low, high] (a CI), or +- the column ``err`` (e.g. a seed std) when given.
    """
    panels = list(dict.fromkeys(frame[panel])) if panel else [None]
    fig, axes = _grid(len(panels), ncols, height=3.8)
    for ax, p in zip(axes, panels):
        g = frame if p is None else frame[frame[panel] == p]
        groups = list(dict.fromkeys(g[group]))
        ser = list(dict.fromkeys(g[series]))
        width = 0.8 / max(len(ser), 1)
        for j, s in enumerate(ser):
            gs = g[g[series] == s].set_index(group).reindex(groups)
            if err:
                yerr = gs[err].fillna(0).to_numpy()
            elif low and high:
                yerr = np.vstack([gs[value] - gs[low], gs[high] - gs[value]])
                yerr = np.where(np.isfinite(yerr), np.abs(yerr), 0)
            else:
                yerr = None
            ax.bar(np.arange(len(groups)) + (j - (len(ser) - 1) / 2) * width, gs[value], width, yerr=yerr, capsize=2,
                   label=str(s))
        if chance is not None:
            ax.axhline(chance, color="0.5", lw=0.8, ls="--")
        ax.set_xticks(range(len(groups)), [str(x) for x in groups], rotation=15 if len(groups) > 4 else 0)
        ax.set(title="" if p is None else str(p), ylabel=ylabel or value, ylim=ylim)
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def interval_dots(frame: pd.DataFrame, y: str, value: str = "value", low: str = "ci_low", high: str = "ci_high",
                  marker: str | None = None, xlabel: str = "", band: tuple | None = None, xlim=(0, 1),
                  reference: float | None = 0.5):
    """One row per ``y`` value: the estimate with its CI as a horizontal bar, optionally a marker
    column (e.g. chance) drawn as a tick, a shaded target band, and a dashed reference line
    (chance at 0.5 by default; 0 for differences; None: no line, e.g. where the marker column
    gives each row its own chance)."""
    plt = _plt()
    labels = list(dict.fromkeys(frame[y]))
    fig, ax = plt.subplots(figsize=(FULL * 0.75, 0.45 * len(frame) + 1.4))
    pos = {lab: i for i, lab in enumerate(labels)}
    yy = frame[y].map(pos).to_numpy(float)
    jitter = frame.groupby(y).cumcount().to_numpy() * 0.12
    err = np.vstack([frame[value] - frame[low], frame[high] - frame[value]])
    ax.errorbar(frame[value], yy + jitter, xerr=np.where(np.isfinite(err), np.abs(err), 0), fmt="o", ms=4, capsize=2)
    if marker:
        ax.scatter(frame[marker], yy, color="k", marker="|", s=200, label=marker, zorder=3)
        ax.legend(fontsize=8, loc="lower right")
    if band:
        ax.axvspan(*band, color="tab:green", alpha=0.08)
    if reference is not None:
        ax.axvline(reference, color="0.5", ls="--", lw=0.8)
    ax.set(yticks=range(len(labels)), yticklabels=labels, xlabel=xlabel or value, xlim=xlim)
    fig.tight_layout()
    return fig


def seed_dots(metrics: pd.DataFrame, method: str = "method", unit: str = "unit", value: str = "auc"):
    """One dot per (method, unit, seed): how much of a difference is initialisation."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(FULL * 0.7, 3.2))
    names = list(dict.fromkeys(metrics[method]))
    units = sorted(metrics[unit].unique())
    for i, name in enumerate(names):
        for j, u in enumerate(units):
            v = metrics[(metrics[method] == name) & (metrics[unit] == u)][value]
            ax.scatter(np.full(len(v), i + (j - (len(units) - 1) / 2) * 0.15), v, s=18, color=f"C{j}",
                       label=f"{unit} {u}" if i == 0 else None)
    ax.set(xticks=range(len(names)), xticklabels=names, ylabel=value.upper(), title="per seed (each dot one seed)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def scatter_panels(frame: pd.DataFrame, x: str, y: str, panel: str, hue: str = "label",
                   names: dict | None = None, ncols: int = 3):
    """2-D scatter plots (PCA, t-SNE), one panel per ``panel`` value, coloured by ``hue``."""
    panels = list(dict.fromkeys(frame[panel]))
    fig, axes = _grid(len(panels), ncols, height=3.6)
    names = names or {0: "normal", 1: "anomalous"}
    for ax, p in zip(axes, panels):
        g = frame[frame[panel] == p]
        for h, gh in g.groupby(hue):
            ax.scatter(gh[x], gh[y], s=9, alpha=0.7, label=names.get(h, str(h)),
                       color={0: "tab:blue", 1: "tab:red"}.get(h))
        ax.set(title=str(p), xlabel=x, ylabel=y)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def heatmap(frame: pd.DataFrame, xlabels=None, title: str = "", xlabel: str = "", cmap: str = "viridis"):
    """A labelled heatmap of a frame (index = rows, columns = columns)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(FULL * 0.8, 0.5 * len(frame) + 1.6))
    im = ax.imshow(frame.to_numpy(float), aspect="auto", cmap=cmap)
    ax.set_yticks(range(len(frame)), [" / ".join(map(str, i)) if isinstance(i, tuple) else str(i) for i in frame.index])
    ax.set_xticks(range(frame.shape[1]), xlabels if xlabels is not None else [str(c) for c in frame.columns], rotation=30)
    ax.set(title=title, xlabel=xlabel)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return fig


def bars(series: pd.Series, err: pd.Series | None = None, ylabel: str = "", title: str = ""):
    """Plain bars of one series (e.g. spectral centroid per machine, ± spread)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(FULL * 0.55, 3.2))
    ax.bar([str(i) for i in series.index], series.to_numpy(), yerr=None if err is None else err.to_numpy(), capsize=4)
    ax.set(ylabel=ylabel, title=title)
    fig.tight_layout()
    return fig
