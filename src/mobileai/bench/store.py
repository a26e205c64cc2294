"""Data-plane benchmark: bus + store ingest rate, range-query latency, imputation on real data.

- **ingest**: tables in the twin's KPI schema (:func:`mobileai.data.synthetic.synthetic_kpis`: 5 key
  columns + 32 float64 KPIs) are published on a :class:`~mobileai.data.bus.Bus` topic ``kpis``
  to which a :class:`~mobileai.data.store.Store` is attached, one reporting period per publish,
  for ``seconds`` of wall time per size. Each append is a durable Parquet file (temporary file +
  ``os.replace``). Rows/s = rows published / wall time (the tables are built before timing;
  only their timestamps change per period). Compaction into daily zstd files runs on a background
  thread at each day boundary, beside ingest; ``close()`` waits for it and compacts the last day,
  and is timed apart ("compact s"); ``rows_per_s_with_close`` counts that time too.
- **query**: ``days`` days of a 57-cell network at 15 min, appended period by period, closed
  (compacted) and reopened read-only; then one cell's one-day range, for random days and cells:
  median and p95 ms through DuckDB over Parquet, and from the hot in-memory window of a writer.
- **imputation**: real KPI exports ingested through the mappings of examples/kpi-export
  (Barcelona LTE PDCCH, three sites, 2 min; ML-MATT LTE, 33 cells, 15 min), 10 % of known
  values hidden (single values, and runs of 4 periods), MAE of each method on them with its
  wall time: the baselines (linear in time, time-of-day profile) next to LightGBM.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from mobileai.data.timeutil import TIMESTAMP, to_ms

REPO = Path(__file__).resolve().parents[3]
DEFAULT_DATA = REPO.parent / "shared" / "data"
PERIOD_MS = 900_000


def _restamp(template: pa.Table, start_ms: int) -> pa.Table:
    n = template.num_rows
    t = template.set_column(0, "period_start", pa.array(np.full(n, start_ms, np.int64)).cast(TIMESTAMP))
    return t.set_column(1, "period_end", pa.array(np.full(n, start_ms + PERIOD_MS, np.int64)).cast(TIMESTAMP))


def bench_ingest(cells: int, seconds: float, root: Path) -> dict:
    from mobileai.data.bus import Bus
    from mobileai.data.store import Store
    from mobileai.data.synthetic import synthetic_kpis

    template = synthetic_kpis(cells, 1)
    t0_ms = to_ms("2026-01-01")
    bus = Bus()
    store = Store(root, f"ingest-{cells}", hot_periods=96)
    store.attach(bus, "kpis")
    lat, rows, p = [], 0, 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        tab = _restamp(template, t0_ms + p * PERIOD_MS)
        a = time.perf_counter()
        bus.publish("kpis", tab)
        lat.append(time.perf_counter() - a)
        rows += tab.num_rows
        p += 1
    wall = time.perf_counter() - start
    files_before = store.summary()["kpis"]["files"]
    c = time.perf_counter()
    store.close()
    compact_s = time.perf_counter() - c
    info = Store(root, f"ingest-{cells}", read_only=True).summary()["kpis"]
    lat_ms = sorted(x * 1000 for x in lat)
    return {
        "rows_per_append": cells,
        "appends": p,
        "rows": rows,
        "wall_s": round(wall, 3),
        "rows_per_s": round(rows / wall),
        "rows_per_s_with_close": round(rows / (wall + compact_s)),
        "append_ms_median": round(statistics.median(lat_ms), 3),
        "append_ms_p95": round(lat_ms[int(0.95 * (len(lat_ms) - 1))], 3),
        "files_before_compaction": files_before,
        "close_compaction_s": round(compact_s, 3),
        "files_after": info["files"],
        "rows_stored": info["rows"],
        "bytes_stored": info["bytes"],
    }


def bench_query(days: int, root: Path, repeats: int = 30, seed: int = 0) -> dict:
    from mobileai.data.store import Store
    from mobileai.data.synthetic import synthetic_kpis

    run = "query"
    template = synthetic_kpis(57, 1)
    t0_ms = to_ms("2026-01-01")
    store = Store(root, run, hot_periods=96)
    a = time.perf_counter()
    for p in range(days * 96):
        store.append(_restamp(template, t0_ms + p * PERIOD_MS))
    append_s = time.perf_counter() - a
    rng = np.random.default_rng(seed)
    cells = template["cell_id"].to_pylist()
    # hot: the last day, from the writer's memory
    hot = []
    last = t0_ms + (days - 1) * 86_400_000
    for _ in range(repeats):
        c = cells[rng.integers(len(cells))]
        a = time.perf_counter()
        t = store.query(last, last + 86_400_000, cells=[c])
        hot.append((time.perf_counter() - a) * 1000)
        assert t.num_rows == 96
    store.close()
    reader = Store(root, run, read_only=True)
    cold = []
    for i in range(repeats + 1):
        d = int(rng.integers(days))
        c = cells[rng.integers(len(cells))]
        a = time.perf_counter()
        t = reader.query(
            t0_ms + d * 86_400_000,
            t0_ms + (d + 1) * 86_400_000,
            cells=[c],
            kpis=["DRB.UEThpDl", "RRU.PrbUsedDl"],
        )
        ms = (time.perf_counter() - a) * 1000
        assert t.num_rows == 96
        if i:  # the first query pays DuckDB's start-up
            cold.append(ms)
    return {
        "days": days,
        "cells": 57,
        "rows_stored": days * 96 * 57,
        "append_s": round(append_s, 2),
        "parquet_ms_median": round(statistics.median(cold), 2),
        "parquet_ms_p95": round(sorted(cold)[int(0.95 * (len(cold) - 1))], 2),
        "hot_ms_median": round(statistics.median(hot), 3),
        "hot_ms_p95": round(sorted(hot)[int(0.95 * (len(hot) - 1))], 3),
        "repeats": repeats,
    }


def bench_imputation(data: Path, root: Path) -> list[dict]:
    from mobileai.data import quality as q
    from mobileai.data.ingest import ingest
    from mobileai.data.mapping import Mapping
    from mobileai.data.store import Store

    examples = REPO / "examples" / "kpi-export"
    out = []
    bcn = data / "barcelona-lte-pdcch"
    if bcn.exists():
        m = Mapping.load(examples / "barcelona.yaml")
        for site in ("ElBorn", "LesCorts", "PobleSec"):
            st = Store(root, f"bcn-{site}")
            ms = m.model_copy(update={"cell": m.cell.model_copy(update={"value": site})})
            ingest(bcn / f"{site}.csv", ms, st, report_dir=root / "_reports" / site)
            tab = st.query()
            st.close()
            for block in (1, 4):
                for r in q.score_imputation(
                    tab, ["DRB.PdcpSduVolumeDL", "bcn.RntiCount"], holdout=0.1, block=block
                ):
                    out.append({"data": f"barcelona/{site}", "block": block, **r})
    mlm = data / "lte-anomaly-mlmatt" / "adicn_data.csv"
    if mlm.exists():
        st = Store(root, "mlmatt")
        ingest(mlm, Mapping.load(examples / "mlmatt.yaml"), st, report_dir=root / "_reports" / "mlmatt")
        tab = st.query()
        st.close()
        for r in q.score_imputation(tab, ["RRU.PrbUsedDl", "DRB.UEThpDl"], holdout=0.1, block=1):
            out.append({"data": "mlmatt", "block": 1, **r})
    return out


def run_store_bench(
    sizes: list[int],
    *,
    seconds: float = 5.0,
    days: int = 7,
    data: Path | None = None,
    imputation: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """All three measurements in a temporary store that is removed afterwards."""
    say = progress or (lambda _m: None)
    data = Path(data) if data else DEFAULT_DATA
    result: dict = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        },
        "ingest": [],
    }
    with tempfile.TemporaryDirectory(prefix="mobileai-bench-store-", dir=None) as tmp:
        root = Path(tmp)
        for n in sizes:
            say(f"ingest: {n:,} rows per append for {seconds:g} s")
            result["ingest"].append(bench_ingest(n, seconds, root))
        say(f"query: {days} days x 57 cells")
        result["query"] = bench_query(days, root)
        if imputation:
            say(f"imputation on real data under {data}")
            result["imputation"] = bench_imputation(data, root)
    result["machine"]["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    return result


def format_store_bench(r: dict) -> str:
    lines = ["[bold]bus + store ingest[/bold] (one append = one reporting period, durable file each)"]
    lines.append(
        f"  {'rows/append':>11} {'appends':>8} {'rows/s':>12} {'ms/append p50':>14} {'p95':>8} "
        f"{'compact s':>10} {'w/ close':>10} {'MB':>8}"
    )
    for x in r["ingest"]:
        lines.append(
            f"  {x['rows_per_append']:>11,} {x['appends']:>8,} {x['rows_per_s']:>12,} "
            f"{x['append_ms_median']:>14.2f} "
            f"{x['append_ms_p95']:>8.2f} {x['close_compaction_s']:>10.2f} {x['rows_per_s_with_close']:>10,} "
            f"{x['bytes_stored'] / 1e6:>8.1f}"
        )
    q = r["query"]
    lines.append(
        f"[bold]one cell, one day[/bold] ({q['days']} days x {q['cells']} cells stored): Parquet/DuckDB "
        f"p50 {q['parquet_ms_median']:.1f} ms, p95 {q['parquet_ms_p95']:.1f} ms; "
        f"hot window p50 {q['hot_ms_median']:.2f} ms"
    )
    if r.get("imputation"):
        lines.append("[bold]imputation[/bold], MAE on 10 % hidden known values (nMAE = MAE / mean |value|)")
        for x in r["imputation"]:
            lines.append(
                f"  {x['data']:20s} block {x['block']} {x['kpi']:22s} {x['method']:9s} nMAE {x['nmae']:.3f}  "
                f"MAE {x['mae']:10.4g}  {x['seconds']:6.2f} s"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default="57,5700,57000")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--no-imputation", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    res = run_store_bench(
        [int(s) for s in a.cells.split(",")], seconds=a.seconds, days=a.days, data=a.data,
        imputation=not a.no_imputation, progress=None if a.json else (lambda m: print(m, file=sys.stderr)),
    )  # fmt: skip
    if a.json:
        print(json.dumps(res))
    else:
        from rich.console import Console

        Console().print(format_store_bench(res), highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
