"""``mobileai simulate``: one static drop of a scenario, written as a run directory.

Stages: load and validate the scenario (with the ``--seed`` / ``--ues`` overrides validated
again), build the cells (TR 38.901 hex grid or the user's CSV), drop the UEs, evaluate the
radio (coupling gain, SS-RSRP, SS-SINR; :mod:`mobileai.twin.radio`), derive the KPI tables
(:mod:`mobileai.twin.kpis`), evaluate an outdoor probe map for the report, then write the run
directory atomically (:mod:`mobileai.data.rundir`):

    ues.parquet  cells.parquet  catalog.duckdb  report.html  figures/*.png  run.json

Bad input raises :class:`~mobileai.errors.UserError` before anything is written; any failure
while writing leaves nothing at ``out``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import platform
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
from mobileai.errors import UserError, format_validation_error
from mobileai.twin import kpis
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
            yield (lambda n=1: self.progress.advance(task, n)) if task is not None else (
                lambda n=1: None
            )
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
                "ues": {"file": "ues.parquet", "rows": ue_tab.num_rows,
                        "columns": ue_tab.num_columns},
                "cells": {"file": "cells.parquet", "rows": cell_tab.num_rows,
                          "columns": cell_tab.num_columns},
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
