"""HTML report of ``mobileai run``: baseline arm vs apps arm on the same seeded scenario.

Sections: the comparison table (energy, throughput, handover failures, RLFs, SLA violations,
actions, rollbacks), per-period plots of both arms, what the guardrails did (decisions by
verdict, rollbacks with the KPI that triggered them, approvals), each app's own explanation, and
an excerpt of the audit log. Plots are matplotlib PNGs embedded in the page.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from mobileai.agent.audit import record_cell
from mobileai.data.report import _CSS, _e, _fmt, _img, _mpl, _png, _table
from mobileai.data.timeline_report import _stairs, _time_axis
from mobileai.twin.timeline import Timeline

COLOURS = {"baseline": "#7f7f7f", "apps": "#1f77b4"}

ROWS = (
    ("energy_kwh", "RAN energy", "kWh", "lower"),
    ("dl_volume_gbit", "DL traffic served", "Gbit", "higher"),
    ("ul_volume_gbit", "UL traffic served", "Gbit", "higher"),
    ("ue_thp_dl_mbps", "DL user throughput (mean)", "Mbit/s", "higher"),
    ("ue_thp_dl_p5_mbps", "DL user throughput p5 (cell mean)", "Mbit/s", "higher"),
    ("ho_attempts", "HO attempts", "count", None),
    ("ho_failures", "HO failures", "count", "lower"),
    ("ping_pongs", "ping-pongs", "count", "lower"),
    ("rlfs", "radio link failures", "count", "lower"),
    ("sessions_blocked", "sessions blocked", "count", "lower"),
    ("sessions_dropped", "sessions dropped", "count", "lower"),
    ("sla_violations", "SLA violations (cell-periods, p5 < SLA)", "count", "lower"),
    ("actions_applied", "actions applied", "count", None),
    ("actions_rejected", "actions rejected (limits, conflicts, approval)", "count", None),
    ("approvals_asked", "approvals asked", "count", None),
    ("rollbacks", "rollbacks by the KPI guard", "count", None),
)


def _network(tl: Timeline, name: str, how: str = "sum") -> np.ndarray:
    return tl.network(name, how) if name in tl.kpis else np.zeros(tl.n_periods)


def _weighted(tl: Timeline, name: str, weight: str) -> np.ndarray:
    v, w = tl.kpis.get(name), tl.kpis.get(weight)
    if v is None or w is None:
        return np.zeros(tl.n_periods)
    ok = np.isfinite(v) & np.isfinite(w) & (w > 0)
    num = np.where(ok, v * w, 0).sum(1)
    den = np.where(ok, w, 0).sum(1)
    return np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0)


def plot_arms(results: dict[str, dict[str, Any]]) -> bytes:
    """Energy, DL user throughput, traffic and failures per period, both arms."""
    plt = _mpl()
    fig, axes = plt.subplots(4, 1, figsize=(9, 10), sharex=True)
    for arm, r in results.items():
        tl: Timeline = r["timeline"]
        kw = {"color": COLOURS[arm], "label": f"{arm}: {', '.join(r['apps']) or 'no apps'}"}
        _stairs(axes[0], tl, _network(tl, "PEE.Energy"), **kw)
        _stairs(axes[1], tl, _weighted(tl, "DRB.UEThpDl", "DRB.MeanActiveUeDl") / 1000.0, **kw)
        _stairs(axes[2], tl, _network(tl, "DRB.PdcpSduVolumeDL") / 1000.0, **kw)
        bad = _network(tl, "mobileai.HoFail") + _network(tl, "mobileai.Rlf")
        _stairs(axes[3], tl, bad, **kw)
    axes[0].set_ylabel("energy, kWh")
    axes[1].set_ylabel("DL user thp, Mbit/s")
    axes[2].set_ylabel("DL served, Gbit")
    axes[3].set_ylabel("HO failures + RLFs")
    for ax in axes:
        _time_axis(ax, results["baseline"]["timeline"])
        ax.set_ylim(bottom=0)
    axes[0].legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def plot_actions(results: dict[str, dict[str, Any]]) -> bytes:
    """Decisions per period by verdict and rollbacks, apps arm (and baseline if it has apps)."""
    plt = _mpl()
    arms = [a for a, r in results.items() if r["apps"]]
    fig, axes = plt.subplots(len(arms), 1, figsize=(9, 2.6 * len(arms)), squeeze=False)
    verdicts = ("applied", "rejected", "conflict", "denied", "not_applied")
    colours = dict(zip(verdicts, ("#2ca02c", "#ff7f0e", "#9467bd", "#d62728", "#8c564b"), strict=True))
    for ax, arm in zip(axes[:, 0], arms, strict=True):
        recs = results[arm]["audit"]
        tl: Timeline = results[arm]["timeline"]
        n = tl.n_periods
        bottom = np.zeros(n)
        x = np.arange(n)
        for v in verdicts:
            counts = np.zeros(n)
            for r in recs:
                if r["kind"] == "decision" and r["verdict"] == v and r["period"] < n:
                    counts[r["period"]] += 1
            if counts.any():
                ax.bar(x, counts, bottom=bottom, color=colours[v], label=v, width=0.8)
                bottom += counts
        rb = np.zeros(n)
        ends = tl.end_s
        for r in recs:
            if r["kind"] == "rollback":
                i = int(np.searchsorted(ends, r["t_s"] - 1e-6))
                if i < n:
                    rb[i] += 1
        if rb.any():
            hit = rb > 0
            ax.plot(x[hit], rb[hit], "kv", label="rollbacks (count)", markersize=6)
        ax.set_title(f"{arm}: decisions per period by guardrail verdict", fontsize=10)
        ax.set_xlabel("reporting period")
        ax.set_ylabel("decisions")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    return _png(fig)


def _comparison_table(summary: dict[str, Any]) -> str:
    b, o = summary["arms"]["baseline"], summary["arms"]["apps"]
    rows = []
    for key, label, unit, better in ROWS:
        rel = summary["relative_change"].get(key)
        change = "-" if rel is None else f"{rel:+.1%}"
        if rel is not None and better is not None and abs(rel) > 1e-9:
            good = (rel < 0) == (better == "lower")
            change += " (better)" if good else " (worse)"
        rows.append([label, unit, _fmt(b[key], 3), _fmt(o[key], 3), change])
    return _table(["KPI", "unit", "baseline", "apps", "change"], rows)


def _audit_rows(records: list[dict[str, Any]], limit: int = 60) -> str:
    rows = []
    for r in records:
        if r["kind"] not in ("decision", "rollback"):
            continue
        a = r.get("action", {})
        cell = record_cell(a)
        what = {k: v for k, v in a.items() if k not in ("kind", "cell", "source")}
        if r["kind"] == "rollback":
            rows.append(
                [
                    r["seq"],
                    f"{r['t_s'] / 60:.0f}",
                    r["app"],
                    cell,
                    a.get("kind"),
                    "rolled back",
                    json.dumps(r["kpis"]),
                ]
            )
        else:
            note = f" [{r['note']}]" if r.get("note") and r["verdict"] != "applied" else ""
            action = f"{a.get('kind')} {json.dumps(what)}"
            rows.append(
                [r["seq"], f"{r['t_s'] / 60:.0f}", r["app"], cell, action, r["verdict"], r["reason"] + note]
            )
        if len(rows) >= limit:
            break
    if not rows:
        return "<p>No decisions.</p>"
    return _table(["seq", "min", "app", "cell", "action", "verdict", "reason"], rows, left=7)


def build_run_report(
    summary: dict[str, Any], results: dict[str, dict[str, Any]]
) -> tuple[str, dict[str, bytes]]:
    """The HTML page and its figures (name -> PNG bytes)."""
    figs = {"arms": plot_arms(results)}
    if any(r["apps"] for r in results.values()):
        figs["actions"] = plot_actions(results)
    title = f"mobileai run: {summary['scenario']}, baseline vs apps"
    base_apps = ", ".join(summary["arms"]["baseline"]["apps"]) or "none (static configuration)"
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p class='sub'>Same scenario and seed ({summary['seed']}) twice, "
        f"{summary['duration_s'] / 3600:g} h "
        f"of network time with {summary['report_period_s'] / 60:g}-min reporting periods. Baseline: "
        f"{_e(base_apps)}. Apps: {_e(', '.join(summary['arms']['apps']['apps']))}. Approver: "
        f"{_e(summary['approver'])} (approval from impact {_e(summary['approval_level'])}).</p>",
        "<h2>Comparison</h2>",
        _comparison_table(summary),
        f"<p>SLA: a cell-period with active UEs whose 5th-percentile DL user throughput is below "
        f"{summary['sla_p5_mbps']:g} Mbit/s. Throughputs are means over cell-periods weighted by "
        "active UEs. Definitions in docs/closed-loop.md.</p>",
        "<h2>Per period</h2>",
        _img("arms", figs["arms"], "per-period KPIs of both arms"),
    ]
    if "actions" in figs:
        parts += ["<h2>Guardrails at work</h2>", _img("actions", figs["actions"], "decisions by verdict")]
    for arm in ("baseline", "apps"):
        loop = summary["loop"][arm]
        if not results[arm]["apps"]:
            continue
        parts.append(f"<h3>{arm}</h3>")
        facts = [[k, _fmt(v)] for k, v in loop.items() if k != "decision_latency"]
        facts += [[f"decision time {app}", f"mean {v['mean_ms']} ms, p95 {v['p95_ms']} ms"]
                  for app, v in loop["decision_latency"].items()]  # fmt: skip
        parts.append(_table(["loop", ""], facts))
        for r in results[arm]["audit"]:
            if r["kind"] == "explain":
                parts.append(f"<p><b>{_e(r['app'])}</b>: <code>{_e(json.dumps(r['summary']))}</code></p>")
        parts.append("<details><summary>Audit log (first decisions and rollbacks)</summary>")
        parts.append(_audit_rows(results[arm]["audit"]))
        parts.append(f"<p>Whole log: <code>{arm}/audit.jsonl</code> (hash-chained).</p></details>")
    parts.append(
        "<h2>Files</h2><p><code>baseline/</code> and <code>apps/</code> hold kpis.parquet, events.parquet "
        "(faults and actions), cells.parquet and audit.jsonl; <code>comparison.json</code> the table above; "
        "<code>run.json</code> the scenario, versions and timings.</p></body></html>"
    )
    return "\n".join(parts), figs
