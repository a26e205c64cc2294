"""Multi-day KPI history from the twin, for training and scoring AI functions.

AI apps need history: a forecaster trains on past days and is scored on the next one; an anomaly
detector learns each cell's normal behaviour per time of day before it is scored on labelled
faults. :func:`twin_history` runs a scenario for whole days and returns the tables a dynamic run
writes (``kpis``, ``events``, ``cells``; see :mod:`mobileai.twin.timeline` and docs/kpis.md).

Days of history are long to simulate at the 100 ms radio step, so the history keeps the KPI
reporting period but steps the radio at ``step_ms`` (default 5 s). Traffic, load, throughput,
energy and faults keep their statistics; handover and radio-link-failure counts do not: timers
and measurements are sampled at the coarse step (the L3 filter is adapted to the sampling rate,
TS 38.331 5.5.3.2), so mobility KPIs of a history are coarse. The result is cached under
``cache_dir`` keyed by the SHA-256 of the effective scenario and :data:`HISTORY_VERSION`, so a
benchmark pays for a history once per machine; the cache is written to a temporary directory and
renamed into place, never half-written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mobileai.errors import UserError
from mobileai.twin import timeline
from mobileai.twin.config import Scenario, load_scenario

#: Default cache folder (relative to the working directory), next to the run directories.
DEFAULT_CACHE = Path("runs/cache/history")
#: Bumped whenever the twin's dynamics change what a history contains (invalidates caches).
HISTORY_VERSION = 4
TABLES = ("kpis", "events", "cells")


@dataclass(frozen=True)
class History:
    """Tables of a multi-day twin run (Arrow) and the effective scenario that produced them."""

    scenario: Scenario
    kpis: pa.Table
    events: pa.Table
    cells: pa.Table
    path: Path | None = None


def history_scenario(scenario: str | Scenario, days: float, step_ms: float = 5000.0) -> Scenario:
    """The scenario a history of ``days`` runs: its own, with the coarser radio step and the
    duration set (random faults are drawn over the whole history)."""
    sc = load_scenario(scenario) if isinstance(scenario, str) else scenario
    if not 0 < days <= 30:
        raise UserError(f"days: {days!r} is not allowed; a history is 0 < days <= 30")
    time_cfg = {"duration_s": days * 86_400.0, "step_ms": float(step_ms)}
    if sc.time.radio_update_ms < step_ms:
        time_cfg["radio_update_ms"] = float(step_ms)
    return sc.with_updates(time=time_cfg)


def scenario_key(sc: Scenario) -> str:
    """SHA-256 (first 16 hex) of the history version and the effective scenario: the cache key."""
    dump = sc.model_dump(mode="json")
    if dump["faults"]["seed"] is None:  # the option postdates the cached histories: keep their keys
        del dump["faults"]["seed"]
    blob = json.dumps([HISTORY_VERSION, dump], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def twin_history(
    scenario: str | Scenario,
    days: float,
    *,
    step_ms: float = 5000.0,
    cache_dir: Path | None = DEFAULT_CACHE,
    device: str = "cpu",
    on_progress: Callable[[float], None] | None = None,
) -> History:
    """Run (or load from the cache) ``days`` of ``scenario`` and return its tables.

    ``on_progress`` receives the simulated fraction done (0..1) about every simulated minute.
    ``cache_dir=None`` disables the cache.
    """
    from mobileai.twin.engine import Twin

    sc = history_scenario(scenario, days, step_ms)
    folder = None if cache_dir is None else Path(cache_dir) / f"{sc.name}-{scenario_key(sc)}"
    if folder is not None and all((folder / f"{t}.parquet").exists() for t in TABLES):
        tabs = {t: pq.read_table(folder / f"{t}.parquet") for t in TABLES}
        return History(sc, **tabs, path=folder)

    tw = Twin(sc, device=device)
    n = round(sc.time.duration_s / tw.dt)
    every = max(1, round(60.0 / tw.dt))
    for i in range(n):
        tw.step()
        if on_progress is not None and (i + 1) % every == 0:
            on_progress((i + 1) / n)
    tabs = {
        "kpis": timeline.kpi_table(timeline.Timeline.from_twin(tw)),
        "events": timeline.events_table(tw, end_s=sc.time.duration_s),
        "cells": timeline.cell_config_table(tw),
    }
    if folder is not None:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".tmp-", dir=folder.parent))
        try:
            for t, table in tabs.items():
                pq.write_table(table, tmp / f"{t}.parquet", compression="zstd")
            (tmp / "scenario.json").write_text(json.dumps(sc.model_dump(mode="json"), indent=1))
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return History(sc, **tabs, path=folder)
