"""KPI data quality: gaps, outliers, imputation of missing values, time alignment.

- **Gaps**: periods missing from a cell's series on the reporting-period grid (TS 28.552 clause 3:
  one value per granularity period), between the first and last period of the table.
- **Outliers**: the modified z-score of Iglewicz & Hoaglin ("How to Detect and Handle Outliers",
  ASQC 1993): ``0.6745 (r - median r) / MAD r`` > 3.5, on the relative residual ``r`` of each
  value from its cell's median at that time of day (relative, because KPI noise grows with the
  level), so the busy hour is not flagged for being busy.
- **Imputation**, all scored the same way (:func:`score_imputation`: hide a random share of the
  known values, impute, mean absolute error on the hidden ones):
  ``linear`` (baseline: linear interpolation in time within the cell, what a PM tool does),
  ``profile`` (baseline: the cell's median at that time of day) and ``lightgbm`` (learned:
  gradient-boosted trees, Ke et al., NeurIPS 2017, over the neighbouring known values in time,
  the cell's time-of-day level and the other cells' values in the same period, i.e. spatial
  and temporal neighbours). Features of a value never include the value itself, so the model
  trains on the known values exactly as it is applied to the missing ones.
- **Alignment** of granularities (:func:`align`): periods are merged onto a coarser grid; KPIs
  in count, Mbit, kWh or J units are summed, the others (rates, shares, levels) averaged, as the
  TS 28.552 / TS 28.554 aggregation of a measurement over time does; ``samples`` counts the
  source periods behind each row so partial periods are visible.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from mobileai.data.timeutil import TIMESTAMP, parse_period
from mobileai.errors import UserError
from mobileai.twin.counters import KPI_DEFINITIONS

METHODS = ("linear", "profile", "lightgbm")
#: Units whose values add up over time (a volume, a count, an energy); others are averaged.
SUMMED_UNITS = frozenset({"count", "Mbit", "kWh", "J"})
MODIFIED_Z = 3.5


def _kpi_columns(table: pa.Table) -> list[str]:
    return [f.name for f in table.schema if pa.types.is_floating(f.type)]


def _unit(table: pa.Table, name: str) -> str:
    meta = table.schema.field(name).metadata or {}
    if b"unit" in meta:
        return meta[b"unit"].decode()
    return KPI_DEFINITIONS.get(name, ("-",))[0]


@dataclass
class Grid:
    """One KPI as a dense [periods x cells] matrix on the reporting-period grid (NaN: missing)."""

    times: np.ndarray  # epoch ms, [T]
    cells: list[str]
    values: np.ndarray  # [T, C]
    period_ms: int

    @property
    def slot(self) -> np.ndarray:
        """Index of each period within its day, [T]."""
        return ((self.times % 86_400_000) // self.period_ms).astype(np.int64)


def infer_period_ms(table: pa.Table) -> int:
    """The reporting period: ``period_end - period_start`` when present, else the most common step."""
    if "period_end" in table.column_names and table.num_rows:
        d = (
            table["period_end"].cast(pa.int64()).to_numpy()
            - table["period_start"].cast(pa.int64()).to_numpy()
        )
        vals, counts = np.unique(d, return_counts=True)
        return int(vals[np.argmax(counts)])
    t = np.unique(table["period_start"].cast(pa.int64()).to_numpy())
    if len(t) < 2:
        raise UserError("cannot infer the reporting period from fewer than two periods")
    vals, counts = np.unique(np.diff(t), return_counts=True)
    return int(vals[np.argmax(counts)])


def to_grid(table: pa.Table, kpi: str, period_ms: int | None = None) -> Grid:
    """Pivot a KPI table to a dense grid over [first, last] period of the table."""
    if kpi not in table.column_names:
        raise UserError(f"no KPI column {kpi!r}; columns: {', '.join(_kpi_columns(table))}")
    period_ms = period_ms or infer_period_ms(table)
    t = table["period_start"].cast(pa.int64()).to_numpy()
    cells, ci = np.unique(table["cell_id"].to_numpy(zero_copy_only=False).astype(str), return_inverse=True)
    t0 = int(t.min())
    ti = (t - t0) // period_ms
    T = int(ti.max()) + 1
    values = np.full((T, len(cells)), np.nan)
    values[ti, ci] = table[kpi].to_numpy(zero_copy_only=False).astype(np.float64)
    return Grid(t0 + np.arange(T, dtype=np.int64) * period_ms, list(cells), values, period_ms)


# ---- gaps and outliers
def find_gaps(table: pa.Table, period_ms: int | None = None) -> pd.DataFrame:
    """One row per run of missing periods per cell: cell_id, gap_start, gap_end, missing_periods."""
    period_ms = period_ms or infer_period_ms(table)
    t = table["period_start"].cast(pa.int64()).to_numpy()
    lo, hi = int(t.min()), int(t.max())
    df = pd.DataFrame({"cell_id": table["cell_id"].to_numpy(zero_copy_only=False), "t": t})
    rows = []
    for cell, g in df.groupby("cell_id", sort=True):
        ts = np.unique(g["t"].to_numpy())
        edges = np.concatenate([[lo - period_ms], ts, [hi + period_ms]])
        step = np.diff(edges)
        for k in np.flatnonzero(step > period_ms):
            start, end = int(edges[k] + period_ms), int(edges[k + 1])
            rows.append((cell, start, end, (end - start) // period_ms))
    out = pd.DataFrame(rows, columns=["cell_id", "gap_start", "gap_end", "missing_periods"])
    for c in ("gap_start", "gap_end"):
        out[c] = pd.to_datetime(out[c], unit="ms", utc=True)
    return out


def find_outliers(
    table: pa.Table, kpis: list[str] | None = None, threshold: float = MODIFIED_Z
) -> pd.DataFrame:
    """Values whose modified z-score (on the residual from the cell's time-of-day median)
    exceeds ``threshold``: cell_id, period_start, kpi, value, expected, score."""
    period_ms = infer_period_ms(table)
    frames = []
    for kpi in kpis or _kpi_columns(table):
        g = to_grid(table, kpi, period_ms)
        prof = _profile(g.values, g.slot, loo=False)
        with _Quiet():
            floor = 0.1 * np.nanmedian(np.abs(g.values), axis=0)
        r = (g.values - prof) / np.maximum(np.abs(prof), np.where(floor > 0, floor, 1.0))
        with np.errstate(invalid="ignore", divide="ignore"), _Quiet():
            med = np.nanmedian(r, axis=0)
            mad = np.nanmedian(np.abs(r - med), axis=0)
            score = 0.6745 * (r - med) / np.where(mad > 0, mad, np.nan)
        hit = np.argwhere(np.abs(np.nan_to_num(score)) > threshold)
        if len(hit):
            frames.append(
                pd.DataFrame(
                    {
                        "cell_id": [g.cells[c] for c in hit[:, 1]],
                        "period_start": pd.to_datetime(g.times[hit[:, 0]], unit="ms", utc=True),
                        "kpi": kpi,
                        "value": g.values[hit[:, 0], hit[:, 1]],
                        "expected": prof[hit[:, 0], hit[:, 1]],
                        "score": score[hit[:, 0], hit[:, 1]],
                    }
                )
            )
    cols = ["cell_id", "period_start", "kpi", "value", "expected", "score"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


# ---- imputation
def _profile(v: np.ndarray, slot: np.ndarray, loo: bool) -> np.ndarray:
    """Per cell, the median (``loo=False``) or leave-one-out mean (``loo=True``) at each slot of
    the day; NaN where the cell has no (other) value at that slot."""
    out = np.full_like(v, np.nan)
    for s in np.unique(slot):
        rows = slot == s
        block = v[rows]
        if loo:
            known = np.isfinite(block)
            total = np.nansum(block, axis=0)
            count = known.sum(axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[rows] = np.where(known, (total - np.nan_to_num(block)) / (count - 1), total / count)
        else:
            with np.errstate(all="ignore"), _Quiet():
                out[rows] = np.nanmedian(block, axis=0)
    return out


class _Quiet:
    def __enter__(self) -> None:
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *a: object) -> None:
        self._w.__exit__(*a)


def _neighbours_in_time(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per value: previous and next known value of the same cell (strictly before/after) and
    their distances in periods (NaN where none)."""
    T, C = v.shape
    idx = np.arange(T, dtype=np.float64)[:, None].repeat(C, axis=1)
    known_idx = np.where(np.isfinite(v), idx, np.nan)
    prev_i = pd.DataFrame(known_idx).shift(1).ffill().to_numpy()
    next_i = pd.DataFrame(known_idx).shift(-1).bfill().to_numpy()
    prev_v = pd.DataFrame(v).shift(1).ffill().to_numpy()
    next_v = pd.DataFrame(v).shift(-1).bfill().to_numpy()
    return prev_v, next_v, idx - prev_i, next_i - idx


def _linear(v: np.ndarray) -> np.ndarray:
    """Linear interpolation in time of each value from its known neighbours (itself excluded);
    one-sided at the edges."""
    prev_v, next_v, dp, dn = _neighbours_in_time(v)
    with np.errstate(invalid="ignore"):
        est = prev_v + (next_v - prev_v) * dp / (dp + dn)
    est = np.where(np.isfinite(est), est, np.where(np.isfinite(prev_v), prev_v, next_v))
    return est


def _features(g: Grid, v: np.ndarray) -> np.ndarray:
    """[T, C, F] features of every value, none of which uses the value itself."""
    T, C = v.shape
    prev_v, next_v, dp, dn = _neighbours_in_time(v)
    lin = _linear(v)
    prof = _profile(v, g.slot, loo=True)
    known = np.isfinite(v)
    total, count = np.nansum(v, axis=1, keepdims=True), known.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        others = np.where(known, (total - np.nan_to_num(v)) / (count - 1), total / count)
        others_prof = np.nanmean(np.where(np.isfinite(prof), prof, np.nan), axis=1, keepdims=True)
    with _Quiet():
        level = np.nanmedian(v, axis=0, keepdims=True).repeat(T, axis=0)
    day = 2 * np.pi * (g.times % 86_400_000) / 86_400_000
    week = ((g.times // 86_400_000 + 3) % 7).astype(np.float64)  # 1970-01-01 was a Thursday
    cols = [
        prev_v, next_v, np.minimum(dp, 10_000), np.minimum(dn, 10_000), lin, prof, others,
        others_prof.repeat(C, axis=1), level,
        np.sin(day)[:, None].repeat(C, axis=1), np.cos(day)[:, None].repeat(C, axis=1),
        week[:, None].repeat(C, axis=1), np.arange(C, dtype=np.float64)[None, :].repeat(T, axis=0),
    ]  # fmt: skip
    return np.stack(cols, axis=-1)


def impute_grid(g: Grid, method: str, seed: int = 0) -> np.ndarray:
    """``g.values`` with its NaNs filled by ``method`` (known values are kept as they are)."""
    v = g.values
    if method == "linear":
        est = _linear(v)
        est = np.where(np.isfinite(est), est, _profile(v, g.slot, loo=False))
    elif method == "profile":
        est = _profile(v, g.slot, loo=False)
        est = np.where(np.isfinite(est), est, _linear(v))
    elif method == "lightgbm":
        import lightgbm as lgb

        X = _features(g, v)
        known = np.isfinite(v)
        F = X.shape[-1]
        model = lgb.LGBMRegressor(
            n_estimators=300, learning_rate=0.05, num_leaves=31, min_child_samples=20,
            subsample=0.8, subsample_freq=1, colsample_bytree=0.9, random_state=seed, n_jobs=1, verbose=-1,
        )  # fmt: skip
        model.fit(X[known].reshape(-1, F), v[known], categorical_feature=[F - 1])
        est = np.full_like(v, np.nan)
        miss = ~known
        if miss.any():
            est[miss] = model.predict(X[miss].reshape(-1, F))
    else:
        raise UserError(f"imputation method {method!r} is not known; methods: {', '.join(METHODS)}")
    est = np.where(np.isfinite(est), est, np.nanmean(v) if np.isfinite(v).any() else 0.0)
    return np.where(np.isfinite(v), v, est)


def impute(table: pa.Table, kpis: list[str] | None = None, method: str = "linear") -> pa.Table:
    """The KPI table on its full grid (a row for every cell and period, missing periods added),
    with missing KPI values filled by ``method`` and a boolean ``imputed.<kpi>`` column each."""
    period_ms = infer_period_ms(table)
    kpis = kpis or _kpi_columns(table)
    out: dict[str, pa.Array] = {}
    for kpi in kpis:
        g = to_grid(table, kpi, period_ms)
        filled = impute_grid(g, method)
        if not out:
            T, C = g.values.shape
            out["period_start"] = pa.array(np.repeat(g.times, C), pa.int64()).cast(TIMESTAMP)
            out["period_end"] = pa.array(np.repeat(g.times + period_ms, C), pa.int64()).cast(TIMESTAMP)
            out["cell_id"] = pa.array(g.cells * T, pa.string())
        out[kpi] = pa.array(filled.reshape(-1), pa.float64())
        out[f"imputed.{kpi}"] = pa.array(~np.isfinite(g.values.reshape(-1)))
    return pa.table(out)


def score_imputation(
    table: pa.Table,
    kpis: list[str] | None = None,
    holdout: float = 0.1,
    seed: int = 0,
    methods: tuple[str, ...] = METHODS,
    block: int = 1,
) -> list[dict]:
    """Hide ``holdout`` of the known values (in runs of ``block`` periods), impute them with each
    method, and report the MAE on the hidden values (and MAE / mean |value|) with the wall time."""
    if not 0 < holdout < 0.9:
        raise UserError(f"holdout: {holdout} is not allowed; 0 < holdout < 0.9")
    rng = np.random.default_rng(seed)
    period_ms = infer_period_ms(table)
    rows = []
    for kpi in kpis or _kpi_columns(table):
        g = to_grid(table, kpi, period_ms)
        known = np.isfinite(g.values)
        starts = rng.random(g.values.shape) < holdout / block
        hide = np.zeros_like(known)
        for k in range(block):
            hide[k:] |= starts[: starts.shape[0] - k]
        hide &= known
        if hide.sum() < 10:
            continue
        masked = Grid(g.times, g.cells, np.where(hide, np.nan, g.values), period_ms)
        truth = g.values[hide]
        scale = float(np.mean(np.abs(truth))) or 1.0
        for m in methods:
            t0 = time.perf_counter()
            est = impute_grid(masked, m, seed=seed)[hide]
            mae = float(np.mean(np.abs(est - truth)))
            rows.append(
                {
                    "kpi": kpi,
                    "method": m,
                    "hidden": int(hide.sum()),
                    "mae": mae,
                    "nmae": mae / scale,
                    "seconds": round(time.perf_counter() - t0, 3),
                }
            )
    return rows


# ---- alignment
def align(table: pa.Table, period: str | float) -> pa.Table:
    """Merge a KPI table onto a coarser reporting period (sum for count/volume/energy KPIs, mean
    for the others); ``samples`` is the number of source periods in each row."""
    period_ms = round(parse_period(period) * 1000)
    src_ms = infer_period_ms(table) if table.num_rows else period_ms
    if period_ms < src_ms or period_ms % src_ms:
        raise UserError(
            f"align: {period} is not a whole multiple of the table's period ({src_ms / 1000:g} s); "
            "alignment merges periods, it does not split them"
        )
    kpis = _kpi_columns(table)
    df = pd.DataFrame(
        {
            "period_start": table["period_start"].cast(pa.int64()).to_numpy() // period_ms * period_ms,
            "cell_id": table["cell_id"].to_numpy(zero_copy_only=False),
        }
    )
    for k in kpis:
        df[k] = table[k].to_numpy(zero_copy_only=False)
    agg = {k: ("sum" if _unit(table, k) in SUMMED_UNITS else "mean") for k in kpis}
    grouped = df.groupby(["period_start", "cell_id"], sort=True)
    res = grouped.agg(agg)
    res["samples"] = grouped.size()
    res = res.reset_index()
    fields = [
        pa.field("period_start", TIMESTAMP),
        pa.field("period_end", TIMESTAMP),
        pa.field("cell_id", pa.string()),
    ]
    arrays = [
        pa.array(res["period_start"].to_numpy(), pa.int64()).cast(TIMESTAMP),
        pa.array(res["period_start"].to_numpy() + period_ms, pa.int64()).cast(TIMESTAMP),
        pa.array(res["cell_id"].astype(str).to_numpy(), pa.string()),
    ]
    for k in kpis:
        fields.append(pa.field(k, pa.float64(), metadata={"unit": _unit(table, k), "aggregation": agg[k]}))
        arrays.append(pa.array(res[k].to_numpy(), pa.float64(), from_pandas=True))
    fields.append(pa.field("samples", pa.int64()))
    arrays.append(pa.array(res["samples"].to_numpy(), pa.int64()))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
