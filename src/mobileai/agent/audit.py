"""Append-only, tamper-evident audit log of every decision, verdict and outcome.

One JSON object per line (JSON Lines). Each record carries ``seq`` (0, 1, 2 ...), the SHA-256 of
the previous record (``prev``) and its own digest (``sha256``, over the record without that
field), so an edited, removed or reordered line breaks the chain (:func:`verify_audit`). The file
is opened in append mode only; :meth:`AuditLog.flush` writes the buffered records and fsyncs, and
the loop calls it once per reporting period, so a crash loses at most the period in flight.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

GENESIS = "0" * 64


def _digest(record: dict[str, Any]) -> str:
    blob = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()


class AuditLog:
    """Append records; ``path=None`` keeps them in memory only."""

    def __init__(self, path: Path | None) -> None:
        self.path = None if path is None else Path(path)
        self.records: list[dict[str, Any]] = []
        self._pending: list[str] = []
        self._prev = GENESIS
        if self.path is not None:
            # exclusive create: an existing audit log is never reopened for writing
            self.path.open("x", encoding="utf-8").close()

    def append(self, kind: str, **fields: Any) -> int:
        """Add a record of ``kind`` (decision, rollback, guard_pass, approval ...); returns its seq."""
        rec = {"seq": len(self.records), "kind": kind, **fields, "prev": self._prev}
        rec = json.loads(json.dumps(rec, default=str))  # plain JSON types only
        rec["sha256"] = _digest(rec)
        self._prev = rec["sha256"]
        self.records.append(rec)
        self._pending.append(json.dumps(rec, sort_keys=True, default=str))
        return rec["seq"]

    def flush(self) -> None:
        if self.path is None or not self._pending:
            self._pending.clear()
            return
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write("\n".join(self._pending) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self._pending.clear()


def record_cell(action: dict[str, Any]) -> str:
    """The cell an audited action (its JSON form) targets; a CIO pair is keyed by its source."""
    return str(action.get("cell", action.get("source")))


def verify_audit(path: Path) -> tuple[bool, str]:
    """Check the hash chain of an audit file: (ok, message naming the first bad line)."""
    prev = GENESIS
    with Path(path).open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            rec = json.loads(line)
            digest = rec.pop("sha256", None)
            if rec.get("seq") != n - 1:
                return False, f"line {n}: seq {rec.get('seq')} where {n - 1} was expected"
            if rec.get("prev") != prev:
                return False, f"line {n}: chain broken (prev does not match line {n - 1})"
            if _digest(rec) != digest:
                return False, f"line {n}: content does not match its sha256"
            prev = digest
    return True, "ok"
