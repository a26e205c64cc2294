"""The ``mobileai`` command.

Exit codes: 0 success, 2 user error (bad input: one line, no traceback), 1 internal error.
``--json`` prints machine-readable output on stdout; progress and messages go to stderr.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    TimeRemainingColumn,
)

from mobileai.console import Device, check_device, emit, err, progress_bar
from mobileai.errors import UserError

app = typer.Typer(
    name="mobileai",
    help="Mobile AI platform: 3GPP-calibrated network digital twin and the AI that runs on it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
bench_app = typer.Typer(
    help="Benchmarks: speed, memory and accuracy, printed side by side.", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")


class PropScenario(StrEnum):
    uma = "uma"
    umi = "umi"
    rma = "rma"


@app.command()
def scenarios(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the packaged scenarios."""
    from mobileai.twin.config import load_scenario, packaged_scenarios

    rows = [{"name": n, "description": load_scenario(n).description} for n in packaged_scenarios()]
    emit(
        {"scenarios": rows}, as_json, "\n".join(f"[bold]{r['name']}[/bold]  {r['description']}" for r in rows)
    )


@app.command()
def calibrate(
    scenario: Annotated[PropScenario, typer.Option(help="TR 38.901 scenario.")] = PropScenario.uma,
    carrier_ghz: Annotated[float, typer.Option("--carrier-ghz", help="Carrier frequency, GHz.")] = 6.0,
    drops: Annotated[int, typer.Option(min=1, max=10_000, help="Independent drops (570 UEs each).")] = 20,
    seed: Annotated[int, typer.Option(min=0, help="First drop's seed.")] = 0,
    device: Annotated[Device, typer.Option(help="cpu, cuda or auto.")] = Device.cpu,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Run the 3GPP large-scale calibration (TR 38.901 7.8.1) and compare with RAN1's results."""
    from mobileai.twin.calibration import run_calibration
    from mobileai.twin.config import FREQUENCY_RANGE_GHZ

    lo, hi = FREQUENCY_RANGE_GHZ[scenario.value]
    if not lo <= carrier_ghz <= hi:
        raise UserError(
            f"--carrier-ghz {carrier_ghz:g} is outside the {scenario.value.upper()} "
            f"validity range {lo}..{hi} GHz"
        )
    dev = check_device(device)
    with progress_bar(not as_json) as bar:
        task = bar.add_task("calibration drops", total=drops)
        res = run_calibration(
            scenario.value, carrier_ghz, drops, seed, dev, on_drop=lambda _d: bar.advance(task)
        )
    summary = res.summary()
    human = None
    if not as_json:
        lines = [
            f"TR 38.901 large-scale calibration: {scenario.value.upper()} {carrier_ghz:g} GHz, "
            f"{drops} drops, {summary['ues']} UEs"
        ]
        ref = summary.get("reference")
        for metric in ("coupling_gain_db", "geometry_sinr_db"):
            ours = summary[metric]
            line = f"  {metric:18s} " + "  ".join(f"{k} {v:7.1f}" for k, v in ours.items())
            if ref:
                line += "   | 3GPP " + "  ".join(f"{k} {v:7.1f}" for k, v in ref[metric].items())
            lines.append(line)
        if ref:
            lines.append(f"  max |ours - 3GPP| at p5/p50/p95: {summary['max_abs_error_db']:.2f} dB")
        human = "\n".join(lines)
    emit(summary, as_json, human)


@app.command()
def simulate(
    scenario: Annotated[str, typer.Argument(help="Packaged scenario name or path to a scenario YAML.")],
    out: Annotated[Path, typer.Option(help="Run directory to create (must not exist, or be empty).")],
    seed: Annotated[int | None, typer.Option(min=0, help="Override the scenario's seed.")] = None,
    device: Annotated[Device, typer.Option(help="cpu, cuda or auto.")] = Device.cpu,
    ues: Annotated[
        int | None, typer.Option(min=1, max=10_000_000, help="Override the number of UEs.")
    ] = None,
    duration: Annotated[
        str | None,
        typer.Option(
            help="Run the dynamic twin this long (90s, 15m, 2h, 24h, 1d or plain seconds): KPIs per "
            "cell per reporting period, events, report over the day. Without it: one static drop."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable summary.")] = False,
) -> None:
    """Simulate a scenario, a static drop or (--duration) a dynamic run: Parquet KPIs, DuckDB
    catalog, run.json and an HTML report."""
    from mobileai.simulate import format_duration, parse_duration, run_dynamic_simulation, run_simulation

    dev = check_device(device)
    if duration is not None:
        seconds = parse_duration(duration)
        bar = progress_bar(not as_json)
        bar.columns = (*bar.columns, TimeRemainingColumn())
        with bar:
            summary = run_dynamic_simulation(
                scenario, out, duration, seed=seed, device=dev, n_ues=ues, progress=bar
            )
        human = None
        if not as_json:
            t = summary["totals"]
            lines = [
                f"[bold green]done[/bold green]: {summary['out']}",
                f"  {summary['scenario']}  seed {summary['seed']}  {summary['ues']:,} UEs  "
                f"{summary['cells']} cells  ({summary['device']})",
                f"  simulated {format_duration(seconds)} ({summary['steps']:,} steps) "
                f"in {summary['wall_s']:,.1f} s: "
                f"{summary['steps_per_s']:,.1f} steps/s, {summary['speed']:,.2f} x real time",
                f"  DL {t['dl_volume_gb']:,.2f} GB  UL {t['ul_volume_gb']:,.2f} GB  energy "
                f"{t['energy_kwh']:,.2f} kWh  HOs {t['ho_attempts']:,}  RLFs {t['rlfs']:,}  "
                f"faults {t['faults']}",
            ]
            if summary["unreported_tail_s"] > 0:
                lines.append(
                    f"  [yellow]note[/yellow]: the last {summary['unreported_tail_s']:g} s do not fill a "
                    "reporting period and have no KPI row"
                )
            lines.append(f"  report: {Path(summary['out']) / 'report.html'}")
            human = "\n".join(lines)
        emit(summary, as_json, human)
        return
    with progress_bar(not as_json) as bar:
        summary = run_simulation(scenario, out, seed=seed, device=dev, n_ues=ues, progress=bar)
    human = None
    if not as_json:
        s, r, t = summary["sinr_db"], summary["rsrp_dbm"], summary["timings_s"]
        human = "\n".join(
            [
                f"[bold green]done[/bold green]: {summary['out']}",
                f"  {summary['scenario']}  seed {summary['seed']}  {summary['ues']:,} UEs  "
                f"{summary['cells']} cells  ({summary['device']})",
                f"  SS-SINR p5/p50/p95 {s['p5']:.1f} / {s['p50']:.1f} / {s['p95']:.1f} dB   "
                f"SS-RSRP p50 {r['p50']:.1f} dBm",
                f"  coverage (SS-SINR >= -6 dB) {summary['coverage_share']:.1%}   time {t['total']:.1f} s",
                f"  report: {Path(summary['out']) / 'report.html'}",
            ]
        )
    emit(summary, as_json, human)


@app.command("run")
def run_cmd(
    scenario: Annotated[str, typer.Argument(help="Packaged scenario name or path to a scenario YAML.")],
    out: Annotated[Path, typer.Option(help="Run directory to create (must not exist, or be empty).")],
    apps: Annotated[str, typer.Option(help="Comma-separated apps to run (see `mobileai apps`).")],
    baseline: Annotated[
        str, typer.Option(help="Apps of the baseline arm, comma-separated; none = static configuration.")
    ] = "none",
    duration: Annotated[
        str | None, typer.Option(help="Network time per arm (15m, 2h, 24h ...); default: the scenario's.")
    ] = None,
    period: Annotated[
        str | None,
        typer.Option(
            help="KPI reporting period = the apps' decision interval (5m, 15m ...); default: scenario's."
        ),
    ] = None,
    start_hour: Annotated[
        float | None,
        typer.Option(help="Local time of day the run starts at, hours (0-24); default: scenario's."),
    ] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="Override the scenario's seed.")] = None,
    ues: Annotated[
        int | None, typer.Option(min=1, max=10_000_000, help="Override the number of UEs.")
    ] = None,
    device: Annotated[Device, typer.Option(help="cpu, cuda or auto.")] = Device.cpu,
    approver: Annotated[
        str, typer.Option(help="Who approves high-impact actions: reject (default), accept or console.")
    ] = "reject",
    guardrails: Annotated[
        Path | None, typer.Option(help="YAML with guardrail settings (docs/closed-loop.md).")
    ] = None,
    sla_p5_mbps: Annotated[
        float, typer.Option(help="SLA: 5th-percentile DL user throughput per cell, Mbit/s.")
    ] = 1.0,
    app_opt: Annotated[
        list[str] | None,
        typer.Option(
            "--app-opt", help="An app's option, APP.KEY=VALUE (repeatable), e.g. anomaly-healer.model=DIR."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable summary.")] = False,
) -> None:
    """Closed loop: run the scenario twice with the same seed, baseline vs apps, through the
    guardrails, and write a comparison report."""
    from mobileai.agent.compare import parse_app_list, run_comparison
    from mobileai.ai4net.app import parse_app_options

    dev = check_device(device)
    app_list = parse_app_list(apps, "--apps")
    base_list = parse_app_list(baseline, "--baseline")
    bar = progress_bar(not as_json)
    bar.columns = (*bar.columns, TimeRemainingColumn())
    tasks: dict[str, object] = {}

    def on_progress(arm: str, step: int, total: int) -> None:
        if arm not in tasks:
            tasks[arm] = bar.add_task(f"{arm} arm", total=total)
        bar.update(tasks[arm], completed=step)

    with bar:
        summary = run_comparison(
            scenario, out, app_list, base_list, duration=duration, period=period, start_hour=start_hour,
            seed=seed, n_ues=ues, device=dev, approver=approver, guardrails=guardrails,
            sla_p5_mbps=sla_p5_mbps, app_options=parse_app_options(app_opt), on_progress=on_progress,
        )  # fmt: skip
    human = None
    if not as_json:
        b, o = summary["arms"]["baseline"], summary["arms"]["apps"]
        rel = summary["relative_change"]

        def line(key: str, label: str, unit: str) -> str:
            r = rel.get(key)
            change = "" if r is None else f"  ({r:+.1%})"

            def num(v: float | None) -> str:
                return f"{'-':>12}" if v is None else f"{v:>12,.3f}"

            return f"  {label:<22} {num(b[key])}  {num(o[key])} {unit}{change}"

        human = "\n".join(
            [
                f"[bold green]done[/bold green]: {summary['out']}",
                f"  {'':<22} {'baseline':>12}  {'apps':>12}",
                line("energy_kwh", "RAN energy", "kWh"),
                line("dl_volume_gbit", "DL served", "Gbit"),
                line("ue_thp_dl_p5_mbps", "DL user thp p5", "Mbit/s"),
                line("ho_failures", "HO failures", ""),
                line("rlfs", "RLFs", ""),
                line("sla_violations", "SLA violations", ""),
                line("actions_applied", "actions applied", ""),
                line("rollbacks", "rollbacks", ""),
                f"  report: {Path(summary['out']) / 'report.html'}",
            ]
        )
    emit(summary, as_json, human)


@app.command("replay")
def replay_cmd(
    kpis: Annotated[
        Path, typer.Argument(help="KPI table: Parquet/CSV in the kpis.parquet schema, or a store dir.")
    ],
    out: Annotated[Path, typer.Option(help="Output directory to create (must not exist, or be empty).")],
    apps: Annotated[str, typer.Option(help="Comma-separated apps (see `mobileai apps`).")],
    run: Annotated[str | None, typer.Option(help="Run inside a store directory.")] = None,
    guardrails: Annotated[Path | None, typer.Option(help="YAML with guardrail settings.")] = None,
    app_opt: Annotated[
        list[str] | None,
        typer.Option(
            "--app-opt", help="An app's option, APP.KEY=VALUE (repeatable), e.g. anomaly-healer.model=DIR."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable summary.")] = False,
) -> None:
    """Open loop: replay recorded KPIs through apps and guardrails; decisions are logged, not applied."""
    from mobileai.agent.compare import parse_app_list
    from mobileai.agent.replay import run_replay
    from mobileai.ai4net.app import parse_app_options

    summary = run_replay(
        kpis, out, parse_app_list(apps, "--apps"), run=run, guardrails=guardrails,
        app_options=parse_app_options(app_opt),
    )  # fmt: skip
    loop = summary["loop"]
    human = (
        f"[bold green]done[/bold green]: {summary['out']}\n"
        f"  {summary['rows']:,} KPI rows, {summary['cells']} cells, {loop['periods']} periods\n"
        f"  decisions {loop['decisions']} (rejected by limits {loop['rejected_limits']}, conflicts "
        f"{loop['conflicts']}); nothing applied (open loop)\n"
        f"  decisions.parquet, audit.jsonl, summary.json"
    )
    emit(summary, as_json, human)


@app.command("apps")
def apps_cmd(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable list.")] = False) -> None:
    """List the registered closed-loop apps."""
    from mobileai.ai4net.app import app_names

    names = app_names()
    emit({"apps": names}, as_json, "\n".join(names))


@bench_app.command("radio")
def bench_radio(
    sizes: Annotated[str, typer.Option(help="Comma-separated UE counts.")] = "570,5700,57000,570000",
    sionna: Annotated[bool, typer.Option(help="Also time Sionna's UMa topology step (reference).")] = True,
    sionna_sizes: Annotated[str, typer.Option(help="UE counts for Sionna.")] = "100,300,1000",
    repeats: Annotated[int, typer.Option(min=1, max=100, help="Timed repetitions (best is kept).")] = 3,
    device: Annotated[Device, typer.Option(help="cpu, cuda or auto.")] = Device.cpu,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Time and peak memory of coupling loss + SINR for 57 cells x N UEs, next to Sionna."""
    from mobileai.bench.radio import format_radio_bench, run_radio_bench

    def parse(text: str, name: str) -> list[int]:
        try:
            vals = [int(s) for s in text.split(",") if s.strip()]
        except ValueError:
            raise UserError(f"--{name}: expected comma-separated integers, got {text!r}") from None
        if not vals or any(v < 1 for v in vals):
            raise UserError(f"--{name}: expected positive integers, got {text!r}")
        return vals

    dev = check_device(device)
    result = run_radio_bench(
        parse(sizes, "sizes"),
        parse(sionna_sizes, "sionna-sizes") if sionna else [],
        repeats=repeats,
        device=dev,
    )
    emit(result, as_json, None if as_json else format_radio_bench(result))


@bench_app.command("twin")
def bench_twin(
    steps: Annotated[int, typer.Option(min=1, max=100_000, help="Timed twin steps (dense-urban).")] = 300,
    warmup: Annotated[int, typer.Option(min=0, max=100_000, help="Untimed warm-up steps.")] = 50,
    crrm: Annotated[bool, typer.Option(help="Also time CRRM on the same layout and UEs (reference).")] = True,
    crrm_steps: Annotated[int, typer.Option(min=1, max=100_000, help="Timed CRRM steps.")] = 100,
    mobile_env: Annotated[
        bool, typer.Option("--mobile-env/--no-mobile-env", help="Also time mobile-env (reference).")
    ] = True,
    env_copies: Annotated[
        str, typer.Option(help="Comma-separated copies B of NetworkVectorEnv ('' to skip).")
    ] = "1,256,1024",
    env_seconds: Annotated[
        float, typer.Option(min=0.1, max=3600, help="Wall seconds timed per env measurement.")
    ] = 20.0,
    env_step_ms: Annotated[
        str,
        typer.Option(
            help="Comma-separated radio steps (ms) of the env rows: 100 = the twin's default, "
            "1000 = mobile-env's resolution (one snapshot per 1 s step)."
        ),
    ] = "100,1000",
    threads: Annotated[
        int | None, typer.Option(min=1, max=1024, help="torch threads in the workers (default: torch's).")
    ] = None,
    device: Annotated[Device, typer.Option(help="cpu, cuda or auto.")] = Device.cpu,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Time the twin's 100 ms step (dense-urban), next to CRRM, and the RL env next to mobile-env."""
    from mobileai.bench.twin import format_twin_bench, run_twin_bench

    try:
        copies = [int(s) for s in env_copies.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--env-copies: expected comma-separated integers, got {env_copies!r}") from None
    if any(b < 1 for b in copies):
        raise UserError(f"--env-copies: expected positive integers, got {env_copies!r}")
    try:
        step_ms = [float(s) for s in env_step_ms.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--env-step-ms: expected comma-separated numbers, got {env_step_ms!r}") from None
    if any(not 1 <= v <= 5000 for v in step_ms):
        raise UserError(f"--env-step-ms: each step must be 1-5000 ms (time.step_ms), got {env_step_ms!r}")
    dev = check_device(device)
    if dev == "auto":
        import torch

        dev = "cuda" if torch.cuda.is_available() else "cpu"
    result = run_twin_bench(
        steps,
        warmup,
        crrm=crrm,
        crrm_steps=crrm_steps,
        mobile_env=mobile_env,
        env_copies=copies,
        env_seconds=env_seconds,
        env_step_ms=step_ms,
        threads=threads,
        device=dev,
        progress=None if as_json else (lambda msg: err.print(msg, highlight=False)),
    )
    emit(result, as_json, None if as_json else format_twin_bench(result))


@bench_app.command("handover")
def bench_handover(
    scenario: Annotated[str, typer.Option(help="Packaged scenario name or YAML path.")] = "dense-urban",
    seconds: Annotated[float, typer.Option(min=1, max=3600, help="Simulated seconds per variant.")] = 60.0,
    map_every_s: Annotated[
        float, typer.Option(min=0.1, max=60, help="Best-server map sampled every this many seconds.")
    ] = 0.5,
    seed: Annotated[int | None, typer.Option(help="Override the scenario seed.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Handovers per UE per minute by speed class, against best-server map changes and the
    geometric boundary crossings of the layout (soft and hard LOS state in one run)."""
    from mobileai.bench.handover import format_handover_bench, run_handover_bench

    result = run_handover_bench(scenario, seconds, map_every_s, seed)
    emit(result, as_json, None if as_json else format_handover_bench(result))


# ---- command groups of the other layers: each module adds its commands with
# ``register(app, bench_app)`` (one line per module, in layer order).
from mobileai.data.data_cli import register as _reg_data  # noqa: E402

_reg_data(app, bench_app)
from mobileai.ai4net.anomaly.cli import register as _reg_anomaly  # noqa: E402

_reg_anomaly(app, bench_app)
from mobileai.ai4net.forecast.cli import register as _reg_forecast  # noqa: E402

_reg_forecast(app, bench_app)
from mobileai.ai4net.energy.cli import register as _reg_energy  # noqa: E402

_reg_energy(app, bench_app)
from mobileai.net4ai.cli import register as _reg_net4ai  # noqa: E402

_reg_net4ai(app, bench_app)
# ---- end of command groups


def main() -> None:
    """Entry point: user errors exit 2 with one line, internal errors exit 1.

    Typer (standalone) already turns usage errors (bad option values) into exit code 2.
    """
    try:
        app()
    except UserError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except Exception as exc:
        if os.environ.get("MOBILEAI_DEBUG"):
            raise
        err.print(
            f"[red]internal error:[/red] {type(exc).__name__}: {exc} (set MOBILEAI_DEBUG=1 for a traceback)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
