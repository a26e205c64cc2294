"""RL variant of the sleep planner: PPO (Schulman et al., 2017; stable-baselines3) with one small
policy shared by every cell, trained on the gymnasium twin (:class:`mobileai.twin.env.NetworkEnv`,
``control="energy"``, TR 38.864 sleep states).

Parameter sharing across agents (Gupta et al., "Cooperative multi-agent control using deep RL",
AAMAS 2017): the network's ``[C, F]`` observation is cut into C per-cell samples, so the policy
sees one cell at a time and works for any number of cells. :class:`CellAgentsVecEnv` presents
the C cells of one network as C environments of a stable-baselines3 ``VecEnv`` that step together.

Per-cell features (:data:`FEATURE_NAMES`), all computable from a period's KPI table so the same
policy runs in the benchmark and on recorded data: own DL PRB load, state one-hot, the awake
neighbours' mean and max DL PRB load, the share of neighbours awake, the network's mean load,
time of day.

Per-cell reward for one decision window (a decomposition of the env's network reward into what
each cell controls)::

    r_i = - w_power · power_i - w_lost · lost_i - w_backlog · backlog

``power_i``: the cell's input power over its full-load power (env feature ``power``);
``lost_i``: sessions blocked or dropped over sessions started in the cell and its neighbours
(where a sleeping cell's UEs go); ``backlog``: the network's unserved share (env reward term
``backlog_share``). Actions per cell: ``active``, ``deep_sleep`` or ``off``; the same coverage
guard as the other policies (:func:`~mobileai.ai4net.energy.policies.coverage_ok`) vetoes a
sleep that leaves too few awake neighbours, in training and in use.

The trained policy is saved as the stable-baselines3 zip plus a JSON of its configuration and
training metrics, both written atomically (:mod:`.io`).
"""

from __future__ import annotations

import io
import json
import math
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from gymnasium import spaces
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from stable_baselines3.common.vec_env import VecEnv

from mobileai.ai4net.energy.io import write_bytes_atomic, write_json_atomic
from mobileai.ai4net.energy.policies import STATES, EnergyDecision, check_period_table, coverage_ok
from mobileai.ai4net.topology import NeighbourGraph, neighbour_graph
from mobileai.errors import UserError, format_validation_error
from mobileai.twin.actions import SetCellState
from mobileai.twin.config import Scenario

FEATURE_NAMES = (
    "prb_dl", "active", "light_sleep", "deep_sleep", "off",
    "nb_prb_mean", "nb_prb_max", "nb_awake_share", "net_prb_mean", "tod_sin", "tod_cos",
)  # fmt: skip
#: What the policy may choose per cell (index of its Discrete action).
ACTION_STATES = ("active", "deep_sleep", "off")
_STATE_INDEX = {s: i for i, s in enumerate(STATES)}
_ENV_FEATURE = {"prb_dl": 0, "power": 5, "state": slice(6, 10), "tod": slice(13, 15)}


class RLConfig(BaseModel):
    """Training settings (reward weights, budget, the twin fidelity it trains on)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    w_power: float = Field(1.0, ge=0, description="Weight of the cell's own power share.")
    w_lost: float = Field(2.0, ge=0, description="Weight of the local lost-session share.")
    w_backlog: float = Field(2.0, ge=0, description="Weight of the network's unserved share.")
    min_active_neighbours: int = Field(4, ge=0, le=32, description="Coverage guard (as the optimiser).")
    decisions: int = Field(190, ge=8, le=100_000, description="Training budget: env decisions (x cells).")
    episode_hours: float = Field(24.0, gt=0.5, le=168, description="Network time per training episode.")
    step_ms: float = Field(5000.0, ge=100, le=5000, description="Radio step of the training twin, ms.")
    ues: int | None = Field(600, ge=10, description="UEs of the training twin (load per cell kept).")
    seed: int = Field(1000, ge=0, description="Training seed (keep it apart from the benchmark's).")
    n_steps: int = Field(24, ge=2, le=4096, description="PPO rollout length in decisions.")
    n_epochs: int = Field(5, ge=1, le=50)
    gamma: float = Field(0.9, gt=0, le=1, description="Discount per 15-min decision.")
    learning_rate: float = Field(3e-4, gt=0, le=1)
    ent_coef: float = Field(0.01, ge=0, le=1)
    hidden: int = Field(32, ge=4, le=512, description="Units of each of the two hidden layers.")


def cell_features(prb: np.ndarray, state: np.ndarray, hour: float, graph: NeighbourGraph) -> np.ndarray:
    """``[C, len(FEATURE_NAMES)]`` float32 from DL PRB load (0..1), state index (0..3 as
    :data:`~mobileai.ai4net.energy.policies.STATES`) and local hour."""
    c = graph.n_cells
    out = np.zeros((c, len(FEATURE_NAMES)), np.float32)
    prb = np.clip(np.asarray(prb, float), 0.0, 1.0)
    state = np.asarray(state, int)
    awake = state == 0
    out[:, 0] = prb
    out[np.arange(c), 1 + state] = 1.0
    for i, nb in enumerate(graph.neighbours):
        up = [j for j in nb if awake[j]]
        out[i, 5] = float(np.mean(prb[up])) if up else 0.0
        out[i, 6] = float(np.max(prb[up])) if up else 0.0
        out[i, 7] = len(up) / len(nb) if nb else 0.0
    out[:, 8] = float(np.mean(prb[awake])) if awake.any() else 0.0
    out[:, 9] = math.sin(2 * math.pi * hour / 24.0)
    out[:, 10] = math.cos(2 * math.pi * hour / 24.0)
    return out


def guard_states(
    graph: NeighbourGraph, state: np.ndarray, want: list[str], prb: np.ndarray, min_active: int
) -> list[str]:
    """The wanted per-cell states after the coverage guard: wakes always pass; sleeps are
    admitted lowest load first while every affected cell keeps ``min_active`` awake neighbours."""
    out = [STATES[int(s)] for s in state]
    asleep = np.array([s != "active" for s in out])
    for i, w in enumerate(want):
        if w == "active" and asleep[i]:
            out[i], asleep[i] = "active", False
    for i in np.argsort(prb, kind="stable"):
        w = want[i]
        if w == "active":
            continue
        if asleep[i]:
            out[i] = w  # already asleep: may change depth
            continue
        asleep[i] = True
        if coverage_ok(graph, asleep, int(i), min_active):
            out[i] = w
        else:
            asleep[i] = False
    return out


class CellAgentsVecEnv(VecEnv):
    """The C cells of one :class:`~mobileai.twin.env.NetworkEnv` (energy control) as C agents of
    a stable-baselines3 VecEnv sharing one policy (module docstring)."""

    def __init__(self, scenario: Scenario, cfg: RLConfig) -> None:
        from mobileai.twin import timeline
        from mobileai.twin.env import NetworkEnv

        period = scenario.time.report_period_s
        self.env = NetworkEnv(
            scenario,
            decision_s=period,
            episode_s=cfg.episode_hours * 3600.0 - period,
            warmup_s=period,
            control="energy",
            typed_actions=False,
        )
        self.cfg = cfg
        self.graph = neighbour_graph(timeline.cell_config_table(self.env.twin), k=6)
        self.start_hour = scenario.time.start_hour
        self._actions: np.ndarray | None = None
        self._last_obs: np.ndarray | None = None
        self.episodes: list[dict[str, float]] = []
        self._ep: list[dict[str, float]] = []
        self.render_mode = None
        super().__init__(
            self.graph.n_cells,
            spaces.Box(-1.0, 1.0, (len(FEATURE_NAMES),), np.float32),
            spaces.Discrete(len(ACTION_STATES)),
        )

    def _features(self, obs: np.ndarray, t_s: float) -> np.ndarray:
        state = np.argmax(obs[:, _ENV_FEATURE["state"]], axis=1)
        hour = (self.start_hour + t_s / 3600.0) % 24.0
        return cell_features(obs[:, _ENV_FEATURE["prb_dl"]], state, hour, self.graph)

    def reset(self) -> np.ndarray:
        obs, info = self.env.reset(seed=self._seeds[0] if self._seeds[0] is not None else None)
        self._seeds = [None] * self.num_envs
        self._last_obs = obs
        return self._features(obs, info["t_s"])

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, int).reshape(-1)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        assert self._actions is not None and self._last_obs is not None
        obs0 = self._last_obs
        state = np.argmax(obs0[:, _ENV_FEATURE["state"]], axis=1)
        want = [ACTION_STATES[a] for a in self._actions]
        states = guard_states(self.graph, state, want, obs0[:, 0], self.cfg.min_active_neighbours)
        obs, _, _, truncated, info = self.env.step(np.array([_STATE_INDEX[s] for s in states]))
        reward = self._reward(obs, info)
        feats = self._features(obs, info["t_s"])
        self._ep.append(
            {
                "power_share": float(info["reward_terms"]["power_share"]),
                "backlog_share": float(info["reward_terms"]["backlog_share"]),
                "sleep_share": float(np.mean(np.array(states) != "active")),
                "reward": float(reward.mean()),
            }
        )
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        dones = np.full(self.num_envs, bool(truncated))
        if truncated:
            ep = pd.DataFrame(self._ep).mean().to_dict()
            self.episodes.append({k: float(v) for k, v in ep.items()})
            self._ep = []
            for i in range(self.num_envs):
                infos[i] = {"terminal_observation": feats[i], "TimeLimit.truncated": True}
            obs, info = self.env.reset()
            feats = self._features(obs, info["t_s"])
        self._last_obs = obs
        return feats, reward.astype(np.float32), dones, infos

    def _reward(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        w, cfg = info["window"], self.cfg
        lost = np.asarray(w["sessions_blocked"] + w["sessions_dropped"], float).reshape(-1)
        new = np.asarray(w["sessions_new"], float).reshape(-1)
        local = np.array(
            [
                lost[[i, *nb]].sum() / max(new[[i, *nb]].sum(), 1.0)
                for i, nb in enumerate(self.graph.neighbours)
            ]
        )
        backlog = float(info["reward_terms"]["backlog_share"])
        return -cfg.w_power * obs[:, _ENV_FEATURE["power"]] - cfg.w_lost * local - cfg.w_backlog * backlog

    def close(self) -> None:
        self.env.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
        return [getattr(self, method_name)(*args, **kwargs)] * len(self._indices(indices))

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False] * len(self._indices(indices))

    def _indices(self, indices: Any) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [indices] if isinstance(indices, int) else list(indices)


def training_scenario(base: Scenario, cfg: RLConfig) -> Scenario:
    """The benchmark variant of ``base`` at the training fidelity, with the training seed."""
    from mobileai.ai4net.energy.bench import bench_scenario

    sc = bench_scenario(base, cfg.episode_hours, cfg.ues, step_ms=cfg.step_ms)
    return sc.model_copy(update={"seed": cfg.seed})


def train(scenario: Scenario, cfg: RLConfig | None = None, progress: Any = None) -> RLPolicy:
    """Train PPO for ``cfg.decisions`` env decisions on ``scenario`` (already at the training
    fidelity, power fit applied); returns the policy with its training metrics."""
    import torch
    from stable_baselines3 import PPO

    cfg = cfg or RLConfig()
    torch.set_num_threads(1)
    venv = CellAgentsVecEnv(scenario, cfg)
    venv.seed(cfg.seed)
    n = venv.num_envs
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=cfg.n_steps,
        batch_size=max(n * cfg.n_steps // 4, 8),
        n_epochs=cfg.n_epochs,
        gamma=cfg.gamma,
        learning_rate=cfg.learning_rate,
        ent_coef=cfg.ent_coef,
        policy_kwargs={"net_arch": [cfg.hidden, cfg.hidden]},
        seed=cfg.seed,
        device="cpu",
        verbose=0,
    )
    t0 = time.perf_counter()
    model.learn(total_timesteps=cfg.decisions * n, callback=progress)
    wall = time.perf_counter() - t0
    eps = venv.episodes
    metrics = {
        "decisions": int(model.num_timesteps // n),
        "cell_samples": int(model.num_timesteps),
        "train_wall_s": wall,
        "episodes_completed": len(eps),
        "first_episode": eps[0] if eps else None,
        "last_episode": eps[-1] if eps else None,
        "partial_episode": pd.DataFrame(venv._ep).mean().to_dict() if venv._ep else None,
        "scenario": {
            "cells": n,
            "ues": scenario.ues.count,
            "step_ms": scenario.time.step_ms,
            "seed": scenario.seed,
            "start_hour": scenario.time.start_hour,
        },
    }
    venv.close()
    return RLPolicy(model, cfg, metrics)


class RLPolicy:
    """A trained shared per-cell PPO policy as a sleep planner (``decide(period table)``, like
    the threshold rule and the optimiser)."""

    name: ClassVar[str] = "rl"

    def __init__(self, model: Any, cfg: RLConfig, metrics: dict[str, Any]) -> None:
        self.model = model
        self.cfg = cfg
        self.metrics = metrics
        self.graph: NeighbourGraph | None = None

    def bind(self, graph: NeighbourGraph) -> RLPolicy:
        """Use the policy on the cells of ``graph`` (returns self)."""
        self.graph = graph
        return self

    def decide(self, kpis: pd.DataFrame) -> list[EnergyDecision]:
        """One decision per cell whose chosen state differs from its current one. ``kpis``:
        ``cell_id``, ``prb_dl`` (%), ``state`` and ``hour`` (local time at the period's end)."""
        if self.graph is None:
            raise RuntimeError("RLPolicy.bind(graph) before decide()")
        if "hour" not in kpis.columns:
            raise UserError("period KPI table: missing column 'hour' (local time of the period's end)")
        g = self.graph
        t = check_period_table(kpis, g)
        prb = np.array(t["prb_dl"].fillna(0.0), float) / 100.0
        state = np.array([_STATE_INDEX[s] for s in t["state"]])
        hour = float(pd.to_numeric(kpis["hour"]).iloc[-1])
        x = cell_features(prb, state, hour, g)
        act, _ = self.model.predict(x, deterministic=True)
        import torch

        with torch.no_grad():
            obs_t, _ = self.model.policy.obs_to_tensor(x)
            probs = self.model.policy.get_distribution(obs_t).distribution.probs.cpu().numpy()
        want = [ACTION_STATES[int(a)] for a in np.asarray(act).reshape(-1)]
        final = guard_states(g, state, want, prb, self.cfg.min_active_neighbours)
        out = []
        for i, (cur, new) in enumerate(zip(t["state"], final, strict=True)):
            if new == cur:
                continue
            p = {s: round(float(probs[i, k]), 3) for k, s in enumerate(ACTION_STATES)}
            out.append(
                EnergyDecision(
                    SetCellState(cell=g.cell_ids[i], state=new),
                    f"PPO shared cell policy chose {new} (p={p.get(new, 0):.2f}) at DL PRB "
                    f"{100 * prb[i]:.1f}%, awake neighbours' mean {100 * x[i, 5]:.1f}%",
                    "rl_policy",
                    {"action_probs": p, "features": dict(zip(FEATURE_NAMES, map(float, x[i]), strict=True))},
                )
            )
        return out

    # ------------------------------------------------------------------------------ persistence
    def save(self, path: Path) -> None:
        """``path`` (.zip, the SB3 model) and ``path.with_suffix('.json')`` (config, metrics),
        each written atomically."""
        path = Path(path)
        if path.suffix != ".zip":
            raise UserError(f"--rl-model: {path} must end in .zip")
        buf = io.BytesIO()
        self.model.save(buf)
        write_bytes_atomic(path, buf.getvalue())
        write_json_atomic(
            path.with_suffix(".json"),
            {"features": list(FEATURE_NAMES), "actions": list(ACTION_STATES),
             "config": self.cfg.model_dump(), "metrics": self.metrics},
        )  # fmt: skip

    @classmethod
    def load(cls, path: Path) -> RLPolicy:
        """Load what :meth:`save` wrote (UserError naming the file on any mismatch)."""
        from stable_baselines3 import PPO

        path = Path(path)
        meta_path = path.with_suffix(".json")
        for p in (path, meta_path):
            if not p.is_file():
                raise UserError(f"{p}: file not found (a saved RL policy is a .zip plus its .json)")
        try:
            meta = json.loads(meta_path.read_text())
            cfg = RLConfig(**meta["config"])
        except ValidationError as exc:
            raise UserError(format_validation_error(exc, str(meta_path))) from None
        except (KeyError, json.JSONDecodeError) as exc:
            raise UserError(f"{meta_path}: not an RL policy description ({exc})") from None
        if (
            tuple(meta.get("features", ())) != FEATURE_NAMES
            or tuple(meta.get("actions", ())) != ACTION_STATES
        ):
            raise UserError(f"{meta_path}: saved for other features/actions than this version uses")
        try:
            model = PPO.load(io.BytesIO(path.read_bytes()), device="cpu")
        except Exception as exc:  # a corrupt or foreign zip is the user's file
            raise UserError(f"{path}: cannot load the PPO policy ({str(exc).splitlines()[0]})") from None
        return cls(model, cfg, meta.get("metrics", {}))
