"""Fully connected GAN detectors of paper 003: EGBAD, GANomaly and Skip-GANomaly.

Paper 003 rebuilds three image anomaly detectors from fully connected blocks shaped like the
DCASE 2020 baseline autoencoder: hidden layers of 128 units, each Linear -> batch norm -> ReLU
(-> dropout), 3 or 4 hidden layers, a latent code of 8 (grid: 8, 16, 100), Glorot-uniform or
normal(0, 0.02) initialisation, Adam with lr 2e-4 and beta1 0.5. Inputs are 5 stacked frames of
a 128-band log-mel spectrogram in dB clipped at -80 dB (640 values).

Modules (pure ``nn.Module``; the losses are the functions below, apart from the modules):

* :class:`EGBAD` (Zenati et al. 2018, a BiGAN): generator G: z -> x, encoder E: x -> z and a
  discriminator D on (x, z) pairs. Score: 0.9 * |x - G(E(x))|_1 + 0.1 * |f_D(x, E(x)) -
  f_D(G(E(x)), E(x))|_1 (reconstruction plus discriminator feature matching).
* :class:`GANomaly` (Akcay et al. 2018): generator = encoder G_E -> decoder G_D -> encoder E, so
  x -> z -> x' -> z'; discriminator D on x. Generator loss = w_adv * L_adv + w_con * |x - x'|_1
  + w_enc * |z - z'|_2^2 (paper 003, Eqs. 4-7). Score: |z - z'|_2^2, the latent distance.
* :class:`SkipGANomaly` (Akcay et al. 2019): an encoder-decoder whose decoder layers also receive
  the matching encoder layer (skip concatenations); D is a classifier and feature extractor.
  Generator loss = w_adv * L_adv + w_con * |x - x'|_1 + w_enc * |f_D(x) - f_D(x')|_2^2. Score:
  0.9 * |x - x'|_1 + 0.1 * |f_D(x) - f_D(x')|_2^2.

Each model exposes ``discriminator_parameters()`` and ``generator_parameters()``; training uses
the study's one loop with two optimisers (:func:`asdstudy.training.fit` with ``parts``): for
every batch one discriminator step, then one generator step.

Readings of the paper (Section 4.2): "three hidden layers in addition to the input and output
layers" is read as three Linear-BN-ReLU blocks of 128 units in each encoder, decoder and
discriminator (the grid's HL 4 adds one), and "except for the output layer of the decoder, all
other layers utilize ReLU and Batch Normalization" as a latent code that is itself batch-
normalised and passed through a ReLU (``latent_bn_relu``; False gives the original models'
linear code). With a ReLU code EGBAD's encoder cannot match its N(0, 1) prior's negative half,
which its discriminator can see: one way the paper's architecture can make EGBAD fail.

Scores (:data:`SCORE_RULES`): ``"own"`` is each original model's rule above; ``"reconstruction"``
is what paper 003 describes for all three ("the distance between the input and its generated
representation", Section 3, step 3): the mean absolute difference between the frame vector and
G's output (L1, the distance of its contextual loss).

Detector: :class:`GANDetector` fits one model per unit of the protocol (paper 003: per machine
type) and scores a clip by the mean of its frame vectors' scores.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .. import ASDStudyError
from ..features import LogMelParams, frame_vectors_of
from ..training import MIN_EPOCHS, History, fit, pick_device, seed_everything
from .base import SpectrogramDetector
from .store import stored_fit
from .frames import ScaledRows, shared_frame_vectors

KINDS = ("egbad", "ganomaly", "skip")
NAMES = {"egbad": "EGBAD", "ganomaly": "GANomaly", "skip": "Skip-GANomaly"}
PARTS = ("discriminator", "generator")
#: The two scoring rules: each original model's own, and paper 003's description.
SCORE_RULES = {"own": "each model's own score", "reconstruction": "input-vs-generated distance (paper 003)"}


def block(i: int, o: int, dropout: float = 0.0) -> list[nn.Module]:
    """The paper's building block: Linear -> BatchNorm1d -> ReLU (-> Dropout)."""
    layers = [nn.Linear(i, o), nn.BatchNorm1d(o), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return layers


def blocks(d_in: int, hidden: int, n_hidden: int, dropout: float = 0.0) -> nn.Sequential:
    """``n_hidden`` blocks of ``hidden`` units, the first reading ``d_in`` values."""
    layers = []
    for i in range(n_hidden):
        layers += block(d_in if i == 0 else hidden, hidden, dropout)
    return nn.Sequential(*layers)


def code_layer(hidden: int, latent: int, bn_relu: bool = True) -> nn.Module:
    """The latent layer: Linear -> BatchNorm1d -> ReLU as paper 003 describes every layer but the
    decoder's output (``bn_relu``), or a plain Linear code as in the original models."""
    return nn.Sequential(*block(hidden, latent)) if bn_relu else nn.Linear(hidden, latent)


class FCEncoder(nn.Module):
    """(B, input_dim) -> (B, latent): n_hidden blocks of ``hidden`` units, then the code layer."""

    def __init__(self, input_dim: int = 640, hidden: int = 128, n_hidden: int = 3, latent: int = 8,
                 dropout: float = 0.0, latent_bn_relu: bool = True):
        super().__init__()
        self.body = blocks(input_dim, hidden, n_hidden, dropout)
        self.code = code_layer(hidden, latent, latent_bn_relu)

    def forward(self, x):
        return self.code(self.body(x))


class FCDecoder(nn.Module):
    """(B, latent) -> (B, output_dim): n_hidden blocks, then a linear output (no activation)."""

    def __init__(self, latent: int = 8, hidden: int = 128, n_hidden: int = 3, output_dim: int = 640,
                 dropout: float = 0.0):
        super().__init__()
        self.body = blocks(latent, hidden, n_hidden, dropout)
        self.out = nn.Linear(hidden, output_dim)

    def forward(self, z):
        return self.out(self.body(z))


class FCDiscriminator(nn.Module):
    """(B, input_dim) -> (logit (B,), features (B, hidden)): a classifier and feature extractor."""

    def __init__(self, input_dim: int = 640, hidden: int = 128, n_hidden: int = 3, dropout: float = 0.0):
        super().__init__()
        self.features = blocks(input_dim, hidden, n_hidden, dropout)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        f = self.features(x)
        return self.head(f).squeeze(1), f


class _GAN(nn.Module):
    discriminator: nn.Module

    def discriminator_parameters(self):
        return self.discriminator.parameters()

    def generator_parameters(self):
        return (p for name, p in self.named_parameters() if not name.startswith("discriminator."))


class EGBAD(_GAN):
    def __init__(self, input_dim: int = 640, hidden: int = 128, n_hidden: int = 3, latent: int = 8,
                 dropout: float = 0.0, latent_bn_relu: bool = True):
        super().__init__()
        self.latent = latent
        self.generator = FCDecoder(latent, hidden, n_hidden, input_dim, dropout)
        self.encoder = FCEncoder(input_dim, hidden, n_hidden, latent, dropout, latent_bn_relu)
        self.discriminator = FCDiscriminator(input_dim + latent, hidden, n_hidden, dropout)

    def d(self, x, z):
        return self.discriminator(torch.cat([x, z], dim=1))

    def forward(self, x):
        """Reconstruction G(E(x)) and the code E(x)."""
        z = self.encoder(x)
        return self.generator(z), z


class GANomaly(_GAN):
    def __init__(self, input_dim: int = 640, hidden: int = 128, n_hidden: int = 3, latent: int = 8,
                 dropout: float = 0.0, latent_bn_relu: bool = True):
        super().__init__()
        self.encoder1 = FCEncoder(input_dim, hidden, n_hidden, latent, dropout, latent_bn_relu)  # G_E
        self.decoder = FCDecoder(latent, hidden, n_hidden, input_dim, dropout)  # G_D
        self.encoder2 = FCEncoder(input_dim, hidden, n_hidden, latent, dropout, latent_bn_relu)  # E
        self.discriminator = FCDiscriminator(input_dim, hidden, n_hidden, dropout)

    def forward(self, x):
        """(x', z, z'): reconstruction, code of x, code of the reconstruction."""
        z = self.encoder1(x)
        x_hat = self.decoder(z)
        return x_hat, z, self.encoder2(x_hat)


class SkipGenerator(nn.Module):
    """Encoder-decoder with skip concatenations: decoder layer k also reads encoder layer n-k."""

    def __init__(self, input_dim: int = 640, hidden: int = 128, n_hidden: int = 3, latent: int = 8,
                 dropout: float = 0.0, latent_bn_relu: bool = True):
        super().__init__()
        self.down = nn.ModuleList()
        d = input_dim
        for _ in range(n_hidden):
            self.down.append(nn.Sequential(*block(d, hidden, dropout)))
            d = hidden
        self.code = code_layer(hidden, latent, latent_bn_relu)
        self.up = nn.ModuleList([nn.Sequential(*block(latent, hidden, dropout))])
        for _ in range(n_hidden - 1):
            self.up.append(nn.Sequential(*block(2 * hidden, hidden, dropout)))
        self.out = nn.Linear(2 * hidden, input_dim)

    def forward(self, x):
        skips, h = [], x
        for layer in self.down:
            h = layer(h)
            skips.append(h)
        h = self.up[0](self.code(h))
        for layer, skip in zip(self.up[1:], reversed(skips[1:])):
            h = layer(torch.cat([h, skip], dim=1))
        return self.out(torch.cat([h, skips[0]], dim=1))


class SkipGANomaly(_GAN):
    def __init__(self, input_dim: int = 640, hidden: int = 128, n_hidden: int = 3, latent: int = 8,
                 dropout: float = 0.0, latent_bn_relu: bool = True):
        super().__init__()
        self.generator = SkipGenerator(input_dim, hidden, n_hidden, latent, dropout, latent_bn_relu)
        self.discriminator = FCDiscriminator(input_dim, hidden, n_hidden, dropout)

    def forward(self, x):
        return self.generator(x)


MODELS = {"egbad": EGBAD, "ganomaly": GANomaly, "skip": SkipGANomaly}


def init_weights(model: nn.Module, scheme: str = "glorot_uniform") -> nn.Module:
    """Initialise every Linear layer: ``glorot_uniform`` (Keras' default) or ``normal`` (N(0, 0.02),
    the DCGAN convention); biases zero. Batch-norm layers keep weight 1, bias 0."""
    if scheme not in ("glorot_uniform", "normal"):
        raise ASDStudyError(f"unknown weight initialisation {scheme!r}; use glorot_uniform or normal.")
    for m in model.modules():
        if isinstance(m, nn.Linear):
            if scheme == "glorot_uniform":
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)
    return model


# ---------------------------------------------------------------------------------- losses

def _bce(logits, real: bool):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, 1.0 if real else 0.0))


@dataclass(frozen=True)
class LossWeights:
    """Generator loss weights (paper 003, Eq. 4; its Tables 4-5 call the last one lambda_lat)."""

    adv: float = 1.0
    con: float = 50.0
    enc: float = 1.0


def gan_loss(model: _GAN, x, part: str, w: LossWeights = LossWeights()):
    """The loss of one training part ("discriminator" or "generator") of any of the three models."""
    if part not in PARTS:
        raise ASDStudyError(f"unknown training part {part!r}; use one of {PARTS}.")
    if isinstance(model, EGBAD):
        z_prior = torch.randn(x.shape[0], model.latent, device=x.device)
        if part == "discriminator":
            real, _ = model.d(x, model.encoder(x).detach())
            fake, _ = model.d(model.generator(z_prior).detach(), z_prior)
            return _bce(real, True) + _bce(fake, False)
        real, _ = model.d(x, model.encoder(x))
        fake, _ = model.d(model.generator(z_prior), z_prior)
        return _bce(real, False) + _bce(fake, True)  # E and G fool D both ways
    if isinstance(model, GANomaly):
        x_hat, z, z_hat = model(x)
        if part == "discriminator":
            real, _ = model.discriminator(x)
            fake, _ = model.discriminator(x_hat.detach())
            return _bce(real, True) + _bce(fake, False)
        fake, _ = model.discriminator(x_hat)
        return (w.adv * _bce(fake, True) + w.con * (x - x_hat).abs().mean()
                + w.enc * ((z - z_hat) ** 2).mean())
    if isinstance(model, SkipGANomaly):
        x_hat = model(x)
        if part == "discriminator":
            real, _ = model.discriminator(x)
            fake, _ = model.discriminator(x_hat.detach())
            return _bce(real, True) + _bce(fake, False)
        fake, f_fake = model.discriminator(x_hat)
        _, f_real = model.discriminator(x)
        return (w.adv * _bce(fake, True) + w.con * (x - x_hat).abs().mean()
                + w.enc * ((f_real - f_fake) ** 2).mean())
    raise ASDStudyError(f"gan_loss does not know {type(model).__name__}.")


def reconstruction_error(model: _GAN, x) -> torch.Tensor:
    """Mean |x - G(x)| over a batch: the quantity paper 003's anomaly score measures, and the
    validation curve a GAN's convergence is judged on (its adversarial losses need not fall)."""
    x_hat = model(x)[0] if isinstance(model, (EGBAD, GANomaly)) else model(x)
    return (x - x_hat).abs().mean()


@torch.no_grad()
def anomaly_scores(model: _GAN, x, alpha: float = 0.9, rule: str = "own") -> torch.Tensor:
    """Per-example anomaly score, (B,): each model's own scoring rule (``rule="own"``) or paper
    003's input-vs-generated distance (``rule="reconstruction"``), see the module docstring."""
    if rule not in SCORE_RULES:
        raise ASDStudyError(f"unknown GAN score rule {rule!r}; use one of {list(SCORE_RULES)}.")
    model.eval()
    if rule == "reconstruction":
        x_hat = model(x)[0] if isinstance(model, (EGBAD, GANomaly)) else model(x)
        return (x - x_hat).abs().mean(1)
    if isinstance(model, EGBAD):
        x_hat, z = model(x)
        _, f_real = model.d(x, z)
        _, f_fake = model.d(x_hat, z)
        return alpha * (x - x_hat).abs().mean(1) + (1 - alpha) * (f_real - f_fake).abs().mean(1)
    if isinstance(model, GANomaly):
        _, z, z_hat = model(x)
        return ((z - z_hat) ** 2).mean(1)
    if isinstance(model, SkipGANomaly):
        x_hat = model(x)
        _, f_real = model.discriminator(x)
        _, f_fake = model.discriminator(x_hat)
        return alpha * (x - x_hat).abs().mean(1) + (1 - alpha) * ((f_real - f_fake) ** 2).mean(1)
    raise ASDStudyError(f"anomaly_scores does not know {type(model).__name__}.")


# -------------------------------------------------------------------------------- detector

@dataclass
class GANConfig:
    """One GAN detector's settings (defaults: paper 003's common grid values)."""

    kind: str = "ganomaly"
    n_hidden: int = 3
    latent: int = 8
    dropout: float = 0.0
    init: str = "glorot_uniform"
    lr: float = 2e-4
    beta1: float = 0.5  # the paper's "exponential decay rate"
    epochs: int = 10
    batch_size: int = 16
    w_adv: float = 1.0
    w_con: float = 50.0
    w_enc: float = 1.0
    n_mels: int = 128
    n_frames: int = 5
    clip_db: float = -80.0
    latent_bn_relu: bool = True  # batch norm + ReLU on the latent layer (paper 003's reading)
    #: each epoch trains on a fresh random 1/train_stride of the frame vectors, so that every
    #: vector is drawn over the epochs (1 = all of them every epoch, as the paper)
    train_stride: int = 1
    #: stop once the loss curve is flat (:func:`asdstudy.training.flatness`) after ``min_epochs``
    #: and at least one pass over every frame vector; ``epochs`` is then the cap
    converge: bool = False
    min_epochs: int = MIN_EPOCHS
    #: hold out this share of the training frame vectors: the validation curve is then the
    #: generator's reconstruction error |x - G(x)| on them (the paper's anomaly score), which
    #: the convergence rule judges. Without it the rule judges the summed adversarial losses,
    #: which can sit level from the first epochs while the reconstruction still improves.
    val_fraction: float = 0.0
    seed: int = 0
    jobs: int = 1
    device: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ASDStudyError(f"GANConfig.kind must be one of {KINDS}, got {self.kind!r}.")
        for name in ("n_hidden", "latent", "epochs", "batch_size", "train_stride"):
            if int(getattr(self, name)) < 1:
                raise ASDStudyError(f"GANConfig.{name} must be >= 1, got {getattr(self, name)!r}.")
        if not 0 <= self.dropout < 1:
            raise ASDStudyError(f"GANConfig.dropout must be in [0, 1), got {self.dropout!r}.")
        if not 0 <= self.val_fraction < 1:
            raise ASDStudyError(f"GANConfig.val_fraction must be in [0, 1), got {self.val_fraction!r}.")

    def as_dict(self) -> dict:
        return asdict(self)


def build(config: GANConfig) -> _GAN:
    """The configured, initialised module (seeded by ``config.seed``)."""
    torch.manual_seed(config.seed)
    model = MODELS[config.kind](config.n_mels * config.n_frames, 128, config.n_hidden, config.latent, config.dropout,
                                bool(config.latent_bn_relu))
    return init_weights(model, config.init)


class GANDetector(SpectrogramDetector):
    """Paper 003's EGBAD, GANomaly or Skip-GANomaly under the one protocol.

    Attributes (after fit): ``model_``; ``history_`` whose ``parts`` hold the discriminator's and
    the generator's loss per epoch.
    """

    def __init__(self, config: GANConfig):
        self.config = config
        self.name = NAMES[config.kind]

    @property
    def input_params(self) -> LogMelParams:
        return LogMelParams(n_mels=self.config.n_mels, clip_db=self.config.clip_db)

    def fit(self, table: pd.DataFrame, y=None) -> "GANDetector":
        c = self.config

        def train():
            seed_everything(c.seed)
            # the training frame vectors: one memory-mapped file per training set, shared by every
            # worker of a sweep (never a copy per process); inputs in dB (clip_db..0) scaled to
            # [-1, 1] with fixed constants per batch, so no statistics leak
            X, _ = shared_frame_vectors(table["path"].tolist(), self.input_params, c.n_frames, n_jobs=self.jobs)
            lo = c.clip_db
            X = ScaledRows(X, shift=lo / 2, scale=-lo / 2)
            self.model_ = build(c)
            w = LossWeights(c.w_adv, c.w_con, c.w_enc)
            self.history_: History = fit(
                self.model_, lambda m, xb, part: gan_loss(m, xb, part, w), X, epochs=c.epochs,
                batch_size=c.batch_size, lr=c.lr, betas=(c.beta1, 0.999), seed=c.seed, device=c.device,
                progress=False, desc=self.name, converge=c.converge,
                min_epochs=c.min_epochs, epoch_fraction=1.0 / c.train_stride,
                val_fraction=c.val_fraction, monitor=reconstruction_error if c.val_fraction > 0 else None,
                parts={"discriminator": lambda m: m.discriminator_parameters(),
                       "generator": lambda m: m.generator_parameters()})

        stored_fit(self, table["path"].tolist(), train)
        return self

    def _make(self) -> nn.Module:
        return build(self.config)

    def _scale(self, X: np.ndarray) -> np.ndarray:
        lo = self.config.clip_db
        return (X - lo / 2) / (-lo / 2)  # [clip_db, 0] -> [-1, 1]

    def frame_scores(self, table: pd.DataFrame) -> pd.DataFrame:
        """Per frame vector: the owning clip's row index and its anomaly score."""
        return self.frame_scores_of(self.spectrograms(table))

    @torch.no_grad()
    def frame_scores_of(self, specs, rule: str = "own") -> pd.DataFrame:
        """Per frame vector: the owning clip's index and its score under ``rule`` (``"both"``:
        columns ``own`` and ``reconstruction``, ``score`` being the own one)."""
        self._check_fitted("model_")
        X, owner = frame_vectors_of(specs, self.config.n_frames)
        X = torch.from_numpy(self._scale(X))
        dev = pick_device(self.config.device)
        self.model_.to(dev)
        out = {"clip": owner}
        for r in (SCORE_RULES if rule == "both" else [rule]):
            out[r] = torch.cat([anomaly_scores(self.model_, X[i:i + 8192].to(dev), rule=r).cpu()
                                for i in range(0, len(X), 8192)]).numpy()
        out["score"] = out["own" if rule == "both" else rule]
        return pd.DataFrame(out)

    def score_spectrograms(self, specs, rule: str = "own") -> np.ndarray:
        fs = self.frame_scores_of(specs, rule)
        return fs.groupby("clip")["score"].mean().reindex(range(len(specs))).to_numpy()

    def score_rules(self, table: pd.DataFrame) -> pd.DataFrame:
        """Both scores of every clip (mean over its frame vectors), one column per rule."""
        fs = self.frame_scores_of(self.spectrograms(table), "both")
        return fs.groupby("clip")[list(SCORE_RULES)].mean().reindex(range(len(table)))


# ------------------------------------------------------------------------- the paper's search

#: Paper 003, Table 3: the grid search space (41,472 points per model and machine type).
PAPER_GRID = {
    "epochs": [10, 20, 30, 90],
    "lr": [2e-4, 1e-3, 5e-3],
    "latent": [8, 16, 100],
    "dropout": [0.0, 0.25, 0.5],
    "init": ["glorot_uniform", "normal"],
    "beta1": [0.3, 0.5],
    "n_hidden": [3, 4],
    "w_adv": [1, 50],
    "w_con": [1, 50],
    "w_enc": [1, 50],
    "batch_size": [8, 16, 32, 128, 512, 1024],
}

#: The values the paper found common to all models (Section 5.3): lr 2e-4, latent 8, Glorot
#: uniform, no dropout, decay rate (beta1) 0.5.
PAPER_COMMON = {"lr": 2e-4, "latent": 8, "init": "glorot_uniform", "dropout": 0.0, "beta1": 0.5}


def _row(epochs, n_hidden, w_adv, w_con, w_enc, batch_size):
    return {"epochs": epochs, "n_hidden": n_hidden, "w_adv": w_adv, "w_con": w_con, "w_enc": w_enc,
            "batch_size": batch_size}


#: Paper 003, Tables 4 (GANomaly) and 5 (Skip-GANomaly): the best setting per machine type
#: (columns Epochs, HL, lambda_adv, lambda_con, lambda_lat, Batch). EGBAD was not grid-searched.
PAPER_SETTINGS = {
    "ganomaly": {
        "fan": _row(10, 3, 1, 50, 1, 16),
        "pump": _row(10, 3, 50, 1, 50, 1024),
        "slider": _row(10, 3, 1, 50, 1, 16),
        "ToyCar": _row(90, 4, 1, 50, 1, 512),
        "ToyConveyor": _row(30, 4, 1, 50, 1, 512),
        "valve": _row(10, 3, 1, 50, 1, 16),
    },
    "skip": {
        "fan": _row(10, 3, 1, 50, 1, 16),
        "pump": _row(10, 3, 50, 1, 50, 1024),
        "slider": _row(10, 3, 50, 50, 50, 512),
        "ToyCar": _row(20, 3, 1, 1, 50, 128),
        "ToyConveyor": _row(30, 4, 1, 50, 1, 512),
        "valve": _row(30, 4, 1, 50, 1, 512),
    },
}


# ------------------------------------------------------------------------ one point of a sweep

#: The point keys that are GANConfig fields (the rest describe the data and the run).
CONFIG_KEYS = tuple(f for f in GANConfig.__dataclass_fields__ if f not in ("kind", "jobs", "device"))


def sweep_point(point: dict) -> list[dict]:
    """Fit one detector on one machine type's training clips and score its test clips.

    The unit of work of paper 003's grid search (:class:`asdstudy.sweep.Sweep`): a plain dict
    with ``kind`` (egbad, ganomaly, skip, or baseline for the DCASE 2020 baseline AE),
    ``machine``, ``root`` (a DCASE 2020-layout folder), optional ``ids`` (list) and any
    :class:`GANConfig` fields. As the paper, one model is trained per machine type, on the
    training normals of all its ids.

    Returns:
        Rows: ``row == "score"`` per test clip (path, unit, label, ``score`` by the model's own
        rule, ``score_recon`` by paper 003's input-vs-generated distance) and ``row == "loss"``
        per epoch and training part (the loss curves).
    """
    from ..datasets import clip_table
    from .autoencoders import AutoencoderDetector, dcase_baseline
    from .store import enabled, switched

    table = clip_table(point["root"], layout="dcase2020", machines=[point["machine"]])
    if point.get("ids"):
        table = table[table["id"].isin(list(point["ids"]))]
    train = table[table["split"] == "train"]
    test = table[(table["split"] == "test") & table["label"].notna()]
    if train.empty or test.empty:
        raise ASDStudyError(f"{point['machine']} in {point['root']}: needs train and labelled test clips "
                            f"(found {len(train)} and {len(test)}).")
    cfg = {k: point[k] for k in CONFIG_KEYS if k in point}
    if point["kind"] == "baseline":
        det = AutoencoderDetector(dcase_baseline(int(cfg.get("epochs", 100)), int(cfg.get("seed", 0)), jobs=1,
                                                 converge=bool(cfg.get("converge", False))))
    else:
        det = GANDetector(GANConfig(kind=point["kind"], jobs=1, **cfg))
    # a point may switch the model store off (``model_store: False``): a benchmark that times
    # training must train, not read back what an earlier engine or run trained
    with switched(bool(point.get("model_store", True)) and enabled()):
        det.fit(train)
    if point["kind"] == "baseline":  # the baseline's score is its reconstruction error either way
        both = pd.DataFrame({r: det.score(test) for r in SCORE_RULES})
    else:
        both = det.score_rules(test)
    rows = [{"row": "score", "path": p, "unit": u, "label": int(lab), "score": float(s), "score_recon": float(r)}
            for p, u, lab, s, r in zip(test["path"], test["id"], test["label"], both["own"], both["reconstruction"])]
    h = det.history_
    curves = dict(h.parts or {"reconstruction": h.train})
    if h.val:  # the baseline's validation curve: the one its convergence is judged on
        curves["validation"] = h.val
    stored = bool(h.stored)  # read back from the model store rather than trained in this point
    for part, losses in curves.items():
        rows += [{"row": "loss", "part": part, "epoch": i + 1, "loss": float(v), "stored": stored,
                  "val_examples": int(getattr(h, "val_examples", 0))} for i, v in enumerate(losses)]
    return rows
