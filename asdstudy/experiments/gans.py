"""Paper 003's experiment: EGBAD, GANomaly and Skip-GANomaly from fully connected blocks,
one model per machine type, a grid search, and the test-size-weighted average over types.

What the paper did: 640-d stacked log-mel frame vectors of the six DCASE 2020 machine types;
each model trained per machine type on all its ids' training normals; GANomaly and
Skip-GANomaly grid-searched (Table 3), the best setting per type kept and reported on the
same test clips (Tables 4-7); machine types averaged with weights proportional to their
test-set sizes (Table 2), ± the weighted spread over types (Table 6).

What the study does: the same models and training unit; each clip is scored two ways (the
paper's "distance between the input and its generated representation", used for the claims,
and each original model's own score, reported beside it); per machine type the mean over ids
and the AUC of the pooled test set ("considering the entire test set": one model's scores)
are both reported; the search runs as a resumable sweep;
the setting is chosen three ways (:func:`select_setting`): the paper's way (on all test clips),
leakily on an evaluation half, and honestly on a disjoint calibration half, the last two
reported on the same evaluation half; the chosen settings are retrained with more seeds; every
mean over ids and over types carries a bootstrap CI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd

from .. import metrics as M
from ..features import LogMelParams, clip_logmels
from ..models.autoencoders import n_parameters
from ..models.gans import NAMES as GAN_NAMES
from ..models.gans import PAPER_COMMON, PAPER_GRID, PAPER_SETTINGS, SCORE_RULES, GANConfig, build, sweep_point
from ..results import ResultWriter, results_dir
from ..sweep import Sweep, code_fingerprint, expand_grid, grid_size, point_id
from . import protocol as P

CHAPTER = "gans"
NAMES = {**GAN_NAMES, "baseline": "DCASE baseline"}
ORDER = ("baseline", "egbad", "ganomaly", "skip")
#: How a setting may be chosen: (scored on, reported on).
SELECTIONS = {"paper's way": ("all", "all"), "leaky on eval half": ("eval", "eval"),
              "honest on eval half": ("cal", "eval")}


@dataclass
class Params(P.ChapterParams):
    machines: object = "all"
    kinds: list = field(default_factory=lambda: ["egbad", "ganomaly", "skip"])
    settings: str = "grid"
    grid: dict = field(default_factory=lambda: {"lr": [2e-4, 1e-3]})
    base: dict = field(default_factory=lambda: {"epochs": 30, "batch_size": 512, "train_stride": 16, "latent": 8,
                                                "n_hidden": 3, "lr": 2e-4, "w_adv": 1, "w_con": 50, "w_enc": 1, "val_fraction": 0.1})
    baseline_epochs: int = 40
    seeds: list = field(default_factory=lambda: [0, 1])
    cal_fraction: float = 0.5
    scheduler: str = ""
    score_rule: str = "reconstruction"  # the score the claims are answered with (SCORE_RULES)
    epoch_cap: int = 0  # at most this many epochs per training, whatever the setting says (0: none; the preflight's cut)
    #: EGBAD's settings over ``base``: the paper gives no setting for EGBAD beyond the common
    #: ones; the paper profile reads its batch size as 512 (see :func:`egbad_reading`)
    egbad: dict = field(default_factory=dict)
    #: the budget probe (:func:`budget_probe`): GANomaly and Skip-GANomaly retrained on the machine
    #: type where GANomaly scores lowest with every frame vector in every epoch (train_stride 1),
    #: until flat, at most this many epochs; 0: no probe (the paper profile trains that way already)
    probe_epochs: int = 15

    ZERO_SWITCHES_OFF: ClassVar[tuple] = ("probe_epochs",)

    def validate(self):
        super().validate()
        if self.score_rule not in SCORE_RULES:
            raise P.ASDStudyError(f"parameter 'score_rule' is {self.score_rule!r}; use one of {list(SCORE_RULES)}.")
        if self.settings not in ("grid", "paper"):
            raise P.ASDStudyError(f"parameter 'settings' is {self.settings!r}; use grid or paper.")
        bad = [k for k in self.kinds if k not in GAN_NAMES]
        if bad:
            raise P.ASDStudyError(f"parameter 'kinds' has {bad}; use some of {list(GAN_NAMES)}.")
        if not self.seeds:
            raise P.ASDStudyError("parameter 'seeds' is empty; give at least one training seed, e.g. [0].")
        if int(self.probe_epochs) < 0:
            raise P.ASDStudyError(f"parameter 'probe_epochs' is {self.probe_epochs}; use 0 (no probe) or more epochs.")
        if int(self.base.get("epochs", 1)) < 1:
            raise P.ASDStudyError(f"parameter 'base' has epochs {self.base.get('epochs')}; it must be at least 1.")

    @property
    def machine_list(self) -> list[str]:
        """The machine types: "all" is every synthetic type, or on real data (paper profile)
        every type the clip table under the data root holds."""
        if self.machines == "all" and self.profile == "paper":
            return P.machines_present(P.real_data_root(self), "dcase2020")
        return P.machine_list(self.machines)


@dataclass
class Result:
    params: Params
    data: P.ChapterData
    n_test: dict
    arch: pd.DataFrame
    plan: str
    selection: pd.DataFrame      # per (kind, machine, point): mean AUC on all / cal / eval clips
    choice: pd.DataFrame         # the chosen setting per (kind, machine), three ways
    optimism: float
    per_id: pd.DataFrame         # final points: per (method, machine, unit, seed) metrics with CIs
    by_machine: pd.DataFrame     # mean over ids per (method, machine, metric), with CIs and seed std
    overall: pd.DataFrame        # over machine types, weighted and arithmetic, with CIs
    pooled: pd.DataFrame         # per (method, machine): AUC / pAUC of the pooled test set, with CIs
    score_rules: pd.DataFrame    # per (method, machine, rule): mean AUC over ids with CIs, both scores
    seed_means: pd.DataFrame
    history: pd.DataFrame
    convergence: pd.DataFrame    # each final model against the convergence rule
    seed_range: pd.DataFrame
    rows: pd.DataFrame
    board: pd.DataFrame
    discussion: str
    sweep_seconds: float
    seconds: float
    n_points: int
    probe: pd.DataFrame = field(default_factory=pd.DataFrame)  # the budget probe's table (empty: none run)
    probe_text: str = ""

    def glue(self) -> dict:
        return {"gan_paper_grid_size": grid_size(PAPER_GRID), "gan_plan": self.plan,
                "gan_selection_optimism": self.optimism, "gan_selection_text": self.selection_text(),
                "gan_score_rule": SCORE_RULES[self.params.score_rule], "gan_sweep_minutes": self.sweep_seconds / 60,
                "gan_chapter_minutes": self.seconds / 60, "gan_egbad_reading": egbad_reading(self.params),
                "gan_training_rule": P.training_rule_text(self.params),
                "gan_convergence_text": P.convergence_text(self.convergence),
                "gan_judged_curve": judged_curve_text(self.params),
                "gan_probe_text": self.probe_text or "No budget probe ran (probe_epochs 0)."}

    def selection_text(self) -> str:
        """The selection bias in one sentence, or why this run cannot measure it."""
        if np.isnan(self.optimism):
            return ("This run trained one setting per model and machine type (the published ones), so there was no "
                    "choice for the test labels to leak into and no selection bias to measure: run the grid to see it.")
        return (f"Choosing the setting on the clips that are then reported raises the AUC by {self.optimism:.3f} on "
                "average over models and machine types compared with choosing it on other clips (same evaluation "
                "clips).")

    @property
    def order(self) -> list[str]:
        return [NAMES[k] for k in ORDER if k == "baseline" or k in self.params.kinds]


def architectures() -> pd.DataFrame:
    return pd.DataFrame([{"model": GAN_NAMES[k], "hidden layers": h,
                          "parameters": n_parameters(build(GANConfig(kind=k, n_hidden=h))),
                          "discriminator": sum(q.numel() for q in build(GANConfig(kind=k, n_hidden=h)).discriminator_parameters())}
                         for k in ("egbad", "ganomaly", "skip") for h in (3, 4)]).set_index(["model", "hidden layers"])


def plan_text(p: Params) -> str:
    stride = int(p.base.get("train_stride", 1))
    budget = (f" Every model trains {P.epochs_text(int(p.base.get('epochs', 10)), p.converge, stride, 'frame vectors')}"
              + (" (every vector is drawn over the epochs; the paper trains on all of them every epoch)"
                 if stride > 1 else "") + ".")
    if p.settings == "paper":
        return "the published per-machine settings (Tables 4 and 5), no search." + budget
    return (f"a reduced grid of {grid_size(p.grid)} points per model and machine type ("
            + ", ".join(f"{k}: {v}" for k, v in p.grid.items()) + "), other settings fixed at " + str(p.base) + "."
            + budget)


def egbad_reading(p: Params) -> str:
    """How EGBAD's settings were read, in one sentence (the paper states them for GANomaly and
    Skip-GANomaly only)."""

    sizes = pd.Series([r["batch_size"] for by_m in PAPER_SETTINGS.values() for r in by_m.values()]).value_counts()
    common = (f"{int(sizes.index[0])}, the most common batch size among the paper's {int(sizes.sum())} published "
              f"GANomaly / Skip-GANomaly settings ({int(sizes.iloc[0])} of them)")
    cfg = {**p.base, **p.egbad}
    said = f"EGBAD trains with this run's base settings ({', '.join(f'{k} {v}' for k, v in cfg.items())})"
    if "batch_size" in p.egbad:
        return (f"The paper gives EGBAD no batch size; {said}, the batch size read as {common}: at batch 16 EGBAD "
                "would take 32 times the optimiser steps.")
    return f"The paper gives EGBAD no batch size (the paper profile reads it as {common}); {said}."


def sweep_points(p: Params, common: dict) -> tuple[list[dict], list[dict]]:
    """The searched points (GANomaly, Skip-GANomaly; first seed) and the fixed ones (EGBAD at the
    common settings, as the paper, and the DCASE baseline; every seed)."""
    def point(kind, machine, s, **over):
        q = {**common, "kind": kind, "machine": machine, "seed": s, "converge": p.converge}
        if kind != "baseline":
            q.update(PAPER_COMMON)
            q.update(p.base)
        else:
            q["epochs"] = p.baseline_epochs
        q.update(over)
        if p.epoch_cap:
            q["epochs"] = min(int(q["epochs"]), p.epoch_cap)
        return q

    search = []
    for kind in [k for k in p.kinds if k != "egbad"]:
        for m in p.machine_list:
            if p.settings == "paper":
                search.append(point(kind, m, p.seeds[0], **PAPER_SETTINGS[kind][m]))
            else:
                search += [point(kind, m, p.seeds[0], **g) for g in expand_grid(p.grid)]
    fixed = [point("egbad", m, s, **p.egbad) for m in p.machine_list for s in p.seeds if "egbad" in p.kinds]
    fixed += [point("baseline", m, s) for m in p.machine_list for s in p.seeds]
    return search, fixed


def mean_unit_auc(scores: pd.DataFrame) -> float:
    """Mean over a machine type's ids of the per-id AUC (the quantity a setting is chosen on)."""
    return float(np.mean([M.auc(x["label"], x["score"]) for _, x in scores.groupby("unit")]))


def selection_table(scores: pd.DataFrame, search: list[dict], halves: pd.Series, setting_keys) -> pd.DataFrame:
    """Each searched point's mean AUC on all test clips, on the calibration half and on the evaluation half."""
    s = scores.assign(half=scores["path"].map(halves))
    rows = []
    for q in search:
        g = s[s["point_id"] == point_id(q)]
        rows.append({"kind": q["kind"], "machine": q["machine"], "point_id": point_id(q),
                     "setting": ", ".join(f"{k}={q[k]}" for k in setting_keys(q)),
                     "all": mean_unit_auc(g), "cal": mean_unit_auc(g[g["half"] == "cal"]),
                     "eval": mean_unit_auc(g[g["half"] == "eval"])})
    return pd.DataFrame(rows)


def select_setting(sel: pd.DataFrame, on: str = "calibration half") -> pd.Series:
    """The setting chosen for one (model, machine type) from its searched points.

    ``on="all test clips"``: the paper's way, the maximum of the test AUCs it then reports
    (the choice has seen the test labels). ``on="evaluation half"``: the same leak, on the
    clips the honest choice is reported on. ``on="calibration half"``: the study's honest
    choice, made on clips disjoint from those it is reported on. Only the column named by
    ``on`` is read, so the honest choice never sees the evaluation half's scores.
    """
    col = {"all test clips": "all", "evaluation half": "eval", "calibration half": "cal"}[on]
    return sel.loc[sel[col].idxmax()]


def choose(sel: pd.DataFrame) -> pd.DataFrame:
    """The chosen setting per (model, machine type) three ways, each reported where it may be."""
    out = []
    for (kind, m), g in sel.groupby(["kind", "machine"]):
        paper = select_setting(g, "all test clips")
        leaky = select_setting(g, "evaluation half")
        honest = select_setting(g, "calibration half")
        out.append({"model": NAMES[kind], "machine": m, "points": len(g), "chosen (paper's way)": paper.setting,
                    "AUC, paper's way": paper["all"], "AUC, leaky on eval half": leaky["eval"],
                    "AUC, honest on eval half": honest["eval"], "chosen (honest)": honest.setting,
                    "kind": kind, "point_id": paper.point_id})
    return pd.DataFrame(out)


def final_points(p: Params, choice: pd.DataFrame, search, fixed) -> tuple[dict, list[dict]]:
    """{(kind, machine): [points, one per seed]}: the chosen settings retrained with the other
    seeds, EGBAD and the baseline as they ran; and the extra points to run."""
    chosen = {(r.kind, r.machine): next(q for q in search if point_id(q) == r.point_id) for r in choice.itertuples()}
    extra = [{**q, "seed": s} for q in chosen.values() for s in p.seeds[1:]]
    out = {k: [q] + [{**q, "seed": s} for s in p.seeds[1:]] for k, q in chosen.items()}
    for kind in ("egbad", "baseline"):
        for m in p.machine_list:
            pts = [q for q in fixed if q["kind"] == kind and q["machine"] == m]
            if pts:
                out[(kind, m)] = pts
    return out, extra


#: The sweep's column holding each score rule.
RULE_COLUMNS = {"own": "score_own", "reconstruction": "score_recon"}


def with_rule(res: pd.DataFrame, rule: str) -> pd.DataFrame:
    """Sweep rows with ``score`` set to the rule's score (``score_own`` keeps the model's own)."""
    if "score_recon" not in res:
        raise P.ASDStudyError("the sweep's rows carry no 'score_recon' column: they were stored by an older version "
                              "of the GAN code; delete the sweep folder and run again.")
    out = res.assign(score_own=res["score"])
    out["score"] = out[RULE_COLUMNS[rule]]
    return out


def final_scores(res: pd.DataFrame, finals: dict) -> pd.DataFrame:
    """Test scores of the final points, tidy: method, machine, unit, seed, label, score (the
    chosen rule's), score_own, score_recon."""
    parts = []
    cols = ["path", "unit", "label", "score"] + [c for c in RULE_COLUMNS.values() if c in res]
    for (kind, m), pts in finals.items():
        for q in pts:
            g = res[(res["point_id"] == point_id(q)) & (res["row"] == "score")]
            parts.append(g[cols].assign(kind=kind, method=NAMES[kind], machine=m, seed=q["seed"]))
    return pd.concat(parts, ignore_index=True)


def pooled_per_machine(s0: pd.DataFrame, n_boot: int, seed: int) -> pd.DataFrame:
    """AUC and pAUC of each machine type's whole test set pooled over its ids ("considering the
    entire test set", paper 003): one model per machine type scored every clip, so this is one
    model's number; CIs by bootstrap over clips."""
    rows = []
    for (method, machine), g in s0.groupby(["method", "machine"], sort=False):
        for metric in ("auc", "pauc_mcclish"):
            ci = M.bootstrap_ci(g["label"].to_numpy(int), g["score"].to_numpy(float), metric, n_boot=n_boot, seed=seed)
            rows.append({"method": method, "machine": machine, "metric": metric, "value": ci.value, "ci_low": ci.low,
                         "ci_high": ci.high, "n_normal": int((g["label"] == 0).sum()), "n_anomaly": int((g["label"] == 1).sum())})
    return pd.DataFrame(rows)


def score_rule_table(s0: pd.DataFrame, n_boot: int, seed: int) -> pd.DataFrame:
    """Mean AUC over ids per method and machine type under both score rules, with CIs."""
    parts = []
    for rule, col in RULE_COLUMNS.items():
        m = P.mean_over_units(s0.assign(score=s0[col]), by=("method", "machine"), n_boot=n_boot, seed=seed)
        parts.append(m[m["metric"] == "auc"].assign(rule=rule))
    return pd.concat(parts, ignore_index=True)


def loss_history(res: pd.DataFrame, finals: dict, kinds) -> pd.DataFrame:
    parts = []
    for (kind, m), pts in finals.items():
        if kind not in kinds:
            continue
        for q in pts:
            h = res[(res["point_id"] == point_id(q)) & (res["row"] == "loss")]
            parts.append(h[["part", "epoch", "loss"]].assign(panel=f"{NAMES[kind]}, {m}", unit=f"seed {q['seed']}"))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["panel", "unit", "part", "epoch", "loss"])


def judged_curve_text(p: Params) -> str:
    """Which curve the convergence rule judges for this run's GANs, in one sentence."""
    share = float(p.base.get("val_fraction", 0.0) or 0.0)
    if share > 0:
        return (f"Each GAN holds out {share:.0%} of its training frame vectors; its convergence is judged on the "
                "reconstruction error |x - G(x)| on them (the dashed validation line; the quantity its anomaly score "
                "measures), because its adversarial losses can sit level from the first epochs while it still learns. "
                "It trains at least one pass over every frame vector.")
    return ("No frame vectors are held out (val_fraction 0, as the paper trains), so each GAN is judged on its summed "
            "training losses, which an adversarial game can hold level while the generator still learns: a 'flat' "
            "verdict here is weak evidence of convergence.")


def convergence(res: pd.DataFrame, finals: dict) -> pd.DataFrame:
    """Each final model (every seed) against the convergence rule, on its validation curve: a
    GAN's reconstruction error on its held-out frame vectors (``val_fraction``; without one, its
    summed training losses), the baseline's validation loss; "read back" where the model came
    from the model store."""
    from ..training import History

    models = []
    for (kind, m), pts in finals.items():
        for q in pts:
            h = res[(res["point_id"] == point_id(q)) & (res["row"] == "loss")]
            val = h[h["part"] == "validation"]
            curve = h[h["part"] != "validation"].groupby("epoch")["loss"].sum().sort_index().tolist()
            stored = "stored" in h and h["stored"].fillna(False).astype(bool).any()
            judged = int(val["val_examples"].max()) if "val_examples" in val and val["val_examples"].notna().any() else 0
            models.append((f"{NAMES[kind]} / {m} / seed {q['seed']}",
                           History(train=curve, val=val.sort_values("epoch")["loss"].tolist(),
                                   stored="model store" if stored else "", val_examples=judged)))
    return P.convergence_table(models)


def result_rows(p: Params, data, first, by_machine, overall, n_test, pooled=None, rules=None) -> ResultWriter:
    w = ResultWriter(CHAPTER, profile=p.profile, seed=p.seeds[0], dataset=data.dataset)
    if pooled is not None and len(pooled):
        w.add_frame(pooled.assign(unit="pooled", note="the machine type's whole test set, one model's scores"),
                    paper="003")
    if rules is not None:
        other = rules[(rules["rule"] != p.score_rule) & (rules["method"] != NAMES["baseline"])]
        w.add_frame(other.assign(unit="mean", method=other["method"] + " (" + other["rule"].map(SCORE_RULES) + ")"),
                    paper="003")
    for r in first.itertuples():
        for metric in ("auc", "pauc_mcclish", "pauc_raw"):
            w.add("003", r.method, metric, getattr(r, metric), machine=r.machine, unit=str(r.unit),
                  ci=(getattr(r, metric + "_low"), getattr(r, metric + "_high")), n_normal=r.n_normal, n_anomaly=r.n_anomaly)
    w.add_frame(by_machine.assign(unit="mean"), paper="003")
    w.add_frame(by_machine.assign(unit="mean", metric=by_machine["metric"] + "_seed_std", value=by_machine["seed_std"],
                                  ci_low=np.nan, ci_high=np.nan, note=by_machine["seed_std"].map(P.nan_note)),
                paper="003")
    ov = overall.assign(machine="all", unit=overall["scheme"].map({"weighted": "weighted", "arithmetic": "mean"}))
    w.add_frame(ov, paper="003")
    w.add_frame(ov.assign(metric=ov["metric"] + "_std", value=ov["spread"], ci_low=np.nan, ci_high=np.nan), paper="003")
    for m in p.machine_list:
        w.add("003", "dataset", "n_test", int(n_test[m]), machine=m, unit="all")
    return w


PROBED = ("ganomaly", "skip")


def probe_points(p: Params, by_machine: pd.DataFrame, finals: dict) -> tuple[str, list[dict]]:
    """The budget probe's machine type (where GANomaly's mean AUC over ids is lowest, seed 0) and
    its points: GANomaly's and Skip-GANomaly's chosen settings (first seed) with every frame
    vector in every epoch (``train_stride`` 1) and at most ``probe_epochs`` epochs, until flat."""
    if not p.probe_epochs or int(p.base.get("train_stride", 1)) <= 1:
        return "", []
    auc = by_machine[(by_machine["method"] == NAMES["ganomaly"]) & (by_machine["metric"] == "auc")]
    if not len(auc):
        return "", []
    machine = str(auc.loc[auc["value"].idxmin(), "machine"])
    epochs = min(int(p.probe_epochs), int(p.epoch_cap)) if p.epoch_cap else int(p.probe_epochs)
    pts = [{**finals[(kind, machine)][0], "train_stride": 1, "epochs": epochs}
           for kind in PROBED if (kind, machine) in finals]
    return machine, pts


def budget_probe(p: Params, machine: str, pts: list[dict], res: pd.DataFrame, probe_res: pd.DataFrame,
                 finals: dict, by_machine: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Each probed model at the chapter's budget and with every frame vector in every epoch, on
    the same test clips: passes over the data, whether the rule found it flat, mean AUC over ids
    with its CI; and the verdict in words (does more training lift it above chance?)."""
    if not pts:
        return pd.DataFrame(), ""
    stride = int(p.base.get("train_stride", 1))
    probe_res = with_rule(probe_res, p.score_rule)
    conv_default = convergence(res, {(q["kind"], machine): [finals[(q["kind"], machine)][0]] for q in pts})
    conv_probe = convergence(probe_res, {(q["kind"], machine): [q] for q in pts})
    probe_auc = P.mean_over_units(final_scores(probe_res, {(q["kind"], machine): [q] for q in pts}),
                                  by=("method", "machine"), metrics=("auc",), n_boot=p.n_boot, seed=p.seed)
    flat_col = conv_probe.columns[-1]
    rows = []
    for q, (_, cd), (_, cp) in zip(pts, conv_default.iterrows(), conv_probe.iterrows()):
        name = NAMES[q["kind"]]
        d = by_machine[(by_machine["method"] == name) & (by_machine["machine"] == machine) & (by_machine["metric"] == "auc")].iloc[0]
        e = probe_auc[probe_auc["method"] == name].iloc[0]
        rows.append({"model": name, "machine": machine, "passes (chapter budget)": cd["epochs run"] / stride,
                     "AUC (chapter budget)": d["value"], "low": d["ci_low"], "high": d["ci_high"],
                     "passes (every vector every epoch)": float(cp["epochs run"]), "flat": cp[flat_col],
                     "AUC (every vector every epoch)": e["value"], "probe low": e["ci_low"], "probe high": e["ci_high"]})
    table = pd.DataFrame(rows)
    base = by_machine[(by_machine["method"] == NAMES["baseline"]) & (by_machine["machine"] == machine)
                      & (by_machine["metric"] == "auc")]
    parts = []
    for r in rows:
        before = P.fmt_ci(r["AUC (chapter budget)"], r["low"], r["high"])
        after = P.fmt_ci(r["AUC (every vector every epoch)"], r["probe low"], r["probe high"])
        verdict = ("its CI now lies above chance, so at the chapter's budget its failure here is one of training time"
                   if r["probe low"] > 0.5 and not r["low"] > 0.5 else
                   "its CI still lies above chance" if r["probe low"] > 0.5 else
                   "its CI still reaches chance, so on this machine type the failure is not one of training time alone")
        parts.append(f"{r['model']} scores {after} after {r['passes (every vector every epoch)']:.0f} passes "
                     f"({'flat' if r['flat'] == 'yes' else 'still improving'} by the rule) against {before} after "
                     f"{r['passes (chapter budget)']:.1f} at the chapter's budget: {verdict}")
    text = (f"The budget probe retrains the GANs on {machine}, where GANomaly scores lowest, with every frame vector in "
            "every epoch until flat (the chosen settings, first seed, same test clips). " + "; ".join(parts) + ".")
    if len(base):
        b = base.iloc[0]
        text += f" The DCASE baseline scores {P.fmt_ci(b['value'], b['ci_low'], b['ci_high'])} on {machine}."
    return table, text


def short_window_text(epochs_run: pd.Series, stride: int) -> str:
    """What a flat curve shows when each epoch is a fresh 1 in ``stride`` of the frame vectors: the
    rule's window (the last 20 % of epochs) then spans a fraction of one pass, over which the
    adversarial noise between epochs can hide a slow fall, so flatness is no evidence that more
    training would not close the gap."""
    from ..training import window_epochs

    passes = epochs_run.astype(float) / stride
    window = window_epochs(int(epochs_run.max())) / stride
    return (f"all {len(epochs_run)} GANomaly models met the flatness rule, but each epoch was a fresh 1 in {stride} "
            f"of the frame vectors: they saw {passes.min():.1f} to {passes.max():.1f} passes over the data in all, "
            f"and the rule's window spanned at most {window:.2f} of a pass, too short a window for a flat curve to "
            "rule out that the gap is one of training time (the paper profile trains every frame vector every "
            "epoch). ")


def discussion(p: Params, data, overall: pd.DataFrame, choice: pd.DataFrame, optimism: float, order,
               conv: pd.DataFrame | None = None) -> str:
    wa = overall[(overall["scheme"] == "weighted") & (overall["metric"] == "auc")].set_index("method")
    parts = [f"{m} {P.fmt_ci(wa.loc[m, 'value'], wa.loc[m, 'ci_low'], wa.loc[m, 'ci_high'])}" for m in order]
    budget = P.epochs_text(int(p.base.get("epochs", 10)), p.converge, int(p.base.get("train_stride", 1)),
                           "frame vectors") + "".join(f", {k} {p.base[k]}" for k in ("batch_size",) if k in p.base)
    text = (f"On {data.dataset} ({p.profile} profile; budget: {budget}; the baseline "
            f"{P.epochs_text(p.baseline_epochs, p.converge)}; "
            f"scores: {SCORE_RULES[p.score_rule]}) the test-size-weighted mean AUCs are: " + "; ".join(parts) + ". ")
    text += f"The best model here is {wa['value'].idxmax()}. "
    if "GANomaly" in wa.index:
        beat = wa.loc["GANomaly", "ci_low"] > wa.loc["DCASE baseline", "ci_high"]
        if beat:
            text += "GANomaly's CI lies wholly above the DCASE baseline's, as the paper finds. "
        else:
            text += "GANomaly's CI does not lie wholly above the DCASE baseline's, unlike the paper's finding; "
            gan = conv[conv.index.str.startswith(NAMES["ganomaly"] + " /")] if conv is not None and len(conv) else None
            if gan is None or not len(gan):
                text += "no convergence record says whether its training had finished. "
            elif gan.iloc[:, -1].eq("yes").all() and int(p.base.get("train_stride", 1)) > 1:
                text += short_window_text(gan["epochs run"], int(p.base["train_stride"]))
            elif gan.iloc[:, -1].eq("yes").all():
                text += (f"all {len(gan)} GANomaly models had trained until their loss was flat, so the gap is not a "
                         "matter of training time at this data size (it may lie in the data, the model reading or the "
                         "method). ")
            else:
                n = int((~gan.iloc[:, -1].eq("yes")).sum())
                text += (f"{n} of {len(gan)} GANomaly models were still improving when they stopped, so the gap may "
                         "be one of training time rather than of the method. ")
    if len(choice) and choice["points"].max() > 1:
        text += (f"Choosing settings on the test clips made the AUC look {optimism:.3f} better on average than choosing "
                 "them on other clips. ")
    else:
        text += ("Each model ran one setting per machine type (the published ones), so there was no choice for the test "
                 "clips to leak into: this run cannot measure the selection bias. ")
    if data.dataset != "dcase2020-dev":
        text += "These are synthetic machines, so the scoreboard marks the paper's numbers as not comparable."
    return text


def run(p: Params, progress: bool = True) -> Result:
    timer = P.Timer()
    data = P.load_data(p, p.machine_list)
    table = data.table
    test = data.test
    n_test = {m: int((test["machine"] == m).sum()) for m in p.machine_list}
    # features once, in parallel, cached: the sweep's workers read them from the cache
    clip_logmels(table["path"].tolist(), LogMelParams(n_mels=128, clip_db=-80.0), n_jobs=p.jobs, progress=progress)
    clip_logmels(table["path"].tolist(), LogMelParams(n_mels=128), n_jobs=p.jobs, progress=progress)
    code = code_fingerprint(["asdstudy.models.gans", "asdstudy.models.autoencoders", "asdstudy.training",
                             "asdstudy.features.logmel"])
    sweep = Sweep(results_dir() / "sweeps" / f"gans-{p.profile}", sweep_point)
    common = {"root": str(data.root), "code": code, "dataset": data.dataset}
    search, fixed = sweep_points(p, common)
    t0 = P.Timer()
    res1 = sweep.run(search + fixed, n_jobs=p.jobs, progress=progress, scheduler=p.scheduler or None)
    keys = (lambda q: p.grid) if p.settings == "grid" else (lambda q: PAPER_SETTINGS[q["kind"]][q["machine"]])
    halves = P.split_halves(test.assign(unit=test["id"]), p.cal_fraction, p.seed)
    sel = selection_table(with_rule(res1[res1["row"] == "score"], p.score_rule), search, halves, keys)
    choice = choose(sel)
    # with one point per (model, machine) there is no choice to leak into: no number, not 0
    searched = len(choice) and choice["points"].max() > 1
    optimism = float((choice["AUC, leaky on eval half"] - choice["AUC, honest on eval half"]).mean()) if searched else np.nan
    finals, extra = final_points(p, choice, search, fixed)
    res2 = sweep.run(extra, n_jobs=p.jobs, progress=progress, scheduler=p.scheduler or None) if extra else pd.DataFrame(columns=res1.columns)
    sweep_seconds = t0.seconds()
    res = with_rule(pd.concat([res1, res2], ignore_index=True), p.score_rule)
    scores = final_scores(res, finals)
    per_id = P.per_unit_metrics(scores, by=("kind", "method", "machine", "unit", "seed"), n_boot=p.n_boot, seed=p.seed)
    first = per_id[per_id["seed"] == p.seeds[0]]
    s0 = scores[scores["seed"] == p.seeds[0]]
    by_machine = P.mean_over_units(s0, by=("method", "machine"), n_boot=p.n_boot, seed=p.seed)
    seed_std = per_id.groupby(["method", "machine", "seed"])[["auc", "pauc_mcclish"]].mean().groupby(["method", "machine"]).std(ddof=1)
    by_machine["seed_std"] = [seed_std[r.metric].get((r.method, r.machine), np.nan) for r in by_machine.itertuples()]
    overall = P.machine_type_summary(s0, n_test, by=("method",), n_boot=p.n_boot, seed=p.seed)
    seed_means = per_id.groupby(["method", "machine", "seed"])[["auc", "pauc_mcclish"]].mean().reset_index()
    rng = per_id.groupby(["method", "machine", "seed"]).auc.mean().groupby(["method", "machine"]).agg(["min", "max"])
    seed_range = (rng["max"] - rng["min"]).unstack("method")
    pooled = pooled_per_machine(s0, p.n_boot, p.seed)
    rules = score_rule_table(s0, p.n_boot, p.seed)
    w = result_rows(p, data, first, by_machine, overall, n_test, pooled, rules)
    rows = w.frame()
    w.write()
    order = [NAMES[k] for k in ORDER if k == "baseline" or k in p.kinds]
    conv = convergence(res, finals)
    probe_machine, probe_pts = probe_points(p, by_machine, finals)
    probe_res = sweep.run(probe_pts, n_jobs=p.jobs, progress=progress, scheduler=p.scheduler or None) if probe_pts else None
    probe, probe_text = budget_probe(p, probe_machine, probe_pts, res, probe_res, finals, by_machine)
    return Result(
        params=p, data=data, n_test=n_test, arch=architectures(), plan=plan_text(p), selection=sel, choice=choice,
        optimism=optimism, per_id=per_id, by_machine=by_machine, overall=overall, pooled=pooled, score_rules=rules,
        seed_means=seed_means,
        history=loss_history(res, finals, p.kinds), convergence=conv, seed_range=seed_range, rows=rows,
        board=P.chapter_board("003", rows, CHAPTER, exclude_methods=("GMADE",)),
        discussion=discussion(p, data, overall, choice, optimism, order, conv) + (f" {probe_text}" if probe_text else ""),
        sweep_seconds=sweep_seconds,
        seconds=timer.seconds(), n_points=len(search) + len(fixed) + len(extra) + len(probe_pts),
        probe=probe, probe_text=probe_text)
