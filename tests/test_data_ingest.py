"""Ingest of a user's KPI export: every bad row is rejected with a reason, nothing is dropped."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mobileai.data.ingest import ingest
from mobileai.data.mapping import Mapping
from mobileai.data.store import Store
from mobileai.errors import UserError

MAPPING = """
time: {column: ts, format: "%Y-%m-%d %H:%M"}
cell: {column: cell}
period: 15min
kpis:
  RRU.PrbUsedDl: {column: prb_dl, unit: "%"}
  DRB.UEThpDl: {column: thp_dl, unit: Mbit/s}
  PEE.Energy: {column: energy, unit: Wh}
extra:
  acme.Alarm: {column: alarm, unit: "-", min: 0, max: 1}
ignore: [comment]
"""

ROWS = [  # ts, cell, prb_dl, thp_dl, energy, alarm, comment, surprise
    ("2026-01-01 00:00", "A", "10", "1.5", "200", "0", "", "x"),  # ok
    ("2026-01-01 00:15", "A", "", "2", "210", "0", "", "x"),  # ok, prb missing -> null
    ("2026-01-01 00:00", "B", "12", "2.5", "150", "1", "", "x"),  # ok
    ("2026-01-01 00:07", "B", "12", "2.5", "150", "0", "", "x"),  # off grid
    ("2026-01-01 00:30", "A", "#DIV/0!", "2", "220", "0", "", "x"),  # not a number
    ("2026-01-01 00:45", "A", "0.5", "2", "-3", "0", "", "x"),  # energy < 0
    ("2026-01-01 01:00", "A", "150", "2", "220", "0", "", "x"),  # 150 % (ratio declared as %?)
    ("2026-01-01 00:00", "A", "11", "1.6", "201", "0", "", "x"),  # duplicate of row 1
    ("2999-01-01 00:00", "A", "11", "1.6", "201", "0", "", "x"),  # future
    ("yesterday", "A", "11", "1.6", "201", "0", "", "x"),  # bad time
    ("2026-01-01 01:15", "", "11", "1.6", "201", "0", "", "x"),  # no cell
    ("2026-01-01 01:30", "B", "11", "1.6", "201", "7", "", "x"),  # extra out of its range
    ("2025-12-31 23:45", "B", "9", "1.0", "100", "0", "", "x"),  # ok, out of time order
]


def _files(tmp_path: Path) -> tuple[Path, Mapping]:
    cols = ["ts", "cell", "prb_dl", "thp_dl", "energy", "alarm", "comment", "surprise"]
    csv = tmp_path / "export.csv"
    pd.DataFrame(ROWS, columns=cols).to_csv(csv, index=False)
    (tmp_path / "map.yaml").write_text(MAPPING)
    return csv, Mapping.load(tmp_path / "map.yaml")


def test_bad_rows_are_reported_not_dropped(tmp_path: Path) -> None:
    csv, mapping = _files(tmp_path)
    st = Store(tmp_path / "store", "mine")
    s = ingest(csv, mapping, st, report_dir=tmp_path / "rep")
    assert s["rows_read"] == len(ROWS)
    assert (s["accepted"], s["rejected"]) == (4, 9)
    assert s["rejected_by_check"] == {
        "range": 3,
        "grid": 1,
        "number": 1,
        "duplicate": 1,
        "future": 1,
        "time": 1,
        "cell": 1,
    }
    assert s["unmapped_columns"] == ["surprise"] and s["ignored_columns"] == ["comment"]
    assert s["null_values"] == {"RRU.PrbUsedDl": 1}
    assert s["rows_out_of_time_order"] == 1
    rej = pd.read_csv(tmp_path / "rep" / "rejected.csv").set_index("source_row")
    assert "not on the 15min grid" in rej.loc[4, "reason"]
    assert "'#DIV/0!' is not a number" in rej.loc[5, "reason"]
    assert "PEE.Energy (energy): -0.003 kWh is outside 0..inf kWh" in rej.loc[6, "reason"]
    assert "150 % is outside 0..100 %" in rej.loc[7, "reason"]
    assert "duplicate of source row 1" in rej.loc[8, "reason"]
    assert "in the future" in rej.loc[9, "reason"]
    assert "does not parse" in rej.loc[10, "reason"]
    assert json.loads((tmp_path / "rep" / "summary.json").read_text())["accepted"] == 4
    got = st.query().to_pandas()
    assert len(got) == 4
    a0 = got[(got.cell_id == "A") & (got.period_start == pd.Timestamp("2026-01-01", tz="UTC"))].iloc[0]
    assert a0["DRB.UEThpDl"] == pytest.approx(1500.0)  # Mbit/s -> kbit/s
    assert a0["PEE.Energy"] == pytest.approx(0.2)  # Wh -> kWh
    # the same file again: every accepted row is already stored
    again = ingest(csv, mapping, st, report_dir=tmp_path / "rep2")
    assert again["accepted"] == 0 and again["rejected_by_check"]["stored"] == 4
    assert st.query().num_rows == 4
    st.close()


def test_time_of_day_exports_and_timezones(tmp_path: Path) -> None:
    csv = tmp_path / "tod.csv"
    pd.DataFrame({"t": ["00:00", "00:15", "00:00"], "c": ["x", "x", "x"], "v": ["1", "2", "3"]}).to_csv(
        csv, index=False
    )
    m = Mapping.model_validate(
        {"time": {"column": "t", "format": "%H:%M", "date": "2026-03-01", "day_from_occurrence": True,
                  "timezone": "Europe/Madrid"},
         "cell": {"column": "c"}, "kpis": {"RRC.ConnMean": {"column": "v", "unit": "UEs"}}}
    )  # fmt: skip
    s = ingest(csv, m, None, report_dir=tmp_path / "r")
    assert s["accepted"] == 3
    assert s["start"] == "2026-02-28T23:00:00Z" and s["end"] == "2026-03-01T23:15:00Z"  # CET = UTC+1


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"kpis": {"DRB.UEThpDl": {"column": "thp_dl", "unit": "kWh"}}}, "cannot be converted to 'kbit/s'"),
        ({"kpis": {"DRB.Throughput": {"column": "thp_dl", "unit": "kbit/s"}}}, "not a KPI of docs/kpis.md"),
        ({"kpis": {"DRB.UEThpDl": {"column": "thp_dl", "unit": "furlongs"}}}, "unit 'furlongs' is not known"),
        ({"period": "fortnightly"}, "not a period"),
        ({"time": {"column": "ts", "format": "%H:%M"}}, "has no date"),
        ({"cell": {"column": "cell", "value": "A"}}, "exactly one of"),
        ({"surprise": 1}, "unknown key"),
    ],
)
def test_mapping_errors_name_field_and_allowed(tmp_path: Path, patch: dict, message: str) -> None:
    import yaml

    base = yaml.safe_load(MAPPING)
    base.update(patch)
    p = tmp_path / "m.yaml"
    p.write_text(yaml.safe_dump(base))
    with pytest.raises(UserError, match=message):
        Mapping.load(p)


def test_missing_mapped_column_is_a_user_error(tmp_path: Path) -> None:
    csv, mapping = _files(tmp_path)
    pd.read_csv(csv).drop(columns=["energy"]).to_csv(csv, index=False)
    with pytest.raises(UserError, match=r"mapped column\(s\) \['energy'\] are not in the file"):
        ingest(csv, mapping, None, report_dir=tmp_path / "r")


def test_example_mappings_validate() -> None:
    root = Path(__file__).resolve().parents[1] / "examples" / "kpi-export"
    for f in root.glob("*.yaml"):
        Mapping.load(f)
    assert len(list(root.glob("*.yaml"))) >= 2
