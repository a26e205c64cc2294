"""The anomaly detector as a closed-loop app: detect, localise, propose healing.

``anomaly-healer`` wraps a trained :class:`~mobileai.ai4net.anomaly.detector.AnomalyModel`
(``mobileai bench anomaly --save-model DIR`` or ``mobileai anomaly --save-model DIR``). Each
reporting period it scores every cell (:func:`~mobileai.ai4net.anomaly.pipeline.detect`), keeps
the root causes (the faulty cell, not its overloaded neighbours) as findings, and turns each *new*
incident into the healing actions of :mod:`~mobileai.ai4net.anomaly.healing` (outage
compensation by neighbours, power restore, tilt correction, CIO offload). An incident is a
(cell, fault kind) pair; it is proposed once and again only after it has been clear for
``clear_periods`` periods, so a fault that lasts an hour does not re-propose every period. The
decisions carry the detector's SHAP reasons and the proposal's expected impact as evidence;
outage and sleeping-cell compensation touch several cells and are marked medium impact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from mobileai.ai4net.anomaly.detector import AnomalyModel
from mobileai.ai4net.anomaly.pipeline import detect, proposals
from mobileai.ai4net.app import Decision, Finding, Impact
from mobileai.data.network import Observation
from mobileai.errors import UserError
from mobileai.twin.actions import ActionResult

MULTI_CELL_KINDS = frozenset({"outage", "sleeping_cell"})


class AnomalyHealerOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: Path = Field(description="Folder of a saved AnomalyModel (--save-model).")
    clear_periods: int = Field(
        2, ge=1, description="Periods an incident must be clear before it counts as new."
    )
    min_confidence: float = Field(0.0, ge=0, le=1, description="Smallest fault-kind probability acted on.")


class AnomalyHealer:
    """Detect -> root cause -> healing proposals, once per incident."""

    name: ClassVar[str] = "anomaly-healer"
    priority: ClassVar[int] = 90  # fault management outranks optimisation apps

    def __init__(self, cells: pa.Table, **options: Any) -> None:
        self.opts = AnomalyHealerOptions(**options)
        if not Path(self.opts.model).is_dir():
            raise UserError(f"anomaly-healer.model {self.opts.model}: no saved model folder there")
        self.model = AnomalyModel.load(Path(self.opts.model))
        self.cells = cells
        self._kpis = None
        self._detections = None
        self._open: dict[tuple[str, str], int] = {}  # incident -> periods since last seen
        self._stats = {"periods": 0, "flagged": 0, "incidents": 0, "applied": 0, "rejected": 0}

    def observe(self, obs: Observation) -> None:
        self._kpis = obs.kpis.to_pandas()
        self._stats["periods"] += 1
        for key in list(self._open):
            self._open[key] += 1
            if self._open[key] > self.opts.clear_periods:
                del self._open[key]

    def analyse(self) -> list[Finding]:
        if self._kpis is None or self._kpis.empty:
            return []
        det = detect(self.model, self._kpis)
        self._detections = det
        self._stats["flagged"] += int(det["flag"].sum())
        roots = det[det["root_cause"] & det["kind"].notna()]
        return [
            Finding(
                str(r.cell_id),
                str(r.kind),
                float(r.score),
                {"kind_prob": float(r.kind_prob), "reasons": r.reasons or r.top_kpis or ""},
            )
            for r in roots.itertuples()
        ]

    def decide(self, findings: list[Finding]) -> list[Decision]:
        if not findings or self._detections is None:
            return []
        new = set()
        for f in findings:
            key = (f.cell, f.kind)
            if key not in self._open and f.detail["kind_prob"] >= self.opts.min_confidence:
                new.add(key)
            self._open[key] = 0
        if not new:
            return []
        det = self._detections
        mask = [(str(c), str(k)) in new for c, k in zip(det["cell_id"], det["kind"], strict=True)]
        out = []
        for p in proposals(self.model, det[mask], self._kpis):
            self._stats["incidents"] += 1
            impact: Impact = "medium" if p.kind in MULTI_CELL_KINDS else "low"
            evidence = {"fault_kind": p.kind, "confidence": round(p.confidence, 3), **p.expected_impact}
            out += [
                Decision(a, f"{p.kind} on {p.cell}: {p.explanation}", evidence, impact) for a in p.actions
            ]
        return out

    def outcome(self, decision: Decision, result: ActionResult, note: str) -> None:
        self._stats["applied" if result.applied else "rejected"] += 1

    def explain(self) -> dict[str, Any]:
        return {
            "model": str(self.opts.model),
            "detector": "per-cell hourly normal profile + LightGBM fault-kind classifier (docs/anomaly.md)",
            **self._stats,
        }
