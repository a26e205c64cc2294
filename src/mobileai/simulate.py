"""``mobileai simulate``: a static drop, or a dynamic run over time, written as a run directory.

Static (no ``--duration``). Stages: load and validate the scenario (with the ``--seed`` /
``--ues`` overrides validated again), build the cells (TR 38.901 hex grid or the user's CSV),
drop the UEs, evaluate the radio (coupling gain, SS-RSRP, SS-SINR; :mod:`mobileai.twin.radio`),
derive the KPI tables (:mod:`mobileai.twin.kpis`), evaluate an outdoor probe map for the report,
then write the run directory atomically (:mod:`mobileai.data.rundir`):

    ues.parquet  cells.parquet  catalog.duckdb  report.html  figures/*.png  run.json

Dynamic (``--duration 24h``, :func:`run_dynamic_simulation`): the digital twin
(:class:`mobileai.twin.engine.Twin`) steps every UE and cell for the duration; its per-cell KPIs
per reporting period (TS 28.552 names), ground-truth fault events and action log become tables
(:mod:`mobileai.twin.timeline`) and a report over the day (:mod:`mobileai.data.timeline_report`):

    kpis.parquet  events.parquet  cells.parquet  catalog.duckdb  report.html  figures/*.png  run.json

Bad input raises :class:`~mobileai.errors.UserError` before anything is written; any failure
while writing (or an interrupted run) leaves nothing at ``out``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import platform
import re
import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import torch
from pydantic import ValidationError

from mobileai.data.report import ReportData, build_report
from mobileai.data.rundir import RunDir, check_target
from mobileai.data.timeline_report import TimelineReportData, build_timeline_report
from mobileai.errors import UserError, format_validation_error
from mobileai.twin import kpis, timeline
from mobileai.twin.config import Scenario, load_scenario
from mobileai.twin.layout import build_layout
from mobileai.twin.radio import RadioModel, RadioResult
from mobileai.twin.ues import UEs, drop_ues

#: Format tag of run.json.
RUN_FORMAT = "mobileai.run/1"
#: Probe-map resolution (points per side) of the report's outdoor coverage map.
PROBE_PIXELS = 120
#: UEs per radio evaluation call (progress granularity; memory is O(chunk x cells)).
RADIO_CHUNK = 8192

_PACKAGES = ("mobileai", "torch", "numpy", "pyarrow", "duckdb", "matplotlib", "pydantic")


class _Stages:
    """Times each stage and shows it as a rich progress task (when a Progress is given)."""

    def __init__(self, progress=None) -> None:
        self.progress = progress
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str, description: str, total: float = 1) -> Iterator[object]:
        task = None
        if self.progress is not None:
            task = self.progress.add_task(description, total=total)
        t0 = time.perf_counter()
        try:
            yield (lambda n=1: self.progress.advance(task, n)) if task is not None else (lambda n=1: None)
        finally:
            self.timings[name] = round(time.perf_counter() - t0, 4)
            if task is not None:
                self.progress.update(task, completed=total)


def versions() -> dict[str, str]:
    """Versions of Python and the packages a run depends on."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def platform_info(device: torch.device) -> dict[str, object]:
    info: dict[str, object] = {
        "system": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or "unknown",
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["cuda_device"] = torch.cuda.get_device_name(device)
        info["cuda_version"] = torch.version.cuda
    return info


def apply_overrides(sc: Scenario, seed: int | None, n_ues: int | None, source: str) -> Scenario:
    """The scenario with ``--seed`` / ``--ues`` applied and validated again."""
    updates: dict = {}
    if seed is not None:
        updates["seed"] = seed
    if n_ues is not None:
        updates["ues"] = {"count": n_ues}
    if not updates:
        return sc
    try:
        return sc.with_updates(**updates)
    except ValidationError as exc:
        raise UserError(format_validation_error(exc, f"{source} with overrides")) from None


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _inputs(ref: str, sc: Scenario) -> list[dict[str, str]]:
    """Input files the run read, with their hashes (the scenario YAML and a sites CSV)."""
    out = []
    p = Path(ref)
    if p.is_file():
        out.append({"role": "scenario", "path": str(p.resolve()), "sha256": _file_sha256(p)})
    else:
        out.append({"role": "scenario", "packaged": ref})
    if sc.layout.kind == "file" and sc.layout.file is not None and Path(sc.layout.file).is_file():
        f = Path(sc.layout.file)
        out.append({"role": "layout", "path": str(f.resolve()), "sha256": _file_sha256(f)})
    return out


def evaluate_in_chunks(model: RadioModel, ues: UEs, advance=None, chunk: int = RADIO_CHUNK) -> RadioResult:
    """``model.evaluate`` over UE chunks (results per UE do not depend on the chunking)."""
    parts: list[RadioResult] = []
    for a in range(0, ues.n, chunk):
        part = kpis.slice_ues(ues, a, min(a + chunk, ues.n))
        parts.append(model.evaluate(part, chunk=chunk))
        if advance is not None:
            advance(part.n)
    if len(parts) == 1:
        return parts[0]
    return RadioResult(
        **{
            name: torch.cat([getattr(p, name) for p in parts])
            for name in RadioResult.__dataclass_fields__
            if getattr(parts[0], name) is not None
        }
    )


def run_simulation(
    scenario_ref: str,
    out: Path,
    seed: int | None = None,
    device: str = "cpu",
    n_ues: int | None = None,
    progress=None,
) -> dict:
    """Simulate one static drop and write the run directory ``out``; returns the summary.

    ``progress`` is an optional :class:`rich.progress.Progress`. Raises
    :class:`~mobileai.errors.UserError` for bad input (scenario, overrides, ``out``).
    """
    out = Path(out)
    t_start = time.perf_counter()
    created = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    check_target(out)
    st = _Stages(progress)

    with st.stage("load_scenario", "load scenario"):
        sc = apply_overrides(load_scenario(scenario_ref), seed, n_ues, str(scenario_ref))
    with st.stage("layout", "build cells"):
        cells = build_layout(sc)
    with st.stage("drop_ues", "drop UEs"):
        ues = drop_ues(sc, cells, torch.Generator().manual_seed(sc.seed))
    with st.stage("radio", "radio: coupling gain, RSRP, SINR", total=ues.n) as advance:
        model = RadioModel(sc, cells, device=device)
        result = evaluate_in_chunks(model, ues, advance)
    with st.stage("kpis", "KPI tables"):
        ue_tab = kpis.ue_table(result, ues, cells)
        cell_tab = kpis.cell_table(ue_tab, cells, sc.radio.subcarrier_spacing_khz)
        summary = kpis.summarize(ue_tab, cell_tab)
    with st.stage("probe_map", "outdoor probe map"):
        probe = kpis.probe_map(model, cells, PROBE_PIXELS)

    scenario_dict = sc.model_dump(mode="json")
    vers = versions()
    plat = platform_info(model.device)
    command = shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else ""
    with RunDir(out) as rd:
        with st.stage("write_tables", "write Parquet"):
            rd.write_parquet("ues", ue_tab)
            rd.write_parquet("cells", cell_tab)
        with st.stage("catalog", "DuckDB catalog"):
            dictionary = [
                {"table_name": t, "column_name": c, **asdict(doc)}
                for t, cols in (("ues", kpis.UE_COLUMNS), ("cells", kpis.CELL_COLUMNS))
                for c, doc in cols.items()
            ]
            rd.write_catalog("catalog.duckdb", {"ues": ue_tab, "cells": cell_tab}, dictionary)
        with st.stage("report", "HTML report"):
            facts = {
                "scenario": sc.name,
                "seed": sc.seed,
                "UEs": ue_tab.num_rows,
                "cells": cell_tab.num_rows,
                "device": str(model.device),
                "created (UTC)": created,
                "mobileai": vers.get("mobileai", "?"),
                "command": command,
            }
            data = ReportData(
                title=sc.name,
                description=sc.description,
                scenario=scenario_dict,
                summary=summary,
                ue=ue_tab,
                cell=cell_tab,
                cells=cells,
                probe=probe,
                facts=facts,
                versions=vers,
                platform=plat,
                timings_s=dict(st.timings),
                files=["ues.parquet", "cells.parquet", "catalog.duckdb"],
            )
            html_text, figures = build_report(data)
            for name, png in figures.items():
                rd.write_bytes(f"figures/{name}", png)
            rd.write_text("report.html", html_text)
        timings = {**st.timings, "total": round(time.perf_counter() - t_start, 4)}
        files = rd.files()
        manifest = {
            "format": RUN_FORMAT,
            "created_utc": created,
            "command": command,
            "scenario_ref": str(scenario_ref),
            "inputs": _inputs(str(scenario_ref), sc),
            "scenario": scenario_dict,
            "seed": sc.seed,
            "overrides": {"seed": seed, "ues": n_ues},
            "device": {"requested": device, "used": str(model.device)},
            "versions": vers,
            "platform": plat,
            "timings_s": timings,
            "tables": {
                "ues": {"file": "ues.parquet", "rows": ue_tab.num_rows, "columns": ue_tab.num_columns},
                "cells": {
                    "file": "cells.parquet",
                    "rows": cell_tab.num_rows,
                    "columns": cell_tab.num_columns,
                },
            },
            "summary": summary,
            "files": files,
        }
        rd.write_json("run.json", manifest)
        final = rd.commit()

    return {
        "out": str(final),
        "scenario": sc.name,
        "seed": sc.seed,
        "device": str(model.device),
        "ues": ue_tab.num_rows,
        "cells": cell_tab.num_rows,
        "sinr_db": summary["sinr_db"],
        "rsrp_dbm": summary["rsrp_dbm"],
        "coverage_share": summary["coverage_share"],
        "timings_s": timings,
        "files": [f["path"] for f in files] + ["run.json"],
    }


# ====================================================================================== dynamic
#: Units ``--duration`` accepts (a plain number is seconds).
DURATION_UNITS: dict[str, float] = {"ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86_400.0}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*$")
#: Longest dynamic run (``time.duration_s`` allows 30 days).
MAX_DURATION_S = 30 * 86_400.0
#: Progress updates per run (each costs a little; the bar moves every ~1 %).
PROGRESS_UPDATES = 100


def parse_duration(text: str) -> float:
    """``"90s"``, ``"15m"``, ``"2h"``, ``"24h"``, ``"1d"``, ``"500ms"`` or plain seconds -> seconds.

    Raises :class:`UserError` naming ``--duration`` for anything else (negative, zero, NaN,
    unknown unit).
    """
    m = _DURATION_RE.match(str(text).lower())
    if m is None or m.group(2) not in ("", *DURATION_UNITS):
        raise UserError(
            f"--duration {text!r}: expected a positive number with an optional unit "
            f"({', '.join(DURATION_UNITS)}), e.g. 90s, 15m, 2h, 24h, 1d, or plain seconds"
        )
    seconds = float(m.group(1)) * DURATION_UNITS.get(m.group(2) or "s", 1.0)
    if not math.isfinite(seconds) or seconds <= 0:
        raise UserError(f"--duration {text!r}: must be greater than zero")
    return seconds


def format_duration(seconds: float) -> str:
    """``86400`` -> ``"24 h"``, ``180`` -> ``"3 min"``, ``90`` -> ``"90 s"``."""
    for unit, size in (("h", 3600.0), ("min", 60.0)):
        if seconds >= size and abs(seconds / size - round(seconds / size)) < 1e-9:
            return f"{round(seconds / size)} {unit}"
    return f"{seconds:g} s"


def check_duration(seconds: float, sc: Scenario, text: str | None = None) -> int:
    """The number of steps of a ``seconds`` run of ``sc``; raises :class:`UserError` unless it
    is a whole number of ``time.step_ms`` steps, at least one ``time.report_period_s`` and at
    most 30 days."""
    shown = repr(text if text is not None else f"{seconds:g}s")
    step_ms, period = sc.time.step_ms, sc.time.report_period_s
    if seconds < period - 1e-9:
        raise UserError(
            f"--duration {shown}: shorter than one KPI reporting period "
            f"(time.report_period_s = {period:g} s); give at least {format_duration(period).replace(' ', '')}"
        )
    if seconds > MAX_DURATION_S:
        raise UserError(f"--duration {shown}: at most 30 days ({MAX_DURATION_S:,.0f} s)")
    steps = seconds * 1000.0 / step_ms
    if abs(steps - round(steps)) > 1e-6 * max(1.0, steps):
        raise UserError(f"--duration {shown}: not a whole number of {step_ms:g} ms steps (time.step_ms)")
    return round(steps)


def _clock(seconds: float) -> str:
    s = round(seconds)
    d, s = divmod(s, 86_400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return (f"{d}d " if d else "") + f"{h:02d}:{m:02d}:{s:02d}"


def run_dynamic_simulation(
    scenario_ref: str,
    out: Path,
    duration: float | str,
    seed: int | None = None,
    device: str = "cpu",
    n_ues: int | None = None,
    progress=None,
) -> dict:
    """Run the digital twin of a scenario for ``duration`` (seconds, or text like ``"24h"``)
    and write the run directory ``out``; returns the summary (what ``--json`` prints).

    ``progress`` is an optional :class:`rich.progress.Progress`; the step bar moves every ~1 %.
    Raises :class:`~mobileai.errors.UserError` for bad input before anything runs or is written.
    """
    from mobileai.twin.engine import Twin

    out = Path(out)
    t_start = time.perf_counter()
    created = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    check_target(out)
    text = duration if isinstance(duration, str) else None
    seconds = parse_duration(duration) if isinstance(duration, str) else float(duration)
    if not math.isfinite(seconds) or seconds <= 0:
        raise UserError(f"--duration {duration!r}: must be greater than zero")
    st = _Stages(progress)

    with st.stage("load_scenario", "load scenario"):
        sc = apply_overrides(load_scenario(scenario_ref), seed, n_ues, str(scenario_ref))
        steps = check_duration(seconds, sc, text)
        sc = sc.with_updates(time={"duration_s": seconds})  # random faults are drawn over the run
    with st.stage("build_twin", "build the twin: cells, UEs, radio"):
        tw = Twin(sc, device=device)

    label = format_duration(seconds)
    every = max(1, steps // PROGRESS_UPDATES)
    task = None if progress is None else progress.add_task(f"simulate {label}", total=steps)
    dt_s = tw.dt

    def on_step(i: int) -> None:
        done = i + 1
        if done % every == 0 or done == steps:
            progress.update(task, completed=done, description=f"simulate {_clock(done * dt_s)} / {label}")

    t0 = time.perf_counter()
    tw.run(seconds, on_step=on_step if task is not None else None)
    sim_wall = time.perf_counter() - t0
    st.timings["simulate"] = round(sim_wall, 4)
    if task is not None:
        progress.update(task, completed=steps)

    with st.stage("tables", "KPI and event tables"):
        tl = timeline.Timeline.from_twin(tw)
        kpi_tab = timeline.kpi_table(tl)
        events_tab = timeline.events_table(tw, end_s=seconds)
        cells_tab = timeline.cell_config_table(tw)
        n_faults = sum(1 for c in events_tab.column("category").to_pylist() if c == "fault")
        totals = timeline.totals(tl, n_faults, len(tw.action_log))

    scenario_dict = sc.model_dump(mode="json")
    vers = versions()
    plat = platform_info(tw.device)
    command = shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else ""
    speed = seconds / sim_wall if sim_wall > 0 else None
    steps_per_s = steps / sim_wall if sim_wall > 0 else None
    reported = float(tl.end_s[-1]) if tl.n_periods else 0.0
    run_facts = {
        "duration_s": seconds,
        "steps": steps,
        "step_ms": sc.time.step_ms,
        "report_period_s": sc.time.report_period_s,
        "periods": tl.n_periods,
        "unreported_tail_s": round(seconds - reported, 6),
        "start": timeline.ANCHOR.isoformat(),
        "start_hour": sc.time.start_hour,
        "cells": tw.n_cells,
        "ues": tw.n_ues,
        "wall_s": round(sim_wall, 4),
        "steps_per_s": None if steps_per_s is None else round(steps_per_s, 3),
        "speed": None if speed is None else round(speed, 3),
    }
    tables = {"kpis": kpi_tab, "events": events_tab, "cells": cells_tab}
    with RunDir(out) as rd:
        with st.stage("write_tables", "write Parquet"):
            for name, table in tables.items():
                rd.write_parquet(name, table)
        with st.stage("catalog", "DuckDB catalog"):
            rd.write_catalog(
                "catalog.duckdb", timeline.catalog_tables(tables), timeline.column_dictionary(tables)
            )
        with st.stage("report", "HTML report"):
            facts = {
                "scenario": sc.name,
                "seed": sc.seed,
                "simulated": f"{label} from {_clock(sc.time.start_hour * 3600.0)} "
                f"({steps:,} steps of {sc.time.step_ms:g} ms)",
                "KPI period": f"{format_duration(sc.time.report_period_s)} ({tl.n_periods} periods)",
                "UEs / cells": f"{tw.n_ues:,} / {tw.n_cells:,}",
                "device": str(tw.device),
                "wall time": f"{sim_wall:,.1f} s ({steps_per_s or 0:,.1f} steps/s, "
                f"{speed or 0:,.2f} x real time)",
                "created (UTC)": created,
                "mobileai": vers.get("mobileai", "?"),
                "command": command,
            }
            data = TimelineReportData(
                title=sc.name,
                description=sc.description,
                scenario=scenario_dict,
                timeline=tl,
                events=events_tab,
                totals=totals,
                facts=facts,
                versions=vers,
                platform=plat,
                timings_s=dict(st.timings),
                files=["kpis.parquet", "events.parquet", "cells.parquet", "catalog.duckdb"],
            )
            html_text, figures = build_timeline_report(data)
            for name, png in figures.items():
                rd.write_bytes(f"figures/{name}", png)
            rd.write_text("report.html", html_text)
        timings = {**st.timings, "total": round(time.perf_counter() - t_start, 4)}
        files = rd.files()
        manifest = {
            "format": RUN_FORMAT,
            "mode": "dynamic",
            "created_utc": created,
            "command": command,
            "scenario_ref": str(scenario_ref),
            "inputs": _inputs(str(scenario_ref), sc),
            "scenario": scenario_dict,
            "seed": sc.seed,
            "overrides": {"seed": seed, "ues": n_ues, "duration_s": seconds},
            "device": {"requested": device, "used": str(tw.device)},
            "run": run_facts,
            "versions": vers,
            "platform": plat,
            "timings_s": timings,
            "tables": {
                name: {"file": f"{name}.parquet", "rows": t.num_rows, "columns": t.num_columns}
                for name, t in tables.items()
            },
            "totals": totals,
            "files": files,
        }
        rd.write_json("run.json", manifest)
        final = rd.commit()

    return {
        "out": str(final),
        "scenario": sc.name,
        "seed": sc.seed,
        "device": str(tw.device),
        "duration_s": seconds,
        "steps": steps,
        "periods": tl.n_periods,
        "unreported_tail_s": run_facts["unreported_tail_s"],
        "ues": tw.n_ues,
        "cells": tw.n_cells,
        "wall_s": run_facts["wall_s"],
        "steps_per_s": run_facts["steps_per_s"],
        "speed": run_facts["speed"],
        "totals": totals,
        "timings_s": timings,
        "files": [f["path"] for f in files] + ["run.json"],
    }
