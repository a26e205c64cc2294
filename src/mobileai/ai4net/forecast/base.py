"""The contract every forecaster keeps (baselines and ours), and the forecast it returns.

``fit(frame, fit_end, val_end, horizon)`` learns from targets in ``[0, fit_end)`` and may use
``[fit_end, val_end)`` for early stopping and interval calibration; ``predict(frame, origins,
horizon)`` forecasts steps ``o + 1 .. o + horizon`` from each origin ``o`` reading ``values[: o + 1]``
only. Indices are time steps of the frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from mobileai.ai4net.forecast.data import SeriesFrame


@dataclass
class Forecast:
    """``mean[O, H, N]`` point forecasts and (when the model gives them) ``lo``/``hi`` 80 % bounds."""

    mean: np.ndarray
    origins: np.ndarray
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None


class Forecaster(Protocol):
    name: str

    def fit(self, frame: SeriesFrame, fit_end: int, val_end: int, horizon: int) -> Forecaster: ...

    def predict(self, frame: SeriesFrame, origins: np.ndarray, horizon: int) -> Forecast: ...


def targets(frame: SeriesFrame, origins: np.ndarray, horizon: int) -> np.ndarray:
    """The observed values ``y[o + h]`` as ``[O, H, N]`` (NaN past the end)."""
    t = np.asarray(origins)[:, None] + np.arange(1, horizon + 1)[None, :]
    T = frame.values.shape[0]
    y = frame.values[np.clip(t, 0, T - 1)]
    return np.where((t < T)[..., None], y, np.nan)


def check_split(frame: SeriesFrame, fit_end: int, val_end: int) -> None:
    T = frame.values.shape[0]
    if not 0 < fit_end < val_end <= T:
        raise ValueError(f"need 0 < fit_end ({fit_end}) < val_end ({val_end}) <= {T} steps")
