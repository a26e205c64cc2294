"""Topology-aware root-cause localisation: which cell is faulty, and with what.

A fault rarely shows on one cell only: when a cell goes down or stops carrying traffic, its users
move to the neighbours, whose load and delay rise. Following the alarm-correlation practice of
network management (ITU-T M.3703 alarm correlation; cf. "root cause is the node whose anomaly
explains its neighbours'", Steinder & Sethi, Sci Comput Program 2004), :func:`localise`:

1. *explains away* load-type hypotheses (``traffic_surge``, ``backhaul_congestion``) on a cell when
   a neighbour in the same period carries a stronger coverage-loss hypothesis (``outage``,
   ``sleeping_cell``, ``power_degradation``, ``tilt_error``): the cell's score is multiplied by
   ``1 - p`` of that neighbour, so the overloaded neighbours of a dead cell are not flagged;
2. groups the flagged cells of each period into *incidents* (connected components of the
   neighbour graph) and ranks every (cell, kind) hypothesis of an incident by its probability,
   so the first hypothesis is the incident's root cause and the next ones its alternatives.

Input: the detector's per-row output (:meth:`AnomalyModel.predict`): ``period_start``,
``cell_id``, ``score``, ``kind`` and a ``p:<kind>`` column per fault kind.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mobileai.ai4net.topology import NeighbourGraph

#: Faults that remove or weaken a cell's coverage: its users land on the neighbours.
COVERAGE_LOSS = ("outage", "sleeping_cell", "power_degradation", "tilt_error")
#: Symptoms a neighbour's coverage loss also produces (more users, more load).
LOAD_KINDS = ("traffic_surge", "backhaul_congestion")


def explain_away(pred: pd.DataFrame, graph: NeighbourGraph | None, threshold: float) -> pd.DataFrame:
    """A copy of ``pred`` with load-type probabilities discounted where a neighbour carries a
    stronger coverage-loss hypothesis; ``score``, ``kind``, ``kind_prob`` and ``flag`` are
    recomputed and the discount is recorded in ``explained_by`` (the neighbour cell) ."""
    out = pred.copy()
    out["explained_by"] = None
    pcols = [c for c in out.columns if c.startswith("p:")]
    loss_cols = [f"p:{k}" for k in COVERAGE_LOSS if f"p:{k}" in out]
    load_cols = [f"p:{k}" for k in LOAD_KINDS if f"p:{k}" in out]
    if graph is None or not loss_cols or not load_cols:
        return out
    loss = out[loss_cols].max(axis=1).to_numpy()
    pos = out["cell_id"].map(graph.positions)
    known = pos.notna().to_numpy()
    codes, _ = pd.factorize(out["period_start"])
    n = graph.n_cells
    grid = np.zeros((codes.max() + 1 if len(codes) else 0, n))
    grid[codes[known], pos[known].astype(int)] = loss[known]
    best_nb = np.zeros(len(out))
    best_id = np.full(len(out), -1)
    rows = np.flatnonzero(known)
    pi = pos[known].astype(int).to_numpy()
    for i in range(n):
        nb = list(graph.neighbours[i])
        if not nb:
            continue
        sel = rows[pi == i]
        if not len(sel):
            continue
        vals = grid[codes[sel]][:, nb]
        j = vals.argmax(axis=1)
        best_nb[sel] = vals[np.arange(len(sel)), j]
        best_id[sel] = np.asarray(nb)[j]
    load = out[load_cols].to_numpy()
    dominated = best_nb > load.max(axis=1)
    factor = np.where(dominated, 1.0 - best_nb, 1.0)
    out[load_cols] = load * factor[:, None]
    p = out[pcols].to_numpy()
    kinds = np.array([c[2:] for c in pcols], dtype=object)
    total = np.clip(p.sum(axis=1), 0.0, 1.0)
    out["score"] = np.minimum(out["score"].to_numpy(), total)
    out["kind"] = kinds[p.argmax(axis=1)]
    out["kind_prob"] = p.max(axis=1)
    out["flag"] = out["score"] >= threshold
    changed = dominated & (factor < 1.0)
    out.loc[changed, "explained_by"] = [graph.cell_ids[j] for j in best_id[changed]]
    return out


def incidents(pred: pd.DataFrame, graph: NeighbourGraph | None) -> pd.Series:
    """Incident id per row (-1 when not flagged): flagged cells of a period that are connected
    in the neighbour graph share one id; without a graph each flagged cell-period is its own."""
    inc = np.full(len(pred), -1, dtype=np.int64)
    flagged = np.flatnonzero(pred["flag"].to_numpy())
    if not len(flagged):
        return pd.Series(inc, index=pred.index)
    next_id = 0
    sub = pred.iloc[flagged]
    for _, grp in sub.groupby("period_start", sort=True):
        rows = [pred.index.get_loc(ix) for ix in grp.index]
        cells = grp["cell_id"].tolist()
        if graph is None:
            for r in rows:
                inc[r] = next_id
                next_id += 1
            continue
        parent = list(range(len(cells)))

        def find(a: int, parent: list[int] = parent) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        where = {c: i for i, c in enumerate(cells)}
        for a, c in enumerate(cells):
            if c not in graph.positions:
                continue
            for j in graph.neighbours[graph.positions[c]]:
                b = where.get(graph.cell_ids[j])
                if b is not None:
                    parent[find(a)] = find(b)
        roots: dict[int, int] = {}
        for a, r in enumerate(rows):
            root = find(a)
            if root not in roots:
                roots[root] = next_id
                next_id += 1
            inc[r] = roots[root]
    return pd.Series(inc, index=pred.index)


def ranked_hypotheses(pred: pd.DataFrame, rows: list[int] | np.ndarray) -> list[tuple[str, str, float]]:
    """(cell, kind, probability) over ``rows`` of ``pred`` (positions), most likely first."""
    pcols = [c for c in pred.columns if c.startswith("p:")]
    sub = pred.iloc[list(rows)]
    hyps = [
        (cell, c[2:], float(p))
        for cell, vals in zip(sub["cell_id"], sub[pcols].to_numpy(), strict=True)
        for c, p in zip(pcols, vals, strict=True)
    ]
    return sorted(hyps, key=lambda h: -h[2])


def localise(pred: pd.DataFrame, graph: NeighbourGraph | None, threshold: float) -> pd.DataFrame:
    """Explain away, group into incidents and add ``incident``, ``root_cause`` (is this row the
    incident's most likely (cell, kind)?) and ``rank_in_incident`` (1 = root cause)."""
    out = explain_away(pred, graph, threshold)
    out["incident"] = incidents(out, graph)
    out["rank_in_incident"] = 0
    flagged = out["incident"] >= 0
    if flagged.any():
        ranks = out.loc[flagged].groupby("incident")["score"].rank(ascending=False, method="first")
        out.loc[flagged, "rank_in_incident"] = ranks.astype(int)
    out["root_cause"] = out["rank_in_incident"] == 1
    return out
