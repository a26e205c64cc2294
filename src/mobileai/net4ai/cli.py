"""CLI of the Network-for-AI layer: ``mobileai offload``, ``mobileai offload-profile`` and
``mobileai bench offload``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mobileai.errors import UserError


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add the net4ai commands to the ``mobileai`` app and its ``bench`` group."""

    @app.command("offload")
    def offload(
        workload: Annotated[Path, typer.Argument(help="Workload YAML (see examples/ai-workload).")],
        out: Annotated[Path, typer.Option(help="Run directory to create (must not exist, or be empty).")],
        scenario: Annotated[
            str, typer.Option(help="Packaged scenario name or scenario YAML.")
        ] = "dense-urban",
        duration: Annotated[str, typer.Option(help="Simulated time (90s, 5m, 1h or seconds).")] = "5m",
        policy: Annotated[
            str,
            typer.Option(
                help="Comma-separated policies, or 'all': device,edge,cloud,neurosurgeon,radio_aware."
            ),
        ] = "all",
        seed: Annotated[int | None, typer.Option(min=0, help="Override the scenario's seed.")] = None,
        ues: Annotated[int | None, typer.Option(min=1, max=1_000_000, help="Override the UE count.")] = None,
        replay: Annotated[bool, typer.Option(help="Also replay measured Cork 5G uplink traces.")] = False,
        data: Annotated[
            Path | None, typer.Option(help="Cork 5G data folder (default ../shared/data/cork5g).")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable summary.")] = False,
    ) -> None:
        """Run an AI workload over the twin: where each task should run and the QoAIS it gets."""
        from mobileai.compute.workloads import load_workload
        from mobileai.console import emit, err
        from mobileai.net4ai.bench import run_workload
        from mobileai.net4ai.offload import POLICIES
        from mobileai.net4ai.report import write_run
        from mobileai.simulate import parse_duration, platform_info, versions

        wl = load_workload(workload)
        seconds = parse_duration(duration)
        if seconds > 3600:
            raise UserError(f"--duration {duration!r}: at most 1 h for an offload run")
        pols = POLICIES if policy == "all" else tuple(p.strip() for p in policy.split(",") if p.strip())
        bad = [p for p in pols if p not in POLICIES]
        if bad or not pols:
            raise UserError(f"--policy {policy!r}: unknown {bad}; allowed: all or {', '.join(POLICIES)}")
        from mobileai.data.rundir import check_target

        check_target(out)
        say = None if as_json else (lambda m: err.print(m, highlight=False))
        res = run_workload(
            wl, scenario, seconds, pols, seed, ues, cork_data=data, replay=replay, progress=say
        )
        import torch

        manifest = {
            "command": " ".join(["mobileai", *sys.argv[1:]]),
            "workload_file": str(workload),
            "scenario": res["scenario"],
            "seed": res["seed"],
            "duration_s": seconds,
            "versions": versions(),
            "platform": platform_info(torch.device("cpu")),
        }
        summary = write_run(out, res, wl, manifest)
        brief = {
            "out": str(out),
            **{k: summary[k] for k in ("scenario", "seed", "workload", "duration_s", "ai_ues")},
            "policies": {
                src: {
                    p: {
                        k: s[k]
                        for k in (
                            "deadline_met",
                            "p50_latency_ms",
                            "p95_latency_ms",
                            "device_energy_j",
                            "uplink_mb",
                        )
                    }
                    for p, s in runs.items()
                }
                for src, runs in summary["runs"].items()
            },
        }
        human = None
        if not as_json:
            lines = [f"[bold green]done[/bold green]: {out}"]
            for src, runs in brief["policies"].items():
                lines.append(f"  {src} uplinks")
                for p, s in runs.items():
                    lines.append(
                        f"    {p:13s} met {s['deadline_met']:.3f}  p50 {s['p50_latency_ms']:7.1f} ms  "
                        f"p95 {s['p95_latency_ms']:8.1f} ms  device {s['device_energy_j']:8.1f} J  "
                        f"uplink {s['uplink_mb']:8.1f} MB"
                    )
            lines.append(f"  report: {out / 'report.md'}")
            human = "\n".join(lines)
        emit(brief, as_json, human)

    @app.command("offload-profile")
    def offload_profile(
        out: Annotated[Path | None, typer.Option(help="Write here instead of the packaged profile.")] = None,
        repeats: Annotated[int, typer.Option(min=1, max=1000, help="Timed runs per block.")] = 15,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """Re-measure the per-layer model profiles (FLOPs, sizes, CPU latency) on this machine."""
        from mobileai.compute.profiles import generate_profiles
        from mobileai.console import emit

        path = generate_profiles(out, repeats=repeats)
        emit({"profile": str(path)}, as_json, f"[bold green]written[/bold green]: {path}")

    @bench_app.command("offload")
    def bench_offload(
        workload: Annotated[
            Path | None, typer.Option(help="Workload YAML (default: the robots-and-glasses example).")
        ] = None,
        scenario: Annotated[
            str, typer.Option(help="Packaged scenario name or scenario YAML.")
        ] = "dense-urban",
        duration: Annotated[str, typer.Option(help="Simulated time per policy.")] = "5m",
        replay: Annotated[
            bool, typer.Option(help="Replay Cork 5G uplinks and check the predictor on them.")
        ] = True,
        data: Annotated[
            Path | None, typer.Option(help="Cork 5G data folder (default ../shared/data/cork5g).")
        ] = None,
        tdd: Annotated[
            bool, typer.Option(help="Also run ours with the TDD controller (records the twin twice).")
        ] = True,
        seed: Annotated[int | None, typer.Option(min=0, help="Override the scenario's seed.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """Placement policies side by side: deadline satisfaction, p50/p95 latency, device energy,
        uplink bytes, QoAIS; decision time for 1,000 tasks; predictor calibration on Cork 5G."""
        from mobileai.console import emit, err
        from mobileai.net4ai.bench import run_offload_bench
        from mobileai.net4ai.report import finite
        from mobileai.simulate import parse_duration

        seconds = parse_duration(duration)
        say = None if as_json else (lambda m: err.print(m, highlight=False))
        res = finite(
            run_offload_bench(workload, scenario, seconds, data, replay, progress=say, tdd=tdd, seed=seed)
        )
        human = None
        if not as_json:
            lines = [
                f"bench offload: {res['workload']} on {res['scenario']} ({res['duration_s']:g} s, "
                f"{res['ai_ues']} AI UEs)"
            ]
            for key in ("deadline_met", "p50_latency_ms", "p95_latency_ms", "device_energy_j", "uplink_mb"):
                lines.append(f"  {key:16s} " + "  ".join(f"{p} {v:.3g}" for p, v in res[key].items()))
            lines.append(f"  targets: {res.get('targets')}")
            d = res["decision_time"]
            lines.append(
                f"  decision, {d['tasks']:,} tasks in one batch call (median ms): "
                + "  ".join(f"{p} {v['batch_median_ms']:.3f}" for p, v in d["policies"].items())
            )
            if "tdd" in res:
                t = res["tdd"]
                lines.append(
                    f"  ours+tdd: {t['cells_switched']} cells to DDSUU, DL to their other UEs "
                    + (f"{t['dl_served_change']:+.1%}" if t["dl_served_change"] is not None else "n/a")
                )
            human = "\n".join(lines)
        emit(res, as_json, human)
