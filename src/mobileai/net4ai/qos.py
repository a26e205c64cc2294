"""Per-modality QoS for AI service flows: the 5QI table, the modality mapping and a priority
scheduler inside each UE's uplink share.

:data:`~mobileai.twin.fiveqi.FIVE_QI` holds the standardised 5QI characteristics (TS 23.501
Table 5.7.4-1; the twin owns it, its admission control uses the resource types).
:data:`MODALITY_5QI` maps the modalities of an AI service to them: control (robot commands, 5QI 82,
discrete automation), audio (5QI 1, conversational voice), video (5QI 71, live uplink streaming),
tensors/activations of split inference (5QI 80, low-latency eMBB/AR; the TS 22.261 Table 7.10.1-1
split-image payload of 0.27 MB per frame is far above any delay-critical GBR burst volume, so a
non-GBR low-latency 5QI is the fitting one) and model download (5QI 9, TCP bulk).

Scheduling (wave 1, stated honestly): the twin's PF scheduler allocates per UE and slice; inside
one UE's share we serve its flows in strict priority order of the 5QI priority level (lower value
first), a fluid model per 100 ms step: each flow gets what the higher-priority flows leave. The
delay of a flow in a step is its queue at the start of the step plus one packet, over the rate it
receives (Little's law on a fluid queue); bits of a GBR/delay-critical flow that wait longer than
the PDB are discarded and counted as lost (TS 23.501 5.7.3.4: delay-critical GBR packets delayed
beyond the PDB count as lost). The baseline is one FIFO queue per UE (no per-flow QoS): every flow
sees the delay of the UE's whole backlog.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mobileai.twin.fiveqi import FIVE_QI

MODALITIES = ("control", "audio", "video", "tensors", "model_download")
MODALITY_5QI: dict[str, int] = {"control": 82, "audio": 1, "video": 71, "tensors": 80, "model_download": 9}
#: Packet size per modality used for the one-packet serialisation term, bits.
PACKET_BITS: dict[str, float] = {
    "control": 32 * 8,
    "audio": 100 * 8,
    "video": 1400 * 8,
    "tensors": 1400 * 8,
    "model_download": 1400 * 8,
}


def priority_order(modalities: tuple[str, ...]) -> list[int]:
    """Indices of ``modalities`` from the highest priority (lowest priority level) down."""
    return sorted(range(len(modalities)), key=lambda i: FIVE_QI[MODALITY_5QI[modalities[i]]].priority)


@dataclass
class FlowReport:
    """Per-flow delay and loss against the 5QI budget (one entry per modality)."""

    rows: list[dict]

    def as_dict(self) -> dict[str, dict]:
        return {r["modality"]: {k: v for k, v in r.items() if k != "modality"} for r in self.rows}


def schedule_flows(
    offered_bits: np.ndarray,
    capacity_bits: np.ndarray,
    dt_s: float,
    modalities: tuple[str, ...] = MODALITIES,
    policy: str = "priority",
) -> FlowReport:
    """Serve per-UE flows step by step and report delay/loss per modality.

    ``offered_bits`` [T, U, F] new bits per step; ``capacity_bits`` [T, U] what the UE's share
    carries per step; ``policy`` ``priority`` (strict 5QI priority) or ``fifo`` (one queue).
    Delays are weighted by the bits they apply to.
    """
    t_steps, n_ue, n_f = offered_bits.shape
    if capacity_bits.shape != (t_steps, n_ue):
        raise ValueError(f"capacity_bits must be {(t_steps, n_ue)} (got {capacity_bits.shape})")
    if policy not in ("priority", "fifo"):
        raise ValueError(f"policy must be priority or fifo (got {policy!r})")
    order = priority_order(modalities)
    pdb = np.array([FIVE_QI[MODALITY_5QI[m]].pdb_ms / 1e3 for m in modalities])
    gbr = np.array([FIVE_QI[MODALITY_5QI[m]].resource != "Non-GBR" for m in modalities])
    pkt = np.array([PACKET_BITS[m] for m in modalities])
    q = np.zeros((n_ue, n_f))
    delays: list[list[np.ndarray]] = [[] for _ in range(n_f)]
    weights: list[list[np.ndarray]] = [[] for _ in range(n_f)]
    offered = np.zeros(n_f)
    lost = np.zeros(n_f)
    for k in range(t_steps):
        new = offered_bits[k]
        cap = capacity_bits[k].astype(np.float64)
        rate = cap / dt_s
        if policy == "priority":
            left = cap.copy()
            served = np.zeros_like(q)
            d = np.zeros_like(q)
            for f in order:
                avail_rate = left / dt_s
                backlog = q[:, f] + new[:, f]
                with np.errstate(divide="ignore", invalid="ignore"):
                    d[:, f] = np.where(new[:, f] > 0, (q[:, f] + pkt[f]) / avail_rate, 0.0)
                served[:, f] = np.minimum(backlog, left)
                left -= served[:, f]
        else:
            backlog = q + new
            tot = backlog.sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                frac = np.where(tot > 0, np.minimum(cap / tot, 1.0), 0.0)
                d_ue = (q.sum(axis=1) + pkt.max()) / rate
            served = backlog * frac[:, None]
            d = np.where(new > 0, d_ue[:, None], 0.0)
        d = np.where(np.isfinite(d), d, np.inf)
        q = q + new - served
        # GBR / delay-critical bits older than the PDB are discarded (lost)
        late = gbr[None, :] & (d > pdb[None, :])
        drop = np.where(late, q, 0.0)
        lost += drop.sum(axis=0)
        q -= drop
        offered += new.sum(axis=0)
        for f in range(n_f):
            m = new[:, f] > 0
            if m.any():
                delays[f].append(d[m, f])
                weights[f].append(new[m, f])
    rows = []
    for f, mod in enumerate(modalities):
        qi = FIVE_QI[MODALITY_5QI[mod]]
        row: dict = {"modality": mod, "5qi": qi.value, "priority": qi.priority, "pdb_ms": qi.pdb_ms}
        if delays[f]:
            dv = np.concatenate(delays[f])
            w = np.concatenate(weights[f])
            srt = np.argsort(dv)
            cw = np.cumsum(w[srt]) / w.sum()
            row["delay_p50_ms"] = float(dv[srt][np.searchsorted(cw, 0.5)] * 1e3)
            row["delay_p95_ms"] = float(dv[srt][min(np.searchsorted(cw, 0.95), len(dv) - 1)] * 1e3)
            row["within_pdb"] = float(w[dv <= qi.pdb_ms / 1e3].sum() / w.sum())
        else:
            row.update(delay_p50_ms=None, delay_p95_ms=None, within_pdb=None)
        row["offered_mbit"] = float(offered[f] / 1e6)
        row["loss_rate"] = float(lost[f] / offered[f]) if offered[f] > 0 else None
        row["per_target"] = qi.per
        rows.append(row)
    return FlowReport(rows)
