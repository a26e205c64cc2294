"""TR 38.901 V18.0.0 large-scale propagation: path loss, LOS probability, O2I penetration.

Implements, vectorised over any tensor shape (torch, CPU or CUDA):

- basic path loss for UMa, UMi-Street Canyon and RMa, LOS and NLOS: Table 7.4.1-1
  (including the UMa effective environment height h_E of Note 1, the breakpoint distances
  of Notes 1 and 5, and NLOS = max(LOS, NLOS'));
- LOS probability: Table 7.4.2-1 (outdoor part of the link, d_2D-out);
- O2I building penetration loss, low- and high-loss models: clause 7.4.3.1, Table 7.4.3-1/-2;
- shadow-fading standard deviations (Table 7.4.1-1; O2I: Table 7.5-6 Part-1 and 7.5-7) and
  correlation distances (Table 7.5-6 Part-1 / 7.5-7; LOS state: Table 7.6.3.1-2).

Distances in metres, frequencies in GHz, heights in metres, losses in dB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SPEED_OF_LIGHT = 299_792_458.0

#: Link classes used for shadow fading: outdoor LOS, outdoor NLOS, O2I (indoor UE).
LOS, NLOS, O2I = 0, 1, 2


@dataclass(frozen=True)
class ShadowingParams:
    """Shadow-fading sigma (dB) and correlation distance (m) per link class, plus the LOS-state
    correlation distance."""

    sigma_db: tuple[float, float, float]
    corr_m: tuple[float, float, float]
    los_corr_m: float


# UMa: sigma_SF LOS 4, NLOS 6 (Table 7.4.1-1), O2I 7 (Table 7.5-6); d_corr SF 37/50/7 m
# (Table 7.5-6); LOS state 50 m (Table 7.6.3.1-2).
# UMi: 4 / 7.82 / 7 dB; 10 / 13 / 7 m; LOS state 50 m.
# RMa: sigma_SF LOS is 4 dB before and 6 dB after the breakpoint (handled in shadow_sigma_db);
# NLOS 8, O2I 8 (Table 7.5-7); d_corr 37 / 120 / 120 m; LOS state 60 m.
SHADOWING: dict[str, ShadowingParams] = {
    "uma": ShadowingParams((4.0, 6.0, 7.0), (37.0, 50.0, 7.0), 50.0),
    "umi": ShadowingParams((4.0, 7.82, 7.0), (10.0, 13.0, 7.0), 50.0),
    "rma": ShadowingParams((4.0, 8.0, 8.0), (37.0, 120.0, 120.0), 60.0),
}


def _log10(x: torch.Tensor) -> torch.Tensor:
    return torch.log10(x)


def los_probability(scenario: str, d2d_out: torch.Tensor, h_ut: torch.Tensor) -> torch.Tensor:
    """LOS probability, TR 38.901 Table 7.4.2-1 (outdoor users and the outdoor part of O2I links).

    The UMa formula exceeds 1 just beyond 18 m for UEs above 13 m (up to 1.006 at 18 m, 22.5 m);
    a probability is clamped to 1 there, which changes no LOS draw (``u < p`` holds either way)."""
    d = torch.clamp(d2d_out, min=1e-3)
    if scenario == "rma":
        p = torch.exp(-(d - 10.0) / 1000.0)
        return torch.where(d2d_out <= 10.0, torch.ones_like(p), p)
    if scenario == "umi":
        p = 18.0 / d + torch.exp(-d / 36.0) * (1.0 - 18.0 / d)
        return torch.where(d2d_out <= 18.0, torch.ones_like(p), p)
    if scenario == "uma":
        c = torch.where(h_ut <= 13.0, torch.zeros_like(h_ut), ((h_ut - 13.0) / 10.0).clamp(min=0) ** 1.5)
        p = (18.0 / d + torch.exp(-d / 63.0) * (1.0 - 18.0 / d)) * (
            1.0 + c * 1.25 * (d / 100.0) ** 3 * torch.exp(-d / 150.0)
        )
        return torch.where(d2d_out <= 18.0, torch.ones_like(p), p.clamp(max=1.0))
    raise ValueError(f"unknown scenario {scenario!r}")


def uma_environment_height(
    d2d: torch.Tensor, h_ut: torch.Tensor, u1: torch.Tensor, u2: torch.Tensor
) -> torch.Tensor:
    """Effective environment height h_E for UMa (Table 7.4.1-1, Note 1).

    h_E = 1 m with probability 1/(1+C(d2D, h_UT)); otherwise drawn uniformly from
    {12, 15, ..., h_UT - 1.5}. ``u1`` and ``u2`` are independent U(0,1) draws of the same shape.
    """
    g = torch.where(d2d <= 18.0, torch.zeros_like(d2d), 1.25 * (d2d / 100.0) ** 3 * torch.exp(-d2d / 150.0))
    c = torch.where(h_ut < 13.0, torch.zeros_like(h_ut), ((h_ut - 13.0) / 10.0).clamp(min=0) ** 1.5) * g
    n_values = torch.clamp(torch.floor((h_ut - 1.5 - 12.0) / 3.0) + 1.0, min=1.0)
    choice = 12.0 + 3.0 * torch.minimum(torch.floor(u2 * n_values), n_values - 1.0)
    return torch.where(u1 < 1.0 / (1.0 + c), torch.ones_like(choice), choice)


def pathloss_los(
    scenario: str,
    d2d: torch.Tensor,
    d3d: torch.Tensor,
    fc_ghz: torch.Tensor | float,
    h_bs: torch.Tensor,
    h_ut: torch.Tensor,
    h_e: torch.Tensor | float = 1.0,
    rma_h: float = 5.0,
) -> torch.Tensor:
    """LOS basic path loss PL_LOS (Table 7.4.1-1)."""
    fc = torch.as_tensor(fc_ghz, dtype=d3d.dtype, device=d3d.device)
    if scenario == "rma":
        d_bp = 2.0 * math.pi * h_bs * h_ut * fc * 1e9 / SPEED_OF_LIGHT

        def pl1(d: torch.Tensor) -> torch.Tensor:
            return (
                20.0 * _log10(40.0 * math.pi * d * fc / 3.0)
                + min(0.03 * rma_h**1.72, 10.0) * _log10(d)
                - min(0.044 * rma_h**1.72, 14.77)
                + 0.002 * math.log10(rma_h) * d
            )

        pl_far = pl1(d_bp) + 40.0 * _log10(d3d / d_bp)
        return torch.where(d2d <= d_bp, pl1(d3d), pl_far)
    h_bs_p = h_bs - h_e
    h_ut_p = h_ut - h_e
    d_bp = 4.0 * h_bs_p * h_ut_p * fc * 1e9 / SPEED_OF_LIGHT
    if scenario == "uma":
        pl1 = 28.0 + 22.0 * _log10(d3d) + 20.0 * _log10(fc)
        pl2 = 28.0 + 40.0 * _log10(d3d) + 20.0 * _log10(fc) - 9.0 * _log10(d_bp**2 + (h_bs - h_ut) ** 2)
    elif scenario == "umi":
        pl1 = 32.4 + 21.0 * _log10(d3d) + 20.0 * _log10(fc)
        pl2 = 32.4 + 40.0 * _log10(d3d) + 20.0 * _log10(fc) - 9.5 * _log10(d_bp**2 + (h_bs - h_ut) ** 2)
    else:
        raise ValueError(f"unknown scenario {scenario!r}")
    return torch.where(d2d <= d_bp, pl1, pl2)


def pathloss_nlos_prime(
    scenario: str,
    d3d: torch.Tensor,
    fc_ghz: torch.Tensor | float,
    h_bs: torch.Tensor,
    h_ut: torch.Tensor,
    rma_h: float = 5.0,
    rma_w: float = 20.0,
) -> torch.Tensor:
    """The NLOS formula PL'_NLOS of Table 7.4.1-1 (before the max with PL_LOS)."""
    fc = torch.as_tensor(fc_ghz, dtype=d3d.dtype, device=d3d.device)
    if scenario == "uma":
        return 13.54 + 39.08 * _log10(d3d) + 20.0 * _log10(fc) - 0.6 * (h_ut - 1.5)
    if scenario == "umi":
        return 35.3 * _log10(d3d) + 22.4 + 21.3 * _log10(fc) - 0.3 * (h_ut - 1.5)
    if scenario == "rma":
        return (
            161.04
            - 7.1 * math.log10(rma_w)
            + 7.5 * math.log10(rma_h)
            - (24.37 - 3.7 * (rma_h / h_bs) ** 2) * _log10(h_bs)
            + (43.42 - 3.1 * _log10(h_bs)) * (_log10(d3d) - 3.0)
            + 20.0 * _log10(fc)
            - (3.2 * _log10(11.75 * h_ut) ** 2 - 4.97)
        )
    raise ValueError(f"unknown scenario {scenario!r}")


def pathloss_nlos(
    scenario: str,
    d2d: torch.Tensor,
    d3d: torch.Tensor,
    fc_ghz: torch.Tensor | float,
    h_bs: torch.Tensor,
    h_ut: torch.Tensor,
    h_e: torch.Tensor | float = 1.0,
    rma_h: float = 5.0,
    rma_w: float = 20.0,
) -> torch.Tensor:
    """NLOS basic path loss PL_NLOS = max(PL_LOS, PL'_NLOS) (Table 7.4.1-1)."""
    nlos = torch.zeros_like(d2d, dtype=torch.bool)
    return basic_pathloss(scenario, nlos, d2d, d3d, fc_ghz, h_bs, h_ut, h_e, rma_h, rma_w)


def basic_pathloss(
    scenario: str,
    los: torch.Tensor,
    d2d: torch.Tensor,
    d3d: torch.Tensor,
    fc_ghz: torch.Tensor | float,
    h_bs: torch.Tensor,
    h_ut: torch.Tensor,
    h_e: torch.Tensor | float = 1.0,
    rma_h: float = 5.0,
    rma_w: float = 20.0,
) -> torch.Tensor:
    """PL_LOS where ``los`` else PL_NLOS, computing PL_LOS once."""
    pl_los = pathloss_los(scenario, d2d, d3d, fc_ghz, h_bs, h_ut, h_e, rma_h)
    pl_n = pathloss_nlos_prime(scenario, d3d, fc_ghz, h_bs, h_ut, rma_h, rma_w)
    return torch.where(los, pl_los, torch.maximum(pl_los, pl_n))


def rma_los_sigma_db(
    d2d: torch.Tensor, fc_ghz: torch.Tensor | float, h_bs: torch.Tensor, h_ut: torch.Tensor
) -> torch.Tensor:
    """RMa LOS shadow-fading sigma: 4 dB up to the breakpoint, 6 dB beyond (Table 7.4.1-1)."""
    fc = torch.as_tensor(fc_ghz, dtype=d2d.dtype, device=d2d.device)
    d_bp = 2.0 * math.pi * h_bs * h_ut * fc * 1e9 / SPEED_OF_LIGHT
    return torch.where(d2d <= d_bp, torch.full_like(d2d, 4.0), torch.full_like(d2d, 6.0))


def o2i_penetration_db(
    fc_ghz: torch.Tensor | float, high_loss: torch.Tensor, d2d_in: torch.Tensor
) -> torch.Tensor:
    """Mean O2I loss PL_tw + PL_in, clause 7.4.3.1, Table 7.4.3-2 (the N(0, sigma_P) part is
    drawn by the caller with :func:`o2i_sigma_db`).

    Low loss: 5 - 10 log10(0.3·10^(-L_glass/10) + 0.7·10^(-L_concrete/10)).
    High loss: 5 - 10 log10(0.7·10^(-L_IIRglass/10) + 0.3·10^(-L_concrete/10)).
    PL_in = 0.5 d_2D-in. Material losses from Table 7.4.3-1.
    """
    fc = torch.as_tensor(fc_ghz, dtype=d2d_in.dtype, device=d2d_in.device)
    l_glass = 2.0 + 0.2 * fc
    l_iirglass = 23.0 + 0.3 * fc
    l_concrete = 5.0 + 4.0 * fc
    low = 5.0 - 10.0 * _log10(0.3 * 10.0 ** (-l_glass / 10.0) + 0.7 * 10.0 ** (-l_concrete / 10.0))
    high = 5.0 - 10.0 * _log10(0.7 * 10.0 ** (-l_iirglass / 10.0) + 0.3 * 10.0 ** (-l_concrete / 10.0))
    return torch.where(high_loss, high, low) + 0.5 * d2d_in


def o2i_sigma_db(high_loss: torch.Tensor) -> torch.Tensor:
    """Standard deviation sigma_P of the O2I loss: 4.4 dB low-loss, 6.5 dB high-loss (Table 7.4.3-2)."""
    return torch.where(high_loss, 6.5, 4.4)
