"""Data quality on synthetic KPIs: gaps, outliers, imputation scored on hidden values, alignment."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from mobileai.data import quality as q
from mobileai.data.synthetic import synthetic_kpis
from mobileai.errors import UserError


def _with_holes(table: pa.Table, drop_every: int) -> pa.Table:
    keep = np.ones(table.num_rows, dtype=bool)
    keep[5::drop_every] = False
    return table.filter(pa.array(keep))


def test_gaps_are_found_per_cell() -> None:
    t = synthetic_kpis(3, 20)  # 3 cells x 20 periods, period-major
    keep = np.ones(t.num_rows, dtype=bool)
    keep[[3 * 4 + 1, 3 * 5 + 1, 3 * 6 + 1, 3 * 19 + 2]] = False  # cell 0-1: periods 4..6; cell 0-2: the last
    gaps = q.find_gaps(t.filter(pa.array(keep)))
    assert gaps[["cell_id", "missing_periods"]].values.tolist() == [["0-1", 3], ["0-2", 1]]
    assert str(gaps.loc[0, "gap_start"]) == "2026-01-01 01:00:00+00:00"


def test_outliers_flag_injected_spikes_not_the_busy_hour() -> None:
    t = synthetic_kpis(6, 96 * 4, seed=3)
    v = t["RRU.PrbUsedDl"].to_numpy().copy()
    spikes = [500, 1200, 2000]
    v[spikes] = v[spikes] * 8 + 50
    t = t.set_column(t.schema.get_field_index("RRU.PrbUsedDl"), "RRU.PrbUsedDl", pa.array(v))
    out = q.find_outliers(t, ["RRU.PrbUsedDl"])
    flagged = {(c, ts.value // 1_000_000) for c, ts in zip(out["cell_id"], out["period_start"], strict=True)}
    cells = t["cell_id"].to_pylist()
    starts = t["period_start"].cast(pa.int64()).to_pylist()
    assert {(cells[i], starts[i]) for i in spikes} <= flagged
    top = out.reindex(out["score"].abs().sort_values(ascending=False).index).head(3)
    assert {
        (c, ts.value // 1_000_000) for c, ts in zip(top["cell_id"], top["period_start"], strict=True)
    } == {(cells[i], starts[i]) for i in spikes}
    assert len(out) < 0.03 * t.num_rows  # noise alone: few false alarms


def test_imputation_learned_and_baselines_are_scored_on_hidden_values() -> None:
    t = synthetic_kpis(12, 96 * 5, seed=1)
    rows = q.score_imputation(t, ["RRU.PrbUsedDl", "DRB.UEThpDl"], holdout=0.1, seed=0)
    by = {(r["kpi"], r["method"]): r for r in rows}
    assert {m for _, m in by} == set(q.METHODS)
    for kpi in ("RRU.PrbUsedDl", "DRB.UEThpDl"):
        lin, prof, gbm = (by[(kpi, m)]["nmae"] for m in q.METHODS)
        # i.i.d. 10 % noise around a diurnal curve: the profile is the right baseline, and the
        # model that sees neighbours in time and the profile must do at least about as well
        assert 0 < prof < lin
        assert gbm < 1.05 * prof
        assert by[(kpi, "lightgbm")]["hidden"] > 400


def test_impute_fills_the_full_grid_and_marks_what_it_filled() -> None:
    t = _with_holes(synthetic_kpis(4, 50), 7)
    out = q.impute(t, ["RRU.PrbUsedDl"], method="profile")
    assert out.num_rows == 4 * 50
    assert out["RRU.PrbUsedDl"].null_count == 0
    assert sum(out["imputed.RRU.PrbUsedDl"].to_pylist()) == 4 * 50 - t.num_rows
    with pytest.raises(UserError, match="not known"):
        q.impute(t, ["RRU.PrbUsedDl"], method="magic")


def test_align_sums_volumes_and_averages_rates() -> None:
    t = synthetic_kpis(2, 8)  # 15 min -> 1 h
    a = q.align(t, "1h")
    assert a.num_rows == 4 and a["samples"].to_pylist() == [4, 4, 4, 4]
    first = t.filter(pa.compute.equal(t["cell_id"], "0-0")).slice(0, 4)
    row = a.filter(pa.compute.equal(a["cell_id"], "0-0")).slice(0, 1)
    assert row["DRB.PdcpSduVolumeDL"][0].as_py() == pytest.approx(
        sum(first["DRB.PdcpSduVolumeDL"].to_pylist())
    )
    assert row["RRU.PrbUsedDl"][0].as_py() == pytest.approx(np.mean(first["RRU.PrbUsedDl"].to_pylist()))
    with pytest.raises(UserError, match="whole multiple"):
        q.align(t, "20min")
