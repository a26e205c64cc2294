"""The compiled handover / RLF / re-establishment pass (``mobileai.twin.handover``) computes what
the step's torch reference (``Twin._mobility_events`` / ``Twin._reestablish``) computes, bit for bit.

Both run on a small single-carrier network made to fail often: fast UEs, no hysteresis or
time-to-trigger (ping-pongs), a Qout high enough for handover failures and radio link failures,
and Qin above it (re-establishment attempts that fail and retry). After every step the two twins'
connection state and counters must be equal.
"""

from __future__ import annotations

import pytest
import torch

from mobileai.twin.config import Scenario
from mobileai.twin.engine import Twin

STATE = ("serving", "prev_cell", "last_ho_t", "out_until", "a3_timer", "t310", "oos", "_srv_slot", "l3")
EVENTS = ("ho_req", "ho_succ", "ho_fail", "ping_pong", "rlf", "sessions_dropped", "reestab")


def _harsh(priorities: dict[float, int] | None) -> Scenario:
    ran: dict = {"hysteresis_db": 0.0, "time_to_trigger_ms": 0.0, "qout_sinr_db": -3.0, "qin_sinr_db": 0.0}
    if priorities is not None:
        ran["layer_priority"] = {"priorities": priorities}
    return Scenario.model_validate(
        {
            "name": "harsh",
            "seed": 11,
            "layout": {"sites": 7, "isd_m": 300, "wrap_around": False},
            "ues": {"per_sector": 25, "indoor_ratio": 0.3},
            "mobility": {
                "model": "random_waypoint",
                "pause_s": 1.0,
                "speed_mix_kmh": {"30": 0.5, "120": 0.5},
            },
            "traffic": {"load_scale": 3.0},
            "time": {"step_ms": 100, "duration_s": 60, "start_hour": 12},
            "ran": ran,
        }
    )


@pytest.mark.parametrize("priorities", [None, {3.5: 5}])
def test_compiled_events_match_the_torch_reference(priorities: dict[float, int] | None) -> None:
    sc = _harsh(priorities)
    compiled, reference = Twin(sc), Twin(sc)
    assert compiled._compiled_events
    reference._compiled_events = False
    for step in range(400):
        compiled.step()
        reference.step()
        for name in STATE:
            a, b = getattr(compiled, name), getattr(reference, name)
            assert torch.equal(a, b), f"{name} differs after step {step}"
        assert torch.equal(compiled.counters._mat, reference.counters._mat), f"counters after step {step}"
    # the run reached every branch of both passes
    totals = {k: float(compiled.counters.sums[k].sum()) for k in EVENTS}
    assert all(v > 0 for v in totals.values()), totals
