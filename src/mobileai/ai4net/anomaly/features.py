"""Learned normal behaviour per cell and time of day, and the deviation features built on it.

A KPI is abnormal relative to what *this* cell usually does at *this* time of day, not against a
network-wide fixed threshold. :class:`NormalProfile` learns, from fault-free periods only, a
robust location (median) per (cell, hour of day, KPI), pooled over a circular window of
neighbouring hours so a few days of history give enough samples, and a robust scale
(1.4826 x median absolute deviation of the residuals) per (cell, KPI), floored at a quarter of
the KPI's typical scale across cells (for KPIs whose MAD is 0, e.g. percentiles read from a
histogram, the typical scale comes from the mean absolute residual). Heavy-tailed KPIs
(throughput, volume, counts, UEs, energy) are compared on ``log1p`` scale, ratios and dB as they
are. The deviation of a period is the robust z-score ``(x - location) / scale`` per KPI, the
"per-feature reconstruction error" of a seasonal baseline (cf. Chandola et al., Anomaly
detection: a survey, ACM CSUR 2009, 5.2; Hochenbaum et al., robust seasonal ESD, 2017).

:func:`neighbour_features` adds the topology context the root-cause step needs: for every cell
and period the weighted mean, minimum and maximum of its neighbours' z-scores, so a model can tell
a faulty cell from the neighbours that absorb its users.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mobileai.ai4net.topology import NeighbourGraph
from mobileai.errors import UserError

#: Key columns of a KPI table (twin ``kpis`` table or a user's export).
KEY_COLUMNS = ("period_start", "cell_id")
#: Non-KPI columns that may be present and are never modelled.
NON_KPI_COLUMNS = ("period_start", "period_end", "cell_id", "site", "cell_type")
#: Units (docs/kpis.md) compared on log1p scale: non-negative and heavy-tailed.
LOG_UNITS = frozenset({"kbit/s", "Mbit/s", "Mbit", "count", "UEs", "W", "kWh", "J", "ms"})
#: Robust scale floor, as a share of the KPI's median scale across cells (avoids z blow-up on
#: cells whose KPI is almost constant in the training days).
SCALE_FLOOR_SHARE = 0.25
MAD_TO_SIGMA = 1.4826
MEAN_ABS_TO_SIGMA = 1.2533


def kpi_columns(df: pd.DataFrame) -> list[str]:
    """Numeric KPI columns of a KPI table (everything but keys and labels)."""
    return [
        c
        for c in df.columns
        if c not in NON_KPI_COLUMNS and c != "label" and pd.api.types.is_numeric_dtype(df[c])
    ]


def log_scaled(columns: Sequence[str]) -> list[str]:
    """Which of ``columns`` are compared on log1p scale (by their unit in KPI_DEFINITIONS)."""
    from mobileai.twin.counters import KPI_DEFINITIONS

    return [c for c in columns if c in KPI_DEFINITIONS and KPI_DEFINITIONS[c][0] in LOG_UNITS]


def check_kpi_table(df: pd.DataFrame, source: str = "kpis") -> None:
    """UserError naming what is missing when ``df`` is not a usable KPI table."""
    missing = [c for c in KEY_COLUMNS if c not in df]
    if missing:
        raise UserError(
            f"{source}: missing column(s) {missing}; a KPI table needs {list(KEY_COLUMNS)} and numeric "
            "KPI columns (docs/kpis.md)"
        )
    if not pd.api.types.is_datetime64_any_dtype(df["period_start"]):
        raise UserError(f"{source}: period_start must be a timestamp column, got {df['period_start'].dtype}")
    if not kpi_columns(df):
        raise UserError(f"{source}: no numeric KPI columns found")


def hour_of_day(ts: pd.Series) -> np.ndarray:
    """Hour of day 0..23 of each timestamp."""
    return ts.dt.hour.to_numpy(dtype=np.int64)


@dataclass
class NormalProfile:
    """Per (cell, hour, KPI) robust location and per (cell, KPI) robust scale of normal periods."""

    kpis: list[str]
    log_kpis: list[str]
    location: pd.DataFrame  # index (cell_id, hour), columns kpis (transformed scale)
    scale: pd.DataFrame  # index cell_id, columns kpis
    pooled_location: pd.DataFrame  # index hour: median over cells, for cells not seen in training
    pooled_scale: pd.Series  # index kpis
    window_h: int = 1

    @classmethod
    def fit(cls, kpis: pd.DataFrame, normal: np.ndarray | None = None, window_h: int = 1) -> NormalProfile:
        """Learn the profile from the rows of ``kpis`` where ``normal`` is True (all when None).

        ``window_h``: the location at hour h pools hours h - window_h .. h + window_h (circular).
        """
        check_kpi_table(kpis)
        if not 0 <= window_h <= 11:
            raise UserError(f"window_h: {window_h} is not allowed; use 0..11 hours")
        cols = kpi_columns(kpis)
        logs = log_scaled(cols)
        df = kpis if normal is None else kpis[np.asarray(normal, dtype=bool)]
        if df.empty:
            raise UserError("kpis: no normal (fault-free) rows to learn the normal profile from")
        x = _transform(df, cols, logs)
        x["cell_id"] = df["cell_id"].to_numpy()
        hours = hour_of_day(df["period_start"])
        shifted = []
        for dh in range(-window_h, window_h + 1):
            part = x.copy()
            part["hour"] = (hours + dh) % 24
            shifted.append(part)
        pooled = pd.concat(shifted, ignore_index=True)
        location = pooled.groupby(["cell_id", "hour"])[cols].median()
        pooled_location = pooled.groupby("hour")[cols].median()
        # residual scale per cell, against the cell's own hourly location
        own = x.assign(hour=hours)
        ref = location.reindex(pd.MultiIndex.from_arrays([own["cell_id"], own["hour"]]))
        resid = own[cols].to_numpy() - ref.to_numpy()
        res = pd.DataFrame(np.abs(resid), columns=cols)
        res["cell_id"] = own["cell_id"].to_numpy()
        scale = res.groupby("cell_id")[cols].median() * MAD_TO_SIGMA
        # KPIs read from a histogram (SINR percentiles in 2 dB bins) or small integer counts can
        # have a MAD of 0; the mean absolute residual (x 1.2533 = sigma for a normal law) is 0
        # only for a constant KPI, so it bounds the floor from below.
        typical = np.maximum(
            scale.median(axis=0).fillna(0.0), res[cols].mean(axis=0).fillna(0.0) * MEAN_ABS_TO_SIGMA
        )
        floor = np.maximum(typical * SCALE_FLOOR_SHARE, 1e-3)
        scale = scale.fillna(typical).clip(lower=floor, axis=1)
        pooled_scale = typical.clip(lower=floor)
        return cls(cols, logs, location, scale, pooled_location, pooled_scale, window_h)

    def zscores(self, kpis: pd.DataFrame) -> pd.DataFrame:
        """Robust z-score per row and KPI (NaN where the KPI is not reported), same row order."""
        check_kpi_table(kpis)
        missing = [c for c in self.kpis if c not in kpis]
        if missing:
            raise UserError(f"kpis: missing KPI column(s) the profile was learned on: {missing[:5]}")
        x = _transform(kpis, self.kpis, self.log_kpis).to_numpy()
        hours = hour_of_day(kpis["period_start"])
        cells = kpis["cell_id"].astype(str).to_numpy()
        idx = pd.MultiIndex.from_arrays([cells, hours])
        loc = self.location[self.kpis].reindex(idx).to_numpy()
        pooled = self.pooled_location[self.kpis].reindex(hours).to_numpy()
        loc = np.where(np.isnan(loc), pooled, loc)
        scale = self.scale[self.kpis].reindex(cells).to_numpy()
        scale = np.where(np.isnan(scale), self.pooled_scale.reindex(self.kpis).to_numpy()[None, :], scale)
        z = (x - loc) / scale
        return pd.DataFrame(z, columns=self.kpis, index=kpis.index)

    def expected(self, cell_id: str, hour: int) -> dict[str, float]:
        """The learned normal value of each KPI for ``cell_id`` at ``hour`` (original units)."""
        key = (cell_id, int(hour))
        row = self.location.loc[key] if key in self.location.index else self.pooled_location.loc[int(hour)]
        out = {}
        for k in self.kpis:
            v = float(row[k])
            out[k] = math.expm1(v) if k in self.log_kpis else v
        return out

    # ---- persistence (pandas frames <-> plain dict, for JSON / Parquet files)
    def to_frames(self) -> dict[str, pd.DataFrame]:
        return {
            "location": self.location.reset_index(),
            "scale": self.scale.reset_index(),
            "pooled_location": self.pooled_location.reset_index(),
            "pooled_scale": self.pooled_scale.rename("scale").rename_axis("kpi").reset_index(),
        }

    @classmethod
    def from_frames(
        cls, frames: dict[str, pd.DataFrame], kpis: list[str], log_kpis: list[str], window_h: int
    ) -> NormalProfile:
        return cls(
            kpis,
            log_kpis,
            frames["location"].set_index(["cell_id", "hour"])[kpis],
            frames["scale"].set_index("cell_id")[kpis],
            frames["pooled_location"].set_index("hour")[kpis],
            frames["pooled_scale"].set_index("kpi")["scale"].reindex(kpis),
            window_h,
        )


def _transform(df: pd.DataFrame, cols: list[str], logs: list[str]) -> pd.DataFrame:
    x = df[cols].astype(np.float64).reset_index(drop=True)
    for c in logs:
        x[c] = np.log1p(x[c].clip(lower=0.0))
    return x


def neighbour_features(
    z: pd.DataFrame, kpis: pd.DataFrame, graph: NeighbourGraph | None, columns: Sequence[str]
) -> pd.DataFrame:
    """Weighted mean, min and max of each neighbour's z-score for ``columns`` per row.

    ``kpis`` gives the (period_start, cell_id) of each row of ``z``. Cells the graph does not know,
    or a missing graph (no cell geometry), give NaN features, which LightGBM treats as missing.
    """
    cols = list(columns)
    out_cols = [f"nb_{s}:{c}" for s in ("mean", "min", "max") for c in cols]
    if graph is None:
        return pd.DataFrame(np.nan, index=z.index, columns=out_cols)
    n = graph.n_cells
    cell_pos = kpis["cell_id"].astype(str).map(graph.positions).to_numpy()
    known = ~pd.isna(cell_pos)
    period_codes, periods = pd.factorize(kpis["period_start"])
    p = len(periods)
    vals = np.full((p, n, len(cols)), np.nan)
    ci = cell_pos[known].astype(np.int64)
    vals[period_codes[known], ci] = z.loc[known, cols].to_numpy()
    mean = np.full_like(vals, np.nan)
    mn = np.full_like(vals, np.nan)
    mx = np.full_like(vals, np.nan)
    for i in range(n):
        nb = list(graph.neighbours[i])
        if not nb:
            continue
        w = np.asarray(graph.weights[i])[None, :, None]
        v = vals[:, nb, :]
        ok = ~np.isnan(v)
        wsum = (w * ok).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean[:, i] = np.where(wsum > 0, np.nansum(w * np.nan_to_num(v), axis=1) / wsum, np.nan)
        any_ok = ok.any(axis=1)
        mn[:, i] = np.where(any_ok, np.nanmin(np.where(ok, v, np.inf), axis=1), np.nan)
        mx[:, i] = np.where(any_ok, np.nanmax(np.where(ok, v, -np.inf), axis=1), np.nan)
    res = np.full((len(z), 3 * len(cols)), np.nan)
    rows = np.flatnonzero(known)
    res[rows] = np.concatenate([a[period_codes[known], ci] for a in (mean, mn, mx)], axis=1)
    return pd.DataFrame(res, columns=out_cols, index=z.index)
