"""Mobility robustness optimisation (MRO) with the rule operators run today.

SON MRO (TS 36.902 clause 4.6.2, TS 28.313 clause 7.1.4 for NR) tunes each cell's handover
parameters from its handover statistics:

- too many **ping-pongs** (a UE handed back to the cell it left within the ping-pong window)
  mean handovers fire too early: raise the A3 hysteresis one step and lengthen time-to-trigger;
- too many **failures** (handover failures plus radio link failures per attempt, the "too late"
  class) mean they fire too late: lower the hysteresis and shorten time-to-trigger.

Time-to-trigger moves along the values TS 38.331 allows (``TimeToTrigger`` in ReportConfigNR).
A cell needs ``min_attempts`` handover attempts in the period before its ratios are trusted, and a
cell changed in one period is left alone for ``cooldown_periods`` so the effect can show (as a
real SON function waits for fresh statistics).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from mobileai.ai4net.app import Decision, Finding
from mobileai.data.network import Observation
from mobileai.twin.actions import ActionResult, SetHandoverParams

#: TS 38.331 TimeToTrigger values, ms.
TTT_VALUES_MS = (0, 40, 64, 80, 100, 128, 160, 256, 320, 480, 512, 640, 1024, 1280, 2560, 5120)


class MroRuleOptions(BaseModel):
    """Thresholds of the MRO rule (per cell, per reporting period)."""

    model_config = ConfigDict(extra="forbid")

    ping_pong_ratio: float = Field(0.10, gt=0, le=1, description="Ping-pongs per successful HO that trigger.")
    failure_ratio: float = Field(
        0.05, gt=0, le=1, description="(HO failures + RLFs) per HO attempt that trigger."
    )
    min_attempts: int = Field(20, ge=1, description="HO attempts a cell needs in the period to be judged.")
    step_db: float = Field(1.0, gt=0, le=5, description="Hysteresis step, dB.")
    hysteresis_range_db: tuple[float, float] = Field((0.0, 8.0), description="Allowed hysteresis, dB.")
    cooldown_periods: int = Field(2, ge=0, description="Periods a changed cell is left alone.")
    assumed_hysteresis_db: float = Field(
        2.0,
        ge=0,
        le=15,
        description="Current hysteresis when the network does not report it (recorded data).",
    )
    assumed_ttt_ms: float = Field(320.0, ge=0, le=5120, description="Current TTT when not reported, ms.")


def _ttt_step(ttt_ms: float, up: bool) -> float:
    i = int(np.argmin([abs(v - ttt_ms) for v in TTT_VALUES_MS]))
    i = min(i + 1, len(TTT_VALUES_MS) - 1) if up else max(i - 1, 0)
    return float(TTT_VALUES_MS[i])


class MroRule:
    """Rule-based MRO: the baseline mobility app."""

    name: ClassVar[str] = "mro-rule"
    priority: ClassVar[int] = 50

    def __init__(self, cells: pa.Table, **options: Any) -> None:
        self.opts = MroRuleOptions(**options)
        self.cells = cells
        self._obs: Observation | None = None
        self._cool: dict[str, int] = {}
        self._changes = 0

    def observe(self, obs: Observation) -> None:
        self._obs = obs
        for cell in list(self._cool):
            self._cool[cell] -= 1
            if self._cool[cell] <= 0:
                del self._cool[cell]

    def analyse(self) -> list[Finding]:
        if self._obs is None:
            return []
        k = self._obs.kpis.to_pydict()
        need = ("MM.HoExeIntraReq", "MM.HoExeIntraSucc", "mobileai.HoPingPong", "mobileai.HoFail")
        if any(n not in k for n in need):
            return []
        rlf = k.get("mobileai.Rlf", [0.0] * len(k["cell_id"]))
        out = []
        o = self.opts
        for i, cell in enumerate(k["cell_id"]):
            att, succ = k["MM.HoExeIntraReq"][i] or 0.0, k["MM.HoExeIntraSucc"][i] or 0.0
            if att < o.min_attempts or cell in self._cool:
                continue
            pp = (k["mobileai.HoPingPong"][i] or 0.0) / max(succ, 1.0)
            fail = ((k["mobileai.HoFail"][i] or 0.0) + (rlf[i] or 0.0)) / att
            detail = {"ho_attempts": att, "ping_pong_ratio": round(pp, 4), "failure_ratio": round(fail, 4)}
            if fail > o.failure_ratio:
                out.append(Finding(cell, "too_late", fail / o.failure_ratio, detail))
            elif pp > o.ping_pong_ratio:
                out.append(Finding(cell, "too_early", pp / o.ping_pong_ratio, detail))
        return out

    def decide(self, findings: list[Finding]) -> list[Decision]:
        if self._obs is None or not findings:
            return []
        cfg = self._obs.config.to_pydict()
        n = len(cfg["cell_id"])
        # a recorded network may not report its settings: assume the configured defaults
        cfg.setdefault("hysteresis_db", [self.opts.assumed_hysteresis_db] * n)
        cfg.setdefault("ttt_ms", [self.opts.assumed_ttt_ms] * n)
        row = {c: i for i, c in enumerate(cfg["cell_id"])}
        lo, hi = self.opts.hysteresis_range_db
        out = []
        for f in findings:
            i = row[f.cell]
            hys, ttt = float(cfg["hysteresis_db"][i]), float(cfg["ttt_ms"][i])
            up = f.kind == "too_early"
            new_hys = min(max(hys + (self.opts.step_db if up else -self.opts.step_db), lo), hi)
            new_ttt = _ttt_step(ttt, up)
            if math.isclose(new_hys, hys) and math.isclose(new_ttt, ttt):
                continue
            what = "ping-pong" if up else "failure"
            ratio = f.detail["ping_pong_ratio"] if up else f.detail["failure_ratio"]
            limit = self.opts.ping_pong_ratio if up else self.opts.failure_ratio
            out.append(
                Decision(
                    SetHandoverParams(cell=f.cell, hysteresis_db=new_hys, time_to_trigger_ms=new_ttt),
                    f"{what} ratio {ratio:.1%} > {limit:.0%} over {f.detail['ho_attempts']:.0f} HO attempts: "
                    f"hysteresis {hys:g} -> {new_hys:g} dB, TTT {ttt:g} -> {new_ttt:g} ms",
                    evidence=dict(f.detail),
                    impact="low",
                )
            )
        return out

    def outcome(self, decision: Decision, result: ActionResult, note: str) -> None:
        cell = str(getattr(decision.action, "cell", ""))
        if result.applied:
            self._changes += 1
        self._cool[cell] = self.opts.cooldown_periods + 1

    def explain(self) -> dict[str, Any]:
        return {
            "rule": "TS 36.902 4.6.2 MRO: ping-pong -> later HO, failures -> earlier HO",
            "thresholds": self.opts.model_dump(),
            "changes_applied": self._changes,
        }
