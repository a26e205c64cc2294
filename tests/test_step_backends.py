"""The CPU (NumPy) fast paths of the per-step modules compute exactly what the torch code computes.

Mobility, counters, energy, the PF average and link adaptation run their per-step arithmetic in
NumPy on CPU (lower per-operation cost than torch dispatch for a few thousand UEs) and in torch on
other devices. These tests pin the CPU results to the torch formulas bit for bit, so the KPIs of a
seed do not depend on the path.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mobileai.twin import linkadapt, mobility
from mobileai.twin.config import Scenario
from mobileai.twin.counters import SINR_BIN_DB, SINR_BIN_LO, SINR_BINS, PeriodCounters
from mobileai.twin.energy import CellState, EnergyModel
from mobileai.twin.engine import Twin
from mobileai.twin.scheduler import update_average


def _small() -> Scenario:
    return Scenario.model_validate(
        {
            "name": "small",
            "seed": 5,
            "layout": {"sites": 7, "isd_m": 200, "wrap_around": False},
            "ues": {"per_sector": 30, "indoor_ratio": 0.2},
            "mobility": {
                "model": "random_waypoint",
                "pause_s": 2.0,
                "speed_mix_kmh": {"30": 0.5, "120": 0.5},
            },
            "time": {"step_ms": 100, "duration_s": 60},
        }
    )


def test_random_waypoint_numpy_path_matches_torch_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Positions and pauses after many steps (waypoint arrivals included) are bit-identical."""
    runs = []
    for backend in (mobility._NUMPY, mobility._TORCH):
        monkeypatch.setattr(mobility, "_NUMPY", backend)
        mob = Twin(_small()).mobility
        arrived = 0
        for _ in range(300):
            before = mob.wx.clone()
            mob.step(0.1)
            arrived += int((mob.wx != before).sum())
        runs.append((mob.x.clone(), mob.y.clone(), mob.pause.clone(), arrived))
    (x0, y0, p0, a0), (x1, y1, p1, a1) = runs
    assert a0 == a1 > 0  # UEs reached waypoints and drew new ones
    assert torch.equal(x0, x1) and torch.equal(y0, y1) and torch.equal(p0, p1)
    assert x0.dtype == torch.float32


def _columns(u: int, g: torch.Generator) -> dict[str, torch.Tensor | None]:
    return {
        "dl_bits": torch.rand(u, generator=g) * 1e5,
        "connected": None,
        "active_dl": torch.rand(u, generator=g) < 0.3,
        "delay_sum": torch.rand(u, generator=g, dtype=torch.float64) * 1e-3,
    }


def test_counters_match_per_cell_float64_sums_in_ue_order() -> None:
    n_cells, u = 5, 400
    g = torch.Generator().manual_seed(1)
    pc = PeriodCounters(n_cells, u, torch.device("cpu"))
    expect = {k: np.zeros(n_cells) for k in ("dl_bits", "connected", "active_dl", "delay_sum")}
    for _ in range(3):
        cell = torch.randint(0, n_cells + 1, (u,), generator=g)  # n_cells = "no cell"
        cols = _columns(u, g)
        pc.add_ue_columns(cell, cols)
        for k, v in cols.items():
            vals = np.ones(u) if v is None else v.numpy().astype(np.float64)
            step = np.zeros(n_cells)
            for c, x in zip(cell.tolist(), vals.tolist(), strict=True):  # UE order, from 0
                if c < n_cells:
                    step[c] += x
            expect[k] += step
    for k, v in expect.items():
        assert np.array_equal(pc.sums[k].numpy(), v), k
    assert float(pc.sums["ul_bits"].abs().sum()) == 0.0  # other rows untouched


def test_sinr_histogram_and_ue_totals() -> None:
    n_cells, u = 4, 300
    g = torch.Generator().manual_seed(2)
    pc = PeriodCounters(n_cells, u, torch.device("cpu"))
    cell = torch.randint(0, n_cells + 1, (u,), generator=g)
    sinr = torch.randn(u, generator=g) * 20 + 5
    sinr[:3] = torch.tensor([-math.inf, 1e9, SINR_BIN_LO])  # both clamps and an edge
    pc.add_sinr(cell, sinr)
    b = ((sinr - SINR_BIN_LO) / SINR_BIN_DB).floor().clamp(0, SINR_BINS - 1).long()
    ref = torch.zeros_like(pc.sinr_hist).index_add_(
        0, cell * SINR_BINS + b, torch.ones(u, dtype=torch.float64)
    )
    assert torch.equal(pc.sinr_hist, ref)

    dl, ul = torch.rand(u, generator=g) * 1e4, torch.rand(u, generator=g) * 1e3
    act_dl, act_ul = torch.rand(u, generator=g) < 0.5, torch.rand(u, generator=g) < 0.2
    for _ in range(2):
        pc.add_ue_totals(dl, ul, act_dl, act_ul, 0.1)
    z = torch.zeros(u, dtype=torch.float64)
    assert torch.equal(pc.ue_dl_bits, z + dl + dl)
    assert torch.equal(pc.ue_ul_bits, z + ul + ul)
    assert torch.equal(pc.ue_dl_active_s, z + act_dl * 0.1 + act_dl * 0.1)
    assert torch.equal(pc.ue_ul_active_s, z + act_ul * 0.1 + act_ul * 0.1)


def test_step_counters_compiled_pass_matches_the_reference() -> None:
    """``add_step`` on CPU (one compiled pass) and its reference (``add_ue_columns``,
    ``sinr_to_cqi``, ``add_sinr``, ``add_ue_totals``) leave the same counters, to the last bit."""
    n_cells, u = 6, 2000
    g = torch.Generator().manual_seed(3)
    a, b = (PeriodCounters(n_cells, u, torch.device("cpu")) for _ in range(2))
    for _ in range(4):
        sinr = torch.randn(u, generator=g) * 15 + 8
        sinr[:4] = torch.tensor([-math.inf, math.inf, SINR_BIN_LO, -6.9])  # clamps, bin edge, no CQI
        kw = {
            "srv": torch.randint(0, n_cells, (u,), generator=g),
            "connected": torch.rand(u, generator=g) < 0.9,
            "ok": torch.rand(u, generator=g) < 0.8,
            "sinr_db": sinr,
            "new_sessions": torch.rand(u, generator=g) < 0.1,
            "blocked": torch.rand(u, generator=g) < 0.05,
            "served_dl": torch.rand(u, generator=g) * 1e6,
            "served_ul": torch.rand(u, generator=g) * 1e5,
            "active_dl": torch.rand(u, generator=g) < 0.5,
            "active_ul": torch.rand(u, generator=g) < 0.3,
            "dl_buffer": torch.where(torch.rand(u, generator=g) < 0.5, 0.0, torch.rand(u, generator=g) * 1e7),
            "ul_buffer": torch.where(torch.rand(u, generator=g) < 0.5, 0.0, torch.rand(u, generator=g) * 1e6),
            "avg_dl": torch.rand(u, generator=g) * 1e7,
            "dt": 0.1,
        }
        a._add_step_compiled(**kw)
        b._add_step_reference(**kw)
    for k in a.sums:
        assert torch.equal(a.sums[k], b.sums[k]), k
    for name in ("sinr_hist", "ue_dl_bits", "ue_ul_bits", "ue_dl_active_s", "ue_ul_active_s"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert float(a.sums["delay_sum"].sum()) > 0 and float(a.sums["cqi_sum"].sum()) > 0


def test_power_matches_the_earth_and_tr38864_formulas() -> None:
    sc = _small()
    tx = torch.tensor([46.0, 43.0, 40.0, 46.0, 46.0, 46.0])
    em = EnergyModel(sc.energy, tx)
    state = torch.tensor([0, 0, 1, 2, 3, 0])
    util = torch.tensor([0.5, 0.0, 0.3, 0.0, 0.0, 1.0])
    waking = torch.tensor([False, False, False, False, False, True])
    p = em.power_w(state, util, waking)
    e = sc.energy
    p_max = 10 ** ((tx - 30) / 10)
    full = e.p0_w + e.delta_p * p_max
    rel = {1: e.light_sleep_rel, 2: e.deep_sleep_rel, 3: 0.0}
    for i in range(6):
        s = CellState(int(state[i]))
        if waking[i]:
            want = e.p0_w
        elif s != CellState.ACTIVE:
            want = full[i] * rel[int(s)] / 100
        elif util[i] > 0:
            want = e.p0_w + e.delta_p * util[i] * p_max[i]
        else:
            want = full[i] * e.micro_sleep_rel / 100
        assert float(p[i]) == pytest.approx(float(want), rel=1e-6)


def test_update_average_numpy_path_is_the_torch_formula() -> None:
    g = torch.Generator().manual_seed(3)
    avg = torch.rand(1000, generator=g) * 1e7
    served = torch.rand(1000, generator=g) * 1e5
    beta = 1.0 - math.exp(-0.1)
    ref = (1.0 - beta) * avg + beta * (served / 0.1)  # torch float32 arithmetic
    out = update_average(avg, served, 0.1)
    assert out.dtype == torch.float32 and torch.equal(out, ref)
    assert update_average(avg.double(), served, 0.1).dtype == torch.float64


def test_link_adaptation_fast_paths_match_torch() -> None:
    g = torch.Generator().manual_seed(4)
    s = torch.randn(2000, generator=g) * 15 + 8
    s[:4] = torch.tensor([math.nan, -math.inf, math.inf, 22.7])
    c = linkadapt._consts(torch.device("cpu"))
    ref_cqi = torch.bucketize(linkadapt._sinr(s), c.thr, right=True)
    assert torch.equal(linkadapt.sinr_to_cqi(s), ref_cqi)
    n_rb = torch.randint(50, 274, (2000,), generator=g)
    layers = torch.randint(1, 5, (2000,), generator=g)
    rate = linkadapt.peak_rate_bps(s, n_rb, 30, 0.14, layers, 0.74)
    bits = linkadapt.link_adaptation(s, layers).bits_per_re
    re_per_s = 12 * 14 * linkadapt.slots_per_second(30) * (1 - 0.14) * 0.74
    assert torch.equal(rate, bits * n_rb.float() * np.float32(re_per_s))
