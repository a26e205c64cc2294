"""The dynamic network digital twin: a clock stepping every UE and cell in batch.

One step (``time.step_ms``, default 100 ms) does, for all UEs at once (struct-of-arrays tensors,
no Python loop over UEs or cells; per-step cost O(UEs x candidates)):

1. faults start/stop (``faults``); mobility moves outdoor UEs (``mobility``);
2. large-scale gains of each UE's K candidate cells are refreshed every ``radio_update_ms`` for
   UEs that moved, and all cells are re-ranked into the candidate list every
   ``candidate_refresh_s`` (a UE measures its neighbours; TR 38.901 via ``radio``);
3. RSRP per candidate, layer-3 filtered (TS 38.331 5.5.3.2); serving SINR with interference
   from the candidate cells weighted by their PRB load, plus noise and any interference fault;
4. radio link monitoring: T310 starts below Qout and stops above Qin; expiry is an RLF, the UE
   is out of service for ``reestablishment_ms`` and re-establishes on the best cell;
5. event A3 with hysteresis, offset, per-pair CIO and time-to-trigger (TS 38.331 5.5.4.4);
   handover to the best triggering neighbour, failure if the target is below Qout; ping-pong
   when a UE returns to its previous cell within the window;
6. traffic arrivals (``traffic``) with admission control, then proportional-fair scheduling per
   cell x slice, DL and UL, over the TDD split (``scheduler``, ``linkadapt``);
7. cell power from state and load (``energy``), counters for the period's KPIs (``counters``).

Actions (``actions``) change cell state, power, tilt, CIO, HO parameters, slice shares and the
TDD split; each result records what it replaced.

On CPU the per-UE work of steps 3-5 (``measurement``) and the scheduling pass of step 6
(``schedule_pass``) run as compiled loops (numba), the counters' scatter too; on other devices the
torch code runs. Both compute the same numbers to the last bit (tests/test_measurement.py,
tests/test_schedule_pass.py), so a seed's KPIs do not depend on the path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
import torch

from mobileai.errors import UserError
from mobileai.twin import handover, layers, linkadapt, measurement, schedule_pass, scheduler
from mobileai.twin.actions import (
    Action,
    ActionResult,
    SetCellState,
    SetCIO,
    SetHandoverParams,
    SetSliceShare,
    SetTdd,
    SetTilt,
    SetTxPower,
)
from mobileai.twin.config import CELL_TYPES, Scenario
from mobileai.twin.counters import PeriodCounters
from mobileai.twin.energy import STATE_NAMES, CellState, EnergyModel
from mobileai.twin.faults import FaultInjector, build_fault_events
from mobileai.twin.gather import at as _at
from mobileai.twin.gather import take as _take
from mobileai.twin.layout import Cells, build_layout, replicate
from mobileai.twin.measurement import NEG
from mobileai.twin.mobility import Mobility
from mobileai.twin.nr import THERMAL_NOISE_DBM_PER_HZ, prb_count
from mobileai.twin.radio import RadioModel, resolve_device
from mobileai.twin.traffic import SLICES, Traffic, diurnal_factor, make_modulation
from mobileai.twin.ues import UEs, drop_ues


@contextmanager
def _single_thread(device: torch.device) -> Iterator[None]:
    """torch intra-op threads set to 1 on CPU for the block, the caller's setting restored after."""
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclass
class PeriodReport:
    """KPIs of one reporting period: numpy columns [C] plus the period's start time."""

    start_s: float
    end_s: float
    columns: dict[str, np.ndarray]


class Twin:
    """A scenario brought to life. ``step()`` advances one radio step; ``run()`` a duration."""

    def __init__(self, sc: Scenario, device: str | torch.device | None = "cpu", copies: int = 1) -> None:
        """``copies`` > 1 runs that many independent instances of the scenario (copy b uses
        seed + b for its drop; shadowing, traffic and mobility draws are independent) in one
        tensor pass: copy b owns cells [b·C, (b+1)·C) and UEs [b·U, (b+1)·U)."""
        if copies < 1:
            raise UserError(f"copies must be >= 1 (got {copies})")
        self.sc = sc
        self.device = resolve_device(device)
        dev = self.device
        seed = sc.seed
        base = build_layout(sc)
        self.copies = copies
        self.cells_per_copy = base.n
        self.cells: Cells = replicate(base, copies)
        c = self.cells
        self.n_cells = c.n
        drops = [drop_ues(sc, base, torch.Generator().manual_seed(seed + b)) for b in range(copies)]
        ues = (
            drops[0]
            if copies == 1
            else UEs(**{f: torch.cat([getattr(d, f) for d in drops]) for f in UEs.__dataclass_fields__})
        )
        self.ues_per_copy = drops[0].n
        self.n_ues = ues.n
        self._ues0 = ues
        self._copy_of_ue = torch.arange(ues.n, device=dev) // self.ues_per_copy
        self.radio = RadioModel(sc, c, device=dev)
        self.mobility = Mobility(sc, c, ues, torch.Generator().manual_seed(seed * 7 + 1), dev)
        self.traffic = Traffic(sc.traffic, ues.n, torch.Generator().manual_seed(seed * 7 + 2), dev)
        self.energy = EnergyModel(sc.energy, c.tx_power_dbm.to(dev, torch.float32), c.power)
        fault_seed = seed * 7 + 3 if sc.faults.seed is None else sc.faults.seed
        events = build_fault_events(sc, base.ids, torch.Generator().manual_seed(fault_seed))
        events = [replace(e, cell=e.cell + b * base.n) for b in range(copies) for e in events]
        self.faults = FaultInjector(sorted(events, key=lambda e: (e.start_s, e.cell)), c.n, dev)

        f32 = {"device": dev, "dtype": torch.float32}
        ran = sc.ran
        self.k = min(ran.candidates, self.cells_per_copy)
        self.dt = sc.time.step_ms / 1000.0
        g_types = torch.Generator().manual_seed(seed * 7 + 5)
        shares = torch.tensor([sc.traffic.cell_type_mix.get(t, 0.0) for t in CELL_TYPES], dtype=torch.float64)
        site_type = torch.multinomial(shares, c.n_sites, replacement=True, generator=g_types)
        self.cell_type = site_type[c.site].to(dev)
        g_mod = torch.Generator().manual_seed(seed * 7 + 7)  # weekly/daily/hourly traffic modulation
        self.modulation = make_modulation(
            sc.traffic, sc.time.start_hour, self.cell_type, c.site, c.site_x, c.site_y, copies, g_mod, dev
        )
        # per-cell constants
        n_rb = [prb_count(float(b), sc.radio.subcarrier_spacing_khz) for b in c.bandwidth_mhz.tolist()]
        self.n_rb = torch.tensor(n_rb, **f32)
        self.rs_offset_db = 10.0 * torch.log10(12.0 * self.n_rb)
        bw_hz = c.bandwidth_mhz.to(**f32) * 1e6
        self.noise_ue_dbm = THERMAL_NOISE_DBM_PER_HZ + 10 * torch.log10(bw_hz) + sc.radio.ue_noise_figure_db
        self.noise_bs_prb_dbm = (
            THERMAL_NOISE_DBM_PER_HZ
            + 10 * math.log10(12 * sc.radio.subcarrier_spacing_khz * 1e3)
            + ran.bs_noise_figure_db
        )
        self.carrier = c.carrier_ghz.to(**f32)
        # absolute priority per cell's carrier (TS 38.304 5.2.4.1); None: A3 only
        self._prio = layers.cell_priorities(c.carrier_ghz, ran.layer_priority)
        self._episode_g = torch.Generator().manual_seed(seed * 7 + 6)  # re-drops (new_episode)
        self._lists_all = self.k == self.cells_per_copy  # every cell is a candidate
        self._gains_tilt = -1  # radio.tilt_version the candidate gains were computed with
        self._reset_dynamic()

    def _reset_dynamic(self) -> None:
        """Every state that evolves (cells' configuration, UEs, counters, clock, caches) at t = 0."""
        sc, ran, c, dev = self.sc, self.sc.ran, self.cells, self.device
        f32 = {"device": dev, "dtype": torch.float32}
        # mutable cell configuration (the action surface)
        self.tx_power_dbm = c.tx_power_dbm.to(**f32).clone()
        self.tilt_deg = c.downtilt_deg.to(**f32).clone()
        self.state = torch.zeros(c.n, dtype=torch.long, device=dev)
        self.wake_until = torch.zeros(c.n, **f32)
        # CIO per (serving, neighbour) pair, one C x C block per copy
        self.cio_db = torch.zeros(self.copies, self.cells_per_copy, self.cells_per_copy, **f32)
        self.hysteresis_db = torch.full((c.n,), ran.hysteresis_db, **f32)
        self.ttt_s = torch.full((c.n,), ran.time_to_trigger_ms / 1000.0, **f32)
        self.slice_share = torch.ones(c.n, len(SLICES), **f32)
        self.tdd_dl = torch.full((c.n,), ran.tdd_dl_fraction, **f32)
        # UE state
        u, k = self.n_ues, self.k
        self.serving = torch.zeros(u, dtype=torch.long, device=dev)
        self.cand = torch.zeros(u, k, dtype=torch.long, device=dev)
        self.cand_cg = torch.zeros(u, k, **f32)
        self.l3 = torch.full((u, k), NEG, **f32)
        self.a3_timer = torch.full((u, k), -1.0, **f32)  # < 0: A3 entering condition not met
        self.t310 = torch.full((u,), -1.0, **f32)  # < 0: not running
        self.oos = torch.zeros(u, dtype=torch.bool, device=dev)  # out of service after RLF / HO failure
        self.out_until = torch.zeros(u, **f32)  # no service before this time (RLF / HO)
        self.prev_cell = torch.full((u,), -1, dtype=torch.long, device=dev)
        self.last_ho_t = torch.full((u,), -1e9, **f32)
        self.avg_dl = torch.full((u,), 1e5, **f32)
        self.avg_ul = torch.full((u,), 1e5, **f32)
        self.sinr_db = torch.zeros(u, **f32)
        self.dl_util = torch.zeros(c.n, **f32)
        self.ul_util = torch.zeros(c.n, **f32)
        self._moved = torch.zeros(u, dtype=torch.bool, device=dev)
        self._x_at_update = self.mobility.x.clone()
        self._y_at_update = self.mobility.y.clone()
        self._gain_dirty = False
        self.t = 0.0
        self.steps = 0
        self.counters = PeriodCounters(c.n, u, dev)
        self.reports: list[PeriodReport] = []
        self._closed: dict[str, torch.Tensor] = {}
        self._closed_seconds = 0.0
        self._window_base: dict[str, torch.Tensor] = {}
        self._window_seconds = 0.0
        self.action_log: list[ActionResult] = []
        self._period_start = 0.0
        self._steps_per_period = round(sc.time.report_period_s / self.dt)
        self._radio_every = max(1, round(sc.time.radio_update_ms / sc.time.step_ms))
        self._refresh_every = max(1, round(sc.time.candidate_refresh_s / self.dt))
        self._cell_index = {cid: i for i, cid in enumerate(c.ids)}
        # caches (keys bump when what they depend on changes)
        self._rows = torch.arange(u, device=dev)
        self._rows_k = self._rows * self.k  # row offsets into a flattened [U, K] tensor
        self._single_carrier = bool((self.carrier == self.carrier[0]).all())
        self._compiled_events = self.device.type == "cpu" and self._single_carrier
        self._meas_every = max(1, round(ran.measurement_period_ms / sc.time.step_ms))
        # L3 filter a = 1/2^(k/4) assumes one sample per measurement period; with a longer
        # sampling interval (coarse steps) it is adapted so its time constant is preserved
        # (TS 38.331 5.5.3.2)
        a = 1.0 / 2 ** (ran.l3_filter_k / 4.0)
        ratio = self._meas_every * sc.time.step_ms / ran.measurement_period_ms
        self._l3_a = 1.0 - (1.0 - a) ** max(ratio, 1.0)
        self._qout_lin = 10 ** (ran.qout_sinr_db / 10)
        self._qin_lin = 10 ** (ran.qin_sinr_db / 10)
        self._t310_s = ran.t310_ms / 1000.0
        self._cio_active = False
        self._slice_cap = self.slice_share.reshape(-1).clone()
        self._eff = None
        self._noise_rise = torch.zeros(c.n, **f32)
        self._ul_iot_db = torch.zeros(c.n, **f32)
        self._gbr_need = torch.zeros((2, c.n), **f32)  # PRB share the GBR flows need, DL and UL
        self._n_ul = torch.zeros(c.n + 1, **f32)  # UL-active UEs per cell in the last pass
        self._capped = False
        self._state_version = 0
        self._avail_cache_key = None
        self._avail: torch.Tensor | None = None
        self._avail_key = 0
        self._full_refresh = False
        self._commanded_off = torch.zeros(c.n, dtype=torch.bool, device=dev)
        self._ptx_key = 0
        self._rx_key = None
        self._rx_rows: torch.Tensor | None = None  # UEs whose candidate gains changed
        self._on_fault_change(self.faults.effects(0.0))
        self._refresh_candidates(initial=True)

    def new_episode(self) -> None:
        """Start again at t = 0 on the same network(s): layout, shadowing maps, cell types and
        the fault schedule stay; the UEs are dropped anew (from the twin's own random stream, so
        a run stays reproducible from its seed, copy b in its own cells), mobility and traffic
        start afresh, and every cell and UE state, counter, report and action log is reset. With
        many copies this costs a fraction of building a new twin (no per-copy drop loop, no new
        radio model): what an RL episode reset needs."""
        with _single_thread(self.device):
            sc, g = self.sc, self._episode_g
            ues = drop_ues(sc, self.cells, g, n=self.n_ues)
            self._ues0 = ues
            self.mobility = Mobility(sc, self.cells, ues, self.mobility.g, self.device)
            self.traffic = Traffic(sc.traffic, ues.n, self.traffic.g, self.device)
            if self.modulation is not None:
                self.modulation.restart()
            self._reset_dynamic()

    # ================================================================== radio
    def _ues_now(self, idx: torch.Tensor | None = None) -> UEs:
        u = replace(self._ues0, x=self.mobility.x.double().cpu(), y=self.mobility.y.double().cpu())
        if idx is None:
            return u
        i = idx.cpu()
        return UEs(**{f: getattr(u, f)[i] for f in u.__dataclass_fields__})

    def _available(self) -> torch.Tensor:
        """Cells radiating now: active (awake), not in outage."""
        return self._avail_now(self.faults.effects(self.t))

    def best_server(self, idx: torch.Tensor) -> torch.Tensor:
        """Strongest radiating cell by RSRP over all cells, for UEs ``idx`` at their positions
        now (the best-server map a drive test would draw; independent of the candidate lists,
        filters and handover state)."""
        return self.radio.links(self._ues_now(idx), cell_active=self._available())["rsrp_dbm"].argmax(1)

    def _refresh_candidates(self, initial: bool = False, idx: torch.Tensor | None = None) -> None:
        """Re-rank all cells for UEs ``idx`` (default all): a UE's neighbour measurements.
        The serving cell stays listed; filtered values carry over for cells that stay. With
        copies, each UE ranks only its own copy's cells, all copies in one call."""
        rows = torch.arange(self.n_ues, device=self.device) if idx is None else idx
        if rows.numel() == 0:
            return
        if self._lists_all and not initial:
            # Every cell of the copy is already a candidate (K = C): re-ranking would change no
            # measurement. The gains follow the radio-update rule (UEs that moved more than
            # time.radio_update_m; all UEs after a tilt change), availability and power reach
            # the received-power caches.
            self._gain_dirty |= self.radio.tilt_version != self._gains_tilt
            if self._gain_dirty:
                self._update_candidate_gains()
            self._moved[rows] = False
            self._rx_key = None
            return
        if idx is None:
            self._gains_tilt = self.radio.tilt_version
        avail = self._available()
        n_c = self.cells_per_copy
        ues = self._ues_now(None if idx is None else rows)
        if self.copies == 1:
            c0 = torch.zeros_like(rows)
            cg_all = self.radio.links(ues)["coupling_gain_db"]
            own = torch.arange(n_c, device=self.device)[None, :]
        else:
            c0 = self._copy_of_ue[rows] * n_c
            own = c0[:, None] + torch.arange(n_c, device=self.device)[None, :]
            cg_all = self.radio.links(ues, cells=own)["coupling_gain_db"]
        ptx = self.tx_power_dbm + self._eff.tx_offset_db
        rsrp = (ptx - self.rs_offset_db)[own] + cg_all
        rsrp = torch.where(avail[own], rsrp, torch.full_like(rsrp, NEG))
        top_local = torch.topk(rsrp, self.k, dim=1).indices
        c0 = c0[:, None] if self.copies > 1 else 0
        if initial:
            self.serving[rows] = (top_local + c0)[:, 0]
        else:
            srv = self.serving[rows] - (c0[:, 0] if self.copies > 1 else 0)
            listed = (top_local == srv[:, None]).any(1)
            top_local[:, -1] = torch.where(listed, top_local[:, -1], srv)
        cg_top = torch.gather(cg_all, 1, top_local)
        new_rsrp = torch.gather(rsrp, 1, top_local)
        top = top_local + c0
        old_cand, old_l3, old_timer = self.cand[rows], self.l3[rows], self.a3_timer[rows]
        self.cand[rows] = top
        self.cand_cg[rows] = cg_top
        match = top[:, :, None] == old_cand[:, None, :]
        has = match.any(2)
        src = match.to(torch.uint8).argmax(2)
        carried = old_l3.gather(1, src)
        self.l3[rows] = torch.where(has & (carried > NEG / 2), carried, new_rsrp)
        self.a3_timer[rows] = torch.where(has, old_timer.gather(1, src), torch.full_like(new_rsrp, -1.0))
        self._moved[rows] = False
        self._x_at_update[rows] = self.mobility.x[rows]
        self._y_at_update[rows] = self.mobility.y[rows]
        self._rx_key = None

    def _offload_unavailable(self, avail: torch.Tensor) -> None:
        """UEs of a cell that was put to sleep or switched off are handed over first (the gNB
        moves its connected UEs before it stops radiating)."""
        lost_cell = ~avail[self.serving] & self._commanded_off[self.serving]
        if not bool(lost_cell.any()):
            return
        rows = self._rows
        score = torch.where(self._cand_ok, self.l3, torch.full_like(self.l3, 2 * NEG))
        slot = score.argmax(1)
        target = self.cand[rows, slot]
        move = lost_cell & self._cand_ok[rows, slot]
        none = torch.full_like(self.serving, self.n_cells)
        self.counters.add_ue_columns(torch.where(move, self.serving, none), {"ho_req": move, "ho_succ": move})
        self.prev_cell = torch.where(move, torch.full_like(self.prev_cell, -1), self.prev_cell)
        self.serving = torch.where(move, target, self.serving)
        self.out_until = torch.where(
            move,
            torch.full_like(self.out_until, self.t + self.sc.ran.ho_interruption_ms / 1e3),
            self.out_until,
        )
        self._srv_slot = (self.cand == self.serving[:, None]).to(torch.uint8).argmax(1)

    def _update_candidate_gains(self) -> torch.Tensor | None:
        """Large-scale gains of the listed cells for UEs that moved more than
        ``time.radio_update_m`` since their last update (all UEs after a tilt change); returns
        those UEs (None: none)."""
        if self._gain_dirty:
            idx = torch.arange(self.n_ues, device=self.device)
            self._gains_tilt = self.radio.tilt_version
        else:
            far = torch.hypot(self.mobility.x - self._x_at_update, self.mobility.y - self._y_at_update)
            idx = (far > self.sc.time.radio_update_m).nonzero().squeeze(1)
        self._gain_dirty = False
        if idx.numel() == 0:
            return None
        res = self.radio.links(self._ues_now(idx), cells=self.cand[idx])
        self.cand_cg[idx] = res["coupling_gain_db"]
        self._x_at_update[idx] = self.mobility.x[idx]
        self._y_at_update[idx] = self.mobility.y[idx]
        return idx

    # ================================================================== step
    def _refresh_rx_rows(self, rows: torch.Tensor, avail: torch.Tensor, ptx: torch.Tensor) -> None:
        """Update the received-power caches of UEs ``rows`` after their candidate gains changed
        (candidates, serving cell, power and availability unchanged): per UE the same arithmetic
        as :meth:`_refresh_rx`, for the few UEs a radio update moves."""
        cand = self.cand.index_select(0, rows)
        cg = self.cand_cg.index_select(0, rows)
        cand_ok = _take(avail, cand)
        rx_dbm = torch.where(cand_ok, _take(ptx, cand) + cg, torch.full_like(cg, NEG))
        self._cand_ok = self._cand_ok.index_copy(0, rows, cand_ok)
        self._rsrp = self._rsrp.index_copy(0, rows, rx_dbm - _take(self.rs_offset_db, cand))
        rx_mw = torch.where(cand_ok, torch.pow(10.0, rx_dbm / 10.0), torch.zeros_like(rx_dbm))
        self._rx_all_mw = self._rx_all_mw.index_copy(0, rows, rx_mw)
        if self._single_carrier:
            self._rx_mw = self._rx_all_mw
        else:
            srv = self.serving.index_select(0, rows)
            rx_mw = rx_mw * (_take(self.carrier, cand) == _take(self.carrier, srv)[:, None])
            self._rx_mw = self._rx_mw.index_copy(0, rows, rx_mw)
        self._rx_sum = self._rx_sum.index_copy(0, rows, rx_mw.sum(1))

    def _refresh_rx(self, avail: torch.Tensor, ptx: torch.Tensor) -> None:
        """Cache received power per candidate (dBm and mW) after gains, power or availability change."""
        cand_ok = avail[self.cand]
        rx_dbm = torch.where(cand_ok, ptx[self.cand] + self.cand_cg, torch.full_like(self.cand_cg, NEG))
        self._cand_ok = cand_ok
        self._rsrp = rx_dbm - self.rs_offset_db[self.cand]
        rx_mw = torch.where(cand_ok, torch.pow(10.0, rx_dbm / 10.0), torch.zeros_like(rx_dbm))
        self._rx_all_mw = rx_mw  # all carriers: a target's control SINR uses its own carrier
        if not self._single_carrier:
            rx_mw = rx_mw * (self.carrier[self.cand] == self.carrier[self.serving][:, None])
        self._rx_mw = rx_mw
        self._rx_sum = rx_mw.sum(1)
        self._noise_mw = torch.pow(10.0, (self.noise_ue_dbm[self.cand] + self._noise_rise[self.cand]) / 10.0)
        self._rx_key = (self._avail_key, self._ptx_key)
        self._srv_slot = (self.cand == self.serving[:, None]).to(torch.uint8).argmax(1)

    def step(self) -> None:
        """Advance the network by one radio step.

        On CPU the step runs single-threaded: its tensors are small (UEs x candidates), and
        intra-op threads only add synchronisation stalls (measured: 5-10x slower with 2 threads
        on a busy 2-core machine). The caller's thread setting is restored afterwards.
        """
        with _single_thread(self.device):
            self._step()

    def _step(self) -> None:
        sc, ran, dt = self.sc, self.sc.ran, self.dt
        t = self.t
        eff = self.faults.effects(t)
        if eff is not self._eff:
            self._on_fault_change(eff)
        # 1. mobility
        if self.mobility.cfg.model != "static":
            self.mobility.step(dt)
            self._moved |= self.mobility.moving
        # 2. radio: re-rank all cells now and then, refresh moving UEs' gains more often
        avail = self._avail_now(eff)
        if self._full_refresh:
            self._full_refresh = False
            self._refresh_candidates()
        elif self.steps % self._refresh_every == 0 and self.steps > 0:
            self._refresh_candidates(idx=self._moved.nonzero().squeeze(1))
        elif self.steps % self._radio_every == 0 or self._gain_dirty:
            self._rx_rows = self._update_candidate_gains()
        if self._rx_key != (self._avail_key, self._ptx_key):
            self._refresh_rx(avail, self.tx_power_dbm + eff.tx_offset_db)
            self._offload_unavailable(avail)
        elif self._rx_rows is not None:
            self._refresh_rx_rows(self._rx_rows, avail, self.tx_power_dbm + eff.tx_offset_db)
            self._offload_unavailable(avail)
        self._rx_rows = None
        cand_ok, rsrp = self._cand_ok, self._rsrp
        if bool(self.oos.any()):
            self._reestablish(t)
        m = measurement.measure(
            l3=self.l3,
            rsrp=rsrp,
            rx_mw=self._rx_mw,
            rx_sum=self._rx_sum,
            noise_mw=self._noise_mw,
            cand_ok=cand_ok,
            cand=self.cand,
            srv_slot=self._srv_slot,
            serving=self.serving,
            dl_util=self.dl_util,
            t310=self.t310,
            a3_timer=self.a3_timer,
            out_until=self.out_until,
            oos=self.oos,
            hysteresis_db=self.hysteresis_db,
            ttt_s=self.ttt_s,
            cio_db=self.cio_db if self._cio_active else None,
            copy_of_ue=self._copy_of_ue,
            prio=self._prio,
            layer_cfg=ran.layer_priority,
            p=self._thresholds(t),
        )
        self.l3, self.t310, self.a3_timer = m.l3, m.t310, m.a3_timer
        self.sinr_db = srv_sinr = m.sinr_db
        srv_slot, fire, do_ho, rlf = self._srv_slot, m.fire, m.do_ho, m.rlf
        if bool((do_ho | rlf).any()):
            self._mobility_events(do_ho, fire, rlf, t)
            srv_slot = self._srv_slot
        # 6. traffic and scheduling
        srv = self.serving
        connected = (self.out_until <= t) & ~self.oos & _take(avail, srv)
        hour = (sc.time.start_hour + t / 3600.0) % 24.0
        # per cell, then per UE (elementwise: the same values as per UE)
        cell_act = diurnal_factor(self.cell_type, hour) * (sc.traffic.load_scale * eff.surge)
        if self.modulation is not None:
            cell_act = cell_act * self.modulation.factor(t)
        act = _take(cell_act, srv)
        tstep = self.traffic.step(dt, act, lambda arrive: connected & self._admission(srv, srv_sinr, arrive))
        ok = connected & ~_take(eff.sleeping, srv)
        served_dl, served_ul, active_dl, active_ul = self._schedule(ok, srv, srv_sinr, srv_slot, eff, dt)
        self._served = (ok, served_dl, served_ul)
        # 7. energy and counters
        waking = (self.state == CellState.ACTIVE) & (self.wake_until > t)
        power = self.energy.power_w(self.state, self.dl_util, waking)
        cnt = self.counters
        tr = self.traffic
        cnt.add_step(
            srv=srv,
            connected=connected,
            ok=ok,
            sinr_db=srv_sinr,
            new_sessions=tstep.new_sessions,
            blocked=tstep.blocked,
            served_dl=served_dl,
            served_ul=served_ul,
            active_dl=active_dl,
            active_ul=active_ul,
            dl_buffer=tr.dl_buffer_bits,
            ul_buffer=tr.ul_buffer_bits,
            avg_dl=self.avg_dl,
            dt=dt,
        )
        cnt.add_cells("energy_j", power * dt)
        cnt.add_cells("sleep_s", (self.state != CellState.ACTIVE).float() * dt)
        cnt.add_cells("prb_dl", self.dl_util)
        cnt.add_cells("prb_ul", self.ul_util)
        cnt.steps += 1
        cnt.seconds += dt
        self.steps += 1
        self.t = self.steps * dt
        if self.steps % self._steps_per_period == 0:
            self._close_period()

    def _thresholds(self, t: float) -> measurement.Thresholds:
        ran = self.sc.ran
        return measurement.Thresholds(
            self._l3_a, self._qout_lin, self._qin_lin, self._t310_s, ran.a3_offset_db, self.dt, t
        )

    def _avail_now(self, eff) -> torch.Tensor:
        """Cells radiating now (cached; the key changes with state, wake-ups and outages)."""
        key = (self._state_version, bool((self.wake_until > self.t).any()), id(eff))
        if key != self._avail_cache_key:
            self._avail_cache_key = key
            avail = (self.state == CellState.ACTIVE) & (self.wake_until <= self.t) & ~eff.outage
            if self._avail is not None and not torch.equal(avail, self._avail):
                self._full_refresh = True  # cells came or went: everybody re-ranks
            self._avail = avail
            self._avail_key += 1
        return self._avail

    def _on_fault_change(self, eff) -> None:
        """A fault started or ended: re-apply tilt errors, power offsets, noise rises."""
        prev = self._eff
        self._eff = eff
        if prev is None or not torch.equal(eff.tilt_offset_deg, prev.tilt_offset_deg):
            self.radio.set_tilt(self.tilt_deg + eff.tilt_offset_deg)
            self._full_refresh = prev is not None
        self._noise_rise = eff.noise_rise_db
        self._capped = bool(torch.isfinite(eff.cap_bps).any())
        self._ptx_key += 1

    def _mobility_events(self, do_ho: torch.Tensor, fire: torch.Tensor, rlf: torch.Tensor, t: float) -> None:
        """Execute handovers (or their failures) and radio link failures. Only the few UEs with
        an event are gathered and written back: per UE the same arithmetic as over all UEs.
        On the single-carrier CPU twin the compiled pass of :mod:`~mobileai.twin.handover`."""
        if self._compiled_events:
            self._mobility_events_compiled(do_ho, fire, rlf, t)
            return
        ran = self.sc.ran
        ev = (do_ho | rlf).nonzero().squeeze(1)  # ascending: counters add in UE order
        do_ho, fire, rlf = do_ho.index_select(0, ev), fire.index_select(0, ev), rlf.index_select(0, ev)
        cand = self.cand.index_select(0, ev)
        src = self.serving.index_select(0, ev)
        l3 = self.l3.index_select(0, ev)
        if self._prio is not None:  # the highest-priority layer among the triggering cells first
            fire = layers.preferred(fire, _take(self._prio, cand))
        # best triggering neighbour by filtered RSRP; its control SINR decides success
        tgt_slot = torch.where(fire, l3, torch.full_like(l3, 2 * NEG)).argmax(1)
        target = cand.gather(1, tgt_slot[:, None]).squeeze(1)
        tgt_lin = self._ctrl_sinr_at(tgt_slot, ev)
        fail = do_ho & (tgt_lin < self._qout_lin)
        ok = do_ho & ~fail
        prev_cell = self.prev_cell.index_select(0, ev)
        last_ho_t = self.last_ho_t.index_select(0, ev)
        pp = ok & (target == prev_cell) & (t - last_ho_t <= ran.ping_pong_window_s)
        lost = rlf | fail
        was_in_session = self.traffic.in_session.index_select(0, ev) & lost
        self.counters.add_ue_columns(
            src,
            {
                "ho_req": do_ho,
                "ho_succ": ok,
                "ho_fail": fail,
                "ping_pong": pp,
                "rlf": rlf,
                "sessions_dropped": was_in_session,
            },
        )
        # handover execution: the user plane pauses for the interruption time
        prev_cell = torch.where(ok, src, prev_cell)
        last_ho_t = torch.where(ok, torch.full_like(last_ho_t, t), last_ho_t)
        serving = torch.where(ok, target, src)
        out_until = self.out_until.index_select(0, ev)
        out_until = torch.where(ok, torch.full_like(out_until, t + ran.ho_interruption_ms / 1e3), out_until)
        # RLF and HO failure: out of service, re-establish on the strongest available cell
        if bool(lost.any()):
            lost_ues = ev[lost]
            lost_mask = torch.zeros_like(self.oos).index_fill_(0, lost_ues, True)
            self.traffic.drop(lost_mask)
            self.oos |= lost_mask
            out_until = torch.where(
                lost, torch.full_like(out_until, t + ran.reestablishment_ms / 1e3), out_until
            )
            self.t310 = self.t310.index_fill(0, lost_ues, -1.0)
            prev_cell = torch.where(lost, torch.full_like(prev_cell, -1), prev_cell)
        self.prev_cell = self.prev_cell.index_copy(0, ev, prev_cell)
        self.last_ho_t = self.last_ho_t.index_copy(0, ev, last_ho_t)
        self.serving = self.serving.index_copy(0, ev, serving)
        self.out_until = self.out_until.index_copy(0, ev, out_until)
        self.a3_timer = self.a3_timer.index_fill(0, ev, -1.0)  # every listed UE: HO or lost
        slot = (cand == serving[:, None]).to(torch.uint8).argmax(1)
        self._srv_slot = self._srv_slot.index_copy(0, ev, slot)
        if not self._single_carrier:
            self._rx_key = None  # co-channel set follows the serving carrier

    def _event_state(self) -> handover.UeState:
        """NumPy views of the per-UE connection state the compiled events update in place (the
        reference replaces those tensors with updated copies; nothing holds the old ones)."""
        views = (
            self.serving, self.prev_cell, self.last_ho_t, self.out_until, self.a3_timer, self.t310, self.oos,
            self._srv_slot,
        )  # fmt: skip
        return handover.UeState(*(x.numpy() for x in views))

    def _event_radio(self) -> handover.Radio:
        radio = (self.cand, self._cand_ok, self.l3, self._rx_mw, self._rx_sum, self._noise_mw)
        return handover.Radio(*(x.numpy() for x in radio))

    def _mobility_events_compiled(
        self, do_ho: torch.Tensor, fire: torch.Tensor, rlf: torch.Tensor, t: float
    ) -> None:
        """:meth:`_mobility_events` in one compiled pass: the same numbers."""
        ran = self.sc.ran
        do_ho_np, rlf_np = do_ho.numpy(), rlf.numpy()
        ev = np.flatnonzero(do_ho_np | rlf_np)
        src, cols, lost = handover.execute(
            ev, do_ho_np, fire.numpy(), rlf_np, self._event_radio(), self._event_state(),
            self.traffic.in_session.numpy(), None if self._prio is None else self._prio.numpy(),
            qout_lin=self._qout_lin, t=t, ping_pong_window_s=ran.ping_pong_window_s,
            ho_interruption_ms=ran.ho_interruption_ms, reestablishment_ms=ran.reestablishment_ms,
        )  # fmt: skip
        self.counters.add_ue_weights(src, handover.HANDOVER_COLUMNS, cols)
        if lost.size > 0:
            mask = torch.zeros_like(self.oos)
            mask.numpy()[lost] = True
            self.traffic.drop(mask)

    def _ctrl_sinr_at(self, slot: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Linear control SINR of candidate ``slot`` of UEs ``rows`` (default all) against the
        cells on that candidate's carrier (an inter-frequency target is not interfered by the
        serving carrier)."""
        if rows is None:
            rows = self._rows
        flat = rows * self.k + slot
        if self._single_carrier:
            rx, total = _at(self._rx_mw, flat), self._rx_sum.index_select(0, rows)
        else:
            cand = self.cand.index_select(0, rows)
            same = _take(self.carrier, cand) == _take(self.carrier, _at(self.cand, flat))[:, None]
            rx = _at(self._rx_all_mw, flat)
            total = (self._rx_all_mw.index_select(0, rows) * same).sum(1)
        return rx / (total - rx + _at(self._noise_mw, flat))

    def _reestablish(self, t: float) -> None:
        """Out-of-service UEs retry RRC re-establishment (TS 38.331 5.3.7) every
        ``ran.reestablishment_ms`` on their strongest candidate; it succeeds when that cell's
        control SINR is above Qin, otherwise the UE stays out of coverage (one RLF, not a loop).
        Only the UEs due are gathered and written back (compiled on the single-carrier CPU twin)."""
        if self._compiled_events:
            self._reestablish_compiled(t)
            return
        due = self.oos & (self.out_until <= t)
        if not bool(due.any()):
            return
        idx = due.nonzero().squeeze(1)
        cand_ok = self._cand_ok.index_select(0, idx)
        l3 = self.l3.index_select(0, idx)
        score = torch.where(cand_ok, l3, torch.full_like(l3, 2 * NEG))
        slot = score.argmax(1)
        ctrl = self._ctrl_sinr_at(slot, idx)
        ok = (ctrl > self._qin_lin) & cand_ok.gather(1, slot[:, None]).squeeze(1)
        cand = self.cand.index_select(0, idx)
        best = cand.gather(1, slot[:, None]).squeeze(1)
        serving = torch.where(ok, best, self.serving.index_select(0, idx))
        self.serving = self.serving.index_copy(0, idx, serving)
        won = idx[ok]
        self.oos.index_fill_(0, won, False)
        out_until = self.out_until.index_select(0, idx)
        out_until = torch.where(
            ok, out_until, torch.full_like(out_until, t + self.sc.ran.reestablishment_ms / 1e3)
        )
        self.out_until = self.out_until.index_copy(0, idx, out_until)
        self.counters.add_ue_columns(
            torch.where(ok, best, torch.full_like(best, self.n_cells)), {"reestab": ok}
        )
        self.a3_timer = self.a3_timer.index_fill(0, won, -1.0)
        slot = (cand == serving[:, None]).to(torch.uint8).argmax(1)
        self._srv_slot = self._srv_slot.index_copy(0, idx, slot)

    def _reestablish_compiled(self, t: float) -> None:
        """:meth:`_reestablish` in one compiled pass: the same numbers."""
        n_due = handover.due(self.oos.numpy(), self.out_until.numpy(), t)
        if n_due == 0:
            return
        cell, won = handover.reestablish(
            self._event_radio(), self._event_state(), n_due, qin_lin=self._qin_lin, t=t,
            reestablishment_ms=self.sc.ran.reestablishment_ms, n_cells=self.n_cells,
        )  # fmt: skip
        self.counters.add_ue_weights(cell, ("reestab",), won[None, :])

    def _admission(self, srv: torch.Tensor, srv_sinr: torch.Tensor, arrive: torch.Tensor) -> torch.Tensor:
        """Radio admission control (an RRM function of TS 38.300, as TS 36.300 for LTE): which of
        the sessions arriving now (``arrive`` [U]) may start.

        A GBR flow (GBR or delay-critical GBR 5QI, TS 23.501 Table 5.7.4-1) is admitted when its
        own PRB need plus what its cell's GBR flows need now stays within
        ``ran.admission_gbr_prb_limit`` in DL and in UL. A flow's need is its guaranteed bit
        rate over its full-band rate (the cell's flows: as measured by the last scheduling pass;
        the new one: at its current SINR, UL at the power control of that pass). A running flow
        whose radio got so bad that it alone needs more than the limit is no longer guaranteed
        (TS 23.501 5.7.2.4 notification control) and reserves nothing. Non-GBR
        sessions share the PRBs under PF and are only limited by ``ran.admission_max_sessions``
        UEs in session per cell, when set; a cell busy with one bulk download still admits."""
        ran = self.sc.ran
        tr = self.traffic
        admit = torch.ones_like(arrive)
        if arrive.device.type == "cpu":
            idx = torch.from_numpy(np.flatnonzero(arrive.numpy() & tr.gbr.numpy()))
        else:
            idx = (arrive & tr.gbr).nonzero().squeeze(1)
        if idx.numel() > 0:
            cell = srv.index_select(0, idx)
            sinr_ul = self._ul_sinr_db(idx, cell, self._srv_slot, self._n_ul, self._ul_iot_db)
            own = self._gbr_flow_need(idx, cell, srv_sinr.index_select(0, idx), sinr_ul)
            fits = ((own + self._gbr_need[:, cell]) <= ran.admission_gbr_prb_limit).all(0)
            admit.index_copy_(0, idx, fits)
        if ran.admission_max_sessions is not None:
            n = torch.zeros(self.n_cells, device=self.device).index_add_(0, srv, tr.in_session.float())
            admit = admit & (_take(n, srv) < ran.admission_max_sessions)
        return admit

    def _gbr_flow_need(
        self, ue: torch.Tensor, cell: torch.Tensor, sinr_dl: torch.Tensor, sinr_ul: torch.Tensor
    ) -> torch.Tensor:
        """Share of its cell's DL and UL PRBs [2, n] each GBR flow of UEs ``ue`` needs for its
        guaranteed bit rate at the given SINRs (above 1: not even all of them suffice)."""
        rate = torch.stack(
            self._peak_rates(sinr_dl, sinr_ul, _take(self.n_rb, cell), _take(self.tdd_dl, cell))
        )
        gfbr = self.traffic.gfbr_bps.view(2, -1).index_select(1, ue)
        return gfbr / rate.clamp(min=1.0)

    def _peak_rates(
        self, sinr_dl: torch.Tensor, sinr_ul: torch.Tensor, n_rb: torch.Tensor, tdd_dl: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Full-band (DL, UL) rates, bit/s, at the given SINRs with ``n_rb`` PRBs and the TDD DL
        share ``tdd_dl`` (TS 38.214 link adaptation; DL up to ``ran.max_layers``, UL one layer)."""
        ran, scs = self.sc.ran, self.sc.radio.subcarrier_spacing_khz
        return (
            linkadapt.peak_rate_bps(sinr_dl, n_rb, scs, ran.control_overhead, ran.max_layers, tdd_dl),
            linkadapt.peak_rate_bps(sinr_ul, n_rb, scs, ran.control_overhead, 1, 1.0 - tdd_dl),
        )

    def _ul_sinr_db(
        self,
        ue: torch.Tensor | None,
        cell: torch.Tensor,
        srv_slot: torch.Tensor,
        n_ul: torch.Tensor,
        iot_db: torch.Tensor,
    ) -> torch.Tensor:
        """UL SINR per PRB (dB) of UEs ``ue`` (None: all) served by ``cell``: open-loop power
        control per PRB (TS 38.213 7.1.1) over the UE's expected share of its cell's PRBs
        (``n_ul`` [C] UL-active UEs per cell), path loss from the serving candidate's coupling
        gain; ``iot_db`` [C] is the cell's noise rise, 1/(1 - 0.7 load) from its UL load plus
        any interference fault."""
        ran = self.sc.ran
        if ue is None:
            pl = -_at(self.cand_cg, self._rows_k + srv_slot)
        else:
            pl = -_at(self.cand_cg, self._rows_k.index_select(0, ue) + srv_slot.index_select(0, ue))
        share_db = _take(self._ul_share_db(n_ul), cell)
        p_prb = torch.minimum(ran.ul_p0_dbm + ran.ul_alpha * pl, ran.ue_tx_power_dbm - share_db)
        return p_prb - pl - self.noise_bs_prb_dbm - _take(iot_db, cell)

    def _ul_share_db(self, n_ul: torch.Tensor) -> torch.Tensor:
        """Each cell's PRBs per UL-active UE, dB [C] (``n_ul`` [C + 1]: the last entry counts the
        UEs without a cell): the bandwidth a UE's open-loop power control expects."""
        return 10 * torch.log10(self.n_rb / n_ul[: self.n_cells].clamp(min=1))

    def _schedule(
        self,
        ok: torch.Tensor,
        srv: torch.Tensor,
        sinr_db: torch.Tensor,
        srv_slot: torch.Tensor,
        eff,
        dt: float,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """PF scheduling per cell x slice, DL and UL; returns served bits and who had data.

        Only UEs in service with data buffered can be served (the rest get 0 bits), so link
        adaptation and water-filling run on those few (typically 5 % of the UEs at the busy
        hour); ``ue_links()`` computes the peak rates of all UEs when asked."""
        tr = self.traffic
        n_rb = _take(self.n_rb, srv)
        tdd = _take(self.tdd_dl, srv)
        active_dl = tr.dl_buffer_bits > 0
        # UL: each UL-active UE expects its share of the cell's PRBs (power control, _ul_sinr_db)
        active_ul = tr.ul_buffer_bits > 0
        n_ul = torch.zeros(self.n_cells + 1, device=self.device).index_add_(
            0, torch.where(active_ul, srv, torch.full_like(srv, self.n_cells)), torch.ones_like(tdd)
        )
        self._n_ul = n_ul
        # DL and UL scheduled in one pass: the UL groups follow the DL groups
        pf_pass = self._pf_compiled if self.device.type == "cpu" else self._pf_active
        served, used = pf_pass(ok & active_dl, ok & active_ul, sinr_db, tdd, dt)
        u, n_groups = self.n_ues, self._slice_cap.numel()
        served_dl, served_ul = served[:u], served[u:]
        used_dl, used_ul = used[:n_groups], used[n_groups:]
        # what ue_links() needs for the peak rates (the UL SINR of every UE only when asked)
        self._peak = (sinr_db, n_rb, tdd, srv_slot, n_ul, self._ul_iot_db)
        # backhaul congestion: cap each cell's total
        if self._capped:
            tot = torch.zeros(self.n_cells, dtype=served_dl.dtype, device=self.device).index_add_(
                0, srv, served_dl + served_ul
            )
            scale = torch.clamp(eff.cap_bps * dt / tot.clamp(min=1.0), max=1.0)
            served_dl = served_dl * scale[srv]
            served_ul = served_ul * scale[srv]
        tr.serve(served_dl, served_ul)
        self.avg_dl = scheduler.update_average(self.avg_dl, served_dl, dt)
        self.avg_ul = scheduler.update_average(self.avg_ul, served_ul, dt)
        n_slices = len(SLICES)
        self.dl_util = used_dl.view(self.n_cells, n_slices).sum(1).clamp(max=1.0)
        self.ul_util = used_ul.view(self.n_cells, n_slices).sum(1).clamp(max=1.0)
        self._ul_iot_db = -10 * torch.log10(1 - 0.7 * self.ul_util) + self._noise_rise
        return served_dl, served_ul, active_dl, active_ul

    def _pf_compiled(
        self,
        sched_dl: torch.Tensor,
        sched_ul: torch.Tensor,
        sinr_dl: torch.Tensor,
        tdd: torch.Tensor,
        dt: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`_pf_active` on CPU, compiled (``schedule_pass``): the same numbers."""
        ran, tr = self.sc.ran, self.traffic
        scs = self.sc.radio.subcarrier_spacing_khz
        served, used, self._gbr_need = schedule_pass.schedule(
            sched_dl=sched_dl,
            sched_ul=sched_ul,
            sinr_dl=sinr_dl,
            ul_power=schedule_pass.UplinkPower(
                coupling_gain_db=self.cand_cg,
                srv_slot=self._srv_slot,
                share_db=self._ul_share_db(self._n_ul),
                iot_db=self._ul_iot_db,
                p0_dbm=ran.ul_p0_dbm,
                alpha=ran.ul_alpha,
                p_max_dbm=ran.ue_tx_power_dbm,
                noise_prb_dbm=self.noise_bs_prb_dbm,
            ),
            tdd_dl=tdd,
            buffer_dl=tr.dl_buffer_bits,
            buffer_ul=tr.ul_buffer_bits,
            avg_dl=self.avg_dl,
            avg_ul=self.avg_ul,
            serving=self.serving,
            slice_of_ue=tr.slice,
            n_rb=self.n_rb,
            slice_cap=self._slice_cap,
            gfbr_bps=tr.gfbr_bps,
            re_per_s=linkadapt.resource_elements_per_s(scs, ran.control_overhead),
            max_layers=ran.max_layers,
            gbr_limit=ran.admission_gbr_prb_limit,
            dt=dt,
        )
        return served, used

    def _pf_active(
        self,
        sched_dl: torch.Tensor,
        sched_ul: torch.Tensor,
        sinr_dl: torch.Tensor,
        tdd: torch.Tensor,
        dt: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Link adaptation (TS 38.214) and PF water-filling (``scheduler.pf_share``) of DL and UL
        at once, for the UEs in ``sched_dl`` / ``sched_ul`` [U] (UL: one layer, the TDD share
        ``1 - tdd``). Returns served bits [2U] (the UEs' DL then their UL; 0 outside the
        schedule) and the share of resources used per group [2G], DL groups (cell x slice) then
        UL groups; sets the PRB share the GBR flows need per cell (admission control)."""
        tr = self.traffic
        sinr_ul = self._ul_sinr_db(None, self.serving, self._srv_slot, self._n_ul, self._ul_iot_db)
        sched = torch.cat((sched_dl, sched_ul))
        sinr_db = torch.cat((sinr_dl, sinr_ul))
        fraction = torch.cat((tdd, 1.0 - tdd))
        buffer_bits = torch.cat((tr.dl_buffer_bits, tr.ul_buffer_bits))
        avg_bps = torch.cat((self.avg_dl, self.avg_ul))
        u = self.n_ues
        idx = sched.nonzero().squeeze(1)
        ue = torch.remainder(idx, u)
        ul = idx >= u
        cell = self.serving.index_select(0, ue)
        ran = self.sc.ran
        rate = linkadapt.peak_rate_bps(
            sinr_db.index_select(0, idx),
            _take(self.n_rb, cell),
            self.sc.radio.subcarrier_spacing_khz,
            ran.control_overhead,
            torch.where(ul, 1, ran.max_layers),
            fraction.index_select(0, idx),
        )
        # PRB share the GBR flows need, per cell, DL and UL (admission control); a flow that alone
        # needs more than the admission limit is not guaranteed (TS 23.501 5.7.2.4 notification
        # control: it goes on best effort) and reserves nothing
        need = self.traffic.gfbr_bps.index_select(0, idx) / rate.clamp(min=1.0)
        need = torch.where(need <= self.sc.ran.admission_gbr_prb_limit, need, 0.0)
        self._gbr_need = torch.zeros(2 * self.n_cells, device=self.device)
        self._gbr_need.index_add_(0, cell + ul * self.n_cells, need)
        self._gbr_need = self._gbr_need.view(2, self.n_cells)
        cap = self._slice_cap
        group = cell * len(SLICES) + self.traffic.slice.index_select(0, ue) + ul * cap.numel()
        served, used = scheduler.pf_share(
            group,
            rate,
            buffer_bits.index_select(0, idx),
            avg_bps.index_select(0, idx),
            torch.cat((cap, cap)),
            dt,
        )
        return torch.zeros_like(buffer_bits).index_copy_(0, idx, served), used

    def _close_period(self) -> None:
        cols = {k: v.cpu().numpy() for k, v in self.counters.kpis(self.serving).items()}
        self.reports.append(PeriodReport(self._period_start, self.t, cols))
        for k, v in self.counters.sums.items():
            self._closed[k] = self._closed.get(k, 0.0) + v
        self._closed_seconds += self.counters.seconds
        self.counters.reset()
        self._period_start = self.t

    def window(self) -> dict[str, torch.Tensor]:
        """Per-cell counter sums [C] since the previous call (or the start), plus ``seconds``:
        what an app or an RL agent sees between two decisions, independent of the KPI period."""
        now = {k: self._closed.get(k, 0.0) + v for k, v in self.counters.sums.items()}
        secs = self._closed_seconds + self.counters.seconds
        out = {k: v - self._window_base.get(k, 0.0) for k, v in now.items()}
        out["seconds"] = torch.tensor(secs - self._window_seconds, dtype=torch.float64)
        self._window_base, self._window_seconds = now, secs
        return out

    def ue_links(self) -> dict[str, np.ndarray]:
        """Per-UE link state after the last step (numpy, one entry per UE), read-only: what an
        application server or an offloading policy can learn about each UE's radio link.

        ``peak_*_bps`` is the rate the UE would get with all its cell's PRBs in the TDD share
        (TS 38.214 link adaptation); ``served_*_bps`` what the PF scheduler gave it in the step;
        ``avg_*_bps`` the scheduler's exponentially averaged throughput; ``cell_*_util`` the
        PRB utilisation of its serving cell; ``in_service`` false during HO interruption,
        RLF recovery or while its cell sleeps."""
        if self.steps == 0:
            raise RuntimeError("ue_links() needs at least one step")
        ok, sdl, sul = self._served
        sinr_dl, n_rb, tdd, srv_slot, n_ul, iot_db = self._peak
        sinr_ul = self._ul_sinr_db(None, self.serving, srv_slot, n_ul, iot_db)
        rdl, rul = self._peak_rates(sinr_dl, sinr_ul, n_rb, tdd)
        srv = self.serving
        out = {
            "serving": srv,
            "in_service": ok,
            "x_m": self.mobility.x,
            "y_m": self.mobility.y,
            "sinr_dl_db": self.sinr_db,
            "sinr_ul_db": sinr_ul,
            "peak_dl_bps": rdl,
            "peak_ul_bps": rul,
            "served_dl_bps": sdl / self.dt,
            "served_ul_bps": sul / self.dt,
            "avg_dl_bps": self.avg_dl,
            "avg_ul_bps": self.avg_ul,
            "cell_dl_util": self.dl_util[srv],
            "cell_ul_util": self.ul_util[srv],
        }
        return {k: v.detach().cpu().numpy() for k, v in out.items()}

    # ================================================================== running
    def run(
        self, duration_s: float | None = None, on_step: Callable[[int], None] | None = None
    ) -> list[PeriodReport]:
        """Step for ``duration_s`` (default: the scenario's); returns all period reports."""
        duration = self.sc.time.duration_s if duration_s is None else duration_s
        n = round(duration / self.dt)
        for i in range(n):
            self.step()
            if on_step is not None:
                on_step(i)
        return self.reports

    # ================================================================== actions
    def set_tx_power_rows(self, cells: torch.Tensor, dbm: torch.Tensor) -> None:
        """Set the transmit power of ``cells`` (the typed ``tx_power`` action and the vector env's
        tensor path): the radio refreshes its received powers, the energy model its P_max."""
        old = self.tx_power_dbm[cells].clone()
        self.tx_power_dbm[cells] = dbm
        self.energy.set_tx_power(cells, old, self.tx_power_dbm[cells])
        self._ptx_key += 1
        self._full_refresh = True

    def cell_index(self, cell: str | int) -> int:
        if isinstance(cell, int):
            if not 0 <= cell < self.n_cells:
                raise UserError(f"cell index {cell} out of range 0..{self.n_cells - 1}")
            return cell
        if cell not in self._cell_index:
            raise UserError(f"unknown cell {cell!r}")
        return self._cell_index[cell]

    def apply(self, actions: list[Action]) -> list[ActionResult]:
        """Apply typed actions now; each result records the value it replaced."""
        results = []
        for a in actions:
            try:
                prev = self._apply_one(a)
                res = ActionResult(action=a, applied=True, t_s=self.t, previous=prev)
            except UserError as exc:
                res = ActionResult(action=a, applied=False, t_s=self.t, reason=str(exc))
            results.append(res)
            self.action_log.append(res)
        return results

    def revert(self, result: ActionResult) -> ActionResult | None:
        """Undo an applied action (restore what it replaced)."""
        inv = result.inverse()
        return None if inv is None else self.apply([inv])[0]

    def _apply_one(self, a: Action):
        if isinstance(a, SetCellState):
            i = self.cell_index(a.cell)
            prev_state = CellState(int(self.state[i]))
            new = STATE_NAMES[a.state]
            if new == CellState.ACTIVE and prev_state != CellState.ACTIVE:
                self.wake_until[i] = self.t + float(self.energy.wake_time_s(self.state)[i])
                self.counters.sums["energy_j"][i] += float(self.energy.wake_energy_j(self.state)[i])
            self.state[i] = int(new)
            self._commanded_off[i] = new != CellState.ACTIVE
            self._state_version += 1
            return prev_state.name.lower()
        if isinstance(a, SetTxPower):
            i = self.cell_index(a.cell)
            prev = float(self.tx_power_dbm[i])
            dev = self.tx_power_dbm.device
            self.set_tx_power_rows(torch.tensor([i], device=dev), torch.tensor([a.tx_power_dbm], device=dev))
            return prev
        if isinstance(a, SetTilt):
            i = self.cell_index(a.cell)
            prev = float(self.tilt_deg[i])
            self.tilt_deg[i] = a.downtilt_deg
            self.radio.set_tilt(self.tilt_deg + self._eff.tilt_offset_deg)
            self._full_refresh = True
            return prev
        if isinstance(a, SetCIO):
            i, j = self.cell_index(a.source), self.cell_index(a.target)
            n_c = self.cells_per_copy
            if i // n_c != j // n_c:
                raise UserError(f"cio: {a.source!r} and {a.target!r} belong to different network copies")
            prev = float(self.cio_db[i // n_c, i % n_c, j % n_c])
            self.cio_db[i // n_c, i % n_c, j % n_c] = a.cio_db
            self._cio_active = bool((self.cio_db != 0).any())
            return prev
        if isinstance(a, SetHandoverParams):
            i = self.cell_index(a.cell)
            prev = (float(self.hysteresis_db[i]), float(self.ttt_s[i]) * 1000.0)
            self.hysteresis_db[i] = a.hysteresis_db
            self.ttt_s[i] = a.time_to_trigger_ms / 1000.0
            return prev
        if isinstance(a, SetSliceShare):
            i = self.cell_index(a.cell)
            prev = {s: float(self.slice_share[i, k]) for k, s in enumerate(SLICES)}
            for k, s in enumerate(SLICES):
                if s in a.shares:
                    self.slice_share[i, k] = a.shares[s]
            self._slice_cap = self.slice_share.reshape(-1).clone()
            return prev
        if isinstance(a, SetTdd):
            i = self.cell_index(a.cell)
            prev = float(self.tdd_dl[i])
            self.tdd_dl[i] = a.dl_fraction
            return prev
        raise TypeError(f"unsupported action {a!r}")
