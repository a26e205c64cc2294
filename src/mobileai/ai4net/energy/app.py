"""The energy-saving policies as closed-loop apps (:class:`mobileai.ai4net.app.App` protocol).

- :class:`EnergySaver` (``energy-saver``): the forecast-driven optimiser
  (:class:`~mobileai.ai4net.energy.policies.ForecastOptimiser`);
- :class:`EnergyThreshold` (``energy-threshold``): the operators' load-threshold rule
  (:class:`~mobileai.ai4net.energy.policies.ThresholdRule`), the baseline.

Each period the app reads the observation's per-cell DL PRB load (``RRU.PrbUsedDl``, TS 28.552
5.1.1.2) and the cells' current state (TR 38.864 sleep states), runs its policy, reports one
:class:`~mobileai.ai4net.app.Finding` per cell it wants to change and turns them into
:class:`~mobileai.ai4net.app.Decision` s carrying the policy's reason, binding constraint and
evidence. It applies nothing: the loop's guardrails may reject a decision (e.g. the
``max_sleeping_share`` cap), ask for approval (switching a cell ``off`` is a high-impact action)
or roll it back when the KPI guard sees a protected KPI degrade; the app then forgets the sleep
and leaves the cell awake for ``hold_periods``.

Defaults follow the guardrails: both apps plan at most ``max_sleeping_share`` = 50 % of cells
asleep (the guardrails' default limit) and use ``deep_sleep``, which needs no approval; with
the fitted power model deep sleep keeps ~26 % of the static power, ``off`` none, so
``allow_off=true`` (optimiser) or ``sleep_state=off`` (rule) saves more but every such decision
waits for an approver.

Neighbours come from the cells table (``cell_id``, ``x_m``, ``y_m``, ``azimuth_deg``;
:func:`mobileai.ai4net.topology.neighbour_graph`). The optimiser's forecast is the persistence
forecaster unless ``forecast_model`` names a saved :class:`~mobileai.ai4net.forecast.NeuralForecaster`
folder, in which case :func:`mobileai.ai4net.forecast.forecast_cells` forecasts the load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mobileai.ai4net.app import Decision, Finding, Impact
from mobileai.ai4net.energy.layers import CarrierLayers
from mobileai.ai4net.energy.policies import (
    EnergyDecision,
    Forecaster,
    ForecastOptimiser,
    OptimiserConfig,
    ThresholdConfig,
    ThresholdRule,
    persistence_forecaster,
)
from mobileai.ai4net.topology import NeighbourGraph, neighbour_graph
from mobileai.data.network import Observation
from mobileai.errors import UserError, format_validation_error
from mobileai.twin.actions import ActionResult, SetCellState

KPI_PRB = "RRU.PrbUsedDl"
#: Period length assumed for the forecaster's time axis (TS 28.552 default granularity).
PERIOD = pd.Timedelta(minutes=15)


def _graph(cells: pa.Table, k: int) -> NeighbourGraph:
    missing = [c for c in ("cell_id", "x_m", "y_m") if c not in cells.column_names]
    if missing:
        raise UserError(
            f"energy app: the cells table lacks {missing}; it needs cell_id, x_m, y_m (and azimuth_deg)"
        )
    return neighbour_graph(cells.to_pandas(), k=k)


def _layers(cells: pa.Table, graph: NeighbourGraph) -> CarrierLayers | None:
    """Coverage / capacity layers when the cells table has carriers and PRB counts (the twin's
    cell config table does; a user export without them is treated as one layer)."""
    if not {"carrier_ghz", "n_rb", "azimuth_deg"} <= set(cells.column_names):
        return None
    return CarrierLayers.from_cells(cells.to_pandas(), graph.cell_ids)


def _options(model: type[BaseModel], app: str, options: dict[str, Any]) -> Any:
    try:
        return model(**options)
    except ValidationError as exc:
        raise UserError(format_validation_error(exc, f"options of app {app}")) from None


def period_table(obs: Observation) -> pd.DataFrame:
    """``cell_id, prb_dl, state`` from an observation (cells without a known state: active)."""
    k = obs.kpis
    if KPI_PRB not in k.column_names:
        raise UserError(f"energy app: the KPI table has no {KPI_PRB!r} column (DL PRB utilisation, %)")
    prb = pd.to_numeric(pd.Series(k.column(KPI_PRB).to_pylist(), dtype=object), errors="coerce")
    t = pd.DataFrame({"cell_id": k.column("cell_id").to_pylist(), "prb_dl": prb.clip(0, 100)})
    cfg = obs.config
    if "state" in cfg.column_names:
        states = dict(zip(cfg.column("cell_id").to_pylist(), cfg.column("state").to_pylist(), strict=True))
        t["state"] = [states.get(c) or "active" for c in t["cell_id"]]
    else:
        t["state"] = "active"
    return t


def neural_forecaster(model_folder: Path, cells: pa.Table) -> Forecaster:
    """A :data:`~mobileai.ai4net.energy.policies.Forecaster` backed by a saved neural forecaster
    (:func:`mobileai.ai4net.forecast.forecast_cells`, its 80 % interval's upper bound as hi80)."""
    from mobileai.ai4net.forecast import NeuralForecaster, forecast_cells

    model = NeuralForecaster.load(Path(model_folder))
    t0 = pd.Timestamp("2000-01-01", tz="UTC")

    def forecast(history: pd.DataFrame, horizon: int) -> pd.DataFrame:
        kpis = pd.DataFrame(
            {
                "period_start": t0 + PERIOD * history["period"].astype(int),
                "cell_id": history["cell_id"].astype(str),
                KPI_PRB: history["prb_dl"].astype(float),
            }
        )
        fc = forecast_cells(kpis, KPI_PRB, horizon, model=model, cells=cells)
        fc["step"] = fc.groupby("cell_id")["period_start"].rank(method="first").astype(int)
        return fc[["cell_id", "step", "mean", "hi80"]]

    return forecast


class _EnergyApp:
    """What both apps share: observation -> period table -> policy -> findings -> decisions."""

    name: ClassVar[str]
    priority: ClassVar[int] = 60  # a power-state change outranks tuning a cell (MRO 50), not healing (90)

    def __init__(self, policy: ThresholdRule | ForecastOptimiser, hold_periods: int) -> None:
        self.policy = policy
        self.hold_periods = hold_periods
        self._table: pd.DataFrame | None = None
        self._pending: dict[str, EnergyDecision] = {}
        self._hold: dict[str, int] = {}
        self.counts = {"proposed": 0, "applied": 0, "not_applied": 0, "rolled_back": 0}
        self._last_t: float | None = None

    def observe(self, obs: Observation) -> None:
        self._table = period_table(obs)
        self._last_t = obs.end_s
        for c in list(self._hold):
            self._hold[c] -= 1
            if self._hold[c] <= 0:
                del self._hold[c]

    def analyse(self) -> list[Finding]:
        if self._table is None:
            return []
        out, self._pending = [], {}
        for d in self.policy.decide(self._table):
            cell = str(d.action.cell)
            if d.action.state != "active" and cell in self._hold:
                self._forget(cell)
                continue
            self._pending[cell] = d
            kind = "wake" if d.action.state == "active" else "sleep"
            score = float(d.evidence.get("forecast_hi80", d.evidence.get("prb_dl", np.nan)))
            out.append(Finding(cell, kind, score, {"binding": d.binding, **d.evidence}))
        return out

    def decide(self, findings: list[Finding]) -> list[Decision]:
        out = []
        for f in findings:
            d = self._pending.get(f.cell)
            if d is None:
                continue
            impact: Impact = "high" if d.action.state == "off" else "medium"
            out.append(Decision(d.action, d.reason, {"binding": d.binding, **d.evidence}, impact))
        self.counts["proposed"] += len(out)
        return out

    def outcome(self, decision: Decision, result: ActionResult, note: str) -> None:
        cell = str(getattr(decision.action, "cell", ""))
        goes_to_sleep = isinstance(decision.action, SetCellState) and decision.action.state != "active"
        if note.startswith("rolled back"):
            self.counts["rolled_back"] += 1
            self._hold[cell] = self.hold_periods + 1
            self._forget(cell)
        elif result.applied:
            self.counts["applied"] += 1
        else:
            self.counts["not_applied"] += 1
            if goes_to_sleep:
                self._forget(cell)

    def _forget(self, cell: str) -> None:
        if isinstance(self.policy, ForecastOptimiser):
            self.policy.forget(cell)

    def _state_summary(self) -> dict[str, Any]:
        if self._table is None:
            return {"periods_seen": 0}
        asleep = self._table.loc[self._table["state"] != "active", "cell_id"].tolist()
        return {
            "sleeping_cells_now": len(asleep),
            "cells": len(self._table),
            "held_awake": sorted(self._hold),
        }


class EnergyThresholdOptions(ThresholdConfig):
    """The rule's thresholds plus the app's hold after a rollback."""

    max_sleeping_share: float = Field(0.5, ge=0, le=1, description="Stay within the guardrails' limit.")
    neighbours: int = Field(6, ge=1, le=32, description="Neighbours per cell in the graph.")
    hold_periods: int = Field(4, ge=0, le=96, description="Periods a rolled-back cell stays awake.")


class EnergyThreshold(_EnergyApp):
    """The load-threshold switch-off rule operators run today (baseline app)."""

    name: ClassVar[str] = "energy-threshold"

    def __init__(self, cells: pa.Table, **options: Any) -> None:
        opts: EnergyThresholdOptions = _options(EnergyThresholdOptions, self.name, options)
        self.opts = opts
        rule_cfg = ThresholdConfig(**opts.model_dump(exclude={"neighbours", "hold_periods"}))
        graph = _graph(cells, opts.neighbours)
        super().__init__(ThresholdRule(graph, rule_cfg, _layers(cells, graph)), opts.hold_periods)

    def explain(self) -> dict[str, Any]:
        o = self.opts
        return {
            "policy": (
                f"load threshold: {o.sleep_state} when DL PRB < {o.sleep_below_pct:g}% for {o.periods} "
                f"periods; wake when a neighbour > {o.wake_neighbour_above_pct:g}%"
            ),
            "options": o.model_dump(),
            "decisions": dict(self.counts),
            **self._state_summary(),
        }


class EnergySaverOptions(OptimiserConfig):
    """The optimiser's settings plus the app's: deep sleep only and the guardrails' cap by
    default, the neighbour graph, the hold after a rollback and an optional trained forecaster."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow_off: bool = Field(False, description="Allow 'off' (needs approval: high impact).")
    max_sleeping_share: float = Field(0.5, ge=0, le=1, description="Stay within the guardrails' limit.")
    neighbours: int = Field(6, ge=1, le=32, description="Neighbours per cell in the graph.")
    hold_periods: int = Field(4, ge=0, le=96, description="Periods a rolled-back cell stays awake.")
    forecast_model: str | None = Field(
        None, description="Folder of a saved NeuralForecaster (default: persistence forecast)."
    )


class EnergySaver(_EnergyApp):
    """The forecast-driven sleep planner (ours)."""

    name: ClassVar[str] = "energy-saver"

    def __init__(self, cells: pa.Table, **options: Any) -> None:
        opts: EnergySaverOptions = _options(EnergySaverOptions, self.name, options)
        graph = _graph(cells, opts.neighbours)
        if opts.forecast_model is not None:
            forecaster, which = neural_forecaster(Path(opts.forecast_model), cells), "neural"
        else:
            forecaster, which = persistence_forecaster(), "persistence"
        self.opts = opts
        self.forecaster: Literal["persistence", "neural"] = which
        cfg = OptimiserConfig(**opts.model_dump(exclude={"neighbours", "hold_periods", "forecast_model"}))
        super().__init__(ForecastOptimiser(graph, forecaster, cfg, _layers(cells, graph)), opts.hold_periods)

    def explain(self) -> dict[str, Any]:
        o = self.opts
        return {
            "policy": (
                f"forecast-driven sleep plan: sleep while the {self.forecaster} forecast's hi80 DL PRB stays "
                f"< {o.sleep_below_pct:g}% for {o.horizon} periods and every awake neighbour's projected "
                f"load <= {o.neighbour_cap_pct:g}%; >= {o.min_active_neighbours} neighbours awake"
            ),
            "options": o.model_dump(),
            "forecaster": self.forecaster,
            "decisions": dict(self.counts),
            **self._state_summary(),
        }
