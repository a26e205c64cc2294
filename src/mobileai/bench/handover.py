"""Handover-rate check: serving-cell changes per UE per minute by speed class, against the
rates the layout and the radio map imply.

For each speed class of ``mobility.speed_mix_kmh`` the twin runs ``seconds`` of 100 ms steps
(faults off) and reports, per UE and minute:

- **handovers**: serving-cell changes (A3 with L3 filter, hysteresis and TTT, TS 38.331 5.5.4.4),
  and the share of them that are ping-pongs (back to the previous cell within
  ``ran.ping_pong_window_s``);
- **map changes**: how often the strongest cell changes along the same paths, evaluated every
  ``map_every_s`` from the large-scale gains of all cells (no filter, no hysteresis): the
  fragmentation of the best-server map that handover has to follow or filter;
- **geometric crossings**: the boundary crossings of a hexagonal best-server map without
  shadowing or LOS effects, from the distance each class actually travelled. A straight path
  crosses (2/π) L boundaries per metre where L is the boundary length per unit area (Buffon); a
  hexagonal grid of inter-site distance D with 3 sectors per site has L = 4/D (hexagon edges plus
  the three sector borders), with 1 sector L = 2/D. Reported for ``layout.kind: hex`` only.

The run is repeated with the hard LOS state (``radio.los_transition_m = 0``) next to the
scenario's own setting, so the effect of the soft LOS state (TR 38.901 7.6.3.3) is read off one
run. Ratios above ~2 over the geometric rate come from the map's fragmentation (LOS state and
shadow fading, both spatially consistent per TR 38.901 7.6.3); the map-change rate shows how much
of it handover filters out.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from mobileai.bench.workers import load_avg, machine_info
from mobileai.twin.config import Scenario, load_scenario
from mobileai.twin.engine import Twin


def geometric_crossings_per_m(sc: Scenario) -> float | None:
    """Boundary crossings per metre of straight travel on the scenario's hexagonal cell map
    (no shadowing, no LOS effects); None for layouts read from a file."""
    if sc.layout.kind != "hex":
        return None
    boundary_per_m2 = (4.0 if sc.layout.sectors == 3 else 2.0) / sc.layout.isd_m
    return 2.0 / math.pi * boundary_per_m2


def measure(sc: Scenario, seconds: float, map_every_s: float = 0.5) -> dict[str, dict[str, float]]:
    """Per speed class (km/h, as a string): UEs, km travelled per UE, handovers, ping-pong share,
    map changes and geometric crossings per UE per minute."""
    tw = Twin(sc)
    tw.step()
    speed_kmh = (tw.mobility.speed * 3.6).round().cpu()
    moving = (speed_kmh > 0).nonzero().squeeze(1)
    n_steps = max(1, round(seconds * 1000.0 / sc.time.step_ms))
    map_every = max(1, round(map_every_s * 1000.0 / sc.time.step_ms))
    n = tw.n_ues
    prev = tw.serving.cpu().clone()
    before_prev = torch.full((n,), -1, dtype=torch.long)
    last_change = torch.full((n,), -1e9, dtype=torch.float64)
    hos = torch.zeros(n)
    pps = torch.zeros(n)
    dist = torch.zeros(n, dtype=torch.float64)
    x0, y0 = tw.mobility.x.cpu().double().clone(), tw.mobility.y.cpu().double().clone()
    cap = tw.mobility.speed.cpu().double() * tw.dt * 1.001  # wrap-around jumps are not travel

    def strongest() -> torch.Tensor:
        return tw.best_server(moving).cpu()

    best = strongest()
    map_changes = torch.zeros(moving.numel())
    for i in range(n_steps):
        tw.step()
        srv = tw.serving.cpu()
        changed = (srv != prev) & (srv >= 0) & (prev >= 0)
        pp = changed & (srv == before_prev) & (tw.t - last_change <= sc.ran.ping_pong_window_s)
        hos += changed.float()
        pps += pp.float()
        before_prev = torch.where(changed, prev, before_prev)
        last_change = torch.where(changed, torch.full_like(last_change, tw.t), last_change)
        prev = srv.clone()
        x1, y1 = tw.mobility.x.cpu().double(), tw.mobility.y.cpu().double()
        dist += torch.minimum(torch.hypot(x1 - x0, y1 - y0), cap)
        x0, y0 = x1.clone(), y1.clone()
        if (i + 1) % map_every == 0:
            b = strongest()
            map_changes += (b != best).float()
            best = b
    minutes = n_steps * sc.time.step_ms / 60_000.0
    geo = geometric_crossings_per_m(sc)
    out: dict[str, dict[str, float]] = {}
    moving_speed = speed_kmh[moving]
    for v in speed_kmh.unique().tolist():
        sel = speed_kmh == v
        row: dict[str, Any] = {
            "ues": int(sel.sum()),
            "km_per_ue": float(dist[sel].mean()) / 1000.0,
            "handovers_per_min": float(hos[sel].mean()) / minutes,
            "ping_pong_share": float(pps[sel].sum() / hos[sel].sum()) if hos[sel].sum() > 0 else 0.0,
        }
        if v > 0:
            row["map_changes_per_min"] = float(map_changes[moving_speed == v].mean()) / minutes
            if geo is not None:
                row["geometric_per_min"] = geo * float(dist[sel].mean()) / minutes
                row["ratio_to_geometric"] = (
                    row["handovers_per_min"] / row["geometric_per_min"]
                    if row["geometric_per_min"] > 0
                    else None
                )
        out[f"{v:g}"] = row
    return out


def run_handover_bench(
    scenario: str = "dense-urban", seconds: float = 60.0, map_every_s: float = 0.5, seed: int | None = None
) -> dict[str, Any]:
    """Handover rates of ``scenario`` (faults off) with its own LOS setting and with the hard
    LOS state, in one run."""
    sc = load_scenario(scenario).with_updates(faults={"schedule": [], "random_per_cell_day": 0})
    if seed is not None:
        sc = sc.with_updates(seed=seed)
    t0 = time.perf_counter()
    variants = {f"los_transition_m={sc.radio.los_transition_m:g}": sc}
    if sc.radio.los_transition_m > 0:
        variants["los_transition_m=0 (hard)"] = sc.with_updates(radio={"los_transition_m": 0.0})
    results = {name: measure(v, seconds, map_every_s) for name, v in variants.items()}
    return {
        "benchmark": "handover",
        "scenario": sc.name,
        "seed": sc.seed,
        "seconds": seconds,
        "start_hour": sc.time.start_hour,
        "a3": {
            "offset_db": sc.ran.a3_offset_db,
            "hysteresis_db": sc.ran.hysteresis_db,
            "ttt_ms": sc.ran.time_to_trigger_ms,
            "l3_filter_k": sc.ran.l3_filter_k,
        },
        "geometric_crossings_per_km": None
        if geometric_crossings_per_m(sc) is None
        else 1000.0 * geometric_crossings_per_m(sc),
        "variants": results,
        "wall_s": time.perf_counter() - t0,
        "load_avg_1min": load_avg(),
        "machine": machine_info(),
    }


def _cell(row: dict[str, Any], key: str, spec: str = ".2f") -> str:
    return "-" if row.get(key) is None else format(row[key], spec)


def format_handover_bench(result: dict[str, Any]) -> str:
    """A plain-text table per variant."""
    lines = [
        f"handover rates, {result['scenario']} (seed {result['seed']}, {result['seconds']:g} s from "
        f"{result['start_hour']:g}:00, faults off), per UE per minute",
    ]
    head = ("km/h", "UEs", "HO/min", "ping-pong", "map/min", "geom/min", "HO/geom")
    widths = (6, 6, 8, 10, 8, 9, 8)
    for name, rows in result["variants"].items():
        lines.append(f"\n{name}")
        lines.append(" ".join(f"{h:>{w}}" for h, w in zip(head, widths, strict=True)))
        for v, r in rows.items():
            cells = (
                v,
                str(r["ues"]),
                _cell(r, "handovers_per_min"),
                _cell(r, "ping_pong_share", ".1%"),
                _cell(r, "map_changes_per_min"),
                _cell(r, "geometric_per_min"),
                _cell(r, "ratio_to_geometric"),
            )
            lines.append(" ".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True)))
    return "\n".join(lines)
