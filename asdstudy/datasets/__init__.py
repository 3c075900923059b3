"""Datasets as clip tables: the synthetic factory, DCASE 2020-2023 Task 2 and MIMII.

:func:`clip_table` turns a folder into the study's one clip table (columns in
:data:`COLUMNS`), recognising the layout; the synthetic factory's folders are read by the same
DCASE readers, plus their ground truth.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .dcase import read_dcase2020, read_dcase2021
from .mimii import dcase_like_split, read_mimii
from .table import COLUMNS, DatasetError, make_table, unit_column

__all__ = ["COLUMNS", "DatasetError", "clip_table", "read_dcase2020", "read_dcase2021",
           "read_mimii", "dcase_like_split", "make_table", "unit_column", "detect_layout", "layout_counts"]


#: The most stray files (share of all clips matching some layout) a folder may hold in another
#: layout before detection refuses it as mixed.
STRAY_SHARE = 0.05


def layout_counts(root: str | Path) -> dict[str, list[str]]:
    """For every layout, the WAV files under ``root`` whose name and place match it."""
    import re

    from .dcase import RE_2020, RE_2021

    found: dict[str, list[str]] = {"dcase2020": [], "dcase2021": [], "mimii": []}
    for wav in Path(root).rglob("*.wav"):
        name, parent = wav.name, wav.parent.name
        if RE_2021.match(name):
            found["dcase2021"].append(str(wav))
        elif RE_2020.match(name) and parent in ("train", "test"):
            found["dcase2020"].append(str(wav))
        elif parent in ("normal", "abnormal") and wav.parent.parent.name.startswith("id_") \
                and re.fullmatch(r"\d+\.wav", name):
            found["mimii"].append(str(wav))
    return found


def detect_layout(root: str | Path) -> str:
    """The layout that explains a folder: dcase2020, dcase2021 or mimii.

    Every WAV is counted against every layout and the one most files match wins; a few stray
    files of another layout (at most :data:`STRAY_SHARE` of them) do not change the answer
    (the reader then reports them as skipped), but a folder that mixes layouts is refused.

    Raises:
        DatasetError: missing folder, no clips, or a mixed folder (pass ``layout=`` /
            ``--layout`` to read one layout of it).
    """
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{root}: dataset folder not found. Generate the synthetic set with "
                           "`asdstudy data generate` or download a real one with "
                           "`asdstudy data download`.")
    found = {k: v for k, v in layout_counts(root).items() if v}
    if not found:
        n = sum(1 for _ in root.rglob("*.wav"))
        raise DatasetError(f"{root}: no audio clips found in a known layout ({n} WAV file(s) in all); "
                           "is this the right folder?")
    ranked = sorted(found, key=lambda k: -len(found[k]))
    best, total = ranked[0], sum(len(v) for v in found.values())
    others = {k: found[k] for k in ranked[1:]}
    if others and sum(len(v) for v in others.values()) > STRAY_SHARE * total:
        desc = ", ".join(f"{len(found[k])} {k}" for k in ranked)
        example = next(iter(others.values()))[0]
        raise DatasetError(f"{root}: mixes dataset layouts ({desc}; e.g. {example}). Point at one dataset's "
                           f"folder, or pass --layout {best} (layout='{best}') to read only that layout.")
    return best


def _skipped_report(root: Path, df: pd.DataFrame, layout: str) -> None:
    """Warn (and record in ``df.attrs['skipped']``) the WAV files the reader did not use."""
    import warnings

    used = set(df["path"])
    skipped = sorted(str(w) for w in root.rglob("*.wav") if str(w) not in used and "ground_truth" not in w.parts)
    df.attrs["skipped"] = skipped
    if skipped:
        names = ", ".join(Path(s).relative_to(root).as_posix() for s in skipped[:3])
        warnings.warn(f"{root}: {len(skipped)} WAV file(s) do not fit the {layout} layout and were skipped "
                      f"(e.g. {names}).", stacklevel=3)
    if (root / ".unpack").exists() or (root.parent / ".unpack").exists():
        warnings.warn(f"{root}: an archive was being unpacked here when it stopped (.unpack exists): the set "
                      "may be incomplete. Run the same `asdstudy data download` again to finish it.", stacklevel=3)


def clip_table(root: str | Path, layout: str = "auto", machines=None) -> pd.DataFrame:
    """Read a dataset folder into a clip table.

    Args:
        root: the folder (e.g. ``data/synthetic/dcase2020`` or an unpacked DCASE archive root).
        layout: "auto", "dcase2020", "dcase2021" (also 2022/2023) or "mimii".
        machines: keep only these machine types.

    Returns:
        DataFrame with the columns of :data:`COLUMNS`. For synthetic data the ground-truth
        columns (anomaly_kind, severity, band_lo, band_hi, snr_db, speed) are added.
    """
    root = Path(root).resolve()
    layout = detect_layout(root) if layout == "auto" else layout
    readers = {"dcase2020": read_dcase2020, "dcase2021": read_dcase2021, "dcase2022": read_dcase2021,
               "dcase2023": read_dcase2021, "mimii": read_mimii}
    if layout not in readers:
        raise DatasetError(f"unknown layout {layout!r}; choose from auto, {', '.join(readers)}")
    df = readers[layout](root)
    _skipped_report(root, df, layout)
    gt = root / "ground_truth"
    if gt.is_dir():
        from .synthetic import ground_truth

        truth = ground_truth(root.parent, root.name).drop(
            columns=["relpath", "machine", "unit", "domain", "split", "label"])
        df["dataset"] = f"synthetic-{root.name}"
        attrs = df.attrs
        df = df.merge(truth, on="path", how="left")
        df.attrs = attrs
    if machines:
        machines = [machines] if isinstance(machines, str) else list(machines)
        missing = sorted(set(machines) - set(df["machine"]))
        if missing:
            found = sorted(df["machine"].unique())
            raise DatasetError(f"{root}: no clips for machine type(s) {', '.join(missing)}; found {', '.join(found)}. "
                               "Download the missing ones (`asdstudy data download ... -m TYPE`) or run a chapter on "
                               f"what is there: `-p machines \"[{', '.join(found)}]\"`.")
        attrs = df.attrs
        df = df[df["machine"].isin(machines)].reset_index(drop=True)
        df.attrs = attrs
    return df
