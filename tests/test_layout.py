"""Hexagonal layout, wrap-around and the UE drop (TR 38.901 Table 7.2-1 / 7.8-1)."""

from __future__ import annotations

import math

import pytest
import torch

from mobileai.twin.calibration import calibration_scenario
from mobileai.twin.layout import build_layout, hex_site_positions, wrap_around_shifts
from mobileai.twin.ues import drop_ues


@pytest.mark.parametrize("n", [1, 7, 19, 37])
def test_hex_sites_are_unique_and_isd_apart(n: int) -> None:
    p = hex_site_positions(n, 500.0)
    assert p.shape == (n, 2)
    if n > 1:
        d = torch.cdist(p, p) + torch.eye(n) * 1e9
        assert d.min().item() == pytest.approx(500.0, abs=1e-6)


def test_wrap_around_images_form_a_perfect_lattice() -> None:
    isd = 500.0
    sites = hex_site_positions(19, isd)
    shifts = wrap_around_shifts(isd)
    assert shifts.shape == (7, 2)
    images = (sites[None, :, :] + shifts[:, None, :]).reshape(-1, 2)
    d = torch.cdist(images, images) + torch.eye(images.shape[0]) * 1e9
    # no coincident sites and every site has its six neighbours at exactly one ISD
    assert d.min().item() == pytest.approx(isd, abs=1e-6)
    centre_ring = torch.hypot(images[:, 0], images[:, 1]) < 3.5 * isd
    neighbours = ((d[centre_ring] - isd).abs() < 1e-6).sum(1)
    assert torch.all(neighbours == 6)
    assert all(math.isclose(math.hypot(*s), isd * math.sqrt(19), rel_tol=1e-9) for s in shifts[1:].tolist())


def test_calibration_drop_honours_counts_distance_and_indoor_share() -> None:
    sc = calibration_scenario("uma", 6.0)
    cells = build_layout(sc)
    assert cells.n == 57
    ues = drop_ues(sc, cells, torch.Generator().manual_seed(3))
    assert ues.n == 570
    d = (
        torch.cdist(torch.stack([ues.x, ues.y], 1), torch.stack([cells.site_x, cells.site_y], 1))
        .min(1)
        .values
    )
    assert d.min() >= 35.0
    assert 0.7 < ues.indoor.double().mean() < 0.9
    h_in = ues.height[ues.indoor]
    assert torch.all((h_in - 1.5) % 3.0 == 0) and h_in.max() <= 22.5
    assert torch.all(ues.height[~ues.indoor] == 1.5)
    assert torch.all(ues.d2d_in[~ues.indoor] == 0) and ues.d2d_in.max() <= 25.0
    # every UE lies inside the 19-site area: nearest site within the hexagon circumradius
    assert d.max() <= 500.0 / math.sqrt(3) + 1e-6


def test_drop_is_reproducible() -> None:
    sc = calibration_scenario("umi", 6.0)
    cells = build_layout(sc)
    a = drop_ues(sc, cells, torch.Generator().manual_seed(5))
    b = drop_ues(sc, cells, torch.Generator().manual_seed(5))
    assert torch.equal(a.x, b.x) and torch.equal(a.indoor, b.indoor)


def test_cells_csv_per_cell_power_columns(tmp_path) -> None:
    """Optional power-model columns (EARTH / TR 38.864 parameters per cell): parsed in the
    order of POWER_COLUMNS, NaN where a row leaves them empty, range-checked with row and column."""
    from mobileai.errors import UserError
    from mobileai.twin.config import Scenario
    from mobileai.twin.layout import POWER_COLUMNS

    path = tmp_path / "cells.csv"
    head = "cell_id,x_m,y_m,azimuth_deg," + ",".join(POWER_COLUMNS)
    path.write_text(f"{head}\nA,0,0,0,200,8,200,11,11,6\nB,0,0,120,,,,,,\n", encoding="utf-8")
    sc = Scenario(layout={"kind": "file", "file": str(path)})
    cells = build_layout(sc)
    assert cells.power is not None and cells.power.shape == (2, len(POWER_COLUMNS))
    assert cells.power[0].tolist() == [200.0, 8.0, 200.0, 11.0, 11.0, 6.0]
    assert torch.isnan(cells.power[1]).all()
    path.write_text(f"{head}\nA,0,0,0,200,8,200,11,111,6\n", encoding="utf-8")
    with pytest.raises(UserError, match="row 2, column light_sleep_rel"):
        build_layout(sc)
    path.write_text("cell_id,x_m,y_m,azimuth_deg\nA,0,0,0\n", encoding="utf-8")
    assert build_layout(sc).power is None
