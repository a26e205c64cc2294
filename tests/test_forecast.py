"""Traffic forecasting (mobileai.ai4net.forecast): leak-free features, baselines, ours, intervals,
federated training, persistence, API and CLI, on small synthetic series made here."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from mobileai.ai4net.forecast import NeuralConfig, NeuralForecaster, SeasonalNaive, forecast_cells
from mobileai.ai4net.forecast.base import targets
from mobileai.ai4net.forecast.baselines import ETSForecaster, GBMForecaster, SimilarDayNaive
from mobileai.ai4net.forecast.bench import Task, run_twin_bench
from mobileai.ai4net.forecast.data import SeriesFrame, aggregate, frame_from_kpis, neighbours_from_geometry
from mobileai.ai4net.forecast.features import build_design, feature_names, is_weekend
from mobileai.ai4net.forecast.federated import Client, Update, fedavg, weighted_average
from mobileai.ai4net.forecast.intervals import cqr_offset
from mobileai.ai4net.forecast.metrics import coverage, mae, profile_oracle_gain
from mobileai.ai4net.forecast.model import SampleSet
from mobileai.errors import UserError


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    """Small models train fastest (and fairest to a shared machine) on one thread."""
    torch.set_num_threads(1)


FAST = NeuralConfig(hidden=16, epochs=6, patience=3, max_samples=4000, batch=128)


def synthetic(
    days: int = 6, per_day: int = 24, cells: int = 4, noise: float = 0.25, seed: int = 0, phase: float = 0.0
) -> SeriesFrame:
    """Daily profile x cell level + iid noise; cells on a line, neighbours = adjacent cells."""
    rng = np.random.default_rng(seed)
    t = np.arange(days * per_day)
    x = t / per_day + phase
    profile = 1.0 + 0.8 * np.sin(2 * np.pi * x) + 0.3 * np.cos(4 * np.pi * x)
    level = np.linspace(5, 20, cells)
    values = np.maximum(
        profile[:, None] * level[None, :] * (1 + noise * rng.standard_normal((len(t), cells))), 0
    )
    adj = np.eye(cells, k=1) + np.eye(cells, k=-1)
    times = pd.date_range("2026-01-01", periods=len(t), freq=pd.Timedelta(days=1) / per_day, tz="UTC")
    return SeriesFrame(values, times, [f"C{i}" for i in range(cells)], times[1] - times[0], adj, True)


def kpi_table(frame: SeriesFrame) -> pd.DataFrame:
    T, N = frame.values.shape
    return pd.DataFrame(
        {
            "period_start": np.repeat(frame.times.to_numpy(), N),
            "cell_id": np.tile(frame.names, T),
            "DRB.PdcpSduVolumeDL": frame.values.reshape(-1),
        }
    )


def test_features_read_only_the_past_of_each_origin() -> None:
    f = synthetic()
    origins = np.array([30, 50, 70])
    d1 = build_design(f, origins, 24, weekly=False)
    g = SeriesFrame(f.values.copy(), f.times, f.names, f.step, f.adjacency)
    g.values[71:] = 1e6  # change everything after the last origin
    d2 = build_design(g, origins, 24, weekly=False)
    np.testing.assert_array_equal(d1.X, d2.X)
    np.testing.assert_array_equal(d1.base, d2.base)
    assert not np.array_equal(d1.Y[-1], d2.Y[-1])  # the targets did change


def test_seasonal_naive_uses_the_latest_observed_day() -> None:
    f = synthetic(noise=0.0)
    f.values[:] = np.arange(f.values.shape[0])[:, None]  # value = step index
    p = SeasonalNaive().predict(f, np.array([47]), 30)
    h = np.arange(1, 31)
    expect = 47 + h - 24 * np.ceil(h / 24)
    np.testing.assert_array_equal(p.mean[0, :, 0], expect)


def test_ets_forecast_from_filtered_states_matches_statsmodels() -> None:
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    f = synthetic(days=5, cells=1)
    m = ETSForecaster().fit(f, 72, 96, 24)
    mine = m.predict(f, np.array([95]), 24).mean[0, :, 0]
    p = m._params[0]
    ref = ExponentialSmoothing(
        f.values[:96, 0],
        seasonal="add",
        seasonal_periods=24,
        initialization_method="known",
        initial_level=p["initial_level"],
        initial_seasonal=p["initial_seasons"],
    ).fit(smoothing_level=p["smoothing_level"], smoothing_seasonal=p["smoothing_seasonal"], optimized=False)
    np.testing.assert_allclose(mine, ref.forecast(24), rtol=1e-9)


def test_aggregate_sums_volumes_averages_rates_and_drops_partial_periods() -> None:
    times = pd.date_range("2026-01-01 00:15", periods=9, freq="15min", tz="UTC")
    vals = np.arange(9, dtype=float)[:, None]
    vol = aggregate(SeriesFrame(vals, times, ["a"], pd.Timedelta("15min"), None, True), pd.Timedelta("1h"))
    rate = aggregate(SeriesFrame(vals, times, ["a"], pd.Timedelta("15min"), None, False), pd.Timedelta("1h"))
    assert list(vol.times.hour) == [1]  # 00:15-00:45 and 02:00 are partial hours
    assert vol.values[0, 0] == 3 + 4 + 5 + 6 and rate.values[0, 0] == 4.5


def test_neighbours_from_geometry_are_the_k_nearest() -> None:
    cells = pd.DataFrame({"cell_id": ["a", "b", "c", "d"], "x_m": [0, 100, 250, 1000], "y_m": [0, 0, 0, 0]})
    adj = neighbours_from_geometry(cells, ["a", "b", "c", "d", "zz"], k=1)
    assert adj[0].nonzero()[0].tolist() == [1] and adj[3].nonzero()[0].tolist() == [2]
    assert adj[4].sum() == 0 and adj[:, 4].sum() == 0
    assert adj[0, 1] == pytest.approx(1 / 100)


def test_cqr_offset_reaches_the_coverage_on_calibration_data() -> None:
    rng = np.random.default_rng(1)
    y = rng.standard_normal(2000)
    lo, hi = np.full_like(y, -0.2), np.full_like(y, 0.2)  # far too narrow raw interval
    off = cqr_offset(y, lo, hi, alpha=0.2)
    assert coverage(y, lo - off, hi + off) >= 0.8
    y2 = rng.standard_normal(20000)
    assert coverage(y2, np.full_like(y2, -0.2 - off), np.full_like(y2, 0.2 + off)) == pytest.approx(
        0.8, abs=0.02
    )
    with pytest.raises(ValueError):
        cqr_offset(y, lo, hi, alpha=1.5)


def test_ours_beats_seasonal_naive_covers_and_round_trips(tmp_path) -> None:
    torch.manual_seed(0)
    f = synthetic(days=7)
    m = NeuralForecaster(FAST).fit(f, 96, 144, 24)
    origins = np.arange(143, 167 - 24 + 1, 6)
    y = targets(f, origins, 24)
    ours = m.predict(f, origins, 24)
    naive = SeasonalNaive().predict(f, origins, 24)
    assert mae(y, ours.mean) < mae(y, naive.mean)
    assert 0.5 <= coverage(y, ours.lo, ours.hi) <= 0.98
    assert np.all(ours.lo <= ours.mean) and np.all(ours.mean <= ours.hi)
    m.save(tmp_path / "m", metrics={"mae": 1.5})
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json", "model.pt"]
    back = NeuralForecaster.load(tmp_path / "m")
    assert back.info["metrics"] == {"mae": 1.5}
    np.testing.assert_array_equal(back.predict(f, origins, 24).mean, ours.mean)
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["cqr_offset"] == m.offset and meta["config"]["hidden"] == 16
    with pytest.raises(UserError):
        NeuralForecaster.load(tmp_path / "missing")


def test_profile_oracle_gain_matches_the_closed_forms() -> None:
    """Profile + iid noise: knowing the profile beats day-ahead naive by 1 - 1/sqrt(2) (Gaussian)
    and 1 - 1/1.5 (Laplace: E|X1 - X2| = 1.5 b, E|X| = b); fewer than 3 days give NaN."""
    rng = np.random.default_rng(0)
    profile = np.tile(100 + 50 * np.sin(np.arange(24) / 24 * 2 * np.pi), 30)[:, None]
    gauss = profile_oracle_gain(profile + rng.normal(0, 10, (720, 300)), 24)
    laplace = profile_oracle_gain(profile + rng.laplace(0, 10, (720, 300)), 24)
    assert gauss == pytest.approx(1 - 1 / np.sqrt(2), abs=0.01)
    assert laplace == pytest.approx(1 / 3, abs=0.015)
    assert np.isnan(profile_oracle_gain(profile[:60], 24))


def test_gbm_baseline_fits_and_predicts_scaled_back() -> None:
    f = synthetic(days=6)
    g = GBMForecaster().fit(f, 96, 120, 24)
    p = g.predict(f, np.array([119]), 24)
    y = targets(f, np.array([119]), 24)
    assert p.mean.shape == (1, 24, 4) and mae(y, p.mean) < mae(y, np.zeros_like(y))


def test_neural_config_rejects_bad_values_naming_the_field() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="hidden"):
        NeuralConfig(hidden=0)
    with pytest.raises(ValidationError, match="extra"):
        NeuralConfig(hiden=8)


def test_fedavg_averages_by_samples_and_exchanges_parameters_only() -> None:
    a = Update("a", {"w": torch.ones(2)}, 1, 0.0)
    b = Update("b", {"w": torch.full((2,), 4.0)}, 3, 0.0)
    np.testing.assert_allclose(weighted_average([a, b])["w"].numpy(), [3.25, 3.25])
    frames = [synthetic(days=5, cells=1, seed=s) for s in (1, 2)]
    clients = [Client(f"site{i}", f, 72, 96, 24, FAST) for i, f in enumerate(frames)]
    # a client keeps its own samples (fit and validation) and no frame; no two clients share data
    held = [[v for v in vars(c).values() if isinstance(v, SampleSet)] for c in clients]
    assert [len(h) for h in held] == [2, 2]
    assert not any(isinstance(v, SeriesFrame) for c in clients for v in vars(c).values())
    assert {id(s.X) for s in held[0]}.isdisjoint({id(s.X) for s in held[1]})
    res = fedavg(clients, rounds=3, local_epochs=1, config=FAST)
    assert {m["client"] for m in res.messages} == {"site0", "site1"}
    assert all(isinstance(v, (str, int)) for m in res.messages for v in m.values())
    assert set(res.global_params) == set(NeuralForecaster(FAST)._new_net().state_dict())
    m = res.model_for("site0", FAST, 24)
    p = m.predict(frames[0], np.array([95]), 24)
    assert np.isfinite(p.mean).all() and res.offsets.keys() == {"site0", "site1"}


def test_fine_tune_adapts_to_a_new_area_and_never_ends_worse_than_it_started() -> None:
    pre = NeuralForecaster(FAST).fit(synthetic(days=6, seed=3), 96, 120, 24)
    before = {k: v.clone() for k, v in pre.net.state_dict().items()}
    new = synthetic(days=3, cells=2, seed=4, phase=0.3, noise=0.05)  # another daily shape, little noise
    pre.fine_tune(new, 48, 72, epochs=4)
    assert pre.info["val_pinball"] < pre.info["fine_tune_val_pinball_before"]
    assert any(not torch.equal(before[k], v) for k, v in pre.net.state_dict().items())


def test_forecast_cells_returns_one_row_per_cell_and_period() -> None:
    f = synthetic(days=5)
    kpis = kpi_table(f)
    cells = pd.DataFrame({"cell_id": f.names, "x_m": [0, 100, 200, 300], "y_m": 0.0})
    assert frame_from_kpis(kpis, "DRB.PdcpSduVolumeDL", cells).adjacency.sum() > 0
    df = forecast_cells(kpis, "DRB.PdcpSduVolumeDL", 6, cells=cells, config=FAST)
    assert list(df.columns) == ["cell_id", "period_start", "mean", "lo80", "hi80"]
    assert len(df) == 4 * 6 and set(df["cell_id"]) == set(f.names)
    assert (df["period_start"].min() > f.times[-1]) and (df["lo80"] <= df["hi80"]).all()
    with pytest.raises(UserError, match="not found"):
        forecast_cells(kpis, "NoSuchKpi", 6)


def test_twin_bench_reports_the_required_fields() -> None:
    f = synthetic(days=4, cells=3)
    r = run_twin_bench(task=Task("synthetic", f, 72, 24, 24), config=FAST)
    assert set(r["mae"]) == {"ours", "seasonal_naive", "ets", "gbm", "similar_day"}
    assert 0 <= r["coverage80"] <= 1 and r["latency_ms_per_cell"] > 0
    assert set(r["targets"]) == {"mae_below_naive", "mae_below_gbm", "coverage80", "latency_ms_per_cell"}


def test_cli_forecast_writes_forecast_and_model(tmp_path) -> None:
    from mobileai.cli import app

    f = synthetic(days=4, cells=2)
    path = tmp_path / "kpis.parquet"
    kpi_table(f).to_parquet(path)
    res = CliRunner().invoke(
        app, ["forecast", "--kpis", str(path), "--horizon", "6h", "--out", str(tmp_path / "out"), "--json"]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["horizon_periods"] == 6 and summary["cells"] == 2
    out = pd.read_parquet(tmp_path / "out" / "forecast.parquet")
    assert len(out) == 12
    meta = json.loads((tmp_path / "out" / "model" / "model.json").read_text())
    assert "seasonal_naive" in meta["metrics"] and meta["kpi"] == "DRB.PdcpSduVolumeDL"
    res2 = CliRunner().invoke(
        app,
        [
            "forecast",
            "--kpis",
            str(path),
            "--horizon",
            "3h",
            "--out",
            str(tmp_path / "out2"),
            "--model",
            str(tmp_path / "out" / "model"),
            "--json",
        ],
    )
    assert res2.exit_code == 0, res2.output


def test_cli_user_error_is_one_line_exit_2(tmp_path) -> None:
    f = synthetic(days=2, cells=1)
    path = tmp_path / "kpis.parquet"
    kpi_table(f).to_parquet(path)
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "mobileai.cli",
            "forecast",
            "--kpis",
            str(path),
            "--kpi",
            "Nope",
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2 and "Traceback" not in p.stderr and "Nope" in p.stderr


def test_barcelona_and_milan_loaders_on_files_shaped_like_the_real_ones(tmp_path) -> None:
    from mobileai.ai4net.forecast.bench import resolve_data
    from mobileai.ai4net.forecast.data import load_barcelona, load_milan

    bcn = tmp_path / "barcelona-lte-pdcch"
    bcn.mkdir()
    t = pd.date_range("2018-03-28 15:56", periods=10, freq="2min")
    pd.DataFrame({"time": t[:7].strftime("%Y-%m-%d %H:%M:%S"), "down": np.arange(7.0)}).to_csv(
        bcn / "ElBorn.csv", index=False
    )
    pd.DataFrame({"time": t[7:].strftime("%Y-%m-%d %H:%M:%S"), "down": np.arange(7.0, 10)}).to_csv(
        bcn / "ElBorn_test.csv", index=False
    )
    f, test = load_barcelona(bcn, "ElBorn")
    assert test == 7 and f.values[test, 0] == 7.0 and f.step == pd.Timedelta("2min")
    with pytest.raises(UserError, match="allowed"):
        load_barcelona(bcn, "Gracia")
    mil = tmp_path / "milan-dgrn"
    mil.mkdir()
    np.savetxt(mil / "milan_grid_data.csv", np.ones((12, 25)), delimiter=",")
    np.savetxt(mil / "milan_41_45_41_45_adj_mx.csv", np.eye(25, k=1), delimiter=",")
    m = load_milan(mil)
    assert m.values.shape == (12, 25) and m.names[6] == "sq42_42" and m.adjacency.sum() == 24
    assert set(resolve_data(tmp_path)) == {"barcelona-lte-pdcch", "milan-dgrn"}
    with pytest.raises(UserError, match="neither"):
        resolve_data(tmp_path / "empty")


def test_twin_shaped_arrow_table_aggregates_to_hours_per_cell() -> None:
    import pyarrow as pa

    starts = pd.date_range("2026-01-01 17:00", periods=8, freq="15min", tz="UTC")
    n = 2
    table = pa.table(
        {
            "period_start": pa.array(np.repeat(starts.to_numpy(), n), pa.timestamp("ms", tz="UTC")),
            "cell_id": pa.array(["S000-0", "S000-1"] * len(starts)),
            "DRB.PdcpSduVolumeDL": pa.array(np.arange(len(starts) * n, dtype=float)),
            "RRU.PrbUsedDl": pa.array(np.full(len(starts) * n, 40.0)),
        }
    )
    vol = aggregate(frame_from_kpis(table, "DRB.PdcpSduVolumeDL"), pd.Timedelta("1h"))
    prb = aggregate(frame_from_kpis(table, "RRU.PrbUsedDl"), pd.Timedelta("1h"))
    assert vol.names == ["S000-0", "S000-1"] and vol.values.shape == (2, 2)
    assert vol.values[0].tolist() == [0 + 2 + 4 + 6, 1 + 3 + 5 + 7] and prb.values[0, 0] == 40.0
    assert str(vol.times[0]) == "2026-01-01 17:00:00+00:00"


def test_twin_task_builds_the_day_ahead_split_from_a_history(monkeypatch) -> None:
    import pyarrow as pa

    import mobileai.data.twin_history as th
    from mobileai.ai4net.forecast.bench import twin_task

    f = synthetic(days=4, per_day=96, cells=3)  # 15-min periods from midnight
    f.times = f.times + pd.Timedelta(hours=17)  # the twin starts at 17:00
    kpis = pa.Table.from_pandas(kpi_table(f), preserve_index=False)
    cells = pa.table({"cell_id": f.names, "x_m": [0.0, 300.0, 600.0], "y_m": [0.0, 0.0, 0.0]})
    monkeypatch.setattr(th, "twin_history", lambda *a, **k: th.History(None, kpis, pa.table({}), cells))
    task = twin_task()
    assert task.frame.step == pd.Timedelta("1h") and task.frame.values.shape == (96, 3)
    assert task.test_start == 72 and task.horizon == 24 and list(task.origins()) == [71]
    assert task.split() == (48, 72) and task.frame.adjacency.sum() > 0
    assert task.frame.values[0, 0] == pytest.approx(f.values[:4, 0].sum())


def _calendar_frame(days: int = 10) -> SeriesFrame:
    """Hourly series from Thursday 2026-01-01 17:00 whose value is 2 on weekdays, 1 at weekends,
    plus the hour of day / 100 (so each lag is identifiable)."""
    times = pd.date_range("2026-01-01 17:00", periods=days * 24, freq="h", tz="UTC")
    weekend = times.day_of_week.to_numpy() >= 5
    vals = np.where(weekend, 1.0, 2.0) + times.hour.to_numpy() / 100.0
    return SeriesFrame(np.stack([vals, 3 * vals], 1), times, ["a", "b"], pd.Timedelta(hours=1))


def test_is_weekend_follows_the_calendar() -> None:
    f = _calendar_frame(3)
    idx = np.array([-20, 0, 7, 31, 55, 79, 1000])  # Thu 21:00 (day -1), Thu 17:00, Fri 00:00, ...
    expect = pd.DatetimeIndex(f.times[0] + idx * f.step).day_of_week >= 5
    np.testing.assert_array_equal(is_weekend(f, idx), expect)
    assert is_weekend(f, np.array([[31, 55], [79, 7]])).shape == (2, 2)


def test_similar_day_lag_reads_friday_for_monday() -> None:
    f = _calendar_frame()
    # origin Sunday 2026-01-04 16:00 (step 71); targets Sunday 17:00 .. Monday 16:00
    origin = np.array([71])
    d = build_design(f, origin, 24, weekly=False)
    names = feature_names(False)
    i_sim, i_wk = names.index("lag_similar"), names.index("target_weekend")
    t_idx = origin[0] + np.arange(1, 25)
    monday = pd.DatetimeIndex(f.times[t_idx]).day_of_week == 0
    # Monday targets are weekday: the similar day is Friday (3 days back), scaled like the others
    friday = f.values[t_idx[monday] - 3 * 24] / d.scale[0]
    np.testing.assert_allclose(d.X[0, monday, :, i_sim], friday, rtol=1e-6)
    np.testing.assert_array_equal(d.X[0, :, 0, i_wk], (~monday).astype(np.float32))
    # the seasonal reference of a Monday target is the weekday mean (Friday and Thursday)
    assert np.all(d.base[0, monday, :, 0] > 1.9 / d.scale[0])


def test_similar_day_naive_beats_seasonal_naive_on_a_weekly_cycle() -> None:
    f = _calendar_frame()
    origins = np.arange(100, f.values.shape[0] - 24, 24)
    y = targets(f, origins, 24)
    sim = SimilarDayNaive().fit(f, 0, 0, 24).predict(f, origins, 24).mean
    naive = SeasonalNaive().fit(f, 0, 0, 24).predict(f, origins, 24).mean
    np.testing.assert_allclose(sim, y)  # the series is exactly its day class + hour of day
    assert np.abs(naive - y).max() > 0.9  # yesterday is the wrong class after a weekend
