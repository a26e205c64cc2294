"""Ground truth: which fault, if any, covers each cell-period of a KPI table.

The twin logs every injected fault in its ``events`` table (``category == "fault"``, ``kind``,
``cell_id``, ``start``/``end``; see :mod:`mobileai.twin.faults`). A KPI row (cell, period) is
covered by a fault on the same cell whose interval overlaps the period; :func:`period_labels`
returns the covered share of the period and the kind with the largest overlap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mobileai.errors import UserError

FAULT_COLUMNS = ("kind", "cell_id", "start", "end")


def fault_events(events: pd.DataFrame) -> pd.DataFrame:
    """The fault rows of an events table, with ``start``/``end`` as UTC timestamps."""
    missing = [c for c in FAULT_COLUMNS if c not in events]
    if missing:
        raise UserError(f"events: missing column(s) {missing}; fault labels need {list(FAULT_COLUMNS)}")
    f = events
    if "category" in f:
        f = f[f["category"] == "fault"]
    f = f.loc[:, [c for c in f.columns if c in (*FAULT_COLUMNS, "magnitude", "source")]].copy()
    for c in ("start", "end"):
        f[c] = pd.to_datetime(f[c], utc=True)
    return f.dropna(subset=["start", "end", "cell_id"]).reset_index(drop=True)


def period_labels(kpis: pd.DataFrame, faults: pd.DataFrame) -> pd.DataFrame:
    """Per KPI row: ``overlap`` (0..1 share of the period under any fault of its cell),
    ``kind`` (kind with the largest overlap, None if none) and ``fault`` (its position in ``faults``,
    -1 if none). Same index as ``kpis``."""
    ps = _naive_ms(kpis["period_start"])
    pe = _naive_ms(kpis["period_end"]) if "period_end" in kpis else None
    if pe is None:
        step = np.median(np.diff(np.unique(ps))) if len(np.unique(ps)) > 1 else np.timedelta64(900, "s")
        pe = ps + step
    length = (pe - ps).astype("timedelta64[ms]").astype(np.float64)
    cells = kpis["cell_id"].astype(str).to_numpy()
    overlap = np.zeros(len(kpis))
    best = np.zeros(len(kpis))
    fault = np.full(len(kpis), -1, dtype=np.int64)
    by_cell = pd.Series(np.arange(len(kpis))).groupby(cells).indices
    for j, (_, f) in enumerate(faults.iterrows()):
        rows = by_cell.get(str(f["cell_id"]))
        if rows is None:
            continue
        s = np.datetime64(f["start"].tz_convert(None).to_datetime64(), "ms")
        e = np.datetime64(f["end"].tz_convert(None).to_datetime64(), "ms")
        lo = np.maximum(ps[rows], s)
        hi = np.minimum(pe[rows], e)
        ov = np.clip((hi - lo).astype(np.float64), 0, None) / np.maximum(length[rows], 1.0)
        overlap[rows] = np.minimum(1.0, overlap[rows] + ov)
        better = ov > best[rows]
        best[rows[better]] = ov[better]
        fault[rows[better]] = int(j)
    names = faults["kind"].astype(str).tolist() if len(faults) else []
    kind = pd.Series([names[j] if j >= 0 else None for j in fault], index=kpis.index, dtype=object)
    return pd.DataFrame({"overlap": overlap, "kind": kind, "fault": fault}, index=kpis.index)


def _naive_ms(ts: pd.Series) -> np.ndarray:
    """UTC timestamps as naive datetime64[ms] (numpy has no time zones)."""
    return pd.to_datetime(ts, utc=True).dt.tz_convert(None).to_numpy().astype("datetime64[ms]")
