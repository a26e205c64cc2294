"""Inter-frequency layer priorities (TS 38.304 5.2.4.1) with events A4 / A5 (TS 38.331 5.5.4.5-6)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mobileai.errors import UserError
from mobileai.twin.actions import SetCellState
from mobileai.twin.config import LayerPriorityConfig, load_scenario
from mobileai.twin.engine import Twin
from mobileai.twin.layers import cell_priorities, layer_entering, preferred

CFG = LayerPriorityConfig(
    priorities={3.5: 6, 2.1: 4}, a4_threshold_dbm=-98, a5_threshold1_dbm=-102, a5_threshold2_dbm=-102
)


def test_each_priority_relation_uses_its_event():
    # one UE, serving priority 4 at -110 dBm; candidates: higher / lower / equal priority
    l3 = torch.tensor([[-97.0, -99.0, -90.0]])
    a3 = torch.tensor([[False, False, True]])
    prio = torch.tensor([[6, 2, 4]])
    hys = torch.tensor([2.0])
    ent = layer_entering(a3, l3, torch.tensor([-110.0]), prio, torch.tensor([4]), hys, CFG)
    # A4: -97 - 2 > -98 false; A5: -110 + 2 < -102 and -99 - 2 > -102; equal: the A3 result
    assert ent.tolist() == [[False, True, True]]
    ent = layer_entering(a3, l3 + 2, torch.tensor([-99.0]), prio, torch.tensor([4]), hys, CFG)
    # A4 now fires (-95 - 2 > -98); A5 not: the serving cell is above threshold1
    assert ent.tolist() == [[True, False, True]]


def test_preferred_keeps_the_highest_priority_among_fired_cells():
    fire = torch.tensor([[True, True, False], [False, False, False], [True, False, True]])
    prio = torch.tensor([[4, 6, 7], [6, 6, 6], [4, 4, 6]])
    assert preferred(fire, prio).tolist() == [
        [False, True, False],
        [False, False, False],
        [False, False, True],
    ]


def test_cell_priorities_cover_every_carrier_or_name_the_field():
    f = torch.tensor([3.5, 2.1, 3.5], dtype=torch.float64)
    assert cell_priorities(f, CFG).tolist() == [6, 4, 6]
    assert cell_priorities(f, LayerPriorityConfig()) is None
    with pytest.raises(UserError, match=r"ran\.layer_priority\.priorities.*\[2\.1\]"):
        cell_priorities(f, LayerPriorityConfig(priorities={3.5: 6}))
    with pytest.raises(ValueError, match="cellReselectionPriority"):
        LayerPriorityConfig(priorities={3.5: 8})


def _kpis(tw: Twin) -> list[dict[str, np.ndarray]]:
    return [r.columns for r in tw.reports]


def test_single_carrier_with_priorities_is_bit_identical():
    sc = load_scenario("dense-urban").with_updates(
        ues={"count": 300, "per_sector": None},
        time={"duration_s": 600.0, "report_period_s": 120.0, "step_ms": 1000.0, "start_hour": 11},
        traffic={"load_scale": 60.0},
    )
    ref = Twin(sc)
    ref.run()
    tw = Twin(sc.with_updates(ran={"layer_priority": {"priorities": {3.5: 5}}}))
    assert tw._prio is not None  # the priority path runs, every cell on the same priority
    tw.run()
    assert int(sum(r.columns["MM.HoExeIntraReq"].sum() for r in ref.reports)) > 0  # handovers happened
    assert torch.equal(ref.serving, tw.serving)
    for a, b in zip(_kpis(ref), _kpis(tw), strict=True):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def _two_layer_return(priorities: bool) -> tuple[int, int, int]:
    """UEs on n78 before, while every n78 cell is off, and 10 min after they came back."""
    sc = load_scenario("dense-urban-2layer").with_updates(
        ues={"count": 600, "per_sector": None},
        time={"duration_s": 3600.0, "step_ms": 5000.0, "radio_update_ms": 5000.0, "start_hour": 3},
        faults={"schedule": [], "random_per_cell_day": 0.0},
    )
    if not priorities:
        sc = sc.with_updates(ran={"layer_priority": {"priorities": {}}})
    tw = Twin(sc)
    n78 = [c for c in tw.cells.ids if not c.endswith("L")]

    def on_n78() -> int:
        return int((tw.carrier[tw.serving] > 3).sum())

    tw.run(60)
    before = on_n78()
    tw.apply([SetCellState(cell=c, state="off") for c in n78])
    tw.run(300)
    off = on_n78()
    tw.apply([SetCellState(cell=c, state="active") for c in n78])
    tw.run(600)
    return before, off, on_n78()


def test_capacity_layer_takes_its_ues_back_only_with_priorities():
    before, off, back = _two_layer_return(priorities=True)
    assert before >= 590 and off == 0
    _, _, back_a3 = _two_layer_return(priorities=False)
    # A3 with hysteresis leaves most UEs on n1 (n78 is 1.2-5.3 dB stronger); A4 returns every
    # UE whose n78 RSRP clears the threshold
    assert back > 0.9 * before
    assert back_a3 < 0.8 * before
