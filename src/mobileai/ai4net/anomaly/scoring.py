"""Scoring detections against the twin's labelled faults (definitions as in docs/anomaly.md).

- **Event recall**: a fault is detected when its cell is flagged in at least one period that
  overlaps the fault. Only faults that start inside the scored window count.
- **Event precision**: an *alarm* is a run of consecutive flagged periods of one cell; it is true
  when one of its periods overlaps a fault of that cell. Precision = true alarms / alarms.
- **Cell-period precision / recall**: flagged cell-periods that overlap a fault of their cell /
  all flagged; flagged / all cell-periods at least half covered by a fault.
- **F1** (headline) = harmonic mean of event precision and event recall.
- **Delay** = first flagged overlapping period minus the period the fault starts in (periods).
- **RCA top-k**: at a detected fault's first flagged period, the flagged cells of that period
  connected to the faulty cell in the neighbour graph form its incident; the incident's
  (cell, kind) hypotheses ranked by probability must hold (faulty cell, true kind) in the first k.
  Reported over detected faults (``rca_top1``) and over all faults (``rca_top1_all``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mobileai.ai4net.anomaly.labels import period_labels
from mobileai.ai4net.anomaly.rca import ranked_hypotheses


def _f1(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def evaluate(
    pred: pd.DataFrame, faults: pd.DataFrame, *, rca: bool = True, scored: pd.DataFrame | None = None
) -> dict[str, Any]:
    """Scores of ``pred`` (one row per cell-period with ``period_start``, ``period_end``,
    ``cell_id``, ``flag``; for RCA also ``incident`` and ``p:<kind>``) against ``faults`` (all
    faults: they decide which flags are true). ``scored``: the faults recall and RCA count
    (default: those starting inside the window of ``pred``)."""
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

    # alarms: runs of consecutive flagged periods per cell
    order = np.lexsort((ps.to_numpy(), pred["cell_id"].to_numpy()))
    n_alarm = n_true_alarm = 0
    prev_cell, prev_end, in_run, run_true = None, None, False, False
    for r in order:
        cell = pred.at[r, "cell_id"]
        contiguous = in_run and cell == prev_cell and ps.iat[r] == prev_end
        if flag[r]:
            if not contiguous:
                if in_run:
                    n_alarm += 1
                    n_true_alarm += run_true
                in_run, run_true = True, False
            run_true = run_true or bool(cov[r])
            prev_end = pe.iat[r]
        elif in_run:
            n_alarm += 1
            n_true_alarm += run_true
            in_run = False
        prev_cell = cell
    if in_run:
        n_alarm += 1
        n_true_alarm += run_true

    rows_by_cell = pd.Series(np.arange(len(pred))).groupby(pred["cell_id"].to_numpy()).indices
    detected, delays, kinds, top1, top3 = [], [], [], [], []
    has_rca = rca and "incident" in pred and any(c.startswith("p:") for c in pred.columns)
    for _, ev in f.iterrows():
        rows = rows_by_cell.get(str(ev["cell_id"]), np.array([], dtype=int))
        over = rows[(ps.iloc[rows] < ev["end"]).to_numpy() & (pe.iloc[rows] > ev["start"]).to_numpy()]
        hit = over[flag[over]]
        kinds.append(ev["kind"])
        if not len(hit):
            detected.append(False)
            continue
        detected.append(True)
        first = hit[np.argmin(ps.iloc[hit].to_numpy())]
        p_start = t0 + np.floor((ev["start"] - t0) / step) * step
        delays.append(float((ps.iat[first] - p_start) / step))
        if has_rca:
            inc = pred.at[first, "incident"]
            same = np.flatnonzero(pred["incident"].to_numpy() == inc)
            hyps = [(c, k) for c, k, _ in ranked_hypotheses(pred, same)]
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
            rank = next(
                (i for i, h in enumerate(hyps) if h == truth or (h[0] == truth[0] and h in active)), None
            )
            top1.append(rank is not None and rank < 1)
            top3.append(rank is not None and rank < 3)

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
        "event_precision": round(ev_prec, 4),
        "event_recall": round(recall, 4),
        "f1": round(_f1(ev_prec, recall), 4),
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
    return out
