"""Cell sleep / switch-off policies per reporting period (3GPP TR 38.864 network energy saving).

Both policies are pure: they take the per-cell KPI table of the period just ended (``cell_id``,
``prb_dl`` in %, ``state``), the cells' neighbour graph (:mod:`mobileai.ai4net.topology`,
geometric stand-in for the neighbour relation table of TS 38.300 15.3.3) and, for the optimiser,
a load forecast; they return typed :class:`~mobileai.twin.actions.SetCellState` actions, each
with its reason and the numbers it relied on (:class:`EnergyDecision`).

- :class:`ThresholdRule`, the baseline operators run today (vendor "cell switch-off" / "carrier
  shutdown" features): a cell goes to ``sleep_state`` when its DL PRB load stayed below
  ``sleep_below_pct`` for ``periods`` consecutive periods; it wakes when a neighbour's load exceeds
  ``wake_neighbour_above_pct``.
- :class:`ForecastOptimiser`: each period, picks the set of cells to sleep by a greedy
  knapsack on the *forecast* of the next ``horizon`` periods: with a per-cell power model (the
  carrier layers' ``p0_w`` / ``w_per_pct``, EARTH form of Auer et al. 2011 as in the twin) cells
  sorted by the input power their switch-off saves net of their receivers' extra load power, and
  only those saving >= ``min_saving_w`` (else lowest forecast first); a cell is added when
  (a) its forecast upper bound (hi80) stays below ``sleep_below_pct`` over the horizon, (b)
  every active neighbour's projected load (its own forecast plus its share of all sleeping
  cells' demand, inflated by ``sinr_inflation`` for the worse radio of the moved UEs) stays
  under ``neighbour_cap_pct``, and (c) each sleeping cell keeps ``min_active_neighbours`` awake
  (coverage). A sleeping cell wakes when its estimated demand or its neighbours' projected load
  break the same constraints (with a hysteresis margin). Cells asleep for the whole horizon go
  ``off`` (no power), otherwise ``deep_sleep``.

Carrier switch-off over a coverage layer (TR 38.864 clause 5; :mod:`.layers`): given
:class:`~mobileai.ai4net.energy.layers.CarrierLayers` with capacity cells, both policies only
switch *capacity* cells off, the coverage guard is the co-sector coverage cell (it must be
awake; coverage cells never sleep), and a sleeping capacity cell's load moves to that coverage
cell, converted to its PRBs (``n_rb`` ratio), and, with inter-frequency layer priorities (TS
38.304 5.2.4, event A4 of TS 38.331 5.5.4.5), mostly to its awake capacity-layer neighbours
(ratios measured on the twin, docs/energy.md). The rule is then the vendors' carrier-shutdown
feature: the capacity carrier goes off when the *combined* load of both carriers, in coverage
PRBs, stayed below ``layer_sleep_below_pct`` for ``periods`` periods, and comes back when the
coverage cell's load exceeds ``layer_wake_above_pct``. The optimiser plans on the forecast:
the coverage cell's projected load (its own demand plus its sleepers' forecast hi80 x
``layer_host_ratio``, or x ``layer_inflation`` when no capacity neighbour is awake) must stay
under ``host_cap_pct``, the capacity neighbours' (their own plus the sleepers' x
``layer_neighbour_inflation``) under ``neighbour_cap_pct``.

Both share the same coverage guard, so the comparison measures the decision logic, not the
guard. A sleeping cell carries no load of its own; its demand is estimated from its last load
before sleeping scaled by its neighbours' load trend since then.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from mobileai.ai4net.energy.layers import CarrierLayers
from mobileai.ai4net.topology import NeighbourGraph
from mobileai.errors import UserError
from mobileai.twin.actions import SetCellState

SleepState = Literal["light_sleep", "deep_sleep", "off"]
STATES = ("active", "light_sleep", "deep_sleep", "off")
REQUIRED = ("cell_id", "prb_dl", "state")

#: A forecaster: (history [cell_id, period, prb_dl], horizon periods) ->
#: DataFrame[cell_id, step (1..horizon), mean, hi80] of DL PRB load in %.
Forecaster = Callable[[pd.DataFrame, int], pd.DataFrame]


@dataclass(frozen=True)
class EnergyDecision:
    """One state change with why: ``reason`` in words, ``binding`` the constraint that decided
    (``own_load``, ``own_forecast``, ``neighbour_load``, ``neighbour_capacity``, ``coverage``,
    ``demand_forecast``), ``evidence`` the numbers (forecast, projected loads, thresholds)."""

    action: SetCellState
    reason: str
    binding: str
    evidence: dict[str, Any] = field(default_factory=dict)


def check_period_table(kpis: pd.DataFrame, graph: NeighbourGraph) -> pd.DataFrame:
    """Validate the per-cell table and order it as the graph's cells (UserError names the issue)."""
    missing = [c for c in REQUIRED if c not in kpis.columns]
    if missing:
        raise UserError(f"period KPI table: missing column(s) {missing}; needs {list(REQUIRED)}")
    bad = sorted(set(kpis["state"]) - set(STATES))
    if bad:
        raise UserError(f"period KPI table: state {bad[0]!r} not allowed; allowed: {', '.join(STATES)}")
    t = kpis.drop_duplicates("cell_id", keep="last").set_index("cell_id")
    unknown = sorted(set(t.index) - set(graph.cell_ids))
    if unknown:
        raise UserError(f"period KPI table: cell {unknown[0]!r} is not in the cells table")
    t = t.reindex(list(graph.cell_ids))
    t["state"] = t["state"].fillna("active")
    prb = pd.to_numeric(t["prb_dl"], errors="coerce")
    if ((prb < 0) | (prb > 100)).any():
        raise UserError("period KPI table: prb_dl must be a percentage 0..100")
    t["prb_dl"] = prb
    return t


def _active_neighbours(graph: NeighbourGraph, asleep: np.ndarray, i: int) -> list[int]:
    return [j for j in graph.neighbours[i] if not asleep[j]]


class ThresholdConfig(BaseModel):
    """Settings of the load-threshold switch-off rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sleep_below_pct: float = Field(10.0, ge=0, le=100, description="X: sleep below this DL PRB load, %.")
    periods: int = Field(2, ge=1, le=96, description="N: consecutive periods below X before sleeping.")
    wake_neighbour_above_pct: float = Field(
        40.0, ge=0, le=100, description="Y: wake when a neighbour's DL PRB load exceeds this, %."
    )
    sleep_state: SleepState = Field("deep_sleep", description="State a cell is put in.")
    min_active_neighbours: int = Field(3, ge=0, le=32, description="Coverage guard (same as the optimiser).")
    max_sleeping_share: float = Field(
        1.0, ge=0, le=1, description="Never put more than this share of cells asleep at once."
    )
    layer_sleep_below_pct: float = Field(
        40.0,
        ge=0,
        le=100,
        description="Carrier shutdown: off while capacity + coverage load (coverage PRBs) < this, %.",
    )
    layer_wake_above_pct: float = Field(
        70.0,
        ge=0,
        le=100,
        description="Carrier shutdown: back on when the coverage cell's load > this, %.",
    )


def _check_layers(graph: NeighbourGraph, layers: CarrierLayers | None) -> CarrierLayers | None:
    """The layers when they have capacity cells and match the graph's cells, else None."""
    if layers is None or not layers.multi_layer:
        return None
    if tuple(layers.cell_ids) != tuple(graph.cell_ids):
        raise UserError("carrier layers: cell ids differ from the neighbour graph's (use one cells table)")
    return layers


class ThresholdRule:
    """The operators' load-threshold rule (module docstring); keeps its own N-period memory."""

    name = "threshold"

    def __init__(
        self,
        graph: NeighbourGraph,
        config: ThresholdConfig | None = None,
        layers: CarrierLayers | None = None,
    ) -> None:
        self.graph = graph
        self.cfg = config or ThresholdConfig()
        self.layers = _check_layers(graph, layers)
        self._below = np.zeros(graph.n_cells, dtype=int)

    def decide(self, kpis: pd.DataFrame) -> list[EnergyDecision]:
        cfg, g = self.cfg, self.graph
        t = check_period_table(kpis, g)
        prb = np.array(t["prb_dl"].fillna(0.0), dtype=float)
        asleep = np.array(t["state"] != "active", dtype=bool)
        if self.layers is not None:
            return self._decide_layers(prb, asleep)
        self._below = np.where(~asleep & (prb < cfg.sleep_below_pct), self._below + 1, 0)
        out: list[EnergyDecision] = []
        ids = g.cell_ids
        # wake first: a neighbour is overloaded
        for i in np.flatnonzero(asleep):
            nb = _active_neighbours(g, asleep, i)
            hot = [j for j in nb if prb[j] > cfg.wake_neighbour_above_pct]
            if hot:
                j = max(hot, key=lambda j: prb[j])
                asleep[i] = False
                out.append(
                    EnergyDecision(
                        SetCellState(cell=ids[i], state="active"),
                        f"neighbour {ids[j]} DL PRB {prb[j]:.1f}% > Y={cfg.wake_neighbour_above_pct:g}%",
                        "neighbour_load",
                        {"neighbour": ids[j], "neighbour_prb_dl": float(prb[j])},
                    )
                )
        for i in np.argsort(prb, kind="stable"):
            if asleep[i] or self._below[i] < cfg.periods:
                continue
            if asleep.sum() + 1 > cfg.max_sleeping_share * g.n_cells:
                break
            if any(prb[j] > cfg.wake_neighbour_above_pct for j in _active_neighbours(g, asleep, i)):
                continue
            asleep[i] = True
            if not coverage_ok(g, asleep, i, cfg.min_active_neighbours):
                asleep[i] = False
                continue
            out.append(
                EnergyDecision(
                    SetCellState(cell=ids[i], state=cfg.sleep_state),
                    f"DL PRB {prb[i]:.1f}% < X={cfg.sleep_below_pct:g}% for {self._below[i]} periods "
                    f"(N={cfg.periods})",
                    "own_load",
                    {"prb_dl": float(prb[i]), "periods_below": int(self._below[i])},
                )
            )
        return out

    def _decide_layers(self, prb: np.ndarray, asleep: np.ndarray) -> list[EnergyDecision]:
        """Carrier shutdown (module docstring): capacity cells only, judged with their host."""
        cfg, lay, ids = self.cfg, self.layers, self.graph.cell_ids
        assert lay is not None
        cap = lay.capacity
        combined = np.full(len(ids), np.inf)
        for i in cap:
            combined[i] = prb[lay.host[i]] + lay.to_host_prb(i, prb[i])
        self._below = np.where(~asleep & (combined < cfg.layer_sleep_below_pct), self._below + 1, 0)
        out: list[EnergyDecision] = []
        host_load = prb.copy()
        for i in cap[asleep[cap]]:
            h = lay.host[i]
            if prb[h] > cfg.layer_wake_above_pct:
                asleep[i] = False
                out.append(
                    EnergyDecision(
                        SetCellState(cell=ids[i], state="active"),
                        f"coverage cell {ids[h]} DL PRB {prb[h]:.1f}% > {cfg.layer_wake_above_pct:g}%",
                        "host_load",
                        {"host": ids[h], "host_prb_dl": float(prb[h])},
                    )
                )
        for i in cap[np.argsort(prb[cap], kind="stable")]:
            h = lay.host[i]
            if asleep[i] or asleep[h] or self._below[i] < cfg.periods:
                continue
            if asleep.sum() + 1 > cfg.max_sleeping_share * len(ids):
                break
            now = host_load[h] + lay.to_host_prb(i, prb[i])
            if now >= cfg.layer_sleep_below_pct:
                continue
            host_load[h] = now
            asleep[i] = True
            out.append(
                EnergyDecision(
                    SetCellState(cell=ids[i], state=cfg.sleep_state),
                    f"capacity {prb[i]:.1f}% + coverage {ids[h]} {prb[h]:.1f}% = {combined[i]:.1f}% of "
                    f"{ids[h]}'s PRBs < {cfg.layer_sleep_below_pct:g}% for {self._below[i]} periods "
                    f"(N={cfg.periods})",
                    "own_load",
                    {"prb_dl": float(prb[i]), "combined_host_prb": float(combined[i]), "host": ids[h]},
                )
            )
        return out


def coverage_ok(g: NeighbourGraph, asleep: np.ndarray, i: int, min_active: int) -> bool:
    """Sleeping ``i`` (already marked) leaves it and each sleeping neighbour enough awake neighbours."""
    check = [i, *[j for j in g.neighbours[i] if asleep[j]]]
    return all(len(_active_neighbours(g, asleep, k)) >= min(min_active, len(g.neighbours[k])) for k in check)


class OptimiserConfig(BaseModel):
    """Settings of the forecast-driven optimiser (module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    horizon: int = Field(4, ge=1, le=96, description="Forecast periods a sleep decision must hold for.")
    sleep_below_pct: float = Field(
        20.0, ge=0, le=100, description="A cell may sleep while its forecast hi80 DL PRB load stays below, %."
    )
    neighbour_cap_pct: float = Field(
        40.0, ge=0, le=100, description="Max projected DL PRB load of an active neighbour, %."
    )
    wake_margin_pct: float = Field(
        10.0, ge=0, le=100, description="Hysteresis: wake only above the cap/threshold plus this, %."
    )
    sinr_inflation: float = Field(
        3.0, ge=1, le=10, description="PRBs a moved UE needs at the neighbour per PRB at its own cell."
    )
    min_active_neighbours: int = Field(4, ge=0, le=32, description="Coverage: awake neighbours kept.")
    off_after_periods: int = Field(
        4, ge=1, le=96, description="Use 'off' when the forecast keeps the cell asleep this many periods."
    )
    allow_off: bool = Field(
        True, description="False: never 'off', deep sleep only (no approval needed; wakes faster)."
    )
    max_sleeping_share: float = Field(
        1.0, ge=0, le=1, description="Never plan more than this share of cells asleep at once."
    )
    layer_inflation: float = Field(
        3.0,
        ge=1,
        le=10,
        description="Coverage-carrier PRBs a moved UE needs per PRB it used on the capacity carrier.",
    )
    host_cap_pct: float = Field(
        60.0,
        ge=0,
        le=100,
        description="Carrier switch-off: max projected DL PRB load of the coverage cell, %.",
    )
    layer_neighbour_inflation: float = Field(
        2.2,
        ge=1,
        le=10,
        description=(
            "Carrier switch-off: PRBs the awake capacity neighbours take per PRB of a switched-off "
            "capacity cell (A4 hand-over to them), measured on the twin (docs/energy.md)."
        ),
    )
    min_saving_w: float = Field(
        0.0,
        ge=0,
        le=10_000,
        description=(
            "With a per-cell power model: switch a cell off only when that saves at least this input "
            "power, W (its P_0 + load power - its receivers' extra load power)."
        ),
    )
    layer_host_ratio: float = Field(
        0.22,
        ge=0,
        le=10,
        description=(
            "Carrier switch-off while a capacity neighbour is awake: coverage-cell PRBs per PRB the "
            "sleeper used (converted to coverage PRBs); the rest goes to the capacity neighbours (A4)."
        ),
    )


@dataclass
class _SleepMemo:
    prb_at_sleep: float
    nb_at_sleep: float


class ForecastOptimiser:
    """Forecast-driven greedy sleep planner (module docstring)."""

    name = "optimiser"

    def __init__(
        self,
        graph: NeighbourGraph,
        forecaster: Forecaster,
        config: OptimiserConfig | None = None,
        layers: CarrierLayers | None = None,
    ) -> None:
        self.graph = graph
        self.forecaster = forecaster
        self.cfg = config or OptimiserConfig()
        self.layers = _check_layers(graph, layers)
        self.history: list[pd.DataFrame] = []
        self._memo: dict[int, _SleepMemo] = {}
        self._period = 0

    def _receivers(self, asleep: np.ndarray, i: int) -> list[int]:
        """Awake cells that take sleeping ``i``'s UEs: its coverage host and its awake capacity
        neighbours (carrier switch-off) or its awake neighbours (cell sleep)."""
        if self.layers is not None:
            h = int(self.layers.host[i])
            host = [h] if h >= 0 and not asleep[h] else []
            return host + [j for j, _ in self._capacity_neighbours(asleep, i)]
        return _active_neighbours(self.graph, asleep, i)

    def _capacity_neighbours(self, asleep: np.ndarray, i: int) -> list[tuple[int, float]]:
        """Awake capacity-layer neighbours of ``i`` with their weights: with layer priorities
        (TS 38.304 5.2.4, event A4) they, not the coverage cell, take most of its UEs."""
        assert self.layers is not None
        host = self.layers.host
        g = self.graph
        return [
            (j, w)
            for j, w in zip(g.neighbours[i], g.weights[i], strict=True)
            if host[j] >= 0 and not asleep[j]
        ]

    def _cap(self, j: int) -> float:
        """Projected-load cap of receiver ``j``: ``host_cap_pct`` on a coverage cell, else
        ``neighbour_cap_pct``."""
        if self.layers is not None and self.layers.host[j] < 0:
            return self.cfg.host_cap_pct
        return self.cfg.neighbour_cap_pct

    def _covered(self, asleep: np.ndarray, i: int) -> bool:
        """Coverage guard after marking ``i`` asleep: an awake coverage host (carrier
        switch-off; coverage cells themselves never sleep) or enough awake neighbours."""
        if self.layers is not None:
            h = int(self.layers.host[i])
            return h >= 0 and not asleep[h]
        return coverage_ok(self.graph, asleep, i, self.cfg.min_active_neighbours)

    def _nb_load(self, prb: np.ndarray, asleep: np.ndarray, i: int) -> float:
        nb = _active_neighbours(self.graph, asleep, i)
        return float(np.mean(prb[nb])) if nb else 0.0

    def decide(self, kpis: pd.DataFrame) -> list[EnergyDecision]:
        cfg, g = self.cfg, self.graph
        t = check_period_table(kpis, g)
        ids = g.cell_ids
        prb = np.array(t["prb_dl"].fillna(0.0), dtype=float)
        asleep0 = np.array(t["state"] != "active", dtype=bool)
        demand = self._own_demand(prb, asleep0)
        hist = pd.DataFrame({"cell_id": ids, "period": self._period, "prb_dl": demand})
        self.history.append(hist)
        self.history = self.history[-96 * 7 :]
        self._period += 1
        fc = self._forecast(pd.concat(self.history, ignore_index=True))
        # per cell, over the horizon: max of mean and hi80 (the worst case the decision must hold for);
        # the forecast is of each cell's own demand, the plan's pushes are added by _projected
        hi = fc.groupby("cell_id")["hi80"].max().reindex(ids).fillna(100.0).to_numpy(float)
        mean = fc.groupby("cell_id")["mean"].max().reindex(ids).fillna(100.0).to_numpy(float)
        asleep = asleep0.copy()
        out: list[EnergyDecision] = []
        load_hi = self._projected(hi, asleep)
        # 1. wake where a constraint now fails (with hysteresis)
        for i in np.flatnonzero(asleep0):
            nb = self._receivers(asleep, i)
            worst = max(nb, key=lambda j: load_hi[j] - self._cap(j)) if nb else None
            reason, binding = None, ""
            if hi[i] > cfg.sleep_below_pct + cfg.wake_margin_pct:
                reason = (
                    f"forecast demand hi80 {hi[i]:.1f}% > {cfg.sleep_below_pct + cfg.wake_margin_pct:g}% "
                    f"within {cfg.horizon} periods"
                )
                binding = "demand_forecast"
            elif worst is not None and load_hi[worst] > self._cap(worst) + cfg.wake_margin_pct:
                reason = (
                    f"neighbour {ids[worst]} projected DL PRB {load_hi[worst]:.1f}% > "
                    f"{self._cap(worst) + cfg.wake_margin_pct:g}%"
                )
                binding = "neighbour_capacity"
            if reason:
                asleep[i] = False
                self._memo.pop(i, None)
                load_hi = self._projected(hi, asleep)
                out.append(
                    EnergyDecision(
                        SetCellState(cell=ids[i], state="active"),
                        reason,
                        binding,
                        {"demand_hi80": float(hi[i]), "demand_mean": float(mean[i])},
                    )
                )
        # 2. add sleepers greedily: with a per-cell power model the cell whose switch-off saves
        # most power first (re-priced against the plan so far), else the lowest forecast demand
        load_mean = self._projected(mean, asleep)
        for i in self._candidates(hi, mean, asleep, load_mean):
            if asleep.sum() + 1 > cfg.max_sleeping_share * g.n_cells:
                break  # the operator's cap on sleeping cells (guardrails' max_sleeping_share)
            asleep[i] = True
            trial = self._projected(hi, asleep)
            trial_mean = self._projected(mean, asleep)
            nb = self._receivers(asleep, i)
            over = [j for j in nb if trial[j] > self._cap(j)]
            saving = self._saving_w(i, mean, load_mean, trial_mean)
            too_little = saving is not None and saving < cfg.min_saving_w
            if over or not nb or not self._covered(asleep, i) or too_little:
                asleep[i] = False
                continue
            load_hi, load_mean = trial, trial_mean
            off = cfg.allow_off and cfg.horizon >= cfg.off_after_periods
            state: SleepState = "off" if off else "deep_sleep"
            self._memo[i] = _SleepMemo(
                prb_at_sleep=float(demand[i]),
                nb_at_sleep=float(prb.sum())
                if self.layers is not None
                else self._nb_load(demand, asleep0, i),
            )
            worst = max(nb, key=lambda j: trial[j] - self._cap(j))
            priced = "" if saving is None else f"; saves {saving:.0f} W net of its receivers' extra load"
            evidence: dict[str, Any] = {
                "forecast_hi80": float(hi[i]),
                "forecast_mean": float(mean[i]),
                "neighbour_projected": {ids[j]: round(float(trial[j]), 2) for j in nb},
            }
            if saving is not None:
                evidence["saving_w"] = round(saving, 1)
            out.append(
                EnergyDecision(
                    SetCellState(cell=ids[i], state=state),
                    f"forecast DL PRB hi80 {hi[i]:.1f}% < {cfg.sleep_below_pct:g}% for the next "
                    f"{cfg.horizon} periods; tightest receiver {ids[worst]} projected {trial[worst]:.1f}% "
                    f"<= cap {self._cap(worst):g}%; {len(nb)} receivers stay awake{priced}",
                    "own_forecast",
                    evidence,
                )
            )
        return out

    def _candidates(
        self, hi: np.ndarray, mean: np.ndarray, asleep: np.ndarray, load_mean: np.ndarray
    ) -> list[int]:
        """Cells that may switch off on their own forecast (hi80 < ``sleep_below_pct``; with
        layers capacity cells only), in greedy order: most power saved first when the layers
        carry the power model (:meth:`_saving_w` against the current plan), else lowest hi80."""
        cand = [
            int(i)
            for i in np.flatnonzero(~asleep & (hi < self.cfg.sleep_below_pct))
            if self.layers is None or self.layers.host[i] >= 0
        ]
        if self.layers is None or not self.layers.priced:
            return sorted(cand, key=lambda i: (hi[i], i))
        value = {}
        for i in cand:
            asleep[i] = True
            value[i] = self._saving_w(i, mean, load_mean, self._projected(mean, asleep))
            asleep[i] = False
        return sorted(cand, key=lambda i: (-(value[i] or 0.0), i))

    def _saving_w(self, i: int, mean: np.ndarray, before: np.ndarray, after: np.ndarray) -> float | None:
        """Input power saved by switching ``i`` off (None without a power model): its own
        P_0 + slope x forecast mean load, less the extra load its receivers take (projected mean
        loads ``after`` - ``before``, each at its own W per % PRB; EARTH model, Auer et al. 2011)."""
        lay = self.layers
        if lay is None or lay.p0_w is None or lay.w_per_pct is None:
            return None
        extra = np.clip(after - before, 0.0, None)
        extra[i] = 0.0
        return float(lay.p0_w[i] + lay.w_per_pct[i] * mean[i] - float(lay.w_per_pct @ extra))

    def _own_demand(self, prb: np.ndarray, asleep: np.ndarray) -> np.ndarray:
        """Each cell's own DL PRB demand, the series the forecaster learns (not the load the
        plan itself moved around): an awake cell's measured load minus what its sleeping
        neighbours pushed onto it; a sleeping cell's load before it slept scaled by its awake
        neighbours' own-demand trend since then. Two fixed-point rounds (the push depends on
        the sleepers' demand, which depends on the neighbours' own demand)."""
        sleepers = np.flatnonzero(asleep)
        own = prb.copy()
        memo = {i: self._memo.get(i) for i in sleepers}
        if self.layers is not None:
            # carrier switch-off: a capacity neighbour takes a sleeper's UEs inflated x3, so the
            # neighbour-trend fixed point below has a loop gain > 1 and can settle on 0 demand
            # for a loaded cell. Instead one network-wide trend in closed form: measured total
            # M = own total x trend + (inflation - 1) x the sleepers' demand, sleepers' demand =
            # their load at sleep x trend, inflation = the plan's pushes per unit of demand
            known = [i for i in sleepers if memo[i] is not None]
            at_sleep = np.zeros_like(prb)
            for i in known:
                at_sleep[i] = memo[i].prb_at_sleep
            m_sum = float(at_sleep.sum())
            if known and m_sum > 0:
                infl = float(self._projected(at_sleep, asleep).sum()) / m_sum
                m0 = float(np.mean([memo[i].nb_at_sleep for i in known]))
                trend = float(prb.sum()) / max(m0 + (infl - 1.0) * m_sum, 1e-6)
                own[known] = at_sleep[known] * float(np.clip(trend, 0.0, 10.0))
            own[[i for i in sleepers if memo[i] is None]] = 0.0
            pushed = self._projected(own, asleep) - np.where(asleep, 0.0, own)
            return np.where(asleep, own, np.clip(prb - pushed, 0.0, 100.0))
        for i in sleepers:
            own[i] = memo[i].prb_at_sleep if memo[i] is not None else 0.0
        for _ in range(2):
            pushed = self._projected(own, asleep) - np.where(asleep, 0.0, own)
            awake_own = np.clip(prb - pushed, 0.0, 100.0)
            own = np.where(asleep, own, awake_own)
            for i in sleepers:
                m = memo[i]
                if m is None:  # asleep before this planner saw it: no memory of its load
                    continue
                trend = self._nb_load(own, asleep, i) / max(m.nb_at_sleep, 1e-6)
                own[i] = m.prb_at_sleep * float(np.clip(trend, 0.0, 10.0))
        return own

    def forget(self, cell_id: str) -> None:
        """Drop the memory of a planned sleep that did not happen (rejected or rolled back)."""
        self._memo.pop(self.graph.index(cell_id), None)

    def _projected(self, own: np.ndarray, asleep: np.ndarray) -> np.ndarray:
        """Projected load of awake cells: own forecast plus the inflated demand of sleeping
        cells, split over their awake neighbours by neighbour weight."""
        g, cfg = self.graph, self.cfg
        load = np.where(asleep, 0.0, own)
        if self.layers is not None:
            lay = self.layers
            for i in np.flatnonzero(asleep):
                h = int(lay.host[i])
                nb = self._capacity_neighbours(asleep, i)
                # A4 hands most UEs to awake capacity neighbours (inflated by their worse radio);
                # with none awake the coverage cell takes them all
                ratio = cfg.layer_host_ratio if nb else cfg.layer_inflation
                if h >= 0 and not asleep[h]:
                    load[h] += ratio * lay.to_host_prb(i, own[i])
                wsum = sum(w for _, w in nb)
                for j, w in nb:
                    load[j] += cfg.layer_neighbour_inflation * own[i] * w / wsum
            return load
        for i in np.flatnonzero(asleep):
            nb = [(j, w) for j, w in zip(g.neighbours[i], g.weights[i], strict=True) if not asleep[j]]
            if not nb:
                continue
            wsum = sum(w for _, w in nb)
            for j, w in nb:
                load[j] += cfg.sinr_inflation * own[i] * w / wsum
        return load

    def _forecast(self, history: pd.DataFrame) -> pd.DataFrame:
        fc = self.forecaster(history, self.cfg.horizon)
        missing = [c for c in ("cell_id", "mean", "hi80") if c not in fc.columns]
        if missing:
            raise UserError(f"forecaster returned no {missing} column(s); needs cell_id, step, mean, hi80")
        return fc


def persistence_forecaster(window: int = 16, min_pairs: int = 4) -> Forecaster:
    """Naive (persistence) forecast with an empirical interval (Hyndman & Athanasopoulos, FPP3
    5.5, intervals from the empirical distribution of past forecast errors): mean = the last
    value; hi80 at step h = the last value plus the 90th percentile of the h-step changes seen
    over the last ``window`` periods (the upper end of an 80 % interval). With fewer than
    ``min_pairs`` such changes, the largest one-step rise x h (cautious while history is short).
    The fallback when no trained forecaster (mobileai.ai4net.forecast) is given."""

    def forecast(history: pd.DataFrame, horizon: int) -> pd.DataFrame:
        wide = history.pivot_table(index="period", columns="cell_id", values="prb_dl", aggfunc="last")
        last = wide.iloc[-1]
        recent = wide.tail(window + 1)
        rise = recent.diff().clip(lower=0).max().fillna(0.0)
        rows = []
        for step in range(1, horizon + 1):
            changes = recent.diff(step).iloc[step:]
            if len(changes) >= min_pairs:
                up = changes.quantile(0.9).clip(lower=0.0).fillna(0.0)
            else:
                up = rise * step
            rows.append(
                pd.DataFrame(
                    {
                        "cell_id": wide.columns,
                        "step": step,
                        "mean": last.to_numpy(),
                        "hi80": (last + up).clip(upper=100.0).to_numpy(),
                    }
                )
            )
        return pd.concat(rows, ignore_index=True)

    return forecast
