"""Self-healing proposals for a localised fault (3GPP TS 32.541 self-healing; TS 28.627 SON).

For each root cause (cell, kind) the detector found, :func:`propose` returns typed actions
(:mod:`mobileai.twin.actions`) with an explanation and an expected impact, for the guardrails and
approval step to accept or reject. Nothing is applied here. The recovery actions are the standard
ones of cell outage compensation (TS 32.541 4.2; Amirijoo et al., "Cell outage management in LTE
networks", ISWCS 2009): when a cell cannot serve, its neighbours widen their coverage (more power,
less down-tilt); when a cell is congested or interfered, its edge users are handed to neighbours
(cell individual offset); when a cell is configured wrong, its configuration is restored.

| kind                    | proposal                                                                  |
|-------------------------|---------------------------------------------------------------------------|
| outage, sleeping_cell   | up to 3 facing neighbours: +3 dB power and 2 deg less down-tilt; for a    |
|                         | sleeping cell also a restart (off, then an operator's wake-up)            |
| power_degradation       | raise the cell's power by the observed SINR loss (at most 6 dB)           |
| tilt_error              | 2 deg less down-tilt on the cell (a bounded corrective step)              |
| external_interference   | +3 dB CIO towards up to 3 neighbours (move edge users off the cell)       |
| backhaul_congestion     | +3 dB CIO towards up to 3 neighbours                                      |
| traffic_surge           | +3 dB CIO towards the 3 least-loaded neighbours                           |

Limits of every value come from the action types (their pydantic fields), so a proposal is always
a valid action; the guardrails still decide whether the change is acceptable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mobileai.ai4net.topology import NeighbourGraph
from mobileai.twin.actions import Action, SetCellState, SetCIO, SetTilt, SetTxPower

POWER_STEP_DB = 3.0
TILT_STEP_DEG = 2.0
CIO_STEP_DB = 3.0
MAX_POWER_COMPENSATION_DB = 6.0
MAX_HELPERS = 3
MAX_TX_POWER_DBM = float(SetTxPower.model_fields["tx_power_dbm"].metadata[1].le)
MIN_TILT_DEG = float(SetTilt.model_fields["downtilt_deg"].metadata[0].ge)


@dataclass(frozen=True)
class HealingProposal:
    """Actions proposed for one root cause, with why and what they should achieve."""

    cell: str
    kind: str
    confidence: float
    actions: list[Action]
    explanation: str
    expected_impact: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cell": self.cell,
            "kind": self.kind,
            "confidence": round(self.confidence, 4),
            "actions": [a.model_dump(mode="json") for a in self.actions],
            "explanation": self.explanation,
            "expected_impact": self.expected_impact,
        }


def _cell_row(cells: pd.DataFrame | None, cell: str) -> dict[str, Any]:
    if cells is None:
        return {}
    m = cells[cells["cell_id"].astype(str) == cell]
    return {} if m.empty else m.iloc[0].to_dict()


def propose(
    cell: str,
    kind: str,
    confidence: float,
    graph: NeighbourGraph | None,
    cells: pd.DataFrame | None,
    context: dict[str, Any] | None = None,
) -> HealingProposal:
    """Actions for a fault ``kind`` on ``cell``. ``context`` may hold ``reasons`` (text),
    ``sinr_drop_db`` (observed loss of median SINR against normal), ``users`` (the cell's normal
    connected UEs at this hour) and ``neighbour_load`` ({cell: PRB use %})."""
    ctx = context or {}
    nbs = graph.of(cell) if graph is not None and cell in graph.positions else []
    helpers = nbs[:MAX_HELPERS]
    users = ctx.get("users")
    why = ctx.get("reasons", "")
    acts: list[Action] = []
    impact: dict[str, Any] = {}
    if kind in ("outage", "sleeping_cell"):
        for nb in helpers:
            row = _cell_row(cells, nb)
            if "tx_power_dbm" in row:
                acts.append(
                    SetTxPower(
                        cell=nb, tx_power_dbm=min(MAX_TX_POWER_DBM, row["tx_power_dbm"] + POWER_STEP_DB)
                    )
                )
            if "downtilt_deg" in row:
                acts.append(
                    SetTilt(cell=nb, downtilt_deg=max(MIN_TILT_DEG, row["downtilt_deg"] - TILT_STEP_DEG))
                )
        if kind == "sleeping_cell":
            acts.insert(0, SetCellState(cell=cell, state="off"))
        text = (
            f"{cell} {'carries no traffic' if kind == 'sleeping_cell' else 'is down'}: "
            f"neighbours {', '.join(helpers) or '(none known)'} widen coverage to take its users"
        )
        impact = {
            "users_to_recover": users,
            "neighbours_changed": len(helpers),
            "energy": "+ (neighbour power)",
        }
    elif kind == "power_degradation":
        row = _cell_row(cells, cell)
        loss = float(min(MAX_POWER_COMPENSATION_DB, max(POWER_STEP_DB, ctx.get("sinr_drop_db") or 0.0)))
        if "tx_power_dbm" in row:
            acts.append(SetTxPower(cell=cell, tx_power_dbm=min(MAX_TX_POWER_DBM, row["tx_power_dbm"] + loss)))
        text = f"{cell} transmits weaker than configured: raise its power by {loss:.1f} dB until repaired"
        impact = {"sinr_gain_db": loss, "users_affected": users}
    elif kind == "tilt_error":
        row = _cell_row(cells, cell)
        if "downtilt_deg" in row:
            acts.append(
                SetTilt(cell=cell, downtilt_deg=max(MIN_TILT_DEG, row["downtilt_deg"] - TILT_STEP_DEG))
            )
        text = (
            f"{cell} antenna tilt off: step the electrical tilt back by {TILT_STEP_DEG:g} deg "
            "and dispatch a site check"
        )
        impact = {"coverage": "restore cell-edge coverage", "users_affected": users}
    else:
        targets = helpers
        if kind == "traffic_surge" and ctx.get("neighbour_load"):
            load = ctx["neighbour_load"]
            targets = sorted(nbs, key=lambda c: load.get(c, float("inf")))[:MAX_HELPERS]
        acts.extend(SetCIO(source=cell, target=t, cio_db=CIO_STEP_DB) for t in targets)
        cause = {
            "external_interference": "is interfered",
            "backhaul_congestion": "is capped by its backhaul",
            "traffic_surge": "is overloaded by a traffic surge",
        }.get(kind, f"shows {kind}")
        text = f"{cell} {cause}: hand its edge users to {', '.join(targets) or '(no neighbour known)'}"
        impact = {"users_offloaded": "cell-edge users", "neighbours_changed": len(targets)}
    if why:
        text += f" (evidence: {why})"
    return HealingProposal(cell, kind, float(confidence), acts, text, impact)
