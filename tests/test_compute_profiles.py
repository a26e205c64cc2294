"""Compute layer: model profiles, nodes, workloads (no shared data needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mobileai.compute.architectures import ARCHITECTURES
from mobileai.compute.nodes import ComputeLayer, DeviceFleet, EdgeConfig
from mobileai.compute.profiles import available_models, load_profile, profile_model
from mobileai.compute.workloads import Arrival, ArrivalProcess, parse_workload
from mobileai.errors import UserError


def test_packaged_profiles_cover_every_architecture() -> None:
    assert available_models() == sorted(ARCHITECTURES)
    r18 = load_profile("resnet18")
    # ResNet-18 at 224x224: 1.82 GMAC (He et al. 2016), 11.7 M parameters
    assert 3.5e9 < r18.total_flops < 3.8e9
    assert 11.6e6 < r18.params.sum() < 11.8e6
    up = r18.split_upload_bytes()
    assert up[0] == 3 * 224 * 224 and up[-1] == 0
    assert len(up) == r18.n_blocks + 1


def test_profile_model_counts_blocks_of_a_chain() -> None:
    torch.manual_seed(0)
    prof = profile_model("mobilenet_v2", repeats=1, warmup=0)
    assert prof["layers"][-1]["out_elems"] == 1000
    assert all(r["cpu_ms"] > 0 for r in prof["layers"])
    # MobileNetV2 1.0 / 224: ~300 MMAC (Sandler et al. 2018)
    assert 0.55e9 < sum(r["flops"] for r in prof["layers"]) < 0.65e9


def test_compute_layer_queues_drain_and_fail() -> None:
    cfg = EdgeConfig(edges=3, failures_per_hour=0.0, background_util=0.0, background_swing=0.0)
    ang = np.linspace(0, 2 * np.pi, 19, endpoint=False)
    layer = ComputeLayer.over_sites(cfg, np.cos(ang), np.sin(ang), seed=0)
    assert set(layer.site_edge.tolist()) == {0, 1, 2}
    layer.backlog_s[0] = 0.3
    layer.step(0.0, 0.1)  # 2 servers x 0.1 s drained
    assert layer.backlog_s[0] == pytest.approx(0.1)
    ow = layer.one_way_s(np.array([0]))
    assert ow[0, layer.site_edge[0]] == pytest.approx(1e-3) and ow[0, -1] == pytest.approx(15e-3)
    always = ComputeLayer.over_sites(
        cfg.model_copy(update={"failures_per_hour": 100.0}), np.cos(ang), np.sin(ang), 1
    )
    failed_any = any(always.step(k * 0.1, 0.1)[:3].any() for k in range(2000))
    assert failed_any


def test_device_throttles_when_hot() -> None:
    fleet = DeviceFleet.create(np.array([0]), ("glasses",), np.random.default_rng(0))
    assert fleet.speed()[0] == 1.0
    for _ in range(3000):  # 300 s fully busy at 1 W: 25 + 18 degC/W -> throttles above 40 degC
        fleet.spend(np.array([0.1]), np.array([0.0]), 0.1)
    assert fleet.speed()[0] == 0.5
    assert fleet.soc[0] < 1.0


def test_workload_errors_name_field_and_allowed_values() -> None:
    base = {
        "classes": [
            {"name": "a", "model": "resnet18", "device": "glasses", "deadline_ms": 50,
             "arrival": {"kind": "periodic", "rate_hz": 10}}
        ]
    }  # fmt: skip
    wl = parse_workload(base)
    assert wl.classes[0].upload_allowed().all()
    bad = {"classes": [{**base["classes"][0], "model": "alexnet"}]}
    with pytest.raises(UserError, match=r"classes\.0\.model.*unknown model 'alexnet'.*resnet18"):
        parse_workload(bad)
    with pytest.raises(UserError, match=r"device.*allowed"):
        parse_workload({"classes": [{**base["classes"][0], "device": "toaster"}]})
    with pytest.raises(UserError, match=r"min_accuracy"):
        parse_workload({"classes": [{**base["classes"][0], "min_accuracy": 0.9}]})
    fo = parse_workload({"classes": [{**base["classes"][0], "privacy": "features_only", "min_split": 2}]})
    allowed = fo.classes[0].upload_allowed()
    assert not allowed[:2].any() and allowed[2:].all()


def test_periodic_arrivals_have_the_configured_rate() -> None:
    proc = ArrivalProcess(Arrival(kind="periodic", rate_hz=10), 50, np.random.default_rng(0))
    n = sum(len(proc.step(k * 0.1, 0.1)[0]) for k in range(100))
    assert n == pytest.approx(50 * 10 * 10, rel=0.02)
    pois = ArrivalProcess(
        Arrival(kind="poisson", rate_hz=5, duty=0.5, mean_on_s=2), 200, np.random.default_rng(1)
    )
    m = sum(len(pois.step(k * 0.1, 0.1)[0]) for k in range(200))
    assert m == pytest.approx(200 * 5 * 20 * 0.5, rel=0.15)
