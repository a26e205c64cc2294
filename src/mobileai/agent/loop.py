"""The closed loop: observe -> analyse -> decide -> guardrails -> approval -> apply -> audit.

:func:`run_loop` drives one :class:`~mobileai.data.network.Network` with a list of apps, one
reporting period at a time (DESIGN.md, "Data flows one way round a closed loop"):

1. the network advances one period and returns its observation;
2. the KPI guard judges the actions applied after the previous period against this one and
   rolls back those that degraded a protected KPI (:mod:`mobileai.agent.guardrails`);
3. each app observes, analyses and decides (its decision time is measured);
4. decisions pass limits, conflict resolution and, above the approval level, the approver;
5. what passed is applied; every decision, verdict, result and rollback goes to the audit log,
   which is flushed (fsync) at the end of the period;
6. subscribers (``on_period``) receive the period's KPI table and the loop's records, e.g. the
   data-plane bus and store.

On a :class:`~mobileai.data.network.RecordedNetwork` (open loop) nothing is applied; decisions
are still screened, logged and returned, so they can be scored against what happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mobileai.agent.approval import Approver
from mobileai.agent.audit import AuditLog
from mobileai.agent.guardrails import (
    IMPACT_RANK,
    GuardrailConfig,
    KpiGuard,
    action_cell,
    check_limits,
    impact_of,
    resolve_conflicts,
)
from mobileai.ai4net.app import App, Decision
from mobileai.data.network import Network, Observation
from mobileai.twin.actions import ActionResult, SetCellState


@dataclass
class LoopStats:
    """Counts and timings of one loop run (what the comparison report shows)."""

    periods: int = 0
    decisions: int = 0
    applied: int = 0
    rejected_limits: int = 0
    conflicts: int = 0
    approvals_asked: int = 0
    approvals_denied: int = 0
    not_applied: int = 0
    rollbacks: int = 0
    decision_ms: dict[str, list[float]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        lat = {
            app: {
                "mean_ms": round(float(np.mean(v)), 3) if v else None,
                "p95_ms": round(float(np.percentile(v, 95)), 3) if v else None,
            }
            for app, v in self.decision_ms.items()
        }
        out = {k: v for k, v in self.__dict__.items() if k != "decision_ms"}
        out["decision_latency"] = lat
        return out


def _action_json(a) -> dict[str, Any]:
    return a.model_dump(mode="json")


def run_loop(
    network: Network,
    apps: list[App],
    guard_cfg: GuardrailConfig,
    approver: Approver,
    audit: AuditLog,
    on_period: Callable[[Observation, LoopStats], None] | None = None,
) -> LoopStats:
    """Run ``apps`` on ``network`` until it has no more periods; returns the loop's statistics."""
    stats = LoopStats(decision_ms={a.name: [] for a in apps})
    guard = KpiGuard(guard_cfg, network.cells)
    cooldown: dict[str, int] = {}
    limits = guard_cfg.limits
    n_cells = network.cells.num_rows
    while (obs := network.advance()) is not None:
        stats.periods += 1
        for c in list(cooldown):
            cooldown[c] -= 1
            if cooldown[c] <= 0:
                del cooldown[c]
        # 2. KPI guard on the previous period's actions
        for v in guard.evaluate(obs.kpis):
            w = v.watch
            if not v.rollback:
                audit.append("guard_pass", t_s=obs.end_s, ref=w.seq, app=w.app, scope=w.scope)
                continue
            inverse = w.result.inverse()
            res = network.apply([inverse])[0] if inverse is not None else None
            stats.rollbacks += 1
            cell = action_cell(w.decision.action)
            cooldown[cell] = guard_cfg.cooldown_periods
            note = f"rolled back: {', '.join(v.detail)} degraded beyond the guard"
            audit.append(
                "rollback",
                t_s=obs.end_s,
                ref=w.seq,
                app=w.app,
                cell=cell,
                action=_action_json(w.decision.action),
                restore=None if inverse is None else _action_json(inverse),
                applied=None if res is None else res.applied,
                kpis=v.detail,
                scope=w.scope,
            )
            for app in apps:
                if app.name == w.app:
                    app.outcome(w.decision, w.result, note)
        # 3. apps decide
        proposals: list[tuple[str, int, Decision]] = []
        for app in apps:
            t0 = time.perf_counter()
            app.observe(obs)
            decisions = app.decide(app.analyse())
            stats.decision_ms[app.name].append((time.perf_counter() - t0) * 1000.0)
            proposals += [(app.name, app.priority, d) for d in decisions]
        stats.decisions += len(proposals)
        by_name = {a.name: a for a in apps}
        kept, dropped = resolve_conflicts(proposals)
        for app_name, d, why in dropped:
            stats.conflicts += 1
            _log_decision(audit, obs, app_name, d, d.impact, "conflict", why)
            by_name[app_name].outcome(
                d, ActionResult(action=d.action, applied=False, t_s=obs.end_s, reason=why), why
            )
        # 4. limits, coverage, approval
        config_rows = {r["cell_id"]: r for r in obs.config.to_pylist()}
        sleeping = sum(1 for r in config_rows.values() if r.get("state", "active") != "active")
        to_apply: list[tuple[str, Decision, str, str]] = []
        for app_name, d in kept:
            cell = action_cell(d.action)
            row = config_rows.get(cell)
            impact = max(d.impact, impact_of(d.action, row), key=IMPACT_RANK.__getitem__)
            why = None
            waking = isinstance(d.action, SetCellState) and d.action.state == "active"
            if cell in cooldown and not waking:  # waking a cell is the safe direction: never held back
                why = f"cell {cell} is cooling down after a rollback ({cooldown[cell]} periods left)"
            why = why or check_limits(d.action, limits, row)
            goes_to_sleep = (
                isinstance(d.action, SetCellState)
                and d.action.state != "active"
                and row is not None
                and row.get("state") == "active"
            )
            if why is None and goes_to_sleep and sleeping + 1 > limits.max_sleeping_share * n_cells:
                why = f"coverage: at most {limits.max_sleeping_share:.0%} of cells may sleep at once"
            if why is None and len(to_apply) >= limits.max_actions_per_period:
                why = f"more than {limits.max_actions_per_period} actions this period"
            if why is not None:
                stats.rejected_limits += 1
                _log_decision(audit, obs, app_name, d, impact, "rejected", why)
                by_name[app_name].outcome(
                    d, ActionResult(action=d.action, applied=False, t_s=obs.end_s, reason=why), why
                )
                continue
            level = guard_cfg.approval_level
            note = ""
            if level is not None and IMPACT_RANK[impact] >= IMPACT_RANK[level]:
                stats.approvals_asked += 1
                ok, who = approver.approve(app_name, d, impact)
                audit.append(
                    "approval",
                    t_s=obs.end_s,
                    app=app_name,
                    action=_action_json(d.action),
                    impact=impact,
                    approved=ok,
                    by=who,
                )
                if not ok:
                    stats.approvals_denied += 1
                    _log_decision(audit, obs, app_name, d, impact, "denied", who)
                    by_name[app_name].outcome(
                        d, ActionResult(action=d.action, applied=False, t_s=obs.end_s, reason=who), who
                    )
                    continue
                note = f"approved: {who}"
            sleeping += int(goes_to_sleep)
            to_apply.append((app_name, d, impact, note))
        # 5. apply and audit
        results = network.apply([t[1].action for t in to_apply]) if to_apply else []
        for (app_name, d, impact, note), res in zip(to_apply, results, strict=True):
            verdict = "applied" if res.applied else "not_applied"
            seq = _log_decision(audit, obs, app_name, d, impact, verdict, res.reason or note, res)
            if res.applied:
                stats.applied += 1
                guard.watch(app_name, d, res, obs.kpis, seq)
            else:
                stats.not_applied += 1
            by_name[app_name].outcome(d, res, verdict)
        audit.flush()
        if on_period is not None:
            on_period(obs, stats)
    for app in apps:
        audit.append("explain", app=app.name, summary=app.explain())
    audit.flush()
    return stats


def _log_decision(
    audit: AuditLog,
    obs: Observation,
    app: str,
    d: Decision,
    impact: str,
    verdict: str,
    note: str,
    result: ActionResult | None = None,
) -> int:
    return audit.append(
        "decision",
        t_s=obs.end_s,
        period=obs.index,
        app=app,
        action=_action_json(d.action),
        reason=d.reason,
        evidence=d.evidence,
        impact=impact,
        verdict=verdict,
        note=note,
        previous=None if result is None else result.previous,
    )
