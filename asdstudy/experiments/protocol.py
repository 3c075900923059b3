"""The study's shared protocol, written once and used by every chapter experiment.

Every chapter does the same few things around its own models: load its clips for the profile
(the synthetic factory or a real dataset root), hold some clips out, evaluate per unit (machine
id or section) with bootstrap CIs, average over units (with a CI of the mean, never without),
aggregate over machine types the way its source does (DCASE 2020 arithmetic, DCASE 2021+
harmonic, paper 003's test-size weighting), write result rows and put them beside the claims.
Those steps live here so that they are tested once and no experiment module writes them again.

Layering: this module sits above :mod:`asdstudy.models`, :mod:`asdstudy.metrics` and
:mod:`asdstudy.results`, and below :mod:`asdstudy.runner`; nothing here imports the runner.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import ASDStudyError
from .. import metrics as M
from ..results import data_root, load_claims

#: The dataset label of each variant: (synthetic, real).
DATASET_LABELS = {
    "dcase2020": ("synthetic-dcase2020", "dcase2020-dev"),
    "dcase2021": ("synthetic-dcase2021", "dcase2021-dev"),
    "labelled": ("synthetic-labelled", "dcase2020-dev-labelled"),
}


# ------------------------------------------------------------------------------ parameters

@dataclass
class ChapterParams:
    """Parameters every chapter shares (``asdstudy.profiles.COMMON``).

    Subclasses add the chapter's own fields; :meth:`from_mapping` builds one from a profile's
    parameters or from a notebook's namespace (``Params.from_mapping(globals())``), taking only
    the fields it declares and checking their types, so that a bad ``-p`` value fails here with
    the parameter's name instead of deep in a cell.
    """

    profile: str = "default"
    seed: int = 0
    data_root: str = ""
    jobs: int = 2
    n_boot: int = 1000
    #: at most this many clips per machine, unit, split, condition and domain (0: all); the
    #: preflight (``asdstudy preflight``) cuts every chapter's data this way, keeping every group
    max_clips: int = 0
    #: train every model until its validation loss (training loss without a split) is flat by
    #: :func:`asdstudy.training.flatness`, each chapter's epochs being the cap; False trains
    #: exactly the given epochs (the paper profile: the papers' fixed budgets)
    converge: bool = True

    @classmethod
    def from_mapping(cls, mapping: dict) -> "ChapterParams":
        hints = typing.get_type_hints(cls)
        kw = {}
        for f in dataclasses.fields(cls):
            if f.name in mapping:
                kw[f.name] = _coerce(f.name, mapping[f.name], hints.get(f.name))
        p = cls(**kw)
        p.validate()
        return p

    @classmethod
    def from_profile(cls, chapter: str, profile: str = "default", overrides: dict | None = None,
                     **changes) -> "ChapterParams":
        """The chapter's profile parameters (``asdstudy.profiles``), with overrides."""
        from ..profiles import parameters

        p = parameters(chapter, profile, overrides)
        p.update(changes)
        return cls.from_mapping(p)

    #: parameters ending in "epochs" whose 0 means "do not train this at all" (every other
    #: epochs parameter must be at least 1)
    ZERO_SWITCHES_OFF: typing.ClassVar[tuple] = ()

    def validate(self) -> None:
        """Range checks; subclasses extend. Raises ASDStudyError naming the parameter."""
        if self.profile not in ("smoke", "default", "paper"):
            raise ASDStudyError(f"parameter 'profile' is {self.profile!r}; use smoke, default or paper.")
        for name in ("jobs", "n_boot"):
            _positive(self, name)
        if not isinstance(self.max_clips, int) or self.max_clips < 0:
            raise ASDStudyError(f"parameter 'max_clips' is {self.max_clips!r}; use 0 (all clips) or a positive cap.")
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name.endswith("epochs") and f.name not in self.ZERO_SWITCHES_OFF and isinstance(v, int) and v < 1:
                raise ASDStudyError(f"parameter {f.name!r} is {v}; it must be at least 1.")

    def data_path(self) -> Path:
        """The data root: the parameter, else ``$ASDSTUDY_DATA``, else ``<repo>/data``."""
        return data_root(self.data_root)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _positive(p, name: str) -> None:
    v = getattr(p, name)
    if not isinstance(v, (int, float)) or v <= 0:
        raise ASDStudyError(f"parameter {name!r} is {v!r}; it must be a positive number.")


def _coerce(name: str, value, hint):
    """Check a parameter's value against its annotation (int, float, str, bool, list, dict)."""
    origin = typing.get_origin(hint) or hint
    if hint is None or origin in (typing.Union,) or hint is typing.Any:
        return value
    if origin is bool:
        if isinstance(value, bool):
            return value
    elif origin is int:
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return int(value)
    elif origin is float:
        if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
            return float(value)
    elif origin is str:
        if isinstance(value, str):
            return value
    elif origin in (list, tuple):
        if isinstance(value, (list, tuple)):
            return list(value)
    elif origin is dict:
        if isinstance(value, dict):
            return dict(value)
    else:
        return value
    want = getattr(origin, "__name__", str(hint))
    raise ASDStudyError(f"parameter {name!r} is {value!r} ({type(value).__name__}); it must be {want}. "
                        f"Pass it as e.g. `-p {name} VALUE` with a value YAML reads as {want}.")


def machine_list(machines, default=None) -> list[str]:
    """``"all"`` (every synthetic machine type, or ``default``) or a list of machine types."""
    from ..datasets import synthetic as syn

    if machines == "all":
        return list(default if default is not None else syn.MACHINES)
    if isinstance(machines, str):
        return [machines]
    return list(machines)


def real_data_root(params: "ChapterParams") -> Path:
    """The data root of a paper-profile run, refusing what would mix synthetic clips into a
    real-data verdict.

    Raises:
        ASDStudyError: no explicit root (``-p data_root`` or ``$ASDSTUDY_DATA``): ``<repo>/data``
            holds the synthetic factory, whose folders match the DCASE 2020 names; or a root
            holding the factory's ground truth or a ``synthetic`` folder.
    """
    import os

    if not params.data_root and not os.environ.get("ASDSTUDY_DATA"):
        raise ASDStudyError("the paper profile reads the real datasets: give their folder with `-p data_root DIR` "
                            "(or $ASDSTUDY_DATA). The default <repo>/data holds the synthetic factory, whose "
                            "folders match the DCASE 2020 file names and would be read as real clips.")
    root = params.data_path()
    marks = [root / "synthetic", *root.glob("ground_truth"), *root.glob("*/ground_truth"), *root.glob("*/*/ground_truth")]
    found = [m for m in marks if m.exists()]
    if found:
        raise ASDStudyError(f"data_root {root} holds the synthetic factory's clips ({found[0]}); the paper profile "
                            "needs a folder with only the real dataset (e.g. the one `asdstudy data download --dest` "
                            "filled).")
    return root


def machines_present(root, layout: str = "auto") -> list[str]:
    """The machine types a real dataset folder holds (its clip table's), sorted."""
    return list(_machines_present(str(root), layout))


@functools.lru_cache(maxsize=8)
def _machines_present(root: str, layout: str) -> tuple[str, ...]:
    from ..datasets import clip_table

    return tuple(sorted(clip_table(root, layout=layout)["machine"].unique()))


# ------------------------------------------------------------------------------------ data

@dataclass
class ChapterData:
    """A chapter's clips: the clip table, its dataset label and where it came from."""

    table: pd.DataFrame
    dataset: str
    root: Path
    synthetic: bool

    @property
    def test(self) -> pd.DataFrame:
        return self.table[(self.table["split"] == "test") & self.table["label"].notna()]

    @property
    def train(self) -> pd.DataFrame:
        return self.table[self.table["split"] == "train"]


def load_data(params: ChapterParams, machines, variant: str = "dcase2020", ids="all",
              data_seed: int = 0, progress: bool = False) -> ChapterData:
    """One call for a chapter's clips, whatever the profile.

    Every profile but ``paper`` reads the synthetic factory's set of the profile (generated
    here when missing, written once per profile and data seed; ``data_seed`` stays 0 in the
    chapters so that their ``seeds`` vary training only). The ``paper`` profile reads the real
    dataset under ``params.data_root`` in the variant's layout; the ``labelled`` variant then
    draws paper 000's labelled set from the DCASE 2020 development clips.

    Args:
        params: the chapter's parameters (profile, data_root, jobs).
        machines: machine types.
        variant: "dcase2020", "dcase2021" or "labelled".
        ids: "all" or a list of machine ids to keep.
        data_seed: the synthetic generator's seed.
    """
    from ..datasets import clip_table
    from ..datasets import synthetic as syn

    if variant not in DATASET_LABELS:
        raise ASDStudyError(f"unknown data variant {variant!r}; use {', '.join(DATASET_LABELS)}.")
    machines = list(machines)
    synthetic = params.profile != "paper"
    root = params.data_path() if synthetic else real_data_root(params)
    if synthetic:
        syn_root = syn.synthetic_root(root, params.profile, data_seed)
        syn.generate(syn_root, profile=params.profile, machines=machines, variant=variant, seed=data_seed,
                     n_jobs=params.jobs, progress=progress)
        table = clip_table(syn_root / variant, machines=machines)
        root = syn_root / variant
    elif variant == "labelled":
        from ..datasets.labelled import labelled_set

        full = clip_table(root, layout="dcase2020", machines=machines)
        sizes = {}
        if getattr(params, "max_clips", 0):  # the preflight: the paper's balance at a small size
            sizes = {"n_dev": 6 * params.max_clips, "n_test": 2 * params.max_clips}
        table = pd.concat([labelled_set(full, m, seed=getattr(params, "split_seed", 42), **sizes) for m in machines],
                          ignore_index=True)
    else:
        table = clip_table(root, layout=variant, machines=machines)
    if ids != "all":
        want = [str(i) for i in ids]
        for m in machines:
            have = set(table.loc[table["machine"] == m, "id"].dropna())
            missing = [i for i in want if i not in have]
            if missing:
                raise ASDStudyError(
                    f"parameter 'ids' asks for {m} id(s) {', '.join(want)}, but {root} holds no clips of id(s) "
                    f"{', '.join(missing)} (found: {', '.join(sorted(have)) or 'none'}). Download them, or run on what "
                    f"is there with `-p ids \"[{', '.join(sorted(have))}]\"` (the chapter's means then average those ids only).")
        table = table[table["id"].isin(want)]
    if table.empty:
        raise ASDStudyError(f"no clips of {', '.join(machines)} ({variant}) under {root}; check data_root "
                            "or run `asdstudy data download` / `asdstudy data generate` first.")
    if getattr(params, "max_clips", 0) and variant != "labelled":  # the labelled set is drawn small already
        table = cap_clips(table, params.max_clips, params.seed)
    label = DATASET_LABELS[variant][0 if synthetic else 1]
    return ChapterData(table.reset_index(drop=True), label, root, synthetic)


def cap_clips(table: pd.DataFrame, max_clips: int, seed: int = 0) -> pd.DataFrame:
    """At most ``max_clips`` clips of every (machine, id / section, split, label, domain) group,
    drawn with a seed: every group the table has keeps at least one clip, so every branch of a
    chapter still runs (the preflight's cut)."""
    keys = [k for k in ("machine", "id", "section", "split", "label", "domain") if k in table]
    shuffled = table.sample(frac=1, random_state=seed)
    return shuffled.groupby(keys, dropna=False, sort=False).head(max_clips).sort_index()


# ------------------------------------------------------------------------------- splitting

def calibration_mask(y, cal_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A stratified calibration part of one unit's labelled clips (True = calibration).

    Per class, ``round(cal_fraction * n)`` clips (at least one) are drawn without replacement
    with ``rng``; the rest form the evaluation part. Needs two clips of each class.
    """
    y = np.asarray(y, int)
    cal = np.zeros(len(y), bool)
    for cls in (0, 1):
        idx = np.flatnonzero(y == cls)
        if idx.size < 2:
            raise ASDStudyError(f"need at least two clips of class {cls} to split a unit into calibration "
                                f"and evaluation halves (found {idx.size}).")
        cal[rng.choice(idx, max(1, int(round(cal_fraction * idx.size))), replace=False)] = True
    return cal


def split_halves(test: pd.DataFrame, cal_fraction: float = 0.5, seed: int = 0,
                 by=("machine", "unit")) -> pd.Series:
    """Map each labelled test clip's path to ``"cal"`` or ``"eval"``.

    Halves are drawn per unit (``by``), stratified by label, with one seeded generator walked
    over the units in sorted order: the same clips every run.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for _, g in test.groupby(list(by), sort=True):
        cal = calibration_mask(g["label"].to_numpy(int), cal_fraction, rng)
        out.update(dict(zip(g["path"], np.where(cal, "cal", "eval"))))
    return pd.Series(out, name="half")


# ------------------------------------------------------------------------- per-unit evaluation

def per_unit_metrics(scores: pd.DataFrame, by=("method", "machine", "unit", "seed"), n_boot: int = 1000,
                     seed: int = 0) -> pd.DataFrame:
    """AUC, both pAUCs (each with a 95 % bootstrap CI), EER and counts per group of scored clips.

    Args:
        scores: clips with ``label`` (0/1), ``score`` and the ``by`` columns.
    """
    by = [b for b in by if b in scores]
    rows = []
    for key, g in scores.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)),
                     **M.score_table(g["label"].to_numpy(int), g["score"].to_numpy(float), n_boot=n_boot, seed=seed)})
    return pd.DataFrame(rows)


def unit_pairs(scores: pd.DataFrame, unit: str | list = "unit") -> list[tuple[np.ndarray, np.ndarray]]:
    """[(labels, scores), ...] per unit in sorted order, as :func:`asdstudy.metrics.bootstrap_mean_ci` takes."""
    return [(g["label"].to_numpy(int), g["score"].to_numpy(float)) for _, g in scores.groupby(unit, sort=True)]


def mean_over_units(scores: pd.DataFrame, by=("method", "machine"), unit: str | list = "unit",
                    metrics=("auc", "pauc_mcclish"), n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """The mean of a metric over units with the CI of that mean.

    Each unit's clips are resampled independently and the replicates averaged
    (:func:`asdstudy.metrics.bootstrap_mean_ci`), so every mean row carries a 95 % CI that
    contains it. The value is the plain mean of the per-unit metrics (DCASE 2020's average
    over a machine type's ids).

    Returns:
        One row per (``by`` group, metric) with value, ci_low, ci_high, n_units, n_normal,
        n_anomaly.
    """
    by = [b for b in by if b in scores]
    rows = []
    for key, g in scores.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        pairs = unit_pairs(g, unit)
        for metric in metrics:
            ci = M.bootstrap_mean_ci(pairs, metric, n_boot=n_boot, seed=seed)
            rows.append({**dict(zip(by, key)), "metric": metric, "value": ci.value, "ci_low": ci.low,
                         "ci_high": ci.high, "n_units": len(pairs), "n_normal": int((g["label"] == 0).sum()),
                         "n_anomaly": int((g["label"] == 1).sum())})
    return pd.DataFrame(rows)


def pooled_auc(scores: pd.DataFrame, model: str | list = "model", n_boot: int = 1000, seed: int = 0,
               allow_separate_models: bool = False) -> tuple[M.Interval, str]:
    """AUC of all clips' scores taken together, with a CI, and a note on what it means.

    A pooled AUC ranks clips of different units against each other. It is the paper's
    quantity only when one model scored every clip; when each unit had its own model
    (``scores[model]`` takes several values) the scores live on different scales and the
    pooled AUC mixes them. That is refused unless ``allow_separate_models`` is True, and the
    note says so, so that a row written from it names what it is.

    Returns:
        (Interval, note) with note "" for one model.
    """
    cols = [model] if isinstance(model, str) else list(model)
    missing = [c for c in cols if c not in scores]
    if missing:
        raise ASDStudyError(f"pooled_auc: the scores have no column {missing} naming the model that produced each "
                            "score, so it cannot tell whether they come from one model; pass model= the column "
                            "that does (run_methods writes 'model').")
    n_models = scores.groupby(cols).ngroups
    note = ""
    if n_models > 1:
        if not allow_separate_models:
            raise ASDStudyError(f"pooled_auc: the scores come from {n_models} separately trained models "
                                f"({', '.join(cols)}); their scales differ, so a pooled AUC is not one model's "
                                "number. Pass allow_separate_models=True to compute it anyway, labelled as such.")
        note = (f"pooled over {n_models} separately trained models (scores on different scales); "
                "not a single model's AUC")
    ci = M.bootstrap_ci(scores["label"].to_numpy(int), scores["score"].to_numpy(float), "auc", n_boot=n_boot, seed=seed)
    return ci, note


def share_ci(hits, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> M.Interval:
    """A proportion (e.g. explanations that hit the injected band) with a percentile bootstrap
    CI over the clips (resampled with replacement, one seeded generator)."""
    h = np.asarray(hits, float)
    if not h.size:
        raise ASDStudyError("share_ci: no clips to compute a proportion over.")
    rng = np.random.default_rng(seed)
    boot = rng.choice(h, (n_boot, len(h))).mean(axis=1)
    a = (1 - level) / 2
    return M.Interval(float(h.mean()), float(np.quantile(boot, a)), float(np.quantile(boot, 1 - a)))


def seed_spread(metrics: pd.DataFrame, by=("method",), metric: str = "auc") -> pd.Series:
    """Standard deviation over training seeds of the mean (over units) of a metric; NaN with one seed."""
    by = list(by)
    means = metrics.groupby(by + ["seed"])[metric].mean()
    return means.groupby(level=list(range(len(by)))).std(ddof=1)


ONE_SEED = "one training seed in this run, so no spread over seeds"


def nan_note(value, note: str = ONE_SEED) -> str:
    """The note a NaN result row carries (the scoreboard shows it as the reason)."""
    return note if value is None or not np.isfinite(value) else ""


def ci_separation(first: pd.DataFrame, a: str, b: str, metric: str = "auc", unit: str = "unit") -> tuple[int, int, int]:
    """On how many units method ``a``'s CI lies wholly above ``b``'s, wholly below, and of how many."""
    ca = first[first["method"] == a].set_index(unit)
    cb = first[first["method"] == b].set_index(unit).reindex(ca.index)
    above = int((ca[f"{metric}_low"] > cb[f"{metric}_high"]).sum())
    below = int((cb[f"{metric}_low"] > ca[f"{metric}_high"]).sum())
    return above, below, len(ca)


#: How a result row names the training unit of the model(s) behind it.
TRAINING_UNIT_WORDS = {"machine": "one model per machine type, trained on all its ids",
                       "unit": "one model per id / section"}


@dataclass
class Comparison:
    """Several detectors trained per unit and seed on the same clips (:func:`compare_methods`)."""

    metrics: pd.DataFrame     # one row per method, machine, unit, seed, with CIs
    scores: pd.DataFrame      # test clips with method, seed, score
    holdout: pd.DataFrame     # held-out training normals (never trained on) with their scores
    detectors: dict           # {(method, machine, unit): the first seed's fitted detector}
    means: pd.DataFrame       # first seed: mean over units per method and metric, with CIs
    seeds: list
    train_seconds: float

    @property
    def first(self) -> pd.DataFrame:
        return self.metrics[self.metrics["seed"] == self.seeds[0]]

    @property
    def s0(self) -> pd.DataFrame:
        return self.scores[self.scores["seed"] == self.seeds[0]]

    @property
    def h0(self) -> pd.DataFrame:
        if self.holdout.empty:
            raise ASDStudyError(
                "no training normals were held out, so no threshold rule can be set: a unit holds out 10 % of its "
                "training clips, and at least 2 once it has 4 or more, and every unit here has fewer than 4 (units: "
                f"{', '.join(f'{m} {u}' for m, u in self.metrics[['machine', 'unit']].drop_duplicates().to_numpy())}). "
                "Give each unit at least 4 training clips (a 'max_clips' of 4 or more, or more data).")
        return self.holdout[self.holdout["seed"] == self.seeds[0]]

    @property
    def units(self) -> list[str]:
        return sorted(self.metrics["unit"].unique())

    def spread(self) -> pd.DataFrame:
        """AUC over seeds per method and unit: mean, std, min, max."""
        return self.metrics.groupby(["method", "unit"]).auc.agg(["mean", "std", "min", "max"])

    def add_rows(self, writer, papers: dict, machine: str) -> None:
        """Per-unit rows (AUC, both pAUCs with CIs), mean-over-units rows (with CIs) and the
        seed spread of each method, ``papers`` mapping method -> paper id."""
        spread = seed_spread(self.metrics, by=("method",))
        for name, paper in papers.items():
            first = self.first[self.first["method"] == name]
            trained = TRAINING_UNIT_WORDS[first["training_unit"].iloc[0]] if "training_unit" in first else ""
            writer.add_metrics(paper, name, first, metrics=("auc", "pauc_mcclish", "pauc_raw"), note=trained)
            writer.add_frame(self.means[self.means["method"] == name].assign(unit="mean"), paper=paper, note=trained)
            sd = spread.get(name, np.nan)
            writer.add(paper, name, "auc_seed_std", sd, machine=machine, unit="mean", note=nan_note(sd))


def distinct_models(detectors: dict, methods) -> list[tuple[str, str, str, object]]:
    """Each trained model of ``methods`` once, as (method, machine, unit label, detector): a model
    trained per machine type serves every unit of ``detectors`` and is labelled "all ids"."""
    counts: dict[int, int] = {}
    for det in detectors.values():
        counts[id(det)] = counts.get(id(det), 0) + 1
    out, seen = [], set()
    for (method, machine, unit), det in detectors.items():
        if method in methods and id(det) not in seen:
            seen.add(id(det))
            out.append((method, machine, "all ids" if counts[id(det)] > 1 else f"id {unit}", det))
    return out


def convergence_table(models) -> pd.DataFrame:
    """Each trained model against the convergence rule (:func:`asdstudy.training.flatness`: the
    last 20 % of epochs improve the best loss by less than 2 %), judged on its validation curve,
    or on its training curve when it had no validation split. ``models``: (method, machine,
    unit label, detector) as :func:`distinct_models` gives them, or (name, History) pairs."""
    from ..training import FLAT_TOLERANCE

    rows = []
    for item in models:
        *key, h = item if len(item) == 2 else (*item[:3], item[3].history_)
        flat, improvement = h.flat()
        rows.append({"model": " / ".join(str(k) for k in key), "epochs run": len(h.train),
                     "trained": "read back" if getattr(h, "stored", "") else "here",
                     "curve judged": "validation" if h.val else "training",
                     # the held-out examples the validation curve is computed on
                     "on examples": getattr(h, "val_examples", 0) if h.val else None,
                     "improvement in the last 20 % of epochs": improvement,
                     "flat (< {:.0%})".format(FLAT_TOLERANCE): "yes" if flat else "no"})
    return pd.DataFrame(rows).astype({"on examples": "Int64"}).set_index("model") if rows else pd.DataFrame()


def training_rule_text(p: "ChapterParams", table: bool = True) -> str:
    """One sentence: how long this run's models train (the ``converge`` parameter); ``table``:
    the chapter shows the convergence table, and the sentence points at it."""
    from ..training import FLAT_TOLERANCE, FLAT_WINDOW, MIN_EPOCHS, VAL_FLOOR

    if p.converge:
        text = (f"Every model trains until its validation loss (its training loss where it has no validation split) "
                f"is flat, that is until the last {FLAT_WINDOW:.0%} of its epochs improve its best loss by less than "
                f"{FLAT_TOLERANCE:.0%}, after at least {MIN_EPOCHS} epochs; the epochs named here are the cap. "
                f"The validation loss is computed every epoch on the same seeded held-out examples, as many as one "
                f"epoch trains on (at least {VAL_FLOOR:,}, or all held-out ones when fewer)")
        return text + ("; the table below shows where each model stopped, on how many held-out examples its curve was "
                       "judged, and whether it met the rule." if table else ".")
    text = "Every model trains for exactly the epochs named here (the papers' fixed budgets), with no convergence stop"
    return text + ("; the table below shows whether each loss curve had flattened by then." if table else ".")


def convergence_text(table: pd.DataFrame) -> str:
    """One sentence: how many trained models meet the convergence rule at this budget."""
    if table.empty:
        return "No model of this run has a loss curve to judge."
    flat = table.iloc[:, -1].eq("yes")
    short = table["improvement in the last 20 % of epochs"].isna()
    stored = int(table["trained"].eq("read back").sum()) if "trained" in table else 0
    again = (f" {stored} of them were read back from the model store, trained earlier (by another chapter or an "
             "earlier run) with the same settings, clips and code, rather than trained again." if stored else "")
    if flat.all():
        return f"All {len(table)} trained models meet the convergence rule at this budget." + again
    parts = [f"{int(flat.sum())} of {len(table)} trained models meet the convergence rule at this budget"]
    if (~flat & ~short).any():
        parts.append(f"{int((~flat & ~short).sum())} were still improving when training stopped, so their numbers "
                     "are those of unfinished models")
    if short.any():
        parts.append(f"{int(short.sum())} trained for fewer than 2 epochs, too few to judge")
    return "; ".join(parts) + "." + again


class ComparisonResult:
    """Mixin for chapter results that hold a :class:`Comparison` as ``cmp``."""

    cmp: Comparison

    metrics = property(lambda self: self.cmp.metrics)
    first = property(lambda self: self.cmp.first)
    scores = property(lambda self: self.cmp.scores)
    holdout = property(lambda self: self.cmp.holdout)
    means = property(lambda self: self.cmp.means)
    units = property(lambda self: self.cmp.units)
    train_seconds = property(lambda self: self.cmp.train_seconds)


def compare_methods(makers: dict, data: ChapterData, seeds, n_boot: int = 1000, progress: bool = True,
                    units: dict | None = None, thresholded=None, n_jobs: int = 1) -> Comparison:
    """Train every method once per training unit and seed, on the same clips.

    Each method declares its training unit in ``units`` (``"machine"``: one model per machine
    type, as the DCASE 2020 baseline; ``"unit"``: one model per id / section, the default). A
    seeded tenth of each unit's training normals is held out for honest thresholds, scores are
    per unit (the unit of :func:`asdstudy.datasets.unit_column`) with bootstrap CIs, and the
    first seed's means over units carry the CI of the mean. Only the ``thresholded`` methods
    (default: all) give up the held-out tenth; the others train on every normal.
    """
    from ..models.base import run_methods

    seeds = list(seeds)
    t0 = time.time()
    out = run_methods(makers, data.table, seeds=seeds, n_boot=n_boot, progress=progress, units=units,
                      thresholded=thresholded, n_jobs=n_jobs)
    seconds = time.time() - t0
    s0 = out["scores"][out["scores"]["seed"] == seeds[0]]
    means = mean_over_units(s0, by=("method", "machine"), n_boot=n_boot, seed=seeds[0])
    return Comparison(out["metrics"], out["scores"], out["holdout"], out["detectors"], means, seeds, seconds)


# ------------------------------------------------------------------------------ aggregation

def test_size_weights(units_per_machine: dict[str, int], n_test: dict[str, int]) -> np.ndarray:
    """Per-unit weights of paper 003's test-size-weighted mean over machine types.

    A machine type's weight is its share of all test clips, split equally among its units, so
    the weighted mean over units equals the test-size-weighted mean of the per-machine means.
    The weights sum to one.
    """
    total = float(sum(n_test[m] for m in units_per_machine))
    return np.array([n_test[m] / total / n for m, n in units_per_machine.items() for _ in range(n)])


def arithmetic_weights(units_per_machine: dict[str, int]) -> np.ndarray:
    """Per-unit weights of the plain mean over machine types (each type's ids averaged first)."""
    k = len(units_per_machine)
    return np.array([1.0 / k / n for n in units_per_machine.values() for _ in range(n)])


def machine_type_summary(scores: pd.DataFrame, n_test: dict[str, int], by=("method",), unit: str = "unit",
                         metrics=("auc", "pauc_mcclish"), n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """The average over machine types of the per-type means over units, two ways, with CIs.

    ``weighted``: paper 003's Table 6 (machine types weighted by test-set size);
    ``arithmetic``: the DCASE challenge's plain mean. The ``spread`` column is the (weighted)
    standard deviation of the per-type means, the ± value paper 003 prints.
    """
    by = [b for b in by if b in scores]
    rows = []
    for key, g in scores.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        machines = sorted(g["machine"].unique(), key=list(n_test).index if set(g["machine"]) <= set(n_test) else str)
        pairs, per_type = [], {}
        for m in machines:
            pm = unit_pairs(g[g["machine"] == m], unit)
            pairs += pm
            per_type[m] = len(pm)
        for metric in metrics:
            fn = M._metric_fn(metric)
            type_means = [np.mean([fn(y, s) for y, s in unit_pairs(g[g["machine"] == m], unit)]) for m in machines]
            for scheme, w in (("weighted", test_size_weights(per_type, n_test)), ("arithmetic", arithmetic_weights(per_type))):
                ci = M.bootstrap_mean_ci(pairs, metric, weights=w, n_boot=n_boot, seed=seed)
                tw = [n_test[m] for m in machines] if scheme == "weighted" else np.ones(len(machines))
                rows.append({**dict(zip(by, key)), "metric": metric, "scheme": scheme, "value": ci.value,
                             "ci_low": ci.low, "ci_high": ci.high, "spread": M.weighted_std(type_means, tw)})
    return pd.DataFrame(rows)


def aggregate_units(per_unit: pd.DataFrame, value: str = "auc", by: str = "machine",
                    scheme: str = "dcase2020") -> pd.Series:
    """Official aggregations over per-unit values: DCASE 2020 arithmetic mean over ids,
    DCASE 2021 / 2023 harmonic mean over sections x domains ("dcase2021", "dcase2023")."""
    scheme = {"dcase2023": "dcase2021"}.get(scheme, scheme)
    return M.aggregate(per_unit, value=value, by=by, scheme=scheme)


# ----------------------------------------------------------------------------------- claims

def claims_of(papers, exclude_methods=()) -> pd.DataFrame:
    """The claims of some papers (a paper id or a list)."""
    papers = [papers] if isinstance(papers, str) else list(papers)
    c = load_claims()
    return c[c["paper"].isin(papers) & ~c["method"].isin(list(exclude_methods))]


def claimed(papers, method: str, metric: str, unit: str | None = None, machine: str | None = None) -> float:
    """One claimed number (NaN when the paper states none)."""
    c = claims_of(papers)
    m = (c["method"] == method) & (c["metric"] == metric)
    if unit is not None:
        m &= c["unit"].astype(str) == str(unit)
    if machine is not None:
        m &= c["machine"] == machine
    return float(c[m]["value"].iloc[0]) if m.any() else float("nan")


def chapter_board(papers, results: pd.DataFrame, chapter: str, exclude_methods=()) -> pd.DataFrame:
    """The scoreboard rows of one chapter's papers, joined with this run's result rows."""
    from ..scoreboard import scoreboard

    return scoreboard(claims_of(papers, exclude_methods), results, executed={chapter})


BOARD_COLUMNS = ["source", "kind", "method", "machine", "unit", "metric", "claimed", "reproduced", "ci_low", "ci_high",
                 "verdict", "reason"]


# ----------------------------------------------------------------------------------- display

def fmt_ci(value, low, high, digits: int = 3) -> str:
    """``0.812 [0.774, 0.851]``; the bare value where the CI is missing."""
    if value is None or not np.isfinite(value):
        return ""
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def with_ci(frame: pd.DataFrame, metrics, low: str = "{}_low", high: str = "{}_high") -> pd.DataFrame:
    """A display copy of ``frame`` where each metric column reads ``value [low, high]``."""
    out = pd.DataFrame(index=frame.index)
    for m in metrics:
        out[m] = [fmt_ci(v, lo, hi) for v, lo, hi in zip(frame[m], frame[low.format(m)], frame[high.format(m)])]
    return out


def epochs_text(epochs: int, converge: bool, stride: int = 1, of: str = "") -> str:
    """A training budget in words: "at most 20 epochs, stopping when flat" or "20 epochs", and with
    ``stride`` > 1 ", each epoch a fresh 1 in 16 of the <of>" (``fit(epoch_fraction=1/stride)``)."""
    unit = "epoch" if epochs == 1 else "epochs"
    text = f"at most {epochs} {unit}, stopping when flat" if converge else f"{epochs} {unit}"
    return text + (f", each epoch a fresh 1 in {stride} of the {of}" if stride > 1 else "")


def phases_text(phases: pd.DataFrame | None) -> str:
    """Where a chapter's time went, in words: "data generation 212 s, twin check 180 s"."""
    if phases is None or not len(phases):
        return "(no phases recorded)"
    return ", ".join(f"{r.phase} {r.seconds:.0f} s" for r in phases.itertuples())


@dataclass
class Timer:
    """Wall time since construction, for the chapters' "this ran in" lines."""

    t0: float = field(default_factory=lambda: time.time())
    #: seconds per named phase (:meth:`lap`), in the order they ran
    laps: dict = field(default_factory=dict)
    _last: float | None = None

    def seconds(self) -> float:
        return time.time() - self.t0

    def lap(self, name: str) -> float:
        """Close the phase ``name``: the seconds since the previous lap (or the start)."""
        now = time.time()
        s = now - (self.t0 if self._last is None else self._last)
        self._last = now
        self.laps[name] = self.laps.get(name, 0.0) + s
        return s

    def table(self) -> pd.DataFrame:
        """The phases and their seconds, for a chapter's "where the time went" line."""
        return pd.DataFrame({"phase": list(self.laps), "seconds": list(self.laps.values())})
