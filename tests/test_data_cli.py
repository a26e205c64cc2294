"""``mobileai data ...``: ingest, query, quality, export end to end through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

MAPPING = """
time: {column: when, format: "%Y-%m-%d %H:%M"}
cell: {column: cell}
period: 15min
kpis:
  RRU.PrbUsedDl: {column: prb, unit: ratio}
  DRB.UEThpDl: {column: thp, unit: Mbit/s}
"""


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-m", "mobileai.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


def test_ingest_query_quality_export(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    times = pd.date_range("2026-01-01", periods=96 * 2, freq="15min").strftime("%Y-%m-%d %H:%M")
    rows = [(t, f"c{c}", rng.uniform(0, 1), rng.uniform(1, 20)) for t in times for c in range(4)]
    df = pd.DataFrame(rows, columns=["when", "cell", "prb", "thp"]).astype(str)
    df.loc[7, "prb"] = "#VALUE!"
    df.loc[9, "when"] = "2099-01-01 00:00"
    csv = tmp_path / "pm.csv"
    df.to_csv(csv, index=False)
    (tmp_path / "m.yaml").write_text(MAPPING)
    store = tmp_path / "store"

    r = _cli(
        "data", "ingest", str(csv), "--mapping", str(tmp_path / "m.yaml"), "--store", str(store), "--json"
    )
    assert r.returncode == 0, r.stderr
    (s,) = json.loads(r.stdout)["files"]
    assert (s["accepted"], s["rejected"]) == (len(df) - 2, 2)
    assert s["rejected_by_check"] == {"number": 1, "future": 1}

    r = _cli("data", "query", "--store", str(store), "--cell", "c1", "--start", "2026-01-02", "--end",
             "2026-01-03", "--kpi", "RRU.PrbUsedDl", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    q = json.loads(r.stdout)
    assert q["rows"] == 96 and q["columns"][-1] == "RRU.PrbUsedDl"
    assert 0 <= q["head"][0]["RRU.PrbUsedDl"] <= 100  # ratio -> %

    r = _cli(
        "data",
        "quality",
        "--store",
        str(store),
        "--kpi",
        "DRB.UEThpDl",
        "--methods",
        "linear,profile",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    qual = json.loads(r.stdout)
    assert qual["gaps"]["missing_periods"] == 2  # the two rejected rows left holes
    assert {x["method"] for x in qual["imputation"]} == {"linear", "profile"}

    out = tmp_path / "partner.parquet"
    r = _cli("data", "export", "--store", str(store), "--role", "partner", "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["rows"] == len(df) - 2
    assert "site" not in pd.read_parquet(out).columns


def test_user_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MAPPING.replace("unit: ratio", "unit: parsecs"))
    r = _cli(
        "data",
        "ingest",
        str(tmp_path / "x.csv"),
        "--mapping",
        str(tmp_path / "m.yaml"),
        "--store",
        str(tmp_path),
    )
    assert r.returncode == 2 and "parsecs" in r.stderr and "Traceback" not in r.stderr
    r = _cli("data", "query", "--store", str(tmp_path / "nothing"))
    assert r.returncode == 2 and "no store there" in r.stderr
