"""Store: append/query round trip, hot window vs Parquet, compaction, recovery after SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mobileai.data.bus import Bus
from mobileai.data.store import Store
from mobileai.data.synthetic import synthetic_kpis
from mobileai.errors import UserError


def _fill(store: Store, periods: int, cells: int = 6) -> pa.Table:
    tabs = [synthetic_kpis(cells, 1, first_period=p) for p in range(periods)]
    for t in tabs:
        store.append(t)
    return pa.concat_tables(tabs)


def test_round_trip_hot_and_cold_agree(tmp_path: Path) -> None:
    st = Store(tmp_path, "r", hot_periods=20)
    full = _fill(st, 200)  # > 2 days at 15 min: compaction of day 1 has happened
    hot = st.query("2026-01-02T20:00", "2026-01-03T02:00", cells=["1-0"], kpis=["DRB.UEThpDl"])
    assert hot.num_rows == 6 * 4
    st.close()
    ro = Store(tmp_path, "r", read_only=True)
    cold = ro.query("2026-01-02T20:00", "2026-01-03T02:00", cells=["1-0"], kpis=["DRB.UEThpDl"])
    assert cold.equals(hot)
    assert cold.column_names == ["period_start", "period_end", "cell_id", "site", "cell_type", "DRB.UEThpDl"]
    everything = ro.query()
    assert everything.num_rows == full.num_rows
    keys = [("period_start", "ascending"), ("cell_id", "ascending")]
    a, b = everything.sort_by(keys), full.sort_by(keys)
    assert a.column_names == b.column_names
    assert all(a[c].equals(b[c]) for c in b.column_names)
    # closed: one compacted file per date
    assert [f.name.split("-")[0] for f in sorted((tmp_path / "kpis" / "run=r").rglob("*.parquet"))] == [
        "day"
    ] * 3


def test_rollover_compaction_runs_beside_ingest_and_queries(tmp_path: Path) -> None:
    """The date rollover compacts in the background; every query meanwhile sees each row once."""
    st = Store(tmp_path, "r", hot_periods=0)
    day1 = _fill(st, 96)  # one full date
    st.append(synthetic_kpis(6, 1, first_period=96))  # the rollover: day 1 compacts in the background
    for _ in range(50):  # queries race the compaction: part files vanish, the day- file appears
        got = st.query("2026-01-01", "2026-01-02")
        assert got.num_rows == day1.num_rows
    st.wait_compaction()
    day1_dir = tmp_path / "kpis" / "run=r" / "date=2026-01-01"
    assert [f.name[:4] for f in day1_dir.glob("*.parquet")] == ["day-"]
    assert st.query("2026-01-01", "2026-01-02").num_rows == day1.num_rows
    st.close()


def test_query_errors_name_the_problem(tmp_path: Path) -> None:
    st = Store(tmp_path, "r")
    _fill(st, 4)
    with pytest.raises(UserError, match="no column"):
        st.query("2026-01-01", "2026-01-02", kpis=["DRB.Nope"])
    with pytest.raises(UserError, match=r"end .* must be after start"):
        st.query("2026-01-02", "2026-01-01")
    with pytest.raises(UserError, match="ISO 8601"):
        st.query("yesterday")
    with pytest.raises(UserError, match="no table 'events'"):
        st.query(table="events")
    with pytest.raises(UserError, match="run"):
        Store(tmp_path, "../evil")


def test_single_writer_per_run(tmp_path: Path) -> None:
    st = Store(tmp_path, "r")
    code = f"from mobileai.data.store import Store; Store({str(tmp_path)!r}, 'r')"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode != 0 and "open for writing by another process" in res.stderr
    st.close()
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_type_clash_is_refused(tmp_path: Path) -> None:
    st = Store(tmp_path, "r")
    t = synthetic_kpis(3, 1)
    st.append(t)
    bad = synthetic_kpis(3, 1, first_period=1)
    bad = bad.set_column(3, "site", pa.array(["a", "b", "c"]))
    with pytest.raises(UserError, match="site is string, stored as int32"):
        st.append(bad)


def test_store_as_bus_subscriber(tmp_path: Path) -> None:
    bus = Bus()
    st = Store(tmp_path, "loop")
    st.attach(bus, "kpis")
    for p in range(3):
        bus.publish("kpis", synthetic_kpis(4, 1, first_period=p))
    assert st.query("2026-01-01", "2026-01-02").num_rows == 12


WRITER = textwrap.dedent(
    """
    import sys
    from mobileai.data.store import Store
    from mobileai.data.synthetic import synthetic_kpis
    st = Store(sys.argv[1], "killed", hot_periods=4)
    p = 0
    while True:
        st.append(synthetic_kpis(400, 1, first_period=p))
        print(p, flush=True)
        p += 1
    """
)


def test_sigkill_mid_write_loses_at_most_the_period_in_flight(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    done = -1
    deadline = time.time() + 60
    assert proc.stdout is not None
    while time.time() < deadline:
        line = proc.stdout.readline()
        done = int(line)
        if done >= 100:  # past the first day boundary (96 periods): a compaction has run too
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # every visible file is a complete Parquet file, before any recovery
    for f in (tmp_path / "kpis").rglob("*.parquet"):
        if not f.name.startswith("."):
            pq.read_table(f)
    st = Store(tmp_path, "killed")  # the writer lock died with the process; recovery runs
    assert not list((tmp_path / "kpis").rglob(".tmp-*"))
    got = st.query()
    periods = sorted(set(got["period_start"].cast(pa.int64()).to_pylist()))
    n = len(periods)
    assert n in (done + 1, done + 2)  # acknowledged periods all there; at most the one in flight more
    assert got.num_rows == 400 * n
    assert periods == [periods[0] + 900_000 * i for i in range(n)]  # no hole, no duplicate
    st.append(synthetic_kpis(400, 1, first_period=n))  # and the store goes on
    assert st.query().num_rows == 400 * (n + 1)
    st.close()


def test_recovery_removes_files_a_compaction_replaced(tmp_path: Path) -> None:
    st = Store(tmp_path, "r")
    _fill(st, 5, cells=3)
    date_dir = next((tmp_path / "kpis" / "run=r").glob("date=*"))
    parts = {f.name: f.read_bytes() for f in date_dir.glob("part-*.parquet")}
    st.close()  # compacts the 5 parts into one day- file
    for name, blob in parts.items():  # simulate a kill between the rename and the deletes
        (date_dir / name).write_bytes(blob)
    assert len(list(date_dir.glob("*.parquet"))) == 6
    assert Store(tmp_path, "r", read_only=True).query().num_rows == 15  # readers skip replaced files
    st = Store(tmp_path, "r")  # a writer deletes them
    assert [f.name[:4] for f in date_dir.glob("*.parquet")] == ["day-"]
    assert st.query().num_rows == 15
    st.close()
