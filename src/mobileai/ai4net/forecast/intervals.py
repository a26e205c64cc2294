"""Prediction intervals by conformalized quantile regression (CQR).

Romano, Patterson & Candès, "Conformalized Quantile Regression", NeurIPS 2019: the model's lower and
upper quantile outputs are widened (or narrowed) by the ``(1 - alpha)(1 + 1/n)`` empirical quantile of
the conformity scores ``E = max(lo - y, y - hi)`` on a calibration split that the model did not
train on (here: the validation days before the test period, never the test split). Scores are taken
in the series' scaled units, so the interval width follows each cell's level.
"""

from __future__ import annotations

import numpy as np


def cqr_offset(y: np.ndarray, lo: np.ndarray, hi: np.ndarray, alpha: float = 0.2) -> float:
    """The CQR correction for coverage ``1 - alpha`` from calibration targets and raw quantiles."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    ok = np.isfinite(y) & np.isfinite(lo) & np.isfinite(hi)
    scores = np.maximum(lo[ok] - y[ok], y[ok] - hi[ok])
    n = scores.size
    if n == 0:
        raise ValueError("no calibration points: the validation split has no observed targets")
    level = min(1.0, np.ceil((n + 1) * (1 - alpha)) / n)
    return float(np.quantile(scores, level, method="higher"))


def apply_offset(lo: np.ndarray, hi: np.ndarray, offset: float) -> tuple[np.ndarray, np.ndarray]:
    """Widen ``[lo, hi]`` by ``offset`` on each side; a negative offset narrows it, never past the
    midpoint."""
    lo2, hi2 = lo - offset, hi + offset
    mid = 0.5 * (lo + hi)
    return np.minimum(lo2, mid), np.maximum(hi2, mid)
