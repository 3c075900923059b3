"""Dense autoencoders on stacked log-mel frames: paper 002's AE and VAE, and the DCASE 2020 baseline.

Models (pure ``nn.Module``; parameter counts asserted in the tests):

* :class:`DenseAE` -- paper 002's AE (its Table 2): 320 (64 mels x 5 frames) -> 64 -> 64 -> 8
  -> 64 -> 64 -> 320, ReLU after every layer but the last: 50,760 parameters. It is exactly the
  network of the DCASE 2020 baseline repository's earliest commits (64 mels).
* :class:`VAE` -- paper 002's VAE (its Table 1): 640 (128 mels x 5) -> 400 -> 400 -> (mu,
  logvar) 20 -> 400 -> 400 -> 640, batch norm + ReLU after each hidden layer: 861,480 parameters.
* :class:`BaselineAE` -- the released DCASE 2020 Task 2 baseline as the task paper describes it
  and its published results were made with: 640 (128 mels x 5) -> 4 x (128, batch norm, ReLU)
  -> 8 (batch norm, ReLU) -> 4 x (128, batch norm, ReLU) -> 640; trained 100 epochs, batch 512,
  Adam, 10 % validation split.

Detectors (the one protocol, :mod:`asdstudy.models.base`): fitted per machine id on the frame
vectors of its training normals; a clip's score is the mean reconstruction error over its frame
vectors. The VAE also gives the negative-ELBO score (reconstruction + KL).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..features import LogMelParams, frame_vectors_of
from ..training import History, fit, pick_device, seed_everything
from .base import SpectrogramDetector
from .store import stored_fit


def _dense(i, o, bn=True):
    layers = [nn.Linear(i, o)]
    if bn:
        layers.append(nn.BatchNorm1d(o))
    layers.append(nn.ReLU())
    return layers


class DenseAE(nn.Module):
    """Paper 002's dense AE (= early DCASE 2020 baseline): input (B, 320) -> output (B, 320)."""

    def __init__(self, input_dim: int = 320, hidden: int = 64, bottleneck: int = 8):
        super().__init__()
        self.encoder = nn.Sequential(*_dense(input_dim, hidden, False), *_dense(hidden, hidden, False),
                                     *_dense(hidden, bottleneck, False))
        self.decoder = nn.Sequential(*_dense(bottleneck, hidden, False), *_dense(hidden, hidden, False),
                                     nn.Linear(hidden, input_dim))

    def forward(self, x):
        return self.decoder(self.encoder(x))


class BaselineAE(nn.Module):
    """The released DCASE 2020 baseline AE: (B, 640) -> (B, 640), 4x128 BN-ReLU, 8-d bottleneck."""

    def __init__(self, input_dim: int = 640, hidden: int = 128, bottleneck: int = 8, depth: int = 4):
        super().__init__()
        enc = _dense(input_dim, hidden)
        for _ in range(depth - 1):
            enc += _dense(hidden, hidden)
        enc += _dense(hidden, bottleneck)
        dec = _dense(bottleneck, hidden)
        for _ in range(depth - 1):
            dec += _dense(hidden, hidden)
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec, nn.Linear(hidden, input_dim))

    def forward(self, x):
        return self.decoder(self.encoder(x))


class VAE(nn.Module):
    """Paper 002's VAE: (B, 640) -> reconstruction (B, 640), mu (B, 20), logvar (B, 20)."""

    def __init__(self, input_dim: int = 640, hidden: int = 400, latent: int = 20):
        super().__init__()
        self.encoder = nn.Sequential(*_dense(input_dim, hidden), *_dense(hidden, hidden))
        self.mu = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)
        self.decoder = nn.Sequential(*_dense(latent, hidden), *_dense(hidden, hidden), nn.Linear(hidden, input_dim))

    def encode(self, x):
        h = self.encoder(x)
        return self.mu(h), self.logvar(h)

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decoder(z), mu, logvar


def mse_loss(model, xb):
    return ((model(xb) - xb) ** 2).mean()


def kl_divergence(mu, logvar):
    """KL(q(z|x) || N(0, I)) per example, shape (B,)."""
    return -0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp(), dim=1)


def vae_loss(model, xb, beta: float = 1.0):
    """Mean over the batch of (sum of squared errors over the dims) + beta * KL: the negative
    ELBO with a unit-variance Gaussian decoder, up to constants."""
    recon, mu, logvar = model(xb)
    return (((recon - xb) ** 2).sum(dim=1) + beta * kl_divergence(mu, logvar)).mean()


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@dataclass
class AEConfig:
    """Training and feature settings of one autoencoder detector."""

    kind: str = "ae"  # "ae" (paper 002's AE), "vae", "baseline"
    n_mels: int = 64
    n_frames: int = 5
    epochs: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    val_fraction: float = 0.1
    patience: int | None = None
    seed: int = 0
    jobs: int = 1
    device: str | None = None
    #: stop once the validation curve is flat (:func:`asdstudy.training.flatness`); ``epochs`` is the cap
    converge: bool = False


def dcase_baseline(epochs: int = 100, seed: int = 0, jobs: int = 1, converge: bool = False) -> AEConfig:
    """The DCASE 2020 Task 2 baseline by its official recipe: 128 mels, 5 frames, batch 512, Adam
    1e-3, 10 % validation split, one model per machine type, ``epochs`` epochs (100 in the
    recipe). With ``converge`` it stops once its validation loss is flat
    (:func:`asdstudy.training.flatness`) and ``epochs`` is the cap. Every chapter builds its
    baseline here, so the same baseline on the same clips is one stored model
    (:mod:`asdstudy.models.store`), trained once."""
    return AEConfig(kind="baseline", n_mels=128, n_frames=5, epochs=epochs, batch_size=512, lr=1e-3,
                    val_fraction=0.1, patience=None, seed=seed, jobs=jobs, converge=converge)


MODEL_DEFAULTS = {  # the published settings
    "ae": dict(n_mels=64, batch_size=128),
    "vae": dict(n_mels=128, batch_size=512),
    "baseline": dict(n_mels=128, batch_size=512),
}


class AutoencoderDetector(SpectrogramDetector):
    """Fit an autoencoder on a machine id's training normals; score clips by reconstruction error.

    Args:
        config: :class:`AEConfig`.

    Attributes (after fit):
        model_: the trained module; history_: :class:`~asdstudy.training.History`.
    """

    def __init__(self, config: AEConfig):
        self.config = config
        self.name = {"ae": "Dense AE", "vae": "VAE", "baseline": "DCASE baseline"}[config.kind]

    @property
    def input_params(self) -> LogMelParams:
        return LogMelParams(n_mels=self.config.n_mels)

    def _frames(self, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return frame_vectors_of(self.spectrograms(table), self.config.n_frames)

    def _make(self) -> nn.Module:
        d = self.config.n_mels * self.config.n_frames
        return {"ae": lambda: DenseAE(d), "vae": lambda: VAE(d), "baseline": lambda: BaselineAE(d)}[self.config.kind]()

    def fit(self, table: pd.DataFrame, y=None) -> "AutoencoderDetector":
        c = self.config

        def train():
            seed_everything(c.seed)
            X, _ = self._frames(table)
            self.model_ = self._make()
            loss = vae_loss if c.kind == "vae" else mse_loss
            self.history_: History = fit(self.model_, loss, X, epochs=c.epochs, batch_size=c.batch_size, lr=c.lr,
                                         val_fraction=c.val_fraction, patience=c.patience, seed=c.seed,
                                         device=c.device, progress=False, desc=self.name, converge=c.converge)

        stored_fit(self, table["path"].tolist(), train)
        return self

    def frame_errors(self, table: pd.DataFrame) -> pd.DataFrame:
        """Per frame vector: the owning clip's row index, the squared error and (VAE) the KL term."""
        return self.frame_errors_of(self.spectrograms(table))

    @torch.no_grad()
    def frame_errors_of(self, specs) -> pd.DataFrame:
        """:meth:`frame_errors` of already-computed input log-mels (a list of (T, n_mels))."""
        self._check_fitted("model_")
        X, owner = frame_vectors_of(specs, self.config.n_frames)
        dev = pick_device(self.config.device)
        self.model_.eval().to(dev)
        mse, kl = [], []
        for i in range(0, len(X), 8192):
            xb = torch.from_numpy(X[i:i + 8192]).to(dev)
            if self.config.kind == "vae":
                recon, mu, logvar = self.model_(xb)
                kl.append(kl_divergence(mu, logvar).cpu().numpy())
            else:
                recon = self.model_(xb)
            mse.append(((recon - xb) ** 2).mean(dim=1).cpu().numpy())
        out = pd.DataFrame({"clip": owner, "mse": np.concatenate(mse)})
        if kl:
            out["kl"] = np.concatenate(kl)
        return out

    def score_components(self, table: pd.DataFrame, specs=None) -> pd.DataFrame:
        """Per clip: ``mse`` (mean squared reconstruction error) and, for the VAE, ``neg_elbo``
        (mean over frames of summed squared error + KL); from ``specs`` when given."""
        fe = self.frame_errors_of(self.spectrograms(table) if specs is None else specs)
        d = self.config.n_mels * self.config.n_frames
        out = pd.DataFrame({"mse": fe.groupby("clip")["mse"].mean()})
        if "kl" in fe:
            out["neg_elbo"] = (fe["mse"] * d + fe["kl"]).groupby(fe["clip"]).mean()
        return out.reset_index(drop=True)

    def score_spectrograms(self, specs) -> np.ndarray:
        return self.score_components(None, specs)["mse"].to_numpy()

    @torch.no_grad()
    def latent_means(self, table: pd.DataFrame) -> np.ndarray:
        """VAE only: the mean latent vector mu averaged over each clip's frames, (n_clips, 20)."""
        X, owner = self._frames(table)
        mu, _ = self.model_.to("cpu").eval().encode(torch.from_numpy(X))
        return pd.DataFrame(mu.numpy()).groupby(owner).mean().to_numpy()

    @torch.no_grad()
    def reconstruct(self, path: str) -> tuple[np.ndarray, np.ndarray]:
        """(original, reconstructed) log-mel of one clip, (T - n_frames + 1, n_mels): the first
        frame of every reconstructed context vector."""
        X, _ = self._frames(pd.DataFrame({"path": [path]}))
        out = self.model_.to("cpu").eval()(torch.from_numpy(X))
        recon = out[0] if isinstance(out, tuple) else out
        m = self.config.n_mels
        return X[:, :m], recon.numpy()[:, :m]
