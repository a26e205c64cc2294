"""Network for AI: uplink predictor, placement decisions, privacy, QoS, QoAIS (synthetic data)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobileai.compute.nodes import ComputeLayer
from mobileai.compute.profiles import reference_cpu_flops_per_s
from mobileai.compute.workloads import parse_workload
from mobileai.net4ai.offload import POLICIES, DecisionInputs, build_options, decide
from mobileai.net4ai.qoais import privacy_violations
from mobileai.net4ai.qos import schedule_flows
from mobileai.net4ai.simulator import Members, RadioRecord, simulate
from mobileai.net4ai.uplink import Trace, UplinkPredictor, calibration_on_traces, replay_uplinks

WORKLOAD = {
    "seed": 3,
    "classes": [
        {"name": "glasses", "model": "resnet18", "device": "glasses", "deadline_ms": 60,
         "privacy": "features_only", "min_split": 1, "arrival": {"kind": "periodic", "rate_hz": 10},
         "max_uplink_ms": 15},
        {"name": "robot", "model": "yolov3_tiny", "device": "robot", "deadline_ms": 100,
         "input_bytes": 60000, "arrival": {"kind": "periodic", "rate_hz": 10}},
        {"name": "private", "model": "conformer_s", "device": "phone", "deadline_ms": 300,
         "privacy": "on_device", "arrival": {"kind": "poisson", "rate_hz": 2}},
    ],
    "edge": {"failures_per_hour": 0},
}  # fmt: skip


def _inputs(wl, n: int, rng: np.random.Generator, rate_bps: np.ndarray) -> tuple:
    ang = np.linspace(0, 2 * np.pi, 19, endpoint=False)
    compute = ComputeLayer.over_sites(wl.edge, np.cos(ang), np.sin(ang), 0)
    opt = build_options(list(wl.classes), compute.n_nodes)
    site = rng.integers(0, 19, n)
    x = DecisionInputs(
        cls=rng.integers(0, len(wl.classes), n), deadline_s=np.full(n, 0.1),
        wait_dev_s=np.zeros(n), dev_flops=np.full(n, 50e9), dev_memory_bytes=np.full(n, 4e9),
        dev_power_w=np.ones(n), tx_power_w=np.ones(n), soc=rng.uniform(0, 1, n), wait_ul_s=np.zeros(n),
        mu=np.log(np.maximum(rate_bps, 1.0)), sigma=np.full(n, 0.3), p_out=np.zeros(n), mean_bps=rate_bps,
        dl_bps=np.full(n, 1e8), one_way_s=compute.one_way_s(site), serving_edge=compute.site_edge[site],
        node_wait_s=compute.wait_s(), node_up=compute.up, node_flops=compute.flops_per_s,
        node_overhead_s=compute.block_overhead_s, transport_bps=compute.transport_gbps() * 1e9,
        ref_flops=reference_cpu_flops_per_s(),
    )  # fmt: skip
    return opt, x


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    log_rate=st.lists(st.floats(0.0, 10.0), min_size=1, max_size=40),
    policy=st.sampled_from(POLICIES),
)
def test_privacy_is_never_violated(seed: int, log_rate: list[float], policy: str) -> None:
    wl = parse_workload(WORKLOAD)
    rng = np.random.default_rng(seed)
    rates = 10 ** np.array(log_rate)  # 1 bit/s .. 10 Gbit/s
    opt, x = _inputs(wl, len(rates), rng, rates)
    dec = decide(policy, opt, x)
    split = opt.split[x.cls, dec.option]
    node = opt.node[x.cls, dec.option]
    for c, tc in enumerate(wl.classes):
        m = x.cls == c
        allowed = tc.upload_allowed()
        assert allowed[split[m][node[m] >= 0]].all(), (policy, tc.name)
        if tc.privacy == "on_device":
            assert (node[m] < 0).all()


def test_radio_aware_follows_the_rate_and_neurosurgeon_uses_one_number() -> None:
    wl = parse_workload({**WORKLOAD, "classes": [WORKLOAD["classes"][1]]})
    rng = np.random.default_rng(0)
    opt, x = _inputs(wl, 2, rng, np.array([1e8, 1e5]))
    d = decide("radio_aware", opt, x)
    node = opt.node[x.cls, d.option]
    assert node[0] >= 0  # 100 Mbit/s: 60 kB in ~5 ms, offload
    assert d.p_meet[0] > 0.9
    # the same mean rate with a wide spread: radio-aware sees the tail, neurosurgeon does not
    opt, x = _inputs(wl, 1, rng, np.array([6e6]))
    x.dev_flops = np.array([1e9])  # the device alone cannot make the deadline
    x.sigma = np.array([0.01])
    assert decide("radio_aware", opt, x).p_meet[0] > 0.99
    x.sigma = np.array([2.0])
    assert decide("radio_aware", opt, x).p_meet[0] < 0.9
    ns = decide("neurosurgeon", opt, x)
    assert np.isnan(ns.p_meet[0]) and np.isfinite(ns.est_latency_s[0])


def test_decision_is_vectorised_for_1000_tasks() -> None:
    wl = parse_workload(WORKLOAD)
    rng = np.random.default_rng(1)
    opt, x = _inputs(wl, 1000, rng, rng.uniform(1e6, 1e8, 1000))
    d = decide("radio_aware", opt, x)
    assert d.option.shape == (1000,) and (d.option >= 0).all()


def test_predictor_intervals_are_calibrated_on_lognormal_rates() -> None:
    rng = np.random.default_rng(0)
    n, t = 50, 600
    level = rng.uniform(15, 18, n)
    x = np.exp(level[None, :] + rng.normal(0, 0.5, (t, n)))
    traces = [Trace(f"t{i}", "static", x[:, i], x[:, i] / 30, np.zeros(t, bool)) for i in range(n)]
    cal = calibration_on_traces(traces, "dl_bps")["by_mobility"]["all"]
    assert cal["coverage_80"] == pytest.approx(0.8, abs=0.04)
    p = UplinkPredictor(2, 0.1)
    p.update(np.array([1e7, 0.0]))
    p.update(np.array([1e7, 0.0]))
    pr = p.predict()
    assert pr.p_out[1] == 1.0 and pr.p_out[0] == 0.0


def test_replay_keeps_trace_shape_at_twin_level() -> None:
    cap = np.array([1e6, 2e6, 0.0, 4e6] * 5)
    tr = Trace("a", "driving", cap, cap / 30, np.array([False, True] * 10))
    out = replay_uplinks([tr], 2, 40, 0.1, np.array([1e7, 2e7]), np.random.default_rng(0))
    assert out.shape == (40, 2)
    # normalised by the trace median (2 Mbit/s), scaled to each UE's level: at most 2x the level
    assert out[:, 0].max() == pytest.approx(2e7) and out[:, 1].max() == pytest.approx(4e7)
    assert (out == 0).any()  # measured outages survive


def _toy_record(steps: int, n: int, rate: float) -> RadioRecord:
    return RadioRecord(
        dt=0.1, ul_bps=np.full((steps, n), rate), dl_bps=np.full((steps, n), 1e8),
        site=np.zeros((steps, n), np.int64), site_x=np.cos(np.linspace(0, 6, 19)),
        site_y=np.sin(np.linspace(0, 6, 19)), ue_ids=np.arange(n),
    )  # fmt: skip


@pytest.mark.parametrize("policy", POLICIES)
def test_simulation_outcomes_are_consistent(policy: str) -> None:
    wl = parse_workload(WORKLOAD)
    n = 9
    members = Members(np.arange(n), np.arange(n) % 3, ("glasses", "phone", "robot"),
                      np.array([0, 2, 1] * 3))  # fmt: skip
    out = simulate(wl, members, _toy_record(120, n, 5e7), policy, seed=0)
    c = out.columns
    assert len(c["cls"]) > 100
    assert privacy_violations(c, wl) == 0
    assert (c["e2e_s"][c["delivered"]] > 0).all()
    if policy == "device":
        assert (c["up_bytes"] == 0).all()
    assert (c["met"] <= c["delivered"]).all()


def test_uplink_rate_bounds_latency_of_full_offload() -> None:
    wl = parse_workload({**WORKLOAD, "classes": [WORKLOAD["classes"][1]]})
    members = Members(np.arange(2), np.zeros(2, np.int64), ("robot",), np.zeros(2, np.int64))
    fast = simulate(wl, members, _toy_record(100, 2, 1e8), "edge", seed=0).columns
    slow = simulate(wl, members, _toy_record(100, 2, 2e6), "edge", seed=0).columns
    # 60 kB at 2 Mbit/s needs 240 ms: every task misses; at 100 Mbit/s most meet 100 ms
    assert slow["met"].mean() == 0.0
    assert fast["met"].mean() > 0.9
    assert np.median(slow["ul_s"]) >= 0.24


def test_priority_scheduler_protects_control_against_tensor_bursts() -> None:
    t, u = 50, 4
    offered = np.zeros((t, u, 5))
    offered[:, :, 0] = 128e3 * 0.1  # control
    offered[:, :, 3] = 3e6  # tensor burst each step, above capacity
    cap = np.full((t, u), 2e6)
    pri = schedule_flows(offered, cap, 0.1, policy="priority").as_dict()
    fifo = schedule_flows(offered, cap, 0.1, policy="fifo").as_dict()
    assert pri["control"]["within_pdb"] == 1.0 and pri["control"]["loss_rate"] == 0.0
    assert fifo["control"]["within_pdb"] < 0.5
