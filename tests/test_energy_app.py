"""Energy-saving app: power-model fit on synthetic data, policies, open and closed loop."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mobileai.ai4net.energy import bench, power_fit
from mobileai.ai4net.energy.policies import (
    ForecastOptimiser,
    OptimiserConfig,
    ThresholdConfig,
    ThresholdRule,
    persistence_forecaster,
)
from mobileai.ai4net.topology import neighbour_graph
from mobileai.errors import UserError
from mobileai.twin.config import EnergyConfig, Scenario, load_scenario

TRUE = {"Type1": (20.0, 25.0), "Type2": (15.0, 35.0)}
TRUE_R = {"ESMode1": 0.6, "ESMode6": 0.3}


def _synthetic_itu(folder, n_bs: int = 40, hours: int = 72, noise: float = 0.01, seed: int = 0) -> None:
    """ECdata/CLdata/BSinfo generated from known EARTH + ES-mode parameters."""
    rng = np.random.default_rng(seed)
    info, cl, ec = [], [], []
    times = pd.date_range("2023-01-01 01:00", periods=hours, freq="h")
    for b in range(n_bs):
        ru = "Type1" if b % 2 else "Type2"
        tx = 6.875934 + rng.normal(0, 0.3)
        info.append((f"B_{b}", "Cell0", ru, "Mode2", 365, 20, 4, tx))
        k = 1.0 + rng.normal(0, 0.05)
        for t in times:
            load = float(np.clip(0.3 + 0.25 * np.sin(2 * np.pi * t.hour / 24) + rng.normal(0, 0.05), 0, 1))
            s1 = float(rng.random() < 0.1) * rng.random()
            s6 = float(rng.random() < 0.1) * rng.random()
            a, sl = TRUE[ru]
            static = a * (1 - s1 * (1 - TRUE_R["ESMode1"]) - s6 * (1 - TRUE_R["ESMode6"]))
            e = k * (static + sl * 10 ** ((tx - 6.875934) / 10) * load) * (1 + rng.normal(0, noise))
            stamp = f"{t.month}/{t.day}/{t.year} {t.hour}:00"
            cl.append((stamp, f"B_{b}", "Cell0", load, s1, 0, 0, 0, 0, s6))
            ec.append((stamp, f"B_{b}", e))
    pd.DataFrame(
        info, columns=["BS", "CellName", "RUType", "Mode", "Frequency", "Bandwidth", "Antennas", "TXpower"]
    ).to_csv(folder / "BSinfo.csv", index=False)
    pd.DataFrame(cl, columns=["Time", "BS", "CellName", "load", *[f"ESMode{i}" for i in range(1, 7)]]).to_csv(
        folder / "CLdata.csv", index=False
    )
    pd.DataFrame(ec, columns=["Time", "BS", "Energy"]).to_csv(folder / "ECdata.csv", index=False)


@pytest.fixture(scope="module")
def itu(tmp_path_factory):
    folder = tmp_path_factory.mktemp("itu")
    _synthetic_itu(folder)
    return power_fit.load_itu_energy(folder)


def test_fit_recovers_known_parameters(itu):
    fit = power_fit.fit_power_model(itu, "random_hours")
    for ru, (a, b) in TRUE.items():
        assert fit.ru_static[ru] == pytest.approx(a, rel=0.1)
        assert fit.ru_slope[ru] == pytest.approx(b, rel=0.15)
    assert fit.es_rel["ESMode1"] == pytest.approx(TRUE_R["ESMode1"], abs=0.1)
    assert fit.es_rel["ESMode6"] == pytest.approx(TRUE_R["ESMode6"], abs=0.1)
    assert fit.es_rel["ESMode3"] == 1.0  # never used: not fitted
    assert fit.metrics["wmape_test"] < 0.03


@pytest.mark.parametrize("split", power_fit.SPLITS)
def test_splits_are_disjoint_and_score(itu, split):
    train, test = power_fit.split_rows(itu.hours, split)
    assert len(test) > 0 and not set(train) & set(test)
    if split == "unseen_bs":
        bs = itu.hours.set_index("row")["BS"]
        assert not set(bs.loc[train]) & set(bs.loc[test])
    ref = power_fit.fit_lightgbm_reference(itu, split)
    assert 0 < ref["wmape_test"] < 0.2


def test_override_keeps_full_load_power_and_is_valid(itu):
    fit = power_fit.fit_power_model(itu, "random_hours")
    sc = load_scenario("dense-urban")
    over = power_fit.energy_override(fit, sc, "Type1")
    cfg = EnergyConfig(**{**sc.energy.model_dump(), **over})
    p_max = 10 ** ((sc.bs.tx_power_dbm - 30) / 10)
    base_full = sc.energy.p0_w + sc.energy.delta_p * p_max
    assert cfg.p0_w + cfg.delta_p * p_max == pytest.approx(base_full, rel=1e-3)
    _, f0 = fit.static_share("Type1")
    assert cfg.p0_w == pytest.approx(f0 * base_full, rel=1e-3)
    assert cfg.deep_sleep_rel <= cfg.light_sleep_rel
    assert power_fit.apply_fit(sc, fit, "Type1").energy.p0_w == pytest.approx(cfg.p0_w)
    with pytest.raises(UserError, match="ru-type"):
        fit.static_share("Type99")


def test_fit_save_load_roundtrip_and_errors(itu, tmp_path):
    fit = power_fit.fit_power_model(itu, "last_hours")
    path = tmp_path / "fit.json"
    power_fit.save_fit(fit, path, {"lightgbm": {"wmape_test": 0.05}})
    assert power_fit.load_fit(path) == fit
    assert power_fit.read_reference(path)["lightgbm"]["wmape_test"] == 0.05
    assert not list(tmp_path.glob(".*.tmp"))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**fit.model_dump(), "ru_static": "x"}))
    with pytest.raises(UserError, match="ru_static"):
        power_fit.load_fit(bad)
    with pytest.raises(UserError, match="not found"):
        power_fit.load_fit(tmp_path / "none.json")
    with pytest.raises(UserError, match="not a folder"):
        power_fit.load_itu_energy(tmp_path / "nope")


def test_wmape():
    assert power_fit.wmape(np.array([1.0, 3.0]), np.array([2.0, 3.0])) == pytest.approx(0.25)


# ----------------------------------------------------------------------------------- policies
def _cells(n_sites: int = 7) -> pd.DataFrame:
    rows = []
    ang = [0.0] + [60.0 * i for i in range(n_sites - 1)]
    for s in range(n_sites):
        r = 0.0 if s == 0 else 300.0
        x, y = r * np.cos(np.radians(ang[s])), r * np.sin(np.radians(ang[s]))
        for k, az in enumerate((30.0, 150.0, 270.0)):
            rows.append({"cell_id": f"S{s}-{k}", "x_m": x, "y_m": y, "azimuth_deg": az})
    return pd.DataFrame(rows)


def _table(
    graph, prb: dict[str, float], default: float, states: dict[str, str] | None = None
) -> pd.DataFrame:
    ids = list(graph.cell_ids)
    return pd.DataFrame(
        {
            "cell_id": ids,
            "prb_dl": [prb.get(c, default) for c in ids],
            "state": [(states or {}).get(c, "active") for c in ids],
        }
    )


def test_threshold_rule_waits_n_periods_then_sleeps_and_wakes():
    g = neighbour_graph(_cells(), k=6)
    rule = ThresholdRule(g, ThresholdConfig(sleep_below_pct=10, periods=2, wake_neighbour_above_pct=40))
    low = "S0-0"
    t = _table(g, {low: 2.0}, 30.0)
    assert rule.decide(t) == []  # one period below X: not yet
    dec = rule.decide(t)
    assert [d.action.cell for d in dec] == [low]
    assert dec[0].action.state == "deep_sleep" and dec[0].binding == "own_load" and "X=10" in dec[0].reason
    nb = g.of(low)[0]
    woke = rule.decide(_table(g, {low: 0.0, nb: 70.0}, 30.0, {low: "deep_sleep"}))
    assert [(d.action.cell, d.action.state, d.binding) for d in woke] == [(low, "active", "neighbour_load")]


def test_optimiser_respects_capacity_and_coverage():
    g = neighbour_graph(_cells(), k=6)
    cfg = OptimiserConfig(
        sleep_below_pct=20, neighbour_cap_pct=40, sinr_inflation=2.0, min_active_neighbours=4
    )
    opt = ForecastOptimiser(g, persistence_forecaster(), cfg)
    dec = opt.decide(_table(g, {}, 5.0))
    asleep = {d.action.cell for d in dec}
    assert asleep and len(asleep) < g.n_cells
    for d in dec:
        assert d.action.state in ("off", "deep_sleep")
        assert d.binding == "own_forecast" and "forecast" in d.reason
        assert max(d.evidence["neighbour_projected"].values()) <= cfg.neighbour_cap_pct
    for c in asleep:  # coverage: every sleeper keeps enough awake neighbours
        awake = [n for n in g.of(c) if n not in asleep]
        assert len(awake) >= min(cfg.min_active_neighbours, len(g.of(c)))
    # busy network: nobody sleeps
    busy = ForecastOptimiser(g, persistence_forecaster(), cfg).decide(_table(g, {}, 35.0))
    assert busy == []


def test_optimiser_wakes_a_sleeper_when_its_neighbours_fill_up():
    g = neighbour_graph(_cells(), k=6)
    opt = ForecastOptimiser(g, persistence_forecaster(), OptimiserConfig(sinr_inflation=2.0))
    first = opt.decide(_table(g, {}, 3.0))
    sleeper = first[0].action.cell
    states = {d.action.cell: d.action.state for d in first}
    hot = {c: 80.0 for c in g.of(sleeper) if c not in states}
    hot.update({c: 0.0 for c in states})
    woke = opt.decide(_table(g, hot, 3.0, states))
    assert any(d.action.cell == sleeper and d.action.state == "active" for d in woke)
    assert all(
        d.binding in ("neighbour_capacity", "demand_forecast") for d in woke if d.action.state == "active"
    )


def test_optimiser_forecasts_own_demand_not_the_load_it_moved():
    """After a sleep, the neighbours' measured load carries the moved traffic; the history the
    forecaster learns from must hold each cell's own demand, or the plan chases its own push."""
    g = neighbour_graph(_cells(), k=6)
    cfg = OptimiserConfig(sinr_inflation=2.0)
    opt = ForecastOptimiser(g, persistence_forecaster(), cfg)
    first = opt.decide(_table(g, {}, 4.0))
    states = {d.action.cell: d.action.state for d in first}
    assert states
    asleep = np.array([c in states for c in g.cell_ids])
    own = np.where(asleep, 0.0, 4.0)
    demand = np.where(asleep, 4.0, 4.0)
    measured = opt._projected(demand, asleep)  # what the twin would show if the model were exact
    measured = np.where(asleep, 0.0, measured)
    assert measured[~asleep].max() > 4.0 + 1.0  # some neighbour carries moved traffic
    opt.decide(_table(g, dict(zip(g.cell_ids, measured, strict=True)), 4.0, states))
    hist = opt.history[-1].set_index("cell_id")["prb_dl"].reindex(list(g.cell_ids)).to_numpy()
    np.testing.assert_allclose(hist[~asleep], own[~asleep], atol=1e-9)
    np.testing.assert_allclose(hist[asleep], 4.0, atol=1e-9)  # sleepers: load before sleeping


def test_persistence_interval_is_an_empirical_quantile_of_past_changes():
    rng = np.random.default_rng(0)
    periods = 40
    hist = pd.DataFrame(
        {
            "cell_id": np.repeat(["a", "b"], periods),
            "period": np.tile(np.arange(periods), 2),
            "prb_dl": np.concatenate([np.full(periods, 10.0), 20.0 + rng.normal(0, 2.0, periods)]),
        }
    )
    fc = persistence_forecaster(window=16)(hist, 2).set_index(["cell_id", "step"])
    assert fc.loc[("a", 1), "hi80"] == pytest.approx(10.0)  # flat series: no spread
    last_b = hist["prb_dl"].iloc[-1]
    recent = hist[hist.cell_id == "b"]["prb_dl"].tail(17)
    expected = last_b + max(recent.diff(2).iloc[2:].quantile(0.9), 0.0)
    assert fc.loc[("b", 2), "hi80"] == pytest.approx(expected)
    assert fc.loc[("b", 1), "mean"] == pytest.approx(last_b)
    short = persistence_forecaster()(hist[hist.period < 3], 2).set_index(["cell_id", "step"])
    rise = max(hist[(hist.cell_id == "b") & (hist.period < 3)]["prb_dl"].diff().max(), 0.0)
    assert short.loc[("b", 2), "hi80"] == pytest.approx(
        min(hist["prb_dl"].iloc[periods + 2] + 2 * rise, 100.0)
    )


def test_policies_reject_bad_tables():
    g = neighbour_graph(_cells(), k=6)
    rule = ThresholdRule(g)
    with pytest.raises(UserError, match="missing column"):
        rule.decide(pd.DataFrame({"cell_id": ["S0-0"]}))
    with pytest.raises(UserError, match="state 'nap'"):
        rule.decide(_table(g, {}, 5.0, {"S0-0": "nap"}))
    with pytest.raises(UserError, match="not in the cells table"):
        rule.decide(pd.DataFrame({"cell_id": ["X"], "prb_dl": [1.0], "state": ["active"]}))
    with pytest.raises(UserError, match=r"0\.\.100"):
        rule.decide(_table(g, {"S0-0": 150.0}, 5.0))


def test_open_loop_logs_without_applying_and_scores():
    cells = _cells()
    periods = pd.date_range("2024-01-01", periods=8, freq="15min")
    kpis = pd.DataFrame(
        [{"period_start": p, "cell_id": c, "RRU.PrbUsedDl": 4.0} for p in periods for c in cells["cell_id"]]
    )
    scores, log = bench.run_open_loop(
        kpis, cells, lambda g: ForecastOptimiser(g, persistence_forecaster()), EnergyConfig(), 40.0
    )
    assert 0 < scores["energy_saved_estimate"] < 1
    assert log and all(not row["applied"] for row in log)
    with pytest.raises(UserError, match="missing column"):
        bench.run_open_loop(kpis.drop(columns=["RRU.PrbUsedDl"]), cells, ThresholdRule, EnergyConfig(), 40.0)


def test_closed_loop_on_a_small_twin_saves_energy_and_logs_reasons():
    sc = Scenario(
        seed=3,
        layout={"sites": 7, "isd_m": 300, "wrap_around": False},
        ues={"count": 60},
        time={"step_ms": 1000, "radio_update_ms": 1000, "report_period_s": 60, "duration_s": 240},
    )
    ref = bench.run_closed_loop(sc, None)
    cfg = OptimiserConfig(
        sleep_below_pct=50, neighbour_cap_pct=90, sinr_inflation=1.0, min_active_neighbours=2
    )
    run = bench.run_closed_loop(
        sc, lambda g, lay: ForecastOptimiser(g, persistence_forecaster(), cfg, lay), "ours"
    )
    cmp = bench.compare(ref, run)
    assert run.decisions > 0 and run.log[0]["reason"]
    assert cmp["energy_saved"] > 0.05
    assert cmp["latency_ms_per_cell"] < 10
    assert bench.bench_scenario(load_scenario("dense-urban"), 2, None).time.duration_s == 7200
    with pytest.raises(UserError, match="--hours"):
        bench.bench_scenario(sc, 0, None)
