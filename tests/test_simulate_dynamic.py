"""``mobileai simulate --duration``: the dynamic run directory, end to end and in parts.

Exit codes go through ``python -m mobileai.cli`` in a subprocess (the path a user takes). The
scenario is small (7 sites, 10 UEs per cell, 500 ms steps, 1 min KPI periods, 3 min) with one
scheduled outage, so the run takes seconds.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from mobileai.cli import app
from mobileai.errors import UserError
from mobileai.simulate import check_duration, parse_duration, run_dynamic_simulation
from mobileai.twin import timeline
from mobileai.twin.actions import SetCellState, SetTilt
from mobileai.twin.config import CELL_TYPES, Scenario
from mobileai.twin.counters import KPI_DEFINITIONS
from mobileai.twin.engine import Twin

DOCS = Path(__file__).resolve().parents[1] / "docs"
RUN_FILES = {
    "kpis.parquet",
    "events.parquet",
    "cells.parquet",
    "catalog.duckdb",
    "run.json",
    "report.html",
    "figures/load.png",
    "figures/handover.png",
    "figures/energy.png",
    "figures/faults.png",
    "figures/fault_cells.png",
    "figures/ue_throughput.png",
}
KEY_COLUMNS = ["period_start", "period_end", "cell_id", "site", "cell_type"]

SCENARIO = """\
name: small-day
seed: 4
layout: {sites: 7, isd_m: 300, wrap_around: false}
radio: {bandwidth_mhz: 20}
ues: {per_sector: 10}
time: {report_period_s: 60, step_ms: 500, start_hour: 18}
faults:
  schedule:
    - {kind: outage, cell: S000-1, start_s: 60, duration_s: 60}
"""
TINY = """\
name: tiny
layout: {sites: 1, wrap_around: false}
ues: {per_sector: 5}
time: {report_period_s: 60, step_ms: 1000}
"""
CELLS, PERIODS = 21, 3


def cli(*args: object) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MOBILEAI_DEBUG"}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "mobileai.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("scen") / "small.yaml"
    p.write_text(SCENARIO)
    return p


@pytest.fixture(scope="module")
def run_a(scenario_file: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("dyn") / "a"
    p = cli("simulate", scenario_file, "--out", out, "--duration", "3m", "--seed", 9, "--json")
    assert p.returncode == 0, p.stderr
    return out, json.loads(p.stdout)


# ---------------------------------------------------------------------------------- happy path
def test_dynamic_run_writes_a_complete_run(run_a: tuple[Path, dict]) -> None:
    out, s = run_a
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert written == RUN_FILES
    assert not [p for p in out.parent.iterdir() if ".tmp-" in p.name]
    assert s["out"] == str(out) and s["scenario"] == "small-day" and s["seed"] == 9
    assert (s["duration_s"], s["steps"], s["periods"], s["cells"], s["ues"]) == (180.0, 360, 3, CELLS, 210)
    assert s["wall_s"] > 0 and s["speed"] == pytest.approx(180.0 / s["wall_s"], rel=1e-2)
    t = s["totals"]
    assert t["faults"] == 1 and t["actions"] == 0
    assert t["dl_volume_gb"] > 0 and t["energy_kwh"] > 0 and t["ho_attempts"] >= 0 and t["rlfs"] >= 0
    # 21 cells for 3 min at a few kW: the energy is the mean power times the time
    assert t["energy_kwh"] == pytest.approx(t["mean_power_kw"] * 180 / 3600, rel=1e-4)  # both rounded

    manifest = json.loads((out / "run.json").read_text())
    assert manifest["mode"] == "dynamic" and manifest["seed"] == 9
    assert manifest["overrides"] == {"seed": 9, "ues": None, "duration_s": 180.0}
    assert manifest["scenario"]["time"]["duration_s"] == 180.0
    r = manifest["run"]
    assert (r["steps"], r["step_ms"], r["report_period_s"], r["periods"]) == (360, 500.0, 60.0, 3)
    assert r["unreported_tail_s"] == 0 and r["steps_per_s"] > 0 and r["speed"] > 0
    assert manifest["totals"] == t
    assert manifest["tables"]["kpis"]["rows"] == CELLS * PERIODS
    assert {"torch", "pyarrow", "duckdb", "python"} <= set(manifest["versions"])
    for f in manifest["files"]:
        assert (out / f["path"]).stat().st_size == f["bytes"]

    report = (out / "report.html").read_text()
    assert report.count('src="data:image/png;base64,') == 6
    assert "small-day" in report and "S000-1" in report and "outage" in report


def test_kpis_table_has_one_row_per_cell_per_period(run_a: tuple[Path, dict]) -> None:
    out, _ = run_a
    kpis = pq.read_table(out / "kpis.parquet")
    assert kpis.num_rows == CELLS * PERIODS
    assert kpis.column_names == KEY_COLUMNS + list(KPI_DEFINITIONS)
    schema = kpis.schema
    assert schema.field("period_start").type == pa.timestamp("ms", tz="UTC")
    for name, (unit, definition, clause) in KPI_DEFINITIONS.items():
        f = schema.field(name)
        assert f.type == pa.float64()
        assert f.metadata[b"unit"].decode() == unit and f.metadata[b"reference"].decode() == clause
        assert f.metadata[b"definition"].decode() == definition
    d = kpis.to_pydict()
    t0 = dt.datetime(2026, 1, 1, 18, tzinfo=dt.UTC)
    starts = sorted(set(d["period_start"]))
    assert starts == [t0 + dt.timedelta(minutes=m) for m in range(PERIODS)]
    assert all(
        e - s == dt.timedelta(minutes=1) for s, e in zip(d["period_start"], d["period_end"], strict=True)
    )
    assert len(set(zip(d["period_start"], d["cell_id"], strict=True))) == CELLS * PERIODS
    assert set(d["cell_type"]) <= set(CELL_TYPES)
    prb = np.array(d["RRU.PrbUsedDl"], dtype=float)
    assert np.all((prb >= 0) & (prb <= 100))
    # the outage (S000-1, 60 s .. 120 s) empties its cell for exactly the second period
    conn = {(s, c): v for s, c, v in zip(d["period_start"], d["cell_id"], d["RRC.ConnMean"], strict=True)}
    assert conn[(starts[0], "S000-1")] > 0
    assert conn[(starts[1], "S000-1")] == 0
    assert conn[(starts[2], "S000-1")] > 0
    total = [sum(v for (s, _), v in conn.items() if s == st) for st in starts]
    assert all(x > 0.9 * 210 for x in total)  # the neighbours take the UEs


def test_events_hold_the_labelled_fault(run_a: tuple[Path, dict]) -> None:
    out, _ = run_a
    ev = pq.read_table(out / "events.parquet")
    assert ev.column_names == list(timeline.EVENT_COLUMNS)
    rows = ev.to_pylist()
    assert len(rows) == 1
    f = rows[0]
    assert (f["category"], f["kind"], f["cell_id"], f["label"], f["source"]) == (
        "fault",
        "outage",
        "S000-1",
        True,
        "schedule",
    )
    assert (f["start_s"], f["end_s"], f["magnitude"]) == (60.0, 120.0, 1.0)
    t0 = dt.datetime(2026, 1, 1, 18, tzinfo=dt.UTC)
    assert f["start"] == t0 + dt.timedelta(seconds=60) and f["end"] == t0 + dt.timedelta(seconds=120)
    cells = pq.read_table(out / "cells.parquet")
    assert cells.num_rows == CELLS and cells.column_names == list(timeline.CELL_CONFIG_COLUMNS)
    assert cells.column("cell_id").to_pylist()[f["cell_index"]] == "S000-1"


def test_catalog_answers_queries(run_a: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch) -> None:
    out, _ = run_a
    monkeypatch.chdir(out.parent.parent)  # the catalog holds tables, not paths
    con = duckdb.connect(str(out / "catalog.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM kpis").fetchone()[0] == CELLS * PERIODS
        per_period = con.execute(
            'SELECT period_start, sum("RRC.ConnMean") FROM kpis GROUP BY 1 ORDER BY 1'
        ).fetchall()
        assert len(per_period) == PERIODS
        hit = con.execute(
            'SELECT k."RRC.ConnMean" FROM kpis k JOIN events e ON k.cell_id = e.cell_id '
            'WHERE e.label AND k.period_start >= e.start AND k.period_end <= e."end"'
        ).fetchall()
        assert hit == [(0.0,)]
        assert con.execute("SELECT count(*) FROM cells").fetchone()[0] == CELLS
        unit = con.execute(
            "SELECT unit FROM columns WHERE table_name = 'kpis' AND column_name = 'RRU.PrbUsedDl'"
        ).fetchone()
        assert unit == ("%",)
    finally:
        con.close()


def test_same_seed_gives_identical_kpis(
    run_a: tuple[Path, dict], scenario_file: Path, tmp_path: Path
) -> None:
    """In-process through the command (human output), against the subprocess run."""
    out, _ = run_a
    again = tmp_path / "b"
    res = CliRunner().invoke(
        app, ["simulate", str(scenario_file), "--out", str(again), "--duration", "180", "--seed", "9"]
    )
    assert res.exit_code == 0, res.output
    assert "done" in res.output and "report" in res.output and "3 min" in res.output
    for name in ("kpis", "events", "cells"):
        assert pq.read_table(again / f"{name}.parquet").equals(pq.read_table(out / f"{name}.parquet")), name


# ---------------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("value", ["abc", "-5m", "10ms"])
def test_bad_duration_exits_2_and_writes_nothing(value: str, scenario_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    p = cli("simulate", scenario_file, "--out", out, "--duration", value)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "--duration" in lines[0], p.stderr
    assert "Traceback" not in p.stderr and p.stdout == ""
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("2h", 7200), ("24h", 86_400), ("1d", 86_400), ("120", 120),
     ("1.5h", 5400), (" 2H ", 7200), ("500ms", 0.5), ("10min", 600)],
)  # fmt: skip
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "-5m", "0", "0s", "1w", "nan", "inf", "5 m s", "1e3", "--2h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(UserError, match="--duration"):
        parse_duration(text)


def test_check_duration_against_the_scenario() -> None:
    sc = Scenario.model_validate({"time": {"step_ms": 500, "report_period_s": 60}})
    assert check_duration(180, sc) == 360
    assert check_duration(90, sc) == 180  # 1.5 periods: allowed, the tail has no KPI row
    with pytest.raises(UserError, match="--duration '30s': shorter than one KPI reporting period"):
        check_duration(30, sc, "30s")
    with pytest.raises(UserError, match=r"not a whole number of 500 ms steps"):
        check_duration(60.25, sc)
    with pytest.raises(UserError, match="at most 30 days"):
        check_duration(31 * 86_400, sc)


# ---------------------------------------------------------------------------------- in-process
@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(TINY)
    return p


def test_failure_while_writing_leaves_nothing(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mobileai.simulate as sim

    def broken(_data: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(sim, "build_timeline_report", broken)
    out = tmp_path / "deep" / "run"
    with pytest.raises(RuntimeError, match="disk on fire"):
        run_dynamic_simulation(str(tiny), out, "1m")
    assert not out.exists() and not (tmp_path / "deep").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]


def test_partial_period_tail_and_no_faults(tiny: Path, tmp_path: Path) -> None:
    s = run_dynamic_simulation(str(tiny), tmp_path / "run", 90.0)
    assert (s["periods"], s["steps"], s["unreported_tail_s"]) == (1, 90, 30.0)
    assert s["totals"]["faults"] == 0
    out = tmp_path / "run"
    assert pq.read_table(out / "kpis.parquet").num_rows == 3
    assert pq.read_table(out / "events.parquet").num_rows == 0
    assert not (out / "figures" / "fault_cells.png").exists() and (out / "figures" / "faults.png").exists()


def test_events_table_logs_actions_with_what_they_replaced() -> None:
    sc = Scenario.model_validate(
        {"layout": {"sites": 1, "wrap_around": False}, "ues": {"per_sector": 3}, "time": {"step_ms": 1000}}
    )
    tw = Twin(sc)
    tw.step()
    tw.apply([SetTilt(cell="S000-2", downtilt_deg=4.0), SetCellState(cell="nope", state="off")])
    tw.step()
    ev = timeline.events_table(tw).to_pylist()
    assert [e["category"] for e in ev] == ["action", "action"]
    tilt, bad = ev
    assert (tilt["kind"], tilt["cell_id"], tilt["applied"], tilt["label"]) == (
        "action:tilt",
        "S000-2",
        True,
        False,
    )
    assert tilt["start_s"] == 1.0 and tilt["end"] is None and tilt["end_s"] is None
    assert json.loads(tilt["value"]) == {"downtilt_deg": 4.0}
    assert json.loads(tilt["previous"]) == pytest.approx(float(tw.cells.downtilt_deg[1]))
    assert (bad["kind"], bad["applied"], bad["cell_id"], bad["previous"]) == (
        "action:cell_state",
        False,
        None,
        None,
    )
    assert "unknown cell" in bad["reason"]


# ---------------------------------------------------------------------------------- docs
def test_every_kpi_definition_is_documented() -> None:
    text = (DOCS / "kpis.md").read_text()
    missing = [k for k in KPI_DEFINITIONS if f"`{k}`" not in text]
    assert not missing, f"KPIs missing from docs/kpis.md: {missing}"


def test_docs_kpi_table_is_generated_from_the_definitions() -> None:
    text = (DOCS / "kpis.md").read_text()
    assert "## Per-cell KPIs per reporting period (dynamic runs)" in text
    assert timeline.kpi_docs_table() in text, (
        "docs/kpis.md is out of date: paste the output of "
        '`python -c "from mobileai.twin.timeline import kpi_docs_table; print(kpi_docs_table())"`'
    )
