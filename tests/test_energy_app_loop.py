"""Energy apps through the closed loop (guardrails, approval, rollback) and the RL variant on a
small twin: 7 sites / 21 cells, 63 UEs at night, 1-min periods, 1 s radio step."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch

from mobileai.agent.approval import make_approver
from mobileai.agent.audit import AuditLog
from mobileai.agent.guardrails import GuardrailConfig
from mobileai.agent.loop import run_loop
from mobileai.ai4net.app import BUILTIN_APPS, make_app
from mobileai.ai4net.energy import rl
from mobileai.ai4net.energy.app import EnergySaver, EnergyThreshold
from mobileai.ai4net.topology import neighbour_graph
from mobileai.data.network import Observation, TwinNetwork
from mobileai.errors import UserError
from mobileai.twin.actions import ActionResult
from mobileai.twin.config import Scenario


def night(**over) -> Scenario:
    base = {
        "name": "night-7-sites",
        "seed": 3,
        "radio": {"scenario": "uma", "carrier_ghz": 3.5, "bandwidth_mhz": 20, "subcarrier_spacing_khz": 30},
        "layout": {"sites": 7, "isd_m": 300, "wrap_around": False},
        "ues": {"per_sector": 3, "indoor_ratio": 0.3},
        "time": {"step_ms": 1000, "report_period_s": 60, "start_hour": 3, "radio_update_ms": 1000,
                 "duration_s": 360},
        "traffic": {"load_scale": 1.0},
        "faults": {"schedule": [], "random_per_cell_day": 0.0},
    }  # fmt: skip
    sc = Scenario.model_validate(base)
    return sc.with_updates(**over) if over else sc


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _run(app_cls, approver: str = "accept", **opts):
    net = TwinNetwork(night())
    app = app_cls(net.cells, **opts)
    audit = AuditLog(None)
    stats = run_loop(net, [app], GuardrailConfig(), make_approver(approver), audit)
    decisions = [r for r in audit.records if r["kind"] == "decision"]
    return net, app, stats, decisions


def test_registry_paths_build_the_apps():
    cells = TwinNetwork(night()).cells
    assert BUILTIN_APPS["energy-saver"] == "mobileai.ai4net.energy.app:EnergySaver"
    assert isinstance(make_app("energy-saver", cells), EnergySaver)
    assert isinstance(make_app("energy-threshold", cells, periods=1), EnergyThreshold)


def test_saver_sleeps_cells_in_deep_sleep_within_the_guardrails():
    net, app, stats, decisions = _run(EnergySaver)
    states = net.config().column("state").to_pylist()
    asleep = [s for s in states if s != "active"]
    assert asleep, "a night-time network at low load should put cells to sleep"
    assert set(asleep) == {"deep_sleep"}  # default: no 'off', so no approval
    assert len(asleep) <= 0.5 * len(states)  # the guardrails' max_sleeping_share, planned for
    assert stats.approvals_asked == 0 and stats.rejected_limits == 0
    assert stats.applied == app.counts["applied"] > 0
    for d in decisions:
        assert d["evidence"]["binding"] in ("own_forecast", "demand_forecast", "neighbour_capacity")
        if d["action"]["state"] == "deep_sleep":
            assert "forecast DL PRB hi80" in d["reason"]
            assert d["evidence"]["forecast_hi80"] < 20.0
    summary = app.explain()
    assert summary["forecaster"] == "persistence"
    assert summary["sleeping_cells_now"] == len(asleep)


def test_off_is_high_impact_and_waits_for_approval():
    net, app, stats, decisions = _run(EnergySaver, approver="reject", allow_off=True)
    assert decisions and all(d["action"]["state"] == "off" for d in decisions)
    assert all(d["impact"] == "high" and d["verdict"] == "denied" for d in decisions)
    assert stats.approvals_denied == stats.approvals_asked == len(decisions)
    assert app.counts["not_applied"] == len(decisions) and app.counts["applied"] == 0
    assert set(net.config().column("state").to_pylist()) == {"active"}


def test_threshold_rule_app_sleeps_only_cells_under_x():
    _net, app, stats, decisions = _run(EnergyThreshold, periods=1, sleep_below_pct=10.0)
    sleeps = [d for d in decisions if d["action"]["state"] != "active"]
    assert sleeps and stats.applied == len(decisions)
    assert all(d["evidence"]["prb_dl"] < 10.0 and d["evidence"]["binding"] == "own_load" for d in sleeps)
    assert app.explain()["decisions"]["applied"] == stats.applied


def _obs(cells: pa.Table, prb: list[float], states: list[str], index: int = 0) -> Observation:
    ids = cells.column("cell_id").to_pylist()
    kpis = pa.table({"cell_id": ids, "RRU.PrbUsedDl": prb})
    config = pa.table({"cell_id": ids, "state": states})
    events = pa.table({"kind": pa.array([], pa.string())})
    return Observation(index, 900.0 * index, 900.0 * (index + 1), kpis, config, events)


def _hex_cells(n_sites: int = 7) -> pa.Table:
    rows = []
    for s in range(n_sites):
        ang = 2 * np.pi * (s - 1) / 6
        x, y = (0.0, 0.0) if s == 0 else (300 * np.cos(ang), 300 * np.sin(ang))
        for k, az in enumerate((0.0, 120.0, 240.0)):
            rows.append({"cell_id": f"S{s:03d}-{k}", "x_m": x, "y_m": y, "azimuth_deg": az})
    return pa.Table.from_pylist(rows)


def test_rolled_back_cell_is_held_awake_then_retried():
    cells = _hex_cells()
    app = EnergySaver(cells, hold_periods=2)
    n = cells.num_rows
    app.observe(_obs(cells, [2.0] * n, ["active"] * n))
    first = app.decide(app.analyse())
    assert first
    d = first[0]
    cell = str(d.action.cell)
    res = ActionResult(action=d.action, applied=True, t_s=900.0, previous={"state": "active"})
    app.outcome(d, res, "applied")
    app.outcome(d, res, "rolled back: DRB.UEThpDl degraded beyond the guard")
    assert app.counts["rolled_back"] == 1
    for p in (1, 2):
        app.observe(_obs(cells, [2.0] * n, ["active"] * n, p))
        assert cell not in {f.cell for f in app.analyse()}, f"held cell re-proposed in period {p}"
    app.observe(_obs(cells, [2.0] * n, ["active"] * n, 3))
    assert cell in {f.cell for f in app.analyse()}  # hold over: the plan may sleep it again


def test_bad_options_and_cells_are_user_errors():
    cells = _hex_cells()
    with pytest.raises(UserError, match="sleep_below_pct"):
        EnergySaver(cells, sleep_below_pct=150)
    with pytest.raises(UserError, match="nonsense"):
        EnergyThreshold(cells, nonsense=1)
    with pytest.raises(UserError, match="x_m"):
        EnergySaver(pa.table({"cell_id": ["a", "b"]}))
    app = EnergySaver(cells)
    bad = _obs(cells, [1.0] * cells.num_rows, ["active"] * cells.num_rows)
    bad = Observation(0, 0.0, 900.0, bad.kpis.drop(["RRU.PrbUsedDl"]), bad.config, bad.events)
    with pytest.raises(UserError, match=r"RRU\.PrbUsedDl"):
        app.observe(bad)


# ------------------------------------------------------------------------------------------- RL
def test_cell_features_and_coverage_guard():
    g = neighbour_graph(_hex_cells().to_pandas(), k=6)
    n = g.n_cells
    state = np.zeros(n, int)
    state[0] = 2
    x = rl.cell_features(np.linspace(0, 1, n), state, 6.0, g)
    assert x.shape == (n, len(rl.FEATURE_NAMES))
    assert x[0, 3] == 1.0 and x[1, 1] == 1.0  # one-hot state
    assert x[0, 9] == pytest.approx(1.0) and x[0, 10] == pytest.approx(0.0, abs=1e-6)  # 06:00
    assert 0 < x[1, 7] <= 1.0
    want = ["off"] * n
    out = rl.guard_states(g, np.zeros(n, int), want, np.zeros(n), min_active=4)
    asleep = np.array([s != "active" for s in out])
    assert 0 < asleep.sum() < n  # the guard stops the policy putting every cell to sleep
    for i in np.flatnonzero(asleep):
        nb = g.neighbours[i]
        assert sum(not asleep[j] for j in nb) >= min(4, len(nb))


def test_rl_trains_saves_loads_and_decides(tmp_path):
    cfg = rl.RLConfig(decisions=8, n_steps=4, episode_hours=0.6, hidden=8, seed=7)
    sc = night(time={"duration_s": 0.6 * 3600})
    pol = rl.train(sc, cfg)
    assert pol.metrics["decisions"] == 8 and pol.metrics["cell_samples"] == 8 * 21
    path = tmp_path / "rl.zip"
    pol.save(path)
    assert path.is_file() and path.with_suffix(".json").is_file()
    back = rl.RLPolicy.load(path)
    assert back.metrics["decisions"] == 8 and back.metrics["train_wall_s"] == pol.metrics["train_wall_s"]
    g = neighbour_graph(_hex_cells().to_pandas(), k=6)
    table = pd.DataFrame({"cell_id": list(g.cell_ids), "prb_dl": 3.0, "state": "active", "hour": 4.0})
    a = pol.bind(g).decide(table)
    b = back.bind(g).decide(table)
    assert [(d.action.cell, d.action.state) for d in a] == [(d.action.cell, d.action.state) for d in b]
    for d in a:
        assert d.action.state in rl.ACTION_STATES and d.binding == "rl_policy"
    with pytest.raises(UserError, match="hour"):
        back.decide(table.drop(columns="hour"))
    path.with_suffix(".json").unlink()
    with pytest.raises(UserError, match="not found"):
        rl.RLPolicy.load(path)
