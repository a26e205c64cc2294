"""Data-plane benchmark: bus + store ingest rows/s, one-day per-cell query latency, imputation on
real data (baselines next to LightGBM).

    python benchmarks/bench_store.py [--cells 57,5700,57000] [--seconds 5] [--days 7]
                                     [--data ../shared/data] [--no-imputation] [--json]

Runs :func:`mobileai.bench.store.run_store_bench` (the same numbers as ``mobileai bench store``);
results and the machine they were taken on: docs/benchmarks.md ("Data plane benchmark").
"""

from __future__ import annotations

import sys

from mobileai.bench.store import main

if __name__ == "__main__":
    sys.exit(main())
