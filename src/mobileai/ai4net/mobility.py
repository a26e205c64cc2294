"""Mobility robustness optimisation (MRO) with the rule operators run today.

SON MRO (TS 36.902 clause 4.6.2 and 5.2, TS 28.313 clause 7.1.4 for NR, counters of
TS 32.425 / TS 28.552) tunes each cell's handover parameters from its handover statistics:

- **failures** (handover failures plus radio link failures, the "too late" class) mean
  handovers fire too late: lower the A3 hysteresis one step and shorten time-to-trigger;
- **ping-pongs** (a UE handed back to the cell it left within the ping-pong window) mean they
  fire too early: raise the hysteresis one step and lengthen time-to-trigger.

The two are not symmetric. An RLF costs the user T310 plus the re-establishment (1.3 s in the
twin) and its sessions; a ping-pong costs two needless handovers (2 x 50 ms interruption). As in
the MRO literature's handover performance indicator (HPI, a weighted sum of failure and
ping-pong ratios: T. Jansen et al., "Handover parameter optimization in LTE self-organizing
networks", IEEE VTC 2010-Fall; I. Balan et al., "Enhanced weighted performance based handover
optimization in LTE", FutureNetw 2011), failures dominate:

1. **Too late** (failure ratio above ``failure_ratio``, point estimate: the safe direction acts
   at once): one step earlier, down to the lower bounds.
2. **Too early** only when all hold: the ping-pong ratio is *significantly* above
   ``ping_pong_ratio`` (one-sided Wilson lower bound at ``ping_pong_confidence``; once a cell
   has triggered it stays flagged until its ratio falls below ``ping_pong_release``, the
   trigger's hysteresis), the failure ratio is below ``failure_release`` (well under the limit:
   the dead band between release and limit holds the setting, so the two triggers cannot
   chase each other), the ping-pong cost dominates the HPI, the failures did not rise since
   this cell's last later step, and the step stays within the upper bounds and the cell's
   ceiling. Then one step later.
3. **No gain**: a later step is judged at the cell's next judged period; if the HPI rose, the
   step is undone and the setting before it becomes the cell's ceiling (it is never made that
   late again in this run). A too-late correction and a KPI-guard rollback of a later step set
   the ceiling the same way.

Time-to-trigger moves along the values TS 38.331 allows (``TimeToTrigger`` in ReportConfigNR).
Default bounds: hysteresis 0-4 dB, TTT 40-640 ms (a 2 dB margin goes with 320-640 ms, a large
margin with a short TTT: both large is doubly late). A cell needs ``min_attempts`` mobility
events (HO attempts plus RLFs: a handover that comes too late may never be attempted) in the
period to be judged, and a changed cell is left alone for ``cooldown_periods`` so the effect can
show (as a real SON function waits for fresh statistics). Thresholds: docs/closed-loop.md, "MRO
rule".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy.stats import binomtest

from mobileai.ai4net.app import Decision, Finding
from mobileai.data.network import Observation
from mobileai.twin.actions import ActionResult, SetHandoverParams

#: TS 38.331 TimeToTrigger values, ms.
TTT_VALUES_MS = (0, 40, 64, 80, 100, 128, 160, 256, 320, 480, 512, 640, 1024, 1280, 2560, 5120)

_NEED = ("MM.HoExeIntraReq", "MM.HoExeIntraSucc", "mobileai.HoPingPong", "mobileai.HoFail")


class MroRuleOptions(BaseModel):
    """Thresholds of the MRO rule (per cell, per reporting period)."""

    model_config = ConfigDict(extra="forbid")

    ping_pong_ratio: float = Field(
        0.20,
        gt=0,
        le=1,
        description="Ping-pongs per successful HO that trigger a later HO: the twin's per-cell ratio at "
        "default settings is 12 % median, 18 % p95 (dense-urban, docs/closed-loop.md).",
    )
    ping_pong_release: float = Field(
        0.15,
        gt=0,
        le=1,
        description="A flagged cell stays flagged until its ping-pong ratio falls below this.",
    )
    ping_pong_confidence: float = Field(
        0.95,
        ge=0.5,
        lt=1,
        description="One-sided confidence that the ping-pong ratio exceeds ping_pong_ratio (Wilson bound).",
    )
    failure_ratio: float = Field(
        0.03, gt=0, le=1, description="(HO failures + RLFs) per mobility event that trigger an earlier HO."
    )
    failure_release: float = Field(
        0.015, ge=0, le=1, description="A cell is made later only while its failure ratio is below this."
    )
    failure_weight: float = Field(
        13.0, gt=0, description="HPI weight of a failure (RLF outage 1,300 ms / ping-pong 100 ms)."
    )
    ping_pong_weight: float = Field(1.0, gt=0, description="HPI weight of a ping-pong.")
    min_attempts: int = Field(
        50, ge=1, description="Mobility events (HO attempts + RLFs) a cell needs in the period to be judged."
    )
    step_db: float = Field(1.0, gt=0, le=5, description="Hysteresis step, dB.")
    hysteresis_range_db: tuple[float, float] = Field(
        (0.0, 4.0), description="Allowed hysteresis, dB (the upper bound caps how late a cell can go)."
    )
    ttt_range_ms: tuple[float, float] = Field(
        (40.0, 640.0), description="Allowed time-to-trigger, ms (TS 38.331 values inside this range)."
    )
    cooldown_periods: int = Field(2, ge=0, description="Periods a changed cell is left alone.")
    assumed_hysteresis_db: float = Field(
        2.0,
        ge=0,
        le=15,
        description="Current hysteresis when the network does not report it (recorded data).",
    )
    assumed_ttt_ms: float = Field(320.0, ge=0, le=5120, description="Current TTT when not reported, ms.")

    @model_validator(mode="after")
    def _check(self) -> MroRuleOptions:
        for name, (lo, hi) in (
            ("hysteresis_range_db", self.hysteresis_range_db),
            ("ttt_range_ms", self.ttt_range_ms),
        ):
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} ({lo:g}, {hi:g}): need 0 <= low <= high")
        if self.ping_pong_release > self.ping_pong_ratio:
            raise ValueError(
                f"ping_pong_release ({self.ping_pong_release:g}) must not exceed ping_pong_ratio "
                f"({self.ping_pong_ratio:g})"
            )
        if self.failure_release > self.failure_ratio:
            raise ValueError(
                f"failure_release ({self.failure_release:g}) must not exceed "
                f"failure_ratio ({self.failure_ratio:g})"
            )
        return self


@dataclass(frozen=True)
class CellStats:
    """One cell's handover statistics in one period (TS 28.552 5.1.1.6 names)."""

    attempts: float
    successes: float
    ping_pongs: float
    ho_failures: float
    rlfs: float

    @property
    def events(self) -> float:
        """Mobility events: HO attempts plus RLFs (a too-late HO may never be attempted)."""
        return self.attempts + self.rlfs

    @property
    def failures(self) -> float:
        return self.ho_failures + self.rlfs

    @property
    def ping_pong_ratio(self) -> float:
        return self.ping_pongs / max(self.successes, 1.0)

    @property
    def failure_ratio(self) -> float:
        return self.failures / max(self.events, 1.0)

    def hpi(self, o: MroRuleOptions) -> float:
        """Handover performance indicator: weighted failures plus ping-pongs per event."""
        return o.failure_weight * self.failure_ratio + o.ping_pong_weight * self.ping_pong_ratio


@dataclass(frozen=True)
class _LaterStep:
    """A later step in force on a cell, kept to judge whether it paid."""

    hpi_before: float
    failure_ratio_before: float
    setting_before: tuple[float, float]
    judged: bool = False  # the HPI after the step has been compared with the one before


def _ttt_index(ttt_ms: float) -> int:
    return int(np.argmin([abs(v - ttt_ms) for v in TTT_VALUES_MS]))


def _ttt_step(ttt_ms: float, up: bool, lo: float = 0.0, hi: float = 5120.0) -> float:
    """The next longer (``up``) or shorter TS 38.331 TTT value, kept inside [lo, hi]."""
    i = _ttt_index(ttt_ms)
    i = min(i + 1, len(TTT_VALUES_MS) - 1) if up else max(i - 1, 0)
    allowed = [v for v in TTT_VALUES_MS if lo <= v <= hi]
    if not allowed:
        return float(ttt_ms)
    return float(min(allowed, key=lambda v: abs(v - TTT_VALUES_MS[i])))


def wilson_lower(k: float, n: float, confidence: float) -> float:
    """One-sided Wilson lower bound of a ratio k/n at ``confidence`` (scipy's binomtest)."""
    n_i = max(round(n), 1)
    k_i = min(max(round(k), 0), n_i)
    return float(binomtest(k_i, n_i).proportion_ci(confidence_level=2 * confidence - 1, method="wilson").low)


class MroRule:
    """Rule-based MRO with failure priority: the baseline mobility app."""

    name: ClassVar[str] = "mro-rule"
    priority: ClassVar[int] = 50

    def __init__(self, cells: pa.Table, **options: Any) -> None:
        self.opts = MroRuleOptions(**options)
        self.cells = cells
        self._obs: Observation | None = None
        self._cool: dict[str, int] = {}
        self._changes = 0
        self._pp_flag: set[str] = set()  # cells whose ping-pong trigger is on (until release)
        self._later: dict[str, _LaterStep] = {}  # later steps in force, to judge
        self._ceiling: dict[str, tuple[float, float]] = {}  # latest (hys, ttt) a cell may go to
        self._blocked_count = 0  # later steps withheld for failures

    def observe(self, obs: Observation) -> None:
        self._obs = obs
        for cell in list(self._cool):
            self._cool[cell] -= 1
            if self._cool[cell] <= 0:
                del self._cool[cell]

    def _cell_stats(self) -> dict[str, CellStats]:
        assert self._obs is not None
        k = self._obs.kpis.to_pydict()
        if any(n not in k for n in _NEED):
            return {}
        rlf = k.get("mobileai.Rlf", [0.0] * len(k["cell_id"]))
        return {
            str(cell): CellStats(
                attempts=k["MM.HoExeIntraReq"][i] or 0.0,
                successes=k["MM.HoExeIntraSucc"][i] or 0.0,
                ping_pongs=k["mobileai.HoPingPong"][i] or 0.0,
                ho_failures=k["mobileai.HoFail"][i] or 0.0,
                rlfs=rlf[i] or 0.0,
            )
            for i, cell in enumerate(k["cell_id"])
        }

    def analyse(self) -> list[Finding]:
        if self._obs is None:
            return []
        o = self.opts
        out = []
        for cell, s in self._cell_stats().items():
            if s.events < o.min_attempts or cell in self._cool:
                continue
            # rounded as the evidence is, so a ratio compares equal to its own record
            pp, fail, hpi = round(s.ping_pong_ratio, 4), round(s.failure_ratio, 4), round(s.hpi(o), 4)
            detail: dict[str, Any] = {
                "mobility_events": s.events,
                "ho_attempts": s.attempts,
                "ping_pong_ratio": pp,
                "failure_ratio": fail,
                "hpi": hpi,
            }
            later = self._later.get(cell)
            if later is not None:
                detail["hpi_before"] = later.hpi_before
                detail["failure_ratio_before"] = later.failure_ratio_before
            if fail > o.failure_ratio:
                out.append(Finding(cell, "too_late", fail / o.failure_ratio, detail))
                continue
            if later is not None and not later.judged:
                if hpi > later.hpi_before:
                    detail["restore"] = later.setting_before
                    out.append(Finding(cell, "no_gain", hpi / max(later.hpi_before, 1e-9), detail))
                    continue
                self._later[cell] = later = replace(later, judged=True)
            if pp < o.ping_pong_release:  # the ping-pong trigger's release: the cell is settled
                self._pp_flag.discard(cell)
                self._later.pop(cell, None)
                continue
            if pp <= o.ping_pong_ratio and cell not in self._pp_flag:
                continue
            low = wilson_lower(s.ping_pongs, s.successes, o.ping_pong_confidence)
            detail["ping_pong_lower_bound"] = round(low, 4)
            if cell not in self._pp_flag and low <= o.ping_pong_ratio:
                continue
            self._pp_flag.add(cell)
            blocked = self._blocked(fail, pp, later)
            if blocked:
                self._blocked_count += 1
                detail["blocked"] = blocked
            kind = "too_early_blocked" if blocked else "too_early"
            out.append(Finding(cell, kind, pp / o.ping_pong_ratio, detail))
        return out

    def _blocked(self, fail: float, pp: float, later: _LaterStep | None) -> str:
        """Why a cell with too many ping-pongs may not be made later ("" if it may)."""
        o = self.opts
        if later is not None and fail > later.failure_ratio_before:
            return f"failures rose since the last later step ({later.failure_ratio_before:.1%} -> {fail:.1%})"
        if fail >= o.failure_release:
            return f"failure ratio {fail:.1%} not below the release {o.failure_release:.1%}"
        if o.ping_pong_weight * pp <= o.failure_weight * fail:
            return "failure cost dominates the HPI"
        return ""

    def _setting(self, cell: str) -> tuple[float, float]:
        assert self._obs is not None
        cfg = self._obs.config.to_pydict()
        try:
            i = [str(c) for c in cfg["cell_id"]].index(cell)
        except ValueError:
            return self.opts.assumed_hysteresis_db, self.opts.assumed_ttt_ms
        # a recorded network may not report its settings: assume the configured defaults
        hys = cfg["hysteresis_db"][i] if "hysteresis_db" in cfg else None
        ttt = cfg["ttt_ms"][i] if "ttt_ms" in cfg else None
        return (
            self.opts.assumed_hysteresis_db if hys is None else float(hys),
            self.opts.assumed_ttt_ms if ttt is None else float(ttt),
        )

    def _step(self, cell: str, hys: float, ttt: float, up: bool) -> tuple[float, float]:
        """One step later (``up``) or earlier from the cell's setting (``hys``, ``ttt``), inside
        the bounds and (later) the cell's ceiling."""
        o = self.opts
        (hlo, hhi), (tlo, thi) = o.hysteresis_range_db, o.ttt_range_ms
        if up and cell in self._ceiling:
            hhi, thi = min(hhi, self._ceiling[cell][0]), min(thi, self._ceiling[cell][1])
        if up:
            new_hys = max(hys, min(hys + o.step_db, hhi))
            new_ttt = max(ttt, _ttt_step(ttt, True, tlo, thi))
        else:
            new_hys = min(hys, max(hys - o.step_db, hlo))
            new_ttt = min(ttt, _ttt_step(ttt, False, tlo, thi))
        return new_hys, new_ttt

    def decide(self, findings: list[Finding]) -> list[Decision]:
        if self._obs is None or not findings:
            return []
        o = self.opts
        out = []
        for f in findings:
            hys, ttt = self._setting(f.cell)
            d = f.detail
            counts = f"over {d['mobility_events']:.0f} mobility events"
            if f.kind == "too_late":
                new = self._step(f.cell, hys, ttt, up=False)
                why = f"failure ratio {d['failure_ratio']:.1%} > {o.failure_ratio:.1%} {counts}: too late"
            elif f.kind == "no_gain":
                new = tuple(d["restore"])
                why = (
                    f"the last later step did not pay: HPI {d['hpi']:.3f} now "
                    f"vs {d['hpi_before']:.3f} before "
                    f"(failures {d['failure_ratio_before']:.1%} -> {d['failure_ratio']:.1%}, ping-pongs now "
                    f"{d['ping_pong_ratio']:.1%}); undone, and never that late again"
                )
            elif f.kind == "too_early_blocked":
                continue
            else:
                new = self._step(f.cell, hys, ttt, up=True)
                why = (
                    f"ping-pong ratio {d['ping_pong_ratio']:.1%} "
                    f"(lower bound {d['ping_pong_lower_bound']:.1%}, "
                    f"trigger {o.ping_pong_ratio:.0%}) with failures {d['failure_ratio']:.1%} < "
                    f"{o.failure_release:.1%} {counts}, HPI {d['hpi']:.3f}: too early"
                )
            if math.isclose(new[0], hys) and math.isclose(new[1], ttt):
                continue
            evidence = dict(d) | {"direction": f.kind, "setting_before": [hys, ttt]}
            evidence.pop("restore", None)
            out.append(
                Decision(
                    SetHandoverParams(cell=f.cell, hysteresis_db=new[0], time_to_trigger_ms=new[1]),
                    f"{why}: hysteresis {hys:g} -> {new[0]:g} dB, TTT {ttt:g} -> {new[1]:g} ms",
                    evidence=evidence,
                    impact="low",
                )
            )
        return out

    def outcome(self, decision: Decision, result: ActionResult, note: str) -> None:
        cell = str(getattr(decision.action, "cell", ""))
        ev = decision.evidence
        sb = ev.get("setting_before")
        before = (float(sb[0]), float(sb[1])) if sb is not None else None
        direction = ev.get("direction")
        self._cool[cell] = self.opts.cooldown_periods + 1
        if note.startswith("rolled back"):
            # the KPI guard undid it: a later step rolled back is a ceiling like a failed one
            self._later.pop(cell, None)
            if direction == "too_early" and before is not None:
                self._ceiling[cell] = before
            return
        if not result.applied:
            return
        self._changes += 1
        a = decision.action
        assert isinstance(a, SetHandoverParams)
        if direction == "too_early" and before is not None:
            self._later[cell] = _LaterStep(float(ev["hpi"]), float(ev["failure_ratio"]), before)
        elif direction in ("too_late", "no_gain"):
            self._later.pop(cell, None)
            # never go back to the setting that failed: the corrected setting is the ceiling
            self._ceiling[cell] = (a.hysteresis_db, a.time_to_trigger_ms)
            self._pp_flag.discard(cell)

    def explain(self) -> dict[str, Any]:
        return {
            "rule": (
                "MRO (TS 36.902 4.6.2 / 5.2, TS 28.313 7.1.4): failures -> earlier HO at once; "
                "significant ping-pongs -> later HO only while failures are well below their limit and "
                "not rising, the ping-pong cost dominates the HPI, and within the bounds and ceiling; a "
                "later step whose HPI got worse is undone"
            ),
            "thresholds": self.opts.model_dump(),
            "changes_applied": self._changes,
            "ping_pong_flagged": sorted(self._pp_flag),
            "ceilings": {c: list(v) for c, v in sorted(self._ceiling.items())},
            "later_steps_withheld_for_failures": self._blocked_count,
        }
