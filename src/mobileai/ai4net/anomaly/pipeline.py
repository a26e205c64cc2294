"""End-to-end anomaly pipeline over KPI tables: detect -> localise -> propose healing.

The pure-function core the CLI (``mobileai anomaly``), the benchmarks and a closed-loop app
share; it needs no twin, only a KPI table shaped like the twin's ``kpis`` table (docs/kpis.md),
optionally the ``cells`` table (topology) and a fault log (``events``) to learn fault kinds.

- :func:`detect` scores a KPI table with a fitted :class:`AnomalyModel`, localises root causes
  (:func:`mobileai.ai4net.anomaly.rca.localise`) and returns one row per cell-period;
- :func:`proposals` turns each incident's root cause into a
  :class:`~mobileai.ai4net.anomaly.healing.HealingProposal`;
- :func:`write_results` writes ``detections.parquet``, ``proposals.json`` and ``summary.json``
  into a new folder atomically (temporary folder, then rename).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mobileai.ai4net.anomaly.detector import AnomalyModel
from mobileai.ai4net.anomaly.healing import HealingProposal, propose
from mobileai.ai4net.anomaly.rca import localise
from mobileai.errors import UserError


def detect(model: AnomalyModel, kpis: pd.DataFrame) -> pd.DataFrame:
    """Detections with causes and explanations, one row per cell-period of ``kpis``."""
    return localise(model.predict(kpis), model.graph, model.config.threshold)


def proposals(model: AnomalyModel, detections: pd.DataFrame, kpis: pd.DataFrame) -> list[HealingProposal]:
    """One healing proposal per incident root cause that has a fault kind (supervised models)."""
    roots = detections[detections["root_cause"] & detections["kind"].notna()]
    if roots.empty:
        return []
    k = kpis.reset_index(drop=True)
    out = []
    for r, row in roots.iterrows():
        cell = str(row["cell_id"])
        hour = int(pd.Timestamp(row["period_start"]).hour)
        normal = model.profile.expected(cell, hour)
        ctx: dict[str, Any] = {"reasons": row.get("reasons") or row.get("top_kpis") or ""}
        if "RRC.ConnMean" in normal:
            ctx["users"] = round(normal["RRC.ConnMean"], 1)
        sinr = "mobileai.SinrDl.P50"
        if sinr in normal and sinr in k and math.isfinite(k.at[r, sinr]):
            ctx["sinr_drop_db"] = max(0.0, normal[sinr] - float(k.at[r, sinr]))
        if model.graph is not None and "RRU.PrbUsedDl" in k and cell in model.graph.positions:
            same = k[k["period_start"] == row["period_start"]].set_index("cell_id")["RRU.PrbUsedDl"]
            ctx["neighbour_load"] = {c: float(same[c]) for c in model.graph.of(cell) if c in same}
        out.append(propose(cell, str(row["kind"]), float(row["kind_prob"]), model.graph, model.cells, ctx))
    return out


def summary(detections: pd.DataFrame, props: list[HealingProposal]) -> dict[str, Any]:
    flagged = detections[detections["flag"]]
    return {
        "cell_periods": len(detections),
        "flagged": len(flagged),
        "incidents": int(flagged["incident"].nunique()) if len(flagged) else 0,
        "cells_flagged": sorted(flagged["cell_id"].unique().tolist()),
        "root_causes": [
            {
                "period_start": str(r.period_start),
                "cell": r.cell_id,
                "kind": r.kind,
                "score": round(float(r.score), 4),
            }
            for r in flagged[flagged["root_cause"]].itertuples()
        ],
        "proposals": len(props),
    }


def write_results(out: Path, detections: pd.DataFrame, props: list[HealingProposal]) -> dict[str, Any]:
    """Write ``detections.parquet``, ``proposals.json``, ``summary.json`` to the new folder ``out``."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out {out}: exists and is not an empty folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".tmp-", dir=out.parent))
    try:
        table = detections.copy()
        for c in ("kind", "top_kpis", "reasons", "explained_by"):
            if c in table:
                table[c] = table[c].astype(object).where(table[c].notna(), None)
        pq.write_table(pa.Table.from_pandas(table, preserve_index=False), tmp / "detections.parquet")
        (tmp / "proposals.json").write_text(json.dumps([p.to_dict() for p in props], indent=1, default=_json))
        summ = summary(detections, props)
        (tmp / "summary.json").write_text(json.dumps(summ, indent=1, default=_json))
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summ


def _json(v: object) -> object:
    if isinstance(v, np.generic):
        return v.item()
    return str(v)
