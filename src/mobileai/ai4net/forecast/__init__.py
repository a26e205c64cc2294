"""Traffic forecasting per cell (AI for Network): ``mobileai.ai4net.forecast``.

Per-cell load/traffic forecasts at the KPI period (15 min) or hourly, horizons 1 h to 24 h, with
conformalized 80 % prediction intervals. Ours is a global spatio-temporal quantile network in PyTorch
(:mod:`.model`) that also trains federated (:mod:`.federated`, FedAvg) and fine-tunes to a new area;
baselines are seasonal naive, ETS (statsmodels) and LightGBM (:mod:`.baselines`); the benchmark
(:mod:`.bench`) prints them side by side. See docs/forecast.md.

Main entry points: :func:`forecast_cells` (KPI table in, per-cell forecast DataFrame out),
:class:`NeuralForecaster` (fit / predict / fine_tune / save / load).
"""

from mobileai.ai4net.forecast.api import forecast_cells, train
from mobileai.ai4net.forecast.base import Forecast, Forecaster
from mobileai.ai4net.forecast.baselines import ETSForecaster, GBMForecaster, SeasonalNaive
from mobileai.ai4net.forecast.data import SeriesFrame, frame_from_kpis, neighbours_from_geometry
from mobileai.ai4net.forecast.model import NeuralConfig, NeuralForecaster

__all__ = [
    "ETSForecaster",
    "Forecast",
    "Forecaster",
    "GBMForecaster",
    "NeuralConfig",
    "NeuralForecaster",
    "SeasonalNaive",
    "SeriesFrame",
    "forecast_cells",
    "frame_from_kpis",
    "neighbours_from_geometry",
    "train",
]
