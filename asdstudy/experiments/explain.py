"""Paper 004's experiment: AST embeddings with k-NN scores, SLIME explanations and frequency
filter sweeps, and the study's own question: does an explanation point at the injected band?

What the paper did: an AudioSet-pretrained AST fine-tuned to classify machine + section on
DCASE 2021 Task 2; a clip's score is the distance of its 768-d embedding to the nearest
training embedding of its section (k = 1); Table 1 (Mel vs STFT input, mean AUC over sections
x domains); SLIME over 8 frequency bands with labels from the EER threshold (Figure 4); the
AST retrained after low- and high-pass filtering at 400 Hz .. 8 kHz (Figure 3).

What the study does: the same steps through named functions (:func:`knn_units`,
:func:`slime_units`, :func:`filter_sweep`); a small AST trained from scratch, labelled as such,
when the pretrained weights are absent; means over sections x domains with bootstrap CIs; and,
on the synthetic factory whose anomaly bands are known, the share of anomalous clips whose top
SLIME band overlaps the injected band, for the AST and every other chapter's detector
(:func:`explanation_accuracy`), beside its chance rate.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import metrics as M
from ..explain import filters as FL
from ..explain import slime as SL
from ..features.embeddings import AST_HUB_ID, ASTEmbedder, ASTInputParams, find_ast_weights
from ..models.knn import KNNDetector
from ..results import ResultWriter
from ..scoreboard import NO_WORSE_MARGIN
from . import protocol as P

CHAPTER = "explain"
NAME = {"mel": "AST (Mel) + kNN", "stft": "AST (STFT) + kNN"}
SR = 16000


@dataclass
class Params(P.ChapterParams):
    machines: list = field(default_factory=lambda: ["fan", "slider", "valve"])
    n_train: int = 0
    n_test: int = 0
    inputs: list = field(default_factory=lambda: ["mel", "stft"])
    ast_weights: str = "auto"
    epochs: int = 8
    lr: float = 1e-3
    batch_size: int = 16
    small: dict = field(default_factory=lambda: {"hidden": 96, "layers": 2, "heads": 4})
    k: int = 1
    knn_metric: str = "cosine"
    cutoffs: list = field(default_factory=lambda: [2000, 5000])
    sweep_epochs: int = 5
    n_bands: int = 8
    n_masks: int = 64
    slime_clips: int = 6
    #: what an occluded band holds (:data:`asdstudy.explain.slime.FILLS`); the first drives Figure 4
    #: and the explanation table, every one is scored (the fill table)
    slime_fills: list = field(default_factory=lambda: ["silence", "normal"])
    detector_epochs: int = 20
    #: the paper's Figure 4 (SLIME heatmaps): source domain, section 00, every machine
    fig4: dict = field(default_factory=lambda: {"section": "00", "domain": "source"})
    #: the paper's Figure 5 (similarities, t-SNE): Gearbox, source domain, section 01
    fig5: dict = field(default_factory=lambda: {"machine": "gearbox", "section": "01", "domain": "source"})

    def validate(self):
        super().validate()
        bad = [i for i in self.inputs if i not in NAME]
        if bad or not self.inputs:
            raise P.ASDStudyError(f"parameter 'inputs' is {self.inputs}; use some of {list(NAME)}.")
        nyquist = SR / 2
        out = [c for c in self.cutoffs if not 0 < c < nyquist]
        if out:
            raise P.ASDStudyError(f"parameter 'cutoffs' has {out}: a filter cutoff must lie strictly between 0 and the "
                                  f"Nyquist frequency ({nyquist:.0f} Hz at {SR} Hz).")
        for name in ("k", "n_bands", "n_masks", "batch_size"):
            P._positive(self, name)
        fills = list(self.slime_fills)  # a list by its annotation (from_mapping refuses anything else)
        if not fills or any(f not in SL.FILLS for f in fills) or len(set(fills)) < len(fills):
            raise P.ASDStudyError(f"parameter 'slime_fills' is {self.slime_fills!r}; give one or more of {list(SL.FILLS)}, "
                                  "each once (what an occluded band holds).")


@dataclass
class Result:
    params: Params
    data: P.ChapterData
    table: pd.DataFrame
    counts: pd.DataFrame
    centroids: pd.DataFrame
    centroid_curves: pd.DataFrame  # Figure 2: centroid per frame over time, mean over clips per machine
    ast_note: str
    classes_note: str
    accuracy: dict
    fit_seconds: dict
    units: dict
    test_scores: dict
    table1: pd.DataFrame
    claimed1: pd.DataFrame
    mean_ci: pd.DataFrame
    heat: pd.DataFrame
    heat_bands: list
    figure_units: dict          # {"fig4": sentence, "fig5": sentence}: which section / domain each shows
    slime_seconds: float
    sweep_rows: pd.DataFrame
    sweep_seconds: float
    sweep_resumed: list         # the (filter kind, cutoff) settings read back from an interrupted earlier run
    detectors_note: str         # which other detectors were trained and explained, and why
    filter_directions: pd.DataFrame
    similarity: pd.DataFrame
    tsne: pd.DataFrame
    expl: pd.DataFrame
    expl_fills: pd.DataFrame     # the explanation table's key columns for every occlusion fill (column ``fill``)
    expl_by_machine: pd.DataFrame
    rows: pd.DataFrame
    board: pd.DataFrame
    discussion: str
    seconds: float

    def glue(self) -> dict:
        p = self.params
        return {"xp_ast_note": self.ast_note, "xp_classes_note": self.classes_note, "xp_n_masks": p.n_masks, "xp_n_bands": p.n_bands,
                "xp_masks_scored": masks_scored_text(p),
                "xp_cutoffs": ", ".join(f"{c} Hz" for c in p.cutoffs), "xp_detector_epochs": p.detector_epochs,
                "xp_training_rule": P.training_rule_text(p, table=False),
                "xp_chapter_minutes": self.seconds / 60, "xp_no_worse_margin": f"{NO_WORSE_MARGIN:g}",
                "xp_fig4_unit": self.figure_units["fig4"], "xp_sweep_resumed": self.resumed_text(),
                "xp_detectors_note": self.detectors_note, "xp_explain_rule": EXPLAIN_RULE, "xp_slime_reading": slime_reading(p, scored=len(self.expl) > 0), "xp_fig5_unit": self.figure_units["fig5"],
                "xp_sweep_reference": ("Table 1's model (the sweep trains at its budget)" if reuses_table1_model(p)
                                       else f"an unfiltered AST trained at the sweep's budget ({p.sweep_epochs} epochs, "
                                            f"Table 1's has {p.epochs}), so every comparison is like for like")}

    def resumed_text(self) -> str:
        n = len(self.params.cutoffs) * 2 + 1
        if not self.sweep_resumed:
            return f"All {n} settings of the sweep were trained in this run."
        return (f"{len(self.sweep_resumed)} of the sweep's {n} settings were read back from an earlier, interrupted "
                "run of the same code, parameters and data (each setting is stored the moment it finishes); the "
                "others were trained in this run.")


#: What an occluded band holds, in words (the fills of :data:`asdstudy.explain.slime.FILLS`).
FILL_WORDS = {"silence": "the clip's minimum (silence in a log spectrogram)",
              "normal": "the band's mean level over the detector's training normals"}


def slime_reading(p: Params, scored: bool = True) -> str:
    """Which test clips SLIME explains and what an occluded band holds, said against the paper
    (``scored``: the data knows the injected bands, so every fill is run; else only the first)."""
    fills = list(p.slime_fills) if scored else list(p.slime_fills)[:1]
    paper = ("The paper runs SLIME on every test clip by section (about 8.4k clips with its 1,000 masks: 8.4 M "
             "AST passes). The paper does not say what an occluded band holds; here it is set to "
             f"{FILL_WORDS[fills[0]]}" + (" (Figure 4 and the explanation table), and every explanation is "
                                          "repeated with " + " and ".join(FILL_WORDS[f] for f in fills[1:])
                                          + " (the fill table)" if len(fills) > 1 else "") + ". ")
    if not p.slime_clips:
        return paper + "This run explains every test clip too."
    return paper + (f"This run explains {p.slime_clips} test clips per machine, section and condition, split "
                    "evenly over the domains (the paper profile: 20); `-p slime_clips 0` explains every clip as the "
                    "paper did, at the cost the preflight's plan gives.")


# ------------------------------------------------------------------------------------ steps

def subsample(t: pd.DataFrame, n_train: int, n_test: int, seed: int) -> pd.DataFrame:
    """The CPU profiles' subsample: ``n_train`` source-domain training clips per section and
    every target-domain training clip (there are few); ``n_test`` test clips per section,
    domain and condition (0 = all)."""
    parts = []
    for (_, _, dom, split, _), g in t.groupby(["machine", "section", "domain", "split", "label"], dropna=False):
        n = n_train if split == "train" else n_test
        if split == "train" and dom == "target":
            n = 0
        parts.append(g if not n or len(g) <= n else g.sample(n, random_state=seed))
    return pd.concat(parts).sort_values("path").reset_index(drop=True)


def spectral_centroids(train: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Figure 2: the spectral centroid (librosa, n_fft 2048, hop 512) of every frame of the inlier
    training clips, as the paper plots it: per machine and frame, the mean over clips (the
    curve over time, where e.g. ToyCar's and ToyTrain's dips at the start and end show) with
    its interquartile range over clips; and a summary per machine (mean, spread over clips and
    within clips).

    Returns:
        (summary per machine, curves with columns machine, frame, time_s, centroid_hz, q25_hz, q75_hz)
    """
    import librosa

    from ..audio import load

    per_clip, curves = [], []
    for m, g in train.groupby("machine", sort=True):
        cs = []
        for path in g["path"]:
            y, sr = load(path, expected_sr=SR)
            c = librosa.feature.spectral_centroid(y=y, sr=sr, n_fft=2048, hop_length=512)[0]
            cs.append(c)
            per_clip.append((m, c.mean(), c.std()))
        n = min(len(c) for c in cs)
        C = np.stack([c[:n] for c in cs])
        curves.append(pd.DataFrame({"machine": m, "frame": np.arange(n), "time_s": np.arange(n) * 512 / SR,
                                    "centroid_hz": C.mean(0), "q25_hz": np.quantile(C, 0.25, axis=0),
                                    "q75_hz": np.quantile(C, 0.75, axis=0)}))
    cent = pd.DataFrame(per_clip, columns=["machine", "mean_hz", "within_clip_std_hz"])
    summary = cent.groupby("machine").agg(centroid_hz=("mean_hz", "mean"), across_clips_std_hz=("mean_hz", "std"),
                                          within_clip_std_hz=("within_clip_std_hz", "mean"))
    return summary, pd.concat(curves, ignore_index=True)


def classes_note(table: pd.DataFrame) -> str:
    """The machine + section classes the AST is trained on, said in one sentence beside the
    paper's 42 (7 machine types x 6 sections, which needs DCASE 2021's evaluation-set training
    sections 03-05 besides the development set's 00-02: with the development set alone, 21)."""
    train = table[table["split"] == "train"]
    n = train["cls"].nunique()
    secs = sorted(train["section"].astype(str).unique())
    tested = sorted(table[table["split"] == "test"]["section"].astype(str).unique())
    text = (f"The AST is trained on {n} machine + section classes ({train['machine'].nunique()} machine types x "
            f"sections {', '.join(secs)}); k-NN scores are computed for the sections with test clips ({', '.join(tested)}).")
    if n != 42:
        text += (" The paper's 42 classes are DCASE 2021's 7 machine types x 6 sections, which needs the evaluation "
                 "set's training sections 03-05 besides the development set's 00-02 (with the development set alone "
                 "there are 21).")
    return text


def ast_weights(p: Params):
    """The pretrained AST weights when found (never downloaded), and the sentence the chapter shows."""
    pretrained = None
    if p.ast_weights != "none":
        pretrained = find_ast_weights(None if p.ast_weights == "auto" else p.ast_weights)
    if pretrained:
        return pretrained, f"The AST starts from the pretrained AudioSet weights found at {pretrained} and is fine-tuned as the paper."
    return None, (f"Pretrained AudioSet AST weights ({AST_HUB_ID}) are not available on this machine, so a small AST "
                  f"({p.small['layers']} layers, width {p.small['hidden']}, non-overlapping 16x16 patches) is trained from "
                  "scratch on the machine+section task: its numbers describe that small model, not the paper's pretrained one.")


def train_ast(p: Params, weights, kind: str, train: pd.DataFrame, epochs: int, filt: tuple = ("", 0.0)) -> ASTEmbedder:
    """Fine-tune (or train) the AST to classify machine + section on ``train``; ``filt`` (kind,
    cutoff) filters the audio inside the AST's feature pipeline, for training and for every
    clip it later embeds."""
    params = ASTInputParams(kind=kind, filter_kind=filt[0], cutoff=float(filt[1]))
    emb = ASTEmbedder(params, weights=weights, epochs=epochs, lr=p.lr, batch_size=p.batch_size,
                      seed=p.seed, small=p.small, jobs=p.jobs)
    return emb.fit(emb.spectrograms(train), train["cls"].values)


def _timed_ast(p: Params, weights, kind: str, train: pd.DataFrame):
    t0 = P.Timer()
    emb = train_ast(p, weights, kind, train, p.epochs)
    return emb, t0.seconds()


def train_asts(p: Params, weights, kinds, train: pd.DataFrame) -> dict:
    """Table 1's ASTs, one per input kind: ``{kind: (embedder, fit seconds)}``, trained side by
    side in workers when ``jobs`` > 1 on a CPU (:func:`asdstudy.training.side_by_side`)."""
    from ..training import side_by_side

    kinds = list(kinds)
    return dict(zip(kinds, side_by_side(_timed_ast, [(p, weights, kind, train) for kind in kinds], p.jobs)))


def knn_units(emb, train: pd.DataFrame, test: pd.DataFrame, k: int, metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """k-NN scores per (machine, section) from the AST's embeddings; AUC per section x domain."""
    rows, scores = [], []
    for (m, sec), tr in train.groupby(["machine", "section"]):
        te = test[(test["machine"] == m) & (test["section"] == sec)]
        if te.empty:
            continue
        s = KNNDetector(emb, k=k, metric=metric).fit(tr).score(te)
        scored = te.assign(score=s)
        scores.append(scored)
        for dom, g in scored.groupby("domain"):
            rows.append({"machine": m, "section": sec, "domain": dom, "auc": M.auc(g["label"], g["score"]),
                         "n_normal": int((g["label"] == 0).sum()), "n_anomaly": int((g["label"] == 1).sum())})
    return pd.DataFrame(rows), pd.concat(scores, ignore_index=True)


#: The method name of paper 004's directional claim "STFT matches or exceeds Mel".
DIFFERENCE = "AST (STFT) + kNN - AST (Mel) + kNN"


def input_difference(test_scores: dict, p: Params) -> pd.DataFrame:
    """Per machine type, the mean over sections x domains of AUC(STFT input) - AUC(Mel input),
    with a paired-bootstrap CI (both k-NN detectors scored on the same test clips). Empty
    unless both inputs ran."""
    if not {"mel", "stft"} <= set(test_scores):
        return pd.DataFrame()
    cols = ["path", "machine", "section", "domain", "label"]
    both = test_scores["stft"][cols + ["score"]].merge(test_scores["mel"][["path", "score"]], on="path",
                                                        suffixes=("_stft", "_mel"))
    rows = []
    for m, g in both.groupby("machine"):
        units = [(u["label"].to_numpy(int), u["score_stft"].to_numpy(), u["score_mel"].to_numpy())
                 for _, u in g.groupby(["section", "domain"]) if u["label"].nunique() == 2]
        if units:
            ci = M.paired_mean_difference_ci(units, "auc", n_boot=p.n_boot, seed=p.seed)
            rows.append({"machine": m, "value": ci.value, "ci_low": ci.low, "ci_high": ci.high,
                         "n_normal": int((g["label"] == 0).sum()), "n_anomaly": int((g["label"] == 1).sum())})
    return pd.DataFrame(rows)


def section_domain_means(scores: pd.DataFrame, p: Params) -> pd.DataFrame:
    """Mean AUC over a machine type's sections x domains, with the CI of that mean."""
    return P.mean_over_units(scores, by=("machine",), unit=["section", "domain"], metrics=("auc",),
                             n_boot=p.n_boot, seed=p.seed)


def table1(units: dict, inputs) -> pd.DataFrame:
    """Table 1: mean AUC over sections x domains per machine, and the DCASE 2021 harmonic mean."""
    t = {}
    for kind in inputs:
        u = units[kind]
        t[NAME[kind]] = u.groupby("machine").auc.mean()
        t[NAME[kind] + ", hmean"] = P.aggregate_units(u, value="auc", by="machine", scheme="dcase2021")
    return pd.DataFrame(t).T


def pick_clips(t: pd.DataFrame, per_group: int, seed: int) -> pd.DataFrame:
    """``per_group`` clips per machine, section and label (0: all), split evenly over the domains
    so that both domains are explained (Figure 4 shows the source domain)."""
    if not per_group:
        return t
    keys = ["machine", "section", "label"] + (["domain"] if "domain" in t else [])
    n = max(1, per_group // (t["domain"].nunique() if "domain" in t else 1))
    return t.sample(frac=1, random_state=seed).groupby(keys).head(n).sort_index()


def unit_train(train: pd.DataFrame, machine: str, section, unit: str) -> pd.DataFrame:
    """The training clips of the model that scores (machine, section): that section's, or
    (``unit="machine"``) every section's of the machine type."""
    return train[train["machine"] == machine] if unit == "machine" else \
        train[(train["machine"] == machine) & (train["section"] == section)]


def slime_units(get_detector, scores: pd.DataFrame, p: Params, train_of=None, anomalies_only: bool = False,
                fills=None) -> dict:
    """SLIME per (machine, section): labels from that section's EER threshold on all its test
    scores; the chosen clips (all, or anomalies only) explained with the same masks, once per
    occlusion fill of ``p.slime_fills``. ``train_of(machine, section)``: the training clips of
    the detector scoring that section, whose mean level the ``normal`` fill puts in an occluded
    band (``fills``: those of ``p.slime_fills`` to run; default all). Returns {fill: [(chosen
    clips, Explanation) per section]}."""
    fills = list(p.slime_fills if fills is None else fills)
    if "normal" in fills and train_of is None:
        raise P.ASDStudyError("the 'normal' occlusion fill needs the detectors' training clips (train_of).")
    levels, tasks, picked = {}, [], []  # one normal level per model: a per-machine model scores several sections
    for (m, sec), te in scores.groupby(["machine", "section"]):
        det = get_detector(m, sec)
        _, thr = M.eer(te["label"], te["score"])
        chosen = pick_clips(te[te["label"] == 1] if anomalies_only else te, p.slime_clips, p.seed)
        if "normal" in fills and id(det) not in levels:
            levels[id(det)] = SL.normal_level(det.spectrograms(train_of(m, sec)))
        refs = {fill: levels[id(det)] if fill == "normal" else None for fill in fills}
        tasks.append((det, det.spectrograms(chosen), thr, refs))
        picked.append(chosen.reset_index(drop=True))
    out = {f: [] for f in fills}
    for chosen, explained in zip(picked, _explain_all(tasks, p)):
        for fill in fills:
            out[fill].append((chosen, explained[fill]))
    return out


def masks_scored_text(p: Params) -> str:
    """How many of the random patterns are distinct, so how many detector passes a clip costs."""
    n = len(SL.distinct_masks(SL.random_masks(p.n_masks, p.n_bands, p.seed))[0])
    return (f"The {p.n_masks:,} draws hold {n} distinct patterns (there are {2 ** p.n_bands:,} over "
            f"{p.n_bands} bands); each is scored once and its score given to every draw of it, so a clip costs "
            f"{n} detector passes and the surrogate still sees all {p.n_masks:,} draws.")


def _explain_one(det, specs, thr: float, refs: dict, p: Params) -> dict:
    """One section's SLIME explanations, one per fill."""
    return {fill: SL.explain(det, specs, thr, n_bands=p.n_bands, n_masks=p.n_masks, seed=p.seed, fill=fill,
                             reference=ref) for fill, ref in refs.items()}


def _explain_all(tasks: list, p: Params) -> list:
    """:func:`_explain_one` for every (detector, spectrograms, threshold, references) task, in
    order; side by side in workers when ``jobs`` > 1 on a CPU
    (:func:`asdstudy.training.side_by_side`). The masks depend on the seed only, so every section
    is explained with the same masks wherever it runs."""
    from ..training import side_by_side

    return list(side_by_side(_explain_one, [(*task, p) for task in tasks], p.jobs))


def view_unit(table: pd.DataFrame, want: dict, machines) -> tuple[dict, str]:
    """The (machine,) section and domain a figure of the paper shows, if this data has them, and
    one sentence saying which was used: the paper's own, or the nearest present (named) when
    the data lacks it (the synthetic factory has no gearbox, for one)."""
    got, missing = {}, []
    for key in ("machine", "section", "domain"):
        if key not in want:
            continue
        present = sorted(table[key].astype(str).unique())
        if str(want[key]) in present:
            got[key] = str(want[key])
        else:
            got[key] = (machines[0] if key == "machine" and machines[0] in present else present[0])
            missing.append(f"{key} {want[key]}")
    words = ", ".join(f"{k} {v}" for k, v in got.items())
    if missing:
        return got, (f"The paper's choice ({', '.join(missing)}) is not in this data, so the figure shows {words} "
                     "instead.")
    return got, f"As in the paper, the figure shows {words}."


def heat_frame(results: list, unit: dict | None = None) -> pd.DataFrame:
    """Figure 4: the median importance for the correct decision per machine and condition, over
    the explained clips of ``unit`` (section and domain; the paper's: source section 00)."""
    imp = np.vstack([SL.towards_correct(ex.importance, c["label"]) for c, ex in results])
    meta = pd.concat([c for c, _ in results], ignore_index=True)
    keep = np.ones(len(meta), bool)
    for key, v in (unit or {}).items():
        keep &= meta[key].astype(str).to_numpy() == str(v)
    if not keep.any():
        raise P.ASDStudyError(f"Figure 4: no explained clip of {unit}; raise 'slime_clips' or change 'fig4'.")
    meta = meta[keep].reset_index(drop=True)
    meta["condition"] = np.where(meta["label"] == 1, "anomaly", "inlier")
    return SL.median_heatmap(imp[keep], meta[["machine", "condition"]])


def reuses_table1_model(p: Params) -> bool:
    """The sweep's unfiltered model is Table 1's (paper 004 trains once per setting) when the
    sweep trains at Table 1's budget; at a smaller sweep budget the sweep trains its own
    unfiltered reference, so that every filtered model is compared with one trained alike."""
    return p.sweep_epochs == p.epochs


def sweep_store(p: Params, table: pd.DataFrame, weights, kind0: str) -> Path:
    """The folder a filter sweep stores its finished settings in (see :func:`FL.sweep`): named
    by a hash of everything its results depend on -- every parameter but ``jobs``, the input
    kind, the content of every clip, the AST weights' identity and the source of the whole
    package -- so a resumed sweep never reads a setting trained by other code, parameters or
    data."""
    import dataclasses
    import hashlib
    import json

    from ..features.cache import cache_dir, content_hash

    h = hashlib.blake2b(digest_size=10)
    params = {k: v for k, v in dataclasses.asdict(p).items() if k not in ("jobs", "data_root")}
    h.update(json.dumps({"params": params, "kind0": kind0}, sort_keys=True, default=str).encode())
    for path in table["path"]:
        h.update(content_hash(path).encode())
    if weights:
        w = Path(str(weights))
        files = sorted(w.rglob("*")) if w.is_dir() else [w] if w.exists() else []
        h.update(str(weights).encode())
        for f in files:
            if f.is_file():
                h.update(f"{f.name}|{f.stat().st_size}|{f.stat().st_mtime_ns}".encode())
    pkg = Path(__file__).resolve().parent.parent
    for f in sorted(pkg.rglob("*.py")):
        h.update(f.relative_to(pkg).as_posix().encode())
        h.update(f.read_bytes())
    return cache_dir() / "sweeps" / f"explain-filters-{h.hexdigest()}"


def filter_sweep(p: Params, weights, table: pd.DataFrame, kind0: str, progress: bool, ast0=None,
                 store: str | Path | None = None):
    """Figure 3: the AST retrained from the start and the k-NN refitted on low- / high-passed audio
    at every cutoff (filtering before any feature, at training and test time alike, inside the
    AST's feature pipeline: no filtered copies of the clips are written); the
    unfiltered reference is Table 1's model ``ast0`` when :func:`reuses_table1_model`. Each
    setting is stored in ``store`` as it finishes (default :func:`sweep_store`), so an
    interrupted chapter resumes its sweep. Returns the rows, the ASTs Figure 5 needs by (filter
    kind, cutoff), every model's per-clip test scores and classification hits by (filter kind,
    cutoff) -- keyed by the unfiltered clip's path (column ``clip``), so that
    :func:`filter_directions` can pair them -- and the settings read back from an earlier run."""
    table = table.assign(clip=table["path"])
    views = {("lowpass", min(p.cutoffs)), ("highpass", max(p.cutoffs))}  # the models Figure 5 shows

    def run_filtered(t, kind, cutoff):
        tr, te = t[t["split"] == "train"], t[t["split"] == "test"]
        reuse = kind == "none" and ast0 is not None and reuses_table1_model(p)
        filt = ("", 0.0) if kind == "none" else (kind, cutoff)
        emb = ast0 if reuse else train_ast(p, weights, kind0, tr, p.sweep_epochs, filt)
        hits = emb.predict(emb.spectrograms(te)) == te["cls"].values
        _, scores = knn_units(emb, tr, te, p.k, p.knn_metric)
        r = section_domain_means(scores, p).rename(columns={"value": "auc"})
        r["accuracy"] = float(np.mean(hits))
        return {"rows": r[["machine", "auc", "ci_low", "ci_high", "accuracy"]],
                "scores": scores[["clip", "machine", "section", "domain", "label", "score"]],
                "hits": pd.Series(hits.astype(float), index=te["clip"].values),
                "model": emb if (kind, cutoff) in views else None}

    keep = {}
    folder = store if store is not None else sweep_store(p, table, weights, kind0)
    rows = FL.sweep(run_filtered, table, cutoffs=p.cutoffs, sr=SR, n_jobs=p.jobs, progress=progress,
                    store=folder, keep=keep)
    resumed = keep.pop("resumed")
    asts = {key: v["model"] for key, v in keep.items() if v["model"] is not None}
    kept = {key: (v["scores"], v["hits"]) for key, v in keep.items()}
    return rows, asts, kept, resumed


#: The filter kinds as the result rows name them.
FILTER_NAME = {"lowpass": "low-pass", "highpass": "high-pass"}


def filter_method(kind0: str, kind: str) -> str:
    """The method name of a filter-sweep difference row (paper 004's Figure 3 directions)."""
    return f"{NAME[kind0]}, {FILTER_NAME[kind]} - unfiltered"


#: The method name of the classification-accuracy differences of the filter sweep.
ACCURACY_METHOD = "AST fine-tuned (machine+section), {} - unfiltered"


def filter_directions(kept: dict, p: Params, kind0: str) -> pd.DataFrame:
    """Paper 004's Figure 3 read as directions: per machine type and filter kind, the mean over
    the sweep's cutoffs of [AUC(filtered) - AUC(unfiltered)] (each AUC the mean over sections x
    domains), with a paired bootstrap on the same test clips (every cutoff's model and the
    unfiltered one scored on the same resample); and per filter kind the mean over cutoffs of
    the classification accuracy's change, bootstrapped over the test clips."""
    base_scores, base_hits = kept[("none", 0)]
    rows = []
    for kind in FL.KINDS:
        keys = sorted(k for k in kept if k[0] == kind)
        if not keys:
            continue
        wide = base_scores.set_index("clip")
        cols = []
        for key in keys:
            s = kept[key][0].set_index("clip")["score"].rename(f"c{key[1]}")
            wide = wide.join(s, how="inner")
            cols.append(f"c{key[1]}")
        for m, g in wide.groupby("machine"):
            units = [(u["label"].to_numpy(int), u[cols].to_numpy(), u["score"].to_numpy())
                     for _, u in g.groupby(["section", "domain"]) if u["label"].nunique() == 2]
            if not units:
                continue
            ci = M.paired_mean_difference_ci(units, "auc", n_boot=p.n_boot, seed=p.seed)
            rows.append({"method": filter_method(kind0, kind), "metric": "auc_difference", "machine": m, "unit": "mean",
                         "value": ci.value, "ci_low": ci.low, "ci_high": ci.high,
                         "n_normal": int((g["label"] == 0).sum()), "n_anomaly": int((g["label"] == 1).sum()),
                         "note": f"mean over the cutoffs {', '.join(str(int(k[1])) for k in keys)} Hz of the mean over "
                                 "sections x domains of AUC(filtered) - AUC(unfiltered); paired bootstrap on the same clips"})
        hits = pd.concat([kept[key][1].rename(key[1]) for key in keys], axis=1).mean(axis=1)
        change = hits - base_hits.reindex(hits.index)
        ci = P.share_ci(change.to_numpy(), n_boot=p.n_boot, seed=p.seed)
        rows.append({"method": ACCURACY_METHOD.format(FILTER_NAME[kind]), "metric": "accuracy_difference",
                     "machine": "all", "unit": "all", "value": ci.value, "ci_low": ci.low, "ci_high": ci.high,
                     "note": "mean over the cutoffs of accuracy(filtered) - accuracy(unfiltered) on the test clips; "
                             "bootstrap over the clips"})
    return pd.DataFrame(rows)


def filter_views(p: Params, table: pd.DataFrame, ast0, sweep_asts: dict, kind0: str, unit: dict | None = None):
    """Figure 5 for one machine type, section and domain (``unit``; the paper's: Gearbox source
    section 01; default: the first machine type, every section and domain): k-NN similarities
    and a t-SNE map of the test embeddings, unfiltered and after the strongest low- and
    high-pass filters."""
    from sklearn.manifold import TSNE

    unit = dict(unit or {"machine": p.machines[0]})
    m0 = unit.pop("machine")
    lo, hi = min(p.cutoffs), max(p.cutoffs)
    # each sweep AST filters the audio in its own feature pipeline: the same table serves every view
    views = {"unfiltered": (table, ast0), f"low-pass {lo} Hz": (table, sweep_asts[("lowpass", lo)]),
             f"high-pass {hi} Hz": (table, sweep_asts[("highpass", hi)])}
    sims, maps = [], []
    for title, (t, emb) in views.items():
        tr, te = t[(t["split"] == "train") & (t["machine"] == m0)], t[(t["split"] == "test") & (t["machine"] == m0)]
        for key, v in unit.items():  # the k-NN reference stays the section's training clips
            te = te[te[key].astype(str) == str(v)]
            tr = tr[tr["section"].astype(str) == str(v)] if key == "section" else tr
        parts = [tes.assign(sim=1 - KNNDetector(emb, k=p.k, metric=p.knn_metric).fit(trs).score(tes))
                 for sec, trs in tr.groupby("section") for tes in [te[te["section"] == sec]]]
        s = pd.concat(parts)
        auc = M.auc(s["label"], -s["sim"])
        where = m0 + "".join(f" {k} {v}" for k, v in unit.items())
        sims.append(s[["label", "sim"]].assign(view=f"{where}, {title}: AUC {auc:.3f}", score=s["sim"]))
        e = emb.embed(emb.spectrograms(te))
        xy = TSNE(n_components=2, perplexity=max(1, min(30, (len(e) - 1) // 3)), random_state=p.seed,
                  init="pca").fit_transform(e)
        maps.append(pd.DataFrame({"view": f"t-SNE of test embeddings ({title})", "t-SNE 1": xy[:, 0], "t-SNE 2": xy[:, 1],
                                  "label": te["label"].to_numpy(int)}))
    return pd.concat(sims, ignore_index=True), pd.concat(maps, ignore_index=True)


#: The training unit of each other detector, as its paper (or the DCASE recipe) trains it:
#: "machine" (one model per machine type on all its sections) or "section".
DETECTOR_UNITS = {"DCASE baseline AE": "machine", "Dense AE (paper 002)": "machine", "VAE (paper 002)": "section",
                  "LSTM predictor (paper 001)": "machine", "GANomaly (paper 003)": "machine"}


#: The detector whose scores are Table 1's DCASE 2021 baseline rows.
BASELINE = "DCASE baseline AE"


def detectors_note(is_synthetic: bool, p: Params) -> str:
    if is_synthetic:
        e = p.detector_epochs
        return (f"All {len(DETECTOR_UNITS)} detectors were trained (at most {e} epoch{'' if e == 1 else 's'} each"
                f"{', until flat' if p.converge else ''}) and explained.")
    return ("These recordings carry no ground-truth anomaly band, so no explanation can be scored right or wrong: "
            "of the other detectors only the DCASE baseline AE is trained (its rows answer Table 1's baseline), "
            "and none is explained.")


def other_detectors(p: Params) -> dict:
    """Every other chapter's detector at a short CPU budget, for SLIME on the same clips (each
    trained per its :data:`DETECTOR_UNITS`)."""
    from ..models.autoencoders import AEConfig, AutoencoderDetector, dcase_baseline
    from ..models.gans import GANConfig, GANDetector
    from ..models.sequence import SeqConfig, SequenceDetector

    e, s, j, c = p.detector_epochs, p.seed, p.jobs, p.converge
    return {
        "DCASE baseline AE": lambda: AutoencoderDetector(dcase_baseline(e, s, j, c)),
        "Dense AE (paper 002)": lambda: AutoencoderDetector(AEConfig(kind="ae", n_mels=64, epochs=e, batch_size=128, seed=s, jobs=j,
                                                                     converge=c)),
        "VAE (paper 002)": lambda: AutoencoderDetector(AEConfig(kind="vae", n_mels=128, epochs=e, batch_size=512, seed=s, jobs=j,
                                                                converge=c)),
        "LSTM predictor (paper 001)": lambda: SequenceDetector(SeqConfig(kind="lstm", epochs=e, train_stride=20, seed=s, jobs=j,
                                                                         converge=c)),
        "GANomaly (paper 003)": lambda: GANDetector(GANConfig(kind="ganomaly", epochs=e, batch_size=512, train_stride=4,
                                                              lr=1e-3, seed=s, jobs=j, converge=c, val_fraction=0.1)),
    }


def fit_per_section(make, train: pd.DataFrame, test: pd.DataFrame, unit: str = "section", n_jobs: int = 1):
    """Fit one detector per (machine, section) on its training clips, or (``unit="machine"``)
    one per machine type on all its sections' training clips (the DCASE 2021 baseline's
    recipe); scores and AUC per section and domain. Only sections with test clips are scored.
    ``n_jobs`` models are fitted at once (:func:`asdstudy.models.base.fit_many`).
    Returns ({(machine, section): the detector that scored it}, scores, AUC rows)."""
    return fit_detectors({"": make}, {"": unit}, train, test, n_jobs)[""]


def fit_detectors(makers: dict, units: dict, train: pd.DataFrame, test: pd.DataFrame, n_jobs: int = 1) -> dict:
    """:func:`fit_per_section` for several detectors at once: every model of every detector goes
    to one pool of ``n_jobs`` workers, so no worker idles while the last model of one detector
    trains (results in task order, as from one process). ``makers``: {name: callable() -> a new
    detector}; ``units``: {name: "section" or "machine"}. Returns {name: (fitted, scores, AUC rows)}."""
    from ..models.base import fit_many

    for name in makers:
        if units.get(name) not in ("section", "machine"):
            raise P.ASDStudyError(f"training unit {units.get(name)!r} of {name or 'the detector'}: use 'section' or "
                                  "'machine'.")
    scored_units = [(m, sec) for (m, sec), _ in train.groupby(["machine", "section"])
                    if ((test["machine"] == m) & (test["section"] == sec)).any()]
    # one training set per model: per section, or per machine type (shared by its sections)
    sets = {}
    for name in makers:
        for m, sec in scored_units:
            key = (name, m) if units[name] == "machine" else (name, m, sec)
            if key not in sets:
                sets[key] = unit_train(train, m, sec, units[name])
    fitted_sets = fit_many(((lambda _s, make=makers[key[0]]: make(), 0, t) for key, t in sets.items()), n_jobs)
    models = {key: det for key, (det, _) in zip(sets, fitted_sets)}
    out = {}
    for name in makers:
        fitted, scored, rows = {}, [], []
        for m, sec in scored_units:
            te = test[(test["machine"] == m) & (test["section"] == sec)]
            det = fitted[(m, sec)] = models[(name, m) if units[name] == "machine" else (name, m, sec)]
            sc = te.assign(score=det.score(te))
            scored.append(sc)
            rows += [{"machine": m, "section": sec, "domain": dom, "auc": M.auc(g["label"], g["score"])}
                     for dom, g in sc.groupby("domain")]
        out[name] = (fitted, pd.concat(scored, ignore_index=True), pd.DataFrame(rows))
    return out


#: The rule for scoring an explanation: SLIME explains a detector's decision, so it can point at
#: the fault only where the decision tracks the fault. An explanation accuracy counts as evidence
#: only for a detector whose mean AUC over the explained units has its 95 % CI above 0.5.
EXPLAIN_RULE = ("An explanation can be right only where the detector's decision tracks the fault: the chapter scores "
                "explanation accuracy as evidence only for a detector whose mean AUC over the explained sections and "
                "domains has its 95 % CI above 0.5; for a detector at chance SLIME explains noise, and its row is "
                "shown but marked.")


def detector_auc_ci(scores: pd.DataFrame, p: Params) -> dict:
    """Mean AUC over (machine, section, domain) units of one detector's test scores, with its CI."""
    m = P.mean_over_units(scores.assign(method="d"), by=("method",), unit=["machine", "section", "domain"],
                          metrics=("auc",), n_boot=p.n_boot, seed=p.seed)
    r = m.iloc[0]
    return {"detector mean AUC": float(r.value), "detector AUC low": float(r.ci_low), "detector AUC high": float(r.ci_high)}


#: The two reasons no occlusion flips an anomaly's decision (columns of the explanation table).
NO_FLIP_RAISED = "no flip: occlusion raised the score"
NO_FLIP_OTHER = "no flip: occlusion did not raise it"


def explanation_accuracy(all_slime: dict, det_auc: dict, n_boot: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per detector: the share of explained anomalous clips whose top SLIME band overlaps the
    injected band (a clip whose occlusions never changed the decision counts as wrong), with a
    bootstrap CI, its chance rate, and the two ways to miss kept apart: the top band is wrong
    (some occlusion flipped the decision, not the injected band's) or no occlusion flips the
    decision at all -- split by why: most occluded versions scored *higher* than the clip
    (silence where the model expects machine sound reads as a fault, so occlusion can only
    make an anomaly look more anomalous), or not (the detector ignored the bands, e.g. a clip
    far above the threshold); the share of clips explained and the detector's mean AUC."""
    parts = []
    for name, results in all_slime.items():
        for clips, ex in results:
            an = clips["label"].to_numpy() == 1
            if not an.any():
                continue
            a = SL.explanation_accuracy(ex.importance[an], ex.bands, clips["band_lo"][an], clips["band_hi"][an])
            a["hit"] &= a["explained"]
            parts.append(a.assign(detector=name, machine=clips["machine"][an].to_numpy(), flipped=ex.flipped[an],
                                  raised=ex.raised[an]))
    if not parts:
        return pd.DataFrame(), pd.DataFrame()
    acc = pd.concat(parts, ignore_index=True)
    rows = {}
    for name, g in acc.groupby("detector"):
        ci = P.share_ci(g["hit"], n_boot=n_boot, seed=seed)
        rows[name] = {"explanation accuracy": ci.value, "ci_low": ci.low, "ci_high": ci.high, "chance": g["chance"].mean(),
                      "top band wrong": float((g["explained"] & ~g["hit"]).mean()),
                      "no occlusion flips the decision": float((~g["explained"].astype(bool)).mean()),
                      NO_FLIP_RAISED: float((~g["explained"].astype(bool) & (g["raised"] > 0.5)).mean()),
                      NO_FLIP_OTHER: float((~g["explained"].astype(bool) & ~(g["raised"] > 0.5)).mean()),
                      "explained clips": g["explained"].mean(), "clips": len(g), **det_auc.get(name, {})}
    expl = pd.DataFrame(rows).T.astype(float).sort_values("explanation accuracy", ascending=False)
    if "detector AUC low" in expl:
        expl["detector above chance"] = np.where(expl["detector AUC low"] > 0.5, "yes", "no: at chance, not evidence")
    return expl, acc.pivot_table(index="detector", columns="machine", values="hit", aggfunc="mean")


#: The fill table's columns (one row per detector and occlusion fill).
FILL_COLUMNS = ["fill", "explanation accuracy", "ci_low", "ci_high", "chance", "explained clips",
                "no occlusion flips the decision", NO_FLIP_RAISED]


def fill_tables(all_slime: dict, det_auc: dict, p: Params) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The explanation table of the first fill, its per-machine accuracies, and the fill table:
    the key columns of every fill's explanation table, one row per detector and fill."""
    fills = list(p.slime_fills)
    per = {f: explanation_accuracy({n: r[f] for n, r in all_slime.items()}, det_auc, p.n_boot, p.seed) for f in fills}
    expl, expl_m = per[fills[0]]
    if expl.empty:
        return expl, expl_m, pd.DataFrame(columns=FILL_COLUMNS)
    ef = pd.concat([per[f][0].assign(fill=f).reindex(expl.index) for f in fills])
    return expl, expl_m, ef[FILL_COLUMNS]


def fill_text(ef: pd.DataFrame) -> str:
    """What the occlusion fill changes, from the fill table: how many clips get an explanation
    and, per detector, whether the accuracies' CIs overlap, against chance."""
    if ef.empty or ef["fill"].nunique() < 2:
        return ""
    fills = list(dict.fromkeys(ef["fill"]))
    a = ef[ef["fill"] == fills[0]]
    b = ef[ef["fill"] == fills[1]].reindex(a.index)

    def span(x):
        x = x.astype(float)
        return f"{x.min():.0%}" if np.isclose(x.min(), x.max()) else f"{x.min():.0%} to {x.max():.0%}"

    text = (f"With occluded bands at {FILL_WORDS[fills[1]]} instead of {FILL_WORDS[fills[0]]}, SLIME explains "
            f"{span(b['explained clips'])} of the anomalous clips per detector (against {span(a['explained clips'])}) "
            f"and its explanation is right for {span(b['explanation accuracy'])} (against "
            f"{span(a['explanation accuracy'])}; chance {span(a['chance'])}). ")
    higher = [n for n in a.index if b.loc[n, "ci_low"] > a.loc[n, "ci_high"]]
    lower = [n for n in a.index if b.loc[n, "ci_high"] < a.loc[n, "ci_low"]]
    if higher:
        text += f"The accuracy rises with the {fills[1]} fill, CIs apart, for {', '.join(higher)}. "
    if lower:
        text += f"It falls, CIs apart, for {', '.join(lower)}. "
    same = len(a) - len(higher) - len(lower)
    if same:
        text += (f"For {same} of {len(a)} detectors the two accuracies' CIs overlap: "
                 + ("the fill changes how many clips get an explanation more than whether it is right. "
                    if not higher else "there the fill does not decide whether the explanation is right. "))
    below = [n for n in a.index if max(a.loc[n, "ci_high"], b.loc[n, "ci_high"]) < a.loc[n, "chance"]]
    if below:
        text += (f"For {', '.join(below)} the accuracy's CI lies below chance under both fills: the top band avoids the "
                 "injected band more often than a random pick would, so these heatmaps mark where the detector's "
                 "score is sensitive, not where the fault is. ")
    return text


def result_rows(p: Params, data, mean_ci, units, accuracy_ci, baseline, sweep_rows, expl, kind0,
                expl_fills: pd.DataFrame | None = None) -> ResultWriter:
    w = ResultWriter(CHAPTER, profile=p.profile, seed=p.seed, dataset=data.dataset)
    for kind in p.inputs:
        mk = mean_ci[mean_ci["kind"] == kind]
        w.add_frame(mk.assign(unit="mean"), paper="004", method=NAME[kind])
        for m, u in units[kind].groupby("machine"):
            w.add("004", NAME[kind], "auc_hmean", float(P.aggregate_units(u, value="auc", by="", scheme="dcase2021").iloc[0]),
                  machine=m, unit="mean")
        ci = accuracy_ci[kind]
        w.add("004", "AST fine-tuned (machine+section)" if kind == kind0 else f"AST fine-tuned (machine+section, {kind})",
              "classification_accuracy", ci.value, machine="all", unit="all", ci=(ci.low, ci.high),
              note="on the test clips (the paper does not say which split); CI by bootstrap over clips")
    w.add_frame(baseline.assign(unit="mean"), paper="004", method="Autoencoder (baseline)")
    for m in sorted(baseline["machine"].unique()):
        w.add("004", "MobileNetV2 (baseline)", "auc", np.nan, machine=m, unit="mean",
              note="not re-run: the DCASE 2021 MobileNetV2 baseline is a separate supervised classifier whose code "
                   "and ImageNet weights this study does not include; Table 1's values are quoted only")
    for _, r in sweep_rows.iterrows():
        w.add("004", f"AST ({kind0}) + kNN, {r.kind} {int(r.cutoff)} Hz" if r.kind != "none" else f"AST ({kind0}) + kNN, sweep baseline",
              "auc", r.auc, machine=r.machine, unit="mean", ci=(r.ci_low, r.ci_high))
    fills = list(p.slime_fills)
    for name, r in expl.iterrows():
        w.add("004", name, "slime_explanation_accuracy", r["explanation accuracy"], machine="all", unit="all",
              ci=(r.ci_low, r.ci_high), note=f"occluded bands at {FILL_WORDS[fills[0]]}")
        w.add("004", name, "slime_chance", r.chance, machine="all", unit="all")
    if expl_fills is not None:
        for name, r in expl_fills[expl_fills["fill"] != fills[0]].iterrows():
            w.add("004", f"{name} [{r.fill} fill]", "slime_explanation_accuracy", r["explanation accuracy"], machine="all",
                  unit="all", ci=(r.ci_low, r.ci_high), note=f"occluded bands at {FILL_WORDS[r.fill]}")
    return w


def no_flip_text(expl: pd.DataFrame) -> str:
    """Why no occlusion flipped the decision, for the detectors where that is most common: most
    occluded versions scored higher (silence read as a fault) or not (the bands were ignored)."""
    noflip = expl["no occlusion flips the decision"].astype(float)
    if not len(noflip) or noflip.max() <= 0:
        return ""
    raised, other = [], []
    for n in expl.index[noflip > 0]:
        (raised if expl.loc[n, NO_FLIP_RAISED] > expl.loc[n, NO_FLIP_OTHER] else other).append(n)
    text = ""
    if raised:
        text += (f"Where no occlusion flips the decision, most occluded versions scored higher than the clip for "
                 f"{', '.join(raised)}: a band set to silence is itself unlike the normal sound these detectors learned, "
                 "so occluding it makes an anomaly look more anomalous, not less -- a property of the occlusion the "
                 "study reads into the paper (silence; the paper does not say), not evidence about the fault's band. ")
    if other:
        text += (f"For {', '.join(other)} the occluded versions mostly did not score higher: there the detector "
                 "ignored the occluded bands. ")
    return text


def discussion(p: Params, data, ast_note, units, sweep_rows, expl, expl_fills: pd.DataFrame | None = None) -> str:
    text = ast_note + " "
    best = {kind: units[kind].groupby("machine").auc.mean() for kind in p.inputs}
    if len(p.inputs) == 2:
        wins = int((best["stft"] > best["mel"]).sum())
        text += (f"STFT input beats Mel input on {wins} of {len(best['mel'])} machine types here "
                 "(the paper: 4 of 7, taken as support for the high-frequency hypothesis). ")
    lp = sweep_rows[sweep_rows["kind"] == "lowpass"].groupby("cutoff").auc.mean()
    hp = sweep_rows[sweep_rows["kind"] == "highpass"].groupby("cutoff").auc.mean()
    b0 = sweep_rows[sweep_rows["kind"] == "none"].auc.mean()
    text += (f"Averaged over machine types, the unfiltered AUC is {b0:.3f}; the strongest low-pass ({min(p.cutoffs)} Hz) "
             f"gives {lp.iloc[0]:.3f} and the strongest high-pass ({max(p.cutoffs)} Hz) {hp.iloc[-1]:.3f}. ")
    if len(expl):
        top = expl["explanation accuracy"].astype(float).idxmax()
        text += (f"The explanation points at the injected band for {expl.loc[top, 'explanation accuracy']:.0%} of anomalous "
                 f"clips with {top} (chance {expl.loc[top, 'chance']:.0%}), and for "
                 + ", ".join(f"{expl.loc[n, 'explanation accuracy']:.0%} with {n}" for n in expl.index if n != top)
                 + ". Of the misses, " + ", ".join(
                     f"{n}: {expl.loc[n, 'top band wrong']:.0%} wrong band, {expl.loc[n, 'no occlusion flips the decision']:.0%} "
                     f"no flip ({expl.loc[n, NO_FLIP_RAISED]:.0%} because occlusion raised the score)" for n in expl.index)
                 + ". A heatmap that is bright in the high bands is therefore evidence about the detector, not necessarily "
                 "about where the fault is. ")
        text += no_flip_text(expl)
        if expl_fills is not None:
            text += fill_text(expl_fills)
        if "detector above chance" in expl:
            able = [n for n in expl.index if expl.loc[n, "detector above chance"] == "yes"]
            text += (EXPLAIN_RULE + " " + (
                f"By that rule the evidence here is {', '.join(able)}; " if able else
                "By that rule no detector here qualifies (every one is at chance on these clips at this budget), so "
                "none of the accuracies above is evidence about SLIME; ")
                + (f"{len(expl) - len(able)} of {len(expl)} detectors are at chance. " if len(able) < len(expl) else
                   "every detector qualifies. "))
    if data.dataset != "dcase2021-dev":
        text += "The paper's numbers are on DCASE 2021 with a pretrained AST; the scoreboard marks them not comparable here."
    return text


def run(p: Params, progress: bool = True) -> Result:
    timer = P.Timer()
    data = P.load_data(p, p.machines, variant="dcase2021")
    full = data.table
    table = subsample(full[full["label"].notna() | (full["split"] == "train")], p.n_train, p.n_test, p.seed)
    table["label"] = table["label"].astype(int)
    table["cls"] = table["machine"] + "-" + table["section"].astype(str)
    train = table[table["split"] == "train"].reset_index(drop=True)
    test = table[table["split"] == "test"].reset_index(drop=True)
    counts = table.groupby(["machine", "split", "domain"]).size().unstack([1, 2])
    centroids, centroid_curves = spectral_centroids(train)
    weights, ast_note = ast_weights(p)
    asts, units, test_scores, accuracy, accuracy_ci, fit_seconds = {}, {}, {}, {}, {}, {}
    for kind, (emb, seconds) in train_asts(p, weights, p.inputs, train).items():
        asts[kind], fit_seconds[kind] = emb, seconds
        hits = asts[kind].predict(asts[kind].spectrograms(test)) == test["cls"].values
        accuracy_ci[kind] = P.share_ci(hits, n_boot=p.n_boot, seed=p.seed)  # over the test clips
        accuracy[kind] = accuracy_ci[kind].value
        units[kind], test_scores[kind] = knn_units(asts[kind], train, test, p.k, p.knn_metric)
    claims = P.claims_of("004")
    claimed1 = claims[claims["metric"] == "auc"].pivot_table(index="method", columns="machine", values="value")
    mean_ci = pd.concat([section_domain_means(test_scores[kind], p).assign(kind=kind, method=NAME[kind])
                         for kind in p.inputs], ignore_index=True)
    # SLIME on the AST + k-NN detector
    kind0 = p.inputs[0]
    t0 = P.Timer()
    knn = {}

    def ast_knn(m, sec):
        if (m, sec) not in knn:
            knn[(m, sec)] = KNNDetector(asts[kind0], k=p.k, metric=p.knn_metric).fit(unit_train(train, m, sec, "section"))
        return knn[(m, sec)]

    # where the data knows the injected band (the factory), every explanation is scored under
    # every fill; on real recordings only the first fill runs (Figure 4): nothing to score
    is_synthetic = "band_lo" in table.columns and table["band_lo"].notna().any()
    first_fill = list(p.slime_fills)[0]
    ast_slime = slime_units(ast_knn, test_scores[kind0], p, train_of=lambda m, sec: unit_train(train, m, sec, "section"),
                            fills=None if is_synthetic else [first_fill])
    slime_seconds = t0.seconds()
    fig4_unit, fig4_text = view_unit(test, p.fig4, p.machines)
    heat = heat_frame(ast_slime[first_fill], fig4_unit)
    b0 = ast_slime[first_fill][0][1].bands
    heat_bands = [f"{lo / 1000:.1f}-{hi / 1000:.1f}" for lo, hi in zip(b0.lo_hz, b0.hi_hz)]
    # filter sweeps and Figure 5
    t0 = P.Timer()
    sweep_folder = sweep_store(p, table, weights, kind0)
    sweep_rows, sweep_asts, sweep_kept, sweep_resumed = filter_sweep(p, weights, table, kind0, progress,
                                                                     ast0=asts[kind0], store=sweep_folder)
    sweep_seconds = t0.seconds()
    directions = filter_directions(sweep_kept, p, kind0)
    fig5_unit, fig5_text = view_unit(test, p.fig5, p.machines)
    similarity, tsne = filter_views(p, table, asts[kind0], sweep_asts, kind0, fig5_unit)
    # every other chapter's detector, explained on the same clips -- where the data knows the
    # injected band; on real recordings only the DCASE baseline is trained (Table 1's baseline)
    others = other_detectors(p)
    if not is_synthetic:
        others = {BASELINE: others[BASELINE]}
    det_units, det_scores, all_slime = {}, {}, {NAME[kind0]: ast_slime}
    fits = fit_detectors(others, DETECTOR_UNITS, train, test, n_jobs=p.jobs)
    for name in others:
        fitted, scored, det_units[name] = fits[name]
        det_scores[name] = scored
        if is_synthetic:
            all_slime[name] = slime_units(lambda m, sec: fitted[(m, sec)], scored, p, anomalies_only=True,
                                          train_of=lambda m, sec, u=DETECTOR_UNITS[name]: unit_train(train, m, sec, u))
    det_auc = {name: detector_auc_ci(det_scores[name], p) for name in det_units}
    det_auc[NAME[kind0]] = detector_auc_ci(test_scores[kind0], p)
    expl, expl_m, expl_fills = fill_tables(all_slime, det_auc, p) if is_synthetic else \
        (pd.DataFrame(), pd.DataFrame(), pd.DataFrame(columns=FILL_COLUMNS))
    baseline = section_domain_means(det_scores[BASELINE], p)
    w = result_rows(p, data, mean_ci, units, accuracy_ci, baseline, sweep_rows, expl, kind0, expl_fills)
    direction = input_difference(test_scores, p)
    if len(direction):
        w.add_frame(direction, paper="004", method=DIFFERENCE, metric="auc_difference", unit="mean",
                    note="mean over sections x domains of AUC(STFT) - AUC(Mel), paired bootstrap on the same clips")
    for r in directions.itertuples(index=False):
        counts = {} if r.metric == "accuracy_difference" else {"n_normal": int(r.n_normal), "n_anomaly": int(r.n_anomaly)}
        w.add("004", r.method, r.metric, r.value, machine=r.machine, unit=r.unit, ci=(r.ci_low, r.ci_high),
              note=r.note, **counts)
    rows = w.frame()
    w.write()
    # the chapter finished: its stored sweep settings served their purpose (resuming an
    # interrupted run) and go, so a later run trains afresh and its text never says "resumed"
    # about a run that was not interrupted
    shutil.rmtree(sweep_folder, ignore_errors=True)
    return Result(
        params=p, data=data, table=table, counts=counts, centroids=centroids,
        centroid_curves=centroid_curves, ast_note=ast_note, classes_note=classes_note(table), accuracy=accuracy,
        fit_seconds=fit_seconds, units=units, test_scores=test_scores, table1=table1(units, p.inputs), claimed1=claimed1,
        mean_ci=mean_ci, heat=heat, heat_bands=heat_bands,
        figure_units={"fig4": fig4_text, "fig5": fig5_text}, slime_seconds=slime_seconds, sweep_rows=sweep_rows,
        sweep_seconds=sweep_seconds, sweep_resumed=sweep_resumed, detectors_note=detectors_note(is_synthetic, p),
        filter_directions=directions, similarity=similarity, tsne=tsne, expl=expl, expl_fills=expl_fills, expl_by_machine=expl_m, rows=rows,
        board=P.chapter_board("004", rows, CHAPTER), discussion=discussion(p, data, ast_note, units, sweep_rows, expl, expl_fills),
        seconds=timer.seconds())
