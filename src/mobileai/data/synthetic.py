"""Synthetic KPI tables in the twin's schema, for tests and the store benchmark.

Same columns and types as :func:`mobileai.twin.timeline.kpi_table` (keys, then every KPI of
:data:`~mobileai.twin.counters.KPI_DEFINITIONS` as float64), with a diurnal load curve per cell
and noise, so compression, time-of-day profiles and imputation behave as on real KPIs. Generating
them costs microseconds per row, unlike a twin run; they are not a model of a network.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from mobileai.data.timeutil import TIMESTAMP, to_ms
from mobileai.twin.counters import KPI_DEFINITIONS

_SCALE = {
    "kbit/s": 20_000.0, "Mbit/s": 50.0, "Mbit": 40_000.0, "%": 60.0, "UEs": 30.0, "count": 20.0,
    "W": 800.0, "kWh": 0.2, "J": 720_000.0, "0..1": 0.3, "dB": 12.0, "0..15": 9.0, "ms": 20.0,
}  # fmt: skip


def synthetic_kpis(
    n_cells: int,
    n_periods: int,
    *,
    start: object = "2026-01-01",
    period_s: float = 900.0,
    seed: int = 0,
    first_period: int = 0,
) -> pa.Table:
    """``n_periods`` x ``n_cells`` rows (period-major) of KPIs with a diurnal pattern."""
    rng = np.random.default_rng(seed + 7919 * first_period)
    t0 = to_ms(start) + int(first_period * period_s * 1000)
    p = np.arange(n_periods)
    starts = np.repeat(t0 + (p * period_s * 1000).astype(np.int64), n_cells)
    hours = ((starts // 1000) % 86400) / 3600.0
    cell_level = np.tile(np.random.default_rng(seed).uniform(0.4, 1.6, n_cells), n_periods)
    load = cell_level * (0.55 + 0.45 * np.sin((hours - 9.0) / 24.0 * 2 * np.pi))
    n = n_cells * n_periods
    cols: dict[str, pa.Array] = {
        "period_start": pa.array(starts, TIMESTAMP),
        "period_end": pa.array(starts + int(period_s * 1000), TIMESTAMP),
        "cell_id": pa.array([f"{i // 3}-{i % 3}" for i in range(n_cells)] * n_periods, pa.string()),
        "site": pa.array(np.tile(np.arange(n_cells) // 3, n_periods).astype(np.int32)),
        "cell_type": pa.array(["urban"] * n, pa.string()),
    }
    for name, (unit, _, _) in KPI_DEFINITIONS.items():
        scale = _SCALE.get(unit, 1.0)
        shape = 1.0 / load if unit in ("kbit/s", "dB", "0..15") else load
        v = np.round(scale * shape * (1 + 0.1 * rng.standard_normal(n)), 3)
        if unit == "%":
            v = np.clip(v, 0, 100)
        elif unit == "0..1":
            v = np.clip(v, 0, 1)
        elif unit == "0..15":
            v = np.clip(v, 0, 15)
        elif unit != "dB":
            v = np.abs(v)
        cols[name] = pa.array(v, pa.float64())
    return pa.table(cols)
