"""Twin-step benchmark: the dynamic twin's 100 ms step on dense-urban, next to CRRM and mobile-env.

Three measurements, each in a fresh subprocess (``python -m mobileai.bench.twin --worker ...``) so
its peak resident memory (``getrusage`` ``ru_maxrss``) is its own:

- **twin**: :class:`~mobileai.twin.engine.Twin` on the packaged ``dense-urban`` scenario (19 sites
  x 3 sectors = 57 cells, 2,850 UEs, 100 ms steps, random-waypoint mobility, per-service
  traffic, A3 handover with RLF, PF scheduling DL+UL, energy model on). ``warmup`` steps, then
  ``steps`` steps timed one by one: median, mean and p95 ms per step, steps/s, x real time
  (step length / median), and the wall time projected for 24 simulated hours (864,000 steps x
  the *mean*, which includes the periodic radio refreshes the median skips).
- **CRRM** (PyPI ``crrm``, K. Briggs and I. Nur, arXiv:2511.02692): the same 19 sites x 3 sectors
  and the same UE drop (our positions and heights; no wrap-around images, CRRM has none), UMa
  path loss at the scenario's carrier, shadow fading on, 100 MHz, 46 dBm. One step moves the UEs
  that our mobility moves by our mobility's displacement for that step
  (``Simulator.move_ue_locations``) and recomputes every UE's throughput
  (``Simulator.get_UE_throughputs``): CRRM's smart update recomputes distances, path gain with
  antenna gain, RSRP and attachment (strongest cell) for the moved UEs, SINR (interference from
  every cell at full power), CQI, MCS and spectral efficiency, then each cell's bandwidth share
  and every UE's throughput. The ratio is ours / CRRM (ms per step).
- **mobile-env** (PyPI ``mobile-env``): its registered ``mobile-{small,medium}-central-v0``
  gymnasium envs (3 BS x 5 UEs, 7 BS x 15 UEs; one step = 1 s of its simulated time), random
  actions, resets included: env steps/s. Against it, :class:`~mobileai.twin.env.NetworkVectorEnv`
  on a scenario of the same size (3 cells / 5 UEs: one 3-sector site; 7 cells / 15 UEs: 7 omni
  sites at 100 m ISD, 2.5 GHz, 10 MHz, all UEs outdoor at 1.5 m/s as in mobile-env), one decision
  = 1 s of twin time, energy control, 100-step episodes with autoreset included, B copies in one
  tensor pass: env steps/s = B x decisions / wall time. Two time resolutions, reported apart:
  the twin's default 100 ms radio step (10 radio steps per decision, radio steps/s = 10 x env
  steps/s), and mobile-env's own resolution, ``time.step_ms = 1000`` (one radio step per
  decision: one SINR / rate / scheduling snapshot per simulated second, which is what one
  mobile-env step computes).

Nothing is downloaded at run time; a reference that is not installed is reported as skipped.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from importlib import metadata
from typing import Any

from mobileai.bench.workers import (
    command_line,
    emit_result,
    fmt,
    load_avg,
    machine_info,
    maxrss_mb,
    run_worker,
)

#: Reference scenario of the twin measurement.
SCENARIO = "dense-urban"
DEFAULT_STEPS, DEFAULT_WARMUP = 300, 50
DEFAULT_CRRM_STEPS = 100
#: mobile-env sizes (its registered scenarios) and what we run against each.
MOBILE_ENV_SIZES = ("small", "medium")
DEFAULT_ENV_COPIES = (1, 256, 1024)
ENV_POLICIES = ("random", "hold")
#: Radio step of the twin in the env measurements: ours (100 ms) and mobile-env's (1 s per step).
ENV_STEP_MS = (100, 1000)
DEFAULT_ENV_SECONDS = 20.0  # wall time spent timing each env measurement (after warm-up)
SECONDS_PER_DAY = 86_400.0
TARGET_VS_MOBILE_ENV = 100.0
#: Issue targets of the reference scenario's step: under 4 ms on the 2-core CPU (over 25x real
#: time at 100 ms steps), a simulated day in under an hour of wall time, not slower than CRRM.
TARGET_STEP_MS = 4.0
TARGET_DAY_WALL_S = 3600.0
TARGET_VS_CRRM = 1.0
WORKER_TIMEOUT_S = 1200.0
WORKER_KILL_MB = 16 * 1024
_INSTALL = {"crrm": "pip install crrm==2.0.2", "mobile_env": "pip install mobile-env==2.1.0"}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def reference_missing(kind: str) -> str | None:
    """Why a reference cannot run here (None when it can)."""
    module = {"crrm": "CRRM", "mobile_env": "mobile_env"}[kind]
    if importlib.util.find_spec(module) is None:
        return f"{kind.replace('_', '-')} is not installed ({_INSTALL[kind]}); skipped"
    return None


def _set_threads(threads: int | None) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)


def _timings(times: list[float]) -> dict[str, float]:
    ms = sorted(t * 1e3 for t in times)
    return {
        "median_ms": statistics.median(ms),
        "mean_ms": statistics.fmean(ms),
        "p95_ms": ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))],
        "min_ms": ms[0],
    }


# ------------------------------------------------------------------------------------------ workers
def worker_twin(steps: int, warmup: int, threads: int | None, device: str, seed: int) -> dict[str, Any]:
    """Time ``Twin.step`` on dense-urban."""
    _set_threads(threads)
    import torch

    from mobileai.twin.config import load_scenario
    from mobileai.twin.engine import Twin

    sc = load_scenario(SCENARIO).model_copy(update={"seed": seed})
    base_mb = maxrss_mb()
    t0 = time.perf_counter()
    tw = Twin(sc, device)
    build_s = time.perf_counter() - t0
    sync = torch.cuda.synchronize if tw.device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        tw.step()
    times = []
    for _ in range(steps):
        sync()
        t0 = time.perf_counter()
        tw.step()
        sync()
        times.append(time.perf_counter() - t0)
    tm = _timings(times)
    step_s = tw.dt
    peak = maxrss_mb()
    return {
        "scenario": SCENARIO,
        "cells": tw.n_cells,
        "ues": tw.n_ues,
        "step_ms": step_s * 1e3,
        "modules": {
            "mobility": sc.mobility.model,
            "traffic": "per-service sessions, diurnal",
            "handover": "A3 + TTT, RLF (T310)",
            "scheduler": "PF per cell x slice, DL + UL",
            "energy": "EARTH load model + TR 38.864 sleep states",
        },
        "warmup_steps": warmup,
        "timed_steps": steps,
        **tm,
        "steps_per_s": 1e3 / tm["median_ms"],
        "x_real_time": step_s * 1e3 / tm["median_ms"],
        "projected_24h_wall_s": SECONDS_PER_DAY / step_s * tm["mean_ms"] / 1e3,
        "build_s": build_s,
        "peak_mb": peak - base_mb,
        "process_peak_mb": peak,
        "threads": torch.get_num_threads(),
        "load_avg_1min": load_avg(),
        "handovers": int(tw.counters.sums["ho_req"].sum()),
    }


def worker_crrm(steps: int, warmup: int, threads: int | None, device: str, seed: int) -> dict[str, Any]:
    """Time CRRM's UE move + throughput update on dense-urban's layout and UEs."""
    _set_threads(threads)
    import CRRM
    import numpy as np
    import torch

    from mobileai.twin.config import load_scenario
    from mobileai.twin.layout import build_layout
    from mobileai.twin.mobility import Mobility
    from mobileai.twin.ues import drop_ues

    sc = load_scenario(SCENARIO).model_copy(update={"seed": seed})
    cells = build_layout(sc)
    ues = drop_ues(sc, cells, torch.Generator().manual_seed(seed))
    # our mobility's displacements, the same UEs and moves the twin makes (computed untimed)
    mob = Mobility(sc, cells, ues, torch.Generator().manual_seed(seed * 7 + 1), "cpu")
    dt = sc.time.step_ms / 1000.0
    moving = mob.moving.nonzero().squeeze(1).numpy()
    moving_list = moving.tolist()  # CRRM compares ``indices`` with 'all': a list, not an array
    deltas = []
    for _ in range(warmup + steps):
        x0, y0 = mob.x.clone(), mob.y.clone()
        mob.step(dt)
        d = torch.stack([mob.x - x0, mob.y - y0], 1).double().numpy()
        deltas.append(d[moving])
    n_sites = cells.n_sites
    h_bs = float(cells.height[0])
    site_xyz = np.stack(
        [cells.site_x.double().numpy(), cells.site_y.double().numpy(), np.full(n_sites, h_bs)], 1
    )
    ue_xyz = np.stack([ues.x.double().numpy(), ues.y.double().numpy(), ues.height.double().numpy()], 1)
    nf = sc.radio.ue_noise_figure_db
    params = CRRM.Parameters(
        n_cell_locations=n_sites,
        n_sectors=sc.layout.sectors,
        cell_locations=site_xyz,
        ue_initial_locations=ue_xyz,
        h_BS_default=h_bs,
        h_UT_default=sc.ues.outdoor_height_m,
        fc_GHz=sc.radio.carrier_ghz,
        bw_MHz=sc.radio.bandwidth_mhz,
        σ2=10 ** ((-174.0 + nf - 30.0) / 10.0),
        p_W=10 ** ((sc.bs.tx_power_dbm - 30.0) / 10.0),
        pathloss_model_name="UMa",
        LOS=False,
        shadow_fading=True,
        rng_seeds=seed,
    )
    base_mb = maxrss_mb()
    t0 = time.perf_counter()
    sim = CRRM.Simulator(params)
    tp = sim.get_UE_throughputs()
    build_s = time.perf_counter() - t0
    times = []
    for i, d in enumerate(deltas):
        t0 = time.perf_counter()
        sim.move_ue_locations(moving_list, d)
        tp = sim.get_UE_throughputs()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    tm = _timings(times)
    peak = maxrss_mb()
    return {
        "version": _version("crrm"),
        "cells": int(params.n_cells),
        "ues": int(ue_xyz.shape[0]),
        "moved_per_step": len(moving),
        "warmup_steps": warmup,
        "timed_steps": steps,
        **tm,
        "steps_per_s": 1e3 / tm["median_ms"],
        "build_s": build_s,
        "peak_mb": peak - base_mb,
        "process_peak_mb": peak,
        "load_avg_1min": load_avg(),
        "median_ue_throughput_mbps": float(np.median(tp)),
    }


def worker_mobile_env(size: str, seconds: float, warmup: int, seed: int) -> dict[str, Any]:
    """Env steps/s of mobile-env's ``mobile-{size}-central-v0`` with random actions."""
    import warnings

    import gymnasium

    warnings.filterwarnings("ignore")
    import mobile_env  # noqa: F401  (registers the envs)

    env = gymnasium.make(f"mobile-{size}-central-v0")
    env.reset(seed=seed)
    env.action_space.seed(seed)
    base_mb = maxrss_mb()

    def run(n: int | None, budget_s: float) -> tuple[int, float]:
        done_steps, t0 = 0, time.perf_counter()
        while (n is not None and done_steps < n) or (n is None and time.perf_counter() - t0 < budget_s):
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            done_steps += 1
            if term or trunc:
                env.reset()
        return done_steps, time.perf_counter() - t0

    run(warmup, 0.0)
    n, wall = run(None, seconds)
    core = env.unwrapped
    peak = maxrss_mb()
    return {
        "env_id": f"mobile-{size}-central-v0",
        "version": _version("mobile-env"),
        "stations": core.NUM_STATIONS,
        "ues": core.NUM_USERS,
        "episode_steps": core.EP_MAX_TIME,
        "env_steps": n,
        "wall_s": wall,
        "env_steps_per_s": n / wall,
        "peak_mb": peak - base_mb,
        "process_peak_mb": peak,
        "load_avg_1min": load_avg(),
    }


def mobile_env_like(size: str, step_ms: float = 100.0):
    """Our scenario of mobile-env's ``size``: the same numbers of cells and UEs (module docstring),
    with a radio step of ``step_ms`` (1000: mobile-env's time resolution, one step per second)."""
    from mobileai.twin.config import Scenario

    common = {
        "radio": {"scenario": "uma", "carrier_ghz": 2.5, "bandwidth_mhz": 10, "subcarrier_spacing_khz": 15},
        "bs": {"tx_power_dbm": 30.0},
        "mobility": {"model": "random_waypoint", "speed_mix_kmh": {5.4: 1.0}, "pause_s": 0.0},
        "time": {
            "step_ms": step_ms,
            "report_period_s": 900,
            "radio_update_ms": max(500.0, step_ms),
            "candidate_refresh_s": 5,
        },
    }
    if size == "small":
        layout = {"sites": 1, "sectors": 3, "isd_m": 150, "bs_height_m": 50, "wrap_around": False}
        common["ran"] = {"candidates": 3}  # all 3 cells
        n_ues = 5
    elif size == "medium":
        layout = {"sites": 7, "sectors": 1, "isd_m": 100, "bs_height_m": 50, "wrap_around": False}
        common["bs"]["antenna"] = {"pattern": "omni"}
        common["ran"] = {"candidates": 7}  # all 7 cells
        n_ues = 15
    else:
        raise ValueError(f"unknown mobile-env size {size!r}")
    return Scenario.model_validate(
        {
            "name": f"mobile-env-{size}",
            "layout": layout,
            "ues": {"per_sector": None, "count": n_ues, "indoor_ratio": 0.0, "min_distance_m": 10.0},
            **common,
        }
    )


def worker_vector_env(
    size: str,
    copies: int,
    seconds: float,
    warmup: int,
    threads: int | None,
    device: str,
    seed: int,
    policy: str = "random",
    step_ms: float = 100.0,
) -> dict[str, Any]:
    """Env steps/s of NetworkVectorEnv (B copies, 1 s decisions, energy control); ``policy``
    ``random``: uniform random cell states every decision (most cells change state, so every
    UE's received powers are recomputed, and where the candidate list is shorter than the cell
    list every UE re-ranks all cells); ``hold``: all cells stay active.
    ``step_ms``: the twin's radio step (1000: one radio step per decision, as mobile-env)."""
    _set_threads(threads)
    import numpy as np
    import torch

    from mobileai.twin.env import NetworkVectorEnv

    sc = mobile_env_like(size, step_ms)
    base_mb = maxrss_mb()
    t0 = time.perf_counter()
    env = NetworkVectorEnv(
        copies, sc, decision_s=1.0, episode_s=100.0, control="energy", warmup_s=0.0, device=device
    )
    env.reset(seed=seed)
    build_s = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    nvec = env.action_space.nvec

    hold = env.noop_action

    def run(n: int | None, budget_s: float) -> tuple[int, float]:
        k, t0 = 0, time.perf_counter()
        while (n is not None and k < n) or (n is None and time.perf_counter() - t0 < budget_s):
            env.step(rng.integers(0, nvec) if policy == "random" else hold)
            k += 1
        return k, time.perf_counter() - t0

    run(warmup, 0.0)
    n, wall = run(None, seconds)
    tw = env.twin
    peak = maxrss_mb()
    steps_per_decision = env._core.steps_per_decision
    return {
        "size": size,
        "copies": copies,
        "policy": policy,
        "step_ms": float(step_ms),
        "cells_per_copy": env._core.cells_per_copy,
        "ues_per_copy": env._core.ues_per_copy,
        "decision_s": 1.0,
        "radio_steps_per_decision": steps_per_decision,
        "decisions": n,
        "wall_s": wall,
        "env_steps_per_s": copies * n / wall,
        "radio_steps_per_s": copies * n * steps_per_decision / wall,
        "batched_radio_step_ms": wall / (n * steps_per_decision) * 1e3,
        "build_and_reset_s": build_s,
        "peak_mb": peak - base_mb,
        "process_peak_mb": peak,
        "threads": torch.get_num_threads(),
        "load_avg_1min": load_avg(),
        "twin_cells": tw.n_cells,
    }


# ------------------------------------------------------------------------------------------- driver
def _run_worker(args: list[str], timeout_s: float) -> dict[str, Any]:
    return run_worker(
        "mobileai.bench.twin", args, WORKER_KILL_MB, timeout_s, {"PYGAME_HIDE_SUPPORT_PROMPT": "1"}
    )


def run_twin_bench(
    steps: int = DEFAULT_STEPS,
    warmup: int = DEFAULT_WARMUP,
    crrm: bool = True,
    crrm_steps: int = DEFAULT_CRRM_STEPS,
    mobile_env: bool = True,
    env_copies: list[int] | tuple[int, ...] = DEFAULT_ENV_COPIES,
    env_sizes: list[str] | tuple[str, ...] = MOBILE_ENV_SIZES,
    env_policies: list[str] | tuple[str, ...] = ENV_POLICIES,
    env_step_ms: list[float] | tuple[float, ...] = ENV_STEP_MS,
    env_seconds: float = DEFAULT_ENV_SECONDS,
    threads: int | None = None,
    device: str = "cpu",
    seed: int = 0,
    command: str | None = None,
    progress: Any = None,
    timeout_s: float = WORKER_TIMEOUT_S,
) -> dict[str, Any]:
    """Run the twin benchmark, each measurement in its own subprocess.

    Returns ``{"machine", "command", "twin", "crrm", "ours_over_crrm", "mobile_env",
    "vector_env", "vs_mobile_env", "vs_mobile_env_1s_steps", "targets"}``:

    - ``twin``: ``cells``, ``ues``, ``median_ms``, ``mean_ms``, ``p95_ms``, ``steps_per_s``,
      ``x_real_time``, ``projected_24h_wall_s``, ``peak_mb``, ``process_peak_mb``, ...;
    - ``crrm``: the same timing keys for CRRM's step, or ``skipped``; ``ours_over_crrm`` is
      our median ms / CRRM's (None when CRRM did not run);
    - ``mobile_env[size]``: ``env_steps_per_s`` of mobile-env, or ``skipped``;
    - ``vector_env[size]``: one row per radio step in ``env_step_ms``, policy in
      ``env_policies`` and B in ``env_copies`` with ``step_ms``, ``policy``, ``copies``,
      ``env_steps_per_s`` and ``radio_steps_per_s`` (run even when mobile-env is missing);
    - ``vs_mobile_env[size][policy]``: our best env steps/s (over B) with that policy and 100 ms
      radio steps over mobile-env's (None when not both ran); ``vs_mobile_env_1s_steps``: the
      same with 1000 ms radio steps (mobile-env's time resolution);
    - ``targets``: ``step_mean_under_4ms`` / ``step_median_under_4ms`` (the twin's step),
      ``day_under_1h_projected`` (``projected_24h_wall_s`` from the mean step),
      ``not_slower_than_crrm`` (median over median); ``vector_env_100x_mobile_env`` (random
      actions on both sides, every size),
      ``vector_env_100x_mobile_env_hold`` (ours holding its cells), both at 100 ms radio steps,
      and the same two with a ``_1s_steps`` suffix at 1000 ms: True / False, None when not
      measured.
    """
    if steps < 1 or warmup < 0:
        raise ValueError("steps must be >= 1 and warmup >= 0")
    thr = ["--threads", str(threads)] if threads else []
    common = ["--warmup", str(warmup), "--device", device, "--seed", str(seed), *thr]

    def note(msg: str) -> None:
        if progress:
            progress(msg)

    note(f"twin: {SCENARIO}, {steps} steps after {warmup} warm-up")
    twin = _run_worker(["twin", "--steps", str(steps), *common], timeout_s)
    crrm_row: dict[str, Any]
    if not crrm:
        crrm_row = {"skipped": "not requested"}
    elif (why := reference_missing("crrm")) is not None:
        crrm_row = {"skipped": why}
    else:
        note(f"CRRM: {SCENARIO} layout and UEs, {crrm_steps} steps")
        crrm_row = _run_worker(["crrm", "--steps", str(crrm_steps), *common], timeout_s)
    ratio = (
        twin["median_ms"] / crrm_row["median_ms"] if "median_ms" in twin and "median_ms" in crrm_row else None
    )
    me: dict[str, Any] = {}
    vec: dict[str, list[dict[str, Any]]] = {}
    vs: dict[float, dict[str, dict[str, float | None]]] = {100.0: {}, 1000.0: {}}
    me_missing = reference_missing("mobile_env") if mobile_env else "not requested"
    for size in env_sizes:
        if me_missing is None:
            note(f"mobile-env: mobile-{size}-central-v0, {env_seconds:g} s")
            me[size] = _run_worker(
                [
                    "mobile_env",
                    "--size",
                    size,
                    "--seconds",
                    str(env_seconds),
                    "--warmup",
                    "20",
                    "--seed",
                    str(seed),
                ],
                timeout_s,
            )
        else:
            me[size] = {"skipped": me_missing}
        rows = []
        for step_ms in env_step_ms:
            for policy in env_policies:
                for b in env_copies:
                    note(
                        f"NetworkVectorEnv: mobile-env {size} size, {step_ms:g} ms radio steps, {policy} "
                        f"actions, B = {b}, {env_seconds:g} s"
                    )
                    row = _run_worker(
                        ["vector_env", "--size", size, "--copies", str(b), "--seconds", str(env_seconds),
                         "--warmup", "5", "--device", device, "--seed", str(seed), "--policy", policy,
                         "--step-ms", str(step_ms), *thr],
                        timeout_s,
                    )  # fmt: skip
                    row.setdefault("copies", b)
                    row.setdefault("policy", policy)
                    row.setdefault("step_ms", float(step_ms))
                    rows.append(row)
        vec[size] = rows
        theirs = me[size].get("env_steps_per_s")
        for step_ms in env_step_ms:
            got = vs.setdefault(float(step_ms), {}).setdefault(size, {})
            for policy in env_policies:
                best = max(
                    (
                        r["env_steps_per_s"]
                        for r in rows
                        if r["policy"] == policy and r["step_ms"] == float(step_ms) and "env_steps_per_s" in r
                    ),
                    default=None,
                )
                got[policy] = best / theirs if best is not None and theirs else None

    def target(policy: str, step_ms: float) -> bool | None:
        got = [v.get(policy) for v in vs[step_ms].values()]
        if not got or any(g is None for g in got):
            return None
        return min(got) >= TARGET_VS_MOBILE_ENV

    def below(value: float | None, limit: float) -> bool | None:
        return None if value is None else value < limit

    return {
        "machine": machine_info(device)
        | {
            "crrm": _version("crrm"),
            "mobile_env": _version("mobile-env"),
            "gymnasium": _version("gymnasium"),
            "threads_requested": threads,
        },
        "command": command or command_line("mobileai.bench.twin", "twin.py"),
        "twin": twin,
        "crrm": crrm_row,
        "ours_over_crrm": ratio,
        "mobile_env": me,
        "vector_env": vec,
        "vs_mobile_env": vs[100.0],
        "vs_mobile_env_1s_steps": vs[1000.0],
        "targets": {
            "step_mean_under_4ms": below(twin.get("mean_ms"), TARGET_STEP_MS),
            "step_median_under_4ms": below(twin.get("median_ms"), TARGET_STEP_MS),
            "day_under_1h_projected": below(twin.get("projected_24h_wall_s"), TARGET_DAY_WALL_S),
            "not_slower_than_crrm": None if ratio is None else ratio <= TARGET_VS_CRRM,
            "vector_env_100x_mobile_env": target("random", 100.0),
            "vector_env_100x_mobile_env_hold": target("hold", 100.0),
            "vector_env_100x_mobile_env_1s_steps": target("random", 1000.0),
            "vector_env_100x_mobile_env_hold_1s_steps": target("hold", 1000.0),
        },
    }


def format_twin_bench(result: dict[str, Any]) -> str:
    """A readable report of :func:`run_twin_bench`'s result."""
    m = result["machine"]
    t = result["twin"]
    lines = [
        "Twin step benchmark",
        f"machine: {m['cpu']}, {m['cores']} cores, {m.get('memory_gb')} GB, torch {m['torch']} "
        f"({m['torch_threads']} threads), device {m['device']}, load avg {m.get('load_avg_1min_at_start')}",
        f"command: {result['command']}",
        "",
    ]
    if "skipped" in t:
        lines.append(f"twin: skipped: {t['skipped']}")
    else:
        lines += [
            f"twin ({t['scenario']}: {t['cells']} cells, {t['ues']:,} UEs, {t['step_ms']:g} ms steps, "
            f"{t['threads']} threads)",
            f"  median {t['median_ms']:.2f} ms  mean {t['mean_ms']:.2f} ms  p95 {t['p95_ms']:.2f} ms  "
            f"{t['steps_per_s']:.0f} steps/s  {t['x_real_time']:.1f}x real time",
            f"  24 simulated hours: {t['projected_24h_wall_s'] / 3600:.2f} h wall  "
            f"peak {t['process_peak_mb']:.0f} MB (process)",
        ]
    c = result["crrm"]
    if "skipped" in c:
        lines.append(f"CRRM: skipped: {c['skipped']}")
    else:
        lines += [
            f"CRRM {c['version']} (same layout and UEs; move {c['moved_per_step']} UEs + all throughputs)",
            f"  median {c['median_ms']:.2f} ms  mean {c['mean_ms']:.2f} ms  "
            f"peak {c['process_peak_mb']:.0f} MB   ours / CRRM = {fmt(result['ours_over_crrm'], '.2f')}",
        ]
    lines.append("")
    for size, row in result["mobile_env"].items():
        if "skipped" in row:
            lines.append(f"mobile-env {size}: skipped: {row['skipped']}")
        else:
            lines.append(
                f"mobile-env {size} ({row['stations']} BS, {row['ues']} UEs): "
                f"{row['env_steps_per_s']:,.0f} env steps/s"
            )
        for r in result["vector_env"].get(size, []):
            if "skipped" in r:
                lines.append(f"  NetworkVectorEnv {r['policy']:>6} B={r['copies']}: skipped: {r['skipped']}")
                continue
            lines.append(
                f"  NetworkVectorEnv {r['step_ms']:>5g} ms steps {r['policy']:>6} B={r['copies']:>5}: "
                f"{r['env_steps_per_s']:>10,.0f} env steps/s  {r['radio_steps_per_s']:>11,.0f} radio steps/s"
            )
        for key, label in (
            ("vs_mobile_env", "100 ms radio steps"),
            ("vs_mobile_env_1s_steps", "1 s radio steps"),
        ):
            for policy, v in result.get(key, {}).get(size, {}).items():
                lines.append(f"  best ours ({label}, {policy} actions) / mobile-env = {fmt(v, ',.1f')}x")
    lines.append("")
    names = {
        "step_mean_under_4ms": "twin step < 4 ms (mean of the timed steps)",
        "step_median_under_4ms": "twin step < 4 ms (median)",
        "day_under_1h_projected": "24 simulated hours < 1 h wall (projected from the mean step)",
        "not_slower_than_crrm": "ours / CRRM <= 1 (median step)",
        "vector_env_100x_mobile_env": ">= 100x mobile-env (random actions on both sides)",
        "vector_env_100x_mobile_env_hold": ">= 100x mobile-env (ours holding its cells)",
        "vector_env_100x_mobile_env_1s_steps": ">= 100x mobile-env, 1 s radio steps (random actions)",
        "vector_env_100x_mobile_env_hold_1s_steps": ">= 100x mobile-env, 1 s radio steps (ours holding)",
    }
    for key, ok in result["targets"].items():
        lines.append(
            f"target {names.get(key, key)}: {'not run' if ok is None else ('met' if ok else 'MISSED')}"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- entry point
def _ints(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def main(argv: list[str] | None = None) -> int:
    """``python -m mobileai.bench.twin``: the whole benchmark, or one worker (internal)."""
    p = argparse.ArgumentParser(prog="python -m mobileai.bench.twin", description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    p.add_argument("--warmup", type=int, default=DEFAULT_WARMUP)
    p.add_argument("--crrm-steps", type=int, default=DEFAULT_CRRM_STEPS)
    p.add_argument("--no-crrm", action="store_true")
    p.add_argument("--no-mobile-env", action="store_true")
    p.add_argument("--env-copies", default=",".join(map(str, DEFAULT_ENV_COPIES)))
    p.add_argument("--env-seconds", type=float, default=DEFAULT_ENV_SECONDS)
    p.add_argument(
        "--env-step-ms", default=",".join(map(str, ENV_STEP_MS)), help="radio steps (ms) of the env rows"
    )
    p.add_argument("--step-ms", type=float, default=100.0, help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.add_argument("--worker", choices=["twin", "crrm", "mobile_env", "vector_env"], help=argparse.SUPPRESS)
    p.add_argument("--size", help=argparse.SUPPRESS)
    p.add_argument("--copies", type=int, help=argparse.SUPPRESS)
    p.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    p.add_argument("--policy", default="random", choices=["random", "hold"], help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        if a.worker == "twin":
            res = worker_twin(a.steps, a.warmup, a.threads, a.device, a.seed)
        elif a.worker == "crrm":
            res = worker_crrm(a.steps, a.warmup, a.threads, a.device, a.seed)
        elif a.worker == "mobile_env":
            res = worker_mobile_env(a.size, a.seconds, a.warmup, a.seed)
        else:
            res = worker_vector_env(
                a.size, a.copies, a.seconds, a.warmup, a.threads, a.device, a.seed, a.policy, a.step_ms
            )
        emit_result(res)
        return 0
    res = run_twin_bench(
        a.steps,
        a.warmup,
        crrm=not a.no_crrm,
        crrm_steps=a.crrm_steps,
        mobile_env=not a.no_mobile_env,
        env_copies=_ints(a.env_copies),
        env_step_ms=[float(v) for v in a.env_step_ms.split(",") if v.strip()],
        env_seconds=a.env_seconds,
        threads=a.threads,
        device=a.device,
        seed=a.seed,
        progress=lambda msg: print(msg, file=sys.stderr),
    )
    print(json.dumps(res, indent=2) if a.json else format_twin_bench(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
