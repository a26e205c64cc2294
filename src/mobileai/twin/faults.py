"""Fault injection with ground truth.

Faults come from the scenario's ``faults.schedule`` and, optionally, at random
(``random_per_cell_day`` per cell per day, uniform start times, kinds and durations drawn with the
scenario seed). Each fault is logged with its label in the run's ``events`` table, so detection
and root-cause analysis can be scored against the truth. Effects on the twin:

| kind                    | effect (default magnitude)                                              |
|-------------------------|-------------------------------------------------------------------------|
| `outage`                | the cell stops radiating; its UEs reselect neighbours                   |
| `power_degradation`     | transmit power drops by the magnitude (10 dB)                           |
| `tilt_error`            | electrical down-tilt off by the magnitude (+8°), e.g. a slipped antenna |
| `external_interference` | noise rise at the cell's UEs and receiver (15 dB)                       |
| `backhaul_congestion`   | the cell's total throughput capped (20 Mbit/s)                          |
| `sleeping_cell`         | the cell radiates and keeps UEs but carries no traffic                  |
| `traffic_surge`         | session arrivals at the cell's UEs multiplied (x5), e.g. an event       |
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mobileai.errors import UserError
from mobileai.twin.config import FAULT_KINDS, Scenario

DEFAULT_MAGNITUDE = {
    "outage": 1.0,
    "power_degradation": 10.0,
    "tilt_error": 8.0,
    "external_interference": 15.0,
    "backhaul_congestion": 20.0,
    "sleeping_cell": 1.0,
    "traffic_surge": 5.0,
}


@dataclass(frozen=True)
class FaultEvent:
    """One fault occurrence: the ground-truth label of the events table."""

    kind: str
    cell: int
    start_s: float
    end_s: float
    magnitude: float
    source: str  # "schedule" or "random"


@dataclass
class FaultEffects:
    """Per-cell modifiers in force at one instant, tensors [C]."""

    outage: torch.Tensor  # bool
    tx_offset_db: torch.Tensor
    tilt_offset_deg: torch.Tensor
    noise_rise_db: torch.Tensor
    cap_bps: torch.Tensor  # inf when uncapped
    sleeping: torch.Tensor  # bool
    surge: torch.Tensor  # arrival-rate multiplier


def build_fault_events(
    sc: Scenario, cell_ids: tuple[str, ...], generator: torch.Generator
) -> list[FaultEvent]:
    """Scheduled plus random faults, sorted by start time."""
    index = {cid: i for i, cid in enumerate(cell_ids)}
    events: list[FaultEvent] = []
    for i, f in enumerate(sc.faults.schedule):
        if isinstance(f.cell, int):
            if not 0 <= f.cell < len(cell_ids):
                raise UserError(
                    f"faults.schedule.{i}.cell: index {f.cell} out of range 0..{len(cell_ids) - 1}"
                )
            cell = f.cell
        elif f.cell in index:
            cell = index[f.cell]
        else:
            raise UserError(f"faults.schedule.{i}.cell: unknown cell {f.cell!r} (e.g. {cell_ids[0]!r})")
        mag = DEFAULT_MAGNITUDE[f.kind] if f.magnitude is None else f.magnitude
        events.append(FaultEvent(f.kind, cell, f.start_s, f.start_s + f.duration_s, mag, "schedule"))
    rate = sc.faults.random_per_cell_day
    duration = sc.time.duration_s
    if rate > 0 and sc.faults.random_kinds:
        expected = rate * len(cell_ids) * duration / 86_400.0
        n = int(torch.poisson(torch.tensor([expected], dtype=torch.float64), generator=generator).item())
        kinds = sc.faults.random_kinds
        lo, hi = sc.faults.random_duration_s
        for _ in range(n):
            kind = kinds[int(torch.randint(len(kinds), (1,), generator=generator))]
            cell = int(torch.randint(len(cell_ids), (1,), generator=generator))
            start = float(torch.rand(1, generator=generator)) * duration
            dur = lo + float(torch.rand(1, generator=generator)) * (hi - lo)
            events.append(FaultEvent(kind, cell, start, start + dur, DEFAULT_MAGNITUDE[kind], "random"))
    return sorted(events, key=lambda e: (e.start_s, e.cell))


class FaultInjector:
    """Evaluates which faults are active at time t and what they do, vectorised over faults."""

    def __init__(self, events: list[FaultEvent], n_cells: int, device: torch.device | str = "cpu") -> None:
        self.events = events
        self.n_cells = n_cells
        self.device = torch.device(device)
        kinds = {k: i for i, k in enumerate(FAULT_KINDS)}
        f32 = {"device": self.device, "dtype": torch.float32}
        self._kind = torch.tensor([kinds[e.kind] for e in events], dtype=torch.long, device=self.device)
        self._cell = torch.tensor([e.cell for e in events], dtype=torch.long, device=self.device)
        self._start = torch.tensor([e.start_s for e in events], **f32)
        self._end = torch.tensor([e.end_s for e in events], **f32)
        self._mag = torch.tensor([e.magnitude for e in events], **f32)
        self._kinds = kinds
        self._cache_key: tuple[int, ...] | None = None
        self._cache: FaultEffects | None = None
        self._boundaries = sorted({e.start_s for e in events} | {e.end_s for e in events})

    def active_mask(self, t: float) -> torch.Tensor:
        return (self._start <= t) & (t < self._end)

    def effects(self, t: float) -> FaultEffects:
        """Per-cell modifiers at time ``t`` (cached between fault boundaries)."""
        key = tuple(i for i, e in enumerate(self.events) if e.start_s <= t < e.end_s)
        if key == self._cache_key and self._cache is not None:
            return self._cache
        c = self.n_cells
        dev = self.device
        act = self.active_mask(t)

        def per_cell(kind: str, reduce: str, fill: float) -> torch.Tensor:
            sel = act & (self._kind == self._kinds[kind])
            out = torch.full((c,), fill, dtype=torch.float32, device=dev)
            if bool(sel.any()):
                out = out.scatter_reduce(0, self._cell[sel], self._mag[sel], reduce=reduce, include_self=True)
            return out

        eff = FaultEffects(
            outage=per_cell("outage", "amax", 0.0) > 0,
            tx_offset_db=-per_cell("power_degradation", "sum", 0.0),
            tilt_offset_deg=per_cell("tilt_error", "sum", 0.0),
            noise_rise_db=per_cell("external_interference", "amax", 0.0),
            cap_bps=per_cell("backhaul_congestion", "amin", math.inf) * 1e6,
            sleeping=per_cell("sleeping_cell", "amax", 0.0) > 0,
            surge=per_cell("traffic_surge", "amax", 1.0),
        )
        self._cache_key, self._cache = key, eff
        return eff
