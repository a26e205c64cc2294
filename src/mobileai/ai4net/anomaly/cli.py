"""CLI: ``mobileai anomaly`` (open loop on a KPI export) and ``mobileai bench anomaly``.

Registered from :mod:`mobileai.cli` with :func:`register`. ``--json`` prints one JSON object on
stdout; progress and messages go to stderr; bad input raises :class:`~mobileai.errors.UserError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from mobileai.console import emit, err
from mobileai.data.tables import read_table_file
from mobileai.errors import UserError


def _read_table(path: Path, what: str) -> pd.DataFrame:
    return read_table_file(path, what).to_pandas()


def _timestamps(df: pd.DataFrame, what: str) -> pd.DataFrame:
    for c in ("period_start", "period_end"):
        if c in df and not pd.api.types.is_datetime64_any_dtype(df[c]):
            try:
                df[c] = pd.to_datetime(df[c], utc=True)
            except (ValueError, TypeError):
                raise UserError(f"{what}: column {c} is not a timestamp") from None
    return df


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``anomaly`` to ``app`` and ``anomaly`` to ``bench_app``."""

    @app.command("anomaly")
    def anomaly(
        kpis: Annotated[Path, typer.Option(help="KPI table (Parquet or CSV; columns as docs/kpis.md).")],
        out: Annotated[Path, typer.Option(help="Folder to create: detections, proposals, summary.")],
        model: Annotated[
            Path | None, typer.Option(help="Saved model folder to use (else one is trained on --kpis).")
        ] = None,
        cells: Annotated[Path | None, typer.Option(help="Cells table (topology), Parquet or CSV.")] = None,
        events: Annotated[
            Path | None, typer.Option(help="Fault log (events table) to learn fault kinds from.")
        ] = None,
        train_until: Annotated[
            str | None,
            typer.Option(help="Learn from periods before this time (ISO), detect from it on. Default: all."),
        ] = None,
        save_model: Annotated[
            Path | None, typer.Option(help="Save the trained model to this folder.")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable summary.")] = False,
    ) -> None:
        """Detect abnormal cells and periods in a KPI export, localise root causes and propose
        healing actions (open loop: nothing is applied)."""
        from mobileai.ai4net.anomaly.detector import AnomalyModel
        from mobileai.ai4net.anomaly.pipeline import detect, proposals, write_results

        table = _timestamps(_read_table(kpis, "--kpis"), "--kpis")
        cell_tab = _read_table(cells, "--cells") if cells is not None else None
        ev = _timestamps(_read_table(events, "--events"), "--events") if events is not None else None
        if ev is not None:
            for c in ("start", "end"):
                if c in ev:
                    ev[c] = pd.to_datetime(ev[c], utc=True)
        if train_until is not None:
            try:
                cut = pd.Timestamp(train_until)
                cut = cut.tz_localize("UTC") if cut.tzinfo is None else cut.tz_convert("UTC")
            except ValueError:
                raise UserError(f"--train-until {train_until!r}: not an ISO timestamp") from None
            hist, scored = table[table["period_start"] < cut], table[table["period_start"] >= cut]
            if hist.empty or scored.empty:
                raise UserError(f"--train-until {train_until}: leaves no history or nothing to score")
        else:
            hist = scored = table
        if model is not None:
            m = AnomalyModel.load(model)
            known = set(m.profile.location.index.get_level_values(0))
            if not set(scored["cell_id"].astype(str)) <= known:
                err.print("cells unknown to the model: learning this network's normal profile from --kpis")
                m = m.with_profile(hist, cell_tab)
        else:
            err.print(
                f"training on {len(hist):,} cell-periods" + (" with fault labels" if ev is not None else "")
            )
            m = AnomalyModel.fit(hist, ev, cell_tab)
        if save_model is not None:
            m.save(save_model)
        det = detect(m, scored)
        props = proposals(m, det, scored)
        summ = write_results(out, det, props) | {"out": str(out), "supervised": m.supervised}
        human = (
            f"[bold green]done[/bold green]: {out}\n  {summ['flagged']} of {summ['cell_periods']} "
            f"cell-periods flagged, {summ['incidents']} incidents, {summ['proposals']} healing proposals"
        )
        emit(summ, as_json, human)

    @bench_app.command("anomaly")
    def bench_anomaly(
        data: Annotated[
            Path | None,
            typer.Option(help="ML-MATT folder (lte-anomaly-mlmatt); default: the twin benchmark."),
        ] = None,
        days: Annotated[
            int, typer.Option(min=0, max=30, help="Days of the dense-urban history (0: none, else >= 2).")
        ] = 4,
        extra_days: Annotated[
            int, typer.Option(min=0, max=30, help="Days of an extra fault-rich history (0: none).")
        ] = 2,
        extra_fault_rate: Annotated[
            float,
            typer.Option(min=0.0, max=24.0, help="Random faults per cell per day of the extra history."),
        ] = 1.0,
        train_schedules: Annotated[
            int,
            typer.Option(
                min=0,
                max=20,
                help="Extra fault-rich histories that only train: the same network and days as the "
                "extra history, other fault schedules (faults.seed 1..N; 2: chosen on development "
                "days, docs/benchmarks.md).",
            ),
        ] = 2,
        save_model: Annotated[
            Path | None, typer.Option(help="Save the twin-trained model (with its test scores) here.")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """Anomaly detection + root cause vs per-KPI fixed thresholds (OSC AD xApp style)."""
        import torch

        torch.set_num_threads(1)
        from mobileai.ai4net.anomaly import bench

        if data is not None:
            if not data.exists():
                raise UserError(f"--data {data}: no such file or folder")
            res = bench.mlmatt_bench(data)
            human = (
                f"ML-MATT (split by cell): F1 ours {res['f1']['ours']:.3f}  thresholds "
                f"{res['f1']['threshold']:.3f}  (fit {res['cost']['fit_s']:.1f} s)"
            )
            emit(res, as_json, human)
            return
        from mobileai.data.twin_history import twin_history
        from mobileai.twin.config import load_scenario

        def run(sc: object, d: int, label: str) -> object:
            err.print(f"twin history: {label}, {d} days (cached after the first run)")
            return twin_history(sc, days=d)

        for name, d in (("--days", days), ("--extra-days", extra_days)):
            if d == 1:
                raise UserError(f"{name} 1: a history needs >= 2 days (earlier days train, the last tests)")
        if days == 0 and extra_days == 0:
            raise UserError("--days 0 and --extra-days 0: no history left to benchmark on")
        hists = [run("dense-urban", days, "dense-urban")] if days else []
        if train_schedules and not extra_days:
            raise UserError("--train-schedules needs --extra-days > 0 (the length of each training history)")
        rich = load_scenario("dense-urban").with_updates(faults={"random_per_cell_day": extra_fault_rate})
        if extra_days > 0:
            hists.append(run(rich, extra_days, f"dense-urban, {extra_fault_rate:g} faults/cell/day"))
        for s in range(1, train_schedules + 1):
            sc = rich.with_updates(faults={"seed": s})
            hists.append(run(sc, extra_days, f"training only, fault schedule {s}"))
        res = bench.twin_bench(
            hists,
            train_only=train_schedules,
            progress=lambda m: err.print(m, highlight=False),
            save_model=save_model,
        )
        o, t = res["ours"], res["threshold"]
        human = "\n".join(
            [
                f"dense-urban twin: {res['data']['test_faults']} test faults, {res['data']['cells']} cells",
                f"  F1 (event)        ours {o['f1']:.3f}   thresholds {t['f1']:.3f}",
                f"  precision/recall  ours {o['event_precision']:.3f}/{o['event_recall']:.3f}   "
                f"thresholds {t['event_precision']:.3f}/{t['event_recall']:.3f}",
                f"  RCA top-1/top-3   {o.get('rca_top1')}/{o.get('rca_top3')}   (filtered top-1 "
                f"{o.get('rca_top1_filtered')})   median delay "
                f"{o['delay_periods_median']} periods",
                f"  latency {res['latency_ms_per_cell_period']['median']} ms per cell-period",
            ]
        )
        emit(res, as_json, human)
