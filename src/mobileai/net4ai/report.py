"""Run report of an offload run: where each AI service should run and what QoAIS it gets.

Writes, atomically through :class:`~mobileai.data.rundir.RunDir`: ``tasks.parquet`` (one row per
task and policy), ``summary.json`` (per-policy deadline satisfaction, latency, energy, uplink
bytes, QoAIS), ``qoais.json`` and ``report.md`` (the same as tables), plus ``run.json`` with the
scenario, workload, seed, versions and the command that reproduces it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from mobileai.compute.workloads import Workload
from mobileai.data.rundir import RunDir


def finite(obj: object) -> object:
    """A JSON-safe copy: non-finite floats become None, numpy scalars plain numbers."""
    if isinstance(obj, dict):
        return {str(k): finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def placement_table(result: dict, workload: Workload, source: str = "twin") -> list[dict]:
    """Where each class runs under each policy: share on device / each node / split used."""
    rows = []
    for (src, pol), o in result["outcomes"].items():
        if src != source:
            continue
        c = o.columns
        for k, tc in enumerate(workload.classes):
            m = c["cls"] == k
            if not m.any():
                continue
            node = c["node"][m]
            split = c["split"][m].astype(np.int64)
            vals, counts = np.unique(split, return_counts=True)
            rows.append(
                {
                    "policy": pol,
                    "class": tc.name,
                    "on_device": float((node < 0).mean()),
                    "edge": float(((node >= 0) & (node < node.max(initial=0))).mean())
                    if (node >= 0).any()
                    else 0.0,
                    "cloud": float((node == c["node"].max(initial=-1)).mean()) if (node >= 0).any() else 0.0,
                    "most_used_split": int(vals[np.argmax(counts)]),
                }
            )
    return rows


def markdown(summary: dict, placement: list[dict]) -> str:
    lines = [f"# Offload run: {summary['workload']} on {summary['scenario']}", ""]
    lines.append(f"Seed {summary['seed']}, {summary['duration_s']:g} s, {summary['ai_ues']} AI UEs.")
    for src, runs in summary["runs"].items():
        lines += ["", f"## Policies ({src} uplinks)", ""]
        lines.append(
            "| policy | tasks | deadline met | p50 ms | p95 ms | device J | uplink MB | fell back | "
            "re-dispatched | lost |"
        )
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for pol, s in runs.items():
            lines.append(
                f"| {pol} | {s['tasks']:,} | {_fmt(s['deadline_met'])} | {_fmt(s['p50_latency_ms'])} | "
                f"{_fmt(s['p95_latency_ms'])} | {_fmt(s['device_energy_j'])} | {_fmt(s['uplink_mb'])} | "
                f"{s['fell_back']} | {s.get('migrated', 0)} | {s.get('lost', 0)} |"
            )
    lines += ["", "## Where each service runs", ""]
    lines.append("| policy | class | on device | MEC | cloud | most used split |")
    lines.append("|---|---|---:|---:|---:|---:|")
    for r in placement:
        lines.append(
            f"| {r['policy']} | {r['class']} | {_fmt(r['on_device'])} | {_fmt(r['edge'])} | "
            f"{_fmt(r['cloud'])} | {r['most_used_split']} |"
        )
    lines += ["", "## QoAIS (twin uplinks)", ""]
    for pol, s in summary["runs"].get("twin", {}).items():
        lines.append(f"### {pol}")
        lines.append("")
        lines.append("| service | dimension | measure | value |")
        lines.append("|---|---|---|---:|")
        for cls, q in s["qoais"].items():
            for dim, vals in q.items():
                if not isinstance(vals, dict):
                    continue
                for k, v in vals.items():
                    lines.append(f"| {cls} | {dim} | {k} | {_fmt(v)} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def write_run(out: Path, result: dict, workload: Workload, manifest: dict) -> dict:
    """Write the run directory; returns the summary."""
    summary = {k: result[k] for k in ("scenario", "seed", "workload", "duration_s", "ai_ues")}
    summary["runs"] = result["runs"]
    tables = []
    for (src, pol), o in result["outcomes"].items():
        cols = {k: np.asarray(v) for k, v in o.columns.items()}
        n = len(cols["cls"])
        cols["class"] = np.array([workload.classes[int(c)].name for c in cols["cls"]], dtype=object)
        cols["policy"] = np.full(n, pol, dtype=object)
        cols["uplink_source"] = np.full(n, src, dtype=object)
        cols["twin_ue"] = result["members"].col[cols["ue"].astype(np.int64)] if n else np.zeros(0, np.int64)
        tables.append(pa.table({k: v for k, v in cols.items() if k != "cls"}))
    placement = placement_table(result, workload)
    with RunDir(out) as rd:
        rd.write_parquet("tasks", pa.concat_tables(tables) if tables else pa.table({}))
        summary = finite(summary)
        rd.write_json("summary.json", summary)
        rd.write_json(
            "qoais.json",
            {src: {p: s["qoais"] for p, s in runs.items()} for src, runs in summary["runs"].items()},
        )
        rd.write_json("run.json", finite(manifest))
        rd.write_text("report.md", markdown(summary, placement))
        rd.write_json("workload.json", workload.model_dump(mode="json"))
        rd.commit()
    return summary
