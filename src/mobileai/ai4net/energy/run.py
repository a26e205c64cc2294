"""Orchestration behind the energy commands: the closed-loop benchmark on the twin and the
open-loop replay of a KPI export (both documented in docs/energy.md).

The benchmark fits (or loads) the power model (:mod:`.power_fit`), puts it into the scenario's
``energy`` section, runs always-on, the threshold rule, the forecast-driven optimiser and the
PPO policy (:mod:`.rl`; loaded, or trained first on its own seed) on the same scenario and seed
(:mod:`.bench`), and writes ``results.json`` plus each policy's decision log atomically when
``out`` is given.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

from mobileai.ai4net.energy import bench, power_fit, rl
from mobileai.ai4net.energy.io import write_json_atomic
from mobileai.ai4net.energy.policies import (
    ForecastOptimiser,
    OptimiserConfig,
    ThresholdConfig,
    ThresholdRule,
    persistence_forecaster,
)
from mobileai.errors import UserError
from mobileai.twin.config import load_scenario

#: Policies the benchmark can run next to always-on; ``ours_app`` is the optimiser with the
#: EnergySaver app's defaults (deep sleep only, at most 50 % of cells asleep).
POLICIES = ("threshold", "ours", "rl", "ours_app")
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


def rl_policy(
    base: Any, fit: power_fit.PowerFit, rl_model: Path | None, out: Path | None, progress: bool
) -> tuple[rl.RLPolicy, str]:
    """The PPO policy: loaded from ``rl_model``, else trained with the default budget on the
    training seed (saved to ``out/rl-policy.zip`` when ``out`` is given)."""
    from mobileai.console import err

    if rl_model is not None:
        return rl.RLPolicy.load(rl_model), str(rl_model)
    cfg = rl.RLConfig()
    if progress:
        err.print(f"  rl: training PPO for {cfg.decisions} decisions (seed {cfg.seed}) ...")
    pol = rl.train(power_fit.apply_fit(rl.training_scenario(base, cfg), fit), cfg)
    if out is not None:
        pol.save(out / "rl-policy.zip")
        return pol, str(out / "rl-policy.zip")
    return pol, "trained in this run (not saved: no --out)"


def benchmark(
    scenario: str,
    hours: float,
    start_hour: float | None,
    data: Path,
    fit_path: Path | None,
    out: Path | None,
    progress: bool = True,
    step_ms: float = 5000.0,
    rl_model: Path | None = None,
    policies: tuple[str, ...] = ("threshold", "ours", "rl"),
) -> dict[str, Any]:
    """Run always-on and ``policies``; returns the benchmark JSON (docs/benchmarks.md, energy saving)."""
    import torch

    from mobileai.console import err

    unknown = sorted(set(policies) - set(POLICIES))
    if unknown:
        raise UserError(f"--policies: {unknown[0]!r} not allowed; allowed: {', '.join(POLICIES)}")
    torch.set_num_threads(1)
    fit, ref = _fit(data, fit_path)
    base = load_scenario(scenario)
    sc = power_fit.apply_fit(bench.bench_scenario(base, hours, None, step_ms, start_hour), fit)
    runs: dict[str, bench.RunScores] = {}
    makers: dict[str, Any] = {"always_on": None}
    # carrier shutdown switches the capacity carrier off (TR 38.864 clause 5), as ours does
    rule_cfg = ThresholdConfig(sleep_state="off") if _multi_layer(sc) else ThresholdConfig()
    if "threshold" in policies:
        makers["threshold"] = lambda g, lay: ThresholdRule(g, rule_cfg, layers=lay)
    if "ours" in policies:
        makers["ours"] = lambda g, lay: ForecastOptimiser(g, persistence_forecaster(), layers=lay)
    if "ours_app" in policies:
        app_cfg = OptimiserConfig(allow_off=False, max_sleeping_share=0.5)
        makers["ours_app"] = lambda g, lay: ForecastOptimiser(g, persistence_forecaster(), app_cfg, lay)
    rl_source, rl_metrics = None, None
    if "rl" in policies:
        pol, rl_source = rl_policy(base, fit, rl_model, out, progress)
        makers["rl"], rl_metrics = (lambda g, lay: pol.bind(g)), pol.metrics
    wall = {}
    for name, make in makers.items():
        t0 = time.perf_counter()

        def tick(done: int, total: int, name: str = name, t0: float = t0) -> None:
            if progress and (done % 4 == 0 or done == total):
                err.print(f"  {name}: period {done}/{total} ({time.perf_counter() - t0:.0f} s)")

        runs[name] = bench.run_closed_loop(sc, make, name, on_period=tick)
        wall[name] = time.perf_counter() - t0
    ref_run = runs["always_on"]
    cmp = {name: bench.compare(ref_run, r) for name, r in runs.items() if name != "always_on"}
    ours = cmp.get("ours", {})
    thr = cmp.get("threshold", {})
    res: dict[str, Any] = {
        "energy_saved": {name: c["energy_saved"] for name, c in cmp.items()},
        "traffic_loss": ours.get("traffic_loss"),
        "p5_tput_loss": ours.get("p5_tput_loss"),
        "p5_tput_loss_definition": (
            "1 - p5 over UEs of each UE's DL throughput over the run (volume / active time, "
            "UEs with >= 1 Mbit) / always-on's; p5_tput_loss_mean_period: the first definition "
            "(mean over periods of the per-period network p5)"
        ),
        "qos": {
            name: {
                "traffic_loss": c["traffic_loss"],
                "p5_tput_loss": c["p5_tput_loss"],
                "p5_tput_loss_mean_period": c["p5_tput_loss_mean_period"],
            }
            for name, c in cmp.items()
        },
        "details": cmp,
        "always_on": ref_run.summary(),
        "decision_latency_ms_per_cell": {name: c["latency_ms_per_cell"] for name, c in cmp.items()},
        "targets": TARGETS,
        "targets_met": _targets_met(ours, thr),
        "power_fit": {
            "split": fit.split,
            "wmape_test_physical": fit.metrics["wmape_test"],
            "wmape_test_lightgbm": ref.get("wmape_test"),
            "energy_section": power_fit.energy_override(fit, base),
            "per_cell_power": _per_cell_power(sc),
        },
        "setup": {
            "scenario": scenario,
            "hours": hours,
            "start_hour": sc.time.start_hour,
            "step_ms": sc.time.step_ms,
            "ues": sc.ues.count or (sc.ues.per_sector or 0) * bench._cell_count(sc),
            "seed": sc.seed,
            "faults": "none",
            "forecaster": (
                "persistence: forecast_cells trains a neural model per call and a one-day run has "
                "no history to train it on (see docs/energy.md)"
            ),
            "rl_policy": rl_source,
            "rl_training": rl_metrics,
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


def _per_cell_power(sc: Any) -> str | None:
    """How many cells carry their own power parameters (they override ``energy_section``)."""
    from mobileai.twin.layout import build_layout

    power = build_layout(sc).power
    if power is None:
        return None
    n = int(power.isfinite().any(1).sum())
    return f"{n} cells use the cells CSV's power columns (layers.py: per-RU-type fit), not energy_section"


def _multi_layer(sc: Any) -> bool:
    """The scenario has cells on more than one carrier (a coverage + capacity layer)."""
    from mobileai.twin.layout import build_layout

    return len(set(build_layout(sc).carrier_ghz.tolist())) > 1


def _targets_met(ours: dict[str, float], thr: dict[str, float]) -> dict[str, bool]:
    if not ours:
        return {}
    return {
        "energy_saved": ours["energy_saved"] >= TARGETS["energy_saved_min"],
        "traffic_loss": ours["traffic_loss"] <= TARGETS["traffic_loss_max"],
        "p5_tput_loss": ours["p5_tput_loss"] <= TARGETS["p5_tput_loss_max"],
        "vs_threshold": bool(thr)
        and thr["energy_saved"] > 0
        and ours["energy_saved"] >= TARGETS["vs_threshold_min"] * thr["energy_saved"]
        and ours["traffic_loss"] <= thr["traffic_loss"]
        and ours["p5_tput_loss"] <= thr["p5_tput_loss"],
    }


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
