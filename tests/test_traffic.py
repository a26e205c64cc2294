"""Traffic model: service mix, diurnal curves, session process, buffers (mobileai.twin.traffic)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mobileai.twin import traffic as traffic_module
from mobileai.twin.config import CELL_TYPES, SERVICES, TrafficConfig
from mobileai.twin.traffic import (
    DIURNAL,
    FULL_BUFFER_BITS,
    SERVICE_PROFILES,
    SLICES,
    Traffic,
    diurnal_factor,
)

#: Packet delay budgets of the standardized 5QIs used here (TS 23.501 Table 5.7.4-1), ms.
PDB_MS = {1: 100, 6: 300, 7: 100, 9: 300, 71: 150, 82: 10}


def _traffic(mix: dict[str, float] | None = None, n: int = 1000, seed: int = 0) -> Traffic:
    cfg = TrafficConfig() if mix is None else TrafficConfig(service_mix=mix)
    return Traffic(cfg, n, torch.Generator().manual_seed(seed))


def _ones(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.ones(n), torch.ones(n, dtype=torch.bool)


def test_profiles_cover_services_with_standard_qos() -> None:
    assert tuple(SERVICE_PROFILES) == SERVICES
    for name, p in SERVICE_PROFILES.items():
        assert p.name == name
        assert p.slice in SLICES
        assert p.delay_budget_ms == PDB_MS[p.five_qi], name
    assert SERVICE_PROFILES["full_buffer"].full_buffer
    assert sum(p.full_buffer for p in SERVICE_PROFILES.values()) == 1
    # the AI camera is uplink-heavy, the agent's response larger than its request
    cam, agent = SERVICE_PROFILES["ai_camera_ul"], SERVICE_PROFILES["ai_agent"]
    assert cam.ul_rate_bps > 10 * cam.dl_rate_bps
    assert agent.dl_burst_bits > agent.ul_burst_bits > 0


def test_diurnal_profiles_have_the_documented_shapes() -> None:
    assert set(DIURNAL) == set(CELL_TYPES)
    for prof in DIURNAL.values():
        assert len(prof) == 24 and all(0.0 <= v <= 1.0 for v in prof)
    for t in ("office", "residential", "transport_hub"):
        assert max(DIURNAL[t]) == 1.0
    office, res, hub = (np.array(DIURNAL[t]) for t in ("office", "residential", "transport_hub"))
    assert 9 <= office.argmax() <= 17 and office[9:17].min() > 0.85 and office[:6].max() < 0.2
    assert 19 <= res.argmax() <= 23 and res[2:6].max() < 0.3
    assert 7 <= hub[5:12].argmax() + 5 <= 9 and 17 <= hub[14:22].argmax() + 14 <= 19
    assert hub[5:12].max() > 0.9 and hub[14:22].max() > 0.9 and hub[11:15].max() < 0.7
    assert max(DIURNAL["stadium"]) <= 0.3


@settings(max_examples=200, deadline=None)
@given(st.floats(-1000.0, 1000.0, allow_nan=False), st.integers(0, len(CELL_TYPES) - 1))
def test_diurnal_factor_is_periodic_and_bounded(hour: float, t: int) -> None:
    ct = torch.tensor([t, t])
    v = diurnal_factor(ct, hour)
    w = diurnal_factor(ct, hour + 24.0)
    assert v.dtype == torch.float32 and v.shape == (2,)
    assert 0.0 <= float(v[0]) <= 1.0
    assert float(v[0]) == pytest.approx(float(w[0]), abs=1e-4)


def test_diurnal_factor_interpolates_the_hourly_table() -> None:
    ct = torch.arange(len(CELL_TYPES)).repeat(3)
    for h in range(24):
        got = diurnal_factor(ct, float(h))[: len(CELL_TYPES)]
        assert got.tolist() == pytest.approx([DIURNAL[t][h] for t in CELL_TYPES])
    mid = diurnal_factor(torch.tensor([1]), 23.5)  # wraps to 0 h
    assert float(mid) == pytest.approx((DIURNAL["residential"][23] + DIURNAL["residential"][0]) / 2)
    assert diurnal_factor(torch.zeros(2, 3, dtype=torch.int64), 12.0).shape == (2, 3)


def test_service_mix_shares_are_respected() -> None:
    n = 20_000
    cfg = TrafficConfig()
    tr = Traffic(cfg, n, torch.Generator().manual_seed(3))
    counts = torch.bincount(tr.service, minlength=len(SERVICES))
    for i, s in enumerate(SERVICES):
        share = cfg.service_mix.get(s, 0.0)
        assert abs(int(counts[i]) - share * n) <= 1, s
        # the assignment is random, not in blocks: the first 2,000 UEs have the mix too
        first = int((tr.service[:2000] == i).sum())
        assert abs(first - share * 2000) <= 4 * math.sqrt(share * (1 - share) * 2000) + 1, s
    again = Traffic(cfg, n, torch.Generator().manual_seed(3))
    other = Traffic(cfg, n, torch.Generator().manual_seed(4))
    assert torch.equal(tr.service, again.service) and not torch.equal(tr.service, other.service)


def test_per_ue_slice_and_qos_follow_the_service() -> None:
    tr = _traffic(n=500)
    for i, s in enumerate(SERVICES):
        m = tr.service == i
        p = SERVICE_PROFILES[s]
        assert torch.all(tr.slice[m] == SLICES.index(p.slice))
        assert torch.all(tr.five_qi[m] == p.five_qi)
        assert torch.allclose(tr.delay_budget_s[m], torch.tensor(p.delay_budget_ms / 1000.0))
    always_on = {"mmtc", "urllc_control"}
    assert torch.equal(
        tr.in_session, torch.isin(tr.service, torch.tensor([SERVICES.index(s) for s in always_on]))
    )


def test_session_arrivals_follow_the_diurnal_curve() -> None:
    """Arrivals per hour over a simulated day correlate with each cell type's profile."""
    per_type, dt = 1500, 30.0
    n = per_type * len(CELL_TYPES)
    tr = _traffic({"voip": 1.0}, n=n, seed=5)
    ct = torch.arange(len(CELL_TYPES)).repeat_interleave(per_type)
    admit = torch.ones(n, dtype=torch.bool)
    steps_per_hour = int(3600 / dt)
    lam = SERVICE_PROFILES["voip"].sessions_per_hour / 3600.0
    arrivals = np.zeros((24, len(CELL_TYPES)))
    profile = np.zeros((24, len(CELL_TYPES)))
    predicted = 0.0  # sum over idle UEs of the per-step arrival probability 1 - exp(-lam a dt)
    for k in range(24 * steps_per_hour):
        hour = k * dt / 3600.0
        act = diurnal_factor(ct, hour)
        idle = (~tr.in_session).numpy()
        predicted += float(-np.expm1(-lam * dt * act.double().numpy()[idle]).sum())  # numpy: one thread
        out = tr.step(dt, act, admit)
        arrivals[int(hour)] += torch.bincount(ct[out.new_sessions], minlength=len(CELL_TYPES)).numpy()
        profile[int(hour)] += act.view(len(CELL_TYPES), per_type)[:, 0].numpy()
    for j, t in enumerate(CELL_TYPES):
        r = np.corrcoef(arrivals[:, j], profile[:, j])[0, 1]
        assert r > 0.95, (t, r)
    assert arrivals.sum() == pytest.approx(predicted, rel=0.02)


def test_offered_load_matches_the_on_off_model() -> None:
    """Mean bits added per second per UE equal ServiceProfile.expected_rate_bps (activity 4)."""
    services = [s for s in SERVICES if not SERVICE_PROFILES[s].full_buffer]
    per, dt, steps, activity = 1500, 0.5, 2400, 4.0
    tr = _traffic({s: 1.0 / len(services) for s in services}, n=per * len(services), seed=6)
    act, admit = torch.full((tr.n,), activity), torch.ones(tr.n, dtype=torch.bool)
    tr.warm_start(act)
    dl = torch.zeros(tr.n, dtype=torch.float64)
    ul = torch.zeros(tr.n, dtype=torch.float64)
    for _ in range(steps):
        out = tr.step(dt, act, admit)
        dl += out.dl_bits
        ul += out.ul_bits
    for s in services:
        m = tr.service == SERVICES.index(s)
        want_dl, want_ul = SERVICE_PROFILES[s].expected_rate_bps(activity)
        got_dl = float(dl[m].mean()) / (steps * dt)
        got_ul = float(ul[m].mean()) / (steps * dt)
        for got, want in ((got_dl, want_dl), (got_ul, want_ul)):
            if want == 0:
                assert got == 0, s
            else:
                assert got == pytest.approx(want, rel=0.1), s


def test_warm_start_draws_the_stationary_session_share() -> None:
    tr = _traffic({"embb_video": 0.5, "ai_camera_ul": 0.5}, n=20_000, seed=7)
    act = torch.full((tr.n,), 2.0)
    tr.warm_start(act)
    for s in ("embb_video", "ai_camera_ul"):
        p = SERVICE_PROFILES[s]
        x = p.sessions_per_hour / 3600 * 2.0 * p.mean_session_s
        share = float(tr.in_session[tr.service == SERVICES.index(s)].float().mean())
        assert share == pytest.approx(x / (1 + x), abs=0.02)


def test_sessions_are_blocked_when_not_admitted() -> None:
    a, b, c = (_traffic(n=4000, seed=8) for _ in range(3))
    act = torch.full((a.n,), 200.0)
    yes = torch.ones(a.n, dtype=torch.bool)
    no = torch.zeros(a.n, dtype=torch.bool)
    half = torch.arange(a.n) % 2 == 0
    first_a, first_b, first_c = a.step(0.1, act, yes), b.step(0.1, act, no), c.step(0.1, act, half)
    # same draws, same arrivals: admitted ones start, refused ones are blocked
    assert first_a.new_sessions.any()
    assert torch.equal(first_a.new_sessions, first_b.blocked)
    assert torch.equal(first_c.new_sessions | first_c.blocked, first_a.new_sessions)
    assert not (first_c.new_sessions & ~half).any() and not (first_c.blocked & half).any()
    blocked = int(first_b.blocked.sum())
    for _ in range(50):
        out_a, out_b = a.step(0.1, act, yes), b.step(0.1, act, no)
        assert not out_a.blocked.any() and not out_b.new_sessions.any()
        blocked += int(out_b.blocked.sum())
    assert blocked > int(first_b.blocked.sum())
    # only the always-on services (attached from the start) are in session
    always_on = torch.tensor([SERVICES.index("urllc_control"), SERVICES.index("mmtc")])
    assert torch.equal(b.in_session, torch.isin(b.service, always_on))


def test_drop_ends_sessions_clears_buffers_and_counts() -> None:
    tr = _traffic(n=3000, seed=9)
    act, admit = _ones(tr.n)
    tr.warm_start(act)
    for _ in range(20):
        tr.step(0.1, act, admit)
    mask = torch.rand(tr.n, generator=torch.Generator().manual_seed(1)) < 0.3
    expected = int((mask & tr.in_session).sum())
    before = tr.dl_buffer_bits.clone(), tr.ul_buffer_bits.clone(), tr.in_session.clone()
    assert expected > 0
    assert tr.drop(mask) == expected
    assert not tr.in_session[mask].any()
    assert torch.all(tr.dl_buffer_bits[mask] == 0) and torch.all(tr.ul_buffer_bits[mask] == 0)
    keep = ~mask
    assert torch.equal(tr.dl_buffer_bits[keep], before[0][keep])
    assert torch.equal(tr.ul_buffer_bits[keep], before[1][keep])
    assert torch.equal(tr.in_session[keep], before[2][keep])
    assert tr.drop(mask) == 0  # nothing left to drop


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(-1e7, 1e9), st.floats(0.0, 3.0))
def test_serve_never_makes_buffers_negative(seed: int, scale: float, spread: float) -> None:
    tr = _traffic(n=200, seed=seed % 1000)
    act, admit = _ones(tr.n)
    tr.warm_start(act)
    g = torch.Generator().manual_seed(seed)
    for _ in range(3):
        tr.step(0.5, act, admit)
        dl_before, ul_before = tr.dl_buffer_bits.clone(), tr.ul_buffer_bits.clone()
        dl = scale * torch.rand(tr.n, generator=g) ** spread
        ul = scale * torch.rand(tr.n, generator=g) ** spread
        tr.serve(dl, ul)
        assert torch.all(tr.dl_buffer_bits >= 0) and torch.all(tr.ul_buffer_bits >= 0)
        want_dl = dl_before - torch.minimum(dl.clamp(min=0), dl_before)
        assert torch.equal(tr.dl_buffer_bits, want_dl)
        assert torch.equal(tr.ul_buffer_bits, ul_before - torch.minimum(ul.clamp(min=0), ul_before))


def test_full_buffer_ues_stay_backlogged() -> None:
    tr = _traffic({"full_buffer": 1.0}, n=50)
    act, admit = _ones(tr.n)
    assert tr.in_session.all()
    out = tr.step(0.1, act, admit)
    assert torch.all(tr.dl_buffer_bits >= FULL_BUFFER_BITS)
    assert torch.equal(out.dl_bits, tr.dl_buffer_bits)
    tr.serve(torch.full((tr.n,), 3e8), torch.zeros(tr.n))
    out = tr.step(0.1, act, admit)
    assert torch.all(tr.dl_buffer_bits >= FULL_BUFFER_BITS)
    assert torch.allclose(out.dl_bits, torch.full((tr.n,), 3e8))
    assert not out.ended.any()


def test_same_seed_gives_identical_results() -> None:
    def run(seed: int) -> list[torch.Tensor]:
        tr = _traffic(n=500, seed=seed)
        g = torch.Generator().manual_seed(seed + 1)
        ct = torch.randint(0, len(CELL_TYPES), (tr.n,), generator=g)
        admit = torch.rand(tr.n, generator=g) < 0.9
        out = []
        for k in range(300):
            st_ = tr.step(0.1, diurnal_factor(ct, 8.0 + k / 36000) * 3.0, admit)
            tr.serve(torch.full((tr.n,), 2e5), torch.full((tr.n,), 5e4))
            out += [st_.new_sessions, st_.blocked, st_.ended, st_.dl_bits, st_.ul_bits]
        tr.drop(admit.roll(1) & ~admit)
        return [*out, tr.dl_buffer_bits, tr.ul_buffer_bits, tr.in_session, *tr.head_of_line_delay_s()]

    a, b, c = run(11), run(11), run(12)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))


def test_head_of_line_delay_proxy() -> None:
    tr = _traffic({"voip": 1.0}, n=2)
    act, admit = torch.full((2,), 1e6), torch.ones(2, dtype=torch.bool)
    tr.step(0.1, act, admit)  # both start a call (arrival probability ~1)
    assert tr.in_session.all()
    for _ in range(10):
        tr.step(0.1, act, admit)
        tr.serve(torch.tensor([1e9, 0.0]), torch.tensor([1e9, 0.0]))
    dl, ul = tr.head_of_line_delay_s()
    assert float(dl[0]) == 0 and float(ul[0]) == 0  # always fully served
    assert float(dl[1]) == pytest.approx(1.0, abs=0.11)  # never served: age of the backlog
    # served at exactly the arrival rate (one step behind): about one step of delay
    tr2 = _traffic({"voip": 1.0}, n=1)
    tr2.step(0.1, torch.full((1,), 1e6), torch.ones(1, dtype=torch.bool))
    for _ in range(100):
        tr2.step(0.1, torch.ones(1), torch.ones(1, dtype=torch.bool))
        tr2.serve(tr2.dl_buffer_bits * 0.5, tr2.ul_buffer_bits * 0.5)
    d2, _ = tr2.head_of_line_delay_s()
    assert 0.05 < float(d2[0]) < 0.3


def test_bad_inputs_give_clear_errors() -> None:
    tr = _traffic(n=10)
    act, admit = _ones(10)
    with pytest.raises(ValueError, match="activity must have shape"):
        tr.step(0.1, torch.ones(9), admit)
    with pytest.raises(TypeError, match=r"admit must be torch\.bool"):
        tr.step(0.1, act, torch.ones(10))
    with pytest.raises(ValueError, match="dt_s"):
        tr.step(0.0, act, admit)
    with pytest.raises(TypeError, match="integer index"):
        diurnal_factor(torch.zeros(3), 1.0)
    with pytest.raises(ValueError, match="finite"):
        diurnal_factor(torch.zeros(3, dtype=torch.int64), math.nan)
    with pytest.raises(ValueError, match="n_ues"):
        Traffic(TrafficConfig(), -1, torch.Generator())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    runs = []
    for dev in ("cpu", "cuda"):
        tr = Traffic(TrafficConfig(), 400, torch.Generator().manual_seed(2), device=dev)
        ct = torch.arange(tr.n, device=dev) % len(CELL_TYPES)
        admit = torch.ones(tr.n, dtype=torch.bool, device=dev)
        outs = []
        for k in range(200):
            o = tr.step(0.1, diurnal_factor(ct, 18.0 + k / 36000) * 4.0, admit)
            outs += [o.new_sessions.cpu(), o.dl_bits.cpu(), o.ul_bits.cpu()]
        runs.append(outs)
    assert all(torch.equal(x, y) for x, y in zip(*runs, strict=True))


def test_compiled_step_is_bit_identical_to_the_torch_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CPU path of ``Traffic.step`` (compiled loops) and the torch code (other devices) give
    the same sessions, buffers and backlog ages, full-buffer top-ups and serving included."""
    mix = {s: 1.0 / len(SERVICES) for s in SERVICES}
    runs = []
    for compiled in (True, False):
        monkeypatch.setattr(traffic_module, "COMPILED_ON_CPU", compiled)
        tr = _traffic(mix, n=3000, seed=4)
        g = torch.Generator().manual_seed(1)
        steps = []
        for _ in range(300):
            act = 50 * torch.rand(tr.n, generator=g)
            admit = torch.rand(tr.n, generator=g) < 0.8
            out = tr.step(0.1, act, lambda arrive, admit=admit: admit | ~arrive)
            steps.append(out)
            tr.serve(2e5 * torch.rand(tr.n, generator=g), 2e4 * torch.rand(tr.n, generator=g))
        runs.append((tr, steps))
    (a, sa), (b, sb) = runs
    assert torch.equal(a._buf, b._buf) and torch.equal(a._busy_s, b._busy_s)
    assert torch.equal(a.in_session, b.in_session) and torch.equal(a._rate_bps, b._rate_bps)
    for x, y in zip(sa, sb, strict=True):
        for f in ("new_sessions", "blocked", "ended", "dl_bits", "ul_bits"):
            assert torch.equal(getattr(x, f), getattr(y, f)), f
    assert sum(int(s.blocked.sum()) for s in sa) > 0 and bool((a._buf[0] >= FULL_BUFFER_BITS).any())
