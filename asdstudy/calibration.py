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


def baseline_makers(epochs: int, seed: int = 0, jobs: int = 1) -> dict:
    from .models.autoencoders import AEConfig, AutoencoderDetector

    return {"DCASE baseline": lambda s: AutoencoderDetector(AEConfig(kind="baseline", n_mels=128, n_frames=5,
                                                                    epochs=epochs, batch_size=512, seed=s, jobs=jobs))}


def baseline_on_twin(table: pd.DataFrame, epochs: int, seed: int = 0, n_boot: int = 1000, jobs: int = 1,
                     progress: bool = False) -> dict:
    """Train the baseline per machine type (official recipe, ``epochs`` epochs) on ``table``'s
    training normals and score every id's test clips.

    Returns:
        dict with ``per_id`` (AUC, pAUC per machine and id), ``means`` (mean over ids per machine
        type and metric, with its CI), ``scores`` and ``history`` (each machine type's loss curves).
    """
    from .experiments import protocol as P
    from .models.base import run_methods

    if table.empty:
        raise ASDStudyError("the calibration needs a DCASE 2020-layout clip table; this one is empty.")
    run = run_methods(baseline_makers(epochs, seed, jobs), table, seeds=(seed,), n_boot=n_boot, holdout_fraction=0.0,
                      progress=progress, units={"DCASE baseline": "machine"}, thresholded=[])
    means = P.mean_over_units(run["scores"], by=("method", "machine"), metrics=("auc", "pauc_mcclish"),
                              n_boot=n_boot, seed=seed)
    history = {m: det.history_ for (_, m, _), det in run["detectors"].items()}
    return {"per_id": run["metrics"], "means": means, "scores": run["scores"], "history": history}


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
