"""In-process publish/subscribe bus for the closed loop: KPI tables, events and actions.

Each reporting period the twin (or a recorded dataset, or a live-network adapter) publishes its
KPI table on topic ``kpis``; apps, the store and monitors subscribe. A subscription carries a
filter in the manner of an NWDAF analytics/data subscription (3GPP TS 29.520 5.2.2.2, event
filters on cells and measurement types, with a reporting threshold) or an O-RAN E2SM-KPM report
subscription (O-RAN.WG3.E2SM-KPM 7.4: a cell list and a measurement list, with E2SM-KPM v3
"matching conditions"):

- ``cells``: only rows of these cells (``cell_id``);
- ``kpis``: only these KPI columns (the key columns always come along);
- ``condition``: a SQL boolean expression over the row, evaluated by DuckDB, e.g.
  ``'"RRU.PrbUsedDl" > 80 AND "DRB.UEThpDl" < 5000'`` (names with dots in double quotes).

A subscriber is called only with the rows that match, and not at all when none do. Delivery is
synchronous and in subscription order, so a publisher that returns knows every subscriber has
the period (the store has persisted it). A failing subscriber does not stop delivery to the
others; by default :meth:`Bus.publish` then raises :class:`DeliveryError` naming every failure.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mobileai.errors import UserError

log = logging.getLogger(__name__)

#: The bus's topics unless a :class:`Bus` is given others.
TOPICS = ("kpis", "events", "actions")
#: Columns delivered whatever ``kpis`` a subscription selects (those the table has).
KEY_COLUMNS = ("period_start", "period_end", "cell_id", "site", "cell_type", "start", "time")

Callback = Callable[[str, pa.Table], object]


class Subscription(BaseModel):
    """What a subscriber wants to see of a topic (all fields optional: everything)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cells: frozenset[str] | None = Field(None, description="Only rows of these cell_id values.")
    kpis: tuple[str, ...] | None = Field(None, description="Only these KPI columns (keys always kept).")
    condition: str | None = Field(None, description="SQL boolean expression over a row (DuckDB).")

    @field_validator("cells", "kpis")
    @classmethod
    def _non_empty(cls, v: frozenset[str] | tuple[str, ...] | None) -> object:
        if v is not None and len(v) == 0:
            raise ValueError("an empty list would match nothing; leave it out to match everything")
        return v

    @field_validator("condition")
    @classmethod
    def _one_expression(cls, v: str | None) -> str | None:
        if v is None:
            return v
        import duckdb

        try:
            statements = duckdb.extract_statements(f"SELECT * FROM t WHERE {v}")
        except duckdb.Error as exc:
            raise ValueError(f"not a valid SQL condition: {exc}") from None
        if len(statements) != 1:
            raise ValueError("the condition must be one boolean expression, not several statements")
        return v


@dataclass
class SubscriptionHandle:
    """What :meth:`Bus.subscribe` returns: pass it to :meth:`Bus.unsubscribe`."""

    id: int
    topic: str
    callback: Callback
    filter: Subscription
    delivered: int = 0
    errors: list[str] = field(default_factory=list)
    _con: object = None

    def select(self, table: pa.Table) -> pa.Table:
        """The rows and columns of ``table`` this subscription matches."""
        f = self.filter
        if f.cells is not None:
            if "cell_id" not in table.column_names:
                raise UserError(
                    f"subscription {self.id} filters on cells but the {self.topic} table has no cell_id"
                )
            table = table.filter(pc.is_in(table["cell_id"], pa.array(sorted(f.cells), pa.string())))
        if f.kpis is not None:
            missing = [k for k in f.kpis if k not in table.column_names]
            if missing:
                raise UserError(f"subscription {self.id} asks for {missing}, not in the {self.topic} table")
            keys = [c for c in KEY_COLUMNS if c in table.column_names]
            table = table.select(list(dict.fromkeys([*keys, *f.kpis])))
        if f.condition is not None and table.num_rows:
            if self._con is None:
                import duckdb

                self._con = duckdb.connect(":memory:")
            self._con.register("t", table)  # type: ignore[attr-defined]
            try:
                table = self._con.sql(f"SELECT * FROM t WHERE {f.condition}").to_arrow_table()  # type: ignore[attr-defined]
            finally:
                self._con.unregister("t")  # type: ignore[attr-defined]
        return table


class DeliveryError(RuntimeError):
    """One or more subscribers raised while a table was published (the others got it)."""


class Bus:
    """Synchronous in-process publish/subscribe of Arrow tables by topic."""

    def __init__(self, topics: tuple[str, ...] = TOPICS, on_error: Literal["raise", "log"] = "raise") -> None:
        if on_error not in ("raise", "log"):
            raise UserError(f"on_error: {on_error!r} is not allowed; use raise or log")
        self.topics = tuple(topics)
        self.on_error = on_error
        self._subs: dict[str, list[SubscriptionHandle]] = {t: [] for t in self.topics}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.published: dict[str, int] = dict.fromkeys(self.topics, 0)

    def _check_topic(self, topic: str) -> None:
        if topic not in self._subs:
            raise UserError(f"topic {topic!r} is not on this bus; topics: {', '.join(self.topics)}")

    def subscribe(
        self,
        topic: str,
        callback: Callback,
        filter: Subscription | dict | None = None,
    ) -> SubscriptionHandle:
        """Call ``callback(topic, table)`` with the matching rows of every table published on
        ``topic``. ``filter`` is a :class:`Subscription` or a dict of its fields."""
        self._check_topic(topic)
        if not callable(callback):
            raise UserError(f"subscribe: callback {callback!r} is not callable")
        if filter is None:
            filter = Subscription()
        elif isinstance(filter, dict):
            from pydantic import ValidationError

            from mobileai.errors import format_validation_error

            try:
                filter = Subscription.model_validate(filter)
            except ValidationError as exc:
                raise UserError(format_validation_error(exc, "subscription")) from None
        handle = SubscriptionHandle(next(self._ids), topic, callback, filter)
        with self._lock:
            self._subs[topic] = [*self._subs[topic], handle]
        return handle

    def unsubscribe(self, handle: SubscriptionHandle) -> bool:
        """Stop deliveries to ``handle``; False if it was not subscribed."""
        with self._lock:
            subs = self._subs.get(handle.topic, [])
            if handle not in subs:
                return False
            self._subs[handle.topic] = [h for h in subs if h is not handle]
            return True

    def subscribers(self, topic: str) -> list[SubscriptionHandle]:
        self._check_topic(topic)
        return list(self._subs[topic])

    def publish(self, topic: str, table: pa.Table) -> int:
        """Deliver ``table`` to ``topic``'s subscribers; returns how many were called."""
        self._check_topic(topic)
        if not isinstance(table, pa.Table):
            raise UserError(f"publish: expected a pyarrow.Table on {topic!r}, got {type(table).__name__}")
        self.published[topic] += 1
        called, failures = 0, []
        for h in self._subs[topic]:  # a snapshot: the list is replaced, never mutated
            try:
                rows = h.select(table)
                if rows.num_rows == 0:
                    continue
                h.callback(topic, rows)
                h.delivered += 1
                called += 1
            except Exception as exc:
                who = getattr(h.callback, "__qualname__", h.callback)
                msg = f"subscription {h.id} ({who}): {type(exc).__name__}: {exc}"
                h.errors.append(msg)
                failures.append((msg, exc))
                log.error("bus %s: %s", topic, msg)
        if failures and self.on_error == "raise":
            raise DeliveryError(
                f"{len(failures)} subscriber(s) failed on {topic!r}: " + "; ".join(m for m, _ in failures)
            ) from failures[0][1]
        return called
