"""Column-mapping files for a user's own KPI exports (CSV or Parquet, e.g. from an OSS/PM system).

A mapping (YAML, validated by pydantic; see examples/kpi-export/) says which source column holds
the time, which the cell, and which source columns become which of our KPIs, with the unit the
source uses; values are converted to the unit of docs/kpis.md (TS 28.552 / O-RAN E2SM-KPM).
Unit factors are exact SI / IEC 80000-13 relations (1 byte = 8 bit, k = 10^3, 1 kWh = 3.6 MJ);
a unit that cannot be converted to the target KPI's unit is an error naming both and the units
allowed. Each target unit also has a physical range (a share is 0..100 %, a count is >= 0 ...);
ingest rejects rows outside it, which is how a wrong declared unit shows up.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mobileai.data.timeutil import parse_period
from mobileai.errors import UserError, load_yaml_model
from mobileai.twin.counters import KPI_DEFINITIONS

#: unit -> (quantity, factor to the quantity's base unit).
UNITS: dict[str, tuple[str, float]] = {
    "bit/s": ("rate", 1.0), "kbit/s": ("rate", 1e3), "Mbit/s": ("rate", 1e6), "Gbit/s": ("rate", 1e9),
    "B/s": ("rate", 8.0), "kB/s": ("rate", 8e3), "MB/s": ("rate", 8e6),
    "bit": ("volume", 1.0), "kbit": ("volume", 1e3), "Mbit": ("volume", 1e6), "Gbit": ("volume", 1e9),
    "B": ("volume", 8.0), "byte": ("volume", 8.0), "kB": ("volume", 8e3), "MB": ("volume", 8e6),
    "GB": ("volume", 8e9),
    "%": ("share", 0.01), "ratio": ("share", 1.0), "0..1": ("share", 1.0),
    "W": ("power", 1.0), "mW": ("power", 1e-3), "kW": ("power", 1e3),
    "J": ("energy", 1.0), "kJ": ("energy", 1e3), "MJ": ("energy", 1e6), "Wh": ("energy", 3600.0),
    "kWh": ("energy", 3.6e6),
    "ms": ("duration", 1e-3), "s": ("duration", 1.0), "us": ("duration", 1e-6),
    "UEs": ("users", 1.0), "users": ("users", 1.0),
    "count": ("count", 1.0),
    "dB": ("dB", 1.0),
    "0..15": ("cqi", 1.0),
    "-": ("other", 1.0),
}  # fmt: skip

#: Physical range of each quantity in the *target* unit (None: unbounded on that side).
_RANGES: dict[str, tuple[float | None, float | None]] = {
    "%": (0.0, 100.0), "0..1": (0.0, 1.0), "ratio": (0.0, 1.0), "0..15": (0.0, 15.0),
    "dB": (-60.0, 80.0), "-": (None, None),
}  # fmt: skip


def unit_factor(source: str, target: str, where: str) -> float:
    """Multiply a value in ``source`` unit by this to get ``target`` unit."""
    if source not in UNITS:
        raise UserError(f"{where}: unit {source!r} is not known; units: {', '.join(UNITS)}")
    qs, fs = UNITS[source]
    qt, ft = UNITS[target]
    if qs != qt:
        same = [u for u, (q, _) in UNITS.items() if q == qt]
        raise UserError(
            f"{where}: unit {source!r} ({qs}) cannot be converted to {target!r} ({qt}); "
            f"use one of {', '.join(same)}"
        )
    return fs / ft


def value_range(unit: str) -> tuple[float | None, float | None]:
    """Allowed values in ``unit``: shares, CQI and dB are bounded, other quantities are >= 0."""
    return _RANGES.get(unit, (0.0, None))


class ColumnSpec(BaseModel):
    """One source column and the unit it is in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str = Field(description="Source column name (exactly as in the file's header).")
    unit: str = Field(description="Unit the source column is in (converted to the KPI's unit).")
    min: float | None = Field(None, description="Reject values below this (in the target unit).")
    max: float | None = Field(None, description="Reject values above this (in the target unit).")

    @field_validator("unit")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in UNITS:
            raise ValueError(f"unit {v!r} is not known; units: {', '.join(UNITS)}")
        return v


class TimeSpec(BaseModel):
    """Where the time of a row comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str = Field(description="Source column with the period's start time.")
    format: str | None = Field(
        None,
        description="strptime format (e.g. '%Y-%m-%d %H:%M:%S'); 'epoch_s' or 'epoch_ms' for numbers; "
        "omitted: ISO 8601.",
    )
    timezone: str = Field("UTC", description="IANA time zone of times without an offset.")
    date: dt.date | None = Field(None, description="Date for a format with only a time of day.")
    day_from_occurrence: bool = Field(
        False,
        description="Time-of-day exports only: the n-th row of a cell at a time of day goes to day n after "
        "'date' (file order defines the day; see examples/kpi-export/README.md).",
    )

    @model_validator(mode="after")
    def _date_when_needed(self) -> TimeSpec:
        if (
            self.format
            and self.format not in ("epoch_s", "epoch_ms")
            and not re.search(r"%[YyjmdbBFDcx]", self.format)
        ):
            if self.date is None:
                raise ValueError(f"format {self.format!r} has no date: give 'date' (YYYY-MM-DD)")
        elif self.day_from_occurrence:
            raise ValueError("day_from_occurrence is only for a format with a time of day and no date")
        try:
            import zoneinfo

            zoneinfo.ZoneInfo(self.timezone)
        except Exception:
            raise ValueError(
                f"timezone {self.timezone!r} is not an IANA time zone (e.g. UTC, Europe/Madrid)"
            ) from None
        return self

    @property
    def time_of_day_only(self) -> bool:
        return self.date is not None


class CellSpec(BaseModel):
    """Where the cell id of a row comes from: a column, or one value for the whole file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str | None = Field(None, description="Source column with the cell id.")
    value: str | None = Field(None, description="Cell id of every row (a file per cell/site).")
    prefix: str = Field("", description="Prepended to every cell id (keeps sources apart).")

    @model_validator(mode="after")
    def _one(self) -> CellSpec:
        if (self.column is None) == (self.value is None):
            raise ValueError("give exactly one of 'column' or 'value'")
        return self


class CsvSpec(BaseModel):
    """How to read a CSV file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delimiter: str = Field(",", min_length=1, max_length=1)
    encoding: str = "utf-8-sig"
    decimal: Literal[".", ","] = "."


class Mapping(BaseModel):
    """A column-mapping file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    csv: CsvSpec = CsvSpec()
    time: TimeSpec
    cell: CellSpec
    period: str = Field("15min", description="Reporting period of the export (rows must sit on this grid).")
    kpis: dict[str, ColumnSpec] = Field(description="Our KPI name (docs/kpis.md) -> source column and unit.")
    extra: dict[str, ColumnSpec] = Field(
        default_factory=dict,
        description="Columns kept outside the KPI catalogue: 'namespace.Name' -> source.",
    )
    ignore: list[str] = Field(default_factory=list, description="Source columns deliberately not loaded.")
    future_tolerance: str = Field("0s", description="Rows starting later than now + this are rejected.")

    @field_validator("kpis")
    @classmethod
    def _catalogue(cls, v: dict[str, ColumnSpec]) -> dict[str, ColumnSpec]:
        if not v:
            raise ValueError("map at least one KPI")
        for name, spec in v.items():
            if name not in KPI_DEFINITIONS:
                raise ValueError(
                    f"{name!r} is not a KPI of docs/kpis.md; map it under 'extra' as 'namespace.{name}' "
                    f"or use one of {', '.join(KPI_DEFINITIONS)}"
                )
            unit_factor(spec.unit, KPI_DEFINITIONS[name][0], f"kpis.{name}.unit")
        return v

    @field_validator("extra")
    @classmethod
    def _namespaced(cls, v: dict[str, ColumnSpec]) -> dict[str, ColumnSpec]:
        for name in v:
            if name in KPI_DEFINITIONS or "." not in name:
                raise ValueError(f"extra column {name!r}: name it 'namespace.Name', not a catalogue KPI")
        return v

    @model_validator(mode="after")
    def _periods(self) -> Mapping:
        try:
            parse_period(self.period, "period")
            parse_period(self.future_tolerance, "future_tolerance") if self.future_tolerance.strip(
                " 0s"
            ) else None
        except UserError as exc:
            raise ValueError(str(exc)) from None
        used = [s.column for s in (*self.kpis.values(), *self.extra.values())]
        dup = sorted({c for c in used if used.count(c) > 1})
        if dup:
            raise ValueError(f"source column(s) {dup} mapped more than once")
        return self

    @property
    def period_s(self) -> float:
        return parse_period(self.period, "period")

    @property
    def future_tolerance_s(self) -> float:
        return 0.0 if not self.future_tolerance.strip(" 0s") else parse_period(self.future_tolerance)

    def targets(self) -> dict[str, tuple[ColumnSpec, str, float]]:
        """Target column -> (source spec, target unit, factor source -> target)."""
        out = {}
        for name, spec in self.kpis.items():
            unit = KPI_DEFINITIONS[name][0]
            out[name] = (spec, unit, unit_factor(spec.unit, unit, f"kpis.{name}.unit"))
        for name, spec in self.extra.items():
            out[name] = (spec, spec.unit, 1.0)
        return out

    def source_columns(self) -> list[str]:
        cols = [self.time.column] + ([self.cell.column] if self.cell.column else [])
        return cols + [s.column for s, _, _ in self.targets().values()]

    @classmethod
    def load(cls, path: Path) -> Mapping:
        """Read and validate a YAML mapping file."""
        return load_yaml_model(cls, path, "mapping file")
