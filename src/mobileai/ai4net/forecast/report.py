"""Human-readable tables of the forecast benchmark (the JSON of :mod:`.bench` is the source)."""

from __future__ import annotations

MODEL_ORDER = ("seasonal_naive", "similar_day", "ets", "gbm", "ours")


def _fmt(v: float) -> str:
    return f"{v:,.4g}" if abs(v) < 1e5 else f"{v:,.3e}"


def format_task(r: dict) -> list[str]:
    lines = [
        f"[bold]{r['task']}[/bold]  {len(r['series'])} series, horizon {r['horizon_steps']} x {r['step']}, "
        f"{r['origins']} origins, {r['test_points']:,} test points"
    ]
    lines.append(f"  {'model':15s} {'MAE':>12s} {'RMSE':>12s} {'NRMSE':>7s} {'fit s':>8s}")
    for m in MODEL_ORDER:
        if m in r["mae"]:
            lines.append(
                f"  {m:15s} {_fmt(r['mae'][m]):>12s} {_fmt(r['rmse'][m]):>12s} "
                f"{r['nrmse'][m]:7.3f} {r['fit_s'][m]:8.1f}"
            )
    if "ours_vs_naive" in r:
        lines.append(
            f"  ours vs seasonal naive: {r['ours_vs_naive']:+.1%} MAE reduction; 80 % interval "
            f"coverage {r['coverage80']:.1%}; latency {r['latency_ms_per_cell']:.3f} ms per cell"
        )
    if r.get("profile_oracle_gain") == r.get("profile_oracle_gain"):  # not NaN
        lines.append(
            f"  a forecaster that knew each series' exact daily profile: {r['profile_oracle_gain']:+.1%} "
            "vs seasonal naive (diagnostic of the data, see profile_oracle_gain)"
        )
    return lines


def format_twin(r: dict) -> str:
    lines = format_task(r)
    for name, t in r["targets"].items():
        lines.append(
            f"  target {name}: {'[green]met[/green]' if t['met'] else '[red]missed[/red]'}"
            + (f" (got {t['got']:.3g}, target {t['target']})" if "got" in t else "")
        )
    return "\n".join(lines)


def format_real(r: dict) -> str:
    lines = []
    for t in r["tasks"]:
        lines += format_task(t)
    s = r["summary"]
    lines.append(
        f"[bold]summary[/bold] over {s['series']} series: ours >= 20 % below seasonal naive on "
        f"{s['ours_20pct_below_naive']}, below GBM on {s['ours_below_gbm']}, below ETS on "
        f"{s['ours_below_ets']}; median gain vs naive {s['median_gain_vs_naive']:.1%}, median "
        f"MAE ratio to GBM {s['median_ratio_to_gbm']:.3f}"
    )
    if "federated" in r:
        f = r["federated"]
        lines.append(f"[bold]federated[/bold] (Barcelona 2-min, MAE; FedAvg {f['fedavg_rounds']} rounds)")
        for site, m in f["mae"].items():
            lines.append(
                f"  {site:10s} per-site {_fmt(m['per_site'])}  pooled {_fmt(m['pooled'])}  "
                f"FedAvg {_fmt(m['fedavg'])}  (naive {_fmt(m['seasonal_naive'])}, gbm {_fmt(m['gbm'])})"
            )
    if "transfer" in r:
        t = r["transfer"]
        lines.append(
            f"[bold]transfer[/bold] to {t['site']} with {t['history_days']} days: "
            + "  ".join(f"{k} {_fmt(v)}" for k, v in t["mae"].items())
        )
    return "\n".join(lines)
