"""The ``Network`` interface: what an app sees of a network, and the one way it acts on it.

Apps never reach into the twin (DESIGN.md, "Rules of the house"). They see a :class:`Network`:

- :meth:`Network.advance` lets one KPI reporting period pass (TS 28.552 clause 3 granularity
  period) and returns an :class:`Observation`: that period's per-cell KPI table (the columns of
  :func:`mobileai.twin.timeline.kpi_table`, TS 28.552 / O-RAN E2SM-KPM names), the current cell
  configuration and the events the network reported;
- :meth:`Network.apply` takes typed actions (:mod:`mobileai.twin.actions`) and returns an
  :class:`~mobileai.twin.actions.ActionResult` per action, recording what it replaced.

Two implementations stand where a live network would (the closed loop of DESIGN.md, the white
paper's perception - analysis - decision - execution):

- :class:`TwinNetwork` drives the digital twin (closed loop: actions change what happens next);
- :class:`RecordedNetwork` replays a KPI table recorded elsewhere, e.g. a user's export (open
  loop: actions are validated and logged, never applied, and their results say so).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mobileai.errors import UserError
from mobileai.twin import timeline
from mobileai.twin.actions import Action, ActionResult
from mobileai.twin.config import Scenario
from mobileai.twin.energy import CellState


@dataclass(frozen=True)
class Observation:
    """One reporting period as an app sees it.

    ``kpis``: one row per cell (period_start, period_end, cell_id, site, cell_type, KPIs);
    ``config``: the cells' current settings (cell_id, state, tx_power_dbm, downtilt_deg,
    hysteresis_db, ttt_ms, tdd_dl_fraction; a recorded network may know fewer);
    ``events``: fault and action events reported during the period (may be empty).
    """

    index: int
    start_s: float
    end_s: float
    kpis: pa.Table
    config: pa.Table
    events: pa.Table


class Network(Protocol):
    """What apps observe and act on: the twin, recorded data, or a live network adapter."""

    #: True when :meth:`apply` changes the network (closed loop), False for replayed data.
    closed_loop: bool
    #: Static description of the cells (cell_id, site, position, azimuth ...).
    cells: pa.Table

    def advance(self) -> Observation | None:
        """Let one reporting period pass; None when there is no more data or time."""
        ...

    def apply(self, actions: list[Action]) -> list[ActionResult]:
        """Apply typed actions now; each result records what it replaced (or why not)."""
        ...

    def history(self) -> pa.Table:
        """Every period's KPI rows observed so far (same columns as ``Observation.kpis``)."""
        ...


class TwinNetwork:
    """The digital twin behind the :class:`Network` interface (closed loop)."""

    closed_loop = True

    def __init__(
        self, scenario: Scenario, device: str = "cpu", on_step: Callable[[int], None] | None = None
    ) -> None:
        from mobileai.twin.engine import Twin

        self.twin = Twin(scenario, device=device)
        self.cells = timeline.cell_config_table(self.twin)
        self._periods = 0
        self._steps_per_period = round(scenario.time.report_period_s / self.twin.dt)
        self._total_steps = round(scenario.time.duration_s / self.twin.dt)
        self._on_step = on_step
        self._history: list[pa.Table] = []
        self._events_seen = 0

    @property
    def periods_total(self) -> int:
        return self._total_steps // self._steps_per_period

    def advance(self) -> Observation | None:
        tw = self.twin
        if tw.steps + self._steps_per_period > self._total_steps:
            return None
        n_reports = len(tw.reports)
        while len(tw.reports) == n_reports:
            tw.step()
            if self._on_step is not None:
                self._on_step(tw.steps)
        table = timeline.kpi_table(timeline.Timeline.from_twin(tw, last=1))
        self._history.append(table)
        rep = tw.reports[-1]
        events = timeline.events_table(tw, end_s=rep.end_s)
        starts = events.column("start_s").to_numpy(zero_copy_only=False)
        new = events.filter(pa.array((starts >= rep.start_s) & (starts < rep.end_s)))
        obs = Observation(self._periods, rep.start_s, rep.end_s, table, self.config(), new)
        self._periods += 1
        return obs

    def config(self) -> pa.Table:
        """Current per-cell settings (after every action applied so far)."""
        tw = self.twin
        names = {int(s): s.name.lower() for s in CellState}
        return pa.table(
            {
                "cell_id": pa.array(list(tw.cells.ids), pa.string()),
                "state": pa.array([names[int(s)] for s in tw.state.tolist()], pa.string()),
                "tx_power_dbm": pa.array(tw.tx_power_dbm.cpu().numpy().astype(np.float64)),
                "rated_tx_power_dbm": pa.array(tw.cells.tx_power_dbm.cpu().numpy().astype(np.float64)),
                "downtilt_deg": pa.array(tw.tilt_deg.cpu().numpy().astype(np.float64)),
                "hysteresis_db": pa.array(tw.hysteresis_db.cpu().numpy().astype(np.float64)),
                "ttt_ms": pa.array(tw.ttt_s.cpu().numpy().astype(np.float64) * 1000.0),
                "tdd_dl_fraction": pa.array(tw.tdd_dl.cpu().numpy().astype(np.float64)),
            }
        )

    def apply(self, actions: list[Action]) -> list[ActionResult]:
        return self.twin.apply(actions)

    def history(self) -> pa.Table:
        return pa.concat_tables(self._history) if self._history else _empty_like_kpis()


class RecordedNetwork:
    """A recorded KPI table replayed period by period (open loop).

    ``kpis`` needs ``period_start`` (timestamp) and ``cell_id`` columns plus KPI columns (names
    as in docs/kpis.md); rows are grouped by ``period_start`` in time order. Actions are
    checked against the known cells and logged as not applied.
    """

    closed_loop = False

    def __init__(self, kpis: pa.Table, cells: pa.Table | None = None) -> None:
        for col in ("period_start", "cell_id"):
            if col not in kpis.column_names:
                raise UserError(f"recorded KPIs: column {col!r} is missing (have {kpis.column_names[:8]}...)")
        kpis = kpis.sort_by([("period_start", "ascending"), ("cell_id", "ascending")])
        self._kpis = kpis
        starts = kpis.column("period_start")
        self._starts = pc.unique(starts).to_pylist()
        self._t0 = self._starts[0] if self._starts else None
        ids = sorted(set(kpis.column("cell_id").to_pylist()))
        self.cells = cells if cells is not None else pa.table({"cell_id": pa.array(ids, pa.string())})
        self._ids = set(self.cells.column("cell_id").to_pylist())
        self._i = 0
        self._now = 0.0

    def advance(self) -> Observation | None:
        if self._i >= len(self._starts):
            return None
        start = self._starts[self._i]
        rows = self._kpis.filter(pc.equal(self._kpis.column("period_start"), pa.scalar(start)))
        nxt = self._starts[self._i + 1] if self._i + 1 < len(self._starts) else None
        s = (start - self._t0).total_seconds()
        e = s + ((nxt - start).total_seconds() if nxt is not None else self._period_guess())
        self._now = e
        config = pa.table({"cell_id": rows.column("cell_id")})
        obs = Observation(self._i, s, e, rows, config, _empty_events())
        self._i += 1
        return obs

    def _period_guess(self) -> float:
        if len(self._starts) >= 2:
            return (self._starts[1] - self._starts[0]).total_seconds()
        return 900.0

    def apply(self, actions: list[Action]) -> list[ActionResult]:
        out = []
        for a in actions:
            cell = getattr(a, "cell", getattr(a, "source", None))
            if cell is not None and str(cell) not in self._ids:
                reason = f"unknown cell {cell!r}"
            else:
                reason = "open loop: recorded data, decision logged and not applied"
            out.append(ActionResult(action=a, applied=False, t_s=self._now, reason=reason))
        return out

    def history(self) -> pa.Table:
        if self._i == 0:
            return self._kpis.slice(0, 0)
        last = self._starts[self._i - 1]
        return self._kpis.filter(pc.less_equal(self._kpis.column("period_start"), pa.scalar(last)))


def _empty_like_kpis() -> pa.Table:
    return pa.table({"period_start": pa.array([], timeline.TIMESTAMP), "cell_id": pa.array([], pa.string())})


def _empty_events() -> pa.Table:
    return pa.table(
        {
            "category": pa.array([], pa.string()),
            "kind": pa.array([], pa.string()),
            "cell_id": pa.array([], pa.string()),
            "start_s": pa.array([], pa.float64()),
        }
    )
