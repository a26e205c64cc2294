"""Orchestration behind the energy commands: the closed-loop benchmark on the twin and the
open-loop replay of a KPI export (both documented in docs/energy.md).

The benchmark fits (or loads) the power model (:mod:`.power_fit`), puts it into the scenario's
``energy`` section, runs always-on, the threshold rule and the forecast-driven optimiser on the
same scenario and seed (:mod:`.bench`), and writes ``results.json`` plus each policy's decision
log atomically when ``out`` is given.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

from mobileai.ai4net.energy import bench, power_fit
from mobileai.ai4net.energy.io import write_json_atomic
from mobileai.ai4net.energy.policies import ForecastOptimiser, ThresholdRule, persistence_forecaster
from mobileai.errors import UserError
from mobileai.twin.config import load_scenario

#: Targets of issue 5 (dense-urban, one day).
TARGETS = {
    "energy_saved_min": 0.25,
    "traffic_loss_max": 0.01,
    "p5_tput_loss_max": 0.05,
    "vs_threshold_min": 1.5,
}


def _fit(data: Path, fit_path: Path | None) -> tuple[power_fit.PowerFit, dict[str, Any]]:
    if fit_path is not None:
        fit = power_fit.load_fit(fit_path)
        ref = power_fit.read_reference(fit_path).get("lightgbm", {})
        return fit, ref
    d = power_fit.load_itu_energy(data)
    fit = power_fit.fit_power_model(d, "random_hours")
    return fit, power_fit.fit_lightgbm_reference(d, "random_hours")


def benchmark(
    scenario: str,
    hours: float,
    start_hour: float | None,
    data: Path,
    fit_path: Path | None,
    out: Path | None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the three policies and return the benchmark JSON (see docs/bench-energy.md)."""
    from mobileai.cli import err

    fit, ref = _fit(data, fit_path)
    base = load_scenario(scenario)
    sc = power_fit.apply_fit(bench.bench_scenario(base, hours, None, start_hour=start_hour), fit)
    runs: dict[str, bench.RunScores] = {}
    makers = {
        "always_on": None,
        "threshold": lambda g: ThresholdRule(g),
        "ours": lambda g: ForecastOptimiser(g, persistence_forecaster()),
    }
    wall = {}
    for name, make in makers.items():
        t0 = time.perf_counter()

        def tick(done: int, total: int, name: str = name, t0: float = t0) -> None:
            if progress and (done % 4 == 0 or done == total):
                err.print(f"  {name}: period {done}/{total} ({time.perf_counter() - t0:.0f} s)")

        runs[name] = bench.run_closed_loop(sc, make, name, on_period=tick)
        wall[name] = time.perf_counter() - t0
    ref_run = runs["always_on"]
    ours = bench.compare(ref_run, runs["ours"])
    thr = bench.compare(ref_run, runs["threshold"])
    res: dict[str, Any] = {
        "energy_saved": {"ours": ours["energy_saved"], "threshold": thr["energy_saved"]},
        "traffic_loss": ours["traffic_loss"],
        "p5_tput_loss": ours["p5_tput_loss"],
        "threshold_qos": {"traffic_loss": thr["traffic_loss"], "p5_tput_loss": thr["p5_tput_loss"]},
        "details": {"ours": ours, "threshold": thr},
        "always_on": ref_run.summary(),
        "decision_latency_ms_per_cell": {
            "ours": ours["latency_ms_per_cell"],
            "threshold": thr["latency_ms_per_cell"],
        },
        "targets": TARGETS,
        "targets_met": {
            "energy_saved": ours["energy_saved"] >= TARGETS["energy_saved_min"],
            "traffic_loss": ours["traffic_loss"] <= TARGETS["traffic_loss_max"],
            "p5_tput_loss": ours["p5_tput_loss"] <= TARGETS["p5_tput_loss_max"],
            "vs_threshold": thr["energy_saved"] > 0
            and ours["energy_saved"] >= TARGETS["vs_threshold_min"] * thr["energy_saved"],
        },
        "power_fit": {
            "split": fit.split,
            "wmape_test_physical": fit.metrics["wmape_test"],
            "wmape_test_lightgbm": ref.get("wmape_test"),
            "energy_section": power_fit.energy_override(fit, base),
        },
        "setup": {
            "scenario": scenario,
            "hours": hours,
            "start_hour": sc.time.start_hour,
            "step_ms": sc.time.step_ms,
            "ues": sc.ues.count or (sc.ues.per_sector or 0) * bench._cell_count(sc),
            "seed": sc.seed,
            "faults": "none",
            "forecaster": "persistence (mobileai.ai4net.forecast has no forecast_cells yet)",
            "wall_s": wall,
            "machine": f"{platform.machine()} {platform.processor() or ''} {platform.system()}".strip(),
        },
    }
    if out is not None:
        write_json_atomic(out / "results.json", res)
        for name, r in runs.items():
            write_json_atomic(out / f"{name}-periods.json", r.per_period)
            if r.log:
                write_json_atomic(out / f"{name}-decisions.json", r.log)
    return res


def open_loop(
    kpis: Path, cells: Path, policy: str, fit_path: Path | None, out: Path | None
) -> dict[str, Any]:
    """Replay a KPI export with ``policy`` (``optimiser`` or ``threshold``), nothing applied."""
    from mobileai.twin.config import EnergyConfig

    if policy not in ("optimiser", "threshold"):
        raise UserError(f"--policy: {policy!r} not allowed; allowed: optimiser, threshold")
    k = bench.read_table(kpis)
    c = bench.read_table(cells)
    base = load_scenario("dense-urban")
    energy = EnergyConfig()
    if fit_path is not None:
        energy = power_fit.apply_fit(base, power_fit.load_fit(fit_path)).energy
    max_tx = energy.max_tx_w or 10 ** ((base.bs.tx_power_dbm - 30) / 10)
    make = (
        (lambda g: ForecastOptimiser(g, persistence_forecaster())) if policy == "optimiser" else ThresholdRule
    )
    scores, log = bench.run_open_loop(k, c, make, energy, max_tx)
    if out is not None:
        write_json_atomic(out, {"scores": scores, "decisions": log})
    return {**scores, "policy": policy, "applied": False}
