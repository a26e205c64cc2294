"""Forecast scores over all (origin, horizon, series) points with an observed target.

MAE, RMSE and NRMSE (RMSE / mean of the observed targets) as in Hyndman & Koehler, "Another look at
measures of forecast accuracy", IJF 2006; interval coverage is the share of targets inside
``[lo, hi]`` (the empirical coverage of Gneiting & Raftery, JASA 2007).
"""

from __future__ import annotations

import numpy as np


def _valid(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return np.isfinite(y) & np.isfinite(pred)


def mae(y: np.ndarray, pred: np.ndarray) -> float:
    ok = _valid(y, pred)
    return float(np.mean(np.abs(y[ok] - pred[ok]))) if ok.any() else float("nan")


def rmse(y: np.ndarray, pred: np.ndarray) -> float:
    ok = _valid(y, pred)
    return float(np.sqrt(np.mean((y[ok] - pred[ok]) ** 2))) if ok.any() else float("nan")


def nrmse(y: np.ndarray, pred: np.ndarray) -> float:
    ok = _valid(y, pred)
    if not ok.any():
        return float("nan")
    level = float(np.mean(np.abs(y[ok])))
    return rmse(y, pred) / level if level > 0 else float("nan")


def coverage(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    ok = np.isfinite(y) & np.isfinite(lo) & np.isfinite(hi)
    return float(np.mean((y[ok] >= lo[ok]) & (y[ok] <= hi[ok]))) if ok.any() else float("nan")


def scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {"mae": mae(y, pred), "rmse": rmse(y, pred), "nrmse": nrmse(y, pred)}


def profile_oracle_gain(values: np.ndarray, steps_per_day: int) -> float:
    """How far below seasonal naive (MAE) a forecaster that knew each series' exact daily profile,
    and nothing else, would be: ``1 - E|x - mu| / E|x_d - x_(d-1)|``.

    ``values[T, N]`` (T >= 3 full days; a partial last day is dropped); ``mu`` is the per-series,
    per-time-of-day mean over the days, and the residuals are scaled by ``sqrt(n / (n - 1))`` to undo
    the mean's own noise (exact for independent day-to-day deviations). If each day is the profile
    plus independent noise, this is the best any forecaster can do against day-ahead seasonal naive
    (1 - 1/sqrt(2) = 29.3 % for Gaussian noise, more for heavy tails); structure within a day (e.g.
    correlated deviations over hours) or across days (weekly seasonality, level shifts) can beat it.
    A diagnostic of the data, computed on all of it (test included), not a forecast."""
    days = values.shape[0] // steps_per_day
    if days < 3:
        return float("nan")
    x = values[: days * steps_per_day].reshape(days, steps_per_day, -1)
    mu = np.nanmean(x, axis=0)
    resid = np.abs(x - mu) * np.sqrt(days / (days - 1))
    diff = np.abs(np.diff(x, axis=0))
    denom = float(np.nanmean(diff))
    return 1.0 - float(np.nanmean(resid)) / denom if denom > 0 else float("nan")
