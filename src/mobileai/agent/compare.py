"""``mobileai run``: the same seeded scenario twice, baseline policy vs the chosen apps.

Both arms build the twin from the same scenario and seed, so UEs, traffic, mobility and faults
are identical until an action changes what happens. Each arm runs the closed loop
(:func:`mobileai.agent.loop.run_loop`) with its own apps, guardrails, approver and audit log.
The run directory holds, per arm, the KPI and event tables (actions and rollbacks included) and
the audit log, plus ``comparison.json``, ``report.html`` and ``run.json`` at the top. It is built
in a temporary directory and renamed into place (:class:`mobileai.data.rundir.RunDir`).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import ValidationError

from mobileai.agent.approval import make_approver
from mobileai.agent.audit import AuditLog, record_cell, verify_audit
from mobileai.agent.guardrails import GuardrailConfig
from mobileai.agent.loop import LoopStats, run_loop
from mobileai.ai4net.app import make_app
from mobileai.data.bus import Bus
from mobileai.data.network import Observation, TwinNetwork
from mobileai.data.rundir import RunDir, check_target
from mobileai.data.store import Store
from mobileai.errors import UserError, format_validation_error, load_yaml_model
from mobileai.simulate import apply_overrides, check_duration, parse_duration, platform_info, versions
from mobileai.twin import timeline
from mobileai.twin.config import load_scenario

ARMS = ("baseline", "apps")


def parse_app_list(text: str | None, what: str) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]``; ``none`` or empty -> no apps."""
    if text is None or text.strip().lower() in ("", "none"):
        return []
    names = [n.strip() for n in text.split(",") if n.strip()]
    if len(set(names)) != len(names):
        raise UserError(f"{what}: an app is listed twice ({text!r})")
    return names


def load_guardrails(path: Path | None) -> GuardrailConfig:
    """Guardrail settings from a YAML file (see docs/closed-loop.md), or the defaults."""
    if path is None:
        return GuardrailConfig()
    return load_yaml_model(
        GuardrailConfig, path, "--guardrails", source=f"--guardrails {path}", empty_ok=True
    )


def _sum(tl: timeline.Timeline, name: str) -> float:
    return float(np.nansum(tl.kpis[name])) if name in tl.kpis else math.nan


def _weighted_mean(tl: timeline.Timeline, name: str, weight: str) -> float:
    if name not in tl.kpis or weight not in tl.kpis:
        return math.nan
    v, w = tl.kpis[name], tl.kpis[weight]
    ok = np.isfinite(v) & np.isfinite(w) & (w > 0)
    return float(np.sum(v[ok] * w[ok]) / np.sum(w[ok])) if ok.any() else math.nan


def arm_totals(tl: timeline.Timeline, stats: LoopStats, sla_p5_kbps: float) -> dict[str, Any]:
    """The comparison table's row for one arm (definitions in docs/closed-loop.md); a KPI with
    no data (e.g. no UE had DL data) is None."""
    p5 = tl.kpis.get("DRB.UEThpDl.P5")
    active = tl.kpis.get("DRB.MeanActiveUeDl")
    if p5 is None or active is None:
        sla = 0
    else:
        sla = int(np.sum(np.isfinite(p5) & (active > 0) & (p5 < sla_p5_kbps)))
    totals: dict[str, Any] = {
        "energy_kwh": round(_sum(tl, "PEE.Energy"), 3),
        "dl_volume_gbit": round(_sum(tl, "DRB.PdcpSduVolumeDL") / 1000.0, 3),
        "ul_volume_gbit": round(_sum(tl, "DRB.PdcpSduVolumeUL") / 1000.0, 3),
        "ue_thp_dl_mbps": round(_weighted_mean(tl, "DRB.UEThpDl", "DRB.MeanActiveUeDl") / 1000.0, 3),
        "ue_thp_dl_p5_mbps": round(_weighted_mean(tl, "DRB.UEThpDl.P5", "DRB.MeanActiveUeDl") / 1000.0, 4),
        "ho_attempts": int(_sum(tl, "MM.HoExeIntraReq")),
        "ho_failures": int(_sum(tl, "mobileai.HoFail")),
        "ping_pongs": int(_sum(tl, "mobileai.HoPingPong")),
        "rlfs": int(_sum(tl, "mobileai.Rlf")),
        "sessions_blocked": int(_sum(tl, "mobileai.SessionsBlocked")),
        "sessions_dropped": int(_sum(tl, "mobileai.SessionsDropped")),
        "sla_violations": sla,
        "actions_applied": stats.applied,
        "actions_rejected": stats.rejected_limits + stats.conflicts + stats.approvals_denied,
        "approvals_asked": stats.approvals_asked,
        "rollbacks": stats.rollbacks,
    }
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in totals.items()}


def run_comparison(
    scenario_ref: str,
    out: Path,
    apps: list[str],
    baseline: list[str],
    duration: str | float | None = None,
    period: str | float | None = None,
    start_hour: float | None = None,
    seed: int | None = None,
    n_ues: int | None = None,
    device: str = "cpu",
    approver: str = "reject",
    guardrails: Path | None = None,
    sla_p5_mbps: float = 1.0,
    app_options: dict[str, dict[str, Any]] | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Run both arms and write the run directory ``out``; returns the comparison summary.

    ``period`` overrides the scenario's KPI reporting period, which is also the apps' decision
    interval; ``start_hour`` the local time of day the run starts at.
    ``on_progress(arm, step, total_steps)`` is called about every 1 % of an arm.
    """
    out = Path(out)
    check_target(out)
    if not apps:
        raise UserError("--apps: name at least one app to compare with the baseline")
    if sla_p5_mbps <= 0 or not math.isfinite(sla_p5_mbps):
        raise UserError(f"--sla-p5-mbps {sla_p5_mbps!r}: must be a positive number")
    guard_cfg = load_guardrails(guardrails)
    appr = make_approver(approver)
    opts = app_options or {}
    unknown = sorted(set(opts) - set(apps) - set(baseline))
    if unknown:
        raise UserError(f"--app-opt: {', '.join(unknown)} is in neither --apps nor --baseline")
    sc = apply_overrides(load_scenario(scenario_ref), seed, n_ues, str(scenario_ref))
    if duration is not None:
        seconds = parse_duration(duration) if isinstance(duration, str) else float(duration)
        if not math.isfinite(seconds) or seconds <= 0:
            raise UserError(f"--duration {duration!r}: must be greater than zero")
        sc = sc.with_updates(time={"duration_s": seconds})
    if start_hour is not None:
        if not (math.isfinite(start_hour) and 0 <= start_hour < 24):
            raise UserError(f"--start-hour {start_hour!r}: must be within 0 <= hour < 24")
        sc = sc.with_updates(time={"start_hour": float(start_hour)})
    if period is not None:
        p_s = parse_duration(period) if isinstance(period, str) else float(period)
        if not math.isfinite(p_s) or p_s <= 0:
            raise UserError(f"--period {period!r}: must be greater than zero")
        try:
            sc = sc.with_updates(time={"report_period_s": p_s})
        except ValidationError as exc:
            raise UserError(format_validation_error(exc, "--period")) from exc
    steps = check_duration(sc.time.duration_s, sc, duration if isinstance(duration, str) else None)
    if sc.time.duration_s < sc.time.report_period_s:
        raise UserError(
            f"--duration: {sc.time.duration_s:g} s is shorter than one reporting period "
            f"({sc.time.report_period_s:g} s); apps decide once per period"
        )
    arms = {"baseline": baseline, "apps": apps}
    created = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    t_start = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    with RunDir(out) as rd:
        every = max(1, steps // 100)
        for arm, names in arms.items():

            def on_step(i: int, arm: str = arm) -> None:
                if on_progress is not None and (i % every == 0 or i == steps):
                    on_progress(arm, i, steps)

            net = TwinNetwork(sc, device=device, on_step=on_step)
            arm_apps = [make_app(n, net.cells, **opts.get(n, {})) for n in names]
            audit = AuditLog(rd.path(f"{arm}/audit.jsonl"))
            bus = Bus()
            store = Store(rd.path(f"{arm}/store"), run=arm, fsync=True)
            store.attach(bus, "kpis", "events", "actions")
            t0 = time.perf_counter()
            try:
                stats = run_loop(net, arm_apps, guard_cfg, appr, audit, on_period=_publisher(bus, audit))
            finally:
                store.close()
            wall = time.perf_counter() - t0
            tw = net.twin
            tl = timeline.Timeline.from_twin(tw)
            tables = {
                "kpis": timeline.kpi_table(tl),
                "events": timeline.events_table(tw, end_s=sc.time.duration_s),
                "cells": timeline.cell_config_table(tw),
            }
            for name, table in tables.items():
                rd.write_parquet(f"{arm}/{name}", table)
            ok, msg = verify_audit(rd.tmp / arm / "audit.jsonl")
            if not ok:
                raise RuntimeError(f"audit log of {arm} failed its own check: {msg}")
            results[arm] = {
                "apps": names,
                "totals": arm_totals(tl, stats, sla_p5_mbps * 1000.0),
                "loop": stats.summary(),
                "wall_s": round(wall, 2),
                "timeline": tl,
                "audit": audit.records,
                "events": tables["events"],
            }
        summary = _summary(sc, results, guard_cfg, approver, sla_p5_mbps)
        rd.write_json("comparison.json", summary)
        from mobileai.agent.run_report import build_run_report

        html, figures = build_run_report(summary, results)
        for name, png in figures.items():
            rd.write_bytes(f"figures/{name}.png", png)
        rd.write_text("report.html", html)
        rd.write_json(
            "run.json",
            {
                "command": "mobileai run",
                "created": created,
                "scenario": sc.model_dump(mode="json"),
                "seed": sc.seed,
                "arms": {a: results[a]["apps"] for a in ARMS},
                "guardrails": guard_cfg.model_dump(mode="json"),
                "approver": approver,
                "app_options": {k: {kk: str(vv) for kk, vv in v.items()} for k, v in opts.items()},
                "versions": versions(),
                "platform": platform_info(net.twin.device),
                "timings_s": {a: results[a]["wall_s"] for a in ARMS}
                | {"total": round(time.perf_counter() - t_start, 2)},
                "files": rd.files(),
            },
        )
        rd.commit()
    summary["out"] = str(out)
    return summary


def _publisher(bus: Bus, audit: AuditLog) -> Callable[[Observation, LoopStats], None]:
    """Publish each period's KPIs, events and the loop's decisions to the data-plane bus."""
    seen = [0]

    def publish(obs: Observation, stats: LoopStats) -> None:
        bus.publish("kpis", obs.kpis)
        if obs.events.num_rows:
            bus.publish("events", obs.events)
        new = [r for r in audit.records[seen[0] :] if r["kind"] in ("decision", "rollback")]
        seen[0] = len(audit.records)
        if new:
            start = obs.kpis.column("period_end")[0]
            bus.publish(
                "actions",
                pa.table(
                    {
                        "period_start": pa.array([start.as_py()] * len(new), start.type),
                        "seq": pa.array([r["seq"] for r in new], pa.int64()),
                        "record": pa.array([r["kind"] for r in new], pa.string()),
                        "app": pa.array([r["app"] for r in new], pa.string()),
                        "cell_id": pa.array([record_cell(r["action"]) for r in new], pa.string()),
                        "action": pa.array([r["action"]["kind"] for r in new], pa.string()),
                        "verdict": pa.array([r.get("verdict", "rolled_back") for r in new], pa.string()),
                        "reason": pa.array([r.get("reason", "") for r in new], pa.string()),
                    }
                ),
            )

    return publish


def _summary(sc, results, guard_cfg, approver: str, sla_p5_mbps: float) -> dict[str, Any]:
    base, ours = results["baseline"]["totals"], results["apps"]["totals"]
    delta = {}
    for k, b in base.items():
        o = ours[k]
        delta[k] = None if not b or o is None else round((o - b) / abs(b), 4)
    return {
        "scenario": sc.name,
        "seed": sc.seed,
        "duration_s": sc.time.duration_s,
        "report_period_s": sc.time.report_period_s,
        "sla_p5_mbps": sla_p5_mbps,
        "approver": approver,
        "approval_level": guard_cfg.approval_level,
        "arms": {a: {"apps": results[a]["apps"], **results[a]["totals"]} for a in ARMS},
        "relative_change": delta,
        "loop": {a: results[a]["loop"] for a in ARMS},
    }
