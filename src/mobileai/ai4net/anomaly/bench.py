"""Benchmarks: the learned detector against the fixed-threshold baseline, on the same data.

``twin_bench``: dense-urban twin histories (:func:`mobileai.data.twin_history.twin_history`);
the last simulated day of each history is the test day, the earlier days train (the normal
profile on their fault-free periods, the fault classifier on their labelled faults). Several
histories of the same network are laid end to end (each later one shifted by whole days, so the
hour of day is kept and timestamps never collide). Histories that only train (other fault
schedules over the same network, ``faults.seed``) add labelled faults without adding test days.
Scores: :mod:`mobileai.ai4net.anomaly.scoring`.

``mlmatt_bench``: the real LTE KPIs of the ML-MATT competition (``lte-anomaly-mlmatt``, label
``Unusual``), split by cell (no cell in both train and test). The data has a time of day but no
date, so the normal profile is per cell and hour, learned without labels from each cell's own
rows; the classifier sees the KPIs, their z-scores and the hour. The baseline's fixed per-KPI
thresholds are chosen on the training cells (greedy forward selection of (KPI, direction,
quantile) rules maximising the training F1), so both sides are tuned on the same training cells.
An ablation drops the profile features.

The twin benchmark also scores the profile alone, fitted without the fault log (what a user gets
on an export with no fault labels), as an ablation. All three detectors are scored alike: alarms
grouped over the same neighbour graph (:func:`mobileai.ai4net.anomaly.scoring.alarm_groups`),
per-cell alarm counts reported next to them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from mobileai.ai4net.anomaly.detector import AnomalyConfig, AnomalyModel
from mobileai.ai4net.anomaly.features import NormalProfile
from mobileai.ai4net.anomaly.labels import fault_events, period_labels
from mobileai.ai4net.anomaly.rca import localise
from mobileai.ai4net.anomaly.scoring import evaluate
from mobileai.ai4net.anomaly.threshold import ThresholdDetector
from mobileai.errors import UserError

DEFAULT_MLMATT = Path("../shared/data/lte-anomaly-mlmatt")
MLMATT_KPIS = (
    "PRBUsageUL",
    "PRBUsageDL",
    "meanThr_DL",
    "meanThr_UL",
    "maxThr_DL",
    "maxThr_UL",
    "meanUE_DL",
    "meanUE_UL",
    "maxUE_DL",
    "maxUE_UL",
    "maxUE_UL+DL",
)
BASELINE_QUANTILES = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3)


def _f1(y: np.ndarray, f: np.ndarray) -> float:
    tp = float((y & f).sum())
    return 0.0 if tp == 0 else 2 * tp / (float(y.sum()) + float(f.sum()))


# ---------------------------------------------------------------- twin
def stack_histories(
    histories: list[Any], train_only: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[tuple]]:
    """(kpis, faults, cells, [(train_start, test_start, test_end)]) of histories laid end to end.
    The last ``train_only`` histories train on all their days (test window empty: test_start =
    test_end)."""
    all_k, all_f, windows = [], [], []
    shift = pd.Timedelta(0)
    cells = histories[0].cells.to_pandas()
    for i, h in enumerate(histories):
        k = h.kpis.to_pandas()
        f = fault_events(h.events.to_pandas())
        for frame, cols in ((k, ("period_start", "period_end")), (f, ("start", "end"))):
            for c in cols:
                frame[c] = frame[c] + shift
        t0, t1 = k["period_start"].min(), k["period_end"].max()
        test0 = t1 if i >= len(histories) - train_only else t1 - pd.Timedelta(days=1)
        if test0 <= t0:
            raise UserError("twin history: at least 2 days are needed (earlier days train, the last tests)")
        windows.append((t0, test0, t1))
        all_k.append(k)
        all_f.append(f)
        shift += pd.Timedelta(days=int(np.ceil((t1 - t0) / pd.Timedelta(days=1))))
    return pd.concat(all_k, ignore_index=True), pd.concat(all_f, ignore_index=True), cells, windows


def twin_bench(
    histories: list[Any],
    config: AnomalyConfig | None = None,
    train_only: int = 0,
    baseline_quantile: float = 0.01,
    progress: Callable[[str], None] | None = None,
    save_model: Path | None = None,
) -> dict[str, Any]:
    """Fit on the earlier days of every history, score the last day of each, ours vs baseline.
    ``train_only``: the last histories of the list only train (all their days; e.g. more
    labelled fault schedules over the same network, ``faults.seed``).
    ``save_model``: also save the fitted model there, its test scores in its metrics."""
    say = progress or (lambda _m: None)
    if not 0 <= train_only < len(histories):
        raise UserError(f"train_only: {train_only} of {len(histories)} histories leaves no test day")
    kpis, faults, cells, windows = stack_histories(histories, train_only)
    test = np.zeros(len(kpis), dtype=bool)
    for _t0, test0, t1 in windows:
        test |= ((kpis["period_start"] >= test0) & (kpis["period_start"] < t1)).to_numpy()
    train_k, test_k = kpis[~test].reset_index(drop=True), kpis[test].reset_index(drop=True)
    test_starts = [w[1] for w in windows if w[1] < w[2]]
    train_f = faults[~faults["start"].apply(lambda s: any(w[1] <= s < w[2] for w in windows))]
    test_f = faults[faults["start"].apply(lambda s: any(w[1] <= s < w[2] for w in windows))]
    say(f"training on {len(train_k):,} cell-periods ({len(train_f)} faults), testing on {len(test_k):,}")
    t = time.perf_counter()
    model = AnomalyModel.fit(train_k, train_f, cells, config)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    pred = localise(model.predict(test_k), model.graph, model.config.threshold)
    pred_s = time.perf_counter() - t
    ours = evaluate(pred, faults, scored=test_f, graph=model.graph)
    normal = period_labels(train_k, train_f)["overlap"].to_numpy() == 0
    t = time.perf_counter()
    base = ThresholdDetector.fit(train_k, normal, quantile=baseline_quantile)
    base_pred = base.predict(test_k)
    base_s = time.perf_counter() - t
    theirs = evaluate(base_pred, faults, rca=False, scored=test_f, graph=model.graph)
    unsup = AnomalyModel.fit(train_k, None, cells, config)
    profile_only = evaluate(
        localise(unsup.predict(test_k), unsup.graph, unsup.config.threshold),
        faults,
        rca=False,
        scored=test_f,
        graph=model.graph,
    )
    lat = online_latency(model, test_k)
    if save_model is not None:
        model.metrics["test"] = {k: v for k, v in ours.items() if k != "per_kind"} | {"latency_ms": lat}
        model.save(save_model)
    return {
        "f1": {"ours": ours["f1"], "threshold": theirs["f1"]},
        "rca_top1": ours.get("rca_top1"),
        "rca_top3": ours.get("rca_top3"),
        "rca_top1_filtered": ours.get("rca_top1_filtered"),
        "delay_periods": ours["delay_periods_median"],
        "latency_ms_per_cell_period": lat,
        "ours": ours,
        "threshold": theirs | {"limits": {k: list(v) for k, v in base.limits.items()}},
        "ablation_profile_only_no_labels": profile_only,
        "cost": {
            "fit_s": round(fit_s, 2),
            "predict_test_day_s": round(pred_s, 3),
            "baseline_fit_predict_s": round(base_s, 3),
        },
        "data": {
            "histories": [str(getattr(h, "path", "")) for h in histories],
            "cells": int(kpis["cell_id"].nunique()),
            "train_cell_periods": len(train_k),
            "test_cell_periods": len(test_k),
            "train_faults": len(train_f),
            "test_faults": len(test_f),
            "test_days_start": [str(s) for s in test_starts],
        },
        "model": model.metrics,
    }


def online_latency(model: AnomalyModel, kpis: pd.DataFrame, periods: int = 12) -> dict[str, float]:
    """Decision latency as the closed loop sees it: one period's table (all cells) at a time,
    detection + explanation + root cause; ms per cell-period (median and max over periods)."""
    starts = sorted(kpis["period_start"].unique())
    picks = starts[:: max(1, len(starts) // periods)][:periods]
    per = []
    for s in picks:
        one = kpis[kpis["period_start"] == s]
        t = time.perf_counter()
        localise(model.predict(one), model.graph, model.config.threshold)
        per.append((time.perf_counter() - t) * 1000 / len(one))
    return {
        "median": round(float(np.median(per)), 3),
        "max": round(float(np.max(per)), 3),
        "periods": len(per),
    }


# ---------------------------------------------------------------- ML-MATT (real data)
def load_mlmatt(path: Path) -> pd.DataFrame:
    """The ML-MATT table, cleaned: numeric KPIs (spreadsheet error strings -> NaN), ``hour``,
    ``minute``, a ``period_start`` on a dummy date (the data has none) and ``label``."""
    path = Path(path)
    csv = path / "adicn_data.csv" if path.is_dir() else path
    if not csv.is_file():
        raise UserError(f"--data {path}: adicn_data.csv not found (the lte-anomaly-mlmatt folder)")
    df = pd.read_csv(csv, encoding="utf-8-sig")
    missing = [c for c in (*MLMATT_KPIS, "Time", "CellName", "Unusual") if c not in df]
    if missing:
        raise UserError(f"--data {csv}: missing column(s) {missing}")
    for c in MLMATT_KPIS:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    hm = df["Time"].astype(str).str.split(":", expand=True)
    df["hour"] = pd.to_numeric(hm[0], errors="coerce")
    df["minute"] = pd.to_numeric(hm[1], errors="coerce")
    df = df.dropna(subset=["hour", "minute"]).reset_index(drop=True)
    df["period_start"] = pd.Timestamp("2000-01-01", tz="UTC") + pd.to_timedelta(
        df["hour"] * 60 + df["minute"], unit="min"
    )
    df["cell_id"] = df["CellName"].astype(str)
    df["label"] = df["Unusual"].astype(int)
    return df


def mlmatt_features(df: pd.DataFrame) -> pd.DataFrame:
    """Raw KPIs, their robust z-scores against each cell's own hourly profile (no labels used),
    and the time of day."""
    kp = df[["period_start", "cell_id", *MLMATT_KPIS]]
    profile = NormalProfile.fit(kp, None, window_h=1)
    z = profile.zscores(kp).add_prefix("z:")
    tod = (df["hour"] * 60 + df["minute"]) * (2 * np.pi / 1440)
    return pd.concat(
        [kp[list(MLMATT_KPIS)], z, pd.DataFrame({"tod_sin": np.sin(tod), "tod_cos": np.cos(tod)})], axis=1
    )


def fit_threshold_rules(df: pd.DataFrame, y: np.ndarray) -> list[tuple[str, str, float]]:
    """Greedy forward selection of fixed (KPI, direction, limit) rules maximising training F1."""
    cands = []
    for k in MLMATT_KPIS:
        v = df[k].to_numpy(dtype=np.float64)
        normal = v[~y & np.isfinite(v)]
        for q in BASELINE_QUANTILES:
            cands.append((k, "low", float(np.quantile(normal, q))))
            cands.append((k, "high", float(np.quantile(normal, 1 - q))))
    fires = {}
    for k, d, lim in cands:
        v = df[k].to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore"):
            fires[(k, d, lim)] = (v < lim) if d == "low" else (v > lim)
    chosen: list[tuple[str, str, float]] = []
    cur = np.zeros(len(df), dtype=bool)
    best = 0.0
    while True:
        gains = {c: _f1(y, cur | f) for c, f in fires.items() if c not in chosen}
        if not gains:
            break
        c, g = max(gains.items(), key=lambda kv: kv[1])
        if g <= best + 1e-4:
            break
        chosen.append(c)
        cur |= fires[c]
        best = g
    return chosen


def apply_rules(df: pd.DataFrame, rules: list[tuple[str, str, float]]) -> np.ndarray:
    out = np.zeros(len(df), dtype=bool)
    for k, d, lim in rules:
        v = df[k].to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore"):
            out |= (v < lim) if d == "low" else (v > lim)
    return out


def _prf(y: np.ndarray, f: np.ndarray) -> dict[str, float]:
    tp = float((y & f).sum())
    p = tp / f.sum() if f.sum() else 0.0
    r = tp / y.sum() if y.sum() else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(_f1(y, f), 4)}


def _fit_binary(x: pd.DataFrame, y: np.ndarray, params: dict, rounds: int) -> lgb.Booster:
    names = [f"f{i}" for i in range(x.shape[1])]
    ds = lgb.Dataset(x.to_numpy(np.float64), label=y.astype(int), feature_name=names)
    return lgb.train(params, ds, num_boost_round=rounds)


def mlmatt_bench(
    path: Path, test_share: float = 0.3, seed: int = 0, n_estimators: int = 400
) -> dict[str, Any]:
    """Cell-split benchmark on ML-MATT: LightGBM on profile deviations vs fixed thresholds."""
    if not 0 < test_share < 1:
        raise UserError(f"test_share: {test_share} is not allowed; use 0 < test_share < 1")
    df = load_mlmatt(path)
    cells = np.array(sorted(df["cell_id"].unique()))
    rng = np.random.default_rng(seed)
    test_cells = set(rng.choice(cells, size=max(1, round(len(cells) * test_share)), replace=False))
    is_test = df["cell_id"].isin(test_cells).to_numpy()
    y = df["label"].to_numpy(dtype=bool)
    t = time.perf_counter()
    x = mlmatt_features(df)
    params = {
        "objective": "binary",
        "learning_rate": 0.05,
        "num_leaves": 63,
        "min_child_samples": 20,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "seed": seed,
        "num_threads": 1,
        "verbose": -1,
        "deterministic": True,
    }
    booster = _fit_binary(x[~is_test], y[~is_test], params, n_estimators)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    xt = x[is_test].to_numpy(np.float64)
    proba = booster.predict(xt)
    pred_ms = (time.perf_counter() - t) * 1000 / max(1, len(xt))
    ours = proba >= 0.5
    contrib = booster.predict(xt, pred_contrib=True)[:, :-1]
    mean_abs = np.abs(contrib).mean(axis=0)
    top = [(x.columns[j], round(float(mean_abs[j]), 4)) for j in np.argsort(-mean_abs)[:8]]
    t = time.perf_counter()
    rules = fit_threshold_rules(df[~is_test], y[~is_test])
    base = apply_rules(df[is_test], rules)
    base_s = time.perf_counter() - t
    yt = y[is_test]
    raw = [*MLMATT_KPIS, "tod_sin", "tod_cos"]
    ablation = _fit_binary(x.loc[~is_test, raw], y[~is_test], params, n_estimators)
    no_profile = ablation.predict(x.loc[is_test, raw].to_numpy(np.float64)) >= 0.5
    return {
        "f1": {"ours": _prf(yt, ours)["f1"], "threshold": _prf(yt, base)["f1"]},
        "ours": _prf(yt, ours),
        "threshold": _prf(yt, base) | {"rules": [[k, d, round(v, 4)] for k, d, v in rules]},
        "ablation_lightgbm_without_profile": _prf(yt, no_profile),
        "explanation_top_features_mean_abs_shap": top,
        "cost": {
            "fit_s": round(fit_s, 2),
            "predict_ms_per_row": round(pred_ms, 4),
            "baseline_fit_s": round(base_s, 2),
        },
        "data": {
            "path": str(path),
            "rows": len(df),
            "cells": len(cells),
            "test_cells": sorted(test_cells),
            "train_rows": int((~is_test).sum()),
            "test_rows": int(is_test.sum()),
            "test_unusual_share": round(float(yt.mean()), 4),
            "split": f"by cell, {test_share:.0%} of cells to test, seed {seed}",
        },
    }
