"""Scheduler: water-filling PF / RR / max-rate shares over groups, checked against a per-group
reference and by the invariants a MAC scheduler must keep."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mobileai.twin import scheduler
from mobileai.twin.scheduler import MIN_AVG_BPS, pf_share, update_average

DT = 0.1


def _t(values, dtype=torch.float32) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype)


def share(backend: str, *args, policy: str = "pf") -> tuple[torch.Tensor, torch.Tensor]:
    """pf_share on CPU (NumPy back end), or its torch back end (the CUDA path) run on CPU."""
    if backend == "numpy":
        return pf_share(*args, policy=policy)
    return scheduler._water_fill(scheduler._TORCH, *args, policy)


def reference(group, rate, demand, avg, cap, dt, policy="pf") -> tuple[np.ndarray, np.ndarray]:
    """Per-group water-filling with a Python loop and bisection on the level (float64)."""
    group, rate, demand, avg, cap = (np.asarray(a, dtype=np.float64) for a in (group, rate, demand, avg, cap))
    served = np.zeros_like(rate)
    used = np.zeros_like(cap)
    for gi in range(len(cap)):
        idx = np.flatnonzero((group == gi) & (rate > 0) & (demand > 0))
        c = min(max(cap[gi], 0.0), 1.0)
        if idx.size == 0 or c == 0:
            continue
        need = np.minimum(demand[idx] / (rate[idx] * dt), c)
        if policy == "maxrate":
            x = np.zeros_like(need)
            left = c
            for j in np.argsort(-rate[idx], kind="stable"):
                x[j] = min(need[j], left)
                left -= x[j]
        else:
            w = rate[idx] / np.maximum(avg[idx], MIN_AVG_BPS) if policy == "pf" else np.ones_like(need)
            if need.sum() <= c:
                x = need
            else:
                lo, hi = 0.0, float((need / w).max())
                for _ in range(200):
                    mid = 0.5 * (lo + hi)
                    lo, hi = (mid, hi) if np.minimum(need, mid * w).sum() < c else (lo, mid)
                x = np.minimum(need, hi * w)
        served[idx] = np.minimum(x * rate[idx] * dt, demand[idx])
        used[gi] = x.sum()
    return served, used


# --- hypothesis: random groups, rates, demands ----------------------------------------------------

rates = st.one_of(st.just(0.0), st.floats(1e3, 2e9))
demands = st.one_of(st.just(0.0), st.floats(1.0, 1e9), st.just(1e12))
avgs = st.one_of(st.just(0.0), st.floats(1e2, 1e9))


@st.composite
def cells(draw):
    n_groups = draw(st.integers(1, 6))
    n = draw(st.integers(1, 40))
    group = draw(st.lists(st.integers(-1, n_groups - 1), min_size=n, max_size=n))
    rate = draw(st.lists(rates, min_size=n, max_size=n))
    demand = draw(st.lists(demands, min_size=n, max_size=n))
    avg = draw(st.lists(avgs, min_size=n, max_size=n))
    cap = draw(
        st.lists(
            st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0)), min_size=n_groups, max_size=n_groups
        )
    )
    dt = draw(st.sampled_from([0.001, 0.1, 1.0]))
    return group, rate, demand, avg, cap, dt


@settings(max_examples=150, deadline=None)
@given(cells(), st.sampled_from(["pf", "rr", "maxrate"]), st.sampled_from(["numpy", "torch"]))
def test_invariants_and_reference(case, policy: str, backend: str) -> None:
    group, rate, demand, avg, cap, dt = case
    g = _t(group, torch.int64)
    r, d, a, c = _t(rate), _t(demand), _t(avg), _t(cap)
    served, used = share(backend, g, r, d, a, c, dt, policy=policy)
    assert served.shape == r.shape and used.shape == c.shape
    assert served.dtype == torch.float32 and used.dtype == torch.float32
    s = served.double().numpy()
    rr, dd, cc = r.double().numpy(), d.double().numpy(), c.double().numpy()
    gg = np.asarray(group)
    cap_u = np.where(gg >= 0, cc[np.maximum(gg, 0)], 0.0)
    # served within demand and within what the group's whole capacity would give
    assert np.all(s >= 0)
    assert np.all(s <= dd * (1 + 1e-6))
    assert np.all(s <= rr * dt * cap_u * (1 + 1e-6) + 1e-6)
    # not schedulable: nothing
    assert np.all(s[(gg < 0) | (rr == 0) | (dd == 0)] == 0)
    # shares: sum per group <= capacity, equals used_fraction
    shares = np.divide(s, rr * dt, out=np.zeros_like(s), where=rr > 0)
    per_group = np.bincount(np.maximum(gg, 0), weights=np.where(gg >= 0, shares, 0), minlength=len(cc))
    assert np.all(used.numpy() <= cc + 1e-6)
    assert np.allclose(per_group, used.numpy(), atol=1e-5, rtol=1e-5)
    # work conservation: a group whose UEs need more than its capacity uses all of it
    need = np.divide(dd, rr * dt, out=np.zeros_like(dd), where=rr > 0)
    active = (gg >= 0) & (rr > 0) & (dd > 0)
    need_g = np.bincount(np.maximum(gg, 0), weights=np.where(active, need, 0), minlength=len(cc))
    full = need_g > cc * (1 + 1e-6)
    assert np.allclose(used.numpy()[full], cc[full], atol=1e-4)
    # equals the per-group reference
    want_s, want_u = reference(group, rr, dd, a.double().numpy(), cc, dt, policy)
    if policy == "maxrate":  # UEs of equal rate may be served in any order: compare per rate class
        classes = {(gi, ri) for gi, ri in zip(gg, rr, strict=True)}
        for gi, ri in classes:
            sel = (gg == gi) & (rr == ri)
            assert np.isclose(s[sel].sum(), want_s[sel].sum(), rtol=1e-5, atol=1e-3)
    else:
        assert np.allclose(s, want_s, rtol=1e-5, atol=1e-3)
    assert np.allclose(used.numpy(), want_u, atol=1e-5)


# --- hand cases -----------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["pf", "rr", "maxrate"])
@pytest.mark.parametrize(("demand", "cap"), [(1e5, 1.0), (1e9, 1.0), (1e9, 0.37), (2e6, 0.5)])
def test_lone_ue_gets_min_of_demand_and_capacity(policy: str, demand: float, cap: float) -> None:
    served, used = pf_share(_t([0]), _t([1e8]), _t([demand]), _t([5e6]), _t([cap]), DT, policy=policy)
    want = min(demand, 1e8 * DT * cap)
    assert served.item() == pytest.approx(want, rel=1e-6)
    assert used.item() == pytest.approx(want / (1e8 * DT), rel=1e-6)


@pytest.mark.parametrize("policy", ["pf", "rr"])
def test_two_equal_full_buffer_ues_split_evenly(policy: str) -> None:
    served, used = pf_share(
        _t([0, 0]), _t([5e7, 5e7]), _t([1e12, 1e12]), _t([1e6, 1e6]), _t([0.8]), DT, policy=policy
    )
    assert served.tolist() == pytest.approx([0.5 * 0.8 * 5e6] * 2, rel=1e-6)
    assert used.item() == pytest.approx(0.8)


def test_satisfied_ue_leaves_its_resources_to_the_others() -> None:
    # UE 0 needs 10 % of the cell; UEs 1 and 2 (full buffer) share the remaining 90 % evenly
    rate = _t([1e8, 1e8, 1e8])
    served, used = pf_share(_t([0, 0, 0]), rate, _t([1e6, 1e12, 1e12]), _t([1e6] * 3), _t([1.0]), DT)
    assert served.tolist() == pytest.approx([1e6, 4.5e6, 4.5e6], rel=1e-6)
    assert used.item() == pytest.approx(1.0)


def test_pf_time_shares() -> None:
    g, d, c = _t([0, 0]), _t([1e12, 1e12]), _t([1.0])
    # equal averages and rates: equal time; lower average: more time (w = rate / avg)
    served, _ = pf_share(g, _t([1e8, 1e8]), d, _t([2e6, 2e6]), c, DT)
    assert served[0].item() == pytest.approx(served[1].item(), rel=1e-6)
    served, _ = pf_share(g, _t([1e8, 1e8]), d, _t([1e6, 3e6]), c, DT)
    time = served / (1e8 * DT)
    assert time.tolist() == pytest.approx([0.75, 0.25], rel=1e-5)
    # at the PF equilibrium (average proportional to rate) UEs get equal time whatever their rate
    served, _ = pf_share(g, _t([2e8, 2e7]), d, _t([1e8, 1e7]), c, DT)
    assert (served / _t([2e7, 2e6])).tolist() == pytest.approx([0.5, 0.5], rel=1e-5)


def test_pf_converges_to_equal_time_shares_over_steps() -> None:
    """Long-run PF with full buffers and fixed rates: equal time (Jalali et al. 2000)."""
    rate = _t([3e8, 1e8, 2e7, 5e6])
    g, d, c = torch.zeros(4, dtype=torch.int64), torch.full((4,), 1e12), _t([1.0])
    avg = torch.zeros(4)
    for _ in range(200):
        served, _ = pf_share(g, rate, d, avg, c, DT)
        avg = update_average(avg, served, DT, tc_s=1.0)
    assert (served / (rate * DT)).tolist() == pytest.approx([0.25] * 4, abs=0.01)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_tiny_pf_weights_next_to_a_new_ue_stay_exact(backend: str) -> None:
    """A new UE (average 0: weight ~1e9) with a small buffer next to UEs whose weights are 1e11
    times smaller, in the last of many groups (large running totals before it)."""
    n_groups, per = 200, 10
    group = torch.arange(n_groups).repeat_interleave(per)
    rate = torch.full((n_groups * per,), 1e8)
    avg = torch.rand(n_groups * per, generator=torch.Generator().manual_seed(0)) * 1e8 + 1e6
    demand = torch.full((n_groups * per,), 1e12)
    last = slice((n_groups - 1) * per, n_groups * per)
    rate[last], avg[last], demand[last] = 1e7, 5e8, 1e4  # weights 0.02; buffers of 0.1 % of the cell
    k = (n_groups - 1) * per
    rate[k], avg[k], demand[k] = 2e9, 0.0, 1.0  # the new UE: weight 2e9, served at once
    rate[k + 1], demand[k + 1] = 1e7, 1e12  # one full-buffer UE takes what is left
    served, used = share(backend, group, rate, demand, avg, torch.ones(n_groups), DT)
    assert served[k].item() == 1.0
    assert served[k + 2 : k + per].tolist() == pytest.approx([1e4] * (per - 2), rel=1e-6)
    left = 1.0 - 1.0 / (2e9 * DT) - (per - 2) * 1e4 / (1e7 * DT)
    assert served[k + 1].item() == pytest.approx(left * 1e7 * DT, rel=1e-6)
    assert torch.allclose(used, torch.ones(n_groups), atol=1e-6)


def test_rr_and_maxrate() -> None:
    g, d, a, c = _t([0, 0, 0]), _t([1e12] * 3), _t([1e6] * 3), _t([0.9])
    rate = _t([1e8, 5e7, 2e8])
    served, _ = pf_share(g, rate, d, a, c, DT, policy="rr")
    assert (served / (rate * DT)).tolist() == pytest.approx([0.3] * 3, rel=1e-6)
    served, used = pf_share(g, rate, d, a, c, DT, policy="maxrate")
    assert served.tolist() == pytest.approx([0.0, 0.0, 0.9 * 2e7], rel=1e-6)
    # the best UE needs only 40 %: the next best gets the rest
    served, used = pf_share(g, rate, _t([1e12, 1e12, 0.4 * 2e7]), a, c, DT, policy="maxrate")
    assert served.tolist() == pytest.approx([0.5 * 1e7, 0.0, 0.4 * 2e7], rel=1e-6)
    assert used.item() == pytest.approx(0.9)


def test_groups_are_independent_and_unschedulable_ues_get_nothing() -> None:
    group = _t([0, 1, 1, -1, 2, 0], torch.int64)
    rate = _t([1e8, 1e8, 1e8, 1e8, 0.0, 1e8])
    demand = _t([1e12, 1e12, 1e12, 1e12, 1e12, 0.0])
    served, used = pf_share(group, rate, demand, torch.full((6,), 1e6), _t([1.0, 0.5, 1.0]), DT)
    assert served.tolist() == pytest.approx([1e7, 2.5e6, 2.5e6, 0.0, 0.0, 0.0], rel=1e-6)
    assert used.tolist() == pytest.approx([1.0, 0.5, 0.0])


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_bad_or_nan_inputs(backend: str) -> None:
    group = _t([0, 0, 0, 0, 1], torch.int32)
    rate = _t([1e8, math.nan, 1e8, 1e8, 1e8])
    demand = _t([1e12, 1e12, math.nan, -5.0, 1e12])
    avg = _t([1e6, 1e6, math.nan, 1e6, 1e6])
    served, used = share(backend, group, rate, demand, avg, _t([1.0, 1.7]), DT)
    assert served.tolist() == [1e7, 0.0, 0.0, 0.0, 1e7]  # capacity 1.7 is clamped to 1
    assert used.tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="policy"):
        pf_share(group, rate, demand, demand, _t([1.0]), DT, policy="fifo")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dt_s"):
        pf_share(group, rate, demand, demand, _t([1.0]), 0.0)


def test_inputs_are_not_modified() -> None:
    rate = torch.tensor([1e8, 2e8], dtype=torch.float64)
    demand = torch.tensor([1e6, 1e12], dtype=torch.float64)
    before = (rate.clone(), demand.clone())
    pf_share(_t([0, 0], torch.int64), rate, demand, rate.clone(), _t([1.0]), DT)
    assert torch.equal(rate, before[0]) and torch.equal(demand, before[1])


def test_many_cells_match_reference() -> None:
    gen = torch.Generator().manual_seed(3)
    n, n_groups = 2850, 228
    group = torch.randint(-1, n_groups, (n,), generator=gen)
    rate = torch.rand(n, generator=gen) * 5e8
    demand = torch.where(torch.rand(n, generator=gen) < 0.5, torch.rand(n, generator=gen) * 2e6, 1e10)
    avg = torch.rand(n, generator=gen) * 1e8
    cap = torch.rand(n_groups, generator=gen)
    for policy, backend in itertools.product(("pf", "rr", "maxrate"), ("numpy", "torch")):
        served, used = share(backend, group, rate, demand, avg, cap, DT, policy=policy)
        want_s, want_u = reference(group.numpy(), rate.double().numpy(), demand.double().numpy(),
                                   avg.double().numpy(), cap.double().numpy(), DT, policy)  # fmt: skip
        assert np.allclose(served.double().numpy(), want_s, rtol=1e-5, atol=1e-2)
        assert np.allclose(used.numpy(), want_u, atol=1e-6)


# --- PF average -----------------------------------------------------------------------------------


def test_update_average_is_an_ema_with_time_constant() -> None:
    avg = torch.zeros(2)
    served = _t([1e6, 0.0])  # 10 Mbit/s and nothing
    for _ in range(10):  # 1 s = one time constant
        avg = update_average(avg, served, 0.1, tc_s=1.0)
    assert avg.tolist() == pytest.approx([1e7 * (1 - math.exp(-1)), 0.0], rel=1e-5)
    # the memory does not depend on the step length
    one = update_average(torch.zeros(1), _t([1e7]), 1.0, tc_s=1.0)
    assert one.item() == pytest.approx(avg[0].item(), rel=1e-5)
    with pytest.raises(ValueError):
        update_average(avg, served, 0.0)
