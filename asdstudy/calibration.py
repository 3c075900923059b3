"""The synthetic twin against the real data: does the factory make the DCASE 2020 baseline as
hard as the real recordings do?

The check trains the DCASE 2020 Task 2 baseline autoencoder by its official recipe (one model
per machine type on the training normals of all its ids, 128 mels, 5 frames, batch 512; the
epochs are the profile's budget) on the factory's DCASE 2020-layout set, scores every id's test
clips, and sets the mean over ids (with its bootstrap CI) beside the baseline's published
development results per machine type (the baseline README, in the claims file). The twin is
*calibrated* on a machine type when both its mean AUC and its mean pAUC lie within
:data:`BAND` of the published ones; the spread between ids is shown beside the real one
(published per id only for slider: 0.96 / 0.79 / 0.95 / 0.70).

``python scripts/calibrate.py`` prints this table and exits 1 when a machine type lies outside
the band; the data chapter shows it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import ASDStudyError

#: The largest distance of the twin's baseline mean AUC / pAUC from the published one.
BAND = 0.05

#: The baseline README's units for the per-type means: slider's figure averages its four ids.
_MEAN_UNITS = ("mean", "mean(00,02,04,06)")


def published() -> pd.DataFrame:
    """The baseline's published development AUC and pAUC per machine type, and per id where the
    claims file has them (slider), from ``asdstudy/data/claims.csv``."""
    from .results import load_claims

    c = load_claims()
    c = c[(c["paper"] == "dcase2020-baseline") & (c["method"] == "DCASE baseline") & c["metric"].isin(["auc", "pauc"])
          & c["value"].notna()]
    means = c[c["unit"].isin(_MEAN_UNITS)].pivot_table(index="machine", columns="metric", values="value")
    ids = c[~c["unit"].isin(_MEAN_UNITS) & ~c["unit"].str.startswith("mean")]
    spread = ids[ids["metric"] == "auc"].groupby("machine")["value"].agg(lambda v: float(v.max() - v.min()))
    return means.assign(id_spread=spread).rename(columns={"auc": "published AUC", "pauc": "published pAUC",
                                                          "id_spread": "published id spread"})


def baseline_makers(epochs: int, seed: int = 0, jobs: int = 1, converge: bool = True) -> dict:
    """The DCASE 2020 baseline by its official recipe (128 mels, 5 frames, batch 512, 10 %
    validation split); with ``converge`` it stops once its validation loss is flat
    (:func:`asdstudy.training.flatness`) and ``epochs`` is the cap."""
    from .models.autoencoders import AutoencoderDetector, dcase_baseline

    return {"DCASE baseline": lambda s: AutoencoderDetector(dcase_baseline(epochs, s, jobs, converge))}


def baseline_on_twin(table: pd.DataFrame, epochs: int, seed: int = 0, n_boot: int = 1000, jobs: int = 1,
                     progress: bool = False, converge: bool = True) -> dict:
    """Train the baseline per machine type (official recipe; until its validation loss is flat,
    at most ``epochs`` epochs, or exactly ``epochs`` without ``converge``) on ``table``'s
    training normals and score every id's test clips.

    Returns:
        dict with ``per_id`` (AUC, pAUC per machine and id), ``means`` (mean over ids per machine
        type and metric, with its CI), ``scores``, ``history`` (each machine type's loss curves)
        and ``detectors`` (the trained models, as :func:`~asdstudy.models.base.run_methods` keys them).
    """
    from .experiments import protocol as P
    from .models.base import run_methods

    if table.empty:
        raise ASDStudyError("the calibration needs a DCASE 2020-layout clip table; this one is empty.")
    run = run_methods(baseline_makers(epochs, seed, jobs, converge), table, seeds=(seed,), n_boot=n_boot, holdout_fraction=0.0,
                      progress=progress, units={"DCASE baseline": "machine"}, thresholded=[], n_jobs=jobs)
    means = P.mean_over_units(run["scores"], by=("method", "machine"), metrics=("auc", "pauc_mcclish"),
                              n_boot=n_boot, seed=seed)
    history = {m: det.history_ for (_, m, _), det in run["detectors"].items()}
    return {"per_id": run["metrics"], "means": means, "scores": run["scores"], "history": history,
            "detectors": run["detectors"]}


def calibration_table(means: pd.DataFrame, per_id: pd.DataFrame, band: float = BAND) -> pd.DataFrame:
    """Per machine type: the twin's baseline mean AUC and pAUC with their 95 % CIs (``low``,
    ``high``), the published ones,
    their differences, the spread between ids on both, and whether the type is calibrated."""
    pub = published()
    wide = {}
    for metric, name in (("auc", "AUC"), ("pauc_mcclish", "pAUC")):
        m = means[means["metric"] == metric].set_index("machine")
        wide[f"twin {name}"] = m["value"]
        wide[f"twin {name} low"], wide[f"twin {name} high"] = m["ci_low"], m["ci_high"]
    t = pd.DataFrame(wide)
    t["twin id spread"] = per_id.groupby("machine")["auc"].agg(lambda v: float(v.max() - v.min()))
    t = t.join(pub, how="left")
    t["AUC difference"] = t["twin AUC"] - t["published AUC"]
    t["pAUC difference"] = t["twin pAUC"] - t["published pAUC"]
    inside = (t["AUC difference"].abs() <= band) & (t["pAUC difference"].abs() <= band)
    t["calibrated"] = np.where(t["published AUC"].isna(), "no published figure",
                               np.where(inside, "yes", "no"))
    cols = ["twin AUC", "twin AUC low", "twin AUC high", "published AUC", "AUC difference", "twin pAUC",
            "twin pAUC low", "twin pAUC high",
            "published pAUC", "pAUC difference", "twin id spread", "published id spread", "calibrated"]
    return t[cols]


def verdict(table: pd.DataFrame, band: float = BAND) -> str:
    """One sentence: how many machine types the twin matches within the band, and which miss."""
    judged = table[table["calibrated"] != "no published figure"]
    miss = judged[judged["calibrated"] == "no"]
    if judged.empty:
        return "No machine type of this set has a published baseline figure to calibrate against."
    if miss.empty:
        return (f"On all {len(judged)} machine types the baseline's mean AUC and pAUC on the twin lie within "
                f"+-{band:.2f} of its published development results.")
    words = [f"{m} (AUC {r['AUC difference']:+.3f}, pAUC {r['pAUC difference']:+.3f})" for m, r in miss.iterrows()]
    return (f"The twin matches the baseline's published results within +-{band:.2f} on {len(judged) - len(miss)} of "
            f"{len(judged)} machine types; it misses on {', '.join(words)} (twin minus published): on those types "
            "the factory is not yet as hard, or not as easy, as the real recordings, and the chapters' numbers "
            "there say less about the papers' data.")


# --------------------------------------------------------------------------------------------
# the search: anomaly levels per machine type that bring the baseline onto its published figures
# --------------------------------------------------------------------------------------------

#: The widths the search tries (see :class:`asdstudy.datasets.synthetic.Levels`).
WIDTHS = (0.05, 0.2, 0.6)
#: The offsets the search bisects within (dB); an AUC target outside this range is reported.
OFFSET_RANGE = (-25.0, 25.0)
#: Nudges (dB) tried around each width's bisected offset.
NUDGES_DB = (-1.5, -0.75, 0.75)


def _anomaly_specs(table: pd.DataFrame, machine: str, sizes, seed: int) -> list:
    """The generator specs of ``table``'s anomalous test clips of one machine type, in table order."""
    from .datasets import synthetic as syn

    by_rel = {s.relpath: s for s in syn.plan("dcase2020", machine, sizes, seed) if s.label == 1 and s.split == "test"}
    rows = table[(table["machine"] == machine) & (table["split"] == "test") & (table["label"] == 1)]
    specs = []
    for path in rows["path"]:
        rel = "dev_data/" + str(path).split("/dev_data/", 1)[-1]
        if rel not in by_rel:
            raise ASDStudyError(f"{path}: not a clip of the factory's plan for {machine} (seed {seed}); the search "
                                "needs the synthetic set it is calibrating, generated with the same seed and sizes.")
        specs.append(by_rel[rel])
    return specs


def check_parts_match(table: pd.DataFrame, machine: str, spec, parts: dict) -> None:
    """Refuse to search on a set the generator parts do not rebuild (another seed, another
    generator version, or edited files): the first anomalous clip, composed at the current levels,
    must equal its file to 16-bit rounding."""
    from .audio import load
    from .datasets import synthetic as syn

    path = next(p for p in table["path"] if str(p).endswith(spec.relpath))
    on_disk, _ = load(path)
    made = syn.compose(parts)[0]
    if on_disk.shape != made.shape or np.abs(on_disk - made).max() > 3 / 32768:
        raise ASDStudyError(f"{path}: the generator's parts for this clip (seed {spec.seed}) do not rebuild the file; "
                            f"the {machine} set was generated with another seed or generator version. Regenerate it "
                            "(asdstudy data generate) or pass the seed it was made with.")


class Remixer:
    """Re-mix one machine type's anomalous clips at any :class:`~asdstudy.datasets.synthetic.Levels`
    and return their log-mel spectrograms, fast: the STFT is linear, so each part's STFT is taken
    once and a candidate mix costs a weighted sum, a mel projection and a logarithm per clip.
    The weights are :func:`~asdstudy.datasets.synthetic.mix`'s, the generator's own mixing rule;
    :func:`logmel` of the composed clip agrees to float32 rounding (tested)."""

    def __init__(self, parts: list, params):
        import librosa

        from .features.logmel import _mel_basis

        self.params = params
        self.parts = parts
        self.basis = _mel_basis(params).astype(np.float32)
        self.stft = [librosa.stft(np.stack([p["mach"], p["anom"], p["noise"]]).astype(np.float32),
                                  n_fft=params.n_fft, hop_length=params.hop_length) for p in parts]

    def spectrograms(self, levels) -> list:
        from .datasets import synthetic as syn
        from .features.logmel import _to_db

        out = []
        for p, S in zip(self.parts, self.stft):
            w = syn.mix(p, levels)[1]
            X = w[0] * S[0] + w[1] * S[1] + w[2] * S[2]
            power = X.real ** 2 + X.imag ** 2 if self.params.power == 2 else np.abs(X) ** self.params.power
            out.append(_to_db(self.basis @ power, self.params).T.astype(np.float32))
        return out


def level_metrics(detector, remixer: Remixer, units: list, normal_scores: pd.DataFrame, levels) -> dict:
    """Mean over ids of the baseline's AUC and pAUC when the anomalous clips (``remixer``, their
    ``units``) are mixed at ``levels``; ``normal_scores`` holds the test normals' ``unit`` and
    ``score`` (they do not depend on the levels)."""
    from .metrics import auc, pauc_mcclish

    s_anom = np.asarray(detector.score_spectrograms(remixer.spectrograms(levels)), dtype=float)
    units = np.asarray(units)
    a, pa = [], []
    for u, g in normal_scores.groupby("unit"):
        s = np.concatenate([g["score"].to_numpy(float), s_anom[units == u]])
        y = np.r_[np.zeros(len(g)), np.ones(int((units == u).sum()))]
        a.append(auc(y, s))
        pa.append(pauc_mcclish(y, s))
    return {"auc": float(np.mean(a)), "pauc": float(np.mean(pa))}


def search_levels(table: pd.DataFrame, run: dict, sizes, seed: int = 0, machines=None,
                  widths=WIDTHS, steps: int = 7, nudges=NUDGES_DB, progress: bool = False,
                  more: tuple = ()) -> pd.DataFrame:
    """Per machine type with a published figure: for each width, bisect the offset until the
    baseline's mean AUC meets the published one, try small nudges of that offset (a slightly
    lower or higher AUC can buy a pAUC nearer its target), and keep the setting whose larger
    distance from the two published figures is smallest.

    ``run`` is :func:`baseline_on_twin`'s result on ``table`` (the trained per-type models and
    the test normals' scores); the anomalous clips are re-mixed from their generator parts
    (:func:`asdstudy.datasets.synthetic.clip_parts`), nothing is retrained. The bisection assumes
    that the mean AUC rises with the offset (louder faults); where it does not, the reached AUC
    shows it.

    ``more`` holds further ``(table, run, seed)`` twins (other seeds of the factory, each with its
    own trained baseline): the search then matches the *mean over twins* of the mean-over-ids AUC
    and pAUC, so the levels fit the factory rather than one seed's machine instances.

    Returns:
        One row per machine type: ``offset_db``, ``width``, the reached ``auc`` and ``pauc``
        (means over the twins), the published ones, the larger of the two distances (``worst``)
        and ``seeds``.
    """
    from tqdm.auto import tqdm

    from .datasets import synthetic as syn

    pub = published()
    twins = [(table, run, seed)] + list(more)
    machines = [m for m in (machines or sorted(run["scores"]["machine"].unique())) if m in pub.index]
    rows = []
    for machine in tqdm(machines, desc="machine types", disable=not progress):
        setups = []
        for t, r, sd in twins:
            det = next(d for (_, m, _), d in r["detectors"].items() if m == machine)
            specs = _anomaly_specs(t, machine, sizes, sd)
            parts = [syn.clip_parts(s) for s in specs]
            check_parts_match(t, machine, specs[0], parts[0])
            normals = r["scores"][(r["scores"]["machine"] == machine) & (r["scores"]["label"] == 0)]
            setups.append((det, Remixer(parts, det.input_params), [s.unit for s in specs], normals))
            del parts
        target_auc, target_pauc = pub.loc[machine, "published AUC"], pub.loc[machine, "published pAUC"]

        def measure(offset, width):
            ms = [level_metrics(det, rem, units, normals, syn.Levels(offset, width)) for det, rem, units, normals in setups]
            a, pa = float(np.mean([m["auc"] for m in ms])), float(np.mean([m["pauc"] for m in ms]))
            return {"machine": machine, "offset_db": round(float(offset), 2), "width": width, "auc": a,
                    "pauc": pa, "published AUC": target_auc, "published pAUC": target_pauc,
                    "worst": max(abs(a - target_auc), abs(pa - target_pauc)), "seeds": len(setups)}

        best = None
        for width in widths:
            lo, hi = OFFSET_RANGE
            for _ in range(steps):
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if measure(mid, width)["auc"] < target_auc else (lo, mid)
            at = round((lo + hi) / 2, 2)
            for cand in [measure(at, width)] + [measure(at + d, width) for d in nudges]:
                if progress:
                    print(f"  {machine} width {width}: offset {cand['offset_db']:+.2f} dB -> AUC {cand['auc']:.3f}, "
                          f"pAUC {cand['pauc']:.3f}")
                if best is None or cand["worst"] < best["worst"]:
                    best = cand
        rows.append(best)
    return pd.DataFrame(rows).set_index("machine")
