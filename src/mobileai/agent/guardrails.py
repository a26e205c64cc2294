"""Guardrails between app decisions and the network.

Every decision passes, in order:

1. **Limits** (:class:`Limits`): the new value must lie in the operator's allowed range (tighter
   than what the action type itself accepts), and at most ``max_sleeping_share`` of the cells may
   be out of the active state at once (coverage: TR 38.864 clause 6 keeps a coverage layer).
2. **Conflicts** (:func:`resolve_conflicts`): when two apps set the same parameter of a cell in
   one period, or one of them changes the cell's power state, the one with the higher
   ``priority`` wins and the other's conflicting actions are dropped (ties: the app listed
   first). Within one app, a later decision on the same parameter replaces an earlier one.
   Policy documented in docs/closed-loop.md.
3. **Impact and approval** (:func:`impact_of`): each action gets an impact class (the higher of
   the app's and the guardrails' own: switching a cell off or a >= 3 dB power change is high);
   actions at or above ``approval_level`` wait for an approver (:mod:`mobileai.agent.approval`).
4. **KPI guard** (:class:`KpiGuard`): an applied action is watched for the next reporting
   period. On the action's cell and its neighbours, each protected KPI's relative change is
   compared with the same KPI's change on the rest of the network (a difference in differences,
   so the daily load curve is not blamed on the action). A degradation beyond the KPI's limit
   rolls the action back (its recorded previous value is restored) and the cell is left alone
   for ``cooldown_periods``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from mobileai.ai4net.app import IMPACT_LEVELS, Decision, Impact
from mobileai.twin.actions import (
    Action,
    ActionResult,
    SetCellState,
    SetCIO,
    SetHandoverParams,
    SetSliceShare,
    SetTdd,
    SetTilt,
    SetTxPower,
)


class Limits(BaseModel):
    """Operator limits on action values (checked before anything is applied)."""

    model_config = ConfigDict(extra="forbid")

    tx_power_db: tuple[float, float] = Field((-6.0, 0.0), description="Power relative to rated, dB.")
    downtilt_deg: tuple[float, float] = Field((0.0, 15.0), description="Electrical down-tilt, degrees.")
    hysteresis_db: tuple[float, float] = Field((0.0, 10.0), description="A3 hysteresis, dB.")
    time_to_trigger_ms: tuple[float, float] = Field((0.0, 1280.0), description="A3 time-to-trigger, ms.")
    cio_db: tuple[float, float] = Field((-6.0, 6.0), description="Cell individual offset, dB.")
    tdd_dl_fraction: tuple[float, float] = Field((0.3, 0.9), description="TDD downlink share.")
    min_slice_share: float = Field(0.05, ge=0, le=1, description="Smallest PRB share a slice may get.")
    max_sleeping_share: float = Field(0.5, ge=0, le=1, description="Share of cells allowed out of active.")
    max_actions_per_period: int = Field(200, ge=1, description="Actions applied per period, all apps.")


class GuardRule(BaseModel):
    """A protected KPI: ``better`` says which direction is good; a relative change worse than
    ``max_rel`` (beyond the rest of the network's change) on a scope whose value is at least
    ``min_level`` triggers a rollback."""

    model_config = ConfigDict(extra="forbid")

    better: Literal["higher", "lower"]
    max_rel: float = Field(gt=0, description="Tolerated relative degradation, e.g. 0.2 = 20 %.")
    min_level: float = Field(0.0, ge=0, description="Ignore scopes below this level (noise).")


def _default_rules() -> dict[str, GuardRule]:
    return {
        "DRB.UEThpDl": GuardRule(better="higher", max_rel=0.25, min_level=0.5),
        "mobileai.Rlf": GuardRule(better="lower", max_rel=0.5, min_level=5.0),
        "mobileai.SessionsDropped": GuardRule(better="lower", max_rel=0.5, min_level=5.0),
        "mobileai.SessionsBlocked": GuardRule(better="lower", max_rel=0.5, min_level=5.0),
    }


class GuardrailConfig(BaseModel):
    """All guardrail settings of a run (``guardrails:`` in a run config)."""

    model_config = ConfigDict(extra="forbid")

    limits: Limits = Field(default_factory=Limits)
    kpi_guard: dict[str, GuardRule] = Field(default_factory=_default_rules)
    neighbours: int = Field(6, ge=0, le=50, description="Nearest cells in an action's KPI-guard scope.")
    cooldown_periods: int = Field(4, ge=0, description="Periods a rolled-back cell is left alone.")
    approval_level: Impact | None = Field("high", description="Impact at which a human must approve.")


IMPACT_RANK = {lvl: i for i, lvl in enumerate(IMPACT_LEVELS)}


def impact_of(action: Action, config_row: dict[str, Any] | None) -> Impact:
    """The guardrails' own impact class of an action (the app's may only raise it)."""
    if isinstance(action, SetCellState):
        return {"off": "high", "deep_sleep": "medium", "light_sleep": "medium"}.get(action.state, "low")
    if isinstance(action, SetTxPower):
        cur = None if config_row is None else config_row.get("tx_power_dbm")
        return "high" if cur is None or abs(action.tx_power_dbm - cur) >= 3.0 else "medium"
    if isinstance(action, SetTilt):
        cur = None if config_row is None else config_row.get("downtilt_deg")
        return "medium" if cur is None or abs(action.downtilt_deg - cur) >= 2.0 else "low"
    if isinstance(action, SetSliceShare | SetTdd):
        return "medium"
    return "low"


def action_cell(action: Action) -> str:
    return str(action.source if isinstance(action, SetCIO) else action.cell)


def check_limits(action: Action, limits: Limits, config_row: dict[str, Any] | None) -> str | None:
    """Why the action breaks an operator limit, or None."""

    def outside(v: float, lo_hi: tuple[float, float], what: str, unit: str) -> str | None:
        lo, hi = lo_hi
        if not lo - 1e-9 <= v <= hi + 1e-9:
            return f"{what} {v:g} {unit} outside the allowed {lo:g}..{hi:g} {unit}"
        return None

    if isinstance(action, SetTxPower):
        if config_row is None or "rated_tx_power_dbm" not in config_row:
            return None
        return outside(
            action.tx_power_dbm - config_row["rated_tx_power_dbm"], limits.tx_power_db, "power vs rated", "dB"
        )
    if isinstance(action, SetTilt):
        return outside(action.downtilt_deg, limits.downtilt_deg, "down-tilt", "deg")
    if isinstance(action, SetHandoverParams):
        return outside(action.hysteresis_db, limits.hysteresis_db, "hysteresis", "dB") or outside(
            action.time_to_trigger_ms, limits.time_to_trigger_ms, "time-to-trigger", "ms"
        )
    if isinstance(action, SetCIO):
        return outside(action.cio_db, limits.cio_db, "CIO", "dB")
    if isinstance(action, SetTdd):
        return outside(action.dl_fraction, limits.tdd_dl_fraction, "TDD DL share", "")
    if isinstance(action, SetSliceShare):
        low = [s for s, v in action.shares.items() if v < limits.min_slice_share]
        if low:
            return f"slice share of {', '.join(low)} below the minimum {limits.min_slice_share:g}"
    return None


@dataclass
class Screened:
    """A decision after the guardrails: ``verdict`` is ``pass``, ``needs_approval``,
    ``rejected`` (limits) or ``conflict``; ``note`` says why."""

    app: str
    decision: Decision
    impact: Impact
    verdict: str
    note: str = ""


def resolve_conflicts(proposals: list[tuple[str, int, Decision]]) -> tuple[list, list]:
    """Split ``(app, priority, decision)`` proposals into kept and dropped-with-reason.

    Two apps conflict when they set the same parameter of the same cell (``target_key``), or when
    one of them changes the cell's power state (sleep / off / wake makes every other setting of
    that cell moot). The higher-priority app wins (ties: the first listed) and the loser's
    conflicting actions are dropped. Within one app a later decision on the same parameter
    replaces an earlier one."""

    def scope(d: Decision) -> tuple:
        cell = action_cell(d.action)
        return ("cell", cell) if cell in state_cells else ("key", d.action.target_key())

    state_cells = {action_cell(d.action) for _, _, d in proposals if isinstance(d.action, SetCellState)}
    owner: dict[tuple, tuple[int, str]] = {}
    for app, prio, d in proposals:
        k = scope(d)
        if k not in owner or prio > owner[k][0]:
            owner[k] = (prio, app)
    kept: dict[tuple, tuple[str, Decision]] = {}
    dropped: list[tuple[str, Decision, str]] = []
    for app, _prio, d in proposals:
        k = scope(d)
        winner = owner[k][1]
        if app != winner:
            what = "cell" if k[0] == "cell" else f"{d.action.kind} of cell"
            dropped.append((app, d, f"conflict on {what} {action_cell(d.action)}: {winner} has priority"))
            continue
        key = (app, d.action.target_key())
        if key in kept:
            dropped.append((app, kept[key][1], "replaced by a later decision of the same app"))
        kept[key] = (app, d)
    return list(kept.values()), dropped


def neighbour_map(cells: pa.Table, k: int) -> dict[str, list[str]]:
    """Each cell's ``k`` nearest other cells (co-sited first: distance 0), from x_m / y_m."""
    ids = cells.column("cell_id").to_pylist()
    if k == 0 or "x_m" not in cells.column_names:
        return {c: [] for c in ids}
    xy = np.stack([cells.column("x_m").to_numpy(), cells.column("y_m").to_numpy()], 1)
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    order = np.argsort(d, axis=1, kind="stable")[:, : min(k, len(ids) - 1)]
    return {ids[i]: [ids[j] for j in order[i]] for i in range(len(ids))}


@dataclass
class Watch:
    """An applied action under KPI watch: its result and its scope's KPIs before."""

    app: str
    decision: Decision
    result: ActionResult
    scope: list[str]
    before: dict[str, float]
    rest_before: dict[str, float]
    seq: int


@dataclass
class GuardVerdict:
    watch: Watch
    rollback: bool
    detail: dict[str, Any] = field(default_factory=dict)


def _scope_sums(kpis: pa.Table, names: list[str], scope: set[str]) -> tuple[dict, dict]:
    k = kpis.to_pydict()
    inside = np.array([c in scope for c in k["cell_id"]])
    a, b = {}, {}
    for n in names:
        if n not in k:
            continue
        v = np.array([math.nan if x is None else x for x in k[n]], dtype=np.float64)
        a[n] = float(np.nanmean(v[inside])) if inside.any() and np.isfinite(v[inside]).any() else math.nan
        rest = v[~inside]
        b[n] = float(np.nanmean(rest)) if rest.size and np.isfinite(rest).any() else math.nan
    return a, b


class KpiGuard:
    """Watches applied actions for one period and says which to roll back."""

    def __init__(self, config: GuardrailConfig, cells: pa.Table) -> None:
        self.cfg = config
        self.neigh = neighbour_map(cells, config.neighbours)
        self.watches: list[Watch] = []

    def watch(self, app: str, decision: Decision, result: ActionResult, kpis: pa.Table, seq: int) -> None:
        cell = action_cell(decision.action)
        scope = [cell, *self.neigh.get(cell, [])]
        before, rest = _scope_sums(kpis, list(self.cfg.kpi_guard), set(scope))
        self.watches.append(Watch(app, decision, result, scope, before, rest, seq))

    def evaluate(self, kpis: pa.Table) -> list[GuardVerdict]:
        """Judge every watched action on the period that followed it; clears the watch list."""
        out = []
        for w in self.watches:
            after, rest_after = _scope_sums(kpis, list(self.cfg.kpi_guard), set(w.scope))
            worst: dict[str, Any] = {}
            rollback = False
            for name, rule in self.cfg.kpi_guard.items():
                b, a = w.before.get(name, math.nan), after.get(name, math.nan)
                rb, ra = w.rest_before.get(name, math.nan), rest_after.get(name, math.nan)
                if not all(map(math.isfinite, (a, b))) or max(a, b) < rule.min_level:
                    continue
                rel = (a - b) / max(abs(b), rule.min_level, 1e-9)
                rel_rest = (ra - rb) / max(abs(rb), rule.min_level, 1e-9) if math.isfinite(ra + rb) else 0.0
                excess = (rel - rel_rest) if rule.better == "lower" else (rel_rest - rel)
                if excess > rule.max_rel:
                    rollback = True
                    worst[name] = {
                        "before": round(b, 4),
                        "after": round(a, 4),
                        "network_change": round(rel_rest, 4),
                        "excess_degradation": round(excess, 4),
                        "limit": rule.max_rel,
                    }
            out.append(GuardVerdict(w, rollback, worst))
        self.watches = []
        return out
