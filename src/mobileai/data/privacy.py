"""Privacy transforms for tables that leave the data plane.

- **Pseudonymisation** of UE/subscriber identifiers (IMSI/SUPI, GPSI, UE ids) by keyed hashing:
  HMAC-SHA-256 (RFC 2104, FIPS 198-1) of the identifier under a secret key, as GDPR Art. 4(5)
  defines pseudonymisation ("additional information kept separately") and as ETSI TS 133 501 /
  3GPP TS 33.501 6.12 conceals the SUPI. The same key maps the same identifier to the same
  pseudonym, so joins across tables still work; without the key the mapping cannot be reversed
  or rebuilt by hashing guessed IMSIs (a plain hash could be). There is no built-in key.
- **Coarsening** of locations (and times) to a grid: each value is replaced by the centre of its
  grid cell (generalisation, Sweeney 2002).
- **k-anonymity** (Samarati & Sweeney 1998; Sweeney, "k-anonymity: a model for protecting
  privacy", 2002): every combination of quasi-identifier values must be shared by at least k
  rows. :func:`k_anonymity` reports it; :func:`suppress_small_groups` removes the rows of smaller
  groups and returns them, so what is suppressed is counted, never silently dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mobileai.errors import UserError

#: Environment variable holding the pseudonymisation key (text; at least 16 characters).
KEY_ENV = "MOBILEAI_PSEUDONYM_KEY"
#: Hex characters kept of each HMAC (64 bits: collision-free in practice below ~10^8 identifiers).
PSEUDONYM_HEX = 16


def load_key(key: str | bytes | None = None) -> bytes:
    """The pseudonymisation key: ``key`` if given, else ``$MOBILEAI_PSEUDONYM_KEY``."""
    if key is None:
        key = os.environ.get(KEY_ENV)
    if key is None:
        raise UserError(
            f"pseudonymisation needs a secret key: set {KEY_ENV} (at least 16 characters) or pass one; "
            "there is deliberately no default key"
        )
    raw = key.encode() if isinstance(key, str) else bytes(key)
    if len(raw) < 16:
        raise UserError(f"pseudonymisation key: {len(raw)} bytes is too short; use at least 16")
    return raw


def pseudonym(value: str, key: bytes) -> str:
    """HMAC-SHA-256 of ``value`` under ``key``, first :data:`PSEUDONYM_HEX` hex characters."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]


def pseudonymise(table: pa.Table, columns: list[str], key: bytes) -> pa.Table:
    """``table`` with each of ``columns`` replaced by keyed pseudonyms (string; nulls stay null).

    Each distinct value is hashed once (dictionary encoding), so cost grows with distinct ids.
    """
    for name in columns:
        if name not in table.column_names:
            raise UserError(f"pseudonymise: no column {name!r}; the table has {table.column_names}")
        col = pc.cast(table[name], pa.string()).combine_chunks().dictionary_encode()
        mapped = pa.array([pseudonym(v, key) for v in col.dictionary.to_pylist()], type=pa.string())
        out = pa.DictionaryArray.from_arrays(col.indices, mapped).cast(pa.string())
        i = table.column_names.index(name)
        field = table.schema.field(name).with_type(pa.string())
        meta = dict(field.metadata or {})
        meta[b"privacy"] = b"HMAC-SHA-256 pseudonym (RFC 2104)"
        table = table.set_column(i, field.with_metadata(meta), out)
    return table


def coarsen(table: pa.Table, steps: dict[str, float]) -> pa.Table:
    """Replace each numeric column in ``steps`` by the centre of its grid cell of that size
    (e.g. ``{"x_m": 500, "y_m": 500}``; degrees for latitude/longitude). Timestamps: the step
    is in seconds and the value becomes the start of its interval."""
    for name, step in steps.items():
        if name not in table.column_names:
            raise UserError(f"coarsen: no column {name!r}; the table has {table.column_names}")
        if not step > 0:
            raise UserError(f"coarsen: step for {name!r} is {step!r}; it must be > 0")
        col = table[name]
        i = table.column_names.index(name)
        if pa.types.is_timestamp(col.type):
            ms = pc.cast(col, pa.int64()).to_numpy(zero_copy_only=False)
            q = round(step * 1000)
            out = pa.array((ms // q) * q, type=pa.int64()).cast(col.type)
            mask = pc.is_null(col).combine_chunks()
            out = pc.if_else(mask, pa.scalar(None, col.type), out)
        elif pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
            v = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
            out = pa.array(np.floor(v / step) * step + step / 2.0, type=pa.float64(), from_pandas=True)
        else:
            raise UserError(f"coarsen: column {name!r} is {col.type}; only numbers and timestamps coarsen")
        field = table.schema.field(name).with_type(out.type)
        meta = dict(field.metadata or {})
        meta[b"privacy"] = f"coarsened to a grid of {step:g}".encode()
        table = table.set_column(i, field.with_metadata(meta), out)
    return table


@dataclass(frozen=True)
class KAnonymityReport:
    """Result of a k-anonymity check over ``quasi_identifiers``."""

    k: int
    quasi_identifiers: list[str]
    rows: int
    groups: int
    smallest_group: int
    violating_groups: int
    violating_rows: int

    @property
    def ok(self) -> bool:
        return self.violating_rows == 0

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def _group_sizes(table: pa.Table, quasi: list[str]) -> pa.Table:
    missing = [q for q in quasi if q not in table.column_names]
    if missing:
        raise UserError(
            f"k-anonymity: no quasi-identifier column(s) {missing}; the table has {table.column_names}"
        )
    if not quasi:
        raise UserError("k-anonymity: name at least one quasi-identifier column")
    return table.select(quasi).group_by(quasi, use_threads=False).aggregate([([], "count_all")])


def k_anonymity(table: pa.Table, quasi_identifiers: list[str], k: int) -> KAnonymityReport:
    """Check that every quasi-identifier combination occurs in at least ``k`` rows."""
    if k < 1:
        raise UserError(f"k-anonymity: k={k} is not allowed; k >= 1")
    sizes = _group_sizes(table, quasi_identifiers)["count_all"].to_numpy()
    small = sizes[sizes < k]
    return KAnonymityReport(
        k=k,
        quasi_identifiers=list(quasi_identifiers),
        rows=table.num_rows,
        groups=len(sizes),
        smallest_group=int(sizes.min()) if len(sizes) else 0,
        violating_groups=len(small),
        violating_rows=int(small.sum()),
    )


def suppress_small_groups(table: pa.Table, quasi_identifiers: list[str], k: int) -> tuple[pa.Table, pa.Table]:
    """Split ``table`` into (rows in groups of at least ``k``, suppressed rows)."""
    if k < 1:
        raise UserError(f"k-anonymity: k={k} is not allowed; k >= 1")
    sizes = _group_sizes(table, quasi_identifiers)
    marked = table.append_column("__row", pa.array(np.arange(table.num_rows))).join(
        sizes, keys=quasi_identifiers, join_type="left outer", use_threads=False
    )
    keep_rows = np.sort(pc.filter(marked["__row"], pc.greater_equal(marked["count_all"], k)).to_numpy())
    mask = np.zeros(table.num_rows, dtype=bool)
    mask[keep_rows] = True
    return table.filter(pa.array(mask)), table.filter(pa.array(~mask))
