"""Ingest a user's own KPI export (CSV or Parquet) through a column mapping into the store.

Every source row ends up in exactly one place: the store (accepted) or the rejection report
(with the check it failed and a reason naming the column, the value and what is allowed).
Nothing is dropped silently, and ``rows_read == accepted + rejected`` is asserted. Checks, in
the order a rejection reports them:

- ``time``: the time column parses with the mapping's format (ISO 8601 when none is given);
- ``future``: the period starts no later than now + ``future_tolerance``;
- ``grid``: the time sits on the mapping's reporting-period grid (TS 28.552 clause 3: one value
  per granularity period; 00:15 is on a 15 min grid, 00:07 is not);
- ``cell``: the cell id is present;
- ``number``: every mapped value is a finite number or empty (empty = missing: kept as null,
  counted per column, and left to :mod:`mobileai.data.quality` to impute); spreadsheet error
  strings such as ``#¡VALOR!`` or ``#DIV/0!`` are rejected;
- ``range``: converted values lie in the target unit's physical range (0..100 % ...) and any
  ``min``/``max`` of the mapping: a wrong declared unit shows up here;
- ``duplicate``: one row per (cell, period) in the file (the first valid row is kept);
- ``stored``: (cell, period) is not already in the store for this run, so ingesting the same
  file twice adds nothing.

Source columns that are neither mapped nor listed under ``ignore`` are named in the summary as
``unmapped_columns``. Rows out of time order are accepted (sorted on the way in) and counted.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from mobileai.data.mapping import Mapping, value_range
from mobileai.data.store import Store
from mobileai.data.timeutil import TIMESTAMP, ms_to_iso
from mobileai.errors import UserError
from mobileai.twin.counters import KPI_DEFINITIONS

CHECKS = ("time", "future", "grid", "cell", "number", "range", "duplicate", "stored")
_MISSING = {"", "na", "n/a", "nan", "null", "none"}


def read_source(path: Path, mapping: Mapping) -> pd.DataFrame:
    """The export as a DataFrame of text (CSV) or its own types (Parquet), in file order."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".txt", ".gz"):
            return pd.read_csv(
                path,
                dtype=str,
                keep_default_na=False,
                sep=mapping.csv.delimiter,
                encoding=mapping.csv.encoding,
            )
    except (UnicodeDecodeError, pd.errors.ParserError, OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot be read as {suffix[1:]} ({exc})") from None
    raise UserError(f"{path}: unsupported file type {suffix!r}; use .csv or .parquet")


def _parse_numbers(raw: pd.Series, decimal: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, missing mask, not-a-number mask) of a column."""
    if pd.api.types.is_numeric_dtype(raw):
        v = raw.to_numpy(dtype=np.float64, na_value=np.nan)
        return v, np.isnan(v), np.zeros(len(v), dtype=bool)
    text = raw.astype("string").fillna("").str.strip()
    missing = text.str.lower().isin(_MISSING).to_numpy()
    if decimal == ",":
        text = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    v = pd.to_numeric(text.mask(missing), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isnan(v) & ~missing
    return v, missing, bad


def _parse_times(raw: pd.Series, mapping: Mapping) -> np.ndarray:
    """Epoch ms (float, NaN where unparseable) of the time column."""
    spec = mapping.time
    if spec.format in ("epoch_s", "epoch_ms"):
        v, _, _ = _parse_numbers(raw, ".")
        return v * (1000.0 if spec.format == "epoch_s" else 1.0)
    text = raw.astype("string").fillna("").str.strip()
    if spec.time_of_day_only:
        ts = pd.to_datetime(text, format=spec.format, errors="coerce")
        tod = ts - ts.dt.normalize()
        ts = pd.Timestamp(spec.date) + tod
    elif spec.format:
        ts = pd.to_datetime(text, format=spec.format, errors="coerce")
    else:
        try:
            ts = pd.to_datetime(text, format="ISO8601", errors="coerce")
        except (ValueError, TypeError):  # mixed offsets
            ts = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    if ts.dt.tz is None:
        ts = ts.dt.tz_localize(spec.timezone, ambiguous="NaT", nonexistent="NaT")
    ts = ts.dt.tz_convert("UTC")
    nat = ts.isna().to_numpy()
    ms = ts.dt.as_unit("ms").fillna(pd.Timestamp(0, tz="UTC")).astype("int64").to_numpy().astype(np.float64)
    ms[nat] = np.nan
    return ms


class _Rejections:
    """Reasons per rejected row (row index -> [(check, reason)])."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.rows: dict[int, list[tuple[str, str]]] = {}

    def add(self, mask: np.ndarray, check: str, reason) -> None:
        for i in np.flatnonzero(mask):
            self.rows.setdefault(int(i), []).append((check, reason(int(i))))

    def mask(self) -> np.ndarray:
        m = np.zeros(self.n, dtype=bool)
        m[list(self.rows)] = True
        return m


def validate(
    df: pd.DataFrame, mapping: Mapping, *, now_ms: int | None = None
) -> tuple[pa.Table, pd.DataFrame, dict]:
    """Validate and convert an export: (accepted KPI table, rejected rows with ``check`` and
    ``reason``, summary). Pure: nothing is written."""
    missing = [c for c in dict.fromkeys(mapping.source_columns()) if c not in df.columns]
    if missing:
        raise UserError(
            f"mapped column(s) {missing} are not in the file; its columns: {', '.join(map(str, df.columns))}"
        )
    n = len(df)
    rej = _Rejections(n)
    period_ms = round(mapping.period_s * 1000)
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms

    raw_time = df[mapping.time.column]
    t = _parse_times(raw_time, mapping)
    bad_t = np.isnan(t)
    fmt = mapping.time.format or "ISO 8601"
    rej.add(bad_t, "time", lambda i: f"{mapping.time.column}: {raw_time.iloc[i]!r} does not parse as {fmt}")

    if mapping.cell.column:
        cells = df[mapping.cell.column].astype("string").fillna("").str.strip()
    else:
        cells = pd.Series([mapping.cell.value] * n, dtype="string")
    no_cell = (cells == "").to_numpy()
    cells = (mapping.cell.prefix + cells).to_numpy(dtype=object)

    if mapping.time.day_from_occurrence:
        tod = pd.Series(np.where(bad_t, -1, t))
        day = pd.DataFrame({"c": cells, "t": tod}).groupby(["c", "t"], sort=False).cumcount().to_numpy()
        t = t + day * 86_400_000.0
    t_ok = np.where(bad_t, 0, t).astype(np.int64)

    future = ~bad_t & (t_ok > now_ms + mapping.future_tolerance_s * 1000)
    rej.add(
        future,
        "future",
        lambda i: f"{mapping.time.column}: {ms_to_iso(t_ok[i])} is in the future (now {ms_to_iso(now_ms)})",
    )
    off_grid = ~bad_t & (t_ok % period_ms != 0)
    rej.add(
        off_grid,
        "grid",
        lambda i: f"{mapping.time.column}: {ms_to_iso(t_ok[i])} is not on the {mapping.period} grid",
    )
    rej.add(no_cell, "cell", lambda i: f"{mapping.cell.column}: empty cell id")

    values: dict[str, np.ndarray] = {}
    nulls: dict[str, int] = {}
    conversions: dict[str, str] = {}
    for target, (spec, unit, factor) in mapping.targets().items():
        raw = df[spec.column]
        v, miss, bad = _parse_numbers(raw, mapping.csv.decimal)
        v = v * factor
        if factor != 1.0:
            conversions[target] = f"{spec.column} [{spec.unit}] x {factor:g} -> {unit}"
        rej.add(
            bad,
            "number",
            lambda i, c=spec.column, r=raw, tg=target: f"{tg} ({c}): {r.iloc[i]!r} is not a number",
        )
        inf = np.isinf(v)
        rej.add(
            inf,
            "number",
            lambda i, c=spec.column, r=raw, tg=target: f"{tg} ({c}): {r.iloc[i]!r} is not finite",
        )
        lo, hi = value_range(unit) if target in KPI_DEFINITIONS else (None, None)
        lo = spec.min if spec.min is not None else lo
        hi = spec.max if spec.max is not None else hi
        out = np.zeros(n, dtype=bool)
        with np.errstate(invalid="ignore"):
            if lo is not None:
                out |= v < lo
            if hi is not None:
                out |= v > hi
        out &= np.isfinite(v)
        allowed = f"{'-inf' if lo is None else f'{lo:g}'}..{'inf' if hi is None else f'{hi:g}'} {unit}"
        rej.add(
            out,
            "range",
            lambda i, c=spec.column, tg=target, vv=v, a=allowed, s=spec: (
                f"{tg} ({c}): {vv[i]:g} {a.split()[-1]} is outside {a} "
                f"(source unit declared {s.unit!r}: wrong unit?)"
            ),
        )
        values[target] = np.where(inf, np.nan, v)
        nulls[target] = int(miss.sum())

    # duplicates among rows that pass every other check: the first in file order is kept
    valid = ~rej.mask()
    key = pd.DataFrame({"c": cells, "t": t_ok})
    dup = np.zeros(n, dtype=bool)
    dup[np.flatnonzero(valid)] = key[valid].duplicated(keep="first").to_numpy()
    first = key[valid].drop_duplicates(keep="first").reset_index().set_index(["c", "t"])["index"]
    rej.add(
        dup,
        "duplicate",
        lambda i: (
            f"duplicate of source row {int(first.loc[(cells[i], t_ok[i])]) + 1} "
            f"(cell {cells[i]}, {ms_to_iso(t_ok[i])})"
        ),
    )

    keep = ~rej.mask()
    order = np.lexsort((cells[keep].astype(str), t_ok[keep]))
    idx = np.flatnonzero(keep)[order]
    cols: dict[str, pa.Array] = {
        "period_start": pa.array(t_ok[idx], pa.int64()).cast(TIMESTAMP),
        "period_end": pa.array(t_ok[idx] + period_ms, pa.int64()).cast(TIMESTAMP),
        "cell_id": pa.array(cells[idx].astype(str), pa.string()),
    }
    fields = [
        pa.field("period_start", TIMESTAMP),
        pa.field("period_end", TIMESTAMP),
        pa.field("cell_id", pa.string()),
    ]
    for target, (spec, unit, _) in mapping.targets().items():
        cols[target] = pa.array(values[target][idx], pa.float64(), from_pandas=True)
        fields.append(
            pa.field(target, pa.float64(), metadata={"unit": unit, "source": f"{spec.column} [{spec.unit}]"})
        )
    accepted = pa.Table.from_arrays(list(cols.values()), schema=pa.schema(fields))

    # rows out of time order within a cell, in file order (informational)
    kt = pd.DataFrame({"c": cells[keep], "t": t_ok[keep]})
    back = int((kt.groupby("c", sort=False)["t"].diff() < 0).sum())

    rejected = _rejected_frame(df, rej)
    mapped = set(mapping.source_columns()) | set(mapping.ignore)
    summary = {
        "rows_read": n,
        "accepted": accepted.num_rows,
        "rejected": len(rejected),
        "rejected_by_check": dict(Counter(rejected["check"]).most_common()) if len(rejected) else {},
        "null_values": {k: v for k, v in nulls.items() if v},
        "unmapped_columns": [str(c) for c in df.columns if c not in mapped],
        "ignored_columns": [c for c in mapping.ignore if c in df.columns],
        "conversions": conversions,
        "rows_out_of_time_order": back,
        "cells": len(np.unique(cells[keep])) if keep.any() else 0,
        "start": ms_to_iso(int(t_ok[keep].min())) if keep.any() else None,
        "end": ms_to_iso(int(t_ok[keep].max()) + period_ms) if keep.any() else None,
        "period": mapping.period,
    }
    assert summary["accepted"] + summary["rejected"] == n, "every row is accepted or rejected"
    return accepted, rejected, summary


def _rejected_frame(df: pd.DataFrame, rej: _Rejections) -> pd.DataFrame:
    rows = sorted(rej.rows)
    out = df.iloc[rows].astype("string").copy()
    out.insert(0, "source_row", [r + 1 for r in rows])
    out.insert(1, "check", [rej.rows[r][0][0] for r in rows])
    out.insert(2, "reason", ["; ".join(reason for _, reason in rej.rows[r]) for r in rows])
    return out.reset_index(drop=True)


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    tmp.write_text(text)
    os.replace(tmp, path)


def ingest(
    path: Path,
    mapping: Mapping,
    store: Store | None,
    *,
    report_dir: Path | None = None,
    now_ms: int | None = None,
) -> dict:
    """Validate ``path`` with ``mapping``, append the accepted rows to ``store`` (table ``kpis``;
    None: validate only) and write ``rejected.csv`` and ``summary.json`` to ``report_dir``
    (default ``<store root>/_ingest/<run>/<file stem>-<UTC time>``). Returns the summary."""
    t0 = time.perf_counter()
    df = read_source(path, mapping)
    accepted, rejected, summary = validate(df, mapping, now_ms=now_ms)
    if store is not None and accepted.num_rows:
        lo = int(accepted["period_start"].cast(pa.int64()).to_numpy().min())
        hi = int(accepted["period_start"].cast(pa.int64()).to_numpy().max())
        try:
            stored = store.keys("kpis", lo, hi).to_pandas()
        except UserError:
            stored = pd.DataFrame({"cell_id": [], "t": []})
        if len(stored):
            acc = pd.DataFrame(
                {
                    "cell_id": accepted["cell_id"].to_numpy(zero_copy_only=False),
                    "t": accepted["period_start"].cast(pa.int64()).to_numpy(),
                }
            )
            hit = (
                acc.merge(stored.drop_duplicates(), on=["cell_id", "t"], how="left", indicator=True)[
                    "_merge"
                ].to_numpy()
                == "both"
            )
            if hit.any():
                again = accepted.filter(pa.array(hit)).to_pandas()
                extra = pd.DataFrame(
                    {
                        "source_row": pd.array([pd.NA] * len(again), dtype="Int64"),
                        "check": "stored",
                        "reason": [
                            f"cell {c} at {ts.isoformat()} is already in the store (run {store.run})"
                            for c, ts in zip(again["cell_id"], again["period_start"], strict=True)
                        ],
                    }
                )
                rejected = pd.concat(
                    [rejected, pd.concat([extra, again.astype("string")], axis=1)], ignore_index=True
                )
                accepted = accepted.filter(pa.array(~hit))
                summary["accepted"] = accepted.num_rows
                summary["rejected"] = len(rejected)
                summary["rejected_by_check"] = dict(Counter(rejected["check"]).most_common())
        store.append(accepted, "kpis")
    assert summary["accepted"] + summary["rejected"] == summary["rows_read"]
    if report_dir is None:
        base = store.root if store is not None else Path(path).parent
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        report_dir = (
            base / "_ingest" / (store.run if store is not None else "validate") / f"{Path(path).stem}-{stamp}"
        )
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    summary = {
        "file": str(path),
        "run": store.run if store is not None else None,
        "store": str(store.root) if store is not None else None,
        **summary,
        "seconds": round(time.perf_counter() - t0, 3),
        "rejected_csv": str(report_dir / "rejected.csv"),
        "summary_json": str(report_dir / "summary.json"),
    }
    _atomic_text(report_dir / "rejected.csv", rejected.to_csv(index=False))
    _atomic_text(report_dir / "summary.json", json.dumps(summary, indent=1))
    return summary
