"""TR 38.901 Table 7.4.1-1 / 7.4.2-1 / 7.4.3-2 against hand-computed values and invariants."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mobileai.twin import propagation as prop

C = 299_792_458.0


def t(x: float) -> torch.Tensor:
    return torch.tensor([x], dtype=torch.float64)


def test_umi_los_before_breakpoint_matches_pl1() -> None:
    # d_BP' = 4 (10-1)(1.5-1) 3.5e9 / c = 210 m > 100 m, so PL1 applies.
    d2d, h_bs, h_ut, fc = 100.0, 10.0, 1.5, 3.5
    d3d = math.hypot(d2d, h_bs - h_ut)
    expected = 32.4 + 21 * math.log10(d3d) + 20 * math.log10(fc)
    got = prop.pathloss_los("umi", t(d2d), t(d3d), fc, t(h_bs), t(h_ut)).item()
    assert got == pytest.approx(expected, abs=1e-9)


def test_uma_los_after_breakpoint_matches_pl2() -> None:
    d2d, h_bs, h_ut, fc = 1500.0, 25.0, 1.5, 6.0
    d_bp = 4 * 24 * 0.5 * fc * 1e9 / C  # 961 m
    d3d = math.hypot(d2d, h_bs - h_ut)
    expected = 28 + 40 * math.log10(d3d) + 20 * math.log10(fc) - 9 * math.log10(d_bp**2 + (h_bs - h_ut) ** 2)
    got = prop.pathloss_los("uma", t(d2d), t(d3d), fc, t(h_bs), t(h_ut), 1.0).item()
    assert got == pytest.approx(expected, abs=1e-9)


def test_uma_nlos_value() -> None:
    d2d, h_bs, h_ut, fc = 300.0, 25.0, 1.5, 3.5
    d3d = math.hypot(d2d, h_bs - h_ut)
    nlos = 13.54 + 39.08 * math.log10(d3d) + 20 * math.log10(fc)
    got = prop.pathloss_nlos("uma", t(d2d), t(d3d), fc, t(h_bs), t(h_ut)).item()
    assert got == pytest.approx(nlos, abs=1e-9)  # NLOS' exceeds LOS here


def test_rma_los_and_nlos_values() -> None:
    h, w, h_bs, h_ut, fc = 5.0, 20.0, 35.0, 1.5, 0.7
    d2d = 2000.0
    d3d = math.hypot(d2d, h_bs - h_ut)
    d_bp = 2 * math.pi * h_bs * h_ut * fc * 1e9 / C  # 154 m

    def pl1(d: float) -> float:
        return (
            20 * math.log10(40 * math.pi * d * fc / 3)
            + min(0.03 * h**1.72, 10) * math.log10(d)
            - min(0.044 * h**1.72, 14.77)
            + 0.002 * math.log10(h) * d
        )

    los = pl1(d_bp) + 40 * math.log10(d3d / d_bp)
    got_los = prop.pathloss_los("rma", t(d2d), t(d3d), fc, t(h_bs), t(h_ut), rma_h=h).item()
    assert got_los == pytest.approx(los, abs=1e-9)
    nlos_p = (
        161.04
        - 7.1 * math.log10(w)
        + 7.5 * math.log10(h)
        - (24.37 - 3.7 * (h / h_bs) ** 2) * math.log10(h_bs)
        + (43.42 - 3.1 * math.log10(h_bs)) * (math.log10(d3d) - 3)
        + 20 * math.log10(fc)
        - (3.2 * math.log10(11.75 * h_ut) ** 2 - 4.97)
    )
    got = prop.pathloss_nlos("rma", t(d2d), t(d3d), fc, t(h_bs), t(h_ut), rma_h=h, rma_w=w).item()
    assert got == pytest.approx(max(los, nlos_p), abs=1e-9)


@pytest.mark.parametrize(
    ("scenario", "d", "h_ut", "expected"),
    [
        ("umi", 10.0, 1.5, 1.0),
        ("umi", 100.0, 1.5, 18 / 100 + math.exp(-100 / 36) * (1 - 18 / 100)),
        ("uma", 200.0, 1.5, 18 / 200 + math.exp(-200 / 63) * (1 - 18 / 200)),
        (
            "uma",
            200.0,
            22.5,
            (18 / 200 + math.exp(-200 / 63) * (1 - 18 / 200))
            * (1 + ((22.5 - 13) / 10) ** 1.5 * 1.25 * 2**3 * math.exp(-200 / 150)),
        ),
        ("rma", 1010.0, 1.5, math.exp(-1)),
    ],
)
def test_los_probability_table_7_4_2_1(scenario: str, d: float, h_ut: float, expected: float) -> None:
    assert prop.los_probability(scenario, t(d), t(h_ut)).item() == pytest.approx(expected, rel=1e-9)


def test_o2i_low_and_high_loss_at_6ghz() -> None:
    fc = 6.0
    low = 5 - 10 * math.log10(0.3 * 10 ** (-(2 + 0.2 * fc) / 10) + 0.7 * 10 ** (-(5 + 4 * fc) / 10))
    high = 5 - 10 * math.log10(0.7 * 10 ** (-(23 + 0.3 * fc) / 10) + 0.3 * 10 ** (-(5 + 4 * fc) / 10))
    got = prop.o2i_penetration_db(
        fc, torch.tensor([False, True]), torch.tensor([10.0, 10.0], dtype=torch.float64)
    )
    assert got[0].item() == pytest.approx(low + 5.0, abs=1e-9)
    assert got[1].item() == pytest.approx(high + 5.0, abs=1e-9)
    assert prop.o2i_sigma_db(torch.tensor([False, True])).tolist() == pytest.approx([4.4, 6.5])


def test_uma_environment_height_is_one_metre_below_13m() -> None:
    d = torch.linspace(20, 800, 50, dtype=torch.float64)
    h = torch.full_like(d, 10.0)
    u = torch.rand(50, dtype=torch.float64)
    assert torch.all(prop.uma_environment_height(d, h, u, u) == 1.0)


def test_uma_environment_height_values_are_on_the_3m_grid() -> None:
    d = torch.full((2000,), 150.0, dtype=torch.float64)
    h = torch.full_like(d, 22.5)
    g = torch.Generator().manual_seed(1)
    he = prop.uma_environment_height(
        d,
        h,
        torch.rand(2000, generator=g, dtype=torch.float64),
        torch.rand(2000, generator=g, dtype=torch.float64),
    )
    allowed = {1.0, 12.0, 15.0, 18.0, 21.0}
    assert set(he.tolist()) <= allowed
    assert (he == 1.0).float().mean() < 0.99  # some links get a raised environment


distances = st.floats(min_value=10.0, max_value=5000.0)
freqs = st.floats(min_value=0.5, max_value=30.0)


@settings(max_examples=200, deadline=None)
@given(d1=distances, d2=distances, fc=freqs, scenario=st.sampled_from(["uma", "umi", "rma"]))
def test_pathloss_grows_with_distance_and_nlos_dominates(
    d1: float, d2: float, fc: float, scenario: str
) -> None:
    h_bs = {"uma": 25.0, "umi": 10.0, "rma": 35.0}[scenario]
    lo, hi = sorted((d1, d2))
    d2d = torch.tensor([lo, hi], dtype=torch.float64)
    d3d = torch.sqrt(d2d**2 + (h_bs - 1.5) ** 2)
    hb, hu = torch.full_like(d2d, h_bs), torch.full_like(d2d, 1.5)
    los = prop.pathloss_los(scenario, d2d, d3d, fc, hb, hu)
    nlos = prop.pathloss_nlos(scenario, d2d, d3d, fc, hb, hu)
    assert los[1] >= los[0] - 1e-9
    assert nlos[1] >= nlos[0] - 1e-9
    assert torch.all(nlos >= los - 1e-9)
    free_space = 20 * torch.log10(4 * math.pi * d3d * fc * 1e9 / C)
    assert torch.all(los >= free_space - 3.0)  # never far below free space


@settings(max_examples=200, deadline=None)
@given(
    d=st.floats(min_value=0.0, max_value=10_000.0),
    h=st.floats(min_value=1.5, max_value=22.5),
    scenario=st.sampled_from(["uma", "umi", "rma"]),
)
def test_los_probability_is_a_probability(d: float, h: float, scenario: str) -> None:
    p = prop.los_probability(scenario, t(d), t(h)).item()
    assert 0.0 <= p <= 1.0 + 1e-12


@settings(max_examples=100, deadline=None)
@given(fc=freqs, d_in=st.floats(min_value=0.0, max_value=25.0))
def test_high_loss_walls_attenuate_more(fc: float, d_in: float) -> None:
    got = prop.o2i_penetration_db(
        fc, torch.tensor([False, True]), torch.tensor([d_in, d_in], dtype=torch.float64)
    )
    assert got[1] > got[0] > 0
