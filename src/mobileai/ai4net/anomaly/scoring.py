"""Scoring detections against the twin's labelled faults (definitions as in docs/anomaly.md).

- **Event recall**: a fault is detected when its cell is flagged in at least one period that
  overlaps the fault. Only faults that start inside the scored window count.
- **Event precision**: an *alarm* is what an operator receives as one ticket: the flagged
  cell-periods connected in space and time (same cell in consecutive periods, or cells adjacent
  in the neighbour graph in the same or consecutive periods; ITU-T M.3703 alarm correlation).
  It is true when one of its cell-periods overlaps a fault of that cell, so the overloaded
  neighbours flagged with a faulty cell make one alarm with it, not extra false ones; an alarm
  of neighbours alone (faulty cell never flagged) stays false. Precision = true alarms / alarms.
  Without a graph an alarm is a run of consecutive flagged periods of one cell, which is also
  reported with a graph (``cell_alarms``, ``cell_alarm_precision``).
- **Cell-period precision / recall**: flagged cell-periods that overlap a fault of their cell /
  all flagged; flagged / all cell-periods at least half covered by a fault.
- **F1** (headline) = harmonic mean of event precision and event recall.
- **Delay** = first flagged overlapping period minus the period the fault starts in (periods).
- **RCA top-k**: at a detected fault's first flagged period, the flagged cells of that period
  connected to the faulty cell in the neighbour graph form its incident; the incident's
  (cell, kind) hypotheses ranked by probability must hold (faulty cell, true kind) in the first k.
  Reported over detected faults (``rca_top1``) and over all faults (``rca_top1_all``).
  ``rca_top1_filtered`` / ``rca_top3_filtered``: the same ranking with the other true answers
  removed first, the "filtered" setting of ranking metrics with several right answers (Bordes
  et al., NeurIPS 2013): when two faults are active in one incident, naming the other faulty
  cell with its true kind first is not counted against this fault.
- **RCA confusion** (``rca_confusion``): per true kind, what rank 1 of the incident said at that
  period: a kind on the faulty cell, ``other_cell`` (rank 1 names another cell) or ``missed``
  (the fault was not detected).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mobileai.ai4net.anomaly.labels import period_labels
from mobileai.ai4net.anomaly.rca import ranked_hypotheses
from mobileai.ai4net.topology import NeighbourGraph


def _f1(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def alarm_groups(pred: pd.DataFrame, graph: NeighbourGraph | None = None) -> np.ndarray:
    """Alarm id per row of ``pred`` (-1 where not flagged): flagged cell-periods joined when they
    are the same cell in consecutive periods or, with ``graph``, neighbour cells in the same or
    consecutive periods (connected components, union-find)."""
    ps = pd.to_datetime(pred["period_start"], utc=True)
    codes, periods = pd.factorize(ps, sort=True)
    cells = pred["cell_id"].astype(str).to_numpy()
    flagged = np.flatnonzero(pred["flag"].to_numpy(dtype=bool))
    out = np.full(len(pred), -1, dtype=np.int64)
    if not len(flagged):
        return out
    step = pd.Series(periods).diff().median() if len(periods) > 1 else pd.Timedelta(0)
    # a period follows another only when they are one reporting step apart (gaps split alarms)
    consecutive = np.zeros(len(periods), dtype=bool)
    if len(periods) > 1:
        consecutive[1:] = (periods[1:] - periods[:-1]) == step
    at = {(int(codes[r]), cells[r]): i for i, r in enumerate(flagged)}
    parent = list(range(len(flagged)))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i, r in enumerate(flagged):
        c, cell = int(codes[r]), cells[r]
        near = [cell]
        if graph is not None and cell in graph.positions:
            near += [graph.cell_ids[j] for j in graph.neighbours[graph.positions[cell]]]
        for other in near:
            for dc in (0, 1) if other != cell else (1,):
                if dc and not (c + 1 < len(periods) and consecutive[c + 1]):
                    continue
                j = at.get((c + dc, other))
                if j is not None:
                    parent[find(i)] = find(j)
    roots = np.array([find(i) for i in range(len(flagged))])
    out[flagged] = pd.factorize(roots)[0]
    return out


def _alarms(groups: np.ndarray, cov: np.ndarray) -> tuple[int, int]:
    """(alarms, true alarms): an alarm is true when one of its cell-periods overlaps a fault."""
    g = groups[groups >= 0]
    if not len(g):
        return 0, 0
    true = np.zeros(g.max() + 1, dtype=bool)
    np.logical_or.at(true, g, cov[groups >= 0])
    return len(true), int(true.sum())


def evaluate(
    pred: pd.DataFrame,
    faults: pd.DataFrame,
    *,
    rca: bool = True,
    scored: pd.DataFrame | None = None,
    graph: NeighbourGraph | None = None,
) -> dict[str, Any]:
    """Scores of ``pred`` (one row per cell-period with ``period_start``, ``period_end``,
    ``cell_id``, ``flag``; for RCA also ``incident`` and ``p:<kind>``) against ``faults`` (all
    faults: they decide which flags are true). ``scored``: the faults recall and RCA count
    (default: those starting inside the window of ``pred``). ``graph``: the neighbour graph that
    joins alarms of neighbour cells (module docstring); None: alarms are per cell."""
    pred = pred.reset_index(drop=True)
    ps = pd.to_datetime(pred["period_start"], utc=True)
    pe = pd.to_datetime(pred["period_end"], utc=True)
    t0, t1 = ps.min(), pe.max()
    step = (pe - ps).median()
    f = faults if scored is None else scored
    f = f[(f["start"] >= t0) & (f["start"] < t1)].reset_index(drop=True)
    lab = period_labels(pred, faults)
    flag = pred["flag"].to_numpy(dtype=bool)
    cov = lab["overlap"].to_numpy() > 0
    half = lab["overlap"].to_numpy() >= 0.5

    n_cell_alarm, n_true_cell_alarm = _alarms(alarm_groups(pred), cov)
    if graph is None:
        n_alarm, n_true_alarm = n_cell_alarm, n_true_cell_alarm
    else:
        n_alarm, n_true_alarm = _alarms(alarm_groups(pred, graph), cov)

    rows_by_cell = pd.Series(np.arange(len(pred))).groupby(pred["cell_id"].to_numpy()).indices
    detected, delays, kinds, top1, top3, top1f, top3f = [], [], [], [], [], [], []
    confusion: dict[str, dict[str, int]] = {}
    has_rca = rca and "incident" in pred and any(c.startswith("p:") for c in pred.columns)
    for _, ev in f.iterrows():
        rows = rows_by_cell.get(str(ev["cell_id"]), np.array([], dtype=int))
        over = rows[(ps.iloc[rows] < ev["end"]).to_numpy() & (pe.iloc[rows] > ev["start"]).to_numpy()]
        hit = over[flag[over]]
        kinds.append(ev["kind"])
        if not len(hit):
            detected.append(False)
            _count(confusion, ev["kind"], "missed")
            continue
        detected.append(True)
        first = hit[np.argmin(ps.iloc[hit].to_numpy())]
        p_start = t0 + np.floor((ev["start"] - t0) / step) * step
        delays.append(float((ps.iat[first] - p_start) / step))
        if has_rca:
            inc = pred.at[first, "incident"]
            same = np.flatnonzero(pred["incident"].to_numpy() == inc)
            hyps = [(c, k) for c, k, _ in ranked_hypotheses(pred, same)]
            _count(confusion, ev["kind"], hyps[0][1] if hyps[0][0] == str(ev["cell_id"]) else "other_cell")
            active = set(
                zip(
                    *[
                        faults.loc[
                            (faults["start"] < pe.iat[first]) & (faults["end"] > ps.iat[first]), col
                        ].astype(str)
                        for col in ("cell_id", "kind")
                    ],
                    strict=True,
                )
            )
            truth = (str(ev["cell_id"]), ev["kind"])
            rank = _rank_of_truth(hyps, truth, active)
            top1.append(rank is not None and rank < 1)
            top3.append(rank is not None and rank < 3)
            # filtered: another cell's true (cell, kind) at that period is not a wrong answer
            frank = _rank_of_truth([h for h in hyps if h[0] == truth[0] or h not in active], truth, active)
            top1f.append(frank is not None and frank < 1)
            top3f.append(frank is not None and frank < 3)

    det = np.asarray(detected, dtype=bool)
    recall = float(det.mean()) if len(det) else float("nan")
    ev_prec = n_true_alarm / n_alarm if n_alarm else 0.0
    cp_prec = float(cov[flag].mean()) if flag.any() else 0.0
    cp_rec = float(flag[half].mean()) if half.any() else float("nan")
    per_kind = {}
    for k in sorted(set(kinds)):
        m = np.asarray([kk == k for kk in kinds])
        per_kind[k] = {"faults": int(m.sum()), "recall": round(float(det[m].mean()), 4)}
    out: dict[str, Any] = {
        "faults": len(f),
        "detected": int(det.sum()),
        "alarms": n_alarm,
        "alarms_grouped_by": "cell and neighbour graph" if graph is not None else "cell",
        "event_precision": round(ev_prec, 4),
        "event_recall": round(recall, 4),
        "f1": round(_f1(ev_prec, recall), 4),
        "cell_alarms": n_cell_alarm,
        "cell_alarm_precision": round(n_true_cell_alarm / n_cell_alarm, 4) if n_cell_alarm else 0.0,
        "cell_period_precision": round(cp_prec, 4),
        "cell_period_recall": round(cp_rec, 4),
        "cell_period_f1": round(_f1(cp_prec, cp_rec), 4),
        "flagged_cell_periods": int(flag.sum()),
        "cell_periods": len(pred),
        "delay_periods_median": float(np.median(delays)) if delays else None,
        "delay_periods_mean": round(float(np.mean(delays)), 3) if delays else None,
        "per_kind": per_kind,
    }
    if has_rca:
        out["rca_top1"] = round(float(np.mean(top1)), 4) if top1 else None
        out["rca_top3"] = round(float(np.mean(top3)), 4) if top3 else None
        out["rca_top1_all"] = round(float(np.sum(top1)) / len(f), 4) if len(f) else None
        out["rca_top3_all"] = round(float(np.sum(top3)) / len(f), 4) if len(f) else None
        out["rca_top1_filtered"] = round(float(np.mean(top1f)), 4) if top1f else None
        out["rca_top3_filtered"] = round(float(np.mean(top3f)), 4) if top3f else None
        out["rca_confusion"] = {k: dict(sorted(v.items())) for k, v in sorted(confusion.items())}
    return out


def _rank_of_truth(
    hyps: list[tuple[str, str]], truth: tuple[str, str], active: set[tuple[str, str]]
) -> int | None:
    """Rank (0-based) of the first hypothesis that is right for this fault: its (cell, kind), or
    another fault active on the same cell at that period; None when none is."""
    return next((i for i, h in enumerate(hyps) if h == truth or (h[0] == truth[0] and h in active)), None)


def _count(table: dict[str, dict[str, int]], truth: str, said: str) -> None:
    row = table.setdefault(str(truth), {})
    row[said] = row.get(said, 0) + 1
