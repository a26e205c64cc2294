"""Federated training of the forecaster: FedAvg across regions, raw series never leave a client.

FedAvg (McMahan et al., "Communication-Efficient Learning of Deep Networks from Decentralized Data",
AISTATS 2017): each round the server sends the global parameters to every client, each client runs
``local_epochs`` of training on its own data and returns its parameters and sample count, and the
server replaces the global parameters by the sample-weighted average. Early stopping uses the
clients' validation losses (numbers, not data) and each client conformalizes its own intervals on
its own validation split (a personalised CQR offset), so no conformity score leaves a client either.
Perifanis et al. (Computer Networks 2023) apply the same scheme to the Barcelona base stations.

Structure enforces the privacy property: a :class:`Client` holds exactly one area's frame, the
server only sees :class:`Update` messages (parameter tensors keyed like the model's ``state_dict``,
a sample count and a loss), and every message is logged in ``FedAvgResult.messages`` for audit.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import torch

from mobileai.ai4net.forecast.data import SeriesFrame
from mobileai.ai4net.forecast.model import (
    NeuralConfig,
    NeuralForecaster,
    STQuantileNet,
    calibration_offset,
    eval_loss,
    make_samples,
    train_epochs,
)


@dataclass(frozen=True)
class Update:
    """What a client sends: parameters (same keys/shapes as the global model), samples, loss."""

    client: str
    params: dict[str, torch.Tensor]
    n_samples: int
    val_loss: float


class Client:
    """A region that trains on its own series; only parameters and counts leave it."""

    def __init__(
        self, name: str, frame: SeriesFrame, fit_end: int, val_end: int, horizon: int, config: NeuralConfig
    ) -> None:
        self.name = name
        self.config = config
        rng = np.random.default_rng(config.seed)
        self.__fit = make_samples(frame, 0, fit_end, horizon, config.weekly, config.max_samples, rng)
        self.__val = make_samples(frame, fit_end, val_end, horizon, config.weekly, config.max_samples, rng)
        self.__gen = torch.Generator().manual_seed(config.seed + zlib.crc32(name.encode()) % 1000)

    def _net(self, params: dict[str, torch.Tensor]) -> STQuantileNet:
        net = STQuantileNet(self.__fit.X.shape[-1], self.config.hidden)
        net.load_state_dict(params)
        return net

    def local_update(self, params: dict[str, torch.Tensor], local_epochs: int) -> Update:
        net = self._net(params)
        opt = torch.optim.AdamW(net.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)
        train_epochs(net, [self.__fit], local_epochs, opt, self.config.batch, self.__gen)
        loss, _ = eval_loss(net, [self.__val])
        return Update(
            self.name, {k: v.detach().clone() for k, v in net.state_dict().items()}, len(self.__fit), loss
        )

    def evaluate(self, params: dict[str, torch.Tensor]) -> tuple[float, int]:
        return eval_loss(self._net(params), [self.__val])

    def calibrate(self, params: dict[str, torch.Tensor]) -> float:
        """This client's CQR offset for the global model (computed locally)."""
        return calibration_offset(self._net(params), [self.__val], self.config.alpha)


@dataclass
class FedAvgResult:
    global_params: dict[str, torch.Tensor]
    offsets: dict[str, float]
    rounds_run: int
    val_history: list[float]
    messages: list[dict] = field(default_factory=list)

    def model_for(self, client: str, config: NeuralConfig, horizon: int) -> NeuralForecaster:
        """A :class:`NeuralForecaster` with the global weights and ``client``'s interval offset."""
        m = NeuralForecaster(config)
        m.net = m._new_net()
        m.net.load_state_dict(self.global_params)
        m.offset, m.horizon = self.offsets[client], horizon
        m.info = {"federated_rounds": self.rounds_run, "cqr_offset": m.offset}
        return m


def weighted_average(updates: list[Update]) -> dict[str, torch.Tensor]:
    total = sum(u.n_samples for u in updates)
    if total <= 0:
        raise ValueError("FedAvg: no client has training samples")
    keys = updates[0].params.keys()
    return {k: sum(u.params[k] * (u.n_samples / total) for u in updates) for k in keys}


def fedavg(
    clients: list[Client],
    rounds: int = 20,
    local_epochs: int = 1,
    patience: int = 4,
    config: NeuralConfig | None = None,
) -> FedAvgResult:
    """Train one global model over ``clients`` by FedAvg; stop when the sample-weighted validation
    loss reported by the clients has not improved for ``patience`` rounds (best round kept)."""
    if not clients:
        raise ValueError("FedAvg needs at least one client")
    config = config or clients[0].config
    torch.manual_seed(config.seed)
    from mobileai.ai4net.forecast.features import feature_names

    global_params = STQuantileNet(len(feature_names(config.weekly)), config.hidden).state_dict()
    shapes = {k: tuple(v.shape) for k, v in global_params.items()}
    best, best_params, bad, history, messages = float("inf"), global_params, 0, [], []
    r = 0
    for r in range(1, rounds + 1):
        updates = [c.local_update(global_params, local_epochs) for c in clients]
        for u in updates:
            if {k: tuple(v.shape) for k, v in u.params.items()} != shapes:
                raise ValueError(f"client {u.client} sent something other than the model's parameters")
            messages.append({"round": r, "client": u.client, "keys": len(u.params), "n_samples": u.n_samples})
        global_params = weighted_average(updates)
        evals = [c.evaluate(global_params) for c in clients]
        n = sum(k for _, k in evals)
        loss = sum(v * k for v, k in evals) / n
        history.append(loss)
        if loss < best - 1e-5:
            best, best_params, bad = loss, {k: v.clone() for k, v in global_params.items()}, 0
        else:
            bad += 1
            if bad >= patience:
                break
    offsets = {c.name: c.calibrate(best_params) for c in clients}
    return FedAvgResult(best_params, offsets, r, history, messages)
