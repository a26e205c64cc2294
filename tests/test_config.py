"""Scenario validation: every bad value is a one-line error naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mobileai.errors import UserError
from mobileai.twin.config import load_scenario, packaged_scenarios
from mobileai.twin.layout import build_layout


def write(tmp_path: Path, data: dict, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return p


@pytest.mark.parametrize("name", packaged_scenarios())
def test_packaged_scenarios_load_and_build(name: str) -> None:
    sc = load_scenario(name)
    assert build_layout(sc).n > 0


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"radio": {"carier_ghz": 3.5}}, "radio.carier_ghz: unknown key"),
        ({"bs": {"tx_power_dbm": -5}}, "bs.tx_power_dbm"),
        (
            {
                "radio": {
                    "scenario": "rma",
                    "carrier_ghz": 40,
                    "bandwidth_mhz": 100,
                    "subcarrier_spacing_khz": 120,
                }
            },
            "validity range 0.5..30.0",
        ),
        ({"radio": {"scenario": "uma", "carrier_ghz": 0.1}}, "validity range 0.5..100.0"),
        ({"radio": {"bandwidth_mhz": 33}}, "allowed: 5, 10, 15"),
        ({"radio": {"carrier_ghz": float("nan")}}, "radio.carrier_ghz"),
        ({"ues": {"indoor_ratio": 1.5}}, "ues.indoor_ratio"),
        ({"layout": {"kind": "file"}}, "layout.file"),
        ({"layout": {"sites": 7, "wrap_around": True}}, "wrap_around needs sites=19"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_values_name_the_field(tmp_path: Path, data: dict, needle: str) -> None:
    with pytest.raises(UserError) as exc:
        load_scenario(write(tmp_path, data))
    msg = str(exc.value)
    assert needle in msg
    assert "\n" not in msg


def test_unknown_packaged_name_lists_choices() -> None:
    with pytest.raises(UserError, match="dense-urban"):
        load_scenario("no-such-scenario")


def test_empty_and_non_mapping_files(tmp_path: Path) -> None:
    (tmp_path / "e.yaml").write_text("")
    with pytest.raises(UserError, match="empty"):
        load_scenario(tmp_path / "e.yaml")
    (tmp_path / "l.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(UserError, match="mapping"):
        load_scenario(tmp_path / "l.yaml")


def _site_scenario(tmp_path: Path, csv_text: str) -> Path:
    (tmp_path / "cells.csv").write_text(csv_text)
    return write(tmp_path, {"layout": {"kind": "file", "file": "cells.csv", "wrap_around": False}})


def test_user_sites_file_xy_and_latlon(tmp_path: Path) -> None:
    sc = load_scenario(
        _site_scenario(tmp_path, "cell_id,x_m,y_m,azimuth_deg\nA1,0,0,0\nA2,0,0,120\nB1,400,0,240\n")
    )
    cells = build_layout(sc)
    assert cells.n == 3 and cells.n_sites == 2
    # compass bearing 0 (north) is 90° in the mathematical convention
    assert cells.boresight_deg[0].item() == pytest.approx(90.0)
    sc = load_scenario(
        _site_scenario(
            tmp_path, "cell_id,lat,lon,azimuth_deg,tx_power_dbm\nX,45.0,9.0,0,40\nY,45.0,9.01,90,43\n"
        )
    )
    cells = build_layout(sc)
    assert cells.n_sites == 2
    assert abs(cells.x[1] - cells.x[0]).item() == pytest.approx(786.0, rel=0.01)  # 0.01° lon at 45°N


@pytest.mark.parametrize(
    ("csv_text", "needle"),
    [
        ("", "empty"),
        ("cell_id,x_m,y_m,azimuth_deg\n", "no cells"),
        ("cell_id,x_m,y_m,azimuth_deg\nA,nan,0,0\n", "row 2, column x_m"),
        ("cell_id,x_m,y_m,azimuth_deg\nA,0,0,0\nA,1,1,0\n", "duplicate id"),
        ("cell_id,x_m,y_m,azimuth_deg,tx_power_dbm\nA,0,0,0,-3\n", "tx_power_dbm: -3 is out of range"),
        ("cell_id,x_m,y_m,azimuth_deg,colour\nA,0,0,0,red\n", "unknown column(s) colour"),
        ("cell_id,x_m,azimuth_deg\nA,0,0\n", "x_m and y_m"),
        ("cell_id,x_m,y_m,azimuth_deg,carrier_ghz\nA,0,0,0,200\n", "carrier_ghz"),
    ],
)
def test_bad_sites_file(tmp_path: Path, csv_text: str, needle: str) -> None:
    sc = load_scenario(_site_scenario(tmp_path, csv_text))
    with pytest.raises(UserError) as exc:
        build_layout(sc)
    assert needle in str(exc.value)
    assert "\n" not in str(exc.value)
