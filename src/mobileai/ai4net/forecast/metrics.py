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
