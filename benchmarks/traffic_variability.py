"""Variability of measured cellular traffic around its daily profile: the numbers the twin's
traffic modulation (``traffic.variability``, src/mobileai/twin/traffic.py) is calibrated on.

Decomposition per series of hourly volumes ``y[d, h]`` (day d, hour h), in log space::

    log y[d, h] = p[class(d), h] + l[d] + e[d, h]

``p``: mean log profile per hour and day class (weekday / weekend, where the data holds >= 2 weeks);
``l[d]``: the day's level (mean over its hours of log y - p); ``e``: the hour-scale residual.
Reported per data set (median over series, with the inter-quartile range): the weekend/weekday
volume ratio, the standard deviation and lag-1 autocorrelation (across days) of the daily level,
the standard deviation of ``e`` and its autocorrelation at lags 1..6 h (within days) with the
AR(1) / Ornstein-Uhlenbeck fit phi = acf(1) (a discretely sampled OU process is an AR(1):
x_{t+1} = phi x_t + sqrt(1 - phi^2) sigma eps, phi = exp(-dt / tau); C. W. Gardiner, *Stochastic
Methods*, 4th ed., 2009, sec. 3.8.4), and the correlation of ``e`` and ``l`` between neighbouring
series (Milan: the published adjacency; Barcelona: the three sites over their common days).

Run::

    .venv/bin/python benchmarks/traffic_variability.py --data ../shared/data [--json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mobileai.ai4net.forecast.data import BARCELONA_SITES, SeriesFrame, aggregate, load_barcelona, load_milan
from mobileai.twin.config import CELL_TYPES, VariabilityConfig
from mobileai.twin.traffic import DIURNAL, TrafficModulation

LAGS = 6
#: Side of a Milan grid square (Barlacchi et al. 2015: 100 x 100 squares of about 235 m).
MILAN_SQUARE_KM = 0.235


def day_matrix(frame: SeriesFrame) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """Hourly values as [days, 24, series] over the whole calendar days of ``frame`` (NaN kept)."""
    hourly = aggregate(frame, pd.Timedelta(hours=1))
    t0 = hourly.times[0]
    first = 0 if t0.hour == 0 else 24 - t0.hour
    n_days = (len(hourly.times) - first) // 24
    vals = hourly.values[first : first + n_days * 24]
    return vals.reshape(n_days, 24, -1), hourly.times[first : first + n_days * 24 : 24]


def decompose(y: np.ndarray, days: pd.DatetimeIndex, weekly: bool) -> dict[str, np.ndarray]:
    """Log decomposition of ``y[days, 24]`` (one series) into profile, daily level and residual.

    Days with a missing or non-positive hour are dropped. Returns ``level[d]``, ``resid[d, 24]``,
    ``weekend[d]`` (bool) and ``ratio`` (mean weekend / mean weekday daily volume, NaN if not weekly)."""
    ok = np.all(np.isfinite(y) & (y > 0), axis=1)
    y, days = y[ok], days[ok]
    weekend = np.asarray(days.day_of_week >= 5)
    logy = np.log(y)
    cls = weekend if weekly else np.zeros(len(y), dtype=bool)
    prof = np.zeros_like(logy)
    for c in (False, True):
        if np.any(cls == c):
            prof[cls == c] = logy[cls == c].mean(axis=0)
    dev = logy - prof
    level = dev.mean(axis=1)
    resid = dev - level[:, None]
    totals = y.sum(axis=1)
    ratio = float(totals[weekend].mean() / totals[~weekend].mean()) if weekly and weekend.any() else np.nan
    return {"level": level, "resid": resid, "weekend": weekend, "ratio": np.array(ratio), "ok": ok}


def acf_within_days(resid: np.ndarray, lags: int = LAGS) -> np.ndarray:
    """Autocorrelation of the residual at lags 1..``lags`` hours, pairs taken inside each day."""
    var = float(np.mean(resid**2))
    return np.array([np.mean(resid[:, k:] * resid[:, :-k]) / var for k in range(1, lags + 1)])


def series_stats(y: np.ndarray, days: pd.DatetimeIndex, weekly: bool) -> dict:
    d = decompose(y, days, weekly)
    lv, rs = d["level"], d["resid"]
    acf = acf_within_days(rs)
    return {
        "days": len(lv),
        "weekend_ratio": float(d["ratio"]),
        "level_sigma": float(lv.std(ddof=1)),
        "level_acf1": float(np.corrcoef(lv[1:], lv[:-1])[0, 1]) if len(lv) > 3 else np.nan,
        "resid_sigma": float(rs.std(ddof=1)),
        "acf": acf.tolist(),
        "ar1_phi": float(acf[0]),
        "work_share": float(np.nansum(y[:, 9:18]) / np.nansum(y)),
    }


def neighbour_corr(decs: list[dict], adj: np.ndarray) -> dict[str, float]:
    """Mean correlation of residuals and daily levels over neighbour pairs (adj > 0) and all pairs.

    Series must share their valid days (checked)."""
    n = len(decs)
    out: dict[str, list[float]] = {"resid_nb": [], "level_nb": [], "resid_all": [], "level_all": []}
    for i in range(n):
        for j in range(i + 1, n):
            common = decs[i]["ok"] & decs[j]["ok"]
            ri = decs[i]["resid"][common[decs[i]["ok"]]].ravel()
            rj = decs[j]["resid"][common[decs[j]["ok"]]].ravel()
            li = decs[i]["level"][common[decs[i]["ok"]]]
            lj = decs[j]["level"][common[decs[j]["ok"]]]
            cr, cl = np.corrcoef(ri, rj)[0, 1], np.corrcoef(li, lj)[0, 1]
            out["resid_all"].append(cr)
            out["level_all"].append(cl)
            if adj[i, j] > 0 or adj[j, i] > 0:
                out["resid_nb"].append(cr)
                out["level_nb"].append(cl)
    return {k: float(np.nanmean(v)) if v else float("nan") for k, v in out.items()}


def corr_by_distance(decs: list[dict], side: int, km_per_square: float) -> dict[str, list[float]]:
    """Residual and daily-level correlation vs centre distance on a ``side`` x ``side`` grid (row-major
    series), and the least-squares fit ``corr(d) = s exp(-d / L)`` (log-linear, pairs at d > 0)."""
    pos = np.array([(i // side, i % side) for i in range(side * side)], dtype=float) * km_per_square
    bins: dict[float, list[tuple[float, float]]] = {}
    for i in range(len(decs)):
        for j in range(i + 1, len(decs)):
            d = round(float(np.hypot(*(pos[i] - pos[j]))), 3)
            cr = np.corrcoef(decs[i]["resid"].ravel(), decs[j]["resid"].ravel())[0, 1]
            cl = np.corrcoef(decs[i]["level"], decs[j]["level"])[0, 1]
            bins.setdefault(d, []).append((cr, cl))
    ds = np.array(sorted(bins))
    cr = np.array([np.mean([v[0] for v in bins[d]]) for d in ds])
    cl = np.array([np.mean([v[1] for v in bins[d]]) for d in ds])
    out: dict[str, list[float]] = {
        "distance_km": ds.tolist(),
        "resid": cr.round(3).tolist(),
        "level": cl.round(3).tolist(),
    }
    for name, c in (("resid", cr), ("level", cl)):
        ok = c > 0.02
        slope, icpt = np.polyfit(ds[ok], np.log(c[ok]), 1)
        out[f"{name}_fit_s_L_km"] = [float(np.exp(icpt)), float(-1.0 / slope)]
    return out


def summary(rows: list[dict]) -> dict:
    keys = ("days", "weekend_ratio", "level_sigma", "level_acf1", "resid_sigma", "ar1_phi")
    out = {}
    for k in keys:
        v = np.array([r[k] for r in rows], dtype=float)
        out[k] = [float(np.nanmedian(v)), float(np.nanpercentile(v, 25)), float(np.nanpercentile(v, 75))]
    acf = np.array([r["acf"] for r in rows])
    out["acf_median"] = np.median(acf, axis=0).round(3).tolist()
    return out


def measure(root: Path) -> dict:
    res: dict = {}
    milan = load_milan(root / "milan-dgrn")
    y, days = day_matrix(milan)
    weekly = len(days) >= 14
    decs = [decompose(y[:, :, i], days, weekly) for i in range(y.shape[2])]
    rows = [series_stats(y[:, :, i], days, weekly) for i in range(y.shape[2])]
    res["milan"] = {
        "summary": summary(rows),
        "spatial": neighbour_corr(decs, milan.adjacency),
        "by_distance": corr_by_distance(decs, 5, MILAN_SQUARE_KM),
        "series": {n: r for n, r in zip(milan.names, rows, strict=True)},
    }
    # weekend ratio vs the share of the day's volume in working hours (9-17 h), applied to the twin's
    # diurnal curves (extrapolated beyond Milan's most office-like square: capped at its ratio)
    ws = np.array([r["work_share"] for r in rows])
    wr = np.array([r["weekend_ratio"] for r in rows])
    slope, icpt = np.polyfit(ws, wr, 1)
    twin = {}
    for t, prof in DIURNAL.items():
        share = float(np.sum(prof[9:18]) / np.sum(prof))
        twin[t] = {"work_share": round(share, 3), "fit": round(float(icpt + slope * share), 3)}
    res["milan"]["weekend_vs_work_share"] = {
        "intercept": float(icpt),
        "slope": float(slope),
        "r": float(np.corrcoef(ws, wr)[0, 1]),
        "work_share_range": [float(ws.min()), float(ws.max())],
        "ratio_at_max_work_share": float(wr[np.argmax(ws)]),
        "twin_types": twin,
    }
    # Barcelona: train + test concatenated per site, 2 min -> hourly
    frames = {s: load_barcelona(root / "barcelona-lte-pdcch", s)[0] for s in BARCELONA_SITES}
    b_rows, b_decs = {}, {}
    for s, f in frames.items():
        yb, db = day_matrix(f)
        wk = len(db) >= 14
        b_rows[s] = series_stats(yb[:, :, 0], db, wk)
        b_decs[s] = (decompose(yb[:, :, 0], db, wk), db)
    # spatial: residuals on common calendar days
    common = set.intersection(*(set(d[1][d[0]["ok"]]) for d in b_decs.values()))
    sub = []
    for s in BARCELONA_SITES:
        dec, db = b_decs[s]
        mask = np.isin(db[dec["ok"]], sorted(common))
        sub.append(
            {"resid": dec["resid"][mask], "level": dec["level"][mask], "ok": np.ones(int(mask.sum()), bool)}
        )
    res["barcelona"] = {
        "summary": summary(list(b_rows.values())),
        "spatial": {**neighbour_corr(sub, np.ones((3, 3))), "common_days": len(common)},
        "series": b_rows,
    }
    return res


def simulated_stats(cfg: VariabilityConfig, days: int = 400, seed: int = 0) -> dict[str, float]:
    """The statistics of :func:`series_stats` measured on the twin's own modulation (16 sites x 3
    cells, weekly factor off), pooled over cells: what the estimator sees for given parameters."""
    cfg = cfg.model_copy(update={"weekend_ratio": {t: 1.0 for t in CELL_TYPES}})
    n = 4
    xs = torch.tensor([(i % n) * 300.0 for i in range(n * n)], dtype=torch.float64)
    ys = torch.tensor([(i // n) * 300.0 for i in range(n * n)], dtype=torch.float64)
    site = torch.arange(n * n).repeat_interleave(3)
    m = TrafficModulation(
        cfg, torch.zeros_like(site), site, xs, ys, 1, 0.0, torch.Generator().manual_seed(seed)
    )
    f = torch.stack([m.factor(h * 3600.0) for h in range(days * 24)]).double().numpy()
    y = f.reshape(days, 24, -1)
    idx = pd.date_range("2026-01-05", periods=days, freq="D")
    rows = [series_stats(y[:, :, i], idx, False) for i in range(y.shape[2])]
    return {
        k: float(np.mean([r[k] for r in rows]))
        for k in ("level_sigma", "level_acf1", "resid_sigma", "ar1_phi")
    }


def calibrate(target: dict[str, float], iterations: int = 6) -> VariabilityConfig:
    """Indirect inference: the model parameters whose draws, analysed like the data, reproduce the
    measured medians. The decomposition biases the raw numbers (the within-day demeaning lowers the
    residual's std and autocorrelation; the day's mean of the hourly process leaks into the daily
    level), so the parameters are corrected by fixed-point steps on simulated draws."""
    cfg = VariabilityConfig(
        daily_sigma=target["level_sigma"], daily_phi=min(target["level_acf1"], 0.95),
        hourly_sigma=target["resid_sigma"], hourly_phi=min(target["ar1_phi"], 0.95),
    )  # fmt: skip
    pairs = (("daily_sigma", "level_sigma"), ("daily_phi", "level_acf1"), ("hourly_sigma", "resid_sigma"),
             ("hourly_phi", "ar1_phi"))  # fmt: skip
    for _ in range(iterations):
        sim = simulated_stats(cfg)
        upd = {p: float(np.clip(getattr(cfg, p) * target[k] / sim[k], 0.0, 0.95)) for p, k in pairs}
        cfg = cfg.model_copy(update=upd)
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    res = measure(args.data)
    med = {k: v[0] for k, v in res["milan"]["summary"].items() if k != "acf_median"}
    fit = calibrate(med)
    keys = ("daily_sigma", "daily_phi", "hourly_sigma", "hourly_phi")
    res["twin_calibration"] = {
        "milan_median": med,
        "parameters": {k: round(getattr(fit, k), 3) for k in keys},
        "reproduces": simulated_stats(fit, seed=1),
    }
    if args.json:
        print(json.dumps(res, indent=1))
        return
    for name, r in res.items():
        if name == "twin_calibration":
            print("== twin calibration (indirect inference on the Milan medians)", r)
            continue
        print(f"== {name}")
        for k, v in r["summary"].items():
            print(f"  {k:15s} {v}")
        print("  spatial", {k: round(v, 3) for k, v in r["spatial"].items()})
        if "by_distance" in r:
            print("  by distance", r["by_distance"])
            print("  weekend ratio vs work-hours share", r["weekend_vs_work_share"])
        ws = [(v["work_share"], v["weekend_ratio"]) for v in r["series"].values()]
        print("  (work-hours share, weekend ratio) per series", [tuple(round(x, 3) for x in w) for w in ws])


if __name__ == "__main__":
    main()
