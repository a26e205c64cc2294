"""Gymnasium environments on the dynamic twin: one network (:class:`NetworkEnv`) or B networks
stepped in one tensor pass (:class:`NetworkVectorEnv`, gymnasium 1.x vector API).

An env step is one *decision*: the agent's action is applied to the twin, the twin runs
``decision_s`` of network time (``decision_s / time.step_ms`` radio steps), and the counters of
that window (:meth:`Twin.window`) become the observation and the reward. An episode lasts
``episode_s`` of network time after a warm-up of ``warmup_s`` (default one decision window, so the
first observation shows traffic, not an empty network); it ends with ``truncated=True`` (a time
limit, not a terminal state: ``terminated`` is always False).

Control surfaces (``control``), per cell, as a ``MultiDiscrete`` action:

=========== ======================= =================================================================
control     action per cell         effect (typed action; TS/TR clause)
=========== ======================= =================================================================
energy      4: 0 active,            :class:`~mobileai.twin.actions.SetCellState` (TR 38.864 sleep
            1 light sleep,          states; waking costs the transition time and energy). A cell
            2 deep sleep, 3 off     already in the chosen state is left alone.
coverage    3 x 2: [tilt, power],   tilt -1 / 0 / +1 degree (:class:`SetTilt`), transmit power
            each 0 -1, 1 keep, 2 +1 -1 / 0 / +1 dB (:class:`SetTxPower`) around the current value,
                                    clipped to ``tilt_range_deg`` and to ``power_range_db`` around
                                    the cell's rated power (TS 28.313 coverage and capacity
                                    optimisation). Action shape [C, 2].
mobility    3: 0 -1 dB, 1 keep,     A3 hysteresis of the cell's UEs in 1 dB steps, clipped to
            2 +1 dB                 ``hysteresis_range_db`` (:class:`SetHandoverParams`; TTT kept;
                                    TS 38.331 5.5.4.4). Per-pair CIO is not used: one hysteresis
                                    per cell keeps the action small and the state [C], not [C, C].
=========== ======================= =================================================================

Observation: float32 ``[C, F]`` (``F = len(FEATURES)``), one row per cell, from the last decision
window (``nominal UEs`` = UEs / cells of the scenario; ``per minute`` = per 60 s of the window):

==  ==============  =================================================================  ===========
#   name            definition                                                         range
==  ==============  =================================================================  ===========
0   prb_dl          mean DL PRB utilisation (RRU.PrbUsedDl / 100)                      0..1
1   prb_ul          mean UL PRB utilisation (RRU.PrbUsedUl / 100)                      0..1
2   connected       mean connected UEs / nominal UEs per cell                          0..C
3   thp_dl          DL cell throughput / the cell's DL peak rate (TS 38.306 4.1.2 at   0..1
                    the top MCS, all PRBs, its TDD DL share, max layers)
4   thp_ul          UL cell throughput / the cell's UL peak rate (1 layer, UL share)   0..1
5   power           mean input power / the cell's full-load power (EARTH P0 + Δp Pmax) 0..2
6   active          1 if the cell's commanded state is active (end of window)          0 / 1
7   light_sleep     1 if in light sleep                                                0 / 1
8   deep_sleep      1 if in deep sleep                                                 0 / 1
9   off             1 if switched off                                                  0 / 1
10  sessions_lost   (sessions blocked + dropped) per nominal UE per minute             0..2CR
11  ho_attempts     handover attempts out of the cell per nominal UE per minute        0..2CR
12  rlf             radio link failures per nominal UE per minute                      0..CR
13  tod_sin         sin(2π hour / 24), local time at the end of the window             -1..1
14  tod_cos         cos(2π hour / 24)                                                  -1..1
==  ==============  =================================================================  ===========

The upper bounds of the observation space are exact, not clipping points: C cells per network
(every UE in one cell), R = 60 s / step length (at most one RLF and two lost sessions or
handovers per UE per radio step), power at full load plus one wake-up per window.

Reward of a network (copy) for one window, with weights :class:`RewardWeights`::

    r = - w.power * power_share - w.qos * (sessions_lost + backlog_share) + w.thp * thp_share
        - w.ho * ho_rate - w.rlf * rlf_rate

- ``power_share``: network input power / network full-load power (sum over its cells);
- ``sessions_lost``: sessions blocked by admission control plus sessions dropped by RLF in the
  window, per UE of the network;
- ``backlog_share``: unserved backlog, DL + UL bits still buffered at the end of the window over
  those plus the bits served in the window (0: everything offered was delivered; 1: nothing);
- ``thp_share``: network DL + UL throughput / the sum of the cells' DL + UL peak rates;
- ``ho_rate`` / ``rlf_rate``: handover attempts / RLFs per UE per minute.

Defaults per control (:data:`DEFAULT_WEIGHTS`): energy ``-(power_share) - 1.0 x (sessions_lost +
backlog_share)``; coverage ``-(sessions_lost + backlog_share) - 1.0 x rlf_rate``; mobility
``-(sessions_lost + backlog_share) - 0.1 x ho_rate - 1.0 x rlf_rate``. ``info["reward_terms"]``
carries every term, ``info["window"]`` the raw window counters per cell.

Seeds: ``reset(seed=s)`` rebuilds the twin from the scenario with ``seed = s``; a later
``reset()`` without a seed continues with ``s + copies`` (copies = 1 for :class:`NetworkEnv`), so
episodes differ and the whole sequence is reproducible. Before any seed is given the scenario's
own seed is used. The vector env's B copies get their own seeds from the twin
(``Twin(sc, copies=B)``).

Vector env autoreset (gymnasium 1.x ``AutoresetMode.NEXT_STEP``): all copies share one episode
clock, so they are truncated on the same step; the next ``step()`` ignores its action, starts a
new episode and returns its first observation with reward 0 and ``terminated = truncated =
False``. The new episode runs on the same B networks (layout, shadowing, cell types, fault
schedule: the twin's seed is kept) with the UEs dropped anew and every cell and UE state reset
(:meth:`Twin.new_episode`, reproducible from the seed; ``info["episode"]`` counts the episodes
since the last rebuild). That costs a fraction of rebuilding ``Twin(copies=B)``, which takes
seconds for B = 1,024; an explicit ``reset()`` still rebuilds with the next seed.

Actions reach the twin as typed actions through :meth:`Twin.apply` (validated, logged,
reversible) in :class:`NetworkEnv` (``typed_actions=True``), for the cells whose value changes.
:class:`NetworkVectorEnv` sets the same cell parameters as tensors in one pass
(``typed_actions=False``: B x C actions per step would cost ~0.2 ms each in validation and
logging); a test checks both paths give the same trajectory.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from mobileai.errors import UserError
from mobileai.twin import linkadapt
from mobileai.twin.actions import SetCellState, SetHandoverParams, SetTilt, SetTxPower
from mobileai.twin.config import Scenario, load_scenario
from mobileai.twin.energy import STATE_NAMES, CellState
from mobileai.twin.engine import Twin

CONTROLS = ("energy", "coverage", "mobility")

#: Observation features per cell, in column order: (name, definition).
FEATURES: tuple[tuple[str, str], ...] = (
    ("prb_dl", "mean DL PRB utilisation, 0..1"),
    ("prb_ul", "mean UL PRB utilisation, 0..1"),
    ("connected", "mean connected UEs / nominal UEs per cell"),
    ("thp_dl", "DL throughput / cell DL peak rate"),
    ("thp_ul", "UL throughput / cell UL peak rate"),
    ("power", "mean input power / full-load power"),
    ("active", "state one-hot: active"),
    ("light_sleep", "state one-hot: light sleep"),
    ("deep_sleep", "state one-hot: deep sleep"),
    ("off", "state one-hot: off"),
    ("sessions_lost", "(blocked + dropped sessions) per nominal UE per minute"),
    ("ho_attempts", "handover attempts per nominal UE per minute"),
    ("rlf", "radio link failures per nominal UE per minute"),
    ("tod_sin", "sin(2 pi hour / 24)"),
    ("tod_cos", "cos(2 pi hour / 24)"),
)
FEATURE_NAMES = tuple(name for name, _ in FEATURES)
_F = {name: i for i, name in enumerate(FEATURE_NAMES)}

#: Window counters the env reads (:meth:`Twin.window`), besides ``seconds``.
WINDOW_KEYS = (
    "dl_bits", "ul_bits", "prb_dl", "prb_ul", "energy_j", "connected", "ho_req", "rlf",
    "sessions_blocked", "sessions_dropped",
)  # fmt: skip

_STATE_BY_ACTION = ("active", "light_sleep", "deep_sleep", "off")
#: SINR at which the peak rate (top MCS, max rank) is reached, dB.
_PEAK_SINR_DB = 40.0


@dataclass(frozen=True)
class RewardWeights:
    """Weights of the reward terms (see the module docstring); all >= 0."""

    power: float = 0.0
    qos: float = 0.0
    thp: float = 0.0
    ho: float = 0.0
    rlf: float = 0.0

    def __post_init__(self) -> None:
        for k, v in asdict(self).items():
            if not (math.isfinite(v) and v >= 0):
                raise UserError(f"reward weight {k} must be a finite number >= 0 (got {v})")


#: Default reward weights per control.
DEFAULT_WEIGHTS: dict[str, RewardWeights] = {
    "energy": RewardWeights(power=1.0, qos=1.0),
    "coverage": RewardWeights(qos=1.0, rlf=1.0),
    "mobility": RewardWeights(qos=1.0, ho=0.1, rlf=1.0),
}


def _resolve_scenario(scenario: Scenario | str | Path) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    return load_scenario(scenario)


def _steps(span_s: float, unit_s: float, what: str, unit_name: str) -> int:
    n = round(span_s / unit_s)
    if n < 1 or abs(n * unit_s - span_s) > 1e-6 * max(1.0, span_s):
        raise UserError(
            f"{what} ({span_s:g} s) must be a positive whole number of {unit_name} ({unit_s:g} s)"
        )
    return n


class _Core:
    """The twin, the action mapping, and window -> observation / reward, for B copies."""

    def __init__(
        self,
        scenario: Scenario | str | Path,
        control: str,
        decision_s: float,
        episode_s: float,
        warmup_s: float | None,
        reward_weights: RewardWeights | dict[str, float] | None,
        device: str,
        copies: int,
        typed_actions: bool,
        tilt_range_deg: tuple[float, float],
        power_range_db: tuple[float, float],
        hysteresis_range_db: tuple[float, float],
    ) -> None:
        if control not in CONTROLS:
            raise UserError(f"control {control!r} is not one of {', '.join(CONTROLS)}")
        if copies < 1:
            raise UserError(f"copies must be >= 1 (got {copies})")
        self.sc = _resolve_scenario(scenario)
        self.control = control
        self.device = device
        self.copies = int(copies)
        self.typed_actions = typed_actions
        dt = self.sc.time.step_ms / 1000.0
        self.dt = dt
        self.steps_per_decision = _steps(decision_s, dt, "decision_s", "radio steps")
        self.decision_s = self.steps_per_decision * dt
        self.decisions_per_episode = _steps(episode_s, self.decision_s, "episode_s", "decisions")
        warm = self.decision_s if warmup_s is None else float(warmup_s)
        self.warmup_steps = 0 if warm == 0 else _steps(warm, dt, "warmup_s", "radio steps")
        if isinstance(reward_weights, dict):
            allowed = tuple(RewardWeights.__dataclass_fields__)
            unknown = sorted(set(reward_weights) - set(allowed))
            if unknown:
                raise UserError(f"unknown reward weight(s) {unknown}; allowed: {', '.join(allowed)}")
            reward_weights = RewardWeights(**reward_weights)
        self.weights = reward_weights or DEFAULT_WEIGHTS[control]
        for name, (lo, hi) in (
            ("tilt_range_deg", tilt_range_deg),
            ("power_range_db", power_range_db),
            ("hysteresis_range_db", hysteresis_range_db),
        ):
            if not lo <= hi:
                raise UserError(f"{name}: lower bound {lo} is above upper bound {hi}")
        if tilt_range_deg[0] < -10 or tilt_range_deg[1] > 45:
            raise UserError(f"tilt_range_deg {tilt_range_deg} must lie within -10..45 (SetTilt)")
        if hysteresis_range_db[0] < 0 or hysteresis_range_db[1] > 15:
            raise UserError(f"hysteresis_range_db {hysteresis_range_db} must lie within 0..15")
        self.tilt_range_deg = tilt_range_deg
        self.power_range_db = power_range_db
        self.hysteresis_range_db = hysteresis_range_db
        self._next_seed = self.sc.seed
        self.twin: Twin | None = None
        self.seed: int | None = None
        self.decisions = 0
        self.episode = 0
        self._build(self._next_seed)  # sizes for the spaces; the first reset() may reuse it
        self._fresh = True
        c = self.cells_per_copy
        self.n_features = len(FEATURES)
        low = np.zeros((c, self.n_features), np.float32)
        high = np.ones((c, self.n_features), np.float32)
        # exact upper bounds: every UE in one cell (connected = C), at most two events per UE
        # per radio step (blocked + dropped; an offload + an A3 handover) and one RLF (rates
        # 2 C x 60 / dt and C x 60 / dt), power at full load plus one wake-up per window (< 2)
        per_min = 60.0 / dt
        high[:, _F["connected"]] = c
        high[:, _F["power"]] = 2.0
        high[:, _F["sessions_lost"]] = 2 * c * per_min
        high[:, _F["ho_attempts"]] = 2 * c * per_min
        high[:, _F["rlf"]] = c * per_min
        for name in ("tod_sin", "tod_cos"):
            low[:, _F[name]] = -1.0
            high[:, _F[name]] = 1.0
        self._obs_low, self._obs_high = low, high
        self.single_observation_space = spaces.Box(low, high, dtype=np.float32)
        if control == "energy":
            nvec = np.full(c, 4, np.int64)
        elif control == "coverage":
            nvec = np.full((c, 2), 3, np.int64)
        else:
            nvec = np.full(c, 3, np.int64)
        self.single_action_space = spaces.MultiDiscrete(nvec)
        self.noop_action = self._noop()

    # ------------------------------------------------------------------------------------ twin
    def _build(self, seed: int) -> None:
        sc = self.sc.model_copy(update={"seed": int(seed)})
        tw = Twin(sc, self.device) if self.copies == 1 else Twin(sc, self.device, copies=self.copies)
        self.twin = tw
        self.seed = int(seed)
        b = getattr(tw, "copies", 1)
        if b != self.copies:
            raise RuntimeError(f"the twin built {b} copies, {self.copies} were asked for")
        self.cells_per_copy = getattr(tw, "cells_per_copy", tw.n_cells)
        self.ues_per_copy = getattr(tw, "ues_per_copy", tw.n_ues)
        dev = tw.device
        self._rated_power = tw.tx_power_dbm.clone()
        self._tilt0 = tw.tilt_deg.clone()
        self._p_full = tw.energy.p_full_w.double().cpu().numpy().reshape(b, -1)
        ran = sc.ran
        top = torch.full((tw.n_cells,), _PEAK_SINR_DB, dtype=torch.float32, device=dev)
        self._peak_args = (
            top,
            tw.n_rb,
            sc.radio.subcarrier_spacing_khz,
            ran.control_overhead,
            ran.max_layers,
        )

    def _peak_rates(self) -> tuple[np.ndarray, np.ndarray]:
        top, n_rb, scs, oh, layers = self._peak_args
        tdd = self.twin.tdd_dl
        dl = linkadapt.peak_rate_bps(top, n_rb, scs, oh, layers, tdd)
        ul = linkadapt.peak_rate_bps(top, n_rb, scs, oh, 1, 1.0 - tdd)
        b = self.copies
        return (
            dl.double().cpu().numpy().reshape(b, -1),
            ul.double().cpu().numpy().reshape(b, -1),
        )

    def reset(self, seed: int | None, same_networks: bool = False) -> tuple[np.ndarray, dict[str, Any]]:
        """New episode: rebuild the twin with ``seed`` (default: the next seed), or with
        ``same_networks`` (autoreset) re-drop the UEs of the current twin (:meth:`Twin.new_episode`)."""
        if same_networks and seed is None and self.twin is not None and not self._fresh:
            self.twin.new_episode()
            self.episode += 1
            self.decisions = 0
            for _ in range(self.warmup_steps):
                self.twin.step()
            obs, _, info = self._observe()
            return obs, info
        if seed is not None:
            if not 0 <= int(seed) <= 2**31 - 1:
                raise UserError(f"seed must be within 0..2**31-1 (got {seed})")
            self._next_seed = int(seed)
        s = self._next_seed
        self._next_seed = (s + self.copies) % (2**31)
        if not (self._fresh and s == self.seed):  # the twin built by __init__ has not run yet
            self._build(s)
        self._fresh = False
        self.episode = 0
        self.decisions = 0
        for _ in range(self.warmup_steps):
            self.twin.step()
        obs, _, info = self._observe()
        return obs, info

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool, dict[str, Any]]:
        applied = self.apply(actions)
        for _ in range(self.steps_per_decision):
            self.twin.step()
        self.decisions += 1
        obs, reward, info = self._observe()
        info["actions_applied"] = applied
        return obs, reward, self.decisions >= self.decisions_per_episode, info

    # ---------------------------------------------------------------------------------- actions
    def _noop(self) -> np.ndarray:
        c = self.cells_per_copy
        if self.control == "energy":
            return np.zeros(c, np.int64)  # all active
        if self.control == "coverage":
            return np.ones((c, 2), np.int64)
        return np.ones(c, np.int64)

    def check_actions(self, actions: Any) -> np.ndarray:
        """[B, *action shape] integer array within the action space, or a ValueError."""
        a = np.asarray(actions)
        shape = (self.copies, *self.single_action_space.shape)
        if a.shape != shape:
            raise ValueError(f"action shape {a.shape} does not match {shape}")
        if not np.issubdtype(a.dtype, np.integer):
            if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
                raise ValueError("actions must be integers")
            a = a.astype(np.int64)
        nvec = self.single_action_space.nvec
        if np.any(a < 0) or np.any(a >= nvec[None]):
            raise ValueError(f"actions out of range: each entry must be within 0..{int(nvec.max()) - 1}")
        return a.astype(np.int64, copy=False)

    def apply(self, actions: Any) -> int:
        """Apply [B, ...] actions; returns how many cell parameters changed."""
        a = self.check_actions(actions)
        tw = self.twin
        dev = tw.device
        if self.control == "energy":
            new = torch.as_tensor(a.reshape(-1), device=dev)
            changed = (new != tw.state).nonzero().squeeze(1)
            if changed.numel() == 0:
                return 0
            if self.typed_actions:
                acts = [
                    SetCellState(cell=int(i), state=_STATE_BY_ACTION[int(new[i])]) for i in changed.tolist()
                ]
                return self._apply_typed(acts)
            _set_cell_state(tw, changed, new[changed])
            return int(changed.numel())
        if self.control == "coverage":
            d = torch.as_tensor(a.reshape(-1, 2) - 1, device=dev, dtype=torch.float32)
            n = 0
            lo_t = torch.minimum(self._tilt0, torch.full_like(self._tilt0, self.tilt_range_deg[0]))
            hi_t = torch.maximum(self._tilt0, torch.full_like(self._tilt0, self.tilt_range_deg[1]))
            tilt = torch.minimum(torch.maximum(tw.tilt_deg + d[:, 0], lo_t), hi_t)
            lo_p = (self._rated_power + self.power_range_db[0]).clamp(min=0.0)
            hi_p = (self._rated_power + self.power_range_db[1]).clamp(max=60.0)
            power = torch.minimum(torch.maximum(tw.tx_power_dbm + d[:, 1], lo_p), hi_p)
            ch_t = (tilt != tw.tilt_deg).nonzero().squeeze(1)
            ch_p = (power != tw.tx_power_dbm).nonzero().squeeze(1)
            if self.typed_actions:
                acts: list = [SetTilt(cell=int(i), downtilt_deg=float(tilt[i])) for i in ch_t.tolist()]
                acts += [SetTxPower(cell=int(i), tx_power_dbm=float(power[i])) for i in ch_p.tolist()]
                return self._apply_typed(acts) if acts else 0
            if ch_t.numel():
                _set_tilt(tw, ch_t, tilt[ch_t])
                n += int(ch_t.numel())
            if ch_p.numel():
                tw.set_tx_power_rows(ch_p, power[ch_p])
                n += int(ch_p.numel())
            return n
        # mobility: hysteresis steps
        d = torch.as_tensor(a.reshape(-1) - 1, device=dev, dtype=torch.float32)
        lo, hi = self.hysteresis_range_db
        hys = (tw.hysteresis_db + d).clamp(lo, hi)
        ch = (hys != tw.hysteresis_db).nonzero().squeeze(1)
        if ch.numel() == 0:
            return 0
        if self.typed_actions:
            ttt = tw.ttt_s * 1000.0
            acts = [
                SetHandoverParams(cell=int(i), hysteresis_db=float(hys[i]), time_to_trigger_ms=float(ttt[i]))
                for i in ch.tolist()
            ]
            return self._apply_typed(acts)
        tw.hysteresis_db[ch] = hys[ch]
        return int(ch.numel())

    def _apply_typed(self, acts: list) -> int:
        results = self.twin.apply(acts)
        bad = [r for r in results if not r.applied]
        if bad:
            raise RuntimeError(f"the twin rejected {len(bad)} action(s), first: {bad[0].reason}")
        return len(results)

    # ----------------------------------------------------------------------------- observation
    def _observe(self) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        tw = self.twin
        b, c, u = self.copies, self.cells_per_copy, self.ues_per_copy
        raw = tw.window()
        missing = [k for k in (*WINDOW_KEYS, "seconds") if k not in raw]
        if missing:
            raise RuntimeError(f"Twin.window() lacks {missing}")
        secs = float(torch.as_tensor(raw["seconds"]).double().max())
        win = {
            k: torch.as_tensor(v).double().cpu().numpy().reshape(b, c)
            for k, v in raw.items()
            if k != "seconds" and torch.as_tensor(v).numel() == b * c
        }
        secs_safe = max(secs, 1e-9)
        steps = max(secs / self.dt, 1.0)
        nominal = u / c
        per_min = 60.0 / secs_safe
        peak_dl, peak_ul = self._peak_rates()
        obs = np.zeros((b, c, self.n_features), np.float64)
        obs[..., _F["prb_dl"]] = win["prb_dl"] / steps
        obs[..., _F["prb_ul"]] = win["prb_ul"] / steps
        obs[..., _F["connected"]] = win["connected"] / steps / nominal
        obs[..., _F["thp_dl"]] = win["dl_bits"] / secs_safe / np.maximum(peak_dl, 1.0)
        obs[..., _F["thp_ul"]] = win["ul_bits"] / secs_safe / np.maximum(peak_ul, 1.0)
        obs[..., _F["power"]] = win["energy_j"] / secs_safe / self._p_full
        state = tw.state.cpu().numpy().reshape(b, c)
        for s in CellState:
            obs[..., _F[s.name.lower()]] = state == int(s)
        lost = win["sessions_blocked"] + win["sessions_dropped"]
        obs[..., _F["sessions_lost"]] = lost / nominal * per_min
        obs[..., _F["ho_attempts"]] = win["ho_req"] / nominal * per_min
        obs[..., _F["rlf"]] = win["rlf"] / nominal * per_min
        hour = (self.sc.time.start_hour + tw.t / 3600.0) % 24.0
        obs[..., _F["tod_sin"]] = math.sin(2 * math.pi * hour / 24.0)
        obs[..., _F["tod_cos"]] = math.cos(2 * math.pi * hour / 24.0)
        obs = np.nan_to_num(obs, nan=0.0, posinf=0.0, neginf=0.0)
        obs = np.clip(obs, self._obs_low, self._obs_high).astype(np.float32)
        # reward terms per copy
        served = win["dl_bits"].sum(1) + win["ul_bits"].sum(1)
        buf = (
            (tw.traffic.dl_buffer_bits + tw.traffic.ul_buffer_bits)
            .double()
            .cpu()
            .numpy()
            .reshape(b, u)
            .sum(1)
        )
        terms = {
            "power_share": win["energy_j"].sum(1) / secs_safe / self._p_full.sum(1),
            "sessions_lost": lost.sum(1) / u,
            "backlog_share": buf / np.maximum(buf + served, 1.0),
            "thp_share": served / secs_safe / np.maximum((peak_dl + peak_ul).sum(1), 1.0),
            "ho_rate": win["ho_req"].sum(1) / u * per_min,
            "rlf_rate": win["rlf"].sum(1) / u * per_min,
        }
        w = self.weights
        reward = (
            -w.power * terms["power_share"]
            - w.qos * (terms["sessions_lost"] + terms["backlog_share"])
            + w.thp * terms["thp_share"]
            - w.ho * terms["ho_rate"]
            - w.rlf * terms["rlf_rate"]
        )
        info = {
            "t_s": tw.t,
            "seed": self.seed,
            "episode": self.episode,
            "decision": self.decisions,
            "window_s": secs,
            "window": win,
            "reward_terms": terms,
        }
        return obs, reward.astype(np.float64), info


# ------------------------------------------------------------------ vectorised control surface
# The same parameter changes as Twin._apply_one (engine.py), for many cells in one pass. Kept in
# step with it by tests/test_env.py::test_typed_and_tensor_action_paths_agree.
def _set_cell_state(tw: Twin, idx: torch.Tensor, new: torch.Tensor) -> None:
    old = tw.state[idx]
    waking = (new == int(CellState.ACTIVE)) & (old != int(CellState.ACTIVE))
    if bool(waking.any()):
        w = idx[waking]
        wake_s = tw.energy.wake_time_s(old[waking]).double()
        tw.wake_until[w] = (tw.t + wake_s).to(tw.wake_until.dtype)
        extra = tw.energy.wake_energy_j(tw.state)[w].to(torch.float64)
        tw.counters.sums["energy_j"].index_add_(0, w, extra)
    tw.state[idx] = new
    tw._commanded_off[idx] = new != int(CellState.ACTIVE)
    tw._state_version += 1


def _set_tilt(tw: Twin, idx: torch.Tensor, new: torch.Tensor) -> None:
    tw.tilt_deg[idx] = new
    tw.radio.set_tilt(tw.tilt_deg + tw._eff.tilt_offset_deg)
    tw._full_refresh = True


assert set(_STATE_BY_ACTION) == set(STATE_NAMES)


def _single_info(info: dict[str, Any]) -> dict[str, Any]:
    out = dict(info)
    out["window"] = {k: v[0] for k, v in info["window"].items()}
    out["reward_terms"] = {k: float(v[0]) for k, v in info["reward_terms"].items()}
    return out


_COMMON_DOC = """
    ``scenario``: a :class:`Scenario` or a packaged name / YAML path (default ``dense-urban``);
    ``control``: ``energy``, ``coverage`` or ``mobility`` (the action space);
    ``decision_s``: network time per env step (a whole number of radio steps; default 60 s);
    ``episode_s``: network time per episode (a whole number of decisions; default 3600 s);
    ``warmup_s``: network time run before the first observation (default: one decision);
    ``reward_weights``: :class:`RewardWeights` or a dict of them (default per control);
    ``tilt_range_deg`` / ``power_range_db`` / ``hysteresis_range_db``: where the coverage and
    mobility steps are clipped (power relative to each cell's rated power)."""


class NetworkEnv(gymnasium.Env):
    __doc__ = (
        "One network as a gymnasium env (observation, action, reward: module docstring).\n" + _COMMON_DOC
    )

    metadata = {"render_modes": []}  # noqa: RUF012 (gymnasium's class attribute)

    def __init__(
        self,
        scenario: Scenario | str | Path = "dense-urban",
        decision_s: float = 60.0,
        episode_s: float = 3600.0,
        control: str = "energy",
        reward_weights: RewardWeights | dict[str, float] | None = None,
        warmup_s: float | None = None,
        device: str = "cpu",
        typed_actions: bool = True,
        tilt_range_deg: tuple[float, float] = (0.0, 20.0),
        power_range_db: tuple[float, float] = (-10.0, 0.0),
        hysteresis_range_db: tuple[float, float] = (0.0, 10.0),
    ) -> None:
        super().__init__()
        self._core = _Core(
            scenario, control, decision_s, episode_s, warmup_s, reward_weights, device, 1,
            typed_actions, tilt_range_deg, power_range_db, hysteresis_range_db,
        )  # fmt: skip
        self.observation_space = self._core.single_observation_space
        self.action_space = self._core.single_action_space
        self._ready = False

    @property
    def twin(self) -> Twin:
        """The twin of the current episode."""
        return self._core.twin

    @property
    def noop_action(self) -> np.ndarray:
        """The action that changes nothing (energy: all cells active)."""
        return self._core.noop_action.copy()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        obs, info = self._core.reset(seed)
        self._ready = True
        return obs[0], _single_info(info)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self._ready:
            raise RuntimeError("call reset() before step() (and after an episode ends)")
        obs, reward, done, info = self._core.step(np.asarray(action)[None])
        if done:
            self._ready = False
        return obs[0], float(reward[0]), False, done, _single_info(info)


class NetworkVectorEnv(VectorEnv):
    __doc__ = (
        "B networks in one twin tensor pass (``Twin(copies=B)``) as a gymnasium 1.x vector env:\n"
        "observations [B, C, F], actions [B, ...], rewards [B]; the copies share the episode clock,\n"
        "so they are truncated together, and autoreset is NEXT_STEP (module docstring).\n"
        "    ``num_envs``: B." + _COMMON_DOC
    )

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}  # noqa: RUF012

    def __init__(
        self,
        num_envs: int,
        scenario: Scenario | str | Path = "dense-urban",
        decision_s: float = 60.0,
        episode_s: float = 3600.0,
        control: str = "energy",
        reward_weights: RewardWeights | dict[str, float] | None = None,
        warmup_s: float | None = None,
        device: str = "cpu",
        typed_actions: bool = False,
        tilt_range_deg: tuple[float, float] = (0.0, 20.0),
        power_range_db: tuple[float, float] = (-10.0, 0.0),
        hysteresis_range_db: tuple[float, float] = (0.0, 10.0),
    ) -> None:
        self._core = _Core(
            scenario, control, decision_s, episode_s, warmup_s, reward_weights, device, num_envs,
            typed_actions, tilt_range_deg, power_range_db, hysteresis_range_db,
        )  # fmt: skip
        self.num_envs = num_envs
        self.single_observation_space = self._core.single_observation_space
        self.single_action_space = self._core.single_action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        nvec = self.single_action_space.nvec
        self.action_space = spaces.MultiDiscrete(np.broadcast_to(nvec, (num_envs, *nvec.shape)).copy())
        self._state = "new"  # new | running | done

    @property
    def twin(self) -> Twin:
        """The twin (all B copies) of the current episode."""
        return self._core.twin

    @property
    def noop_action(self) -> np.ndarray:
        """[B, ...] actions that change nothing."""
        return np.broadcast_to(self._core.noop_action, self.action_space.shape).copy()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None and not isinstance(seed, int | np.integer):
            raise ValueError("NetworkVectorEnv.reset takes one int seed (the copies share one twin)")
        super().reset(seed=seed)
        obs, info = self._core.reset(seed)
        self._state = "running"
        return obs, self._vector_info(info)

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        b = self.num_envs
        if self._state == "new":
            raise RuntimeError("call reset() before step()")
        if self._state == "done":  # NEXT_STEP autoreset: the action is ignored; same networks
            obs, info = self._core.reset(None, same_networks=True)
            self._state = "running"
            z = np.zeros(b, bool)
            return obs, np.zeros(b), z, z.copy(), self._vector_info(info)
        obs, reward, done, info = self._core.step(actions)
        if done:
            self._state = "done"
        return obs, reward, np.zeros(b, bool), np.full(b, done), self._vector_info(info)

    def _vector_info(self, info: dict[str, Any]) -> dict[str, Any]:
        b = self.num_envs
        out = dict(info)
        for k in ("t_s", "episode", "decision", "window_s"):
            out[k] = np.full(b, info[k])
        out["seed"] = np.full(b, info["seed"])  # the twin's seed; copies derive theirs from it
        if "actions_applied" in info:
            out["actions_applied"] = np.full(b, info["actions_applied"])
        return out
