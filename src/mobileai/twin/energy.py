"""Base-station power: EARTH load model with the TR 38.864 sleep states.

Active cell (Auer et al., "How much energy is needed to run a wireless network?", IEEE Wireless
Commun. 2011, EARTH project D2.3): P_in = P_0 + Δ_p · ρ · P_max for load ρ = PRB utilisation in
(0, 1]; defaults are the EARTH macro values for one sector with 2 transceivers
(P_0 = 2 x 130 W, Δ_p = 4.7, P_max = the cell's radiated power).

A commanded transmit-power change (``SetTxPower``) scales the cell's P_max, so raising a cell's
power to cover a neighbour costs energy under load; a ``power_degradation`` fault does not (the
radio unit still draws its power while radiating less; the fault's effect is on coverage).

Sleep states (3GPP TR 38.864 V18 clause 4, Table 4.1-1 BS power model), power relative to full
load (100):

| state        | relative power | wake-up (transition) time | extra transition energy |
|--------------|----------------|---------------------------|-------------------------|
| micro sleep  | 45             | 0 ms                      | 0                       |
| light sleep  | 20             | 6 ms                      | 100 (rel. power x ms)   |
| deep sleep   | 1              | 50 ms                     | 1000 (rel. power x ms)  |

A cell with no scheduled traffic in a step sits in micro sleep (symbol-level DTX) instead of
P_0. Light/deep sleep and switch-off are commanded (actions); a sleeping cell does not radiate,
so its UEs move to neighbours. Waking costs the transition time (no service) and energy.

Networks mixing radio-unit types (a 64T64R n78 AAU next to a 4T4R low-band RRU, TR 38.864
clause 5 carrier switch-off over a coverage layer) give each cell its own P_0, Δ_p, P_max and
relative sleep powers through the cells table (``Cells.power``, columns
:data:`mobileai.twin.layout.POWER_COLUMNS`); a cell without them uses the ``energy`` section.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import torch

from mobileai.twin.config import EnergyConfig


class CellState(IntEnum):
    """Commanded cell power state."""

    ACTIVE = 0
    LIGHT_SLEEP = 1
    DEEP_SLEEP = 2
    OFF = 3


STATE_NAMES = {s.name.lower(): s for s in CellState}


class EnergyModel:
    """Per-cell power for a step from the commanded state and the PRB utilisation.

    ``power``: optional per-cell parameters [C, 6] in the order of
    :data:`mobileai.twin.layout.POWER_COLUMNS` (``p0_w``, ``delta_p``, ``max_tx_w``,
    ``micro_sleep_rel``, ``light_sleep_rel``, ``deep_sleep_rel``); NaN entries take ``cfg``.
    """

    def __init__(
        self, cfg: EnergyConfig, tx_power_dbm: torch.Tensor, power: torch.Tensor | None = None
    ) -> None:
        self.cfg = cfg
        dev = tx_power_dbm.device
        f32 = {"dtype": torch.float32, "device": dev}
        p_max = (
            torch.pow(10.0, (tx_power_dbm - 30.0) / 10.0)
            if cfg.max_tx_w is None
            else torch.full_like(tx_power_dbm, cfg.max_tx_w)
        ).to(**f32)
        n = tx_power_dbm.shape[0]

        def col(k: int, default: torch.Tensor | float) -> torch.Tensor:
            base = default if isinstance(default, torch.Tensor) else torch.full((n,), default, **f32)
            if power is None:
                return base
            v = power[:, k].to(**f32)
            return torch.where(torch.isfinite(v), v, base)

        self.p0_w = col(0, cfg.p0_w)
        self.delta_p = col(1, cfg.delta_p)
        self.p_max_w = col(2, p_max)
        self.p_full_w = self.p0_w + self.delta_p * self.p_max_w
        self.micro_rel = col(3, cfg.micro_sleep_rel)
        # relative power (% of full load) of each commanded state per cell [C, 4]; ACTIVE handled separately
        zero = torch.zeros(n, **f32)
        self._rel = torch.stack([zero, col(4, cfg.light_sleep_rel), col(5, cfg.deep_sleep_rel), zero], 1)
        # per-step constants of power_w: micro-sleep power [C] and each state's sleep power,
        # flat [C x 4] (the same products as computing them per step)
        self._idle_w = self.p_full_w * (self.micro_rel / 100.0)
        self._asleep_w = (self.p_full_w[:, None] * self._rel / 100.0).reshape(-1)
        self._state_base = torch.arange(n, device=dev) * len(CellState)
        self._np_consts: tuple[np.ndarray, ...] | None = None  # NumPy views of _consts() (CPU)
        self._wake_s = torch.tensor(
            [0.0, cfg.light_sleep_transition_ms / 1e3, cfg.deep_sleep_transition_ms / 1e3, cfg.switch_on_s],
            dtype=torch.float32,
            device=dev,
        )
        self._wake_energy_rel_ms = torch.tensor(
            [0.0, cfg.light_sleep_transition_energy, cfg.deep_sleep_transition_energy, 0.0],
            dtype=torch.float32,
            device=dev,
        )

    def power_w(self, state: torch.Tensor, prb_util: torch.Tensor, waking: torch.Tensor) -> torch.Tensor:
        """Input power per cell [C]: load-dependent when active, micro sleep when idle,
        the state's relative power when asleep; a waking cell draws idle-active power P_0.

        On CPU in NumPy (views of the same tensors): the same float32 operations without torch's
        per-operation dispatch, which dominates for a few dozen cells."""
        cpu = state.device.type == "cpu"
        xp = np if cpu else torch
        if cpu:
            if self._np_consts is None:
                self._np_consts = tuple(a.numpy() for a in self._consts())
            p0, dp, pmax, idle, asleep_w, base = self._np_consts
            state, util, waking = state.numpy(), prb_util.numpy(), waking.numpy()
        else:
            p0, dp, pmax, idle, asleep_w, base = self._consts()
            util = prb_util
        active = xp.where(util > 0, p0 + dp * xp.clip(util, 0, 1) * pmax, idle)
        p = xp.where(state == CellState.ACTIVE, active, xp.take(asleep_w, base + state))
        out = xp.where(waking, p0, p)
        return torch.from_numpy(out) if cpu else out

    def set_tx_power(self, cells: torch.Tensor, old_dbm: torch.Tensor, new_dbm: torch.Tensor) -> None:
        """Commanded transmit-power changes of ``cells``: their load-dependent power follows the
        radiated power (EARTH: Δ_p · ρ · P_max, P_max scaled by the change in dB). P_0, the
        full-load rating and the sleep powers relative to it belong to the radio unit and stay."""
        self.p_max_w[cells] = self.p_max_w[cells] * torch.pow(10.0, (new_dbm - old_dbm) / 10.0)
        self._np_consts = None

    def _consts(self) -> tuple[torch.Tensor, ...]:
        return self.p0_w, self.delta_p, self.p_max_w, self._idle_w, self._asleep_w, self._state_base

    def wake_time_s(self, state: torch.Tensor) -> torch.Tensor:
        """Time from a sleep state back to active, s (TR 38.864; switch-on for OFF)."""
        return self._wake_s[state]

    def wake_energy_j(self, state: torch.Tensor) -> torch.Tensor:
        """Extra energy of one sleep cycle leaving ``state``, J (relative power x ms units)."""
        return self._wake_energy_rel_ms[state] * self.p_full_w / 100.0 * 1e-3
