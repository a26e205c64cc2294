"""Base-station power: EARTH load model with the TR 38.864 sleep states.

Active cell (Auer et al., "How much energy is needed to run a wireless network?", IEEE Wireless
Commun. 2011, EARTH project D2.3): P_in = P_0 + Δ_p · ρ · P_max for load ρ = PRB utilisation in
(0, 1]; defaults are the EARTH macro values for one sector with 2 transceivers
(P_0 = 2 x 130 W, Δ_p = 4.7, P_max = the cell's radiated power).

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
"""

from __future__ import annotations

from enum import IntEnum

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
    """Per-cell power for a step from the commanded state and the PRB utilisation."""

    def __init__(self, cfg: EnergyConfig, tx_power_dbm: torch.Tensor) -> None:
        self.cfg = cfg
        p_max = (
            torch.pow(10.0, (tx_power_dbm - 30.0) / 10.0)
            if cfg.max_tx_w is None
            else torch.full_like(tx_power_dbm, cfg.max_tx_w)
        )
        self.p_max_w = p_max.float()
        self.p_full_w = cfg.p0_w + cfg.delta_p * self.p_max_w
        dev = tx_power_dbm.device
        # relative power (% of full load) of each commanded state; ACTIVE handled separately
        self._rel = torch.tensor(
            [0.0, cfg.light_sleep_rel, cfg.deep_sleep_rel, 0.0], dtype=torch.float32, device=dev
        )
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
        the state's relative power when asleep; a waking cell draws idle-active power P_0."""
        cfg = self.cfg
        active = cfg.p0_w + cfg.delta_p * prb_util.clamp(0, 1) * self.p_max_w
        idle = self.p_full_w * (cfg.micro_sleep_rel / 100.0)
        active = torch.where(prb_util > 0, active, idle)
        asleep = self.p_full_w * self._rel[state] / 100.0
        p = torch.where(state == CellState.ACTIVE, active, asleep)
        return torch.where(waking, torch.full_like(p, cfg.p0_w), p)

    def wake_time_s(self, state: torch.Tensor) -> torch.Tensor:
        """Time from a sleep state back to active, s (TR 38.864; switch-on for OFF)."""
        return self._wake_s[state]

    def wake_energy_j(self, state: torch.Tensor) -> torch.Tensor:
        """Extra energy of one sleep cycle leaving ``state``, J (relative power x ms units)."""
        return self._wake_energy_rel_ms[state] * self.p_full_w / 100.0 * 1e-3
