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
from mobileai.net4ai.offload import POLICIES, DecisionInputs, OnTimeCalibration, build_options, decide
from mobileai.net4ai.qoais import privacy_violations, qoais_report
from mobileai.net4ai.qos import MODALITIES, schedule_flows
from mobileai.net4ai.simulator import (
    WARMUP_STEPS,
    Members,
    Outcomes,
    assign_members,
    record_radio,
    simulate,
)
from mobileai.net4ai.tdd import CellMeter, TddController, tdd_cost
from mobileai.net4ai.uplink import calibration_on_traces, load_cork5g, replay_uplinks

STATIC = ("device", "edge", "cloud")
#: Names in the JSON: ours, and ours / the single-bandwidth baseline with the TDD controller.
LABEL = {"radio_aware": "ours", "radio_aware_tdd": "ours+tdd", "neurosurgeon_tdd": "neurosurgeon+tdd"}


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
        # tasks in flight that service continuity re-sent to another node (their MEC failed)
        "migrated": int(columns["migrated"].sum()),
        # tasks that never came back (a MEC failed while it held them, or the run ended first)
        "lost": int(columns["lost"].sum()),
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
    tdd: bool = False,
) -> dict:
    """Record the twin once, play each policy; returns summaries, QoAIS and raw outcomes.

    ``tdd``: also run "ours+tdd" (:mod:`mobileai.net4ai.tdd`): the twin recorded again with the
    same scenario and seed while the TDD controller moves uplink-heavy AI cells to DDSUU, driven
    by the uplink bits ours offered on the default pattern; ours plays that record, and the
    downlink cost to the switched cells' other UEs is measured against the first recording."""
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
        speed_kmh = twin.mobility.speed.cpu().numpy().astype(np.float64) * 3.6
        ue_ids, members = assign_members(workload, twin.traffic.service.cpu().numpy(), SERVICES, speed_kmh)
        steps = round(duration_s / twin.dt) + WARMUP_STEPS
        say(f"recording the twin's radio for {len(ue_ids)} AI UEs, {steps} steps")
        t0 = time.perf_counter()
        n_ues = len(twin.traffic.service)
        meter = CellMeter(twin.n_cells, n_ues, ue_ids, steps, twin.dt) if tdd else None
        radio = record_radio(twin, ue_ids, steps, on_step=meter)
        record_s = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)
    records = {"twin": radio}
    if replay:
        traces = load_cork5g(cork_data)
        level = np.median(radio.ul_bps, axis=0)
        rng = np.random.default_rng(workload.seed + 11)
        ul = replay_uplinks(
            traces, radio.ul_bps.shape[1], radio.steps, radio.dt, level, rng, moving=members.speed_kmh > 0
        )
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
    if tdd and "radio_aware" in policies:
        say("recording the twin again with the TDD controller")
        offered = result["outcomes"][("twin", "radio_aware")].tensor_bits + side_flow_bits(
            workload, members, radio.dt
        )
        torch.set_num_threads(1)
        try:
            twin2 = Twin(sc)
            meter2 = CellMeter(twin2.n_cells, n_ues, ue_ids, steps, twin2.dt)
            ctl = TddController(twin2, ue_ids, offered)

            def both(k: int, links: dict) -> None:
                meter2(k, links)
                ctl(k, links)

            radio_tdd = record_radio(twin2, ue_ids, steps, on_step=both)
        finally:
            torch.set_num_threads(threads)
        # ours on the TDD record, and the single-bandwidth baseline on it too (what the network
        # action gives without our placement)
        for pol in ("radio_aware", "neurosurgeon"):
            if pol not in policies:
                continue
            say(f"twin with the TDD controller: policy {pol}")
            o = simulate(workload, members, radio_tdd, pol, seed=workload.seed)
            s_tdd = summarise(o.columns, workload, horizon)
            s_tdd["qoais"] = qoais_report(o.columns, workload, pol)
            result["runs"]["twin"][f"{pol}_tdd"] = s_tdd
            result["outcomes"][("twin", f"{pol}_tdd")] = o
        cost = tdd_cost(meter, meter2, ctl.state, WARMUP_STEPS)
        cost["actions"] = ctl.actions
        cost["thresholds"] = {
            "on_share": ctl.on_share,
            "off_share": ctl.off_share,
            "dl_fit": ctl.dl_fit,
            "dl_full": ctl.dl_full,
            "min_dwell_steps": ctl.dwell,
        }
        # the AI tasks of the UEs while their cell was UL-heavy, with and without the action
        cost["ai_in_switched_cells"] = _ai_in_switched(result, ctl.in_heavy, radio.dt, horizon)
        result["tdd"] = cost
        records["twin_tdd"] = radio_tdd
    result["members"] = members
    result["radio"] = records
    return result


def side_flow_bits(workload: Workload, members: Members, dt: float) -> np.ndarray:
    """[1, AI UEs] uplink bits per step of each UE's side flows (control, audio, video)."""
    f = [tc.flows for tc in workload.classes]
    per_cls = np.array([x.control_bps + x.audio_bps + x.video_bps for x in f])
    return (per_cls[members.cls] * dt)[None, :]


def _ai_in_switched(result: dict, in_heavy: np.ndarray, dt: float, horizon: float) -> dict:
    """Ours' tasks that arrived while their UE's serving cell was UL-heavy (in the TDD run):
    deadline met and p95, with the action and without it (the same tasks: same arrivals)."""
    out = {}
    for name in ("radio_aware", "radio_aware_tdd"):
        c = result["outcomes"][("twin", name)].columns
        k = np.clip((c["t_arrival"] / dt).astype(np.int64), 0, in_heavy.shape[0] - 1)
        m = in_heavy[k, c["ue"].astype(np.int64)]
        e2e = np.where(np.isfinite(c["e2e_s"][m]), c["e2e_s"][m], horizon)
        out[LABEL[name]] = {
            "tasks": int(m.sum()),
            "deadline_met": float(c["met"][m].mean()) if m.any() else None,
            "p95_latency_ms": float(np.percentile(e2e, 95) * 1e3) if m.any() else None,
            "uplink_mb": float(c["up_bytes"][m].sum() / 1e6),
        }
    return out


def headline(runs: dict[str, dict]) -> dict:
    """The brief's JSON block and the target checks for one uplink source."""
    pols = [p for p in (*POLICIES, "neurosurgeon_tdd", "radio_aware_tdd") if p in runs]
    out = {
        key: {LABEL.get(p, p): runs[p][key] for p in pols}
        for key in ("p95_latency_ms", "p50_latency_ms", "deadline_met", "device_energy_j", "uplink_mb")
    }
    split_cls = [
        name
        for name in next(iter(runs.values()))["per_class"]
        if "uplink_requirement_met" in runs[pols[0]]["per_class"][name]
    ]
    out["ts22261_split_image_met"] = {
        LABEL.get(p, p): {c: runs[p]["per_class"][c]["uplink_requirement_met"] for c in split_cls}
        for p in pols
    }
    if "radio_aware" in runs:
        out["targets"] = _targets(runs, "radio_aware", "neurosurgeon")
    if "radio_aware_tdd" in runs:
        # ours+tdd against the policies on the default pattern, and against the single-bandwidth
        # baseline on the same UL-heavier cells (what the TDD action gives without our placement)
        out["targets_ours_tdd"] = _targets(runs, "radio_aware_tdd", "neurosurgeon")
        if "neurosurgeon_tdd" in runs:
            same = _targets(runs, "radio_aware_tdd", "neurosurgeon_tdd")
            out["targets_ours_tdd"]["vs_neurosurgeon_tdd"] = {
                k: same[k] for k in ("deadline_ratio_vs_neurosurgeon", "p95_reduction_vs_neurosurgeon")
            }
    return out


def _targets(runs: dict[str, dict], ours_key: str, ns_key: str) -> dict:
    """The issue's ratios: ours vs the best static policy and vs the single-bandwidth selector."""
    ours = runs[ours_key]
    statics = [p for p in STATIC if p in runs]
    t: dict = {}
    if statics:
        best_met = max(statics, key=lambda p: runs[p]["deadline_met"])
        best_p95 = min(statics, key=lambda p: runs[p]["p95_latency_ms"])
        t["best_static_by_deadline"] = best_met
        t["deadline_ratio_vs_best_static"] = ours["deadline_met"] / max(runs[best_met]["deadline_met"], 1e-9)
        t["p95_reduction_vs_best_static"] = 1 - ours["p95_latency_ms"] / runs[best_p95]["p95_latency_ms"]
    if ns_key in runs:
        ns = runs[ns_key]
        t["deadline_ratio_vs_neurosurgeon"] = ours["deadline_met"] / max(ns["deadline_met"], 1e-9)
        t["p95_reduction_vs_neurosurgeon"] = 1 - ours["p95_latency_ms"] / ns["p95_latency_ms"]
    t["targets_met"] = {
        "deadline_1_5x": t.get("deadline_ratio_vs_best_static", 2) >= 1.5
        and t.get("deadline_ratio_vs_neurosurgeon", 2) >= 1.5,
        "p95_30pct_lower": t.get("p95_reduction_vs_best_static", 1) >= 0.3
        and t.get("p95_reduction_vs_neurosurgeon", 1) >= 0.3,
    }
    return t


def _fitted_calibration(n_classes: int, rng: np.random.Generator) -> OnTimeCalibration:
    """An on-time calibration map fitted on 20,000 synthetic outcomes (met at 0.9 x the raw P
    plus 0.05), so the timed decision maps P through a non-identity table as a run does."""
    cal = OnTimeCalibration(n_classes)
    p = rng.uniform(0, 1, 20_000)
    cal.observe(rng.integers(0, n_classes, len(p)), p, rng.uniform(0, 1, len(p)) < 0.05 + 0.9 * p)
    cal.refit()
    return cal


def decision_time_bench(workload: Workload, tasks: int = 1000, repeats: int = 200, seed: int = 0) -> dict:
    """Decision latency for ``tasks`` concurrent tasks, every policy timed the same way.

    What is timed: one call ``decide(policy, options, inputs)`` that decides all ``tasks`` tasks
    at once (the inputs, one array per field as the simulator gathers them, are built before the
    clock starts; the per-batch node tables are cached after the first call, as in a run), wall
    clock (``time.perf_counter``), ``repeats`` calls after one warm-up call, the same inputs for
    every policy. ``per_task_us`` = batch time / tasks; ``batch_cpu_*`` is the calling thread's
    CPU time (``time.thread_time``), which leaves out waits for a core on a shared machine. The
    target ("a decision per task in under 1 ms for 1,000 concurrent tasks") is read strictly:
    the whole batch of 1,000 within 1 ms, i.e. every task has its decision < 1 ms after the
    batch starts. The 1-minute load average is recorded next to the times (the machine may be
    shared)."""
    import os

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
        dl_level_bps=rng.uniform(1e7, 5e8, tasks),
        one_way_s=compute.one_way_s(site),
        serving_edge=compute.site_edge[site],
        node_wait_s=compute.wait_s(),
        node_up=compute.up,
        node_flops=compute.flops_per_s,
        node_overhead_s=compute.block_overhead_s,
        transport_bps=compute.transport_gbps() * 1e9,
        ref_flops=reference_cpu_flops_per_s(),
        ho_rate_hz=rng.uniform(0, 0.2, tasks),
        outage_left_s=rng.uniform(0.1, 2.0, tasks),
        rate_interval_s=0.1,
        calibration=_fitted_calibration(len(workload.classes), rng),
    )
    out = {
        "what": "one decide() call deciding all tasks at once; wall clock per call (radio-aware "
        "with its recalibration map fitted, as in a run)",
        "tasks": tasks,
        "options_per_task": opt.n_options,
        "repeats": repeats,
        "load_avg_1min_before": os.getloadavg()[0],
        "policies": {},
    }
    for pol in POLICIES:
        decide(pol, opt, x)
        times, cpu = np.empty(repeats), np.empty(repeats)
        for r in range(repeats):
            t0, c0 = time.perf_counter(), time.thread_time()
            decide(pol, opt, x)
            times[r], cpu[r] = time.perf_counter() - t0, time.thread_time() - c0
        out["policies"][pol] = {
            "batch_median_ms": float(np.median(times) * 1e3),
            "batch_p90_ms": float(np.percentile(times, 90) * 1e3),
            "batch_best_ms": float(times.min() * 1e3),
            "per_task_median_us": float(np.median(times) / tasks * 1e6),
            # CPU time of the calling thread: without the time the process waited for a core
            "batch_cpu_median_ms": float(np.median(cpu) * 1e3),
            "batch_cpu_p90_ms": float(np.percentile(cpu, 90) * 1e3),
        }
    out["load_avg_1min_after"] = os.getloadavg()[0]
    out["radio_aware_batch_under_1ms"] = out["policies"]["radio_aware"]["batch_median_ms"] < 1.0
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
    tdd: bool = True,
    seed: int | None = None,
) -> dict:
    """``bench offload``: every policy on the twin (and on replayed Cork 5G uplinks), ours with
    the TDD controller, the decision-time benchmark, the predictor's calibration on the Cork
    traces and the per-modality QoS comparison."""
    wl = load_workload(workload_path or default_workload_path())
    t0 = time.perf_counter()
    res = run_workload(
        wl, scenario, duration_s, seed=seed, cork_data=cork_data, replay=replay, progress=progress, tdd=tdd
    )
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
    if "tdd" in res:
        out["tdd"] = res["tdd"]
    out["decision_time"] = decision_time_bench(wl)
    out["qos_modalities"] = qos_comparison(res, wl)
    out["wall_s"] = time.perf_counter() - t0
    return out
