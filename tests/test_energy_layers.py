"""Carrier switch-off over a coverage layer (TR 38.864 clause 5): per-cell power parameters,
carrier layers, the layer-aware rule and optimiser, the packaged 2-layer scenario, the p5 metric."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from mobileai.ai4net.energy import bench
from mobileai.ai4net.energy.layers import CarrierLayers, dense_urban_two_layer_rows, layer_power
from mobileai.ai4net.energy.policies import (
    ForecastOptimiser,
    OptimiserConfig,
    ThresholdConfig,
    ThresholdRule,
    persistence_forecaster,
)
from mobileai.ai4net.energy.power_fit import PowerFit
from mobileai.ai4net.topology import neighbour_graph
from mobileai.errors import UserError
from mobileai.twin.config import EnergyConfig, load_scenario
from mobileai.twin.energy import CellState, EnergyModel
from mobileai.twin.layout import POWER_COLUMNS, build_layout


def _fit() -> PowerFit:
    """A fit with a 64-antenna type of small static share and a common type of large one."""
    return PowerFit(
        split="random_hours",
        ru_static={"Type1": 20.0, "Type12": 20.0},
        ru_slope={"Type1": 25.0, "Type12": 150.0},
        ru_cells={"Type1": 10, "Type12": 2},
        ru_tx_lin={"Type1": 1.0, "Type12": 1.0},
        es_rel={"ESMode1": 0.6, "ESMode6": 0.5},
        es_hours={"ESMode1": 100.0, "ESMode6": 100.0},
        bs_scale={},
        metrics={"wmape_test": 0.1},
    )


def test_energy_model_takes_per_cell_parameters_and_falls_back_to_the_section():
    cfg = EnergyConfig(p0_w=100.0, delta_p=2.0, max_tx_w=10.0, micro_sleep_rel=50.0, deep_sleep_rel=10.0)
    power = torch.full((2, len(POWER_COLUMNS)), math.nan, dtype=torch.float64)
    power[1] = torch.tensor([200.0, 8.0, 200.0, 11.0, 11.0, 5.0])
    m = EnergyModel(cfg, torch.tensor([40.0, 40.0]), power)
    assert m.p_full_w.tolist() == pytest.approx([120.0, 1800.0])
    active = torch.zeros(2, dtype=torch.long)
    busy = m.power_w(active, torch.tensor([0.5, 0.5]), torch.zeros(2, dtype=torch.bool))
    assert busy.tolist() == pytest.approx([110.0, 1000.0])
    idle = m.power_w(active, torch.zeros(2), torch.zeros(2, dtype=torch.bool))
    assert idle.tolist() == pytest.approx([60.0, 198.0])
    deep = torch.full((2,), int(CellState.DEEP_SLEEP))
    assert m.power_w(deep, torch.zeros(2), torch.zeros(2, dtype=torch.bool)).tolist() == pytest.approx(
        [12.0, 90.0]
    )
    off = torch.full((2,), int(CellState.OFF))
    assert m.power_w(off, torch.zeros(2), torch.zeros(2, dtype=torch.bool)).tolist() == [0.0, 0.0]
    waking = m.power_w(active, torch.zeros(2), torch.ones(2, dtype=torch.bool))
    assert waking.tolist() == pytest.approx([100.0, 200.0])
    # no per-cell table: the section for every cell, as before
    assert EnergyModel(cfg, torch.tensor([40.0])).p_full_w.tolist() == pytest.approx([120.0])


def test_layer_power_keeps_the_fitted_shape_and_full_load():
    fit = _fit()
    cov = layer_power(fit, "Type1", 450.0, 40.0, 40.0)
    assert cov["p0_w"] + cov["delta_p"] * 40.0 == pytest.approx(450.0, rel=1e-4)
    assert cov["p0_w"] / 450.0 == pytest.approx(20.0 / 45.0, rel=1e-4)
    assert cov["micro_sleep_rel"] == pytest.approx(100 * 20 / 45, rel=1e-4)  # idle = P0
    assert cov["deep_sleep_rel"] == pytest.approx(cov["micro_sleep_rel"] * 0.5, rel=1e-3)
    half = layer_power(fit, "Type1", 450.0, 40.0, 20.0)  # same unit radiating half the power
    assert half["p0_w"] == cov["p0_w"] and half["delta_p"] == cov["delta_p"]
    rows = dense_urban_two_layer_rows(fit)
    assert len(rows) == 114
    cap, cov_row = rows[0], rows[1]
    full_cap = cap["p0_w"] + cap["delta_p"] * cap["max_tx_w"]
    assert full_cap / 448.0 == pytest.approx(170.0 / 45.0, rel=1e-3)  # the fit's full-load ratio
    assert cap["carrier_ghz"] > cov_row["carrier_ghz"] and cap["azimuth_deg"] == cov_row["azimuth_deg"]
    with pytest.raises(UserError, match="Type99"):
        layer_power(fit, "Type99", 450.0, 40.0, 40.0)


def test_cells_csv_power_columns_and_wrap_around(tmp_path):
    base = load_scenario("dense-urban")
    rows = dense_urban_two_layer_rows(_fit())
    df = pd.DataFrame(rows)
    path = tmp_path / "cells.csv"
    df.to_csv(path, index=False)
    sc = base.with_updates(layout={"kind": "file", "file": str(path), "isd_m": 300})
    cells = build_layout(sc)
    assert cells.n == 114 and cells.power is not None
    assert cells.power[0].tolist() == pytest.approx([rows[0][c] for c in POWER_COLUMNS])
    # the 19-site grid keeps the hex wrap-around and per-sector drop
    assert cells.wrap_shifts.shape == (7, 2) and cells.drop_kind == "hex"
    # without power columns: None, and a grid that is not the 19-site hex: no wrap-around
    df.drop(columns=list(POWER_COLUMNS)).head(12).to_csv(path, index=False)
    plain = build_layout(sc)
    assert plain.power is None and plain.wrap_shifts.shape == (1, 2) and plain.drop_kind == "box"
    # partly set: NaN elsewhere; a bad value names row and column
    df2 = df.head(4).copy()
    df2.loc[1:, "p0_w"] = None
    df2.to_csv(path, index=False)
    assert torch.isnan(build_layout(sc).power[1:, 0]).all()
    df2.loc[2, "delta_p"] = 99
    df2.to_csv(path, index=False)
    with pytest.raises(UserError, match="row 4, column delta_p"):
        build_layout(sc)


def test_packaged_two_layer_scenario_has_a_capacity_cell_over_each_coverage_cell():
    sc = load_scenario("dense-urban-2layer")
    cells = build_layout(sc)
    assert cells.n == 114 and cells.n_sites == 19 and cells.wrap_shifts.shape == (7, 2)
    f = cells.carrier_ghz.numpy()
    assert sorted(set(f.tolist())) == [2.1, 3.5]
    p = cells.power.numpy()
    full = p[:, 0] + p[:, 1] * p[:, 2]
    # a 64T64R n78 AAU draws several times a low-band RRU at full load, both from the same fit
    assert full[f > 3].min() > 3 * full[f < 3].max()
    # idle draws P0 (micro sleep = the fitted static share) and deep sleep less than idle
    assert np.allclose(p[:, 3] / 100 * full, p[:, 0], rtol=1e-3)
    assert (p[:, 5] < p[:, 3]).all()


def _layer_table() -> pd.DataFrame:
    """Two sectors, each with a capacity (3.5 GHz, 273 PRB) and a coverage cell (2.1 GHz, 51 PRB)."""
    return pd.DataFrame(
        {
            "cell_id": ["A", "AL", "B", "BL"],
            "x_m": [0.0, 0.0, 300.0, 300.0],
            "y_m": [0.0, 0.0, 0.0, 0.0],
            "azimuth_deg": [90.0, 90.0, 270.0, 270.0],
            "carrier_ghz": [3.5, 2.1, 3.5, 2.1],
            "n_rb": [273, 51, 273, 51],
        }
    )


def test_carrier_layers_find_the_co_sector_coverage_cell():
    t = _layer_table()
    lay = CarrierLayers.from_cells(t)
    assert lay.host.tolist() == [1, -1, 3, -1] and lay.capacity.tolist() == [0, 2] and lay.multi_layer
    assert lay.to_host_prb(0, 10.0) == pytest.approx(10.0 * 273 / 51)
    single = CarrierLayers.from_cells(t.assign(carrier_ghz=3.5))
    assert not single.multi_layer
    with pytest.raises(UserError, match="n_rb"):
        CarrierLayers.from_cells(t.drop(columns=["n_rb"]))


def _period(prb: list[float], state: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"cell_id": ["A", "AL", "B", "BL"], "prb_dl": prb, "state": state})


def test_carrier_shutdown_rule_switches_only_capacity_cells_on_combined_load():
    t = _layer_table()
    g = neighbour_graph(t, k=2)
    lay = CarrierLayers.from_cells(t, g.cell_ids)
    rule = ThresholdRule(g, ThresholdConfig(periods=2, sleep_state="off"), layers=lay)
    on = ["active"] * 4
    # A: 2% of 273 PRB = 10.7% of AL's 51 + AL 5% = 15.7% < 40%; B: 8% -> 42.8% + 1% > 40%
    assert rule.decide(_period([2.0, 5.0, 8.0, 1.0], on)) == []  # N = 2 periods first
    dec = rule.decide(_period([2.0, 5.0, 8.0, 1.0], on))
    assert [(d.action.cell, d.action.state) for d in dec] == [("A", "off")]
    # the coverage cell fills above Y = 70%: the capacity cell comes back
    dec = rule.decide(_period([0.0, 75.0, 8.0, 1.0], ["off", "active", "active", "active"]))
    assert [(d.action.cell, d.action.state, d.binding) for d in dec] == [("A", "active", "host_load")]


def test_optimiser_switches_capacity_off_within_the_caps_and_learns_its_demand():
    t = _layer_table()
    g = neighbour_graph(t, k=2)
    lay = CarrierLayers.from_cells(t, g.cell_ids)
    cfg = OptimiserConfig(
        horizon=4,
        layer_inflation=3.0,
        layer_host_ratio=0.22,
        host_cap_pct=60.0,
        layer_neighbour_inflation=3.0,
    )
    opt = ForecastOptimiser(g, persistence_forecaster(), cfg, layers=lay)
    on = ["active"] * 4
    # A (2%): its capacity neighbour B is awake, so AL gets 0.22 x 10.7 = 2.4% and B 5 + 3 x 2 =
    # 11% (<= 40%); then B (5%) has no awake capacity neighbour: BL would get 3 x 26.8 = 80% > 60%
    dec = opt.decide(_period([2.0, 0.0, 5.0, 0.0], on))
    assert [(d.action.cell, d.action.state) for d in dec] == [("A", "off")]
    assert dec[0].evidence["neighbour_projected"] == {"AL": pytest.approx(2.35, abs=0.01), "B": 11.0}
    # what the receivers carry now is taken off their own demand; A's demand is its load at sleep
    # times the network trend net of the plan's inflation (here flat)
    own = opt._own_demand(np.array([0.0, 2.353, 11.0, 0.0]), np.array([True, False, False, False]))
    assert own == pytest.approx([2.0, 0.0, 5.0, 0.0], abs=0.01)
    # demand grows (B at 60%): A's estimated demand and B's projected load break the limits, A is back
    dec = opt.decide(_period([0.0, 2.4, 60.0, 0.0], ["off", "active", "active", "active"]))
    assert ("A", "active") in [(d.action.cell, d.action.state) for d in dec]
    with pytest.raises(UserError, match="cell ids"):
        ForecastOptimiser(g, persistence_forecaster(), cfg, layers=CarrierLayers.from_cells(t.iloc[::-1]))


def test_day_p5_is_over_ues_and_ignores_light_users():
    bits = np.array([2e6, 4e6, 8e6, 0.5e6] + [1e7] * 96)
    act = np.array([2.0, 2.0, 2.0, 0.1] + [1.0] * 96)
    # the 0.5 Mbit UE does not count; p5 of 99 UEs: between the 1 and 2 Mbit/s users
    p5 = bench._p5_kbps(bits, act)
    assert 1000.0 <= p5 <= 10000.0
    assert math.isnan(bench._p5_kbps(np.zeros(3), np.zeros(3)))


def _priced(p0: list[float], w_per_pct: list[float]) -> tuple[ForecastOptimiser, OptimiserConfig]:
    """The two-sector table with a per-cell power model; the coverage cells may take one sleeper."""
    t = _layer_table().assign(p0_w=p0, delta_p=[x * 100.0 / 200.0 for x in w_per_pct], max_tx_w=200.0)
    g = neighbour_graph(t, k=2)
    lay = CarrierLayers.from_cells(t, g.cell_ids)
    # once one capacity cell is off, the other has no awake capacity neighbour and its coverage
    # cell would take 3 x 10.7% = 32% > the 20% cap: only one of A, B can go
    cfg = OptimiserConfig(host_cap_pct=20.0, layer_inflation=3.0, layer_neighbour_inflation=2.0)
    return ForecastOptimiser(g, persistence_forecaster(), cfg, layers=lay), cfg


def test_carrier_layers_read_the_cells_power_model():
    t = _layer_table().assign(p0_w=[216.0, 204.0, 216.0, 204.0], delta_p=[8.0, 6.0, 8.0, 6.0], max_tx_w=200.0)
    lay = CarrierLayers.from_cells(t)
    assert lay.priced and lay.w_per_pct.tolist() == pytest.approx([16.0, 12.0, 16.0, 12.0])
    assert not CarrierLayers.from_cells(_layer_table()).priced  # no power columns: not priced
    assert not CarrierLayers.from_cells(t.assign(p0_w=[216.0, None, 216.0, 204.0])).priced  # partial
    with pytest.raises(UserError, match="cell power"):
        CarrierLayers.from_cells(_layer_table()).with_power(np.ones(3), np.ones(3))


def test_priced_optimiser_switches_off_the_cell_that_saves_more_power():
    on = ["active"] * 4
    # equal load: unpriced, the tie goes to the first cell (A); priced, B's larger static power wins
    opt, _ = _priced([100.0, 200.0, 400.0, 200.0], [10.0, 1.0, 10.0, 1.0])
    dec = opt.decide(_period([2.0, 0.0, 2.0, 0.0], on))
    assert [(d.action.cell, d.action.state) for d in dec] == [("B", "off")]
    # B saves its P_0 400 W + 2% x 10 W, less the extra load power of A (2 x 2% x 10 W) and BL
    # (0.22 x 10.7% x 1 W)
    assert dec[0].evidence["saving_w"] == pytest.approx(400 + 20 - 40 - 0.22 * 2 * 273 / 51, abs=0.1)
    assert "saves 378 W" in dec[0].reason
    assert opt.layers is not None
    plain = replace(opt.layers, p0_w=None, w_per_pct=None)
    unpriced = ForecastOptimiser(opt.graph, persistence_forecaster(), opt.cfg, plain)
    assert [d.action.cell for d in unpriced.decide(_period([2.0, 0.0, 2.0, 0.0], on))] == ["A"]


def test_priced_optimiser_keeps_a_cell_on_when_its_receivers_burn_more_than_it_saves():
    on = ["active"] * 4
    # A at 10%: B would take 2 x 10% = 20% more load at 30 W per % (600 W) while A saves 50 +
    # 100 W: A stays on; B at 1% saves 50 + 30 W against A's 20 W extra: B goes off
    opt, cfg = _priced([50.0, 200.0, 50.0, 200.0], [10.0, 1.0, 30.0, 1.0])
    dec = opt.decide(_period([10.0, 0.0, 1.0, 0.0], on))
    assert [(d.action.cell, d.action.state) for d in dec] == [("B", "off")]
    # the same cells, the receivers cheap: A's load can move and it goes off
    cheap, _ = _priced([50.0, 200.0, 50.0, 200.0], [10.0, 1.0, 1.0, 1.0])
    dec = cheap.decide(_period([10.0, 0.0, 12.0, 0.0], on))
    assert [(d.action.cell, d.action.state) for d in dec] == [("A", "off")]
    assert dec[0].evidence["saving_w"] > 0
    # a cell whose load cannot move (the receivers would pass their caps) stays on, priced or not
    full, _ = _priced([500.0, 200.0, 500.0, 200.0], [10.0, 1.0, 1.0, 1.0])
    assert full.decide(_period([15.0, 0.0, 35.0, 0.0], on)) == []
    assert cfg.min_saving_w == 0.0


def test_bench_layers_carry_the_twins_power_model():
    from mobileai.twin.config import Scenario
    from mobileai.twin.engine import Twin

    sc = Scenario(
        seed=3,
        layout={"sites": 7, "isd_m": 300, "wrap_around": False},
        ues={"count": 20},
        energy={"p0_w": 130.0, "delta_p": 4.7, "max_tx_w": 40.0},
    )
    tw = Twin(sc)
    g = bench.topology_of(tw)
    lay = bench.layers_of(tw, g)
    assert lay.priced and not lay.multi_layer
    assert lay.p0_w.tolist() == pytest.approx([130.0] * tw.n_cells)
    assert lay.w_per_pct.tolist() == pytest.approx([4.7 * 40.0 / 100.0] * tw.n_cells)
