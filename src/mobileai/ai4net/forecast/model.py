"""Ours: a global spatio-temporal quantile network over all cells, in PyTorch.

Each (origin, horizon) sample holds every series of an area at once: ``x[B, N, F]`` (the leak-free
features of :mod:`.features`) and the neighbour graph ``A[N, N]``. A shared per-node MLP encodes each
cell, one graph layer adds the mean of its neighbours' encodings (the GraphSAGE mean aggregator:
Hamilton et al., NeurIPS 2017; the spatial step of STGCN-style forecasters, Yu et al., IJCAI 2018),
and a head outputs three quantiles (0.1, 0.5, 0.9) as corrections to the seasonal reference
``base``, trained with the pinball loss (Koenker & Bassett 1978; multi-horizon quantile forecasting
as in MQ-RNN, Wen et al. 2017). Intervals are then conformalized on the validation split
(:mod:`.intervals`). No weight depends on a particular cell or on the number of cells, so the model
transfers to a new area (``fine_tune``) and trains federated (:mod:`.federated`).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from mobileai.ai4net.forecast.base import Forecast, check_split
from mobileai.ai4net.forecast.data import SeriesFrame
from mobileai.ai4net.forecast.features import build_design, feature_names, training_pairs
from mobileai.ai4net.forecast.intervals import apply_offset, cqr_offset

QUANTILES = (0.1, 0.5, 0.9)
FORMAT_VERSION = 2  # 2: calendar-class (similar-day) features


class NeuralConfig(BaseModel):
    """Hyper-parameters of :class:`NeuralForecaster` (validated; unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")

    hidden: int = Field(64, ge=4, le=1024, description="width of the node encoder and head")
    epochs: int = Field(40, ge=1, le=1000, description="maximum training epochs")
    patience: int = Field(5, ge=1, le=100, description="epochs without validation gain before stopping")
    lr: float = Field(1e-3, gt=0, le=1.0, description="Adam learning rate")
    weight_decay: float = Field(1e-2, ge=0, le=1.0, description="AdamW weight decay")
    batch: int = Field(256, ge=1, le=65536, description="samples (each holds all series) per step")
    weekly: bool = Field(False, description="use weekly lags and the day of week (needs >= 2 weeks)")
    alpha: float = Field(0.2, gt=0, lt=1, description="1 - interval coverage (0.2: 80 % intervals)")
    max_samples: int = Field(60_000, ge=100, description="cap on (origin, horizon) training samples")
    seed: int = Field(0, ge=0)


@dataclass
class SampleSet:
    """One area's samples: features, scaled targets (NaN = unobserved), seasonal reference, graph."""

    X: torch.Tensor
    Y: torch.Tensor
    base: torch.Tensor
    adj: torch.Tensor

    def __len__(self) -> int:
        return self.X.shape[0]


class STQuantileNet(nn.Module):
    """Node MLP -> one mean-aggregation graph layer -> a gated blend of the seasonal and the recent
    reference plus 3 non-crossing quantile offsets."""

    def __init__(self, n_features: int, hidden: int) -> None:
        super().__init__()
        self.enc = nn.Sequential(
            nn.Linear(n_features, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU()
        )
        self.self_lin = nn.Linear(hidden, hidden)
        self.nbr_lin = nn.Linear(hidden, hidden)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, 4))

    def forward(self, x: torch.Tensor, base: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        h = self.enc(x)  # [B, N, H]
        nbr = torch.einsum("nm,bmh->bnh", adj, h)
        h = h + torch.nn.functional.gelu(self.self_lin(h) + self.nbr_lin(nbr))
        out = self.head(h)
        gate = torch.sigmoid(out[..., 3])
        mid = gate * base[..., 0] + (1 - gate) * base[..., 1] + out[..., 0]
        lo = mid - torch.nn.functional.softplus(out[..., 1])
        hi = mid + torch.nn.functional.softplus(out[..., 2])
        return torch.stack([lo, mid, hi], dim=-1)


def normalise_adjacency(adj: np.ndarray) -> torch.Tensor:
    """Row-normalised weights (mean over neighbours); cells without neighbours get a zero row."""
    a = np.asarray(adj, dtype=np.float64)
    rows = a.sum(axis=1, keepdims=True)
    return torch.tensor(np.where(rows > 0, a / np.where(rows > 0, rows, 1.0), 0.0), dtype=torch.float32)


def pinball(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean pinball loss over the 3 quantiles at observed targets."""
    ok = torch.isfinite(y)
    if not ok.any():
        return pred.sum() * 0.0
    yy = torch.where(ok, y, torch.zeros_like(y))[..., None]
    q = torch.tensor(QUANTILES, dtype=pred.dtype)
    err = yy - pred
    loss = torch.maximum(q * err, (q - 1) * err).sum(-1)
    return loss[ok].mean()


def make_samples(
    frame: SeriesFrame,
    lo: int,
    hi: int,
    horizon: int,
    weekly: bool,
    max_samples: int,
    rng: np.random.Generator,
) -> SampleSet:
    """Samples whose target steps lie in ``[lo, hi)``, all origins before them."""
    origins = np.arange(max(0, lo - horizon), hi - 1)
    d = build_design(frame, origins, horizon, weekly)
    pairs = training_pairs(d, lo, hi) & np.isfinite(d.Y).any(axis=-1)
    X, Y, B = d.X[pairs], d.Y[pairs], d.base[pairs]
    if len(X) > max_samples:
        keep = np.sort(rng.choice(len(X), max_samples, replace=False))
        X, Y, B = X[keep], Y[keep], B[keep]
    return SampleSet(
        torch.from_numpy(X), torch.from_numpy(Y), torch.from_numpy(B), normalise_adjacency(frame.adjacency)
    )


def train_epochs(
    net: STQuantileNet,
    sets: list[SampleSet],
    epochs: int,
    opt: torch.optim.Optimizer,
    batch: int,
    gen: torch.Generator,
) -> int:
    """Run ``epochs`` passes over ``sets`` (minibatches of one set at a time, sets interleaved);
    returns the number of samples seen per epoch."""
    net.train()
    seen = 0
    for _ in range(epochs):
        seen = 0
        chunks = []
        for k, s in enumerate(sets):
            perm = torch.randperm(len(s), generator=gen)
            chunks += [(k, perm[i : i + batch]) for i in range(0, len(s), batch)]
        order = torch.randperm(len(chunks), generator=gen).tolist()
        for c in order:
            k, idx = chunks[c]
            s = sets[k]
            opt.zero_grad()
            loss = pinball(net(s.X[idx], s.base[idx], s.adj), s.Y[idx])
            loss.backward()
            opt.step()
            seen += len(idx)
    return seen


@torch.no_grad()
def predict_scaled(net: STQuantileNet, s: SampleSet, batch: int = 4096) -> torch.Tensor:
    net.eval()
    return torch.cat([net(s.X[i : i + batch], s.base[i : i + batch], s.adj) for i in range(0, len(s), batch)])


@torch.no_grad()
def eval_loss(net: STQuantileNet, sets: list[SampleSet]) -> tuple[float, int]:
    """Sample-weighted mean pinball loss and the number of observed targets."""
    total, n = 0.0, 0
    for s in sets:
        pred = predict_scaled(net, s)
        k = int(torch.isfinite(s.Y).sum())
        if k:
            total += float(pinball(pred, s.Y)) * k
            n += k
    return (total / n if n else float("nan")), n


@torch.no_grad()
def calibration_offset(net: STQuantileNet, sets: list[SampleSet], alpha: float) -> float:
    ys, los, his = [], [], []
    for s in sets:
        pred = predict_scaled(net, s)
        ys.append(s.Y.reshape(-1).numpy())
        los.append(pred[..., 0].reshape(-1).numpy())
        his.append(pred[..., 2].reshape(-1).numpy())
    return cqr_offset(np.concatenate(ys), np.concatenate(los), np.concatenate(his), alpha)


def _atomic_write(path: Path, write) -> None:  # type: ignore[no-untyped-def]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class NeuralForecaster:
    """Global spatio-temporal quantile forecaster with conformal 80 % intervals (see module doc)."""

    name = "ours"

    def __init__(self, config: NeuralConfig | dict | None = None) -> None:
        self.config = config if isinstance(config, NeuralConfig) else NeuralConfig(**(config or {}))
        self.net: STQuantileNet | None = None
        self.offset = 0.0
        self.horizon = 0
        self.info: dict = {}
        self.nonnegative = True

    # ---- training
    def _new_net(self) -> STQuantileNet:
        torch.manual_seed(self.config.seed)
        return STQuantileNet(len(feature_names(self.config.weekly)), self.config.hidden)

    def _sets(self, parts: list[tuple[SeriesFrame, int, int]], horizon: int) -> tuple[list, list]:
        rng = np.random.default_rng(self.config.seed)
        fit_sets, val_sets = [], []
        cap = max(100, self.config.max_samples // max(1, len(parts)))
        for frame, fit_end, val_end in parts:
            check_split(frame, fit_end, val_end)
            fit_sets.append(make_samples(frame, 0, fit_end, horizon, self.config.weekly, cap, rng))
            val_sets.append(make_samples(frame, fit_end, val_end, horizon, self.config.weekly, cap, rng))
        return fit_sets, val_sets

    def _train(self, fit_sets: list[SampleSet], val_sets: list[SampleSet], epochs: int, lr: float) -> None:
        assert self.net is not None
        cfg = self.config
        gen = torch.Generator().manual_seed(cfg.seed)
        opt = torch.optim.AdamW(self.net.parameters(), lr=lr, weight_decay=cfg.weight_decay)
        # the starting weights compete too: a fine-tune that only hurts keeps the pre-trained model
        best, _ = eval_loss(self.net, val_sets)
        best_state = {k: v.clone() for k, v in self.net.state_dict().items()}
        bad, history = 0, []
        t0 = time.perf_counter()
        epochs_run = 0
        for _ in range(epochs):
            epochs_run += 1
            train_epochs(self.net, fit_sets, 1, opt, cfg.batch, gen)
            loss, _ = eval_loss(self.net, val_sets)
            history.append(loss)
            if loss < best - 1e-5:
                best, bad = loss, 0
                best_state = {k: v.clone() for k, v in self.net.state_dict().items()}
            else:
                bad += 1
                if bad >= cfg.patience:
                    break
        self.net.load_state_dict(best_state)
        self.offset = calibration_offset(self.net, val_sets, cfg.alpha)
        self.info.update(
            epochs_run=epochs_run,
            val_pinball=best,
            val_history=[round(x, 5) for x in history],
            train_s=round(time.perf_counter() - t0, 3),
            train_samples=int(sum(len(s) for s in fit_sets)),
            val_samples=int(sum(len(s) for s in val_sets)),
            cqr_offset=self.offset,
        )

    def fit(self, frame: SeriesFrame, fit_end: int, val_end: int, horizon: int) -> NeuralForecaster:
        """Train on targets before ``fit_end``; stop early and calibrate on ``[fit_end, val_end)``."""
        return self.fit_many([(frame, fit_end, val_end)], horizon)

    def fit_many(self, parts: list[tuple[SeriesFrame, int, int]], horizon: int) -> NeuralForecaster:
        """Pooled training over several areas (frames), each with its own fit/validation split."""
        self.horizon = horizon
        self.nonnegative = all(bool(np.nanmin(f.values[:v]) >= 0) for f, _, v in parts)
        fit_sets, val_sets = self._sets(parts, horizon)
        self.net = self._new_net()
        self._train(fit_sets, val_sets, self.config.epochs, self.config.lr)
        return self

    def fine_tune(
        self, frame: SeriesFrame, fit_end: int, val_end: int, epochs: int = 10, lr_factor: float = 0.3
    ) -> NeuralForecaster:
        """Continue training a fitted model on a new area's (short) history at a lower learning rate,
        then recalibrate its intervals on that area's validation split."""
        if self.net is None:
            raise RuntimeError("fine_tune needs a fitted or loaded model")
        fit_sets, val_sets = self._sets([(frame, fit_end, val_end)], self.horizon)
        loss0, _ = eval_loss(self.net, val_sets)
        self._train(fit_sets, val_sets, epochs, self.config.lr * lr_factor)
        self.info["fine_tune_val_pinball_before"] = loss0
        return self

    # ---- inference
    def predict(self, frame: SeriesFrame, origins: np.ndarray, horizon: int | None = None) -> Forecast:
        if self.net is None:
            raise RuntimeError("NeuralForecaster.predict before fit or load")
        horizon = horizon or self.horizon
        d = build_design(frame, np.asarray(origins), horizon, self.config.weekly)
        n_o, H, N, F = d.X.shape
        s = SampleSet(
            torch.from_numpy(d.X.reshape(n_o * H, N, F)),
            torch.from_numpy(d.Y.reshape(n_o * H, N)),
            torch.from_numpy(d.base.reshape(n_o * H, N, 2)),
            normalise_adjacency(frame.adjacency),
        )
        q = predict_scaled(self.net, s).numpy().reshape(n_o, H, N, 3)
        lo, hi = apply_offset(q[..., 0], q[..., 2], self.offset)
        sc = d.scale[:, None, :]
        mean, lo, hi = q[..., 1] * sc, lo * sc, hi * sc
        if self.nonnegative:
            mean, lo, hi = np.maximum(mean, 0), np.maximum(lo, 0), np.maximum(hi, 0)
        return Forecast(mean, d.origins, lo, hi)

    # ---- persistence
    def save(self, folder: Path, metrics: dict | None = None, extra: dict | None = None) -> Path:
        """``model.pt`` (state_dict) and ``model.json`` (config, calibration, metrics), each written
        to a temporary file and renamed."""
        if self.net is None:
            raise RuntimeError("nothing to save: the model is not fitted")
        folder = Path(folder)
        meta = {
            "format": FORMAT_VERSION,
            "kind": "mobileai.forecast.NeuralForecaster",
            "config": self.config.model_dump(),
            "features": list(feature_names(self.config.weekly)),
            "quantiles": list(QUANTILES),
            "horizon": self.horizon,
            "cqr_offset": self.offset,
            "nonnegative": self.nonnegative,
            "training": self.info,
            "metrics": metrics or {},
            **(extra or {}),
        }
        state = self.net.state_dict()
        _atomic_write(folder / "model.pt", lambda p: torch.save(state, p))
        _atomic_write(
            folder / "model.json", lambda p: Path(p).write_text(json.dumps(meta, indent=1, default=float))
        )
        return folder

    @classmethod
    def load(cls, folder: Path) -> NeuralForecaster:
        from mobileai.errors import UserError

        folder = Path(folder)
        for name in ("model.json", "model.pt"):
            if not (folder / name).exists():
                raise UserError(f"model {folder}: {name} not found (expected a folder written by save())")
        meta = json.loads((folder / "model.json").read_text())
        if meta.get("kind") != "mobileai.forecast.NeuralForecaster" or meta.get("format") != FORMAT_VERSION:
            raise UserError(f"model {folder}: not a forecast model of format {FORMAT_VERSION}")
        m = cls(NeuralConfig(**meta["config"]))
        m.net = m._new_net()
        m.net.load_state_dict(torch.load(folder / "model.pt", weights_only=True))
        m.offset, m.horizon = float(meta["cqr_offset"]), int(meta["horizon"])
        m.nonnegative = bool(meta.get("nonnegative", True))
        m.info = dict(meta.get("training", {}))
        m.info["metrics"] = meta.get("metrics", {})
        return m
