"""The twin reproduces the RAN1 large-scale calibration (R1-165974) within 2 dB."""

from __future__ import annotations

import numpy as np
import pytest

from mobileai.twin.calibration import PERCENTILES, REFERENCE, run_calibration


@pytest.mark.parametrize(("scenario", "fc"), sorted(REFERENCE))
def test_calibration_within_2db_at_p5_p50_p95(scenario: str, fc: float) -> None:
    res = run_calibration(scenario, fc, drops=8, seed=100)
    summary = res.summary()
    assert summary["max_abs_error_db"] <= 2.0, summary
    # the whole CDF stays close too, not just three points
    for metric in ("coupling_gain_db", "geometry_sinr_db"):
        ours = np.percentile(getattr(res, metric), PERCENTILES)
        assert np.max(np.abs(ours - np.array(REFERENCE[(scenario, fc)][metric]))) < 3.0


def test_rma_runs_without_a_reference() -> None:
    s = run_calibration("rma", 0.7, drops=1).summary()
    assert "reference" not in s and s["ues"] == 570
    assert s["coupling_gain_db"]["p5"] < s["coupling_gain_db"]["p50"] < s["coupling_gain_db"]["p95"]
