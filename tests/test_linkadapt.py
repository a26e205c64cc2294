"""Link adaptation: TS 38.214 CQI table, SINR thresholds against Sionna SYS, rank, BLER, TS 38.306."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mobileai.twin import linkadapt as la

# --- TS 38.214 Table 5.2.2.1-2 -------------------------------------------------------------------


def test_cqi_table_efficiency_is_modulation_times_code_rate() -> None:
    # the efficiency column is Qm x R / 1024 rounded to 4 decimals (Table 5.2.2.1-2)
    assert len(la.CQI_TABLE) == 16
    for qm, rate, eff in la.CQI_TABLE[1:]:
        assert eff == pytest.approx(round(qm * rate / 1024, 4), abs=1e-4)
    assert [row[0] for row in la.CQI_TABLE[1:]] == [2] * 6 + [4] * 3 + [6] * 6
    effs = [row[2] for row in la.CQI_TABLE]
    assert effs == sorted(effs) and effs[0] == 0.0 and effs[-1] == 5.5547


def test_thresholds_increase_and_map_to_cqi() -> None:
    thr = la.CQI_SINR_THRESHOLDS_DB
    assert len(thr) == 15 and all(b > a for a, b in itertools.pairwise(thr))
    s = torch.tensor([-30.0, thr[0] - 1e-3, thr[0], 0.2, 11.69, 11.7, 22.7, 60.0, math.nan, math.inf])
    assert la.sinr_to_cqi(s).tolist() == [0, 0, 1, 4, 9, 10, 15, 15, 0, 15]
    assert la.sinr_to_cqi(s).dtype == torch.int64
    assert la.cqi_efficiency(torch.tensor([0, 1, 10, 15])).tolist() == pytest.approx(
        [0.0, 0.1523, 2.7305, 5.5547], abs=1e-6
    )
    assert la.cqi_sinr_threshold_db(torch.tensor([1, 15])).tolist() == pytest.approx([-6.7, 22.7])
    assert la.cqi_sinr_threshold_db(torch.tensor([0])).item() == -math.inf


def test_threshold_search_is_exact_at_and_around_every_threshold() -> None:
    """CQI and rank (NumPy search on CPU) against torch.bucketize on the thresholds themselves,
    their float32 neighbours and a dense sweep: a value on a threshold reaches it."""
    for values, fn in ((la.CQI_SINR_THRESHOLDS_DB, la.sinr_to_cqi), (la.RANK_SINR_THRESHOLDS_DB, None)):
        thr = torch.tensor(values, dtype=torch.float32)
        edges = torch.cat([thr, torch.nextafter(thr, thr - 1), torch.nextafter(thr, thr + 1)])
        s = torch.cat([edges, torch.linspace(-60, 80, 200_001), torch.tensor([-math.inf, math.inf])])
        want = torch.bucketize(s, thr, right=True)
        got = fn(s) if fn is not None else la.layers(s, 8) - 1
        assert torch.equal(got, want)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-40, 60, allow_nan=False), min_size=2, max_size=50))
def test_cqi_rank_and_rate_are_monotone_in_sinr(values: list[float]) -> None:
    s = torch.tensor(sorted(values), dtype=torch.float32)
    for fn in (la.sinr_to_cqi, lambda x: la.layers(x, 8)):
        out = fn(s)
        assert torch.all(out[1:] >= out[:-1])
    cqi = la.sinr_to_cqi(s)
    # the chosen CQI meets its 10 % BLER threshold (TS 38.214 5.2.2.1) and the next one does not
    assert torch.all(la.bler(s, cqi)[cqi > 0] <= 0.1 + 1e-6)
    nxt = (cqi + 1).clamp(max=15)
    assert torch.all(la.bler(s, nxt)[cqi < 15] > 0.1 - 1e-6)


# --- BLER -----------------------------------------------------------------------------------------


def test_bler_is_ten_percent_at_threshold_and_falls_with_margin() -> None:
    cqi = torch.arange(1, 16)
    thr = torch.tensor(la.CQI_SINR_THRESHOLDS_DB)
    assert torch.allclose(la.bler(thr, cqi), torch.full((15,), 0.1), atol=1e-6)
    margins = torch.tensor([-3.0, -1.0, 0.0, 0.5, 1.0, 2.0, 5.0])
    b = la.bler(thr[6] + margins, torch.full((7,), 7))
    assert torch.all(b[1:] < b[:-1]) and b[0] > 0.99 and b[-1] < 1e-6
    # CQI 0 (nothing sent) counts as lost; NaN SINR too
    assert la.bler(torch.tensor([10.0, math.nan]), torch.tensor([0, 5])).tolist() == [1.0, 1.0]


# --- rank -----------------------------------------------------------------------------------------


def test_rank_thresholds_and_cap() -> None:
    s = torch.tensor([-5.0, 11.99, 12.0, 17.9, 18.0, 24.0, 30.0, 35.0, 40.0, 45.0, math.nan])
    assert la.layers(s, 8).tolist() == [1, 1, 2, 2, 3, 4, 5, 6, 7, 8, 1]
    assert la.layers(s, 2).tolist() == [1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 1]
    assert la.layers(s, 1).tolist() == [1] * 11
    per_ue = torch.tensor([1, 2, 4, 8, 8, 8, 8, 8, 8, 2, 4])
    assert la.layers(s, per_ue).tolist() == [1, 1, 2, 2, 3, 4, 5, 6, 7, 2, 1]
    with pytest.raises(ValueError, match="max_layers"):
        la.layers(s, 9)


def _eigen_gaps_db(n: int, rho: float, draws: int = 1500) -> torch.Tensor:
    """Eigenvalues of H^H H (dB below the strongest) for n x n Rayleigh channels with exponential
    correlation rho^|i-j| at both ends (Kronecker model)."""
    gen = torch.Generator().manual_seed(1)
    i = torch.arange(n)
    r = torch.linalg.cholesky((rho ** (i[:, None] - i[None, :]).abs()).double()).to(torch.complex128)
    re, im = torch.randn(2, draws, n, n, generator=gen, dtype=torch.float64)
    h = r @ torch.complex(re, im) @ r.T / math.sqrt(2)
    lam = torch.linalg.eigvalsh(h.mH @ h).flip(-1).clamp_min(1e-30)
    return (10 * torch.log10(lam / lam[:, :1])).float()


@pytest.mark.parametrize(("n", "rho"), [(4, 0.7), (8, 0.8)])
def test_rank_rule_is_near_the_best_rank_on_correlated_mimo(n: int, rho: float) -> None:
    """The threshold rule loses at most 15 % against the rank that maximises the expected rate when
    each of r layers gets SINR - 10 log10(r) plus its eigenmode's gap (docs/models.md)."""
    gaps = _eigen_gaps_db(n, rho)  # [draws, n]
    sinr = torch.arange(-5.0, 45.5, 0.5)
    rates = []
    for r in range(1, n + 1):
        per_layer = sinr[:, None, None] - 10 * math.log10(r) + gaps[None, :, :r]
        rates.append(la.cqi_efficiency(la.sinr_to_cqi(per_layer)).sum(-1).mean(-1))
    rates = torch.stack(rates, 1)  # [S, n]
    rule = la.layers(sinr, n) - 1
    ratio = rates.gather(1, rule[:, None]).squeeze(1) / rates.max(1).values
    assert ratio.min() >= 0.85, sinr[ratio.argmin()]


# --- rate and TS 38.306 ----------------------------------------------------------------------------


def _ts38306_peak_bps(layers: int, qm: int, r_max: float, n_prb: int, mu: int, overhead: float) -> float:
    """TS 38.306 V18 4.1.2: 1e-6 sum_j v Qm f R_max N_PRB 12 / T_s (1 - OH) Mbps, one carrier, f = 1."""
    t_s = 1e-3 / (14 * 2**mu)
    return layers * qm * 1.0 * r_max * n_prb * 12 / t_s * (1 - overhead)


@pytest.mark.parametrize(
    ("n_prb", "scs", "layers", "overhead"),
    [(273, 30, 4, 0.14), (273, 30, 2, 0.14), (106, 15, 2, 0.14), (273, 30, 1, 0.08), (66, 120, 2, 0.18)],
)
def test_peak_rate_matches_ts38306(n_prb: int, scs: int, layers: int, overhead: float) -> None:
    # 60 dB: every layer at CQI 15 (64QAM, R = 948/1024) with negligible BLER
    got = la.peak_rate_bps(torch.tensor([60.0]), n_prb, scs, overhead, layers, 1.0).item()
    mu = int(math.log2(scs // 15))
    want = _ts38306_peak_bps(layers, 6, 948 / 1024, n_prb, mu, overhead)
    assert got == pytest.approx(want, rel=1e-4)


def test_peak_rate_100mhz_30khz_known_value() -> None:
    # 273 PRB, 30 kHz, 4 layers, 64QAM R 948/1024, OH 0.14: 1752.75 Mbit/s (TS 38.306 formula)
    got = la.peak_rate_bps(torch.tensor([60.0]), 273, 30, 0.14, 4, 1.0).item()
    assert got / 1e6 == pytest.approx(1752.75, abs=0.1)
    # the TDD DL share and per-UE PRBs scale it linearly
    tdd = la.peak_rate_bps(torch.tensor([60.0, 60.0]), torch.tensor([273, 136]), 30, 0.14, 4, 0.74)
    assert tdd.tolist() == pytest.approx([got * 0.74, got * 0.74 * 136 / 273], rel=1e-5)


def test_peak_rate_composes_the_link_model() -> None:
    s = torch.tensor([-10.0, -6.7, 5.0, 12.0, 20.0])
    link = la.link_adaptation(s, 2)
    assert link.layers.tolist() == [1, 1, 1, 2, 2]
    # rank 2 splits the power: each layer at SINR - 3 dB
    assert link.cqi.tolist() == la.sinr_to_cqi(s - 10 * torch.log10(link.layers.float())).tolist()
    rate = la.peak_rate_bps(s, 273, 30, 0.14, 2, 0.74)
    re_per_s = 273 * 12 * 14 * 2000 * 0.86 * 0.74
    want = re_per_s * link.layers.float() * link.efficiency * (1 - link.bler)
    assert torch.allclose(rate, want, rtol=1e-5)
    assert rate[0] == 0 and rate.dtype == torch.float32
    assert torch.all(rate[1:] > rate[:-1])
    with pytest.raises(ValueError, match="subcarrier spacing"):
        la.peak_rate_bps(s, 273, 25, 0.14, 2)
    with pytest.raises(ValueError, match="overhead"):
        la.peak_rate_bps(s, 273, 30, 1.0, 2)


# --- cross-check against NVIDIA Sionna SYS link-level BLER tables ---------------------------------


def _sionna_pdsch_table1() -> dict:
    spec = importlib.util.find_spec("sionna")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("sionna-no-rt not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "sys" / "bler_tables" / "PDSCH_table1.json"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    return json.loads(path.read_text())["category"]["1"]["index"]["1"]["MCS"]


def sionna_snr_at_bler(entry: dict, cbs: str, target: float = 0.1) -> float:
    """SNR (dB) where a Sionna BLER curve crosses ``target`` (log-BLER interpolated linearly)."""
    snr = np.asarray(entry["SNR_db"])
    b = np.asarray(entry["CBS"][cbs]["BLER"])
    i = int(np.argmax(b <= target))
    assert b[i] <= target < b[i - 1], "curve does not cross the target inside the table"
    lo, hi = np.log10(max(b[i - 1], 1e-9)), np.log10(max(b[i], 1e-9))
    return float(snr[i - 1] + (math.log10(target) - lo) / (hi - lo) * (snr[i] - snr[i - 1]))


@pytest.mark.sionna
def test_cqi_thresholds_sit_above_sionna_awgn_ldpc_thresholds() -> None:
    """Our 10 % BLER thresholds vs the SNR where Sionna's NR LDPC AWGN curve for the same
    modulation and code rate (MCS Table 1) crosses 10 % BLER at its largest code block.

    Sionna's tables start at MCS 3, so CQI 1..3 (code rates 78, 120, 193) are not covered. Over
    CQI 4..15 an AWGN link needs 1.8-4.0 dB less: the margin the geometry SINR needs for fading.
    """
    table = _sionna_pdsch_table1()
    gaps = []
    for cqi in range(4, 16):
        entry = table[str(la.CQI_TO_MCS_TABLE1[cqi - 1])]
        cbs = max(entry["CBS"], key=int)
        gaps.append(la.CQI_SINR_THRESHOLDS_DB[cqi - 1] - sionna_snr_at_bler(entry, cbs))
    assert min(gaps) >= 1.0 and max(gaps) <= 4.5, [round(g, 2) for g in gaps]
    # the same modulation / code rate: MCS Table 1 entries match Table 5.2.2.1-2 (spot checks)
    assert la.CQI_TO_MCS_TABLE1[14] == 28 and la.CQI_TABLE[15][1] == 948


@pytest.mark.sionna
def test_bler_slope_matches_sionna_waterfall() -> None:
    """The logit slope of our BLER curve is the median of Sionna's MCS 3..28 curves (CBS 500)."""
    table = _sionna_pdsch_table1()
    slopes = []
    for entry in table.values():
        snr = np.asarray(entry["SNR_db"])
        b = np.asarray(entry["CBS"]["500"]["BLER"])
        sel = (b > 0.005) & (b < 0.995)
        if sel.sum() >= 2:
            slopes.append(np.polyfit(snr[sel], np.log((1 - b[sel]) / b[sel]), 1)[0])
    assert len(slopes) >= 5
    median = float(np.median(slopes))
    assert abs(la.BLER_LOGIT_SLOPE_PER_DB - median) <= 0.1 * median
