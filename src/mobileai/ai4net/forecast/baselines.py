"""Baselines every forecast is scored against, on the same origins and targets.

- :class:`SeasonalNaive`: the value at the same time of day on the most recent observed day
  (Hyndman & Athanasopoulos, FPP3 ch. 5.2), what a planner reads off yesterday's dashboard.
- :class:`SimilarDayNaive`: the same on the most recent day of the target's calendar class
  (weekday / weekend), so a Monday is read off Friday, not Sunday (the similar-day method).
- :class:`ETSForecaster`: Holt-Winters exponential smoothing with additive error and additive daily
  seasonality, no trend, ETS(A,N,A) (FPP3 ch. 8.3), fitted per series by statsmodels
  (``statsmodels.tsa.holtwinters.ExponentialSmoothing``). Smoothing parameters and initial states are
  estimated once on the data before the test; the states at each origin then come from running the
  same filter with those parameters over the series (one-step updates use only the past), and the
  h-step forecast is ``level[o] + season[o + h - m * ceil(h / m)]``.
- :class:`GBMForecaster`: one global LightGBM model (Ke et al., NeurIPS 2017) over all series and
  horizons on the leak-free features of :mod:`.features`, L1 objective, early stopping on the
  validation split: the strong tabular baseline of the M5 competition (Makridakis et al., IJF 2022).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from mobileai.ai4net.forecast.base import Forecast, check_split
from mobileai.ai4net.forecast.data import SeriesFrame
from mobileai.ai4net.forecast.features import build_design, is_weekend, training_pairs


def _ffill(x: np.ndarray) -> np.ndarray:
    """Carry the last observation forward (leak-free gap filling); leading gaps take the first value."""
    out = x.copy()
    ok = np.isfinite(out)
    if not ok.any():
        return np.zeros_like(out)
    idx = np.where(ok, np.arange(len(out)), 0)
    np.maximum.accumulate(idx, out=idx)
    out = out[idx]
    out[: np.argmax(ok)] = x[np.argmax(ok)]
    return out


def _latest_day(
    v: np.ndarray, t: np.ndarray, D: int, keep: Callable[[np.ndarray], np.ndarray] | None = None
) -> np.ndarray:
    """Values [O, H, N] at targets ``t`` [O, H] on the most recent of the last 8 whole days back
    that is observed (before the origin: at least ceil(h / D) days for horizon h = column + 1)
    and, with ``keep``, whose step ``keep`` accepts; NaN where none is."""
    h = np.arange(1, t.shape[1] + 1)
    k0 = -(-h // D)
    out = np.full((*t.shape, v.shape[1]), np.nan)
    for extra in range(7, -1, -1):  # fill from older to newer so the most recent day wins
        idx = t - (k0 + extra)[None, :] * D
        ok = idx >= 0 if keep is None else keep(idx) & (idx >= 0)
        got = np.where(ok[..., None], v[np.clip(idx, 0, None)], np.nan)
        out = np.where(np.isfinite(got), got, out)
    return out


class SeasonalNaive:
    """ŷ(o + h) = y(o + h - k·day), the most recent observed day (k >= ceil(h / day)); the last observed
    value where no such day exists."""

    name = "seasonal_naive"

    def fit(self, frame: SeriesFrame, fit_end: int, val_end: int, horizon: int) -> SeasonalNaive:
        return self

    def predict(self, frame: SeriesFrame, origins: np.ndarray, horizon: int) -> Forecast:
        v, D = frame.values, frame.steps_per_day
        o = np.asarray(origins, dtype=np.int64)
        h = np.arange(1, horizon + 1)
        out = _latest_day(v, o[:, None] + h[None, :], D)
        last = np.stack([_ffill(v[:, j]) for j in range(v.shape[1])], axis=1)[o]
        out = np.where(np.isfinite(out), out, last[:, None, :])
        return Forecast(out, o)


class SimilarDayNaive:
    """Seasonal naive over days of the target's calendar class (weekday / weekend): ŷ(o + h) is the
    value at the same time on the most recent observed day of that class among the last 8 (so a
    Monday is forecast from Friday); falls back to :class:`SeasonalNaive` where none is observed.
    The similar-day method of load forecasting (T. Hong, S. Fan, Int. J. Forecasting 32(3), 2016)."""

    name = "similar_day"

    def fit(self, frame: SeriesFrame, fit_end: int, val_end: int, horizon: int) -> SimilarDayNaive:
        return self

    def predict(self, frame: SeriesFrame, origins: np.ndarray, horizon: int) -> Forecast:
        v, D = frame.values, frame.steps_per_day
        o = np.asarray(origins, dtype=np.int64)
        h = np.arange(1, horizon + 1)
        t = o[:, None] + h[None, :]
        t_weekend = is_weekend(frame, t)
        out = _latest_day(v, t, D, lambda idx: is_weekend(frame, idx) == t_weekend)
        fallback = SeasonalNaive().predict(frame, o, horizon).mean
        return Forecast(np.where(np.isfinite(out), out, fallback), o)


class ETSForecaster:
    """ETS(A,N,A) per series by statsmodels; see the module docstring."""

    name = "ets"

    def __init__(self, max_fit_days: float = 14.0) -> None:
        self.max_fit_days = max_fit_days
        self._params: list[dict] = []
        self._start = 0

    def fit(self, frame: SeriesFrame, fit_end: int, val_end: int, horizon: int) -> ETSForecaster:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        check_split(frame, fit_end, val_end)
        D = frame.steps_per_day
        if val_end < 2 * D:
            raise ValueError(f"ETS needs two days of history before the test, got {val_end} steps")
        self._start = max(0, val_end - int(self.max_fit_days * D))
        init = "estimated" if D <= 96 else "heuristic"
        self._params = []
        for j in range(frame.values.shape[1]):
            y = _ffill(frame.values[self._start : val_end, j])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = ExponentialSmoothing(
                    y, trend=None, seasonal="add", seasonal_periods=D, initialization_method=init
                ).fit()
            p = res.params
            self._params.append(
                {
                    k: p[k]
                    for k in ("smoothing_level", "smoothing_seasonal", "initial_level", "initial_seasons")
                }
            )
        return self

    def predict(self, frame: SeriesFrame, origins: np.ndarray, horizon: int) -> Forecast:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        if not self._params:
            raise RuntimeError("ETSForecaster.predict before fit")
        o = np.asarray(origins, dtype=np.int64)
        if o.min() < self._start:
            raise ValueError(f"ETS states start at step {self._start}; origin {o.min()} is earlier")
        D = frame.steps_per_day
        h = np.arange(1, horizon + 1)
        out = np.empty((len(o), horizon, frame.values.shape[1]))
        end = int(o.max()) + 1
        for j, p in enumerate(self._params):
            y = _ffill(frame.values[self._start : end, j])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = ExponentialSmoothing(
                    y,
                    trend=None,
                    seasonal="add",
                    seasonal_periods=D,
                    initialization_method="known",
                    initial_level=p["initial_level"],
                    initial_seasonal=p["initial_seasons"],
                ).fit(
                    smoothing_level=p["smoothing_level"],
                    smoothing_seasonal=p["smoothing_seasonal"],
                    optimized=False,
                )
            rel = o - self._start
            season_idx = rel[:, None] + h[None, :] - D * (-(-h // D))[None, :]
            out[:, :, j] = res.level[rel][:, None] + res.season[season_idx]
        return Forecast(out, o)


class GBMForecaster:
    """Global LightGBM direct multi-horizon model (L1 objective) on the features of :mod:`.features`."""

    name = "gbm"

    def __init__(self, weekly: bool = False, max_rows: int = 400_000, seed: int = 0) -> None:
        self.weekly, self.max_rows, self.seed = weekly, max_rows, seed
        self._model = None

    def _rows(self, frame: SeriesFrame, lo: int, hi: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        origins = np.arange(max(0, lo - horizon), hi - 1)
        d = build_design(frame, origins, horizon, self.weekly)
        pairs = training_pairs(d, lo, hi)
        X = d.X[pairs].reshape(-1, d.X.shape[-1])
        y = d.Y[pairs].reshape(-1)
        ok = np.isfinite(y)
        return X[ok], y[ok]

    def fit(self, frame: SeriesFrame, fit_end: int, val_end: int, horizon: int) -> GBMForecaster:
        return self.fit_many([(frame, fit_end, val_end)], horizon)

    def fit_many(self, parts: list[tuple[SeriesFrame, int, int]], horizon: int) -> GBMForecaster:
        """One model over several areas' rows (pooled), each with its own fit/validation split."""
        import lightgbm as lgb

        fit_rows, val_rows = [], []
        for frame, fit_end, val_end in parts:
            check_split(frame, fit_end, val_end)
            fit_rows.append(self._rows(frame, 0, fit_end, horizon))
            val_rows.append(self._rows(frame, fit_end, val_end, horizon))
        Xf, yf = np.concatenate([r[0] for r in fit_rows]), np.concatenate([r[1] for r in fit_rows])
        Xv, yv = np.concatenate([r[0] for r in val_rows]), np.concatenate([r[1] for r in val_rows])
        rng = np.random.default_rng(self.seed)
        if len(yf) > self.max_rows:
            keep = rng.choice(len(yf), self.max_rows, replace=False)
            Xf, yf = Xf[keep], yf[keep]
        self._model = lgb.LGBMRegressor(
            objective="l1",
            n_estimators=2000,
            learning_rate=0.05,
            num_leaves=31,
            min_child_samples=20,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.9,
            random_state=self.seed,
            n_jobs=1,
            verbose=-1,
        )
        self._model.fit(Xf, yf, eval_X=(Xv,), eval_y=(yv,), callbacks=[lgb.early_stopping(50, verbose=False)])
        return self

    def predict(self, frame: SeriesFrame, origins: np.ndarray, horizon: int) -> Forecast:
        if self._model is None:
            raise RuntimeError("GBMForecaster.predict before fit")
        d = build_design(frame, np.asarray(origins), horizon, self.weekly)
        pred = self._model.predict(d.X.reshape(-1, d.X.shape[-1])).reshape(d.Y.shape)
        return Forecast(pred * d.scale[:, None, :], d.origins)
