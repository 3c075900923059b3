"""A labelled (supervised) set drawn from a one-class dataset, for paper 000's protocol.

Paper 000's own data (622 labelled development clips, 26.5 % abnormal, and 156 unlabelled test
clips) is not public. :func:`labelled_set` draws a set of the same sizes and class balance from
the labelled clips of one machine type of a DCASE-style clip table: the anomalies from the test
split, the normals from the test split first and then from the training split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .table import DatasetError

#: Paper 000's sizes: 622 development clips (457 normal / 165 abnormal) and 156 test clips.
PAPER_SIZES = {"n_dev": 622, "n_test": 156, "anomaly_fraction": 0.265}


def labelled_set(table: pd.DataFrame, machine: str, n_dev: int = 622, n_test: int = 156,
                 anomaly_fraction: float = 0.265, seed: int = 0) -> pd.DataFrame:
    """``n_dev + n_test`` labelled clips of ``machine`` with the given anomaly fraction.

    Returns the chosen rows of ``table`` with ``split`` re-assigned: ``train`` (the development
    clips, ``n_dev``) and ``test`` (held out, ``n_test``), both stratified by label; the
    dataset split each clip came from is kept in ``source_split``. Every anomaly comes from a
    test split, so normals are taken from the test splits first: a normal from a training split
    could let a supervised model learn "which split" instead of "which condition" (see
    :func:`asdstudy.experiments.ensemble.split_probe`).

    Raises:
        DatasetError: the machine type is missing or has too few anomalous / normal clips.
    """
    from sklearn.model_selection import train_test_split

    t = table[(table["machine"] == machine) & table["label"].notna()]
    if t.empty:
        raise DatasetError(f"no labelled clips of machine type {machine!r} in the table; found "
                           f"{', '.join(sorted(table['machine'].unique()))}.")
    n = n_dev + n_test
    n_anom = int(round(n * anomaly_fraction))
    anomalies = t[t["label"] == 1]
    normals = pd.concat([t[(t["label"] == 0) & (t["split"] == "test")], t[(t["label"] == 0) & (t["split"] == "train")]])
    if len(anomalies) < n_anom or len(normals) < n - n_anom:
        raise DatasetError(f"{machine}: need {n_anom} anomalous and {n - n_anom} normal labelled clips, found "
                           f"{len(anomalies)} and {len(normals)} under the data root. Paper 000's labelled set is {n_dev} development + "
                           f"{n_test} held-out clips of one machine type: download that type's whole development set "
                           f"(`asdstudy data download dcase2020-dev -m {machine} ...`), or choose a type that has them "
                           "with `-p machines`.")
    rng = np.random.default_rng(seed)
    a = anomalies.iloc[np.sort(rng.choice(len(anomalies), n_anom, replace=False))]
    n_norm_test = int((normals["split"] == "test").sum())
    need = n - n_anom
    # test-split normals first (as many as there are), then training normals
    first = normals.iloc[:n_norm_test]
    take_first = first.iloc[np.sort(rng.choice(len(first), min(need, len(first)), replace=False))]
    rest = normals.iloc[n_norm_test:]
    take_rest = rest.iloc[np.sort(rng.choice(len(rest), need - len(take_first), replace=False))]
    out = pd.concat([a, take_first, take_rest]).reset_index(drop=True)
    out["source_split"] = out["split"]  # where each clip came from in the dataset (the mix is reported)
    dev, test = train_test_split(np.arange(len(out)), test_size=n_test, stratify=out["label"].astype(int),
                                 random_state=seed)
    out["split"] = "train"
    out.loc[test, "split"] = "test"
    return out
