"""TR 38.901 Table 7.3-1 element pattern and the tilted vertical array."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mobileai.twin.antenna import array_gain_db, bs_gain_db, element_gain_db
from mobileai.twin.config import AntennaConfig

CFG = AntennaConfig()


def deg(*v: float) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.float64)


def test_element_boresight_and_3db_points() -> None:
    g = element_gain_db(CFG, deg(90.0, 90.0, 90.0 + 32.5), deg(0.0, 32.5, 0.0))
    assert g.tolist() == pytest.approx([8.0, 8.0 - 3.0, 8.0 - 3.0])


def test_element_back_lobe_is_capped_at_a_max() -> None:
    g = element_gain_db(CFG, deg(90.0, 180.0), deg(180.0, 180.0))
    assert g.tolist() == pytest.approx([8.0 - 30.0, 8.0 - 30.0])


def test_array_gain_peaks_at_tilt_with_10log10_m() -> None:
    theta = torch.linspace(60, 140, 8001, dtype=torch.float64)
    g = array_gain_db(10, 0.5, theta, 102.0)
    assert g.max().item() == pytest.approx(10.0, abs=1e-6)
    assert theta[g.argmax()].item() == pytest.approx(102.0, abs=0.02)


def test_array_gain_conserves_power_over_the_sphere() -> None:
    # the normalised array factor integrates to the isotropic power (mean 1 over cos θ)
    theta = torch.linspace(0, 180, 200_001, dtype=torch.float64)
    lin = 10 ** (array_gain_db(10, 0.5, theta, 102.0) / 10)
    w = torch.sin(torch.deg2rad(theta))
    mean = (lin * w).sum() / w.sum()
    assert mean.item() == pytest.approx(1.0, abs=0.01)


def test_single_element_is_tilted_mechanically() -> None:
    cfg = AntennaConfig(elements_vertical=1)
    g = bs_gain_db(cfg, deg(96.0), deg(0.0), 6.0)
    assert g.item() == pytest.approx(8.0)


@settings(max_examples=300, deadline=None)
@given(theta=st.floats(0, 180), phi=st.floats(-720, 720), tilt=st.floats(-10, 45))
def test_gain_bounded_by_peak(theta: float, phi: float, tilt: float) -> None:
    g = bs_gain_db(CFG, deg(theta), deg(phi), tilt).item()
    assert math.isfinite(g)
    assert g <= 8.0 + 10.0 + 1e-6
    assert g >= 8.0 - 30.0 - 10 * 12 - 1e-6  # array nulls are clamped at -120 dB
