"""Time values at the data plane's edges: user input (ISO 8601 text, datetimes, epoch ms) to UTC
epoch milliseconds, and reporting-period lengths ("15min", "2m", "1h", "900s") to seconds.

Every time column the store holds is an Arrow ``timestamp("ms", tz="UTC")``, the type the twin's
tables use (:data:`mobileai.twin.timeline.TIMESTAMP`); naive input is read as UTC (ISO 8601
without an offset, as TS 28.532 file names carry local time with an explicit offset otherwise).
"""

from __future__ import annotations

import datetime as dt
import re

import pyarrow as pa

from mobileai.errors import UserError

#: The timestamp type of every time column in the store.
TIMESTAMP = pa.timestamp("ms", tz="UTC")

_PERIOD = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|d)?\s*$", re.IGNORECASE)
_PERIOD_SCALE = {
    None: 1.0,
    "ms": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}


def parse_period(text: str | float | int, name: str = "period") -> float:
    """Seconds in a period such as ``"15min"``, ``"2m"``, ``"1h"``, ``"900s"`` or ``900``."""
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        m = _PERIOD.match(str(text))
        if not m:
            raise UserError(
                f"{name}: {text!r} is not a period; use a number with ms, s, min (or m), h or d, e.g. 15min"
            )
        seconds = float(m.group(1)) * _PERIOD_SCALE[m.group(2).lower() if m.group(2) else None]
    if not 0 < seconds <= 31 * 86400:
        raise UserError(f"{name}: {text!r} is not allowed; a period is longer than 0 s and at most 31 days")
    return seconds


def to_ms(value: object, name: str = "time") -> int:
    """UTC epoch milliseconds of ``value``: a datetime/date (naive = UTC), ISO 8601 text, a
    pandas/NumPy timestamp or an integer already in epoch ms."""
    if isinstance(value, bool):
        raise UserError(f"{name}: {value!r} is not a time")
    if isinstance(value, int):
        return value
    if hasattr(value, "to_pydatetime"):  # pandas.Timestamp
        value = value.to_pydatetime()
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            raise UserError(
                f"{name}: {value!r} is not an ISO 8601 time; use e.g. 2026-01-01, 2026-01-01T06:00 "
                "or 2026-01-01T06:00:00+01:00"
            ) from None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return round(value.timestamp() * 1000)
    raise UserError(f"{name}: {value!r} is not a time (datetime, ISO 8601 text or epoch ms)")


def ms_to_iso(ms: int) -> str:
    """ISO 8601 UTC text of epoch milliseconds."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat().replace("+00:00", "Z")


def ms_to_date(ms: int) -> str:
    """``YYYY-MM-DD`` (UTC) of epoch milliseconds: the store's date partition."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).date().isoformat()
