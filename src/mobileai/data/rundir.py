"""Run directories: written whole or not at all.

A run is built in a temporary sibling directory (``DIR.tmp-<random>``) and renamed into place
with :func:`os.replace` once every file is complete, so an error, bad input or an interrupted
run never leaves a half-written ``DIR``. An existing ``DIR`` that is not empty is refused (a
run directory is never overwritten); an existing empty one is replaced.

Contents written here: Parquet tables (zstd), a DuckDB catalog holding the same tables (DuckDB
resolves relative Parquet paths against the *process's* working directory, not the database
file, so views over ``ues.parquet`` would break when the directory moves; tables do not),
JSON and text files, and the file list with sizes and SHA-256 for the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

import pyarrow as pa
import pyarrow.parquet as pq

from mobileai.errors import UserError

PARQUET_COMPRESSION = "zstd"


def check_target(out: Path) -> None:
    """Refuse an output path that exists and is not an empty directory (raises UserError)."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise UserError(f"--out {out}: exists and is not a directory; choose a new run directory")
    if out.is_dir() and any(out.iterdir()):
        raise UserError(
            f"--out {out}: directory exists and is not empty; a run directory is never "
            "overwritten, choose a new one or delete it"
        )
    for parent in out.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"--out {out}: {parent} is not a directory")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise UserError(f"--out {out}: no permission to write in {parent}")
            break


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class RunDir:
    """Context manager that builds a run directory atomically.

    >>> with RunDir(Path("runs/a")) as rd:       # doctest: +SKIP
    ...     rd.write_parquet("ues", table)
    ...     rd.commit()                           # rename into place; without it nothing stays
    """

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.tmp: Path | None = None
        self.committed = False
        self._made_parents: list[Path] = []

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> RunDir:
        check_target(self.out)
        parent = self.out.absolute().parent
        missing = []
        p = parent
        while not p.exists():
            missing.append(p)
            p = p.parent
        for p in reversed(missing):
            p.mkdir()
            self._made_parents.append(p)
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{self.out.name}.tmp-", dir=parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp, 0o777 & ~umask)  # mkdtemp makes it private; a run dir is not
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.committed:
            self.abort()

    def abort(self) -> None:
        """Remove the temporary directory and any parent directories this run created."""
        if self.tmp is not None and self.tmp.exists():
            shutil.rmtree(self.tmp, ignore_errors=True)
        for p in reversed(self._made_parents):
            try:
                p.rmdir()
            except OSError:
                break
        self._made_parents = []

    def commit(self) -> Path:
        """Rename the finished directory into place; refuses if ``out`` appeared meanwhile."""
        assert self.tmp is not None, "commit() outside the with block"
        check_target(self.out)
        try:
            os.replace(self.tmp, self.out)
        except OSError:
            if self.out.is_dir() and not any(self.out.iterdir()):
                self.out.rmdir()  # platforms that cannot rename over an empty directory
                os.replace(self.tmp, self.out)
            elif self.out.exists():
                raise UserError(f"--out {self.out}: appeared while the run was written") from None
            else:
                raise
        self.committed = True
        self.tmp = None
        return self.out

    # ------------------------------------------------------------------ writers
    def path(self, name: str) -> Path:
        assert self.tmp is not None, "write outside the with block"
        p = self.tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write_parquet(self, name: str, table: pa.Table) -> Path:
        p = self.path(f"{name}.parquet")
        pq.write_table(table, p, compression=PARQUET_COMPRESSION)
        return p

    def write_json(self, name: str, obj: object) -> Path:
        p = self.path(name)
        p.write_text(json.dumps(obj, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        return p

    def write_text(self, name: str, text: str) -> Path:
        p = self.path(name)
        p.write_text(text, encoding="utf-8")
        return p

    def write_bytes(self, name: str, data: bytes) -> Path:
        p = self.path(name)
        p.write_bytes(data)
        return p

    def write_catalog(
        self, name: str, tables: dict[str, pa.Table], columns: list[dict[str, str]] | None = None
    ) -> Path:
        """A DuckDB database with one table per Arrow table, plus an optional column dictionary."""
        import duckdb

        p = self.path(name)
        con = duckdb.connect(str(p))
        try:
            for tname, table in tables.items():
                con.register("_src", table)
                con.execute(f'CREATE TABLE "{tname}" AS SELECT * FROM _src')
                con.unregister("_src")
            if columns:
                dictionary = pa.Table.from_pylist(columns)
                con.register("_src", dictionary)
                con.execute("CREATE TABLE columns AS SELECT * FROM _src")
                con.unregister("_src")
            con.execute("CHECKPOINT")
        finally:
            con.close()
        return p

    def files(self) -> list[dict[str, object]]:
        """Every file written so far: relative path, size in bytes and SHA-256."""
        assert self.tmp is not None
        out = []
        for p in sorted(self.tmp.rglob("*")):
            if p.is_file():
                out.append(
                    {
                        "path": p.relative_to(self.tmp).as_posix(),
                        "bytes": p.stat().st_size,
                        "sha256": sha256(p),
                    }
                )
        return out
