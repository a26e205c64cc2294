"""Quality of AI Service (QoAIS) per AI service, along the six dimensions of the QoAIS table of
Cui et al., "Overview of AI and communication for 6G network: fundamentals, challenges, and
future research opportunities", Sci China Inf Sci 68, 2025 (performance, connection, data,
computation, security, orchestration).

Measured from the task outcomes of one run (:class:`~mobileai.net4ai.simulator.Outcomes`):

- performance: accuracy delivered (the model's reference accuracy on tasks answered by their
  deadline, 0 otherwise) against the need, latency p50/p95/p99 against the deadline bound;
- connection: uplink bandwidth used while transmitting, network delay (transport + queueing),
  jitter (standard deviation of end-to-end latency), reliability (share of tasks delivered);
- data: completeness (share of inputs fully delivered to where they were processed), freshness
  (mean age of a result when it arrives, i.e. the mean end-to-end latency of delivered tasks);
- computation: duration (device + server compute per task), efficiency (share of FLOPs spent on
  tasks that met their deadline), device energy per task;
- security: privacy honoured (share of tasks whose upload respected the class's privacy; must
  be 1) and traceability (share of tasks with a logged decision: option, node, estimate);
- orchestration: autonomy level of the policy on the 0-5 scale of autonomous networks
  (3GPP TS 28.100 clause 4: L1 assisted operation: a fixed placement; L3 conditional: adapts to a
  measured value; L4 high autonomy: predicts, closes the loop, recovers by itself).
"""

from __future__ import annotations

import numpy as np

from mobileai.compute.profiles import load_profile
from mobileai.compute.workloads import Workload

AUTONOMY_LEVEL = {"device": 1, "edge": 1, "cloud": 1, "neurosurgeon": 3, "radio_aware": 4}


def _pct(v: np.ndarray, q: float) -> float | None:
    v = v[np.isfinite(v)]
    return float(np.percentile(v, q) * 1e3) if len(v) else None


def privacy_violations(columns: dict[str, np.ndarray], workload: Workload) -> int:
    """Tasks whose chosen split sent data the class does not allow off the device."""
    bad = 0
    for c, tc in enumerate(workload.classes):
        m = columns["cls"] == c
        allowed = tc.upload_allowed()
        up = columns["up_bytes"][m] > 0
        split = columns["split"][m].astype(np.int64)
        bad += int((up & ~allowed[split]).sum())
    return bad


def qoais_report(columns: dict[str, np.ndarray], workload: Workload, policy: str) -> dict[str, dict]:
    """QoAIS of every task class (AI service) of one run."""
    out: dict[str, dict] = {}
    for c, tc in enumerate(workload.classes):
        m = columns["cls"] == c
        n = int(m.sum())
        if n == 0:
            out[tc.name] = {"tasks": 0}
            continue
        prof = load_profile(tc.model)
        e2e = columns["e2e_s"][m]
        met = columns["met"][m]
        delivered = columns["delivered"][m]
        up = columns["up_bytes"][m]
        ul_s = columns["ul_s"][m]
        tx = (up > 0) & np.isfinite(ul_s) & (ul_s > 0)
        flops = prof.total_flops
        row = {
            "tasks": n,
            "performance": {
                "accuracy_needed": tc.min_accuracy,
                "accuracy_delivered": float(prof.accuracy * met.mean()),
                "accuracy_metric": prof.accuracy_metric,
                "deadline_ms": tc.deadline_ms,
                "deadline_met": float(met.mean()),
                "latency_p50_ms": _pct(e2e, 50),
                "latency_p95_ms": _pct(e2e, 95),
                "latency_p99_ms": _pct(e2e, 99),
            },
            "connection": {
                "uplink_mbps_while_sending": float(np.mean(up[tx] * 8 / ul_s[tx]) / 1e6)
                if tx.any()
                else None,
                "network_delay_ms": float(np.mean(columns["net_delay_s"][m][delivered]) * 1e3)
                if delivered.any()
                else None,
                "jitter_ms": float(np.std(e2e[np.isfinite(e2e)]) * 1e3) if np.isfinite(e2e).any() else None,
                "reliability": float(delivered.mean()),
            },
            "data": {
                "completeness": float(delivered.mean()),
                "freshness_ms": float(np.mean(e2e[delivered]) * 1e3) if delivered.any() else None,
            },
            "computation": {
                "duration_ms": float(np.mean(columns["compute_s"][m] + columns["server_s"][m]) * 1e3),
                "efficiency": float(met.mean()),
                "flops_per_task": flops,
                "device_energy_mj_per_task": float(np.mean(columns["dev_energy_j"][m]) * 1e3),
            },
            "security": {
                "privacy_class": tc.privacy,
                "privacy_honoured": 1.0 - privacy_violations(_subset(columns, m), _one(workload, c)) / n,
                "traceability": float(np.isfinite(columns["est_s"][m]).mean()),
            },
            "orchestration": {"policy": policy, "autonomy_level": AUTONOMY_LEVEL.get(policy, 0)},
        }
        if tc.max_uplink_ms is not None:
            ok = met & (~(up > 0) | (ul_s * 1e3 <= tc.max_uplink_ms))
            row["performance"]["uplink_requirement_ms"] = tc.max_uplink_ms
            row["performance"]["uplink_requirement_met"] = float(ok.mean())
        out[tc.name] = row
    return out


def _subset(columns: dict[str, np.ndarray], m: np.ndarray) -> dict[str, np.ndarray]:
    return {k: np.zeros(int(m.sum())) if k == "cls" else v[m] for k, v in columns.items() if len(v) == len(m)}


def _one(workload: Workload, c: int) -> Workload:
    return workload.model_copy(update={"classes": [workload.classes[c]]})
