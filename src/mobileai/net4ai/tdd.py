"""Flexible TDD UL/DL ratio for uplink-heavy AI cells, driven through the twin's typed action.

NR TDD patterns are configured per cell (TS 38.331 ``TDD-UL-DL-ConfigCommon``, slot formats of
TS 38.213 clause 11.1). The twin's default, DDDSU with a 10D:2G:2U special slot, gives the
downlink (3 + 10/14) / 5 = 0.743 of the air time. :data:`UL_HEAVY_DL_FRACTION` is DDSUU with the
same special slot: DL (2 + 10/14) / 5 = 0.543, so the uplink share grows from 0.257 to 0.457
(x 1.78) and the downlink keeps 0.73 of its air time. (Neighbouring cells with different
patterns interfere base-to-base and UE-to-UE, cross-link interference, TR 38.828; the twin does
not model it, so the cost shown here is a lower bound.)

:class:`TddController` is the "ours+tdd" network action: every ``period_s`` it computes, per
cell, the share of the cell's uplink air time that its AI UEs' traffic needs (each AI UE's
offered uplink bits over the last period / its full-cell uplink rate, summed over the cell's AI
UEs) and moves cells above ``on_share`` to the UL-heavy pattern with
:class:`~mobileai.twin.actions.SetTdd`, but only if the cell's downlink load would still fit:
its DL PRB utilisation (mean over the period) scaled to the shorter DL share,
util x 0.743 / 0.543, at most ``dl_fit``. A cell goes back (the action is reverted) when the
share falls below ``off_share`` (hysteresis) or its downlink saturates in the UL-heavy pattern
(utilisation >= ``dl_full``). A pattern is kept at least ``min_dwell_s``: TDD configurations
are semi-static (cell-wide, changed by system information), not a per-slot decision.
:class:`CellMeter` measures what it costs the other
users: the downlink bits served to each cell's non-AI UEs per step, in the run with and the run
without the action (same scenario and seed).
"""

from __future__ import annotations

import numpy as np

#: DL share of DDDSU (the twin's default) and of DDSUU, with a 10D:2G:2U special slot.
DEFAULT_DL_FRACTION = (3 + 10 / 14) / 5
UL_HEAVY_DL_FRACTION = (2 + 10 / 14) / 5


class CellMeter:
    """Per step and cell: downlink bits served to the UEs that are not AI UEs, and how many of
    them were served (the cost side of a TDD change)."""

    def __init__(self, n_cells: int, n_ues: int, ai_ue_ids: np.ndarray, steps: int, dt: float) -> None:
        self.n_cells, self.dt = n_cells, dt
        self.other = np.ones(n_ues, dtype=bool)
        self.other[np.asarray(ai_ue_ids)] = False
        self.dl_bits = np.zeros((steps, n_cells))
        self.served_ues = np.zeros((steps, n_cells))

    def __call__(self, k: int, links: dict[str, np.ndarray]) -> None:
        cell = links["serving"][self.other]
        served = links["served_dl_bps"][self.other] * self.dt
        self.dl_bits[k] = np.bincount(cell, served, minlength=self.n_cells)[: self.n_cells]
        self.served_ues[k] = np.bincount(cell, served > 0, minlength=self.n_cells)[: self.n_cells]


class TddController:
    """Moves uplink-heavy AI cells to DDSUU and back (module docstring).

    ``offered_bits`` [steps, AI UEs]: the uplink bits each AI UE offers per step (side flows and
    AI tensors), as measured from a run of the placement policy on the default pattern.
    """

    def __init__(
        self,
        twin,
        ai_ue_ids: np.ndarray,
        offered_bits: np.ndarray,
        period_s: float = 1.0,
        on_share: float = 0.3,
        off_share: float = 0.15,
        dl_fit: float = 0.8,
        dl_full: float = 0.95,
        min_dwell_s: float = 10.0,
    ) -> None:
        if not 0 <= off_share < on_share <= 1:
            raise ValueError(f"need 0 <= off_share < on_share <= 1 (got {off_share}, {on_share})")
        self.twin, self.ai = twin, np.asarray(ai_ue_ids)
        self.offered = offered_bits
        self.every = max(1, round(period_s / twin.dt))
        self.on_share, self.off_share = on_share, off_share
        self.dl_fit, self.dl_full = dl_fit, dl_full
        self.dwell = max(1, round(min_dwell_s / twin.dt))
        self.n_cells = int(twin.n_cells)
        self.changed_at = np.full(self.n_cells, -(10**9))  # step of each cell's last change
        self.dl_sum = np.zeros(self.n_cells)  # DL PRB utilisation summed over the period
        self.applied: dict[int, object] = {}  # cell -> ActionResult of its SetTdd
        self.state = np.zeros((offered_bits.shape[0], self.n_cells), dtype=bool)
        self.share = np.zeros((offered_bits.shape[0], self.n_cells))
        self.in_heavy = np.zeros(offered_bits.shape, dtype=bool)  # [steps, AI UEs]
        self.actions = 0

    def __call__(self, k: int, links: dict[str, np.ndarray]) -> None:
        from mobileai.twin.actions import SetTdd

        if k > 0:
            self.state[k] = self.state[k - 1]
            self.share[k] = self.share[k - 1]
        serving = links["serving"][self.ai]
        # DL PRB utilisation of the cells serving AI UEs (in the cell's current DL share)
        util = np.zeros(self.n_cells)
        np.maximum.at(util, serving, links["cell_dl_util"][self.ai])
        self.dl_sum += util
        if (k + 1) % self.every:
            self.in_heavy[k] = self.state[k][serving]
            return
        lo = max(0, k + 1 - self.every)
        bps = self.offered[lo : k + 1].sum(axis=0) / ((k + 1 - lo) * self.twin.dt)
        peak = np.maximum(links["peak_ul_bps"][self.ai], 1e3)
        share = np.bincount(serving, bps / peak, minlength=self.n_cells)[: self.n_cells]
        self.share[k] = share
        dl_util = self.dl_sum / (k + 1 - lo)
        self.dl_sum[:] = 0.0
        fits = dl_util * (DEFAULT_DL_FRACTION / UL_HEAVY_DL_FRACTION) <= self.dl_fit
        may = k - self.changed_at >= self.dwell
        on = np.flatnonzero((share > self.on_share) & ~self.state[k] & fits & may)
        off = [
            c for c in self.applied if may[c] and (share[c] < self.off_share or dl_util[c] >= self.dl_full)
        ]
        if len(on):
            res = self.twin.apply([SetTdd(cell=int(c), dl_fraction=UL_HEAVY_DL_FRACTION) for c in on])
            for c, r in zip(on, res, strict=True):
                if r.applied:
                    self.applied[int(c)] = r
                    self.state[k, c] = True
                    self.changed_at[c] = k
                    self.actions += 1
        for c in off:
            self.twin.revert(self.applied.pop(c))
            self.state[k, c] = False
            self.changed_at[c] = k
            self.actions += 1
        self.in_heavy[k] = self.state[k][serving]


def tdd_cost(base: CellMeter, tdd: CellMeter, state: np.ndarray, warmup: int) -> dict:
    """DL cost of the action for the non-AI UEs of the cells while they were UL-heavy, against the
    same cells and steps of the run without it."""
    m = state[warmup:]
    b, t = base.dl_bits[warmup:][m], tdd.dl_bits[warmup:][m]
    ub, ut = base.served_ues[warmup:][m], tdd.served_ues[warmup:][m]
    cells = np.flatnonzero(state.any(axis=0))
    return {
        "cells_switched": len(cells),
        "cell_seconds_ul_heavy": float(m.sum() * base.dt),
        "share_of_cell_time": float(m.mean()) if m.size else 0.0,
        "dl_gbit_non_ai_base": float(b.sum() / 1e9),
        "dl_gbit_non_ai_tdd": float(t.sum() / 1e9),
        "dl_served_change": float(t.sum() / b.sum() - 1.0) if b.sum() > 0 else None,
        "dl_mbps_per_served_ue_base": float(b.sum() / max(ub.sum(), 1) / base.dt / 1e6),
        "dl_mbps_per_served_ue_tdd": float(t.sum() / max(ut.sum(), 1) / tdd.dt / 1e6),
        "dl_fraction": {"default": DEFAULT_DL_FRACTION, "ul_heavy": UL_HEAVY_DL_FRACTION},
    }
