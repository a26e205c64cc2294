"""Traffic variability: weekly, daily and hour-scale modulation (mobileai.twin.traffic)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mobileai.errors import UserError
from mobileai.twin.config import CELL_TYPES, Scenario, TrafficConfig, VariabilityConfig, parse_scenario
from mobileai.twin.timeline import ANCHOR
from mobileai.twin.traffic import ANCHOR_WEEKDAY, TrafficModulation, make_modulation, weekly_factors


def _grid(n_side: int = 4, spacing: float = 300.0, copies: int = 1) -> tuple[torch.Tensor, ...]:
    """Sites on a square grid (3 cells each), replicated ``copies`` times as the layout does."""
    s0 = n_side * n_side
    xs = torch.tensor([(i % n_side) * spacing for i in range(s0)], dtype=torch.float64).repeat(copies)
    ys = torch.tensor([(i // n_side) * spacing for i in range(s0)], dtype=torch.float64).repeat(copies)
    site = torch.arange(s0 * copies).repeat_interleave(3)
    cell_type = (torch.arange(site.shape[0]) // 3) % len(CELL_TYPES)
    return cell_type, site, xs, ys


def _mod(
    cfg: VariabilityConfig | None = None, seed: int = 0, copies: int = 1, **kw: float
) -> TrafficModulation:
    cell_type, site, xs, ys = _grid(copies=copies)
    return TrafficModulation(
        cfg or VariabilityConfig(), cell_type, site, xs, ys, copies, kw.get("start_hour", 0.0),
        torch.Generator().manual_seed(seed),
    )  # fmt: skip


def _hourly(m: TrafficModulation, days: int, offset_s: float = 0.0) -> np.ndarray:
    return torch.stack([m.factor(h * 3600.0 + offset_s) for h in range(days * 24)]).double().numpy()


def test_anchor_weekday_matches_the_timeline() -> None:
    assert ANCHOR.weekday() == ANCHOR_WEEKDAY


def test_weekly_factors_average_one_and_keep_the_ratio() -> None:
    w = weekly_factors({"office": 0.5, "residential": 1.2, "transport_hub": 1.0, "stadium": 1.0}).numpy()
    np.testing.assert_allclose(w.mean(1), 1.0, rtol=1e-12)
    office = CELL_TYPES.index("office")
    assert w[office, 5] / w[office, 0] == pytest.approx(0.5)
    assert w[office, 0] > 1.0 > w[office, 6]
    assert w[CELL_TYPES.index("residential"), 6] > 1.0


def test_modulation_is_mean_one_over_many_days() -> None:
    # weekly, daily and hourly parts together: over 10 weeks each cell type's mean factor is 1,
    # at full hours and between them (the interpolation's variance correction).
    m = _mod(seed=1)
    days = 70
    for offset in (0.0, 1800.0):
        f = _hourly(m, days, offset)
        assert f.min() > 0
        per_cell = f.mean(0)
        # 48 cells x 1,680 hours, correlated over ~1 day: the grand mean is within a few 0.01
        assert per_cell.mean() == pytest.approx(1.0, abs=0.03)
        # so the diurnal curve is kept: the mean per hour of day is 1 for every hour
        by_hour = f.reshape(days, 24, -1).mean((0, 2))
        np.testing.assert_allclose(by_hour, 1.0, atol=0.06)


def test_weekend_and_weekday_follow_the_configured_ratio() -> None:
    cfg = VariabilityConfig(daily_sigma=0.0, hourly_sigma=0.0)
    m = _mod(cfg)
    f = _hourly(m, 14).reshape(14, 24, -1)[:, 0, :]  # one value per day (no noise)
    weekday = (ANCHOR_WEEKDAY + np.arange(14)) % 7
    office = (np.arange(f.shape[1]) // 3) % len(CELL_TYPES) == CELL_TYPES.index("office")
    ratio = f[weekday >= 5][:, office].mean() / f[weekday < 5][:, office].mean()
    assert ratio == pytest.approx(cfg.weekend_ratio["office"], rel=1e-6)
    # day 0 is a Thursday: days 2 and 3 are the weekend
    assert list(np.flatnonzero(weekday[:7] >= 5)) == [2, 3]


def _acf(x: np.ndarray, lag: int) -> float:
    """Autocorrelation along axis 0 of ``x[T, C]`` pooled over columns."""
    x = x - x.mean(0)
    return float(np.mean(x[lag:] * x[:-lag]) / np.mean(x**2))


def test_hourly_ar1_statistics_are_recovered_from_a_long_draw() -> None:
    flat = {t: 1.0 for t in CELL_TYPES}
    cfg = VariabilityConfig(weekend_ratio=flat, daily_sigma=0.0, hourly_sigma=0.2, hourly_phi=0.6)
    x = np.log(_hourly(_mod(cfg, seed=3), 150))  # [T, C] at full hours: exactly the AR(1)
    assert x.std() == pytest.approx(cfg.hourly_sigma, rel=0.05)
    assert x.mean() == pytest.approx(-0.5 * cfg.hourly_sigma**2, abs=0.01)
    for lag in (1, 2, 3):
        assert _acf(x, lag) == pytest.approx(cfg.hourly_phi**lag, abs=0.04)


def test_daily_ar1_statistics_are_recovered_from_a_long_draw() -> None:
    flat = {t: 1.0 for t in CELL_TYPES}
    cfg = VariabilityConfig(weekend_ratio=flat, hourly_sigma=0.0, daily_sigma=0.3, daily_phi=0.6)
    days = 400
    f = np.log(_hourly(_mod(cfg, seed=4), days)).reshape(days, 24, -1)
    assert np.ptp(f, axis=1).max() < 1e-6  # constant over a day
    level = f[:, 0, :]
    assert level.std() == pytest.approx(cfg.daily_sigma, rel=0.07)
    assert _acf(level, 1) == pytest.approx(cfg.daily_phi, abs=0.06)


def test_spatial_correlation_decays_with_distance() -> None:
    cfg = VariabilityConfig(daily_sigma=0.0, weekend_ratio={t: 1.0 for t in CELL_TYPES})
    m = _mod(cfg, seed=5)
    x = np.log(_hourly(m, 100)).T  # [C, T], 16 sites x 3 cells
    c = np.corrcoef(x)
    same_site = np.mean([c[3 * s, 3 * s + 1] for s in range(16)])
    neighbour = np.mean([c[3 * s, 3 * (s + 1)] for s in range(16) if s % 4 != 3])  # 300 m
    far = c[0, 3 * 15]  # opposite corners, 1,273 m
    assert same_site == pytest.approx(cfg.shared_hourly, abs=0.08)
    assert neighbour == pytest.approx(cfg.shared_hourly * math.exp(-300.0 / cfg.hourly_range_m), abs=0.08)
    assert far < neighbour < same_site


def test_copies_draw_independent_fields() -> None:
    cfg = VariabilityConfig(weekend_ratio={t: 1.0 for t in CELL_TYPES})
    m = _mod(cfg, seed=2, copies=2)
    x = np.log(_hourly(m, 60)).T
    n = x.shape[0] // 2
    same_site_across = np.mean([np.corrcoef(x[i], x[n + i])[0, 1] for i in range(0, n, 3)])
    assert abs(same_site_across) < 0.1


def test_same_seed_same_draws_and_restart_continues_the_stream() -> None:
    a, b = _mod(seed=7), _mod(seed=7)
    fa, fb = _hourly(a, 3, 900.0), _hourly(b, 3, 900.0)
    np.testing.assert_array_equal(fa, fb)
    assert not np.allclose(fa, _hourly(_mod(seed=8), 3, 900.0))
    # out-of-order queries give the same values (drawn a day at a time, in order)
    c = _mod(seed=7)
    late = c.factor(2 * 86_400.0 + 900.0).numpy()
    np.testing.assert_array_equal(late, fb[48])
    a.restart()
    assert not np.allclose(_hourly(a, 1, 900.0), fa[:24])


def test_disabled_or_zero_sigma_is_todays_behaviour() -> None:
    cell_type, site, xs, ys = _grid()
    g = torch.Generator().manual_seed(0)
    off = TrafficConfig(variability={"enabled": False})
    assert make_modulation(off, 0.0, cell_type, site, xs, ys, 1, g) is None
    flat = VariabilityConfig(daily_sigma=0, hourly_sigma=0, weekend_ratio={t: 1.0 for t in CELL_TYPES})
    np.testing.assert_allclose(_hourly(_mod(flat), 8, 1234.0), 1.0, rtol=1e-6)


def test_start_hour_shifts_the_clock() -> None:
    a, b = _mod(seed=4), _mod(seed=4, start_hour=6.0)
    np.testing.assert_array_equal(a.factor(6 * 3600.0 + 60.0).numpy(), b.factor(60.0).numpy())


def test_bad_config_names_the_field() -> None:
    with pytest.raises(UserError, match=r"traffic\.variability\.weekend_ratio"):
        parse_scenario({"traffic": {"variability": {"weekend_ratio": {"mall": 1.0}}}})
    with pytest.raises(UserError, match=r"traffic\.variability\.hourly_phi"):
        parse_scenario({"traffic": {"variability": {"hourly_phi": 1.0}}})


def test_twin_applies_the_modulation() -> None:
    from mobileai.twin.engine import Twin

    sc = Scenario().with_updates(ues={"per_sector": 2})
    tw = Twin(sc)
    assert tw.modulation is not None
    f = tw.modulation.factor(0.0)
    assert f.shape == (tw.n_cells,)
    assert not torch.allclose(f, torch.ones_like(f))
    off = Twin(sc.with_updates(traffic={"variability": {"enabled": False}}))
    assert off.modulation is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    cell_type, site, xs, ys = _grid()
    cfg = VariabilityConfig()

    def mod(device: str) -> TrafficModulation:
        g = torch.Generator().manual_seed(11)
        return TrafficModulation(cfg, cell_type, site, xs, ys, 1, 17.0, g, device)

    cpu, gpu = mod("cpu"), mod("cuda")
    for t in (0.0, 5.0, 4000.0, 3 * 86_400.0 + 17.0):
        np.testing.assert_array_equal(cpu.factor(t).numpy(), gpu.factor(t).cpu().numpy())
