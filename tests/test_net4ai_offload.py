"""Network for AI: uplink predictor, placement decisions, privacy, QoS, QoAIS (synthetic data)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobileai.compute.nodes import ComputeLayer
from mobileai.compute.profiles import reference_cpu_flops_per_s
from mobileai.compute.workloads import parse_workload
from mobileai.net4ai import offload
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


@pytest.mark.parametrize("policy", POLICIES)
def test_decision_columns_match_the_option_table(policy: str) -> None:
    wl = parse_workload(WORKLOAD)
    rng = np.random.default_rng(5)
    opt, x = _inputs(wl, 300, rng, rng.uniform(1e5, 1e8, 300))
    d = decide(policy, opt, x)
    assert opt.valid[x.cls, d.option].all()
    est_dev = x.wait_dev_s + opt.dev_cpu_s[x.cls, 0] * x.ref_flops / x.dev_flops
    on_dev = opt.node[x.cls, d.option] < 0
    assert np.allclose(d.est_latency_s[on_dev], est_dev[on_dev])
    if policy == "device":
        assert on_dev.all()
    if policy in ("edge", "cloud"):  # the earliest allowed upload wherever something may leave
        may_leave = np.array([(opt.node[c] >= 0).any() for c in x.cls])
        assert (~on_dev == may_leave).all()


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


def test_outage_probability_depends_on_the_outage_state() -> None:
    # Gilbert-Elliott: UE 0 always in service, UE 1 in a long outage, UE 2 leaves one
    p = UplinkPredictor(3, 0.1)
    for _ in range(30):
        p.update(np.array([1e7, 0.0, 0.0]))
    pr = p.predict()
    assert pr.p_out[0] < 0.02 and pr.p_out[1] > 0.9
    assert pr.outage_left_s[1] > 1.0  # a 3 s outage is expected to go on for a while
    p.update(np.array([1e7, 0.0, 5e6]))
    pr = p.predict()
    assert pr.p_out[2] < 0.1  # back in service: the next interval is likely fine
    assert pr.mu[2] == pytest.approx(np.log(5e6))


def test_handover_restarts_the_rate_level_and_counts_handovers() -> None:
    p = UplinkPredictor(2, 0.1)
    for _ in range(50):
        p.update(np.array([2e5, 2e5]))
    ho = np.array([True, False])
    p.update(np.array([0.0, 0.0]), handover=ho)  # interruption at the handover
    p.update(np.array([3e7, 3e7]))  # the new cell is much better for UE 0; UE 1 just a spike
    pr = p.predict()
    assert pr.mu[0] == pytest.approx(np.log(3e7))  # restarted at the new cell's level
    assert pr.mu[1] < np.log(1e6)  # Huber-clipped: one sample does not move it far
    assert pr.ho_rate_hz[0] > 0 and pr.ho_rate_hz[1] == 0


def test_a_handover_interruption_does_not_leave_the_channel_in_outage() -> None:
    """The outage in the interval of a handover is its interruption, over within the interval:
    the next interval's outage probability stays near the good state's, while the same outage
    without a handover (a coverage hole) keeps the rule-of-succession floor of 1/2."""
    p = UplinkPredictor(2, 0.1)
    for _ in range(50):
        p.update(np.array([2e7, 2e7]))
    p.update(np.array([0.0, 0.0]), handover=np.array([True, False]))
    pr = p.predict()
    assert pr.p_out[0] < 0.1
    assert pr.p_out[1] >= 0.5
    # it still counts as a good -> bad transition: it does hit transfers
    q = UplinkPredictor(1, 0.1)
    for _ in range(50):
        q.update(np.array([2e7]))
    assert p.predict().p_out[0] > q.predict().p_out[0]


def test_radio_aware_keeps_tasks_off_an_uplink_in_outage() -> None:
    wl = parse_workload({**WORKLOAD, "classes": [WORKLOAD["classes"][1]]})
    rng = np.random.default_rng(0)
    opt, x = _inputs(wl, 2, rng, np.array([5e7, 5e7]))
    x.dev_flops = np.full(2, 1e12)  # the device makes the deadline too
    x.p_out = np.array([0.0, 0.95])
    x.outage_left_s = np.array([0.1, 2.0])
    d = decide("radio_aware", opt, x)
    node = opt.node[x.cls, d.option]
    assert node[1] < 0  # in an outage: on the device
    assert d.p_meet[1] == 1.0
    # a device that cannot make it either: still the device (least expected latency), not a gamble
    x.dev_flops = np.full(2, 3e10)
    d = decide("radio_aware", opt, x)
    assert opt.node[x.cls, d.option][1] < 0 and d.est_latency_s[1] < 1.0


@settings(max_examples=60, deadline=None)
@given(
    soc=st.floats(0.0, 1.0),
    energy_weight=st.floats(0.0, 1e3),
    dev_power_w=st.floats(0.1, 50.0),
    tx_power_w=st.floats(0.1, 10.0),
    rate_bps=st.floats(8e6, 2e8),
    sigma=st.floats(0.05, 0.3),
    wait_dev_s=st.floats(0.0, 0.05),
)
def test_a_hopeless_device_loses_to_an_edge_option_that_can_make_it(
    soc: float,
    energy_weight: float,
    dev_power_w: float,
    tx_power_w: float,
    rate_bps: float,
    sigma: float,
    wait_dev_s: float,
) -> None:
    """A dashcam frame on an embedded CPU (~102 ms for a 100 ms deadline) and an uplink that
    carries its 60 kB in time: ours offloads it whatever the battery and the energy weight (the
    device option has P(on time) = 0, the edge a real chance), even when sending costs more
    energy than computing (10 W transmit against a 0.1 W device)."""
    wl = parse_workload({**WORKLOAD, "classes": [WORKLOAD["classes"][1]]})
    opt, x = _inputs(wl, 1, np.random.default_rng(0), np.array([rate_bps]))
    x.dev_flops = np.array([40e9])  # the robot class's embedded CPU
    x.wait_dev_s = np.array([wait_dev_s])
    x.soc, x.dev_power_w, x.tx_power_w = np.array([soc]), np.array([dev_power_w]), np.array([tx_power_w])
    x.sigma = np.array([sigma])
    dev_s = x.wait_dev_s + opt.dev_cpu_s[0, 0] * x.ref_flops / x.dev_flops
    assert dev_s[0] > x.deadline_s[0]  # the device cannot make it
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(offload, "ENERGY_WEIGHT", energy_weight)
        d = decide("radio_aware", opt, x)
    assert opt.node[0, d.option[0]] >= 0
    assert d.p_meet[0] > 0.5 and d.est_latency_s[0] < x.deadline_s[0]


def test_equal_on_time_chances_take_the_shorter_tail_and_a_higher_chance_wins() -> None:
    """Glasses whose SoC makes a 200 ms deadline (~49 ms) and a 400 Mbit/s uplink (the split's
    401 kB in ~8 ms): with a narrow rate law both are certain and the split wins on the shorter
    tail; with a wide one (sigma 1.2: P(on time) 0.97, a *mean* latency below the device's) the
    certain device wins: the order is lexicographic in the on-time probability."""
    wl = parse_workload({**WORKLOAD, "classes": [{**WORKLOAD["classes"][0], "deadline_ms": 200}]})
    opt, x = _inputs(wl, 2, np.random.default_rng(0), np.array([4e8, 4e8]))
    x.sigma = np.array([0.05, 1.2])
    x.soc = np.ones(2)
    dev_s = opt.dev_cpu_s[0, 0] * x.ref_flops / x.dev_flops[0]
    assert dev_s < 0.2
    d = decide("radio_aware", opt, x)
    node = opt.node[0, d.option]
    assert node[0] >= 0 and d.est_latency_s[0] < dev_s
    assert node[1] < 0
    # the wide law's remote option: near-certain and shorter on average, yet it lost on P
    # room for the blocks before the split only, not the whole model: remote only
    assert opt.dev_model_bytes[0, 1] < opt.dev_model_bytes[0, 0]
    x.dev_memory_bytes = np.full(2, opt.dev_model_bytes[0, 1])
    r = decide("radio_aware", opt, x)
    assert (opt.node[0, r.option] >= 0).all()
    assert 0.9 < r.p_meet[1] < 1.0 and r.est_latency_s[1] < dev_s


def test_averaging_over_a_long_transfer_narrows_the_rate_law() -> None:
    # a transfer over many intervals sees their mean rate (Fenton-Wilkinson): a wide per-interval
    # spread then costs less probability than for a one-interval transfer
    wl = parse_workload({**WORKLOAD, "classes": [WORKLOAD["classes"][1]]})
    rng = np.random.default_rng(0)
    opt, x = _inputs(wl, 1, rng, np.array([1.2e7]))
    x.deadline_s = np.array([1.0])
    x.dev_flops = np.array([1e9])
    x.sigma = np.array([1.5])
    one = decide("radio_aware", opt, x).p_meet[0]
    x.rate_interval_s = 0.005  # 60 kB at 12 Mbit/s = 40 ms = 8 intervals
    many = decide("radio_aware", opt, x).p_meet[0]
    assert many > one


def test_replay_keeps_trace_shape_at_twin_level() -> None:
    cap = np.array([1e6, 2e6, 0.0, 4e6] * 5)
    tr = Trace("a", "driving", cap, cap / 30, np.array([False, True] * 10))
    out = replay_uplinks([tr], 2, 40, 0.1, np.array([1e7, 2e7]), np.random.default_rng(0))
    assert out.shape == (40, 2)
    # normalised by the trace median (2 Mbit/s), scaled to each UE's level: at most 2x the level
    assert out[:, 0].max() == pytest.approx(2e7) and out[:, 1].max() == pytest.approx(4e7)
    assert (out == 0).any()  # measured outages survive


def toy_record(steps: int, n: int, rate: float) -> RadioRecord:
    """A radio record with constant uplink ``rate`` for ``n`` UEs (also used by the mobility tests)."""
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
    out = simulate(wl, members, toy_record(120, n, 5e7), policy, seed=0)
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
    fast = simulate(wl, members, toy_record(100, 2, 1e8), "edge", seed=0).columns
    slow = simulate(wl, members, toy_record(100, 2, 2e6), "edge", seed=0).columns
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


class _FakeTdd:
    """The twin's action API (apply / revert of typed actions), nothing else."""

    def __init__(self, n_cells: int) -> None:
        self.n_cells, self.dt = n_cells, 0.1
        self.dl = np.full(n_cells, 0.74)

    def apply(self, actions):  # mirrors Twin.apply: a result per action, with what it replaced
        from mobileai.twin.actions import ActionResult

        out = []
        for a in actions:
            prev = float(self.dl[a.cell])
            self.dl[a.cell] = a.dl_fraction
            out.append(ActionResult(action=a, applied=True, t_s=0.0, previous=prev))
        return out

    def revert(self, result):
        self.dl[result.action.cell] = result.previous


def test_tdd_controller_moves_uplink_heavy_ai_cells_and_back() -> None:
    from mobileai.net4ai.tdd import UL_HEAVY_DL_FRACTION, TddController

    tw = _FakeTdd(3)
    steps, ues = 60, 4
    offered = np.zeros((steps, ues))
    offered[:30, :2] = 4e6 * 0.1  # UEs 0, 1 (cell 0) send 4 Mbit/s each for 3 s, then stop
    offered[:, 2] = 1e5 * 0.1  # UE 2 (cell 1): 100 kbit/s, never heavy
    ctl = TddController(tw, np.arange(ues), offered, period_s=1.0, min_dwell_s=1.0)
    links = {
        "serving": np.array([0, 0, 1, 2]),
        "peak_ul_bps": np.full(ues, 2e7),
        "cell_dl_util": np.full(ues, 0.3),
    }
    for k in range(steps):
        ctl(k, links)
        if k == 15:  # 8 Mbit/s of 20 Mbit/s: 40 % of cell 0's uplink air time
            assert tw.dl[0] == pytest.approx(UL_HEAVY_DL_FRACTION) and tw.dl[1] == 0.74
            assert ctl.in_heavy[k, :2].all() and not ctl.in_heavy[k, 2:].any()
    assert tw.dl[0] == 0.74  # demand gone: reverted to what it replaced
    assert ctl.actions == 2 and ctl.state[15, 0] and not ctl.state[-1].any()
    # a cell whose downlink would not fit into the shorter DL share is left alone
    tw2 = _FakeTdd(3)
    busy = TddController(tw2, np.arange(ues), offered, period_s=1.0, min_dwell_s=1.0)
    for k in range(20):
        busy(k, {**links, "cell_dl_util": np.full(ues, 0.7)})  # 0.7 x 0.743 / 0.543 = 0.96
    assert busy.actions == 0 and (tw2.dl == 0.74).all()
    # a pattern is kept for the minimum dwell time even when the demand stops at once
    tw3 = _FakeTdd(3)
    long = np.concatenate([offered, np.zeros((20, ues))])
    slow = TddController(tw3, np.arange(ues), long, period_s=1.0, min_dwell_s=5.0)
    for k in range(80):
        slow(k, links)
    assert slow.state[9:59, 0].all() and not slow.state[59:, 0].any()  # on at 0.9 s, off at 5.9 s


@pytest.mark.parametrize("policy", ["neurosurgeon", "radio_aware", "edge"])
def test_a_raw_upload_does_not_wait_for_a_busy_device(policy: str) -> None:
    wl = parse_workload({**WORKLOAD, "classes": [WORKLOAD["classes"][1]]})
    rng = np.random.default_rng(2)
    opt, x = _inputs(wl, 1, rng, np.array([1e8]))
    x.wait_dev_s = np.array([5.0])  # the robot's CPU is 5 s behind
    d = decide(policy, opt, x)
    assert opt.split[x.cls, d.option][0] == 0 and opt.node[x.cls, d.option][0] >= 0
    assert d.est_latency_s[0] < 0.1  # the frame goes out now, not after the device's queue


def test_on_time_calibration_is_the_identity_without_outcomes_and_monotone_with_them() -> None:
    cal = offload.OnTimeCalibration(2)
    p = np.concatenate(([0.0, 1.0], np.random.default_rng(0).uniform(0, 1, 500), [1e-9, 1 - 1e-9]))
    cls = np.arange(len(p)) % 2
    np.testing.assert_allclose(cal.apply(p, cls), p, atol=1e-8)
    assert cal.apply(np.array([0.0, 1.0, -1.0]), np.zeros(3, np.int64)).tolist() == [0.0, 1.0, -1.0]
    # outcomes: pessimistic below 0.5 (0.3 predicted, 0.6 met), over-confident near 1, a
    # non-monotone bin in between (the isotonic fit pools it)
    rng = np.random.default_rng(1)
    pr = np.concatenate(
        (rng.uniform(0.2, 0.35, 4000), rng.uniform(0.5, 0.65, 300), rng.uniform(0.95, 0.98, 4000))
    )
    met = rng.uniform(0, 1, len(pr)) < np.concatenate(
        (np.full(4000, 0.6), np.full(300, 0.4), np.full(4000, 0.9))
    )
    cal.observe(np.zeros(len(pr), np.int64), pr, met)
    cal.refit()
    grid = np.concatenate(([0.0], np.linspace(1e-6, 1 - 1e-6, 2001), [1.0]))
    q = cal.apply(grid, np.zeros(len(grid), np.int64))
    assert (np.diff(q) >= 0).all() and (q >= 0).all() and (q <= 1).all()
    assert cal.apply(np.array([0.3]), np.zeros(1, np.int64))[0] == pytest.approx(0.6, abs=0.03)
    assert cal.apply(np.array([0.965]), np.zeros(1, np.int64))[0] == pytest.approx(0.9, abs=0.02)
    # the other class saw nothing: still the identity
    np.testing.assert_allclose(cal.apply(grid[1:-1], np.ones(len(grid) - 2, np.int64)), grid[1:-1], atol=1e-8)
    # the raw floor inverts the map: calibrated P >= y exactly from raw P >= raw_floor(y)
    y = np.array([0.1, 0.5, 0.6, 0.8, 0.9])
    fl = cal.raw_floor(y, np.zeros(len(y), np.int64))
    for yi, fi in zip(y, fl, strict=True):
        assert (q[grid >= fi + 1e-6] >= yi - 1e-9).all() and (q[grid < fi - 1e-6] < yi + 1e-9).all()


@pytest.mark.parametrize("p_tie", [0.0, 0.05])
def test_an_empty_calibration_decides_as_none(p_tie: float, monkeypatch) -> None:
    monkeypatch.setattr(offload, "P_TIE", p_tie)
    wl = parse_workload(WORKLOAD)
    rng = np.random.default_rng(5)
    opt, x = _inputs(wl, 400, rng, np.exp(rng.uniform(10, 19, 400)))
    x.sigma = rng.uniform(0.05, 2.0, 400)
    x.p_out = rng.uniform(0, 0.3, 400)
    x.rate_interval_s = 0.1
    a = decide("radio_aware", opt, x)
    x.calibration = offload.OnTimeCalibration(len(wl.classes))
    b = decide("radio_aware", opt, x)
    np.testing.assert_array_equal(a.option, b.option)
    np.testing.assert_allclose(a.p_meet, b.p_meet, atol=1e-8)
    np.testing.assert_allclose(b.p_raw, a.p_meet)


def test_recalibration_uses_no_outcome_from_the_future(monkeypatch) -> None:
    from mobileai.net4ai import simulator

    wl = parse_workload(WORKLOAD)
    n = 9
    members = Members(np.arange(n), np.arange(n) % 3, ("glasses", "phone", "robot"),
                      np.array([0, 2, 1] * 3))  # fmt: skip
    rec = toy_record(150, n, 5e7)
    rec.ul_bps[60:80] = 2e5  # a slow spell: late and lost tasks too
    seen: list[tuple[float, np.ndarray]] = []
    take = simulator.OutcomeFeedback.take

    def spy(self, now, cols):
        out = take(self, now, cols)
        seen.append((now, out[3]))
        return out

    monkeypatch.setattr(simulator.OutcomeFeedback, "take", spy)
    out = simulate(wl, members, rec, "radio_aware", seed=0, recalibrate=True)
    c = out.columns
    due = c["t_arrival"] + c["deadline_s"]
    known_at = np.minimum(c["done"], due)  # the result back, or the deadline passed without it
    used = np.concatenate([ids for _, ids in seen])
    assert len(used) > 100 and len(np.unique(used)) == len(used)
    for now, ids in seen:
        assert (known_at[ids] <= now + 1e-12).all()
    # every remote task decided before the last deadline was handed over exactly once
    remote = np.flatnonzero((c["option"] > 0) & (due <= 150 * 0.1 - 0.1))
    assert np.isin(remote, used).all()
    # off: no feedback at all, and the model's P is what is recorded
    seen.clear()
    off = simulate(wl, members, rec, "radio_aware", seed=0, recalibrate=False).columns
    assert not seen and np.array_equal(off["p_meet"], off["p_raw"], equal_nan=True)


@pytest.mark.parametrize("policy", ["edge", "neurosurgeon", "radio_aware"])
def test_the_uplink_wait_a_policy_is_told_reads_no_radio_after_arrival(policy: str, monkeypatch) -> None:
    from mobileai.net4ai import simulator

    wl = parse_workload(WORKLOAD)
    n, cut = 9, 45
    members = Members(np.arange(n), np.arange(n) % 3, ("glasses", "phone", "robot"),
                      np.array([0, 2, 1] * 3))  # fmt: skip
    # three records identical up to step ``cut`` (a slow spell from step 36: uploads in flight
    # at every arrival of steps 36..45): one ends there, one stays slow then stalls, one recovers
    short, slow, back = toy_record(cut + 1, n, 5e7), toy_record(90, n, 5e7), toy_record(90, n, 5e7)
    for rec in (short, slow, back):
        rec.ul_bps[36:60] = 2e5
    slow.ul_bps[52:] = 0.0
    back.ul_bps[60:] = 2.5e6
    seen: list[list[np.ndarray]] = []
    real = simulator.decide

    def spy(pol, opt, x):
        seen[-1].append(x.wait_ul_s.copy())
        return real(pol, opt, x)

    monkeypatch.setattr(simulator, "decide", spy)
    for rec in (short, slow, back):
        seen.append([])
        simulate(wl, members, rec, policy, seed=0)
    m = len(seen[0])  # the decisions of steps up to ``cut`` (one per step: periodic arrivals)
    waits = [np.concatenate(s[:m]) for s in seen]
    assert np.isfinite(waits[0]).all() and (waits[0] > 0.01).sum() > 5
    # the tasks arriving up to step ``cut`` were told the same wait whatever came after
    np.testing.assert_array_equal(waits[1], waits[0])
    np.testing.assert_array_equal(waits[2], waits[0])
