"""Network for AI on the move: speed-class members, driving-trace replay, dips in the uplink
predictor, MEC failures after dispatch, re-dispatch and partial fallback (synthetic data)."""

from __future__ import annotations

import numpy as np
import pytest

from mobileai.compute.nodes import ComputeLayer, DeviceFleet
from mobileai.compute.profiles import load_profile, reference_cpu_flops_per_s
from mobileai.compute.workloads import load_workload, parse_workload
from mobileai.net4ai.offload import build_options, device_params
from mobileai.net4ai.simulator import (
    Members,
    RadioRecord,
    _continuity_check,
    _Flight,
    _Uplinks,
    assign_members,
    simulate,
)
from mobileai.net4ai.uplink import Trace, UplinkPredictor, replay_uplinks
from test_net4ai_offload import toy_record

DASHCAM = {
    "name": "dashcam", "model": "yolov3_tiny", "device": "robot", "deadline_ms": 100,
    "input_bytes": 60000, "arrival": {"kind": "periodic", "rate_hz": 10},
}  # fmt: skip


def test_speed_filter_takes_only_ues_of_the_speed_class() -> None:
    wl = parse_workload(
        {"classes": [{**DASHCAM, "ue_services": ["embb_web", "voip"], "ue_min_speed_kmh": 30}]}
    )
    service = np.array([1, 1, 1, 3, 3, 0])  # embb_web, voip, embb_video (index 0)
    speed = np.array([0.0, 30.0, 120.0, 3.0, 29.99999, 120.0])  # float32 speeds of the twin
    names = ("embb_video", "embb_web", "full_buffer", "voip")
    ids, m = assign_members(wl, service, names, speed)
    assert sorted(ids.tolist()) == [1, 2, 4]  # moving, of the named services; not UE 5 (embb_video)
    assert (m.speed_kmh >= 29.99).all()
    ids0, _ = assign_members(
        parse_workload({"classes": [{**DASHCAM, "ue_services": ["voip"]}]}), service, names
    )
    assert sorted(ids0.tolist()) == [3, 4]  # no filter, no speeds: every UE of the service


def test_the_moving_workload_example_asks_for_moving_ues() -> None:
    from mobileai.net4ai.bench import default_workload_path

    wl = load_workload(default_workload_path().with_name("moving-perception.yaml"))
    assert all(tc.ue_min_speed_kmh >= 30 for tc in wl.classes)
    assert {tc.device for tc in wl.classes} == {"robot", "glasses"}


def test_moving_ues_replay_driving_traces() -> None:
    still = Trace("s", "static", np.full(50, 1e6), np.zeros(50), np.zeros(50, bool))
    drive = Trace("d", "driving", np.array([1e6, 4e6] * 25), np.zeros(50), np.zeros(50, bool))
    out = replay_uplinks(
        [still, drive], 2, 100, 0.1, np.array([1e7, 1e7]), np.random.default_rng(0),
        moving=np.array([False, True]),
    )  # fmt: skip
    assert np.ptp(out[:, 0]) == 0.0  # the static UE got the flat static trace
    assert np.ptp(out[:, 1]) > 0.0  # the moving one the fluctuating driving trace


def test_a_dip_is_a_bad_state_not_a_wider_lognormal() -> None:
    # 20 Mbit/s with a 0.2-nat spread, and single-step dips to 100 kbit/s (23 dB down) 5 % of the
    # time: the dips go to the Gilbert-Elliott bad state; the good-state law stays narrow
    rng = np.random.default_rng(1)
    p = UplinkPredictor(1, 0.1)
    for _ in range(600):
        dip = rng.random() < 0.05
        p.update(np.array([1e5 if dip else 2e7 * np.exp(rng.normal(0, 0.2))]))
    p.update(np.array([2e7]))
    pr = p.predict()
    assert pr.mu[0] == pytest.approx(np.log(2e7), abs=0.3)
    assert pr.sigma[0] < 0.5
    assert 0.01 < pr.p_out[0] < 0.15  # about the dip frequency
    p.update(np.array([1e5]))  # in a dip now: the next step is more likely a dip too
    assert p.predict().p_out[0] > pr.p_out[0]
    assert p.predict().mu[0] == pytest.approx(np.log(2e7), abs=0.3)  # the level is kept
    # a drop that lasts longer than DIP_RELEVEL_S (1 s) is a new level, not a dip
    for _ in range(15):
        p.update(np.array([1e5]))
    assert p.predict().mu[0] == pytest.approx(np.log(1e5), abs=0.1)
    # and two samples in a row back at 20 Mbit/s restart the level there (no crawl up)
    p.update(np.array([2e7]))
    p.update(np.array([2e7]))
    assert p.predict().mu[0] == pytest.approx(np.log(2e7), abs=0.1)


def _outage_steps(wl, radio: RadioRecord, seed: int) -> np.ndarray:
    """[T, nodes] the nodes' outages, replayed from the compute layer's own seed (its failure and
    load draws do not depend on the tasks)."""
    c = ComputeLayer.over_sites(wl.edge, radio.site_x, radio.site_y, seed + 1)
    down = np.zeros((radio.steps, c.n_nodes), bool)
    for k in range(radio.steps):
        c.step(k * radio.dt, radio.dt)
        down[k] = ~c.up
    return down


@pytest.mark.parametrize("policy", ["edge", "neurosurgeon", "radio_aware"])
def test_a_mec_failing_after_dispatch_loses_the_task_unless_it_is_redispatched(policy: str) -> None:
    # one MEC that fails often; the dashcam CPU cannot make 100 ms, so everything is offloaded
    wl = parse_workload(
        {
            "seed": 1,
            "classes": [DASHCAM],
            "edge": {"edges": 1, "failures_per_hour": 100, "failure_duration_s": 2},
        }
    )
    n = 30
    radio = toy_record(900, n, 1e7)
    members = Members(np.arange(n), np.zeros(n, np.int64), ("robot",), np.zeros(n, np.int64))
    c = simulate(wl, members, radio, policy, seed=0).columns
    down = _outage_steps(wl, radio, 0)
    assert down[:, 0].any() and not down[:, 1].any()  # the MEC failed; the cloud never does
    rem = np.flatnonzero((c["node"] >= 0) & np.isfinite(c["done"]))
    k0 = c["k_from"][rem].astype(np.int64)
    k1 = np.minimum((c["done"][rem] / radio.dt).astype(np.int64), radio.steps - 1)
    cum = np.concatenate(([0], np.cumsum(down[:, 0])))
    j = c["node"][rem].astype(np.int64)
    hit = (j == 0) & (cum[k1 + 1] - cum[k0] > 0)
    # whatever the policy: a task that sat on the MEC while it was down never comes back; ours
    # moves every such task in time (re-dispatch or device)
    assert hit.any() != (policy == "radio_aware")
    assert c["lost"][rem[hit]].all()
    assert not c["delivered"][rem[hit]].any()
    if policy == "radio_aware":
        # ours re-sends what the failed MEC held to the cloud (or runs it on the device)
        # (at 10 Mbit/s the cloud, ~85 ms away, beats the dashcam's 102 ms CPU)
        assert c["migrated"].sum() > 0
        assert (c["node"][c["migrated"]] == 1).all()
        assert c["delivered"][c["migrated"]].all()
        base = simulate(wl, members, radio, "neurosurgeon", seed=0).columns
        assert c["lost"].sum() < base["lost"].sum()


def test_a_split_task_that_falls_back_runs_only_the_blocks_after_the_split() -> None:
    wl = parse_workload({"classes": [{**DASHCAM, "device": "glasses", "privacy": "features_only",
                                      "min_split": 1, "deadline_ms": 1000}]})  # fmt: skip
    n, k = 1, 30
    radio = toy_record(60, n, 2e7)
    radio.ul_bps[k - 1 :, 0] = 0.0  # the uplink is gone from step k - 1 on (an outage)
    compute = ComputeLayer.over_sites(wl.edge, radio.site_x, radio.site_y, 0)
    opt = build_options(list(wl.classes), compute.n_nodes)
    fleet = DeviceFleet.create(np.zeros(n, np.int64), ("glasses",), np.random.default_rng(0))
    fleet.temp_c[:] = 25.0
    dev = device_params(("glasses",), np.zeros(n, np.int64))
    ref = reference_cpu_flops_per_s()
    pred = UplinkPredictor(n, radio.dt)
    for j in range(k - 1):
        pred.update(radio.ul_bps[j])
    pred.update(radio.ul_bps[k - 1])
    prof = load_profile("yolov3_tiny")
    col = 1 + 3 * compute.n_nodes  # a later split (index 3 of the candidate splits), MEC 0
    s = int(opt.split[0, col])
    assert s > 1 and opt.node[0, col] == 0
    full, pre = prof.prefix_cpu_s()[-1], prof.prefix_cpu_s()[s]
    now = k * radio.dt
    live = {
        "id": np.array([0]), "ue": np.array([0]), "cls": np.array([0]), "due": np.array([now + 0.15]),
        "done": np.array([now + 5.0]), "tx_from": np.array([now - 0.05]), "tx_until": np.array([now + 5.0]),
        "bits": np.array([opt.up_bytes[0, col] * 8.0]), "rate_plan": np.array([2e7]), "site": np.array([0]),
        "node": np.array([0]), "option": np.array([col]), "dev_left": np.array([full - pre]),
    }  # fmt: skip
    cols = {key: [np.zeros(1)] for key in ("done", "dev_energy_j", "up_bytes", "lost", "node", "k_from")}
    cols.update({key: [np.zeros(1, bool)] for key in ("fell_back", "migrated")})
    links = (_Uplinks(radio.ul_bps, radio.dt), _Uplinks(radio.dl_bps, radio.dt))
    flight = _Flight(radio, *links, pred, UplinkPredictor(n, radio.dt), np.zeros(n), np.full(n, now + 5.0),
                     np.zeros(n, np.int64), fleet, dev, ref, compute, opt)  # fmt: skip
    _continuity_check(flight, live, cols, now, k, np.zeros(n), np.zeros(n))
    assert cols["fell_back"][0][0] and cols["node"][0][0] == -1
    # the glasses run blocks [s, n) only: they already hold the features of block s - 1
    assert cols["done"][0][0] == pytest.approx(now + (full - pre) * ref / 50e9)
    assert cols["done"][0][0] < now + full * ref / 50e9 - 1e-3
    # it was the UE's last upload: the uplink is free from now on
    assert flight.ul_free[0] <= now
    # the same fallback with a later upload (row 7) queued behind it: that upload keeps the air
    # time it was given, so the uplink stays busy until it is through
    live2 = {key: v.copy() for key, v in live.items()}
    live2["done"][:] = now + 5.0
    cols2 = {key: [np.zeros(1)] for key in ("done", "dev_energy_j", "up_bytes", "lost", "node", "k_from")}
    cols2.update({key: [np.zeros(1, bool)] for key in ("fell_back", "migrated")})
    flight.dev_free[:] = 0.0
    flight.ul_free[:] = now + 5.0
    flight.ul_last[:] = 7
    _continuity_check(flight, live2, cols2, now, k, np.zeros(n), np.zeros(n))
    assert cols2["fell_back"][0][0]
    assert flight.ul_free[0] == pytest.approx(now + 5.0)
