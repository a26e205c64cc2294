"""Reading a user's table file (Parquet or CSV): one home for every ``--kpis``/``--cells`` option.

Already-validated tables in our schema (``kpis.parquet`` of a run, a store export, a file the
user wrote in that schema) are read here; exports in the user's own column names go through
:mod:`mobileai.data.ingest` and a mapping instead.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from mobileai.errors import UserError

SUFFIXES = (".parquet", ".pq", ".csv")


def read_table_file(path: Path | str, what: str = "--kpis") -> pa.Table:
    """A Parquet or CSV file (by suffix) as an Arrow table; any problem is a :class:`UserError`
    naming the option ``what``, the file and the reason."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UserError(f"{what} {path}: use a .parquet or .csv file (got {suffix or 'no suffix'})")
    try:
        if suffix == ".csv":
            import pyarrow.csv as pacsv

            return pacsv.read_csv(path)
        import pyarrow.parquet as pq

        return pq.read_table(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        kind = "CSV" if suffix == ".csv" else "Parquet"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{what} {path}: cannot read it as {kind} ({first})") from None
