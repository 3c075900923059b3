"""Figures the chapters share: clip galleries, spectrograms, ROC curves."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .audio import load
from .features import LogMelParams, logmel


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
    import matplotlib.pyplot as plt

    n = len(picks)
    fig, axes = plt.subplots(n, 2, figsize=(11, 1.9 * n), squeeze=False,
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
