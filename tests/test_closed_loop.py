"""The closed loop: guardrails, approval, audit log, KPI guard rollback, open loop, `mobileai run`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pytest
import yaml

from mobileai.agent.approval import make_approver
from mobileai.agent.audit import AuditLog, verify_audit
from mobileai.agent.guardrails import GuardrailConfig, KpiGuard, Limits, check_limits, resolve_conflicts
from mobileai.agent.loop import run_loop
from mobileai.ai4net.app import Decision, Finding, make_app
from mobileai.data.network import RecordedNetwork, TwinNetwork
from mobileai.errors import UserError
from mobileai.twin.actions import ActionResult, SetCellState, SetHandoverParams, SetTxPower
from mobileai.twin.config import Scenario

TINY = """\
name: loop-tiny
seed: 3
layout: {sites: 1, isd_m: 300, wrap_around: false}
radio: {bandwidth_mhz: 20}
ues: {per_sector: 8}
time: {report_period_s: 60, step_ms: 500, duration_s: 240, start_hour: 18}
"""


def tiny() -> Scenario:
    return Scenario(**yaml.safe_load(TINY))


class ScriptedApp:
    """A test app that proposes fixed decisions in chosen periods."""

    name: ClassVar[str] = "scripted"
    priority: ClassVar[int] = 10

    def __init__(self, plan: dict[int, list[Decision]], name: str = "scripted", priority: int = 10) -> None:
        self.plan, self.period = plan, -1
        self.name, self.priority = name, priority  # type: ignore[misc]
        self.outcomes: list[tuple[Decision, ActionResult, str]] = []

    def observe(self, obs) -> None:
        self.period = obs.index

    def analyse(self) -> list[Finding]:
        return []

    def decide(self, findings: list[Finding]) -> list[Decision]:
        return list(self.plan.get(self.period, []))

    def explain(self) -> dict[str, Any]:
        return {"script": len(self.plan)}

    def outcome(self, decision: Decision, result: ActionResult, note: str) -> None:
        self.outcomes.append((decision, result, note))


# ------------------------------------------------------------------------------- audit
def test_audit_chain_verifies_and_detects_tampering(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    for i in range(5):
        log.append("decision", app="a", value=i)
    log.flush()
    assert verify_audit(tmp_path / "audit.jsonl") == (True, "ok")
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    rec = json.loads(lines[2])
    rec["value"] = 99
    lines[2] = json.dumps(rec, sort_keys=True)
    (tmp_path / "audit.jsonl").write_text("\n".join(lines) + "\n")
    ok, msg = verify_audit(tmp_path / "audit.jsonl")
    assert not ok and msg.startswith("line 3")
    del lines[2]
    (tmp_path / "audit.jsonl").write_text("\n".join(lines) + "\n")
    assert not verify_audit(tmp_path / "audit.jsonl")[0]
    with pytest.raises(FileExistsError):
        AuditLog(tmp_path / "audit.jsonl")  # never reopened for writing


# ------------------------------------------------------------------------------- guardrails
def test_conflicts_per_parameter_and_per_cell_for_state_changes() -> None:
    power = Decision(SetTxPower(cell="c1", tx_power_dbm=40), "power")
    ho = Decision(SetHandoverParams(cell="c1", hysteresis_db=3, time_to_trigger_ms=320), "ho")
    ho_low = Decision(SetHandoverParams(cell="c1", hysteresis_db=4, time_to_trigger_ms=320), "ho_low")
    c = Decision(SetTxPower(cell="c2", tx_power_dbm=41), "c")
    c2 = Decision(SetTxPower(cell="c2", tx_power_dbm=42), "c2")
    # different parameters of one cell: both kept; the same parameter: priority wins
    kept, dropped = resolve_conflicts(
        [("low", 1, power), ("high", 9, ho), ("low", 1, ho_low), ("low", 1, c), ("low", 1, c2)]
    )
    assert sorted(d.reason for _, d in kept) == ["c2", "ho", "power"]
    why = {d.reason: r for _, d, r in dropped}
    assert "high has priority" in why["ho_low"] and "replaced" in why["c"]
    # a power-state change claims the whole cell
    sleep = Decision(SetCellState(cell="c1", state="deep_sleep"), "sleep")
    kept, dropped = resolve_conflicts([("mro", 5, ho), ("energy", 4, sleep)])
    assert [app for app, _ in kept] == ["mro"] and dropped[0][0] == "energy"
    assert "conflict on cell c1" in dropped[0][2]
    kept, dropped = resolve_conflicts([("first", 5, power), ("second", 5, Decision(power.action, "again"))])
    assert [app for app, _ in kept] == ["first"] and dropped[0][0] == "second"


def test_limits_name_the_value_and_range() -> None:
    row = {"rated_tx_power_dbm": 46.0, "tx_power_dbm": 46.0}
    why = check_limits(SetTxPower(cell="c", tx_power_dbm=30.0), Limits(), row)
    assert why is not None and "-16" in why and "-6..0" in why
    assert check_limits(SetTxPower(cell="c", tx_power_dbm=43.0), Limits(), row) is None
    why = check_limits(SetHandoverParams(cell="c", hysteresis_db=12, time_to_trigger_ms=0), Limits(), None)
    assert why is not None and "hysteresis" in why


def _kpis(thp: list[float]) -> pa.Table:
    return pa.table({"cell_id": [f"c{i}" for i in range(len(thp))], "DRB.UEThpDl": thp})


def test_kpi_guard_uses_difference_in_differences() -> None:
    cells = pa.table(
        {"cell_id": [f"c{i}" for i in range(6)], "x_m": np.arange(6) * 100.0, "y_m": np.zeros(6)}
    )
    cfg = GuardrailConfig(neighbours=0)
    res = ActionResult(action=SetTxPower(cell="c0", tx_power_dbm=40), applied=True, t_s=0, previous=46.0)
    d = Decision(res.action, "test")
    guard = KpiGuard(cfg, cells)
    guard.watch("app", d, res, _kpis([10e3] * 6), seq=0)
    (v,) = guard.evaluate(_kpis([4e3] + [10e3] * 5))  # the action's cell alone lost 60 %
    assert v.rollback and v.detail["DRB.UEThpDl"]["excess_degradation"] == pytest.approx(0.6)
    guard.watch("app", d, res, _kpis([10e3] * 6), seq=1)
    (v,) = guard.evaluate(_kpis([4e3] * 6))  # the whole network lost 60 %: not the action's doing
    assert not v.rollback


# ------------------------------------------------------------------------------- the loop
def test_loop_rolls_back_a_harmful_action_and_restores_the_twin() -> None:
    net = TwinNetwork(tiny())
    cell = net.cells.column("cell_id")[0].as_py()
    harmful = Decision(SetCellState(cell=cell, state="deep_sleep"), "test: sleep a loaded cell")
    app = ScriptedApp({1: [harmful]})
    rule = {"better": "higher", "max_rel": 0.5, "min_level": 0.5}  # connected UEs must not halve
    cfg = GuardrailConfig(kpi_guard={"RRC.ConnMean": rule}, neighbours=0, approval_level=None)
    audit = AuditLog(None)
    stats = run_loop(net, [app], cfg, make_approver("reject"), audit)
    assert stats.applied == 1 and stats.rollbacks == 1
    rb = next(r for r in audit.records if r["kind"] == "rollback")
    assert rb["restore"] == {"kind": "cell_state", "cell": cell, "state": "active"} and rb["applied"] is True
    assert rb["kpis"]["RRC.ConnMean"]["after"] < 0.5 * rb["kpis"]["RRC.ConnMean"]["before"]
    assert int(net.twin.state[0]) == 0  # active again
    assert app.outcomes[-1][2].startswith("rolled back")
    assert stats.periods == 4


def test_loop_approval_and_coverage_limit() -> None:
    net = TwinNetwork(tiny().with_updates(layout={"sites": 7}, time={"duration_s": 60}))
    ids = net.cells.column("cell_id").to_pylist()
    offs = [Decision(SetCellState(cell=c, state="off"), "off") for c in ids[:2]]
    sleeps = [Decision(SetCellState(cell=c, state="deep_sleep"), "sleep") for c in ids[2:]]
    app = ScriptedApp({0: offs + sleeps})
    audit = AuditLog(None)
    stats = run_loop(net, [app], GuardrailConfig(), make_approver("reject"), audit)
    assert stats.approvals_asked == 2 and stats.approvals_denied == 2  # off is high impact
    limit = int(GuardrailConfig().limits.max_sleeping_share * len(ids))
    assert stats.applied == limit  # deep sleep is medium impact, capped by coverage
    assert stats.rejected_limits == len(sleeps) - limit
    verdicts = {r["verdict"] for r in audit.records if r["kind"] == "decision"}
    assert verdicts == {"denied", "applied", "rejected"}


def test_open_loop_on_recorded_data_applies_nothing() -> None:
    t = pa.array(np.array([0, 0, 900_000, 900_000], dtype="datetime64[ms]"))
    kpis = pa.table({"period_start": t, "cell_id": ["a", "b", "a", "b"], "DRB.UEThpDl": [1.0, 2.0, 3.0, 4.0]})
    net = RecordedNetwork(kpis)
    app = ScriptedApp({1: [Decision(SetTxPower(cell="a", tx_power_dbm=40), "x"), Decision(
        SetTxPower(cell="zz", tx_power_dbm=40), "y")]})  # fmt: skip
    stats = run_loop(
        net, [app], GuardrailConfig(approval_level=None), make_approver("reject"), AuditLog(None)
    )
    assert stats.periods == 2 and stats.applied == 0 and stats.not_applied == 2
    reasons = [res.reason for _, res, _ in app.outcomes]
    assert "open loop" in reasons[0] and "unknown cell" in reasons[1]
    assert net.history().num_rows == 4


def test_unknown_app_is_a_user_error() -> None:
    with pytest.raises(UserError, match=r"known apps: .*mro-rule"):
        make_app("nope", pa.table({"cell_id": ["a"]}))


# ------------------------------------------------------------------------------- mobileai run
def cli(*args: object) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MOBILEAI_DEBUG"}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "mobileai.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def test_run_command_writes_both_arms_and_a_report(tmp_path: Path) -> None:
    sc = tmp_path / "tiny.yaml"
    sc.write_text(TINY)
    out = tmp_path / "run"
    res = cli("run", sc, "--out", out, "--apps", "mro-rule", "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert set(summary["arms"]) == {"baseline", "apps"}
    for arm in ("baseline", "apps"):
        for f in ("kpis.parquet", "events.parquet", "cells.parquet", "audit.jsonl"):
            assert (out / arm / f).is_file()
        assert verify_audit(out / arm / "audit.jsonl")[0]
    assert (out / "report.html").read_text().count("<img") >= 2
    run = json.loads((out / "run.json").read_text())
    assert run["arms"] == {"baseline": [], "apps": ["mro-rule"]}
    # with no actions applied the arms are the same seeded run
    if summary["arms"]["apps"]["actions_applied"] == 0:
        assert summary["arms"]["apps"]["energy_kwh"] == summary["arms"]["baseline"]["energy_kwh"]


def test_run_command_user_errors_exit_2(tmp_path: Path) -> None:
    sc = tmp_path / "tiny.yaml"
    sc.write_text(TINY)
    res = cli("run", sc, "--out", tmp_path / "a", "--apps", "nope")
    assert res.returncode == 2 and "unknown app 'nope'" in res.stderr and "Traceback" not in res.stderr
    bad = tmp_path / "g.yaml"
    bad.write_text("limits: {max_sleeping_share: 3}\n")
    res = cli("run", sc, "--out", tmp_path / "b", "--apps", "mro-rule", "--guardrails", bad)
    assert res.returncode == 2 and "limits.max_sleeping_share" in res.stderr
    res = cli("run", sc, "--out", tmp_path / "c", "--apps", "mro-rule", "--approver", "maybe")
    assert res.returncode == 2 and "--approver" in res.stderr
    assert not any(p.name.startswith(("a", "b", "c")) for p in tmp_path.iterdir() if p.is_dir())


def test_replay_command_open_loop_on_a_kpi_file(tmp_path: Path) -> None:
    """Recorded KPIs (here written by hand) through `mobileai replay`: logged, never applied."""
    t = np.repeat(np.array([0, 900_000], dtype="datetime64[ms]"), 2)
    kpis = pa.table(
        {
            "period_start": pa.array(t),
            "cell_id": ["a", "b"] * 2,
            "MM.HoExeIntraReq": [100.0, 5.0, 100.0, 5.0],
            "MM.HoExeIntraSucc": [100.0, 5.0, 100.0, 5.0],
            "mobileai.HoPingPong": [30.0, 0.0, 30.0, 0.0],  # cell a ping-pongs 30 %
            "mobileai.HoFail": [0.0, 0.0, 0.0, 0.0],
        }
    )
    src = tmp_path / "k.parquet"
    import pyarrow.parquet as pq

    pq.write_table(kpis, src)
    res = cli("replay", src, "--out", tmp_path / "r", "--apps", "mro-rule", "--json")
    assert res.returncode == 0, res.stderr
    dec = pq.read_table(tmp_path / "r" / "decisions.parquet").to_pylist()
    assert [d["cell_id"] for d in dec] == ["a"]  # b has too few attempts; a cools down after
    assert dec[0]["verdict"] == "not_applied" and "open loop" in dec[0]["note"]
    assert "hysteresis 2 -> 3 dB" in dec[0]["reason"]
    res = cli("replay", tmp_path / "missing.parquet", "--out", tmp_path / "s", "--apps", "mro-rule")
    assert res.returncode == 2 and "no such file" in res.stderr


def test_cooldown_holds_back_changes_but_never_a_wake_up() -> None:
    """After a rollback the cell cools down: further changes are refused, a wake-up is not."""
    net = TwinNetwork(tiny())
    cell = net.cells.column("cell_id")[0].as_py()
    plan = {
        1: [Decision(SetCellState(cell=cell, state="deep_sleep"), "harmful sleep")],
        2: [
            Decision(SetHandoverParams(cell=cell, hysteresis_db=3, time_to_trigger_ms=320), "tune"),
            Decision(SetCellState(cell=cell, state="active"), "wake"),
        ],
    }
    rule = {"better": "higher", "max_rel": 0.5, "min_level": 0.5}
    cfg = GuardrailConfig(kpi_guard={"RRC.ConnMean": rule}, neighbours=0, approval_level=None)
    audit = AuditLog(None)
    run_loop(net, [ScriptedApp(plan)], cfg, make_approver("reject"), audit)
    assert [r["cell"] for r in audit.records if r["kind"] == "rollback"] == [cell]
    late = {r["reason"]: r for r in audit.records if r["kind"] == "decision" and r["period"] == 2}
    assert late["tune"]["verdict"] == "rejected" and "cooling down" in late["tune"]["note"]
    assert late["wake"]["verdict"] == "applied"
