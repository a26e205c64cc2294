"""The handover-rate check (`mobileai bench handover`) on a small scenario."""

from __future__ import annotations

import math

from mobileai.bench.handover import geometric_crossings_per_m, measure
from mobileai.twin.config import load_scenario


def test_geometric_crossings_follow_buffon_on_the_hex_grid() -> None:
    sc = load_scenario("dense-urban")  # 300 m ISD, 3 sectors: L = 4 / D, rate (2/pi) L
    assert math.isclose(geometric_crossings_per_m(sc), 8.0 / (math.pi * 300.0))
    omni = sc.with_updates(layout={"sectors": 1})
    assert math.isclose(geometric_crossings_per_m(omni), 4.0 / (math.pi * 300.0))


def test_rates_per_speed_class_are_consistent() -> None:
    sc = load_scenario("dense-urban").with_updates(
        ues={"per_sector": 6, "indoor_ratio": 0.0},
        mobility={"speed_mix_kmh": {3.0: 0.5, 120.0: 0.5}},
        faults={"schedule": [], "random_per_cell_day": 0},
    )
    rows = measure(sc, seconds=20.0)
    assert set(rows) == {"3", "120"}
    slow, fast = rows["3"], rows["120"]
    assert slow["ues"] + fast["ues"] == sc.ues.per_sector * 57
    # distance travelled matches the class speed (no wrap-around jumps counted)
    assert fast["km_per_ue"] <= 120 / 3.6 * 20.0 / 1000.0 + 1e-9
    assert fast["km_per_ue"] > 20 * slow["km_per_ue"]
    for r in rows.values():
        assert 0.0 <= r["ping_pong_share"] <= 1.0
        assert r["handovers_per_min"] >= 0.0 and r["map_changes_per_min"] >= 0.0
    # faster UEs cross more of the best-server map
    assert fast["map_changes_per_min"] > slow["map_changes_per_min"]
