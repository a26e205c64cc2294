"""Forecast benchmark: ours next to seasonal naive, ETS and LightGBM on the same origins and targets.

Protocol (held-out days, never tuned on the test split): each series' history is split into
fit / validation / test in time. Models train on targets before ``fit_end``; the validation split
(the last day before the test, or 15 % of the training history if longer) serves early stopping and
the conformal interval calibration; test targets are forecast from origins inside the test period,
each model reading only the data up to its origin.

- Twin (default): ``twin_history("dense-urban", days=4)``, one KPI per cell aggregated hourly;
  fit on targets of the first 2 days, validate on day 3, forecast the last 24 hours from one origin
  (day-ahead, horizons 1..24 h).
- Real data (``--data``): Barcelona LTE PDCCH (train on ``<site>.csv``, test on ``<site>_test.csv``;
  downlink bytes at 2 minutes with 1 h horizons from hourly origins, and hourly with 24 h horizons
  from every hour), Milan grid (last 10 % of the 30 days as test; 10 minutes with 1 h horizons,
  hourly with 24 h horizons); federated (FedAvg) vs per-site vs pooled training over the three
  Barcelona sites; transfer to a site with two days of history (scratch, zero-shot, fine-tuned).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mobileai.ai4net.forecast.base import Forecast, targets
from mobileai.ai4net.forecast.baselines import ETSForecaster, GBMForecaster, SeasonalNaive, SimilarDayNaive
from mobileai.ai4net.forecast.data import (
    BARCELONA_SITES,
    SeriesFrame,
    aggregate,
    frame_from_kpis,
    load_barcelona,
    load_milan,
)
from mobileai.ai4net.forecast.federated import Client, fedavg
from mobileai.ai4net.forecast.metrics import coverage, mae, profile_oracle_gain, scores
from mobileai.ai4net.forecast.model import NeuralConfig, NeuralForecaster
from mobileai.errors import UserError

MODELS = ("seasonal_naive", "ets", "gbm", "ours")
TWIN_TARGETS = {"mae_below_naive": 0.30, "coverage80": (0.75, 0.85), "latency_ms_per_cell": 10.0}
REAL_TARGETS = {"mae_below_naive": 0.20}
Progress = Callable[[str], None] | None


@dataclass
class Task:
    """One benchmark series set: frame, first test step, horizon, origin stride."""

    name: str
    frame: SeriesFrame
    test_start: int
    horizon: int
    stride: int

    @property
    def weekly(self) -> bool:
        return self.test_start >= 14 * self.frame.steps_per_day

    def split(self) -> tuple[int, int]:
        D = self.frame.steps_per_day
        val = max(D, int(0.15 * self.test_start))
        return self.test_start - val, self.test_start

    def origins(self) -> np.ndarray:
        T = self.frame.values.shape[0]
        return np.arange(self.test_start - 1, T - 1, self.stride)

    def test_targets(self, origins: np.ndarray) -> np.ndarray:
        y = targets(self.frame, origins, self.horizon)
        t = origins[:, None] + np.arange(1, self.horizon + 1)[None, :]
        return np.where((t >= self.test_start)[..., None], y, np.nan)


def _say(progress: Progress, msg: str) -> None:
    if progress is not None:
        progress(msg)


def make_model(name: str, task: Task, config: NeuralConfig | None = None):  # type: ignore[no-untyped-def]
    if name == "seasonal_naive":
        return SeasonalNaive()
    if name == "similar_day":
        return SimilarDayNaive()
    if name == "ets":
        return ETSForecaster()
    if name == "gbm":
        return GBMForecaster(weekly=task.weekly)
    cfg = (config or NeuralConfig()).model_copy(update={"weekly": task.weekly})
    return NeuralForecaster(cfg)


def per_series_mae(y: np.ndarray, pred: np.ndarray) -> list[float]:
    return [mae(y[..., j], pred[..., j]) for j in range(y.shape[-1])]


def latency_ms_per_cell(
    model: NeuralForecaster, frame: SeriesFrame, origin: int, horizon: int, repeats: int = 20
) -> float:
    """Median wall time of one forecast for every cell from ``origin``, divided by the cells."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.predict(frame, np.array([origin]), horizon)
        times.append(time.perf_counter() - t0)
    return 1000.0 * float(np.median(times)) / len(frame.names)


def evaluate_task(
    task: Task,
    config: NeuralConfig | None = None,
    progress: Progress = None,
    models: tuple[str, ...] = MODELS,
) -> dict:
    """Fit every model on the task's fit/validation split and score it on the test targets."""
    fit_end, val_end = task.split()
    origins = task.origins()
    y = task.test_targets(origins)
    out: dict = {
        "task": task.name,
        "series": list(task.frame.names),
        "step": str(task.frame.step),
        "horizon_steps": task.horizon,
        "origins": len(origins),
        "test_points": int(np.isfinite(y).sum()),
        "split": {
            "fit_end": str(task.frame.times[fit_end]),
            "test_start": str(task.frame.times[val_end]),
            "end": str(task.frame.times[-1]),
        },
        "mae": {},
        "rmse": {},
        "nrmse": {},
        "per_series_mae": {},
        "fit_s": {},
        "predict_s": {},
        # what knowing each series' exact daily profile would gain over seasonal naive (diagnostic)
        "profile_oracle_gain": profile_oracle_gain(task.frame.values, task.frame.steps_per_day),
    }
    fitted: dict = {}
    for name in models:
        _say(progress, f"{task.name}: {name}")
        m = make_model(name, task, config)
        t0 = time.perf_counter()
        m.fit(task.frame, fit_end, val_end, task.horizon)
        t1 = time.perf_counter()
        f: Forecast = m.predict(task.frame, origins, task.horizon)
        t2 = time.perf_counter()
        s = scores(y, f.mean)
        for k in ("mae", "rmse", "nrmse"):
            out[k][name] = s[k]
        out["per_series_mae"][name] = per_series_mae(y, f.mean)
        out["fit_s"][name], out["predict_s"][name] = round(t1 - t0, 3), round(t2 - t1, 4)
        if name == "ours":
            out["coverage80"] = coverage(y, f.lo, f.hi)
            out["ours_training"] = {k: v for k, v in m.info.items() if k != "metrics"}
        fitted[name] = m
    if "ours" in fitted and "seasonal_naive" in out["mae"]:
        out["ours_vs_naive"] = 1.0 - out["mae"]["ours"] / out["mae"]["seasonal_naive"]
        out["latency_ms_per_cell"] = latency_ms_per_cell(
            fitted["ours"], task.frame, int(origins[0]), task.horizon
        )
    out["_models"] = fitted
    return out


def _public(result: dict) -> dict:
    return {k: v for k, v in result.items() if not k.startswith("_")}


# ---- twin
def twin_task(
    kpi: str = "DRB.PdcpSduVolumeDL", scenario: str = "dense-urban", days: int = 8, progress: Progress = None
) -> Task:
    """Hourly ``kpi`` per cell of the twin history (cached; generated on first use, which takes about
    an hour of one core for 8 days of dense-urban); test = the last 24 hours, one origin."""
    from mobileai.data.twin_history import twin_history

    shown = {"pct": -1}

    def on_progress(frac: float) -> None:
        pct = int(frac * 20) * 5
        if pct > shown["pct"]:
            shown["pct"] = pct
            _say(progress, f"twin history {scenario}, {days} days: {pct} % simulated")

    h = twin_history(scenario, days=days, on_progress=on_progress)
    frame = aggregate(frame_from_kpis(h.kpis, kpi, h.cells), pd.Timedelta(hours=1))
    D = frame.steps_per_day
    T = frame.values.shape[0]
    if T < 3 * D:
        raise UserError(f"twin history has {T} hours; the day-ahead benchmark needs at least 3 days")
    return Task(f"twin {scenario} {kpi} hourly", frame, T - D, D, D)


def run_twin_bench(
    kpi: str = "DRB.PdcpSduVolumeDL",
    progress: Progress = None,
    config: NeuralConfig | None = None,
    task: Task | None = None,
    days: int = 8,
) -> dict:
    torch.set_num_threads(1)
    task = task or twin_task(kpi, progress=progress, days=days)
    # the similar-day rule shows how much of a gain the calendar alone explains (twin: weekly cycle)
    r = _public(evaluate_task(task, config, progress, (*MODELS, "similar_day")))
    gain = r["ours_vs_naive"]
    lo, hi = TWIN_TARGETS["coverage80"]
    r["targets"] = {
        "mae_below_naive": {
            "target": TWIN_TARGETS["mae_below_naive"],
            "got": gain,
            "met": gain >= TWIN_TARGETS["mae_below_naive"],
        },
        "mae_below_gbm": {"met": r["mae"]["ours"] < r["mae"]["gbm"]},
        "coverage80": {"target": [lo, hi], "got": r["coverage80"], "met": lo <= r["coverage80"] <= hi},
        "latency_ms_per_cell": {
            "target": TWIN_TARGETS["latency_ms_per_cell"],
            "got": r["latency_ms_per_cell"],
            "met": r["latency_ms_per_cell"] < TWIN_TARGETS["latency_ms_per_cell"],
        },
    }
    r["kpi"] = kpi
    r["history_days"] = task.frame.values.shape[0] // task.frame.steps_per_day
    return r


# ---- real data
def barcelona_tasks(root: Path) -> list[Task]:
    tasks = []
    for site in BARCELONA_SITES:
        f, test = load_barcelona(root, site)
        tasks.append(Task(f"barcelona {site} down 2min", f, test, 30, 30))
        t0 = f.times[test]
        fh = aggregate(f, pd.Timedelta(hours=1))
        tasks.append(Task(f"barcelona {site} down hourly", fh, int(np.searchsorted(fh.times, t0)), 24, 1))
    return tasks


def milan_tasks(root: Path) -> list[Task]:
    f = load_milan(root)
    test = len(f.times) - round(0.1 * len(f.times))
    fh = aggregate(f, pd.Timedelta(hours=1))
    test_h = int(np.searchsorted(fh.times, f.times[test]))
    return [Task("milan 10min", f, test, 6, 6), Task("milan hourly", fh, test_h, 24, 1)]


def federated_compare(
    tasks: list[Task],
    per_site: dict[str, dict],
    config: NeuralConfig | None = None,
    progress: Progress = None,
) -> dict:
    """FedAvg over the sites vs. per-site models vs. one model trained on the pooled data."""
    cfg = config or NeuralConfig()
    horizon = tasks[0].horizon
    out: dict = {"sites": [t.frame.names[0] for t in tasks], "mae": {}}
    _say(progress, "federated: pooled")
    t0 = time.perf_counter()
    pooled = NeuralForecaster(cfg).fit_many([(t.frame, *t.split()) for t in tasks], horizon)
    out["pooled_fit_s"] = round(time.perf_counter() - t0, 2)
    _say(progress, "federated: pooled LightGBM (reference)")
    gbm_pooled = GBMForecaster().fit_many([(t.frame, *t.split()) for t in tasks], horizon)
    _say(progress, "federated: FedAvg")
    clients = [Client(t.frame.names[0], t.frame, *t.split(), horizon, cfg) for t in tasks]
    t0 = time.perf_counter()
    fed = fedavg(clients, rounds=30, local_epochs=1, config=cfg)
    out["fedavg_fit_s"] = round(time.perf_counter() - t0, 2)
    out["fedavg_rounds"] = fed.rounds_run
    out["fedavg_messages"] = len(fed.messages)
    for t in tasks:
        site = t.frame.names[0]
        origins = t.origins()
        y = t.test_targets(origins)
        fm = fed.model_for(site, cfg, horizon).predict(t.frame, origins, horizon)
        pm = pooled.predict(t.frame, origins, horizon)
        ps = per_site[t.name]
        out["mae"][site] = {
            "per_site": ps["mae"]["ours"],
            "pooled": mae(y, pm.mean),
            "fedavg": mae(y, fm.mean),
            "seasonal_naive": ps["mae"]["seasonal_naive"],
            "gbm": ps["mae"]["gbm"],
            "gbm_pooled": mae(y, gbm_pooled.predict(t.frame, origins, horizon).mean),
        }
        out["mae"][site]["fedavg_coverage80"] = coverage(y, fm.lo, fm.hi)
    return out


def transfer_compare(
    tasks: list[Task],
    target: str,
    days: int = 2,
    config: NeuralConfig | None = None,
    progress: Progress = None,
) -> dict:
    """A new site with ``days`` of history: scratch vs. zero-shot (trained on the other sites) vs.
    fine-tuned from that pre-trained model."""
    cfg = config or NeuralConfig()
    by_site = {t.frame.names[0]: t for t in tasks}
    t = by_site[target]
    D = t.frame.steps_per_day
    start = t.test_start - days * D
    small = t.frame.window(start, t.frame.values.shape[0])
    small_task = Task(t.name + f" ({days} days)", small, t.test_start - start, t.horizon, t.stride)
    fit_end, val_end = small_task.split()
    origins = small_task.origins()
    y = small_task.test_targets(origins)
    _say(progress, f"transfer to {target}: pre-training on the other sites")
    others = [(o.frame, *o.split()) for s, o in by_site.items() if s != target]
    pre = NeuralForecaster(cfg).fit_many(others, t.horizon)
    zero = pre.predict(small, origins, t.horizon)
    _say(progress, f"transfer to {target}: scratch and fine-tune on {days} days")
    scratch = NeuralForecaster(cfg).fit(small, fit_end, val_end, t.horizon).predict(small, origins, t.horizon)
    tuned_model = pre.fine_tune(small, fit_end, val_end, epochs=15)
    tuned = tuned_model.predict(small, origins, t.horizon)
    naive = SeasonalNaive().predict(small, origins, t.horizon)
    return {
        "site": target,
        "history_days": days,
        "mae": {
            "seasonal_naive": mae(y, naive.mean),
            "scratch": mae(y, scratch.mean),
            "zero_shot": mae(y, zero.mean),
            "fine_tuned": mae(y, tuned.mean),
        },
        "coverage80_fine_tuned": coverage(y, tuned.lo, tuned.hi),
    }


def resolve_data(path: Path) -> dict[str, Path]:
    """The dataset folders under ``path`` (or ``path`` itself when it is one of them)."""
    path = Path(path)
    names = ("barcelona-lte-pdcch", "milan-dgrn")
    if path.name in names and path.is_dir():
        return {path.name: path}
    found = {n: path / n for n in names if (path / n).is_dir()}
    if not found:
        raise UserError(f"--data {path}: neither {names[0]}/ nor {names[1]}/ found there")
    return found


def run_real_bench(
    data: Path, config: NeuralConfig | None = None, progress: Progress = None, federated: bool = True
) -> dict:
    torch.set_num_threads(1)
    folders = resolve_data(data)
    tasks: list[Task] = []
    if "barcelona-lte-pdcch" in folders:
        tasks += barcelona_tasks(folders["barcelona-lte-pdcch"])
    if "milan-dgrn" in folders:
        tasks += milan_tasks(folders["milan-dgrn"])
    results = [evaluate_task(t, config, progress) for t in tasks]
    out: dict = {"tasks": [_public(r) for r in results]}
    rows = []
    for r in results:
        for j, s in enumerate(r["series"]):
            ps = {m: r["per_series_mae"][m][j] for m in r["per_series_mae"]}
            rows.append({"task": r["task"], "series": s, **ps})
    target = REAL_TARGETS["mae_below_naive"]
    out["series"] = rows
    out["summary"] = {
        "series": len(rows),
        "ours_20pct_below_naive": sum(r["ours"] <= (1 - target) * r["seasonal_naive"] for r in rows),
        "ours_below_gbm": sum(r["ours"] < r["gbm"] for r in rows),
        "ours_below_ets": sum(r["ours"] < r["ets"] for r in rows),
        "median_gain_vs_naive": float(np.median([1 - r["ours"] / r["seasonal_naive"] for r in rows])),
        "median_ratio_to_gbm": float(np.median([r["ours"] / r["gbm"] for r in rows])),
    }
    if federated and "barcelona-lte-pdcch" in folders:
        fine = [t for t in tasks if t.name.startswith("barcelona") and t.name.endswith("2min")]
        per_site = {r["task"]: r for r in results if r["task"] in {t.name for t in fine}}
        out["federated"] = federated_compare(fine, per_site, config, progress)
        out["transfer"] = transfer_compare(fine, "ElBorn", 2, config, progress)
    return out
