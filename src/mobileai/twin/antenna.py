"""BS antenna gain: TR 38.901 V18.0.0 clause 7.3, Table 7.3-1, with a vertical array.

Element pattern (Table 7.3-1), angles in degrees, zenith θ (90° = horizon) and azimuth φ
relative to the boresight:

    A_V(θ) = -min(12 ((θ - 90)/θ_3dB)², SLA_V),   A_H(φ) = -min(12 (φ/φ_3dB)², A_max)
    A(θ, φ) = G_E,max - min(-(A_V + A_H), A_max)

A column of M co-polarised elements with spacing d_V (in wavelengths) and electrical down-tilt
θ_etilt (zenith) weighted per clause 7.3 (w_m = exp(-j 2π (m-1) d_V cos θ_etilt)/√M) adds the
array gain |Σ_m w_m exp(j 2π (m-1) d_V cos θ)|² = sin²(Mψ/2) / (M sin²(ψ/2)), with
ψ = 2π d_V (cos θ - cos θ_etilt): up to 10·log10(M) dB towards the tilt. With M = 1 the element
itself is tilted (θ - 90 becomes θ - θ_etilt), the common single-element sector model.
"""

from __future__ import annotations

import math

import torch

from mobileai.twin.config import AntennaConfig


def element_gain_db(
    cfg: AntennaConfig,
    theta_deg: torch.Tensor,
    phi_deg: torch.Tensor,
    theta_ref_deg: float | torch.Tensor = 90.0,
) -> torch.Tensor:
    """Element gain in dBi, Table 7.3-1. ``phi_deg`` relative to boresight, wrapped to [-180, 180)."""
    if cfg.pattern == "omni":
        return torch.full_like(theta_deg, cfg.max_gain_dbi)
    phi = torch.remainder(phi_deg + 180.0, 360.0) - 180.0
    a_v = -torch.clamp(12.0 * ((theta_deg - theta_ref_deg) / cfg.beamwidth_v_deg) ** 2, max=cfg.side_lobe_db)
    a_h = -torch.clamp(12.0 * (phi / cfg.beamwidth_h_deg) ** 2, max=cfg.front_to_back_db)
    return cfg.max_gain_dbi - torch.clamp(-(a_v + a_h), max=cfg.front_to_back_db)


def array_gain_db(
    m: int, spacing_wl: float, theta_deg: torch.Tensor, tilt_zenith_deg: torch.Tensor | float
) -> torch.Tensor:
    """Vertical array-factor gain in dB for M elements steered to ``tilt_zenith_deg``."""
    if m == 1:
        return torch.zeros_like(theta_deg)
    tilt = torch.as_tensor(tilt_zenith_deg, dtype=theta_deg.dtype, device=theta_deg.device)
    psi = 2.0 * math.pi * spacing_wl * (torch.cos(torch.deg2rad(theta_deg)) - torch.cos(torch.deg2rad(tilt)))
    half = 0.5 * psi
    sin_half = torch.sin(half)
    small = sin_half.abs() < 1e-6
    ratio = torch.sin(m * half) / torch.where(small, torch.ones_like(sin_half), sin_half)
    power = torch.where(small, torch.full_like(psi, float(m * m)), ratio**2) / m
    return 10.0 * torch.log10(torch.clamp(power, min=1e-12))


def bs_gain_db(
    cfg: AntennaConfig, theta_deg: torch.Tensor, phi_deg: torch.Tensor, downtilt_deg: torch.Tensor | float
) -> torch.Tensor:
    """Total BS gain towards (θ, φ): element plus vertical array, with per-cell down-tilt."""
    tilt_zenith = 90.0 + torch.as_tensor(downtilt_deg, dtype=theta_deg.dtype, device=theta_deg.device)
    if cfg.elements_vertical == 1:
        return element_gain_db(cfg, theta_deg, phi_deg, theta_ref_deg=tilt_zenith)
    return element_gain_db(cfg, theta_deg, phi_deg) + array_gain_db(
        cfg.elements_vertical, cfg.vertical_spacing_wavelengths, theta_deg, tilt_zenith
    )
