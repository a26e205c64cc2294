"""Baseline: per-KPI fixed thresholds, as in the O-RAN SC anomaly-detection (AD) xApp.

The O-RAN Software Community's AD xApp (gerrit ``ric-app/ad``, ``ad_model.py`` class ``CAUSE``)
reports a degradation when a KPI falls below a fixed limit: throughput, RSRP, RSRQ and SINR
(its docstring: "RSRP < -100 dBm, RSRQ < -15 dB, RSSINR < 10 dB"), one rule per KPI, no time of
day, no per-cell baseline, no topology. A cell-level twin has no per-UE RSRP/RSRQ, so the same
KPI families map to the cell KPIs that carry them (docs/kpis.md):

| AD xApp KPI | cell KPI here              | flagged when            |
|-------------|----------------------------|-------------------------|
| throughput  | ``DRB.UEThpDl``            | below its limit         |
| RSSINR      | ``mobileai.SinrDl.P50``    | below its limit         |
| RSRP        | ``mobileai.SinrDl.P5``     | below (cell-edge level) |
| RSRQ        | ``mobileai.CqiMean``       | below its limit         |

Where the xApp's limits are absolute values for one network, the baseline sets each limit the way
an operator sets a fixed threshold on a new network: the ``quantile`` (default 1 %) of that KPI
over the fault-free training periods of *all* cells and hours. A cell-period is flagged when any
rule fires (a KPI not reported, e.g. throughput of an idle cell, fires nothing, as in the xApp);
the reason is the list of rules that fired. The baseline does not classify the fault kind.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mobileai.ai4net.anomaly.features import check_kpi_table
from mobileai.errors import UserError

#: (KPI, direction) rules mirroring the AD xApp's KPI families; "low" flags values below the limit.
OSC_AD_RULES: tuple[tuple[str, str], ...] = (
    ("DRB.UEThpDl", "low"),
    ("mobileai.SinrDl.P50", "low"),
    ("mobileai.SinrDl.P5", "low"),
    ("mobileai.CqiMean", "low"),
)


@dataclass
class ThresholdDetector:
    """Fixed per-KPI limits; :meth:`predict` flags any breach."""

    limits: dict[str, tuple[str, float]]  # KPI -> (direction, limit)

    @classmethod
    def fit(
        cls,
        kpis: pd.DataFrame,
        normal: np.ndarray | None = None,
        rules: tuple[tuple[str, str], ...] = OSC_AD_RULES,
        quantile: float = 0.01,
    ) -> ThresholdDetector:
        """Set each rule's limit at ``quantile`` (low rules) or ``1 - quantile`` (high rules) of
        the KPI over the ``normal`` rows, pooled over cells and hours."""
        check_kpi_table(kpis)
        if not 0 < quantile < 0.5:
            raise UserError(f"quantile: {quantile} is not allowed; use 0 < quantile < 0.5")
        df = kpis if normal is None else kpis[np.asarray(normal, dtype=bool)]
        limits: dict[str, tuple[str, float]] = {}
        for kpi, direction in rules:
            if direction not in ("low", "high"):
                raise UserError(f"rules: direction {direction!r} for {kpi} is not allowed; use low or high")
            if kpi not in df:
                continue
            v = df[kpi].dropna().to_numpy(dtype=np.float64)
            if not len(v):
                continue
            q = quantile if direction == "low" else 1 - quantile
            limits[kpi] = (direction, float(np.quantile(v, q)))
        if not limits:
            raise UserError(f"kpis: none of the baseline's KPIs {[r[0] for r in rules]} is present")
        return cls(limits)

    def predict(self, kpis: pd.DataFrame) -> pd.DataFrame:
        """Per row: ``flag`` (any rule fired), ``score`` (number of rules fired) and ``reasons``."""
        check_kpi_table(kpis)
        kpis = kpis.reset_index(drop=True)
        fired = np.zeros((len(kpis), len(self.limits)), dtype=bool)
        names = list(self.limits)
        for j, (kpi, (direction, limit)) in enumerate(self.limits.items()):
            if kpi not in kpis:
                continue
            v = kpis[kpi].to_numpy(dtype=np.float64)
            with np.errstate(invalid="ignore"):
                fired[:, j] = (v < limit) if direction == "low" else (v > limit)
        out = pd.DataFrame({"period_start": kpis["period_start"], "cell_id": kpis["cell_id"].astype(str)})
        if "period_end" in kpis:
            out["period_end"] = kpis["period_end"]
        out["score"] = fired.sum(axis=1).astype(np.float64)
        out["flag"] = fired.any(axis=1)
        text = [f"{k} {'<' if self.limits[k][0] == 'low' else '>'} {self.limits[k][1]:.4g}" for k in names]
        out["reasons"] = ["; ".join(text[j] for j in np.flatnonzero(row)) for row in fired]
        return out
