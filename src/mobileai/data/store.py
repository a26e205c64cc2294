"""The KPI store: Parquet files partitioned by table, run and date, queried with DuckDB, with
the most recent reporting periods also held in memory.

Layout (Hive-style partitions, readable by DuckDB, Spark, Polars or pandas without us)::

    ROOT/<table>/run=<run>/date=<YYYY-MM-DD>/part-<first_ms>-<last_ms>-<seq>.parquet
    ROOT/<table>/run=<run>/date=<YYYY-MM-DD>/day-<first_ms>-<last_ms>-<seq>.parquet   (compacted)

Durability: every :meth:`Store.append` writes its rows to a hidden temporary file in the
partition and renames it into place (``os.replace``, atomic on POSIX), so a process killed in the
middle of an append loses that append only (one reporting period when the closed loop appends
period by period) and never leaves a partial Parquet file under a visible name. ``fsync=True``
also flushes the file and its directory, which extends this to power loss. Small per-period
files are merged (in time order) into one zstd-compressed ``day-`` file per date when the date is
complete (the first append of a later date: on a background thread, so ingest does not wait for
it), on :meth:`Store.compact` and on :meth:`Store.close` (which first waits for the background
work); a ``day-`` file records the files it replaces in its Parquet metadata, readers skip them
from the moment it appears, the replaced files are deleted under the store lock (so a query never
reads a vanishing file), and opening the store deletes any replaced file a kill left behind, so no
row is ever counted twice. One process writes a run at a
time (an ``flock`` on ``run=<run>/.writer.lock``); readers need no lock.

Reads: :meth:`Store.query` selects by time range, cells and KPIs. A query that starts inside the
hot window (the last ``hot_periods`` appends of this process, and no older file holds later
rows) is answered from memory; anything else is one DuckDB ``read_parquet`` over the files whose
names overlap the time range. KPI names follow docs/kpis.md (TS 28.552 / O-RAN E2SM-KPM).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mobileai.data.policy import AccessPolicy
from mobileai.data.privacy import coarsen, load_key, pseudonymise
from mobileai.data.timeutil import TIMESTAMP, ms_to_date, to_ms
from mobileai.errors import UserError

#: Columns tried, in order, as a table's time column (the first timestamp column found).
TIME_COLUMNS = ("period_start", "start", "time", "timestamp")
#: Columns every KPI query returns besides the KPIs asked for.
KEY_COLUMNS = ("period_start", "period_end", "cell_id", "site", "cell_type")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_FILE = re.compile(r"^(part|day)-(-?\d+)-(-?\d+)-(\d+)\.parquet$")
_REPLACES = b"mobileai.replaces"


def check_name(value: str, what: str) -> str:
    """A run or table name: letters, digits, ``.``, ``_``, ``-`` (1-128, not starting with a symbol)."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise UserError(
            f"{what}: {value!r} is not allowed; use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


@dataclass(frozen=True)
class _File:
    path: Path
    kind: str
    lo: int
    hi: int
    seq: int


@dataclass(frozen=True)
class _Hot:
    lo: int
    hi: int
    table: pa.Table


def _atomic_parquet(table: pa.Table, path: Path, *, compression: str, fsync: bool, **kw: object) -> None:
    tmp = path.with_name(f".tmp-{os.getpid()}-{threading.get_ident()}-{path.name}")
    try:
        pq.write_table(table, tmp, compression=compression, **kw)
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
        if fsync:
            fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    finally:
        if tmp.exists():
            tmp.unlink()


def time_column(schema: pa.Schema) -> str:
    """The time column of a table: the first of :data:`TIME_COLUMNS` that is a timestamp."""
    for name in TIME_COLUMNS:
        if name in schema.names and pa.types.is_timestamp(schema.field(name).type):
            return name
    raise UserError(
        f"table has no time column: expected a timestamp column named one of {', '.join(TIME_COLUMNS)}; "
        f"it has {', '.join(schema.names)}"
    )


class Store:
    """Parquet + DuckDB store of one run's tables (``kpis``, ``events``, ``actions`` ...).

    >>> store = Store(Path("runs/store"), run="demo")          # doctest: +SKIP
    >>> store.append(kpi_table)                                # one reporting period
    >>> store.query(start="2026-01-01", end="2026-01-02", cells=["0-0"], kpis=["DRB.UEThpDl"])
    """

    def __init__(
        self,
        root: Path | str,
        run: str = "default",
        *,
        hot_periods: int = 96,
        read_only: bool = False,
        fsync: bool = False,
        compression: str = "none",
        policy: AccessPolicy | None = None,
        role: str | None = None,
        pseudonym_key: str | bytes | None = None,
    ) -> None:
        self.root = Path(root)
        self.run = check_name(run, "run")
        if hot_periods < 0:
            raise UserError(f"hot_periods: {hot_periods} is not allowed; use 0 or more")
        if compression not in ("none", "snappy", "lz4", "zstd"):
            raise UserError(f"compression: {compression!r} is not allowed; use none, snappy, lz4 or zstd")
        if (policy is None) != (role is None):
            raise UserError(
                "policy and role go together: pass both (access enforced) or neither (full access)"
            )
        if policy is not None and role is not None:
            policy.role(role)
        self.hot_periods = hot_periods
        self.read_only = read_only or (
            policy is not None and role is not None and not policy.role(role).write
        )
        self.fsync = fsync
        self.compression = compression
        self.policy, self.role = policy, role
        self._pseudonym_key = pseudonym_key
        self._lock = threading.RLock()
        self._hot: dict[str, deque[_Hot]] = {}
        self._hot_cache: dict[str, pa.Table] = {}
        self._replaced_cache: dict[Path, set[str]] = {}
        self._cold_max: dict[str, int] = {}
        self._schemas: dict[str, pa.Schema] = {}
        self._seq = 0
        self._latest_date: dict[str, str] = {}
        self._compact_lock = threading.Lock()  # one compaction at a time (background or not)
        self._compactor: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []
        self._lockfile = None
        self._con = None
        self._closed = False
        if not self.read_only:
            self.root.mkdir(parents=True, exist_ok=True)
            self._acquire_writer_lock()
            self.recover()

    # ---- lifecycle
    def _acquire_writer_lock(self) -> None:
        lock_dir = self.root / "_locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        fh = open(lock_dir / f"run={self.run}.lock", "a+")  # noqa: SIM115 (held open for the lock)
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise UserError(
                f"run {self.run!r} in {self.root} is open for writing by another process; "
                "open it with read_only=True to query it meanwhile"
            ) from None
        self._lockfile = fh

    def close(self) -> None:
        """Compact and release the writer lock (idempotent)."""
        if self._closed:
            return
        if not self.read_only:
            self.wait_compaction()
            self.compact()
        if self._con is not None:
            self._con.close()
            self._con = None
        if self._lockfile is not None:
            fcntl.flock(self._lockfile.fileno(), fcntl.LOCK_UN)
            self._lockfile.close()
            self._lockfile = None
        self._closed = True

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # release the lock of a store that was never closed (no compaction)
        fh = getattr(self, "_lockfile", None)
        if fh is not None:
            with contextlib.suppress(Exception):
                fh.close()

    def _run_dir(self, table: str) -> Path:
        return self.root / table / f"run={self.run}"

    def recover(self) -> dict[str, int]:
        """Delete temporary files of interrupted appends and files a ``day-`` file replaced but a
        kill left behind. Runs when a writer opens the store; returns what it removed."""
        removed = {"temporary": 0, "replaced": 0}
        for run_dir in self.root.glob(f"*/run={self.run}"):
            for date_dir in run_dir.glob("date=*"):
                for tmp in date_dir.glob(".tmp-*"):
                    tmp.unlink(missing_ok=True)
                    removed["temporary"] += 1
                for day in date_dir.glob("day-*.parquet"):
                    meta = pq.read_schema(day).metadata or {}
                    for name in json.loads(meta.get(_REPLACES, b"[]")):
                        p = date_dir / name
                        if p.exists():
                            p.unlink()
                            removed["replaced"] += 1
        return removed

    # ---- files
    def tables(self) -> list[str]:
        """Tables that hold files of this run."""
        return sorted(p.parent.name for p in self.root.glob(f"*/run={self.run}") if p.is_dir())

    def runs(self, table: str = "kpis") -> list[str]:
        """Runs stored for ``table``."""
        return sorted(p.name.removeprefix("run=") for p in (self.root / table).glob("run=*") if p.is_dir())

    def _files(
        self, table: str, lo: int | None = None, hi: int | None = None, run: str | None = None
    ) -> list[_File]:
        run_dir = self.root / table / f"run={run or self.run}"
        lo_date = ms_to_date(lo) if lo is not None else None
        hi_date = ms_to_date(hi) if hi is not None else None
        out = []
        for date_dir in sorted(run_dir.glob("date=*")):
            d = date_dir.name.removeprefix("date=")
            if (lo_date and d < lo_date) or (hi_date and d > hi_date):
                continue
            found = []
            for p in date_dir.iterdir():
                m = _FILE.match(p.name)
                if m:
                    found.append(_File(p, m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))))
            replaced: set[str] = set()
            for f in found:
                if f.kind == "day":
                    replaced |= self._replaced(f.path)
            out.extend(
                f
                for f in found
                if f.path.name not in replaced
                and not ((lo is not None and f.hi < lo) or (hi is not None and f.lo >= hi))
            )
        return out

    def _replaced(self, path: Path) -> set[str]:
        """Names a ``day-`` file replaced (a kill between its rename and their deletion leaves
        them; readers skip them, a writer deletes them). Cached: files never change."""
        if path not in self._replaced_cache:
            meta = pq.read_schema(path).metadata or {}
            self._replaced_cache[path] = set(json.loads(meta.get(_REPLACES, b"[]")))
        return self._replaced_cache[path]

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _schema_check(self, name: str, table: pa.Table) -> None:
        known = self._schemas.get(name)
        if known is None:
            files = self._files(name)
            if files:
                known = pq.read_schema(max(files, key=lambda f: f.hi).path)
        if known is not None:
            clash = [
                f"{f.name} is {f.type}, stored as {known.field(f.name).type}"
                for f in table.schema
                if f.name in known.names and not known.field(f.name).type.equals(f.type)
            ]
            if clash:
                raise UserError(
                    f"append to {name!r}: column types differ from the stored ones: {'; '.join(clash)}"
                )
            merged = pa.unify_schemas([known, table.schema.remove_metadata()], promote_options="permissive")
        else:
            merged = table.schema
        self._schemas[name] = merged

    # ---- writes
    def append(self, table: pa.Table, name: str = "kpis") -> int:
        """Persist ``table`` (one reporting period, or more) to table ``name``; returns rows written.

        The time column (``period_start`` for KPIs, ``start`` for events, see
        :data:`TIME_COLUMNS`) decides the date partition; an append that spans dates writes one
        file per date, each atomically.
        """
        if self.read_only:
            if self.policy is not None and self.role is not None:
                self.policy.check_write(self.role)
            raise UserError(f"store {self.root} (run {self.run!r}) is open read-only")
        check_name(name, "table")
        if table.num_rows == 0:
            return 0
        tcol = time_column(table.schema)
        if table.schema.field(tcol).type != TIMESTAMP:
            table = table.set_column(
                table.schema.get_field_index(tcol),
                table.schema.field(tcol).with_type(TIMESTAMP),
                pc.cast(table[tcol], TIMESTAMP),
            )
        if table[tcol].null_count:
            raise UserError(f"append to {name!r}: {table[tcol].null_count} rows have no {tcol}")
        with self._lock:
            self._schema_check(name, table)
            ms = pc.cast(table[tcol], pa.int64()).to_numpy()
            days = ms // 86_400_000
            written = 0
            for day in np.unique(days):
                part = table if len(np.unique(days)) == 1 else table.filter(pa.array(days == day))
                pms = ms if part is table else ms[days == day]
                lo, hi = int(pms.min()), int(pms.max())
                date = ms_to_date(lo)
                folder = self._run_dir(name) / f"date={date}"
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / f"part-{lo}-{hi}-{self._next_seq():09d}.parquet"
                while path.exists():  # a previous process of this run used the number
                    path = folder / f"part-{lo}-{hi}-{self._next_seq():09d}.parquet"
                _atomic_parquet(
                    part,
                    path,
                    compression=self.compression,
                    fsync=self.fsync,
                    use_dictionary=[
                        c for c in part.column_names if pa.types.is_string(part.schema.field(c).type)
                    ],
                    write_statistics=[tcol, *(["cell_id"] if "cell_id" in part.column_names else [])],
                )
                written += part.num_rows
                self._remember(name, lo, hi, part)
                prev = self._latest_date.get(name)
                if prev is None or date > prev:
                    if prev is not None:
                        self._compact_in_background(name, before=date)
                    self._latest_date[name] = date
            return written

    def _compact_in_background(self, name: str, before: str) -> None:
        if self._compactor is None:
            self._compactor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-compact")
        self._pending = [f for f in self._pending if not f.done() or f.exception() is not None]
        self._pending.append(self._compactor.submit(self.compact, name, before))

    def wait_compaction(self) -> None:
        """Wait for the date-rollover compactions running in the background; re-raise the first
        error (a failed compaction loses nothing: the period files stay and stay readable)."""
        pending, self._pending = self._pending, []
        errors = [e for e in (f.exception() for f in pending) if e is not None]
        if self._compactor is not None:
            self._compactor.shutdown(wait=True)
            self._compactor = None
        if errors:
            raise errors[0]

    def _remember(self, name: str, lo: int, hi: int, part: pa.Table) -> None:
        if name not in self._cold_max:
            files = self._files(name)
            older = [f.hi for f in files if not (f.lo == lo and f.hi == hi and f.kind == "part")]
            self._cold_max[name] = max(older, default=-(2**62))
        hot = self._hot.setdefault(name, deque())
        self._hot_cache.pop(name, None)
        if self.hot_periods == 0:
            self._cold_max[name] = max(self._cold_max[name], hi)
            return
        hot.append(_Hot(lo, hi, part))
        while len(hot) > self.hot_periods:
            old = hot.popleft()
            self._cold_max[name] = max(self._cold_max[name], old.hi)

    def on_message(self, topic: str, table: pa.Table) -> None:
        """Bus callback: append a published table to the store table named after the topic."""
        self.append(table, name=topic)

    def attach(self, bus: object, *topics: str) -> list[object]:
        """Subscribe :meth:`on_message` to ``topics`` of ``bus`` (default: kpis, events, actions)."""
        return [bus.subscribe(t, self.on_message) for t in (topics or ("kpis", "events", "actions"))]  # type: ignore[attr-defined]

    def compact(self, name: str | None = None, before: str | None = None) -> int:
        """Merge each date's files, in time order, into one zstd-compressed ``day-`` file (dates before
        ``before`` only, when given); returns the number of files merged away.

        The merge reads and writes without holding the store lock (appends and queries go on); the
        replaced files are deleted under it, after the ``day-`` file is in place."""
        if self.read_only:
            return 0
        merged = 0
        with self._compact_lock:
            for tname in [name] if name else self.tables():
                for date_dir in sorted(self._run_dir(tname).glob("date=*")):
                    if before and date_dir.name.removeprefix("date=") >= before:
                        continue
                    merged += self._compact_date(tname, date_dir)
        return merged

    def _compact_date(self, table: str, date_dir: Path) -> int:
        with self._lock:
            files = [f for f in self._files(table) if f.path.parent == date_dir]
            seq = self._next_seq()
        if len(files) < 2:
            return 0
        files.sort(key=lambda f: (f.lo, f.hi, f.seq))  # time order; queries sort rows
        tab = pa.concat_tables([pq.read_table(f.path) for f in files], promote_options="permissive")
        meta = dict(tab.schema.metadata or {})
        meta[_REPLACES] = json.dumps(sorted(f.path.name for f in files)).encode()
        tab = tab.replace_schema_metadata(meta)
        lo, hi = min(f.lo for f in files), max(f.hi for f in files)
        _atomic_parquet(
            tab,
            date_dir / f"day-{lo}-{hi}-{seq:09d}.parquet",
            compression="zstd",
            compression_level=1,
            fsync=self.fsync,
            row_group_size=1 << 20,
        )
        with self._lock:
            for f in files:
                f.path.unlink(missing_ok=True)
        return len(files)

    # ---- reads
    def _connection(self):
        if self._con is None:
            import duckdb

            self._con = duckdb.connect(":memory:")
            self._con.execute("SET threads TO 2")
            self._con.execute("SET TimeZone = 'UTC'")
        return self._con

    def query(
        self,
        start: object = None,
        end: object = None,
        cells: Iterable[str] | None = None,
        kpis: Sequence[str] | None = None,
        table: str = "kpis",
        run: str | None = None,
    ) -> pa.Table:
        """Rows of ``table`` with ``start <= time < end`` (either may be None), for ``cells``
        (None: all), with the key columns and ``kpis`` (None: every column), sorted by time and
        cell. Times: datetime, ISO 8601 text (naive = UTC) or epoch ms. ``run``: another run
        of the same root (default this store's run)."""
        check_name(table, "table")
        lo = None if start is None else to_ms(start, "start")
        hi = None if end is None else to_ms(end, "end")
        if lo is not None and hi is not None and hi <= lo:
            raise UserError(f"query: end ({end}) must be after start ({start})")
        rule = None
        if self.policy is not None and self.role is not None:
            rule = self.policy.rule(self.role, table)
        cell_list = None if cells is None else [str(c) for c in cells]
        if isinstance(cells, str):
            cell_list = [cells]
        pseudo_cells = rule is not None and "cell_id" in rule.pseudonymise
        with self._lock:
            result = self._hot_query(table, lo, hi, None if pseudo_cells else cell_list, run)
            if result is None:
                result = self._cold_query(table, lo, hi, None if pseudo_cells else cell_list, run)
        result = self._select(result, table, kpis, rule)
        if rule is not None:
            result = self._apply_rule(result, rule)
            if pseudo_cells and cell_list is not None:
                result = result.filter(pc.is_in(result["cell_id"], pa.array(cell_list, pa.string())))
        return result

    def _select(self, tab: pa.Table, table: str, kpis: Sequence[str] | None, rule: object) -> pa.Table:
        names = tab.column_names
        if kpis is None:
            cols = list(names)
        else:
            kpis = [kpis] if isinstance(kpis, str) else list(kpis)
            unknown = [k for k in kpis if k not in names]
            if unknown and tab.num_rows:
                raise UserError(f"query {table!r}: no column(s) {unknown}; columns: {', '.join(names)}")
            keys = [c for c in (*KEY_COLUMNS, *TIME_COLUMNS) if c in names]
            cols = list(dict.fromkeys([*keys, *(k for k in kpis if k in names)]))
        if rule is not None:
            denied = [k for k in (kpis or []) if not rule.readable(k)]  # type: ignore[attr-defined]
            if denied:
                from mobileai.data.policy import AccessDenied

                raise AccessDenied(f"role {self.role!r} may not read column(s) {denied} of table {table!r}")
            cols = [c for c in cols if rule.readable(c)]  # type: ignore[attr-defined]
        return tab.select(cols)

    def _apply_rule(self, tab: pa.Table, rule: object) -> pa.Table:
        pseudo = [c for c in rule.pseudonymise if c in tab.column_names]  # type: ignore[attr-defined]
        if pseudo:
            tab = pseudonymise(tab, pseudo, load_key(self._pseudonym_key))
        steps = {c: s for c, s in rule.coarsen.items() if c in tab.column_names}  # type: ignore[attr-defined]
        return coarsen(tab, steps) if steps else tab

    def _hot_query(
        self, table: str, lo: int | None, hi: int | None, cells: list[str] | None, run: str | None
    ) -> pa.Table | None:
        hot = self._hot.get(table)
        if run not in (None, self.run) or not hot or lo is None:
            return None
        hot_lo = min(h.lo for h in hot)
        if lo < hot_lo or hot_lo <= self._cold_max.get(table, 2**62):
            return None
        tab = self._hot_cache.get(table)
        if tab is None:
            tab = pa.concat_tables([h.table for h in hot], promote_options="permissive").combine_chunks()
            self._hot_cache[table] = tab
        tcol = time_column(tab.schema)
        mask = pc.greater_equal(tab[tcol], pa.scalar(lo, TIMESTAMP))
        if hi is not None:
            mask = pc.and_(mask, pc.less(tab[tcol], pa.scalar(hi, TIMESTAMP)))
        if cells is not None:
            mask = pc.and_(mask, pc.is_in(tab["cell_id"], pa.array(cells, pa.string())))
        tab = tab.filter(mask)
        keys = [(tcol, "ascending")] + ([("cell_id", "ascending")] if "cell_id" in tab.column_names else [])
        return tab.sort_by(keys)

    def _cold_query(
        self, table: str, lo: int | None, hi: int | None, cells: list[str] | None, run: str | None
    ) -> pa.Table:
        run = check_name(run, "run") if run else self.run
        files = self._files(table, lo, hi, run)
        if not files:
            schema = self._schemas.get(table)
            if schema is None:
                if not (self.root / table / f"run={run}").exists():
                    have = ", ".join(self.tables()) or "none"
                    raise UserError(f"store {self.root}: no table {table!r} for run {run!r} (tables: {have})")
                schema = pa.schema([])
            return schema.empty_table()
        schema = pq.read_schema(files[0].path)
        tcol = time_column(schema)
        where, params = [], [[str(f.path) for f in files]]
        if lo is not None:
            where.append(f'"{tcol}" >= make_timestamp($lo * 1000)')
        if hi is not None:
            where.append(f'"{tcol}" < make_timestamp($hi * 1000)')
        if cells is not None:
            where.append("cell_id IN (SELECT unnest($cells))")
        order = f'"{tcol}"' + (", cell_id" if "cell_id" in schema.names else "")
        sql = "SELECT * FROM read_parquet($files, union_by_name = true, hive_partitioning = false)"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {order}"
        named = {"files": params[0]}
        if lo is not None:
            named["lo"] = lo
        if hi is not None:
            named["hi"] = hi
        if cells is not None:
            named["cells"] = cells
        tab = self._connection().sql(sql, params=named).to_arrow_table()
        # DuckDB returns timestamps with time zone as us; give back the store's ms UTC type.
        for i, f in enumerate(tab.schema):
            if pa.types.is_timestamp(f.type) and f.type != TIMESTAMP:
                tab = tab.set_column(i, f.with_type(TIMESTAMP), pc.cast(tab[f.name], TIMESTAMP))
        return tab

    def keys(self, table: str = "kpis", start: int | None = None, end: int | None = None) -> pa.Table:
        """(cell_id, time) pairs stored in ``[start, end]`` (epoch ms): duplicate detection on ingest."""
        with self._lock:
            files = self._files(table, start, None if end is None else end + 1)
            if not files:
                return pa.table({"cell_id": pa.array([], pa.string()), "t": pa.array([], pa.int64())})
            tcol = time_column(pq.read_schema(files[0].path))
            return (
                self._connection()
                .sql(
                    f'SELECT cell_id, epoch_ms("{tcol}") AS t '
                    "FROM read_parquet($files, union_by_name = true, hive_partitioning = false)",
                    params={"files": [str(f.path) for f in files]},
                )
                .to_arrow_table()
            )

    def summary(self) -> dict:
        """Tables of this run with their files, rows and time range."""
        out = {}
        for t in self.tables():
            with self._lock:
                files = self._files(t)
                rows = sum(pq.ParquetFile(f.path).metadata.num_rows for f in files)
                size = sum(f.path.stat().st_size for f in files)
            out[t] = {
                "files": len(files),
                "rows": rows,
                "start": None if not files else ms_to_date(min(f.lo for f in files)),
                "end": None if not files else ms_to_date(max(f.hi for f in files)),
                "bytes": size,
            }
        return out
