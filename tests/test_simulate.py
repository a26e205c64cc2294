"""``mobileai simulate``: end to end through the real command, plus the KPI building blocks.

Exit codes are checked through ``python -m mobileai.cli`` in a subprocess, the path a user
takes (``mobileai.cli:main`` maps UserError to exit code 2).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from mobileai.cli import app
from mobileai.errors import UserError
from mobileai.simulate import evaluate_in_chunks, run_simulation
from mobileai.twin import kpis, linkadapt
from mobileai.twin.config import load_scenario
from mobileai.twin.layout import build_layout
from mobileai.twin.radio import RadioModel
from mobileai.twin.ues import drop_ues

DOCS = Path(__file__).resolve().parents[1] / "docs"
RUN_FILES = {"ues.parquet", "cells.parquet", "catalog.duckdb", "run.json", "report.html"}


def cli(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MOBILEAI_DEBUG"}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "mobileai.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env=env,
    )


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".tmp-" in p.name)


@pytest.fixture(scope="module")
def run_a(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sim") / "a"
    p = cli("simulate", "dense-urban", "--out", out, "--ues", 300, "--seed", 7, "--json")
    assert p.returncode == 0, p.stderr
    return out, json.loads(p.stdout)


# ---------------------------------------------------------------------------------- happy path
def test_simulate_writes_a_complete_run(run_a: tuple[Path, dict]) -> None:
    out, summary = run_a
    assert {p.name for p in out.iterdir()} >= RUN_FILES
    assert leftovers(out.parent) == []
    assert summary["out"] == str(out)
    assert (summary["scenario"], summary["seed"], summary["ues"], summary["cells"]) == (
        "dense-urban",
        7,
        300,
        57,
    )
    s = summary["sinr_db"]
    assert s["p5"] < s["p50"] < s["p95"]
    assert 0.0 <= summary["coverage_share"] <= 1.0
    assert summary["timings_s"]["total"] > 0

    ues = pq.read_table(out / "ues.parquet")
    cells = pq.read_table(out / "cells.parquet")
    assert ues.num_rows == 300 and cells.num_rows == 57
    assert ues.column_names == list(kpis.UE_COLUMNS)
    assert cells.column_names == list(kpis.CELL_COLUMNS)
    assert ues.schema.field("ss_rsrp_dbm").metadata[b"unit"] == b"dBm"
    assert pq.ParquetFile(out / "ues.parquet").metadata.row_group(0).column(0).compression == "ZSTD"

    manifest = json.loads((out / "run.json").read_text())
    assert manifest["seed"] == 7 and manifest["overrides"] == {"seed": 7, "ues": 300}
    assert manifest["scenario"]["seed"] == 7 and manifest["scenario"]["ues"]["count"] == 300
    assert {"mobileai", "torch", "numpy", "pyarrow", "duckdb", "python"} <= set(manifest["versions"])
    assert manifest["device"]["used"] == "cpu"
    assert manifest["tables"]["ues"]["rows"] == 300 and manifest["tables"]["cells"]["rows"] == 57
    assert set(manifest["timings_s"]) >= {"load_scenario", "radio", "report", "total"}
    listed = {f["path"]: f["bytes"] for f in manifest["files"]}
    assert set(listed) >= RUN_FILES - {"run.json"}
    for name, size in listed.items():
        assert (out / name).stat().st_size == size
    assert manifest["summary"]["sinr_db"] == summary["sinr_db"]

    report = (out / "report.html").read_text()
    assert report.count('src="data:image/png;base64,') >= 4
    assert "dense-urban" in report and "SS-SINR" in report


def test_kpis_are_consistent(run_a: tuple[Path, dict]) -> None:
    out, _ = run_a
    ues = pq.read_table(out / "ues.parquet").to_pydict()
    cells = pq.read_table(out / "cells.parquet").to_pydict()
    sinr = np.asarray(ues["ss_sinr_db"])
    cqi = np.asarray(ues["cqi"])
    serving = np.asarray(ues["serving_cell_index"])
    # the serving cell is the strongest candidate, and its RSRP the strongest candidate RSRP
    assert [c[0] for c in ues["candidate_cell_ids"]] == ues["serving_cell_id"]
    assert np.allclose([r[0] for r in ues["candidate_ss_rsrp_dbm"]], ues["ss_rsrp_dbm"])
    assert (sinr <= np.asarray(ues["geometry_db"]) + 1e-4).all()  # noise only lowers SINR
    # CQI is monotone in SINR
    assert (np.diff(cqi[np.argsort(sinr)].astype(int)) >= 0).all()
    # per-cell aggregates agree with the UE table
    assert sum(cells["RRC.ConnMean"]) == len(sinr)
    for col in ("CARR.WBCQIDist.Bin", "L1M.SS-RSRP.Bin", "MR.NRScSSSINR.Bin"):
        assert sum(sum(v) for v in cells[col]) == len(sinr)
    idx = int(np.bincount(serving).argmax())
    mine = serving == idx
    assert cells["RRC.ConnMean"][idx] == mine.sum()
    assert cells["mobileai.SinrDl.P50"][idx] == pytest.approx(np.median(sinr[mine]), abs=1e-3)
    assert cells["mobileai.CoverageRatio"][idx] == pytest.approx((sinr[mine] >= -6).mean())
    assert cells["CARR.WBCQIDist.Bin"][idx] == list(np.bincount(cqi[mine], minlength=16))


def test_catalog_is_queryable_after_the_run_directory_moves(
    run_a: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, _ = run_a
    moved = tmp_path / "elsewhere" / "moved-run"
    shutil.copytree(out, moved)
    monkeypatch.chdir(tmp_path)
    con = duckdb.connect(str(moved / "catalog.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM ues").fetchone()[0] == 300
        served = con.execute('SELECT sum("RRC.ConnMean"), count(*) FROM cells').fetchone()
        assert served == (300, 57)
        joined = con.execute(
            "SELECT count(*) FROM ues JOIN cells ON ues.serving_cell_index = cells.cell_index "
            "WHERE ues.serving_cell_id = cells.cell_id"
        ).fetchone()[0]
        assert joined == 300
        assert con.execute("SELECT unit FROM columns WHERE column_name = 'ss_sinr_db'").fetchone() == ("dB",)
    finally:
        con.close()


def test_same_seed_gives_identical_ues(run_a: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = run_a
    again = tmp_path / "b"
    p = cli("simulate", "dense-urban", "--out", again, "--ues", 300, "--seed", 7, "--json")
    assert p.returncode == 0, p.stderr
    assert pq.read_table(again / "ues.parquet").equals(pq.read_table(out / "ues.parquet"))
    assert pq.read_table(again / "cells.parquet").equals(pq.read_table(out / "cells.parquet"))


def test_human_output_and_empty_out_dir(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()  # an existing empty directory is fine
    res = CliRunner().invoke(app, ["simulate", "rural", "--out", str(out), "--ues", "60"])
    assert res.exit_code == 0, res.output
    assert "done" in res.output and "report" in res.output
    assert pq.read_table(out / "ues.parquet").num_rows == 60
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------- refusals
def test_existing_non_empty_out_is_refused_and_untouched(tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    p = cli("simulate", "dense-urban", "--out", out, "--ues", 50)
    assert p.returncode == 2
    assert "not empty" in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert [f.name for f in out.iterdir()] == ["mine.txt"]
    assert (out / "mine.txt").read_text() == "keep me"
    assert leftovers(tmp_path) == []


SITES_OK = "cell_id,site_id,x_m,y_m,azimuth_deg\nA1,A,0,0,0\nA2,A,0,0,120\nB1,B,400,0,240\n"
FILE_LAYOUT = "name: mine\nlayout: {kind: file, file: sites.csv}\nues: {count: 40}\n"

BAD_INPUTS = {
    "unknown-key": ("radio: {carrier_ghz: 3.5, colour: red}\n", None, "radio.colour"),
    "negative-power": ("bs: {tx_power_dbm: -5}\n", None, "bs.tx_power_dbm"),
    "carrier-outside-validity": ("radio: {scenario: rma, carrier_ghz: 35}\n", None, "carrier_ghz"),
    "nan-coordinate": (
        FILE_LAYOUT,
        "cell_id,site_id,x_m,y_m,azimuth_deg\nA1,A,0,0,0\nB1,B,nan,0,120\n",
        "x_m",
    ),
    "empty-sites-file": (FILE_LAYOUT, "", "empty"),
    "sites-carrier-outside-validity": (
        FILE_LAYOUT,
        "cell_id,x_m,y_m,azimuth_deg,carrier_ghz\nA1,0,0,0,250\n",
        "carrier_ghz",
    ),
    "bad-yaml": ("radio: [unclosed\n", None, "YAML"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_scenario_exits_2_with_one_line_and_writes_nothing(case: str, tmp_path: Path) -> None:
    yaml_text, sites, needle = BAD_INPUTS[case]
    (tmp_path / "scenario.yaml").write_text(yaml_text)
    if sites is not None:
        (tmp_path / "sites.csv").write_text(sites)
    before = sorted(p.name for p in tmp_path.iterdir())
    out = tmp_path / "run"
    p = cli("simulate", tmp_path / "scenario.yaml", "--out", out)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("error:") and needle in lines[0], lines[0]
    assert "Traceback" not in p.stderr and p.stdout == ""
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_unknown_packaged_scenario_exits_2(tmp_path: Path) -> None:
    p = cli("simulate", "atlantis", "--out", tmp_path / "run")
    assert p.returncode == 2 and "unknown scenario 'atlantis'" in p.stderr
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------- in-process
def test_file_layout_scenario_in_process(tmp_path: Path) -> None:
    (tmp_path / "sites.csv").write_text(SITES_OK)
    (tmp_path / "scenario.yaml").write_text(FILE_LAYOUT)
    out = tmp_path / "nested" / "run"  # parents are created
    summary = run_simulation(str(tmp_path / "scenario.yaml"), out, seed=3)
    assert summary["cells"] == 3 and summary["ues"] == 40 and summary["seed"] == 3
    cells = pq.read_table(out / "cells.parquet").to_pydict()
    assert cells["cell_id"] == ["A1", "A2", "B1"]
    assert cells["site_index"] == [0, 0, 1]
    assert cells["azimuth_deg"] == pytest.approx([0.0, 120.0, 240.0])
    manifest = json.loads((out / "run.json").read_text())
    roles = {i["role"]: i for i in manifest["inputs"]}
    assert roles["layout"]["path"].endswith("sites.csv") and len(roles["layout"]["sha256"]) == 64


def test_failure_while_writing_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mobileai.simulate as sim

    def broken(_data: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(sim, "build_report", broken)
    out = tmp_path / "deep" / "run"
    with pytest.raises(RuntimeError, match="disk on fire"):
        run_simulation("rural", out, n_ues=30)
    assert not out.exists() and not (tmp_path / "deep").exists()
    assert list(tmp_path.iterdir()) == []


def test_out_that_is_a_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(UserError, match="not a directory"):
        run_simulation("rural", f, n_ues=10)
    assert f.read_text() == "x"


def test_chunked_evaluation_matches_one_call() -> None:
    sc = load_scenario("rural").with_updates(ues={"count": 250})
    cells = build_layout(sc)
    ues = drop_ues(sc, cells, torch.Generator().manual_seed(sc.seed))
    model = RadioModel(sc, cells)
    whole = model.evaluate(ues)
    parts = evaluate_in_chunks(model, ues, chunk=64)
    assert torch.equal(whole.serving, parts.serving)
    assert torch.allclose(whole.sinr_db, parts.sinr_db)
    assert torch.equal(whole.candidates, parts.candidates)


def test_cqi_mapping_follows_the_thresholds() -> None:
    th = np.asarray(linkadapt.CQI_SINR_THRESHOLDS_DB, dtype=np.float32)
    assert list(kpis.sinr_to_cqi(th)) == list(range(1, 16))
    assert list(kpis.sinr_to_cqi(th - 1e-3)) == list(range(0, 15))
    assert list(kpis.sinr_to_cqi(np.array([-50.0, np.nan, 60.0]))) == [0, 0, 15]
    eff = kpis.cqi_efficiency(np.arange(16))
    assert eff[0] == 0 and (np.diff(eff) > 0).all() and eff[15] == pytest.approx(5.5547)


def test_grouped_percentiles_match_numpy() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=500)
    groups = rng.integers(0, 7, size=500)
    groups[groups == 3] = 4  # group 3 empty
    got = kpis.grouped_percentiles(values, groups, 8, (5, 50, 95))
    for g in range(8):
        sel = values[groups == g]
        for p in (5, 50, 95):
            if sel.size:
                assert got[p][g] == pytest.approx(np.percentile(sel, p))
            else:
                assert math.isnan(got[p][g])


def test_every_kpi_column_is_documented() -> None:
    text = (DOCS / "kpis.md").read_text()
    missing = [c for c in [*kpis.UE_COLUMNS, *kpis.CELL_COLUMNS] if f"`{c}`" not in text]
    assert not missing, f"undocumented KPI columns: {missing}"
