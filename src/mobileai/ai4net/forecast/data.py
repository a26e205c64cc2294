"""Series frames: every source (twin KPI tables, a user's KPI export, the Barcelona LTE PDCCH traces,
the Milan Telecom Italia grid) as one regular ``[time x series]`` array with a neighbour graph.

- Twin / user KPIs: one series per ``cell_id`` of a KPI table in the schema of docs/kpis.md
  (TS 28.552 counter names); periods are aggregated by summing additive counters (volumes, counts,
  energies) and averaging the others (rates, percentages, means).
- Barcelona: Perifanis et al., "Federated learning for 5G base station traffic forecasting",
  Computer Networks 2023 (data of the CTTC SUPERCOM 2022 challenge): one file per site, 2-minute
  rows, ``<site>_test.csv`` continues ``<site>.csv`` in time.
- Milan: Telecom Italia Big Data Challenge (Barlacchi et al., Sci Data 2015) as packaged by the DGRN
  repository: 10-minute internet activity of 5 x 5 grid squares and their adjacency matrix.

Neighbours of cells come from geometry (:func:`neighbours_from_geometry`): the k nearest other cells,
weighted by inverse distance, as the usual first-tier neighbour list of a macro layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from mobileai.errors import UserError

#: Units whose values add up over time (a period's value is the sum of its sub-periods).
ADDITIVE_UNITS = frozenset({"Mbit", "count", "kWh", "J", "bytes"})
BARCELONA_SITES = ("ElBorn", "LesCorts", "PobleSec")
BARCELONA_COLUMNS = ("down", "up", "rnti_count", "rb_down", "rb_up")
MILAN_STEP = pd.Timedelta(minutes=10)
#: The Milan files carry no timestamps; the Telecom Italia challenge starts 2013-11-01 00:00 (CET).
MILAN_START = pd.Timestamp("2013-11-01 00:00", tz="UTC")


@dataclass
class SeriesFrame:
    """Regular time grid ``times`` (length T) x ``names`` (N series); ``values[T, N]`` float64 with NaN
    for missing; ``adjacency[N, N]`` non-negative neighbour weights (0 on the diagonal)."""

    values: np.ndarray
    times: pd.DatetimeIndex
    names: list[str]
    step: pd.Timedelta
    adjacency: np.ndarray = field(default=None)  # type: ignore[assignment]
    additive: bool = True

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float64)
        if self.values.ndim != 2:
            raise ValueError(f"values must be [time x series], got shape {self.values.shape}")
        t, n = self.values.shape
        if len(self.times) != t or len(self.names) != n:
            raise ValueError(
                f"values {self.values.shape} do not match {len(self.times)} times x {len(self.names)} names"
            )
        if self.adjacency is None:
            self.adjacency = np.zeros((n, n))
        self.adjacency = np.asarray(self.adjacency, dtype=np.float64)
        if self.adjacency.shape != (n, n):
            raise ValueError(f"adjacency must be {n} x {n}, got {self.adjacency.shape}")
        np.fill_diagonal(self.adjacency, 0.0)

    @property
    def steps_per_day(self) -> int:
        return round(pd.Timedelta(days=1) / self.step)

    @property
    def steps_per_hour(self) -> int:
        return max(1, round(pd.Timedelta(hours=1) / self.step))

    def select(self, names: list[str]) -> SeriesFrame:
        """The frame restricted to ``names`` (the neighbour graph restricted likewise)."""
        idx = [self.names.index(n) for n in names]
        return SeriesFrame(
            self.values[:, idx],
            self.times,
            list(names),
            self.step,
            self.adjacency[np.ix_(idx, idx)],
            self.additive,
        )

    def window(self, start: int, end: int) -> SeriesFrame:
        """Time steps ``start .. end - 1``."""
        return SeriesFrame(
            self.values[start:end],
            self.times[start:end],
            self.names,
            self.step,
            self.adjacency,
            self.additive,
        )


def parse_period(text: str) -> pd.Timedelta:
    """'2m', '10min', '15m', '1h', '24h', '1d' or plain seconds -> Timedelta (positive)."""
    t = text.strip().lower()
    units = {"s": "s", "m": "min", "min": "min", "h": "h", "d": "D"}
    num = t.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = t[len(num) :] or "s"
    if unit not in units:
        raise UserError(f"period {text!r}: unknown unit {unit!r}; use s, m/min, h or d (e.g. 15m, 1h, 24h)")
    try:
        value = float(num)
    except ValueError:
        raise UserError(f"period {text!r}: expected a number and a unit such as 15m, 1h or 24h") from None
    if value <= 0:
        raise UserError(f"period {text!r}: must be positive")
    return pd.Timedelta(value, unit=units[unit])


def aggregate(frame: SeriesFrame, step: pd.Timedelta) -> SeriesFrame:
    """Resample to a coarser ``step`` (a multiple of the frame's): sum for additive series, mean
    otherwise. A coarse period with any missing sub-period is missing; incomplete edge periods are
    dropped."""
    if step == frame.step:
        return frame
    ratio = step / frame.step
    if ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
        raise UserError(f"cannot aggregate {frame.step} steps to {step}: not a whole multiple")
    df = pd.DataFrame(frame.values, index=frame.times)
    grouped = df.resample(step, origin="epoch", label="left")
    counts = grouped.count()
    out = grouped.sum(min_count=1) if frame.additive else grouped.mean()
    full = round(ratio)
    out = out.where(counts.eq(full))
    sizes = df.iloc[:, 0].resample(step, origin="epoch", label="left").size()
    keep = sizes.to_numpy() == full
    out = out[keep]
    return SeriesFrame(
        out.to_numpy(), pd.DatetimeIndex(out.index), frame.names, step, frame.adjacency, frame.additive
    )


def _regular(times: pd.Series) -> tuple[pd.DatetimeIndex, pd.Timedelta]:
    t = pd.DatetimeIndex(pd.to_datetime(times, utc=True)).unique().sort_values()
    if len(t) < 2:
        raise UserError("a KPI table needs at least 2 distinct period_start values to forecast")
    step = pd.Series(t).diff().dropna().min()
    grid = pd.date_range(t[0], t[-1], freq=step)
    return grid, step


def kpi_is_additive(kpi: str) -> bool:
    """Whether a twin KPI adds up over time (its unit in ``KPI_DEFINITIONS``)."""
    from mobileai.twin.counters import KPI_DEFINITIONS

    unit = KPI_DEFINITIONS.get(kpi, ("",))[0]
    return unit in ADDITIVE_UNITS


def frame_from_kpis(
    kpis: pa.Table | pd.DataFrame,
    kpi: str,
    cells: pa.Table | pd.DataFrame | None = None,
    k_neighbours: int = 6,
) -> SeriesFrame:
    """One series per cell of a KPI table (columns ``period_start``, ``cell_id``, ``kpi``).

    With a ``cells`` table (``cell_id``, ``x_m``, ``y_m``) the neighbour graph is the k nearest cells.
    """
    df = kpis.to_pandas() if isinstance(kpis, pa.Table) else kpis
    missing = [c for c in ("period_start", "cell_id", kpi) if c not in df.columns]
    if missing:
        allowed = [c for c in df.columns if c not in ("period_start", "period_end", "cell_id", "site")]
        raise UserError(
            f"kpis: column(s) {missing} not found; KPI columns present: {', '.join(map(str, allowed[:40]))}"
        )
    values = pd.to_numeric(df[kpi], errors="coerce")
    grid, step = _regular(df["period_start"])
    wide = (
        pd.DataFrame(
            {"t": pd.to_datetime(df["period_start"], utc=True), "c": df["cell_id"].astype(str), "v": values}
        )
        .pivot_table(index="t", columns="c", values="v", aggfunc="mean")
        .reindex(grid)
    )
    names = [str(c) for c in wide.columns]
    adj = None
    if cells is not None:
        cdf = cells.to_pandas() if isinstance(cells, pa.Table) else cells
        adj = neighbours_from_geometry(cdf, names, k_neighbours)
    return SeriesFrame(wide.to_numpy(), grid, names, step, adj, kpi_is_additive(kpi))


def neighbours_from_geometry(cells: pd.DataFrame, names: list[str], k: int = 6) -> np.ndarray:
    """Row ``i``: inverse-distance weights of the ``k`` nearest other cells of ``names[i]`` (co-sited
    sectors count, at a floor distance of 10 m); cells missing from ``cells`` get no neighbours."""
    need = {"cell_id", "x_m", "y_m"}
    if not need <= set(cells.columns):
        raise UserError(f"cells: needs columns {sorted(need)}, got {sorted(cells.columns)}")
    pos = cells.assign(cell_id=cells["cell_id"].astype(str)).set_index("cell_id")[["x_m", "y_m"]]
    n = len(names)
    adj = np.zeros((n, n))
    known = [i for i, c in enumerate(names) if c in pos.index]
    if len(known) < 2 or k < 1:
        return adj
    xy = pos.loc[[names[i] for i in known]].to_numpy(dtype=np.float64)
    d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    np.fill_diagonal(d, np.inf)
    kk = min(k, len(known) - 1)
    nearest = np.argsort(d, axis=1)[:, :kk]
    for a, row in enumerate(nearest):
        for b in row:
            adj[known[a], known[b]] = 1.0 / max(d[a, b], 10.0)
    return adj


def load_barcelona(root: Path, site: str, column: str = "down") -> tuple[SeriesFrame, int]:
    """A site's train file followed by its ``_test`` file: (frame, index of the first test step)."""
    if site not in BARCELONA_SITES:
        raise UserError(f"barcelona site {site!r}: allowed {', '.join(BARCELONA_SITES)}")
    if column not in BARCELONA_COLUMNS:
        raise UserError(f"barcelona column {column!r}: allowed {', '.join(BARCELONA_COLUMNS)}")
    parts = []
    for suffix in ("", "_test"):
        path = Path(root) / f"{site}{suffix}.csv"
        if not path.exists():
            raise UserError(f"--data: {path} not found (expected the barcelona-lte-pdcch folder)")
        parts.append(pd.read_csv(path, usecols=["time", column]))
    n_train = len(parts[0])
    df = pd.concat(parts, ignore_index=True)
    times = pd.to_datetime(df["time"], utc=True)
    step = pd.Timedelta(minutes=2)
    grid = pd.date_range(times.iloc[0], times.iloc[-1], freq=step)
    series = pd.Series(df[column].to_numpy(dtype=np.float64), index=times).groupby(level=0).mean()
    vals = series.reindex(grid).to_numpy()[:, None]
    test_start = int(grid.get_loc(times.iloc[n_train]))
    return SeriesFrame(vals, grid, [site], step, None, column in ("down", "up")), test_start


def load_milan(root: Path) -> SeriesFrame:
    """The 5 x 5 Milan grid (25 series, 10-minute steps) with its adjacency matrix."""
    data = Path(root) / "milan_grid_data.csv"
    adj = Path(root) / "milan_41_45_41_45_adj_mx.csv"
    for p in (data, adj):
        if not p.exists():
            raise UserError(f"--data: {p} not found (expected the milan-dgrn folder)")
    vals = np.loadtxt(data, delimiter=",")
    a = np.loadtxt(adj, delimiter=",")
    names = [f"sq{41 + i // 5}_{41 + i % 5}" for i in range(vals.shape[1])]
    times = pd.date_range(MILAN_START, periods=len(vals), freq=MILAN_STEP)
    return SeriesFrame(vals, times, names, MILAN_STEP, a, True)
