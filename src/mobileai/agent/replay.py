"""``mobileai replay``: apps in open loop on recorded KPIs (a user's export or a store).

The recorded table is replayed period by period through :class:`~mobileai.data.network.RecordedNetwork`
and the same loop, guardrails and audit as the closed loop (:mod:`mobileai.agent.loop`); nothing
is applied. The output directory holds ``decisions.parquet`` (every decision with its verdict
and reason), ``audit.jsonl`` and ``summary.json``, written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from mobileai.agent.approval import make_approver
from mobileai.agent.audit import AuditLog, record_cell, verify_audit
from mobileai.agent.compare import load_guardrails
from mobileai.agent.loop import run_loop
from mobileai.ai4net.app import make_app
from mobileai.data.network import RecordedNetwork
from mobileai.data.rundir import RunDir, check_target
from mobileai.data.tables import read_table_file
from mobileai.errors import UserError


def load_recorded(source: Path, run: str | None = None) -> pa.Table:
    """A KPI table from a Parquet or CSV file in the kpis.parquet schema, or from a store
    directory made by ``mobileai data ingest`` / ``mobileai run`` (``run`` selects its run)."""
    source = Path(source)
    if source.is_dir():
        from mobileai.data.store import Store

        store = Store(source, run=run or "default", read_only=True)
        try:
            runs = store.runs("kpis")
            if not runs:
                raise UserError(f"--kpis {source}: the store holds no KPI table")
            chosen = run or runs[0]
            if chosen not in runs:
                raise UserError(f"--run {chosen!r}: not in the store (runs: {', '.join(runs)})")
            return store.query(table="kpis", run=chosen)
        finally:
            store.close()
    return read_table_file(source, "--kpis")


def run_replay(
    source: Path,
    out: Path,
    apps: list[str],
    run: str | None = None,
    guardrails: Path | None = None,
    app_options: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Replay ``source`` through ``apps`` (open loop) and write ``out``; returns the summary."""
    out = Path(out)
    check_target(out)
    if not apps:
        raise UserError("--apps: name at least one app")
    guard_cfg = load_guardrails(guardrails)
    kpis = load_recorded(source, run)
    net = RecordedNetwork(kpis)
    opts = app_options or {}
    arm_apps = [make_app(n, net.cells, **opts.get(n, {})) for n in apps]
    with RunDir(out) as rd:
        audit = AuditLog(rd.path("audit.jsonl"))
        stats = run_loop(net, arm_apps, guard_cfg, make_approver("reject"), audit)
        ok, msg = verify_audit(rd.path("audit.jsonl"))
        if not ok:
            raise RuntimeError(f"audit log failed its own check: {msg}")
        rows = [r for r in audit.records if r["kind"] == "decision"]
        decisions = pa.table(
            {
                "period": pa.array([r["period"] for r in rows], pa.int32()),
                "t_s": pa.array([r["t_s"] for r in rows], pa.float64()),
                "app": pa.array([r["app"] for r in rows], pa.string()),
                "cell_id": pa.array([record_cell(r["action"]) for r in rows], pa.string()),
                "action": pa.array([str(r["action"]) for r in rows], pa.string()),
                "reason": pa.array([r["reason"] for r in rows], pa.string()),
                "impact": pa.array([r["impact"] for r in rows], pa.string()),
                "verdict": pa.array([r["verdict"] for r in rows], pa.string()),
                "note": pa.array([r["note"] for r in rows], pa.string()),
            }
        )
        rd.write_parquet("decisions", decisions)
        summary = {
            "source": str(source),
            "rows": kpis.num_rows,
            "cells": net.cells.num_rows,
            "apps": apps,
            "loop": stats.summary(),
        }
        rd.write_json("summary.json", summary)
        rd.commit()
    summary["out"] = str(out)
    return summary
