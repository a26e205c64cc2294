"""The dynamic twin: sanity of time, traffic, handover, faults, energy and actions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mobileai.twin.actions import SetCellState, SetHandoverParams, SetTxPower, parse_action
from mobileai.twin.config import Scenario
from mobileai.twin.energy import CellState
from mobileai.twin.engine import Twin


def small(**over) -> Scenario:
    base = {
        "name": "small",
        "seed": 3,
        "radio": {"scenario": "uma", "carrier_ghz": 3.5, "bandwidth_mhz": 20, "subcarrier_spacing_khz": 30},
        "layout": {"sites": 7, "isd_m": 300, "wrap_around": False},
        "bs": {"antenna": {"electrical_downtilt_deg": 9}},
        "ues": {"per_sector": 10, "indoor_ratio": 0.5},
        "time": {"step_ms": 100, "report_period_s": 30, "duration_s": 60, "start_hour": 20,
                 "radio_update_ms": 500, "candidate_refresh_s": 2},
        "traffic": {"load_scale": 3.0},
    }  # fmt: skip
    sc = Scenario.model_validate(base)
    return sc.with_updates(**over) if over else sc


def table(tw: Twin) -> dict[str, np.ndarray]:
    cols: dict[str, list] = {}
    for r in tw.reports:
        for k, v in r.columns.items():
            cols.setdefault(k, []).append(v)
    return {k: np.stack(v) for k, v in cols.items()}


def test_same_seed_same_kpis() -> None:
    a, b = Twin(small()), Twin(small())
    a.run(30)
    b.run(30)
    ta, tb = table(a), table(b)
    assert ta.keys() == tb.keys()
    for k in ta:
        np.testing.assert_array_equal(ta[k], tb[k], err_msg=k)


def test_kpis_are_sane() -> None:
    tw = Twin(small())
    tw.run(60)
    t = table(tw)
    assert len(tw.reports) == 2
    assert np.all(t["RRU.PrbUsedDl"] >= 0) and np.all(t["RRU.PrbUsedDl"] <= 100)
    assert np.nansum(t["DRB.PdcpSduVolumeDL"]) > 0
    assert np.all(t["MM.HoExeIntraSucc"] <= t["MM.HoExeIntraReq"])
    # every UE is connected to some cell at all times except during interruptions
    assert t["RRC.ConnMean"].sum(1).max() <= tw.n_ues
    assert t["RRC.ConnMean"].sum(1).min() > 0.9 * tw.n_ues
    assert np.all(t["PEE.AvgPower"] > 0)


def test_ping_pongs_rise_when_hysteresis_and_ttt_go_to_zero() -> None:
    fast = {"mobility": {"model": "random_waypoint", "speed_mix_kmh": {60.0: 1.0}, "pause_s": 0},
            "ues": {"per_sector": 10, "indoor_ratio": 0.0}}  # fmt: skip
    tight = Twin(small(**fast, ran={"hysteresis_db": 0.0, "time_to_trigger_ms": 0.0, "l3_filter_k": 0}))
    loose = Twin(small(**fast))
    tight.run(60)
    loose.run(60)
    pp_tight = table(tight)["mobileai.HoPingPong"].sum()
    pp_loose = table(loose)["mobileai.HoPingPong"].sum()
    ho_tight = table(tight)["MM.HoExeIntraReq"].sum()
    ho_loose = table(loose)["MM.HoExeIntraReq"].sum()
    assert ho_tight > ho_loose
    assert pp_tight > pp_loose


def test_outage_neighbours_absorb_the_ues() -> None:
    sc = small(faults={"schedule": [{"kind": "outage", "cell": 0, "start_s": 30, "duration_s": 60}]})
    tw = Twin(sc)
    tw.run(30)
    before = table(tw)["RRC.ConnMean"][0]
    victim_ues = int((tw.serving == 0).sum())
    assert victim_ues > 0
    tw.run(30)
    after = table(tw)["RRC.ConnMean"][1]
    assert after[0] < 0.2 * before[0]
    assert int((tw.serving == 0).sum()) == 0
    assert after.sum() == pytest.approx(before.sum(), rel=0.1)  # nobody lost for good
    assert tw.faults.events[0].kind == "outage"


def test_fault_seed_draws_another_schedule_over_the_same_network() -> None:
    from mobileai.data.twin_history import scenario_key

    rich = small(faults={"random_per_cell_day": 24.0}, time={"duration_s": 3600})
    schedule = [(e.kind, e.cell, e.start_s) for e in Twin(rich).faults.events]
    assert len(schedule) > 5
    assert [(e.kind, e.cell, e.start_s) for e in Twin(rich).faults.events] == schedule  # seeded
    other = Twin(rich.with_updates(faults={"seed": 1}))
    assert [(e.kind, e.cell, e.start_s) for e in other.faults.events] != schedule
    base = Twin(rich)
    assert torch.equal(other.mobility.x, base.mobility.x)  # same drop: only the faults differ
    assert scenario_key(rich) != scenario_key(rich.with_updates(faults={"seed": 1}))  # own cache


def test_sleep_saves_energy_and_waking_costs_the_tr38864_transition() -> None:
    tw = Twin(small())
    tw.run(30)
    e_awake = table(tw)["mobileai.EnergyJ"][0].sum()
    res = tw.apply([SetCellState(cell=i, state="deep_sleep") for i in range(1, tw.n_cells)])
    assert all(r.applied for r in res)
    tw.run(30)
    e_sleep = table(tw)["mobileai.EnergyJ"][1].sum()
    assert e_sleep < 0.6 * e_awake
    # one deep-sleep wake-up costs 1000 relative-power-ms, i.e. 10 ms at full-load power
    before = float(tw.counters.sums["energy_j"][1])
    tw.apply([SetCellState(cell=1, state="active")])
    extra = float(tw.counters.sums["energy_j"][1]) - before
    assert extra == pytest.approx(float(tw.energy.p_full_w[1]) * 1000 / 100 * 1e-3, rel=1e-5)
    assert float(tw.wake_until[1]) == pytest.approx(tw.t + 0.050, abs=1e-6)


def test_actions_are_reversible_and_validated() -> None:
    tw = Twin(small())
    cell = tw.cells.ids[2]
    half = torch.full((tw.n_cells,), 0.5)
    awake = torch.zeros(tw.n_cells, dtype=torch.bool)
    p_before = tw.energy.power_w(tw.state, half, awake)
    r = tw.apply([SetTxPower(cell=cell, tx_power_dbm=30.0)])[0]
    p_after = tw.energy.power_w(tw.state, half, awake)
    assert float(p_after[2]) < float(p_before[2]) and torch.equal(p_after[3:], p_before[3:])
    assert r.applied and r.previous == pytest.approx(46.0)
    assert float(tw.tx_power_dbm[2]) == 30.0
    # the load-dependent power follows the radiated power (EARTH), the rest stays
    assert float(tw.energy.p_max_w[2]) == pytest.approx(10 ** ((30.0 - 30) / 10), rel=1e-5)
    assert float(tw.energy.p_full_w[2]) == pytest.approx(float(tw.energy.p_full_w[3]))
    tw.revert(r)
    assert float(tw.tx_power_dbm[2]) == pytest.approx(46.0)
    assert float(tw.energy.p_max_w[2]) == pytest.approx(10 ** ((46.0 - 30) / 10), rel=1e-5)
    r = tw.apply([SetHandoverParams(cell=2, hysteresis_db=0.5, time_to_trigger_ms=40)])[0]
    assert r.previous == pytest.approx((2.0, 320.0))
    bad = tw.apply([SetTxPower(cell="nope", tx_power_dbm=30.0)])[0]
    assert not bad.applied and "unknown cell" in bad.reason
    with pytest.raises(ValueError):
        parse_action({"kind": "tx_power", "cell": 1, "tx_power_dbm": 99})
    assert int(tw.state[0]) == CellState.ACTIVE


def test_busy_hour_carries_more_than_night() -> None:
    night = Twin(small(time={"start_hour": 4.0}))
    evening = Twin(small(time={"start_hour": 20.0}))
    night.run(60)
    evening.run(60)
    v_night = table(night)["DRB.PdcpSduVolumeDL"].sum()
    v_evening = table(evening)["DRB.PdcpSduVolumeDL"].sum()
    assert v_evening > 1.5 * v_night


def test_runs_on_device_cpu_explicitly() -> None:
    tw = Twin(small(), device="cpu")
    tw.run(1)
    assert tw.serving.device == torch.device("cpu")


def test_copies_are_independent_instances_in_one_pass() -> None:
    one = Twin(small())
    three = Twin(small(), copies=3)
    assert three.n_cells == 3 * one.n_cells and three.n_ues == 3 * one.n_ues
    assert three.cells.ids[one.n_cells] == f"1/{one.cells.ids[0]}"
    one.run(10)
    three.run(10)
    c, u = one.n_cells, one.n_ues
    # copy 0 uses the same drop as the single twin; every UE stays within its copy's cells
    assert torch.equal(three._ues0.x[:u], one._ues0.x)
    copy_of_cell = three.serving // c
    assert torch.equal(copy_of_cell, torch.arange(three.n_ues) // u)
    assert torch.all(three.cand // c == (torch.arange(three.n_ues) // u)[:, None])
    w = three.window()
    assert w["energy_j"].shape == (3 * c,) and float(w["seconds"]) == pytest.approx(10.0)
    w2 = three.window()
    assert float(w2["seconds"]) == pytest.approx(0.0) and float(w2["energy_j"].sum()) == 0.0


def test_new_episode_restarts_the_same_networks_with_new_ues_reproducibly() -> None:
    def episode_two() -> Twin:
        tw = Twin(small(), copies=2)
        tw.run(10)
        tw.apply([SetCellState(cell=0, state="deep_sleep")])
        tw.new_episode()
        return tw

    a, b = episode_two(), episode_two()
    fresh = Twin(small(), copies=2)
    c, u = fresh.cells_per_copy, fresh.ues_per_copy
    # clock, cells, counters and logs start afresh; the networks stay, the UEs are dropped anew
    assert a.t == 0.0 and a.steps == 0 and a.reports == [] and a.action_log == []
    assert int(a.state.abs().sum()) == 0 and float(a.counters.sums["energy_j"].sum()) == 0.0
    assert torch.equal(a.cell_type, fresh.cell_type) and not torch.equal(a._ues0.x, fresh._ues0.x)
    assert a.n_ues == fresh.n_ues and a.mobility.x.shape == fresh.mobility.x.shape
    # every copy's UEs are placed and served inside that copy's cells
    assert torch.equal(a.serving // c, torch.arange(a.n_ues) // u)
    a.run(10)
    b.run(10)
    assert torch.equal(a._ues0.x, b._ues0.x)  # reproducible from the seed
    wa, wb = a.window(), b.window()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    assert float(wa["dl_bits"].sum()) > 0 and float(wa["seconds"]) == pytest.approx(10.0)


@pytest.mark.parametrize("model", ["static", "random_waypoint", "gauss_markov", "street_grid"])
def test_mobility_models_move_outdoor_ues_only_and_stay_in_the_area(model: str) -> None:
    tw = Twin(small(mobility={"model": model}, ues={"per_sector": 5, "indoor_ratio": 0.5}))
    x0, y0 = tw.mobility.x.clone(), tw.mobility.y.clone()
    tw.run(20)
    moved = (tw.mobility.x - x0).abs() + (tw.mobility.y - y0).abs() > 0
    assert not torch.any(moved & tw._ues0.indoor)  # indoor UEs stay where they were dropped
    assert bool(moved.any()) == (model != "static")
    x_lo, x_hi, y_lo, y_hi = tw.mobility.box
    assert torch.all((tw.mobility.x >= x_lo - 1) & (tw.mobility.x <= x_hi + 1))
    assert torch.all((tw.mobility.y >= y_lo - 1) & (tw.mobility.y <= y_hi + 1))


def _blocking(tw: Twin) -> tuple[float, float]:
    t = table(tw)
    return float(np.nansum(t["mobileai.SessionsBlocked"])), float(np.nansum(t["mobileai.SessionsNew"]))


def test_a_cell_full_of_bulk_downloads_still_admits_non_gbr_sessions() -> None:
    """Admission control blocks by GBR need, not by PRB use: full-buffer UEs keep every cell's
    PRBs at 100 %, yet web sessions (5QI 9) all start."""
    tw = Twin(small(traffic={"load_scale": 3.0, "service_mix": {"full_buffer": 0.3, "embb_web": 0.7}}))
    tw.run(60)
    assert np.nanmean(table(tw)["RRU.PrbUsedDl"]) > 90
    blocked, new = _blocking(tw)
    assert new > 20 and blocked == 0


def test_gbr_sessions_are_blocked_when_their_cell_cannot_guarantee_them() -> None:
    """4 Mbit/s uplink camera streams (5QI 71, GBR) need a large share of a 100 MHz TDD cell's
    UL: some cells' GBR need reaches the limit and further streams are refused; a stricter limit
    refuses more."""
    mix = {"traffic": {"load_scale": 10.0, "service_mix": {"ai_camera_ul": 0.5, "embb_web": 0.5}}}
    radio = {"scenario": "uma", "carrier_ghz": 3.5, "bandwidth_mhz": 100, "subcarrier_spacing_khz": 30}
    strict = Twin(small(**mix, radio=radio, ran={"admission_gbr_prb_limit": 0.1}))
    loose = Twin(small(**mix, radio=radio, ran={"admission_gbr_prb_limit": 1.0}))
    strict.run(60)
    loose.run(60)
    (b_strict, n_strict), (b_loose, n_loose) = _blocking(strict), _blocking(loose)
    assert n_strict > 0 and b_loose < b_strict
    assert n_loose > n_strict


def test_session_cap_limits_sessions_per_cell() -> None:
    capped = Twin(small(ran={"admission_max_sessions": 1}))
    capped.run(30)
    blocked, _ = _blocking(capped)
    assert blocked > 0
    free = Twin(small())
    free.run(30)
    assert _blocking(free)[0] < blocked


def test_a_gbr_flow_the_cell_cannot_guarantee_is_refused_and_reserves_nothing() -> None:
    """On a 5 MHz TDD carrier a 4 Mbit/s UL camera stream (5QI 71) needs more than every UL PRB
    at almost any SINR: camera sessions are refused, while VoIP calls (5QI 1, 40 kbit/s) on the
    same cells are admitted, since no camera reserves anything."""
    from mobileai.twin.config import SERVICES
    from mobileai.twin.traffic import Traffic

    radio = {"scenario": "uma", "carrier_ghz": 3.5, "bandwidth_mhz": 5, "subcarrier_spacing_khz": 30}
    mix = {"load_scale": 30.0, "service_mix": {"ai_camera_ul": 0.5, "voip": 0.5}}
    tw = Twin(small(radio=radio, traffic=mix))
    tried = {s: 0 for s in SERVICES}
    refused = dict(tried)
    step = tw.traffic.step

    def counting(self: Traffic, *args):  # type: ignore[no-untyped-def]
        out = step(*args)
        for name, mask in (("tried", out.new_sessions | out.blocked), ("refused", out.blocked)):
            for s in self.service[mask].tolist():
                (tried if name == "tried" else refused)[SERVICES[s]] += 1
        return out

    tw.traffic.step = counting.__get__(tw.traffic)  # type: ignore[method-assign]
    tw.run(60)
    assert tried["ai_camera_ul"] > 5 and refused["ai_camera_ul"] >= 0.8 * tried["ai_camera_ul"]
    assert tried["voip"] > 5 and refused["voip"] <= 0.2 * tried["voip"]
