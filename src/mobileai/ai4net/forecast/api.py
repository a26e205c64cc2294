"""Per-cell forecasts from a KPI table: the call other apps make (e.g. energy saving asks for each
cell's load over the next hours).

``forecast_cells(kpis, kpi, horizon_periods)`` trains :class:`~.model.NeuralForecaster` on the table's
history (last day, or the last quarter of a shorter history, held out for early stopping and interval
calibration) unless a fitted ``model`` is given, and returns one row per cell and future period:
``cell_id, period_start, mean, lo80, hi80``. ``mean`` is the point forecast (the model's median,
which minimises MAE); ``lo80``/``hi80`` bound a conformalized 80 % prediction interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from mobileai.ai4net.forecast.base import targets
from mobileai.ai4net.forecast.baselines import SeasonalNaive
from mobileai.ai4net.forecast.data import SeriesFrame, aggregate, frame_from_kpis
from mobileai.ai4net.forecast.metrics import coverage, scores
from mobileai.ai4net.forecast.model import NeuralConfig, NeuralForecaster
from mobileai.errors import UserError

FORECAST_COLUMNS = ("cell_id", "period_start", "mean", "lo80", "hi80")


@dataclass
class Trained:
    """A fitted model, the frame it saw and its validation scores next to seasonal naive's."""

    model: NeuralForecaster
    frame: SeriesFrame
    metrics: dict


def split_for(frame: SeriesFrame, horizon: int) -> tuple[int, int]:
    """(fit_end, val_end): the last day (or the last quarter, if shorter) is the validation split."""
    T = frame.values.shape[0]
    val = min(frame.steps_per_day, T // 4)
    if T - val < 2 or val < 1:
        raise UserError(f"history too short to forecast: {T} periods; need at least 8 periods")
    return T - val, T


def prepare(
    kpis: pa.Table | pd.DataFrame,
    kpi: str,
    cells: pa.Table | pd.DataFrame | None = None,
    period: pd.Timedelta | None = None,
) -> SeriesFrame:
    frame = frame_from_kpis(kpis, kpi, cells)
    return aggregate(frame, period) if period is not None and period != frame.step else frame


def train(frame: SeriesFrame, horizon: int, config: NeuralConfig | dict | None = None) -> Trained:
    """Fit ours on ``frame`` and score it (and seasonal naive) on the validation split."""
    if horizon < 1:
        raise UserError(f"horizon: {horizon} periods is not allowed; need >= 1")
    fit_end, val_end = split_for(frame, horizon)
    model = NeuralForecaster(config).fit(frame, fit_end, val_end, horizon)
    origins = np.arange(max(0, fit_end - 1), val_end - 1)
    y = targets(frame, origins, horizon)
    t = origins[:, None] + np.arange(1, horizon + 1)[None, :]
    y = np.where((t < val_end)[..., None], y, np.nan)
    ours = model.predict(frame, origins, horizon)
    naive = SeasonalNaive().predict(frame, origins, horizon)
    metrics = {
        "split": "validation (in-sample for calibration: the interval offset was fitted here)",
        "ours": scores(y, ours.mean),
        "seasonal_naive": scores(y, naive.mean),
        "coverage80": coverage(y, ours.lo, ours.hi),
        "periods": int(frame.values.shape[0]),
        "cells": len(frame.names),
        "step_s": frame.step.total_seconds(),
    }
    return Trained(model, frame, metrics)


def forecast_frame(model: NeuralForecaster, frame: SeriesFrame, horizon: int) -> pd.DataFrame:
    """Forecast the ``horizon`` periods after the frame's last period, for every series."""
    origin = frame.values.shape[0] - 1
    f = model.predict(frame, np.array([origin]), horizon)
    starts = frame.times[-1] + frame.step * np.arange(1, horizon + 1)
    n = len(frame.names)
    assert f.lo is not None and f.hi is not None
    return pd.DataFrame(
        {
            "cell_id": np.repeat(np.array(frame.names, dtype=object), horizon),
            "period_start": starts[np.tile(np.arange(horizon), n)],
            "mean": f.mean[0].T.reshape(-1),
            "lo80": f.lo[0].T.reshape(-1),
            "hi80": f.hi[0].T.reshape(-1),
        }
    )


def forecast_cells(
    kpis: pa.Table | pd.DataFrame,
    kpi: str,
    horizon_periods: int,
    model: NeuralForecaster | None = None,
    *,
    cells: pa.Table | pd.DataFrame | None = None,
    period: pd.Timedelta | None = None,
    config: NeuralConfig | dict | None = None,
) -> pd.DataFrame:
    """DataFrame ``[cell_id, period_start, mean, lo80, hi80]`` for the ``horizon_periods`` periods after
    the last one in ``kpis`` (periods of ``period`` if given, else the table's own).

    ``cells`` (``cell_id``, ``x_m``, ``y_m``) gives the neighbour graph; without it each cell is
    forecast from its own history only.
    """
    frame = prepare(kpis, kpi, cells, period)
    if model is None:
        model = train(frame, horizon_periods, config).model
    return forecast_frame(model, frame, horizon_periods)
