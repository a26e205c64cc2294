"""Direct multi-horizon design: one feature vector per (origin, horizon, series), leak-free.

A forecast made at origin ``o`` (the last observed step) for target step ``t = o + h`` may read
``values[: o + 1]`` only; every feature below indexes the past of ``o`` (tests perturb the future and
check nothing changes). Features are scaled by the series' mean over the day up to ``o`` (instance
normalisation, as in RevIN: Kim et al., ICLR 2022), so one global model serves cells of any size
and transfers to a new area. The design follows the direct strategy of multi-horizon forecasting
(Taieb et al., "A review and comparison of strategies for multi-step ahead time series
forecasting", 2012) with the seasonal lags of Hyndman & Athanasopoulos, FPP3 ch. 7.4:

- recent level: last value, means over the last hour and the last 4 hours;
- seasonal lags: the target's time of day on the 3 most recent days that are already observed, their
  mean over up to 7 days, and (``weekly``) the same time one week earlier;
- how today differs from yesterday at the origin (last hour vs. the same hour a day before);
- the target's time of day (2 harmonics), day of week (``weekly``) and the horizon;
- the calendar class of the target's day (weekday / weekend: Saturday and Sunday) and the
  *similar-day* lag, the target's time of day on the most recent observed day of the same class;
  the seasonal reference the network corrects is the mean over the same-class days among the last
  7 (all 7 when none is of that class). This is the similar-day method of load forecasting (days
  of the same type are the references; T. Hong, S. Fan, "Probabilistic electric load forecasting:
  a tutorial review", Int. J. Forecasting 32(3), 2016, sec. 3), and it needs no weekly lag: a
  Monday is forecast from the last Friday even with 4 days of history. Office cells carry about
  half their weekday traffic at weekends (docs/models.md, "Traffic variability").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mobileai.ai4net.forecast.data import SeriesFrame

SEASON_DAYS = 7
EPS = 1e-6


@dataclass(frozen=True)
class Design:
    """``X[O, H, N, F]`` features, ``Y[O, H, N]`` scaled targets (NaN past the data), ``scale[O, N]``,
    ``base[O, H, N, 2]`` the seasonal and the recent reference the network blends and corrects,
    ``origins[O]``."""

    X: np.ndarray
    Y: np.ndarray
    scale: np.ndarray
    base: np.ndarray
    origins: np.ndarray
    names: tuple[str, ...]


def feature_names(weekly: bool) -> tuple[str, ...]:
    names = [
        "last",
        "mean_1h",
        "mean_4h",
        "lag_d1",
        "lag_d1_ok",
        "lag_d2",
        "lag_d2_ok",
        "lag_d3",
        "lag_d3_ok",
        "season_mean",
        "season_count",
        "delta_vs_yesterday",
        "delta_ok",
        "tod_sin1",
        "tod_cos1",
        "tod_sin2",
        "tod_cos2",
        "horizon_days",
        "target_weekend",
        "lag_similar",
        "lag_similar_ok",
    ]
    if weekly:
        names += ["lag_w1", "lag_w1_ok", "dow_sin", "dow_cos"]
    return tuple(names)


def _window_mean(csum: np.ndarray, ccnt: np.ndarray, end: np.ndarray, width: int) -> np.ndarray:
    """Mean of values[end - width + 1 : end + 1] (NaN-aware) from padded cumulative sums."""
    end = np.maximum(end, -1)
    start = np.maximum(end - width + 1, 0)
    s = csum[end + 1] - csum[start]
    c = ccnt[end + 1] - ccnt[start]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c > 0, s / np.maximum(c, 1), np.nan)


def is_weekend(frame: SeriesFrame, idx: np.ndarray) -> np.ndarray:
    """Whether step ``idx`` (any integers, also outside the frame) falls on a Saturday or Sunday."""
    ns = frame.times[0].value + np.asarray(idx, dtype=np.int64).reshape(-1) * frame.step.value
    dow = pd.DatetimeIndex(ns, tz=frame.times.tz).day_of_week.to_numpy()
    return (dow >= 5).reshape(np.shape(idx))


def build_design(frame: SeriesFrame, origins: np.ndarray, horizon: int, weekly: bool) -> Design:
    """Features for every origin in ``origins`` and every horizon 1..``horizon``."""
    v = frame.values
    T, N = v.shape
    o = np.asarray(origins, dtype=np.int64)
    if o.size and (o.min() < 0 or o.max() >= T):
        raise ValueError(f"origins must lie in 0..{T - 1}")
    D, q = frame.steps_per_day, frame.steps_per_hour
    h = np.arange(1, horizon + 1, dtype=np.int64)
    t = o[:, None] + h[None, :]  # [O, H]

    filled = np.nan_to_num(v, nan=0.0)
    csum = np.vstack([np.zeros((1, N)), np.cumsum(filled, axis=0)])
    ccnt = np.vstack([np.zeros((1, N)), np.cumsum(~np.isnan(v), axis=0)])

    def past(idx: np.ndarray) -> np.ndarray:
        """values[idx] for idx <= origin (NaN where idx < 0); idx broadcast to [..., N]."""
        ok = idx >= 0
        out = v[np.clip(idx, 0, T - 1)]
        return np.where(ok[..., None], out, np.nan)

    scale = _window_mean(csum, ccnt, o, D)  # [O, N]
    scale = np.where(np.isfinite(scale) & (np.abs(scale) > EPS), np.abs(scale), 1.0)
    s3 = scale[:, None, :]

    def norm(x: np.ndarray) -> np.ndarray:
        return x / (s3 if x.ndim == 3 else scale)

    last = norm(past(o))
    m1 = norm(_window_mean(csum, ccnt, o, q))
    m4 = norm(_window_mean(csum, ccnt, o, 4 * q))
    d0 = -(-h // D)  # first whole number of days back that is already observed
    lags, oks = [], []
    for k in range(3):
        lag = norm(past(t - (d0 + k) * D))
        oks.append(np.isfinite(lag).astype(np.float64))
        lags.append(np.nan_to_num(lag, nan=0.0))
    seas = np.stack([norm(past(t - (d0 + k) * D)) for k in range(SEASON_DAYS)], axis=0)
    count = np.isfinite(seas).sum(axis=0)
    with np.errstate(invalid="ignore"):
        season_mean = np.where(count > 0, np.nansum(seas, axis=0) / np.maximum(count, 1), np.nan)
    # similar days: the lags whose day has the target's calendar class (weekday / weekend)
    t_weekend = is_weekend(frame, t)  # [O, H]
    same = np.stack([is_weekend(frame, t - (d0 + k) * D) == t_weekend for k in range(SEASON_DAYS)])
    sim = np.where(same[..., None], seas, np.nan)  # [K, O, H, N]
    sim_count = np.isfinite(sim).sum(axis=0)
    with np.errstate(invalid="ignore"):
        sim_mean = np.where(sim_count > 0, np.nansum(sim, axis=0) / np.maximum(sim_count, 1), np.nan)
    first = np.argmax(np.isfinite(sim), axis=0)  # most recent observed similar day
    lag_sim = np.take_along_axis(sim, first[None], axis=0)[0]
    lag_sim_ok = np.isfinite(lag_sim).astype(np.float64)
    yday = _window_mean(csum, ccnt, o - D, q)
    yday = np.where((o - D)[:, None] >= 0, yday, np.nan)
    delta = m1 - norm(yday)
    delta_ok = np.isfinite(delta).astype(np.float64)

    tt = frame.times[0] + pd.to_timedelta(t.reshape(-1) * frame.step.value, unit="ns")
    tod = ((tt.hour * 3600 + tt.minute * 60 + tt.second) / 86400.0).to_numpy().reshape(t.shape)
    n_o, H = t.shape

    def per_series(x: np.ndarray) -> np.ndarray:  # [O, H] -> [O, H, N]
        return np.broadcast_to(x[..., None], (n_o, H, N))

    def per_horizon(x: np.ndarray) -> np.ndarray:  # [O, N] -> [O, H, N]
        return np.broadcast_to(x[:, None, :], (n_o, H, N))

    recent_fill = np.nan_to_num(m1, nan=1.0)
    cols = [
        per_horizon(np.nan_to_num(last, nan=1.0)),
        per_horizon(recent_fill),
        per_horizon(np.nan_to_num(m4, nan=1.0)),
        lags[0],
        oks[0],
        lags[1],
        oks[1],
        lags[2],
        oks[2],
        np.nan_to_num(season_mean, nan=0.0),
        count / SEASON_DAYS,
        per_horizon(np.nan_to_num(delta, nan=0.0)),
        per_horizon(delta_ok),
        per_series(np.sin(2 * np.pi * tod)),
        per_series(np.cos(2 * np.pi * tod)),
        per_series(np.sin(4 * np.pi * tod)),
        per_series(np.cos(4 * np.pi * tod)),
        per_series(np.broadcast_to(h[None, :] / D, (n_o, H)).astype(np.float64)),
        per_series(t_weekend.astype(np.float64)),
        np.nan_to_num(lag_sim, nan=0.0),
        lag_sim_ok,
    ]
    if weekly:
        wk = norm(past(t - (-(-h // (7 * D))) * 7 * D))
        dow = ((tt.dayofweek.to_numpy() + tod.reshape(-1)) / 7.0).reshape(t.shape)
        cols += [
            np.nan_to_num(wk, nan=0.0),
            np.isfinite(wk).astype(np.float64),
            per_series(np.sin(2 * np.pi * dow)),
            per_series(np.cos(2 * np.pi * dow)),
        ]
    X = np.clip(np.stack(cols, axis=-1), -50.0, 50.0).astype(np.float32)
    seasonal_ref = np.where(
        sim_count > 0, sim_mean, np.where(count > 0, season_mean, per_horizon(recent_fill))
    )
    base = np.stack([seasonal_ref, per_horizon(recent_fill)], axis=-1)
    target = np.where((t < T)[..., None], v[np.clip(t, 0, T - 1)], np.nan) / s3
    return Design(
        X,
        target.astype(np.float32),
        scale,
        np.clip(base, -50, 50).astype(np.float32),
        o,
        feature_names(weekly),
    )


def training_pairs(design: Design, lo: int, hi: int) -> np.ndarray:
    """Mask ``[O, H]`` of (origin, horizon) pairs whose target step lies in ``[lo, hi)``."""
    H = design.Y.shape[1]
    t = design.origins[:, None] + np.arange(1, H + 1)[None, :]
    return (t >= lo) & (t < hi)
