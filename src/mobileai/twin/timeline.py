"""The tables of a dynamic run: per-cell KPIs per reporting period, events, cell configuration.

A :class:`~mobileai.twin.engine.Twin` that has run keeps one
:class:`~mobileai.twin.engine.PeriodReport` per KPI reporting period (TS 28.552 clause 3:
measurements are collected per granularity period, 15 min by default), its ground-truth fault
events and its action log. This module turns them into Arrow tables:

- ``kpis``: one row per cell per period, the KPIs of :data:`~mobileai.twin.counters.KPI_DEFINITIONS`
  (TS 28.552 / O-RAN E2SM-KPM names) as float64, with UTC timestamps;
- ``events``: the labelled fault events (category ``fault``) and the actions applied to the twin
  (category ``action``, with the value each replaced) in one table;
- ``cells``: the configured cells (position, azimuth, tilt, power, carrier, cell type).

Simulated time ``t`` (seconds since the start) is anchored at :data:`ANCHOR` plus the scenario's
``time.start_hour``: a run that starts at 06:00 has ``period_start`` 2026-01-01 06:00:00 UTC for
its first period. The date is arbitrary and fixed, so two runs of the same scenario and seed give
identical tables. Every column carries ``unit``, ``definition`` and ``reference`` as Arrow field
metadata (the same keys as the static run's tables).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from mobileai.twin.config import CELL_TYPES
from mobileai.twin.counters import KPI_DEFINITIONS
from mobileai.twin.kpis import CELL_COLUMNS, ColumnDoc
from mobileai.twin.nr import prb_count

if TYPE_CHECKING:
    from mobileai.twin.engine import Twin

#: Simulated time 0 h of the day is this instant (UTC); ``time.start_hour`` is added to it.
ANCHOR = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
#: Timestamp type of every time column.
TIMESTAMP = pa.timestamp("ms", tz="UTC")
#: KPIs whose day value is a sum over cells and periods (counts, volumes, energy); the others
#: are means (rates, shares, levels).
SUMMED_UNITS = frozenset({"count", "Mbit", "kWh", "J"})

_ANCHOR_MS = int(ANCHOR.timestamp() * 1000)

KPI_KEY_COLUMNS: dict[str, ColumnDoc] = {
    "period_start": ColumnDoc(
        "UTC", "Start of the reporting period (2026-01-01 + time.start_hour + t).", "TS 28.552 3"
    ),
    "period_end": ColumnDoc("UTC", "End of the reporting period (exclusive).", "TS 28.552 3"),
    "cell_id": ColumnDoc("-", "Cell identifier (joins cells.cell_id).", "-"),
    "site": ColumnDoc("-", "Site index (co-located cells share it).", "-"),
    "cell_type": ColumnDoc(
        "-", f"Cell type setting the diurnal load curve: {', '.join(CELL_TYPES)}.", "traffic.cell_type_mix"
    ),
}

EVENT_COLUMNS: dict[str, ColumnDoc] = {
    "category": ColumnDoc("-", "fault (injected, ground truth) or action (applied to the twin).", "-"),
    "kind": ColumnDoc("-", "Fault kind (outage, tilt_error ...) or action:<kind> (action:tilt ...).", "-"),
    "cell_id": ColumnDoc("-", "Cell the fault or action targets (CIO: the source cell).", "-"),
    "cell_index": ColumnDoc("-", "Row of the cell in cells.parquet.", "-"),
    "start": ColumnDoc("UTC", "Fault start, or the time the action was applied.", "-"),
    "end": ColumnDoc("UTC", "Fault end (exclusive); null for actions.", "-"),
    "start_s": ColumnDoc("s", "start in simulated seconds since the run began.", "-"),
    "end_s": ColumnDoc("s", "end in simulated seconds; null for actions.", "-"),
    "magnitude": ColumnDoc(
        "-", "Fault magnitude (dB, degrees, Mbit/s or load factor by kind; see faults.py).", "-"
    ),
    "source": ColumnDoc("-", "schedule or random for faults; action for actions.", "-"),
    "label": ColumnDoc("bool", "True for ground-truth faults (what a detector should find).", "-"),
    "applied": ColumnDoc("bool", "The action was applied (false: rejected, see reason).", "-"),
    "value": ColumnDoc("-", "The action's new value(s), JSON.", "-"),
    "previous": ColumnDoc("-", "The value the action replaced, JSON (for rollback).", "-"),
    "reason": ColumnDoc("-", "Why an action was rejected.", "-"),
}

CELL_CONFIG_COLUMNS: dict[str, ColumnDoc] = {
    "cell_id": CELL_COLUMNS["cell_id"],
    "cell_index": CELL_COLUMNS["cell_index"],
    "site": KPI_KEY_COLUMNS["site"],
    **{
        k: CELL_COLUMNS[k]
        for k in ("x_m", "y_m", "height_m", "azimuth_deg", "downtilt_deg", "tx_power_dbm", "carrier_ghz")
    },
    "bandwidth_mhz": CELL_COLUMNS["bandwidth_mhz"],
    "n_rb": CELL_COLUMNS["n_rb"],
    "cell_type": KPI_KEY_COLUMNS["cell_type"],
}


def kpi_doc(name: str) -> ColumnDoc:
    """Unit, definition and clause of a KPI column (from :data:`KPI_DEFINITIONS`)."""
    if name in KPI_DEFINITIONS:
        return ColumnDoc(*KPI_DEFINITIONS[name])
    return ColumnDoc("-", "undocumented KPI", "-")


def timestamp_ms(start_hour: float, t_s: np.ndarray | float) -> np.ndarray:
    """Epoch milliseconds (UTC) of simulated times ``t_s``."""
    return _ANCHOR_MS + np.round((start_hour * 3600.0 + np.asarray(t_s, dtype=np.float64)) * 1000.0).astype(
        np.int64
    )


@dataclass
class Timeline:
    """A dynamic run's KPIs as arrays: ``kpis[name]`` is [P, C] (periods x cells)."""

    start_s: np.ndarray  # [P]
    end_s: np.ndarray  # [P]
    start_hour: float
    cell_ids: tuple[str, ...]
    site: np.ndarray  # [C] int
    cell_type: np.ndarray  # [C] index into CELL_TYPES
    kpis: dict[str, np.ndarray]

    @classmethod
    def from_twin(cls, tw: Twin, last: int | None = None) -> Timeline:
        """All the twin's reporting periods so far, or only the ``last`` ones."""
        reports = tw.reports if last is None else tw.reports[len(tw.reports) - last :]
        names = [k for k in KPI_DEFINITIONS if reports and k in reports[0].columns]
        if reports:
            names += [k for k in reports[0].columns if k not in KPI_DEFINITIONS]
        n_c = tw.n_cells
        kpis = {
            k: (
                np.stack([np.asarray(r.columns[k], dtype=np.float64) for r in reports])
                if reports
                else np.zeros((0, n_c))
            )
            for k in names
        }
        return cls(
            start_s=np.array([r.start_s for r in reports], dtype=np.float64),
            end_s=np.array([r.end_s for r in reports], dtype=np.float64),
            start_hour=float(tw.sc.time.start_hour),
            cell_ids=tuple(tw.cells.ids),
            site=tw.cells.site.cpu().numpy().astype(np.int32),
            cell_type=tw.cell_type.cpu().numpy().astype(np.int64),
            kpis=kpis,
        )

    @property
    def n_periods(self) -> int:
        return int(self.start_s.size)

    @property
    def n_cells(self) -> int:
        return len(self.cell_ids)

    @property
    def cell_type_names(self) -> list[str]:
        return [CELL_TYPES[i] for i in self.cell_type]

    def start_times(self) -> np.ndarray:
        """Period starts as numpy datetime64[ms] (UTC, naive)."""
        return timestamp_ms(self.start_hour, self.start_s).astype("datetime64[ms]")

    def end_times(self) -> np.ndarray:
        return timestamp_ms(self.start_hour, self.end_s).astype("datetime64[ms]")

    def network(self, name: str, how: str = "sum") -> np.ndarray:
        """A KPI aggregated over cells per period [P] (``sum``, ``mean`` or ``median``; NaNs ignored)."""
        v = self.kpis[name]
        if v.size == 0:
            return np.zeros(self.n_periods)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an idle cell has no per-UE KPIs
            if how == "sum":
                return np.nansum(v, axis=1)
            if how == "mean":
                return np.nanmean(v, axis=1)
            if how == "median":
                return np.nanmedian(v, axis=1)
        raise ValueError(f"unknown aggregation {how!r}")


def _field(name: str, typ: pa.DataType, doc: ColumnDoc) -> pa.Field:
    return pa.field(
        name, typ, metadata={"unit": doc.unit, "definition": doc.definition, "reference": doc.reference}
    )


def _nullable(values: np.ndarray) -> pa.Array:
    v = np.asarray(values, dtype=np.float64)
    return pa.array(v, type=pa.float64(), mask=~np.isfinite(v))


def kpi_table(tl: Timeline) -> pa.Table:
    """One row per period per cell (period-major): keys, then every KPI column (float64)."""
    p, c = tl.n_periods, tl.n_cells
    starts = np.repeat(timestamp_ms(tl.start_hour, tl.start_s), c)
    ends = np.repeat(timestamp_ms(tl.start_hour, tl.end_s), c)
    fields = [
        _field("period_start", TIMESTAMP, KPI_KEY_COLUMNS["period_start"]),
        _field("period_end", TIMESTAMP, KPI_KEY_COLUMNS["period_end"]),
        _field("cell_id", pa.string(), KPI_KEY_COLUMNS["cell_id"]),
        _field("site", pa.int32(), KPI_KEY_COLUMNS["site"]),
        _field("cell_type", pa.string(), KPI_KEY_COLUMNS["cell_type"]),
    ]
    arrays: list[pa.Array] = [
        pa.array(starts, type=TIMESTAMP),
        pa.array(ends, type=TIMESTAMP),
        pa.array(list(tl.cell_ids) * p, type=pa.string()),
        pa.array(np.tile(tl.site, p), type=pa.int32()),
        pa.array(tl.cell_type_names * p, type=pa.string()),
    ]
    for name, v in tl.kpis.items():
        fields.append(_field(name, pa.float64(), kpi_doc(name)))
        arrays.append(_nullable(v.reshape(-1)))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields)).replace_schema_metadata(
        {"mobileai.table": "kpis", "mobileai.kpis": "docs/kpis.md", "mobileai.anchor": ANCHOR.isoformat()}
    )


def _json(v: object) -> str:
    return json.dumps(v, sort_keys=True, default=str)


def events_table(tw: Twin, end_s: float | None = None) -> pa.Table:
    """Fault events that started before ``end_s`` (default: now) and every action result."""
    end_s = tw.t if end_s is None else end_s
    ids = tw.cells.ids
    rows: list[dict] = []
    for e in tw.faults.events:
        if e.start_s >= end_s:
            continue  # never happened in this run
        rows.append(
            {
                "category": "fault",
                "kind": e.kind,
                "cell_index": int(e.cell),
                "start_s": float(e.start_s),
                "end_s": float(e.end_s),
                "magnitude": float(e.magnitude),
                "source": e.source,
                "label": True,
                "applied": None,
                "value": None,
                "previous": None,
                "reason": None,
            }
        )
    for r in tw.action_log:
        a = r.action
        fields = a.model_dump(mode="json")
        kind = fields.pop("kind")
        cell = fields.pop("cell", None)
        if cell is None:  # CIO: a pair of cells, keyed by the source
            cell = fields.pop("source")
        try:
            index = tw.cell_index(cell)
        except Exception:  # a rejected action may name an unknown cell
            index = -1
        rows.append(
            {
                "category": "action",
                "kind": f"action:{kind}",
                "cell_index": index,
                "start_s": float(r.t_s),
                "end_s": math.nan,
                "magnitude": math.nan,
                "source": "action",
                "label": False,
                "applied": bool(r.applied),
                "value": _json(fields),
                "previous": None if r.previous is None else _json(r.previous),
                "reason": r.reason or None,
            }
        )
    rows.sort(key=lambda r: (r["start_s"], r["category"] != "fault"))  # stable: log order kept
    col = {k: [r[k] for r in rows] for k in EVENT_COLUMNS if k not in ("cell_id", "start", "end")}
    start_s = np.array(col["start_s"], dtype=np.float64)
    end_arr = np.array(col["end_s"], dtype=np.float64)
    hour = float(tw.sc.time.start_hour)
    ts_start = timestamp_ms(hour, start_s)
    ts_end = timestamp_ms(hour, np.nan_to_num(end_arr))
    cells = [ids[i] if 0 <= i < len(ids) else None for i in col["cell_index"]]
    arrays = {
        "category": pa.array(col["category"], pa.string()),
        "kind": pa.array(col["kind"], pa.string()),
        "cell_id": pa.array(cells, pa.string()),
        "cell_index": pa.array(col["cell_index"], pa.int32()),
        "start": pa.array(ts_start, TIMESTAMP),
        "end": pa.array(ts_end, TIMESTAMP, mask=~np.isfinite(end_arr)),
        "start_s": pa.array(start_s, pa.float64()),
        "end_s": _nullable(end_arr),
        "magnitude": _nullable(np.array(col["magnitude"], dtype=np.float64)),
        "source": pa.array(col["source"], pa.string()),
        "label": pa.array(col["label"], pa.bool_()),
        "applied": pa.array(col["applied"], pa.bool_()),
        "value": pa.array(col["value"], pa.string()),
        "previous": pa.array(col["previous"], pa.string()),
        "reason": pa.array(col["reason"], pa.string()),
    }
    schema = pa.schema([_field(k, arrays[k].type, EVENT_COLUMNS[k]) for k in EVENT_COLUMNS])
    return pa.Table.from_arrays([arrays[k] for k in EVENT_COLUMNS], schema=schema).replace_schema_metadata(
        {"mobileai.table": "events"}
    )


def cell_config_table(tw: Twin) -> pa.Table:
    """The cells as configured by the scenario (actions applied later are in ``events``)."""
    c = tw.cells
    bore = c.boresight_deg.cpu().numpy().astype(np.float64)
    bw = c.bandwidth_mhz.cpu().numpy().astype(np.float64)
    scs = tw.sc.radio.subcarrier_spacing_khz
    f32 = pa.float32()
    cols: dict[str, pa.Array] = {
        "cell_id": pa.array(list(c.ids), pa.string()),
        "cell_index": pa.array(np.arange(c.n, dtype=np.int32), pa.int32()),
        "site": pa.array(c.site.cpu().numpy().astype(np.int32), pa.int32()),
        "x_m": pa.array(c.x.cpu().numpy().astype(np.float64), pa.float64()),
        "y_m": pa.array(c.y.cpu().numpy().astype(np.float64), pa.float64()),
        "height_m": pa.array(c.height.cpu().numpy().astype(np.float32), f32),
        "azimuth_deg": pa.array(np.mod(90.0 - bore, 360.0).astype(np.float32), f32),
        "downtilt_deg": pa.array(c.downtilt_deg.cpu().numpy().astype(np.float32), f32),
        "tx_power_dbm": pa.array(c.tx_power_dbm.cpu().numpy().astype(np.float32), f32),
        "carrier_ghz": pa.array(c.carrier_ghz.cpu().numpy().astype(np.float32), f32),
        "bandwidth_mhz": pa.array(bw.astype(np.float32), f32),
        "n_rb": pa.array([prb_count(b, scs) for b in bw], pa.int32()),
        "cell_type": pa.array([CELL_TYPES[i] for i in tw.cell_type.cpu().tolist()], pa.string()),
    }
    order = list(CELL_CONFIG_COLUMNS)
    assert list(cols) == order
    schema = pa.schema([_field(k, cols[k].type, CELL_CONFIG_COLUMNS[k]) for k in order])
    return pa.Table.from_arrays([cols[k] for k in order], schema=schema).replace_schema_metadata(
        {"mobileai.table": "cells"}
    )


def catalog_tables(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """The tables as the DuckDB catalog holds them: timestamps as plain ``TIMESTAMP`` in UTC.

    The Parquet files keep ``timestamp[ms, tz=UTC]``. In DuckDB that would be ``TIMESTAMPTZ``,
    whose literals and display follow the session's time zone and whose Python values need
    ``pytz``; a plain UTC ``TIMESTAMP`` compares with ``'2026-01-01 18:00'`` the same everywhere.
    """
    out = {}
    for name, table in tables.items():
        for i, f in enumerate(table.schema):
            if pa.types.is_timestamp(f.type) and f.type.tz is not None:
                naive = pa.timestamp(f.type.unit)
                table = table.set_column(i, f.with_type(naive), table.column(i).cast(naive))
        out[name] = table
    return out


def column_dictionary(tables: dict[str, pa.Table]) -> list[dict[str, str]]:
    """The catalog's ``columns`` table: one row per column of each table, from field metadata."""
    out = []
    for tname, table in tables.items():
        for f in table.schema:
            meta = {k.decode(): v.decode() for k, v in (f.metadata or {}).items()}
            out.append(
                {
                    "table_name": tname,
                    "column_name": f.name,
                    "unit": meta.get("unit", "-"),
                    "definition": meta.get("definition", ""),
                    "reference": meta.get("reference", "-"),
                }
            )
    return out


def day_kpis(tl: Timeline) -> list[dict[str, object]]:
    """Every KPI over the whole run: the total (counts, volumes, energy) or the mean over
    cell-periods (rates, shares, levels), with the 5th/95th percentile over cell-periods."""
    rows = []
    for name, v in tl.kpis.items():
        doc = kpi_doc(name)
        finite = v[np.isfinite(v)]
        how = "total" if doc.unit in SUMMED_UNITS else "mean"
        if finite.size == 0:
            value = p5 = p95 = math.nan
        else:
            value = float(finite.sum() if how == "total" else finite.mean())
            p5, p95 = (float(x) for x in np.percentile(finite, (5, 95)))
        rows.append(
            {
                "kpi": name,
                "unit": doc.unit,
                "aggregate": how,
                "value": value,
                "p5": p5,
                "p95": p95,
                "reference": doc.reference,
            }
        )
    return rows


def totals(tl: Timeline, n_faults: int, n_actions: int) -> dict[str, float | int | None]:
    """Network totals of the run (the ``--json`` summary and the report's headline numbers);
    volumes in GB (10^9 bytes). A rate with nothing to divide by is None."""

    def total(name: str) -> float:
        return float(np.nansum(tl.kpis[name])) if name in tl.kpis else 0.0

    seconds = float(tl.end_s[-1] - tl.start_s[0]) if tl.n_periods else 0.0
    energy_kwh = total("PEE.Energy")
    ho_req, ho_ok = total("MM.HoExeIntraReq"), total("MM.HoExeIntraSucc")
    new, blocked = total("mobileai.SessionsNew"), total("mobileai.SessionsBlocked")
    return {
        "reported_s": seconds,
        "dl_volume_gb": round(total("DRB.PdcpSduVolumeDL") / 8e3, 6),
        "ul_volume_gb": round(total("DRB.PdcpSduVolumeUL") / 8e3, 6),
        "energy_kwh": round(energy_kwh, 6),
        "mean_power_kw": round(energy_kwh / (seconds / 3600.0), 6) if seconds > 0 else None,
        "ho_attempts": int(ho_req),
        "ho_success_rate": round(ho_ok / ho_req, 6) if ho_req > 0 else None,
        "ho_failures": int(total("mobileai.HoFail")),
        "ping_pongs": int(total("mobileai.HoPingPong")),
        "rlfs": int(total("mobileai.Rlf")),
        "sessions": int(new),
        "sessions_blocked": int(blocked),
        "sessions_dropped": int(total("mobileai.SessionsDropped")),
        "faults": int(n_faults),
        "actions": int(n_actions),
    }


def kpi_docs_table() -> str:
    """The Markdown table of :data:`KPI_DEFINITIONS` that ``docs/kpis.md`` carries."""
    lines = ["| column | unit | definition | clause |", "|---|---|---|---|"]
    for name, (unit, definition, clause) in KPI_DEFINITIONS.items():
        lines.append(f"| `{name}` | {unit} | {definition} | {clause} |")
    return "\n".join(lines)
