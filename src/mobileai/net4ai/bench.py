"""Run a workload over the twin for every placement policy, and the ``bench offload`` benchmark.

:func:`run_workload` records the twin's radio for the workload's UEs once, then plays every
policy on the same record (same arrivals, same seeds), optionally a second time with the UEs'
uplinks replaced by measured Cork 5G traces (:func:`~mobileai.net4ai.uplink.replay_uplinks`).
:func:`run_offload_bench` adds the decision-time benchmark (1,000 concurrent tasks), the
calibration of the uplink predictor on the Cork traces, and the per-modality QoS comparison
(strict 5QI priority vs one FIFO queue per UE).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mobileai.compute.workloads import Workload, load_workload
from mobileai.net4ai.offload import POLICIES, DecisionInputs, build_options, decide
from mobileai.net4ai.qoais import privacy_violations, qoais_report
from mobileai.net4ai.qos import MODALITIES, schedule_flows
from mobileai.net4ai.simulator import WARMUP_STEPS, Outcomes, assign_members, record_radio, simulate
from mobileai.net4ai.uplink import calibration_on_traces, load_cork5g, replay_uplinks

STATIC = ("device", "edge", "cloud")


def default_workload_path() -> Path:
    """The sample workload shipped in ``examples/ai-workload``."""
    return Path(__file__).resolve().parents[3] / "examples" / "ai-workload" / "robots-and-glasses.yaml"


def summarise(columns: dict[str, np.ndarray], workload: Workload, dt_total: float) -> dict:
    e2e = columns["e2e_s"]
    fin = np.where(np.isfinite(e2e), e2e, dt_total)  # undelivered count as the run length
    out = {
        "tasks": len(e2e),
        "deadline_met": float(columns["met"].mean()) if len(e2e) else None,
        "p50_latency_ms": float(np.percentile(fin, 50) * 1e3) if len(e2e) else None,
        "p95_latency_ms": float(np.percentile(fin, 95) * 1e3) if len(e2e) else None,
        "device_energy_j": float(columns["dev_energy_j"].sum()),
        "uplink_mb": float(columns["up_bytes"].sum() / 1e6),
        "delivered": float(columns["delivered"].mean()) if len(e2e) else None,
        "fell_back": int(columns["fell_back"].sum()),
        "privacy_violations": privacy_violations(columns, workload),
        "per_class": {},
    }
    for c, tc in enumerate(workload.classes):
        m = columns["cls"] == c
        if not m.any():
            continue
        row = {
            "tasks": int(m.sum()),
            "deadline_met": float(columns["met"][m].mean()),
            "p95_latency_ms": float(np.percentile(fin[m], 95) * 1e3),
            "offloaded": float((columns["node"][m] >= 0).mean()),
        }
        if tc.max_uplink_ms is not None:
            ul = columns["ul_s"][m]
            up = columns["up_bytes"][m] > 0
            row["uplink_requirement_met"] = float(
                (columns["met"][m] & (~up | (ul * 1e3 <= tc.max_uplink_ms))).mean()
            )
        out["per_class"][tc.name] = row
    return out


def run_workload(
    workload: Workload,
    scenario: str = "dense-urban",
    duration_s: float = 300.0,
    policies: tuple[str, ...] = POLICIES,
    seed: int | None = None,
    n_ues: int | None = None,
    cork_data: str | Path | None = None,
    replay: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Record the twin once, play each policy; returns summaries, QoAIS and raw outcomes."""
    import torch

    from mobileai.twin.config import SERVICES, load_scenario
    from mobileai.twin.engine import Twin

    say = progress or (lambda _m: None)
    sc = load_scenario(scenario)
    updates: dict = {}
    if seed is not None:
        updates["seed"] = seed
    if n_ues is not None:
        updates["ues"] = {"count": n_ues}
    if updates:
        sc = sc.with_updates(**updates)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        twin = Twin(sc)
        ue_ids, members = assign_members(workload, twin.traffic.service.cpu().numpy(), SERVICES)
        steps = round(duration_s / twin.dt) + WARMUP_STEPS
        say(f"recording the twin's radio for {len(ue_ids)} AI UEs, {steps} steps")
        t0 = time.perf_counter()
        radio = record_radio(twin, ue_ids, steps)
        record_s = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)
    records = {"twin": radio}
    if replay:
        traces = load_cork5g(cork_data)
        level = np.median(radio.ul_bps, axis=0)
        rng = np.random.default_rng(workload.seed + 11)
        ul = replay_uplinks(traces, radio.ul_bps.shape[1], radio.steps, radio.dt, level, rng)
        records["cork5g"] = radio.with_uplink(ul, "cork5g replay")
    horizon = radio.steps * radio.dt
    result: dict = {
        "scenario": sc.name,
        "seed": sc.seed,
        "workload": workload.name,
        "duration_s": duration_s,
        "ai_ues": len(ue_ids),
        "record_s": record_s,
        "runs": {},
        "outcomes": {},
    }
    for src, rec in records.items():
        runs = {}
        for pol in policies:
            say(f"{src}: policy {pol}")
            t0 = time.perf_counter()
            o: Outcomes = simulate(workload, members, rec, pol, seed=workload.seed)
            wall = time.perf_counter() - t0
            s = summarise(o.columns, workload, horizon)
            s["sim_wall_s"] = wall
            s["decision_ms_per_step_mean"] = float(np.mean(o.decision_s) * 1e3) if o.decision_s else None
            s["qoais"] = qoais_report(o.columns, workload, pol)
            runs[pol] = s
            result["outcomes"][(src, pol)] = o
        result["runs"][src] = runs
    result["members"] = members
    result["radio"] = records
    return result


def headline(runs: dict[str, dict]) -> dict:
    """The brief's JSON block and the target checks for one uplink source."""
    pols = [p for p in POLICIES if p in runs]
    out = {
        key: {("ours" if p == "radio_aware" else p): runs[p][key] for p in pols}
        for key in ("p95_latency_ms", "p50_latency_ms", "deadline_met", "device_energy_j", "uplink_mb")
    }
    split_cls = [
        name
        for name in next(iter(runs.values()))["per_class"]
        if "uplink_requirement_met" in runs[pols[0]]["per_class"][name]
    ]
    out["ts22261_split_image_met"] = {
        ("ours" if p == "radio_aware" else p): {
            c: runs[p]["per_class"][c]["uplink_requirement_met"] for c in split_cls
        }
        for p in pols
    }
    if "radio_aware" in runs:
        ours = runs["radio_aware"]
        statics = [p for p in STATIC if p in runs]
        best_met = max(statics, key=lambda p: runs[p]["deadline_met"])
        best_p95 = min(statics, key=lambda p: runs[p]["p95_latency_ms"])
        t = {
            "best_static_by_deadline": best_met,
            "deadline_ratio_vs_best_static": ours["deadline_met"] / max(runs[best_met]["deadline_met"], 1e-9),
            "p95_reduction_vs_best_static": 1 - ours["p95_latency_ms"] / runs[best_p95]["p95_latency_ms"],
        }
        if "neurosurgeon" in runs:
            ns = runs["neurosurgeon"]
            t["deadline_ratio_vs_neurosurgeon"] = ours["deadline_met"] / max(ns["deadline_met"], 1e-9)
            t["p95_reduction_vs_neurosurgeon"] = 1 - ours["p95_latency_ms"] / ns["p95_latency_ms"]
        t["targets_met"] = {
            "deadline_1_5x": t["deadline_ratio_vs_best_static"] >= 1.5
            and t.get("deadline_ratio_vs_neurosurgeon", 2) >= 1.5,
            "p95_30pct_lower": t["p95_reduction_vs_best_static"] >= 0.3
            and t.get("p95_reduction_vs_neurosurgeon", 1) >= 0.3,
        }
        out["targets"] = t
    return out


def decision_time_bench(workload: Workload, tasks: int = 1000, repeats: int = 50, seed: int = 0) -> dict:
    """Wall time of one vectorised decision for ``tasks`` concurrent tasks, per policy."""
    from mobileai.compute.nodes import ComputeLayer
    from mobileai.compute.profiles import reference_cpu_flops_per_s

    rng = np.random.default_rng(seed)
    sites = 19
    ang = np.linspace(0, 2 * np.pi, sites, endpoint=False)
    compute = ComputeLayer.over_sites(workload.edge, np.cos(ang), np.sin(ang), seed)
    opt = build_options(list(workload.classes), compute.n_nodes)
    site = rng.integers(0, sites, tasks)
    x = DecisionInputs(
        cls=rng.integers(0, len(workload.classes), tasks),
        deadline_s=rng.uniform(0.05, 0.3, tasks),
        wait_dev_s=rng.exponential(0.01, tasks),
        dev_flops=rng.choice([40e9, 50e9, 1e12, 10e12], tasks),
        dev_memory_bytes=np.full(tasks, 4e9),
        dev_power_w=np.full(tasks, 4.0),
        tx_power_w=np.full(tasks, 2.5),
        soc=rng.uniform(0.05, 1, tasks),
        wait_ul_s=rng.exponential(0.01, tasks),
        mu=np.log(rng.uniform(1e6, 5e7, tasks)),
        sigma=rng.uniform(0.1, 1.0, tasks),
        p_out=rng.uniform(0, 0.05, tasks),
        mean_bps=rng.uniform(1e6, 5e7, tasks),
        dl_bps=rng.uniform(1e7, 5e8, tasks),
        one_way_s=compute.one_way_s(site),
        serving_edge=compute.site_edge[site],
        node_wait_s=compute.wait_s(),
        node_up=compute.up,
        node_flops=compute.flops_per_s,
        node_overhead_s=compute.block_overhead_s,
        transport_bps=compute.transport_gbps() * 1e9,
        ref_flops=reference_cpu_flops_per_s(),
    )
    out = {"tasks": tasks, "options_per_task": opt.n_options, "repeats": repeats, "policies": {}}
    for pol in POLICIES:
        decide(pol, opt, x)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            decide(pol, opt, x)
            times.append(time.perf_counter() - t0)
        out["policies"][pol] = {
            "median_ms": float(np.median(times) * 1e3),
            "best_ms": float(np.min(times) * 1e3),
        }
    out["radio_aware_under_1ms"] = out["policies"]["radio_aware"]["median_ms"] < 1.0
    return out


def qos_comparison(result: dict, workload: Workload, source: str = "twin") -> dict:
    """Per-modality delay/loss for the radio-aware run: strict 5QI priority vs one FIFO per UE."""
    o: Outcomes = result["outcomes"][(source, "radio_aware")]
    rec = result["radio"][source]
    members = result["members"]
    t_steps, n_ue = rec.ul_bps.shape
    offered = np.zeros((t_steps, n_ue, len(MODALITIES)))
    for c, tc in enumerate(workload.classes):
        m = members.cls == c
        for f, mod in enumerate(MODALITIES):
            rate = getattr(tc.flows, f"{mod}_bps", 0.0)
            offered[:, m, f] = rate * rec.dt
    offered[:, :, MODALITIES.index("tensors")] = o.tensor_bits
    cap = rec.ul_bps * rec.dt
    return {
        p: schedule_flows(offered[WARMUP_STEPS:], cap[WARMUP_STEPS:], rec.dt, MODALITIES, p).as_dict()
        for p in ("priority", "fifo")
    }


def run_offload_bench(
    workload_path: str | Path | None = None,
    scenario: str = "dense-urban",
    duration_s: float = 300.0,
    cork_data: str | Path | None = None,
    replay: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict:
    wl = load_workload(workload_path or default_workload_path())
    t0 = time.perf_counter()
    res = run_workload(wl, scenario, duration_s, cork_data=cork_data, replay=replay, progress=progress)
    out: dict = {
        "scenario": res["scenario"],
        "seed": res["seed"],
        "workload": wl.name,
        "duration_s": duration_s,
        "ai_ues": res["ai_ues"],
    }
    out.update(headline(res["runs"]["twin"]))
    out["per_policy"] = {
        p: {k: v for k, v in s.items() if k != "qoais"} for p, s in res["runs"]["twin"].items()
    }
    out["qoais"] = {p: s["qoais"] for p, s in res["runs"]["twin"].items()}
    if replay:
        out["replay_cork5g"] = headline(res["runs"]["cork5g"])
        traces = load_cork5g(cork_data)
        out["uplink_calibration_cork5g"] = {
            "capacity_series_dl_bitrate": calibration_on_traces(traces, "dl_bps"),
            "measured_ul_bitrate_all_apps": calibration_on_traces(
                load_cork5g(cork_data, apps=("Download", "Netflix", "Amazon_Prime")), "ul_bps"
            ),
        }
    out["decision_time"] = decision_time_bench(wl)
    out["qos_modalities"] = qos_comparison(res, wl)
    out["wall_s"] = time.perf_counter() - t0
    return out
