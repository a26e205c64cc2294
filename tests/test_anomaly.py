"""Anomaly detection, root cause, healing and scoring (mobileai.ai4net.anomaly).

Runs on a small synthetic network (7 sites x 3 sectors, 4 days of 15-min periods): each cell's
KPIs follow a daily load curve with noise; an outage zeroes the cell's traffic and moves its load
to its neighbours; interference lowers SINR and CQI; a traffic surge multiplies the cell's load.
The twin is too slow for unit tests; the twin and real-data numbers live in docs/benchmarks.md
(anomaly section).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mobileai.ai4net.anomaly import (
    AnomalyConfig,
    AnomalyModel,
    ThresholdDetector,
    detect,
    proposals,
    propose,
    write_results,
)
from mobileai.ai4net.anomaly.features import NormalProfile
from mobileai.ai4net.anomaly.labels import fault_events, period_labels
from mobileai.ai4net.anomaly.scoring import evaluate
from mobileai.ai4net.topology import neighbour_graph
from mobileai.errors import UserError
from mobileai.twin.actions import SetCIO, SetTilt, SetTxPower, parse_action

PERIOD = pd.Timedelta(minutes=15)


def synth_cells() -> pd.DataFrame:
    sites = [(0.0, 0.0)] + [(300 * np.cos(a), 300 * np.sin(a)) for a in np.arange(6) * np.pi / 3]
    rows = []
    for s, (x, y) in enumerate(sites):
        for k, az in enumerate((30.0, 150.0, 270.0)):
            rows.append(
                {
                    "cell_id": f"S{s:03d}-{k}",
                    "site": s,
                    "x_m": x,
                    "y_m": y,
                    "azimuth_deg": az,
                    "downtilt_deg": 9.0,
                    "tx_power_dbm": 46.0,
                }
            )
    return pd.DataFrame(rows)


def synth_history(
    days: int = 4, faults_per_day: int = 12, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kpis, events) over ``days`` days of 15-min periods from 2026-01-01 00:00 UTC."""
    rng = np.random.default_rng(seed)
    cells = synth_cells()
    graph = neighbour_graph(cells, 4)
    n_c = len(cells)
    n_p = days * 96
    t = pd.Timestamp("2026-01-01", tz="UTC") + np.arange(n_p) * PERIOD
    hour = (np.arange(n_p) % 96) / 4.0
    base = 0.25 + 0.75 * np.exp(-(((hour - 19) / 4) ** 2)) + 0.4 * np.exp(-(((hour - 9) / 2) ** 2))
    level = rng.uniform(0.6, 1.4, n_c)
    load = base[:, None] * level[None, :] * rng.lognormal(0, 0.08, (n_p, n_c))
    sinr = 12 + rng.normal(0, 0.6, (n_p, n_c)) - 3 * (load - load.mean())
    events = []
    kinds = ("outage", "external_interference", "traffic_surge")
    for _ in range(days * faults_per_day):
        c = int(rng.integers(n_c))
        p0 = int(rng.integers(4, n_p - 8))
        dur = int(rng.integers(2, 6))
        kind = kinds[int(rng.integers(len(kinds)))]
        sl = slice(p0, p0 + dur)
        if kind == "outage":
            moved = load[sl, c].copy()
            load[sl, c] = 0.0
            for j in graph.neighbours[c]:
                load[sl, j] += 0.5 * moved / len(graph.neighbours[c]) * 2
        elif kind == "external_interference":
            sinr[sl, c] -= 12.0
        else:
            load[sl, c] *= 4.0
        events.append(
            {
                "category": "fault",
                "kind": kind,
                "cell_id": cells.cell_id[c],
                "start": t[p0] + pd.Timedelta(minutes=int(rng.integers(0, 5))),
                "end": t[p0 + dur],
            }
        )
    up = load > 0
    kpis = pd.DataFrame(
        {
            "period_start": np.repeat(t, n_c),
            "period_end": np.repeat(t + PERIOD, n_c),
            "cell_id": np.tile(cells.cell_id.to_numpy(), n_p),
            "RRC.ConnMean": (40 * load).reshape(-1),
            "RRU.PrbUsedDl": np.clip(35 * load, 0, 100).reshape(-1),
            "DRB.PdcpSduVolumeDL": (900 * load).reshape(-1),
            "DRB.UEThpDl": np.where(up, 30000 * np.clip(sinr, 0, None) / 12 / (1 + load), np.nan).reshape(-1),
            "mobileai.SinrDl.P50": np.where(up, sinr, np.nan).reshape(-1),
            "mobileai.SinrDl.P5": np.where(up, sinr - 10, np.nan).reshape(-1),
            "mobileai.CqiMean": np.where(up, np.clip(sinr / 2 + 3, 0, 15), np.nan).reshape(-1),
        }
    )
    return kpis, pd.DataFrame(events)


SPLIT_DAYS = 3


@pytest.fixture(scope="module")
def data() -> dict:
    kpis, events = synth_history(4, 12)
    faults = fault_events(events)
    split = kpis["period_start"].min() + pd.Timedelta(days=SPLIT_DAYS)
    train = kpis[kpis["period_start"] < split].reset_index(drop=True)
    test = kpis[kpis["period_start"] >= split].reset_index(drop=True)
    return {
        "kpis": kpis,
        "faults": faults,
        "train": train,
        "test": test,
        "split": split,
        "cells": synth_cells(),
    }


@pytest.fixture(scope="module")
def model(data: dict) -> AnomalyModel:
    f = data["faults"]
    return AnomalyModel.fit(
        data["train"], f[f["start"] < data["split"]], data["cells"], AnomalyConfig(n_estimators=80)
    )


def test_period_labels_measure_overlap() -> None:
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    kpis = pd.DataFrame(
        {
            "period_start": [t0, t0 + PERIOD, t0 + 2 * PERIOD, t0],
            "period_end": [t0 + PERIOD, t0 + 2 * PERIOD, t0 + 3 * PERIOD, t0 + PERIOD],
            "cell_id": ["a", "a", "a", "b"],
        }
    )
    faults = fault_events(
        pd.DataFrame(
            {
                "category": ["fault"],
                "kind": ["outage"],
                "cell_id": ["a"],
                "start": [t0 + PERIOD * 0.8],
                "end": [t0 + PERIOD * 1.5],
            }
        )
    )
    lab = period_labels(kpis, faults)
    np.testing.assert_allclose(lab["overlap"], [0.2, 0.5, 0.0, 0.0])
    assert lab["kind"].tolist() == ["outage", "outage", None, None]


def test_profile_learns_each_cell_and_hour(data: dict) -> None:
    train = data["train"]
    prof = NormalProfile.fit(train)
    z = prof.zscores(train)
    assert abs(float(np.nanmedian(z["RRC.ConnMean"]))) < 0.3
    shifted = train.copy()
    shifted["RRC.ConnMean"] *= 3.0
    assert float(np.nanmedian(prof.zscores(shifted)["RRC.ConnMean"])) > 3.0
    # a cell the profile never saw falls back to the pooled hourly profile
    other = train.iloc[:5].copy()
    other["cell_id"] = "new-cell"
    assert np.isfinite(prof.zscores(other).to_numpy()).all()
    with pytest.raises(UserError, match="missing KPI"):
        prof.zscores(train.drop(columns=["RRC.ConnMean"]))
    with pytest.raises(UserError, match="period_start"):
        NormalProfile.fit(train.drop(columns=["period_start"]))


def test_detector_beats_fixed_thresholds_with_root_cause(data: dict, model: AnomalyModel) -> None:
    det = detect(model, data["test"])
    ours = evaluate(det, data["faults"])
    normal = period_labels(data["train"], data["faults"])["overlap"].to_numpy() == 0
    base = ThresholdDetector.fit(data["train"], normal)
    theirs = evaluate(base.predict(data["test"]), data["faults"], rca=False)
    assert ours["faults"] >= 8
    assert ours["f1"] >= 0.8
    assert ours["f1"] > theirs["f1"] + 0.2
    assert ours["rca_top1"] >= 0.7
    assert ours["delay_periods_median"] <= 1
    # every flagged row says why, naming a feature or KPI
    flagged = det[det["flag"]]
    assert len(flagged) and flagged["reasons"].str.len().gt(0).all()
    assert flagged["top_kpis"].str.contains("z=").all()


def test_outage_neighbours_are_not_the_root_cause(data: dict, model: AnomalyModel) -> None:
    det = detect(model, data["test"])
    f = data["faults"]
    outages = f[(f["kind"] == "outage") & (f["start"] >= data["split"])]
    checked = 0
    for _, ev in outages.iterrows():
        during = det[(det["period_start"] >= ev["start"].floor("15min")) & (det["period_start"] < ev["end"])]
        roots = during[during["root_cause"]]
        if roots.empty:
            continue
        near = set(model.graph.of(ev["cell_id"]))
        wrong = roots[roots["cell_id"].isin(near) & (roots["kind"] == "traffic_surge")]
        assert wrong.empty, wrong[["period_start", "cell_id", "kind"]]
        checked += 1
    assert checked >= 1


def test_unsupervised_mode_without_fault_log(data: dict) -> None:
    m = AnomalyModel.fit(data["train"])
    assert not m.supervised
    det = detect(m, data["test"])
    lab = period_labels(data["test"], data["faults"])
    hot = lab["overlap"].to_numpy() >= 0.5
    flag = det["flag"].to_numpy()
    assert flag[hot].mean() > 5 * max(flag[~hot].mean(), 1e-3)
    assert det.loc[det["flag"], "kind"].isna().all()


def test_save_load_round_trip_is_atomic(tmp_path: Path, data: dict, model: AnomalyModel) -> None:
    folder = model.save(tmp_path / "m")
    model.save(folder)  # overwrite in place
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name or ".old-" in p.name]
    again = AnomalyModel.load(folder)
    assert again.metrics == json.loads(json.dumps(model.metrics, default=str))
    a = model.predict(data["test"].iloc[:300])
    b = again.predict(data["test"].iloc[:300])
    np.testing.assert_allclose(a["score"], b["score"], rtol=1e-9)
    with pytest.raises(UserError, match="not an anomaly model"):
        AnomalyModel.load(tmp_path)


def test_threshold_baseline_limits_and_reasons(data: dict) -> None:
    base = ThresholdDetector.fit(data["train"], quantile=0.05)
    d, lim = base.limits["mobileai.SinrDl.P50"]
    assert d == "low"
    assert lim == pytest.approx(np.nanquantile(data["train"]["mobileai.SinrDl.P50"], 0.05))
    row = data["test"].iloc[[0]].copy()
    row["mobileai.SinrDl.P50"] = lim - 1.0
    out = base.predict(row)
    assert bool(out["flag"].iloc[0]) and "mobileai.SinrDl.P50 <" in out["reasons"].iloc[0]
    with pytest.raises(UserError, match="quantile"):
        ThresholdDetector.fit(data["train"], quantile=0.7)


def test_scoring_on_a_hand_made_case() -> None:
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    n = 8
    pred = pd.DataFrame(
        {
            "period_start": [t0 + i * PERIOD for i in range(n)] * 2,
            "period_end": [t0 + (i + 1) * PERIOD for i in range(n)] * 2,
            "cell_id": ["a"] * n + ["b"] * n,
        }
    )
    flag = np.zeros(2 * n, dtype=bool)
    flag[[3, 4]] = True  # cell a, periods 3-4: the fault (starts in period 2) -> delay 1
    flag[n + 6] = True  # cell b, period 6: a false alarm
    pred["flag"] = flag
    faults = fault_events(
        pd.DataFrame(
            {
                "kind": ["outage", "tilt_error"],
                "cell_id": ["a", "b"],
                "start": [t0 + 2.5 * PERIOD, t0 + 1 * PERIOD],
                "end": [t0 + 5 * PERIOD, t0 + 2 * PERIOD],
            }
        )
    )
    s = evaluate(pred, faults, rca=False)
    assert s["faults"] == 2 and s["detected"] == 1
    assert s["alarms"] == 2 and s["event_precision"] == 0.5 and s["event_recall"] == 0.5
    assert s["delay_periods_median"] == 1.0
    assert s["per_kind"]["tilt_error"]["recall"] == 0.0
    assert s["cell_period_precision"] == pytest.approx(2 / 3, abs=1e-4)


def test_rca_filtered_ranking_forgives_only_another_true_fault_first() -> None:
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    pred = pd.DataFrame(
        {
            "period_start": [t0] * 3,
            "period_end": [t0 + PERIOD] * 3,
            "cell_id": ["a", "b", "c"],
            "flag": [True, True, True],
            "incident": [0, 0, 0],
            # b's outage ranks first, then a's tilt error, then a false power loss on c
            "p:outage": [0.0, 0.9, 0.0],
            "p:tilt_error": [0.6, 0.0, 0.0],
            "p:power_degradation": [0.0, 0.0, 0.7],
        }
    )

    def faults(kind_b: str) -> pd.DataFrame:
        return fault_events(
            pd.DataFrame(
                {
                    "kind": ["tilt_error", kind_b],
                    "cell_id": ["a", "b"],
                    "start": [t0, t0],
                    "end": [t0 + PERIOD, t0 + PERIOD],
                }
            )
        )

    both = faults("outage")
    s = evaluate(pred, both, scored=both.iloc[[0]])
    assert s["rca_top1"] == 0.0 and s["rca_top3"] == 1.0  # strict: b's outage ranks first
    assert s["rca_top1_filtered"] == 0.0  # c's false hypothesis (0.7) still ranks above a (0.6)
    pred["p:power_degradation"] = 0.3
    s = evaluate(pred, both, scored=both.iloc[[0]])
    assert s["rca_top1"] == 0.0 and s["rca_top1_filtered"] == 1.0
    wrong_kind = faults("backhaul_congestion")  # b is faulty, but not with the kind named first
    s = evaluate(pred, wrong_kind, scored=wrong_kind.iloc[[0]])
    assert s["rca_top1_filtered"] == 0.0


def test_healing_proposals_are_valid_typed_actions(data: dict, model: AnomalyModel) -> None:
    g, cells = model.graph, data["cells"]
    out = propose("S000-0", "outage", 0.9, g, cells, {"users": 40.0})
    kinds = {type(a) for a in out.actions}
    assert kinds == {SetTxPower, SetTilt}
    assert {a.cell for a in out.actions} <= set(g.of("S000-0"))
    assert all(a.tx_power_dbm == 49.0 for a in out.actions if isinstance(a, SetTxPower))
    for a in out.actions:
        assert parse_action(a.model_dump()) == a
    surge = propose(
        "S000-0",
        "traffic_surge",
        0.8,
        g,
        cells,
        {"neighbour_load": {c: i for i, c in enumerate(g.of("S000-0")[::-1])}},
    )
    assert all(isinstance(a, SetCIO) and a.source == "S000-0" for a in surge.actions)
    assert [a.target for a in surge.actions] == g.of("S000-0")[::-1][:3]
    weak = propose("S000-1", "power_degradation", 0.7, g, cells, {"sinr_drop_db": 4.5})
    assert weak.actions == [SetTxPower(cell="S000-1", tx_power_dbm=50.5)]
    assert "raise its power" in weak.explanation


def test_pipeline_writes_results_atomically(tmp_path: Path, data: dict, model: AnomalyModel) -> None:
    det = detect(model, data["test"])
    props = proposals(model, det, data["test"])
    assert props and all(p.explanation and p.actions for p in props if p.kind != "tilt_error")
    summ = write_results(tmp_path / "out", det, props)
    assert summ["flagged"] == int(det["flag"].sum())
    saved = json.loads((tmp_path / "out" / "proposals.json").read_text())
    assert len(saved) == len(props)
    assert pd.read_parquet(tmp_path / "out" / "detections.parquet").shape[0] == len(det)
    with pytest.raises(UserError, match="not an empty folder"):
        write_results(tmp_path / "out", det, props)


def _cli(*args: object) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MOBILEAI_DEBUG"}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "mobileai.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_cli_open_loop_on_a_kpi_export(tmp_path: Path, data: dict) -> None:
    data["kpis"].to_parquet(tmp_path / "kpis.parquet")
    ev = data["faults"].assign(category="fault")
    ev[ev["start"] < data["split"]].to_parquet(tmp_path / "events.parquet")
    data["cells"].to_parquet(tmp_path / "cells.parquet")
    p = _cli(
        "anomaly",
        "--kpis",
        tmp_path / "kpis.parquet",
        "--events",
        tmp_path / "events.parquet",
        "--cells",
        tmp_path / "cells.parquet",
        "--train-until",
        data["split"].isoformat(),
        "--out",
        tmp_path / "out",
        "--save-model",
        tmp_path / "model",
        "--json",
    )
    assert p.returncode == 0, p.stderr
    summ = json.loads(p.stdout)
    assert summ["supervised"] and summ["flagged"] > 0 and summ["proposals"] > 0
    assert (tmp_path / "model" / "model.json").is_file()
    # reuse the saved model on the same export
    p = _cli(
        "anomaly",
        "--kpis",
        tmp_path / "kpis.parquet",
        "--model",
        tmp_path / "model",
        "--train-until",
        data["split"].isoformat(),
        "--out",
        tmp_path / "out2",
        "--json",
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["flagged"] == summ["flagged"]
    bad = _cli("anomaly", "--kpis", tmp_path / "nope.parquet", "--out", tmp_path / "o3")
    assert bad.returncode == 2
    assert "no such file" in bad.stderr and "Traceback" not in bad.stderr


def test_alarms_join_a_faulty_cell_and_its_flagged_neighbours() -> None:
    """Scoring definition (docs/anomaly.md): flagged cell-periods connected in space (neighbour
    graph) and time (consecutive periods) are one alarm; neighbours flagged alone stay false."""
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    cells = synth_cells()
    graph = neighbour_graph(cells, 4)
    a = "S000-0"
    nb = graph.of(a)[0]
    far = next(c for c in cells["cell_id"] if c != a and c not in graph.of(a) and c not in graph.of(nb))
    n = 10
    ids = [a, nb, far]
    pred = pd.DataFrame(
        {
            "period_start": [t0 + i * PERIOD for i in range(n)] * 3,
            "period_end": [t0 + (i + 1) * PERIOD for i in range(n)] * 3,
            "cell_id": [c for c in ids for _ in range(n)],
        }
    )
    flag = np.zeros(3 * n, dtype=bool)
    flag[[2, 3]] = True  # the faulty cell, periods 2-3
    flag[[n + 4, n + 8]] = True  # its neighbour: period 4 (right after: same alarm), period 8 (alone)
    flag[2 * n + 3] = True  # a far cell during the fault: not connected, a false alarm
    pred["flag"] = flag
    faults = fault_events(
        pd.DataFrame(
            {"kind": ["outage"], "cell_id": [a], "start": [t0 + 2 * PERIOD], "end": [t0 + 4 * PERIOD]}
        )
    )
    joined = evaluate(pred, faults, rca=False, graph=graph)
    per_cell = evaluate(pred, faults, rca=False)
    assert per_cell["alarms"] == per_cell["cell_alarms"] == 4 and per_cell["event_precision"] == 0.25
    assert joined["alarms"] == 3 and joined["cell_alarms"] == 4
    assert joined["event_precision"] == pytest.approx(1 / 3, abs=1e-4)
    assert joined["event_recall"] == per_cell["event_recall"] == 1.0
    # a gap of one period splits the faulty cell's alarm again
    gap = pred.assign(flag=flag & ~np.isin(np.arange(3 * n), [3]))
    assert evaluate(gap, faults, rca=False, graph=graph)["alarms"] == 4


def test_onset_periods_partly_covered_by_a_fault_are_trained_on(data: dict) -> None:
    f = data["faults"]
    # faults that begin 10 minutes into a period cover a third of their onset period
    late = f[f["start"] < data["split"]].assign(
        start=lambda d: d["start"].dt.floor("15min") + pd.Timedelta(minutes=10)
    )
    m = AnomalyModel.fit(data["train"], late, data["cells"], AnomalyConfig(n_estimators=20))
    lab = period_labels(data["train"], late)
    ov = lab["overlap"].to_numpy()
    assert m.config.min_overlap < 1 / 3  # so onset periods are fault examples, as they are scored
    expected = int(((ov >= m.config.min_overlap) & lab["kind"].notna().to_numpy()).sum())
    assert m.metrics["train_fault_rows"] == expected > int((ov >= 0.5).sum())


def test_twin_bench_stacks_histories_and_reports_both_detectors() -> None:
    import pyarrow as pa

    from mobileai.ai4net.anomaly.bench import twin_bench
    from mobileai.data.twin_history import History

    hists = []
    for seed in (1, 2):
        kpis, events = synth_history(2, 12, seed=seed)
        events = events.assign(category="fault")
        hists.append(
            History(
                None,
                pa.Table.from_pandas(kpis),
                pa.Table.from_pandas(events),
                pa.Table.from_pandas(synth_cells()),
            )
        )
    res = twin_bench(hists, AnomalyConfig(n_estimators=60))
    assert set(res) >= {"f1", "rca_top1", "delay_periods", "latency_ms_per_cell_period"}
    assert res["data"]["test_faults"] == res["ours"]["faults"] >= 8
    # the second history's test day lies 2 days after the first's
    starts = [pd.Timestamp(s) for s in res["data"]["test_days_start"]]
    assert starts[1] - starts[0] == pd.Timedelta(days=2)
    assert res["f1"]["ours"] > res["f1"]["threshold"]
    assert res["latency_ms_per_cell_period"]["median"] > 0  # the 10 ms target is a benchmark, not a test
    # a third history that only trains: more training faults, the same test days and faults
    kpis, events = synth_history(2, 12, seed=3)
    extra = History(
        None,
        pa.Table.from_pandas(kpis),
        pa.Table.from_pandas(events.assign(category="fault")),
        pa.Table.from_pandas(synth_cells()),
    )
    more = twin_bench([*hists, extra], AnomalyConfig(n_estimators=60), train_only=1)
    assert more["data"]["test_days_start"] == res["data"]["test_days_start"]
    assert more["data"]["test_faults"] == res["data"]["test_faults"]
    assert more["data"]["train_faults"] > res["data"]["train_faults"]
    assert more["data"]["train_cell_periods"] == res["data"]["train_cell_periods"] + len(kpis)
    with pytest.raises(UserError, match="train_only"):
        twin_bench(hists, train_only=2)


def test_neighbour_features_summarise_the_neighbours() -> None:
    from mobileai.ai4net.anomaly.features import neighbour_features

    cells = pd.DataFrame({"cell_id": ["a", "b", "c"], "x_m": [0.0, 100.0, 200.0], "y_m": [0.0, 0.0, 0.0]})
    g = neighbour_graph(cells, k=1)  # a-b, b-c (b keeps both: the graph is symmetric)
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    kpis = pd.DataFrame({"period_start": [t0] * 3 + [t0 + PERIOD] * 3, "cell_id": ["a", "b", "c"] * 2})
    z = pd.DataFrame({"k": [1.0, 2.0, 4.0, -1.0, np.nan, 3.0]})
    nb = neighbour_features(z, kpis, g, ["k"])
    assert g.of("b") == ["a", "c"] or g.of("b") == ["c", "a"]
    assert nb.loc[1, "nb_min:k"] == 1.0 and nb.loc[1, "nb_max:k"] == 4.0
    assert 1.0 < nb.loc[1, "nb_mean:k"] < 4.0
    assert nb.loc[0, "nb_mean:k"] == 2.0  # a's only neighbour is b
    assert np.isnan(nb.loc[3, "nb_mean:k"])  # b is not reported in the second period
    assert nb.loc[4, "nb_min:k"] == -1.0 and nb.loc[4, "nb_max:k"] == 3.0


def test_anomaly_healer_app_proposes_once_per_incident_in_open_loop(
    tmp_path: Path, data: dict, model: AnomalyModel
) -> None:
    """The App wrapper on recorded test days: healing decisions go through the loop, are logged
    and not applied, and a lasting incident is proposed once, not every period."""
    import pyarrow as pa

    from mobileai.agent.approval import make_approver
    from mobileai.agent.audit import AuditLog
    from mobileai.agent.guardrails import GuardrailConfig
    from mobileai.agent.loop import run_loop
    from mobileai.ai4net.app import make_app
    from mobileai.data.network import RecordedNetwork

    model.save(tmp_path / "m")
    net = RecordedNetwork(pa.Table.from_pandas(data["test"], preserve_index=False))
    app = make_app("anomaly-healer", net.cells, model=str(tmp_path / "m"))
    audit = AuditLog(None)
    stats = run_loop(net, [app], GuardrailConfig(approval_level=None), make_approver("reject"), audit)
    assert stats.applied == 0 and stats.decisions > 0
    decisions = [r for r in audit.records if r["kind"] == "decision"]
    assert all(r["verdict"] == "not_applied" for r in decisions)
    assert all(r["evidence"]["fault_kind"] in r["reason"] for r in decisions)
    # each (root cell, kind) incident starts at most once per stretch of detections
    starts = {(r["period"], r["reason"].split(":")[0]) for r in decisions}
    flagged = detect(model, data["test"])
    roots = flagged[flagged["root_cause"] & flagged["kind"].notna()]
    assert len(starts) <= len(roots)
    assert app.explain()["incidents"] == len(starts)


def test_seed_ensemble_averages_margins_and_explains_them(tmp_path: Path, data: dict) -> None:
    f = data["faults"]
    cfg = AnomalyConfig(n_estimators=30, n_models=3, seed=1)
    m = AnomalyModel.fit(data["train"], f[f["start"] < data["split"]], data["cells"], cfg)
    assert len(m.boosters) == 3
    assert [b.params["seed"] for b in m.boosters] == [3, 4, 5]  # seed * n_models + i: no overlap
    from mobileai.ai4net.anomaly.detector import build_features

    x = build_features(data["test"].iloc[:200], m.profile, m.graph).reindex(columns=m.feature_names)
    a = x.to_numpy(dtype=np.float64)
    margins = np.stack([b.predict(a, raw_score=True) for b in m.boosters])
    assert not np.allclose(margins[0], margins[1])  # the seeds give different models
    p = m.predict_proba(a)
    mean = margins.mean(axis=0)
    want = np.exp(mean) / np.exp(mean).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(p, want, rtol=1e-9)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    # TreeSHAP is additive: the averaged contributions plus bias rebuild the averaged margin
    contrib = np.mean([b.predict(a, pred_contrib=True) for b in m.boosters], axis=0)
    nf = len(m.feature_names) + 1
    rebuilt = np.stack([contrib[:, c * nf : (c + 1) * nf].sum(axis=1) for c in range(len(m.classes))], 1)
    np.testing.assert_allclose(rebuilt, mean, atol=1e-6)
    again = AnomalyModel.load(m.save(tmp_path / "ens"))
    assert len(again.boosters) == 3
    np.testing.assert_allclose(again.predict_proba(a), p, rtol=1e-9)
