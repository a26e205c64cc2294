"""Bus: topics, filters (cells, KPIs, SQL condition), unsubscribe, failing subscribers."""

from __future__ import annotations

import pyarrow as pa
import pytest

from mobileai.data.bus import Bus, DeliveryError, Subscription
from mobileai.data.synthetic import synthetic_kpis
from mobileai.errors import UserError


def test_filters_select_rows_and_columns() -> None:
    bus = Bus()
    got: list[pa.Table] = []
    bus.subscribe(
        "kpis",
        lambda topic, t: got.append(t),
        Subscription(cells={"0-0", "1-1"}, kpis=("RRU.PrbUsedDl",), condition='"RRU.PrbUsedDl" >= 0'),
    )
    table = synthetic_kpis(9, 2)
    assert bus.publish("kpis", table) == 1
    (t,) = got
    assert sorted(set(t["cell_id"].to_pylist())) == ["0-0", "1-1"]
    assert t.column_names == ["period_start", "period_end", "cell_id", "site", "cell_type", "RRU.PrbUsedDl"]
    assert t.num_rows == 4


def test_condition_filters_and_no_match_means_no_call() -> None:
    bus = Bus()
    calls: list[int] = []
    table = synthetic_kpis(20, 1)
    threshold = sorted(table["RRU.PrbUsedDl"].to_pylist())[-3]
    bus.subscribe(
        "kpis", lambda _t, t: calls.append(t.num_rows), {"condition": f'"RRU.PrbUsedDl" >= {threshold}'}
    )
    bus.subscribe("kpis", lambda _t, t: calls.append(-1), {"condition": '"RRU.PrbUsedDl" > 1000'})
    bus.publish("kpis", table)
    assert calls == [3]


def test_unsubscribe_stops_delivery() -> None:
    bus = Bus()
    n = []
    h = bus.subscribe("events", lambda _t, t: n.append(1))
    ev = pa.table({"start": pa.array([0], pa.timestamp("ms", tz="UTC")), "cell_id": ["a"]})
    bus.publish("events", ev)
    assert bus.unsubscribe(h) is True
    bus.publish("events", ev)
    assert n == [1] and bus.unsubscribe(h) is False


def test_bad_input_is_a_user_error() -> None:
    bus = Bus()
    with pytest.raises(UserError, match="topic 'kpi' is not on this bus"):
        bus.subscribe("kpi", print)
    with pytest.raises(UserError, match="condition"):
        bus.subscribe("kpis", print, {"condition": "1 = 1; DROP TABLE t"})
    with pytest.raises(UserError, match="cells"):
        bus.subscribe("kpis", print, {"cells": []})
    with pytest.raises(UserError, match=r"pyarrow\.Table"):
        bus.publish("kpis", {"a": 1})  # type: ignore[arg-type]


def test_a_failing_subscriber_does_not_starve_the_others() -> None:
    bus = Bus()
    got = []

    def boom(_topic: str, _t: pa.Table) -> None:
        raise RuntimeError("disk full")

    bus.subscribe("kpis", boom)
    bus.subscribe("kpis", lambda _t, t: got.append(t.num_rows))
    with pytest.raises(DeliveryError, match="disk full"):
        bus.publish("kpis", synthetic_kpis(3, 1))
    assert got == [3]
    quiet = Bus(on_error="log")
    h = quiet.subscribe("kpis", boom)
    quiet.publish("kpis", synthetic_kpis(3, 1))
    assert len(h.errors) == 1
