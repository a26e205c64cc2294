"""CLI of the forecast app: ``mobileai forecast`` (open loop on a KPI export) and
``mobileai bench forecast`` (ours vs. seasonal naive, ETS and LightGBM; twin or real data).

Conventions of :mod:`mobileai.cli`: ``--json`` prints one JSON object on stdout, messages go to
stderr, bad input raises :class:`~mobileai.errors.UserError` (one line, exit code 2).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import typer

from mobileai.console import emit, err
from mobileai.data.tables import read_table_file
from mobileai.errors import UserError


def read_kpis(path: Path) -> pa.Table:
    """A KPI export as an Arrow table: Parquet, or CSV (by suffix)."""
    return read_table_file(path, "--kpis")


def horizon_periods(horizon: str, step_s: float) -> int:
    from mobileai.ai4net.forecast.data import parse_period

    h = parse_period(horizon).total_seconds()
    n = h / step_s
    if n < 1 or abs(n - round(n)) > 1e-9:
        raise UserError(f"--horizon {horizon}: not a whole number of {step_s:g} s periods")
    return round(n)


def _write_parquet_atomic(df, path: Path) -> None:  # type: ignore[no-untyped-def]
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``forecast`` to ``app`` and ``forecast`` to ``bench_app``."""

    @app.command("forecast")
    def forecast(
        kpis: Annotated[Path, typer.Option(help="KPI export (Parquet or CSV): period_start, cell_id, KPIs.")],
        out: Annotated[Path, typer.Option(help="Output folder: forecast.parquet and model/.")],
        kpi: Annotated[str, typer.Option(help="KPI column to forecast.")] = "DRB.PdcpSduVolumeDL",
        horizon: Annotated[
            str, typer.Option(help="How far ahead: 1h .. 24h (or periods as 15m, 2h).")
        ] = "24h",
        period: Annotated[
            str | None, typer.Option(help="Aggregate to this period first (e.g. 1h); default: the table's.")
        ] = None,
        cells: Annotated[
            Path | None, typer.Option(help="Cell table (cell_id, x_m, y_m) for the neighbour graph.")
        ] = None,
        model: Annotated[
            Path | None, typer.Option(help="Use this saved model folder instead of training.")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable summary.")] = False,
    ) -> None:
        """Forecast every cell's KPI with 80 % intervals, open loop on a KPI export; saves the model."""
        import time

        import torch

        from mobileai.ai4net.forecast.api import forecast_frame, prepare, train
        from mobileai.ai4net.forecast.data import parse_period
        from mobileai.ai4net.forecast.model import NeuralForecaster

        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
        table = read_kpis(kpis)
        cell_table = read_kpis(cells) if cells is not None else None
        frame = prepare(table, kpi, cell_table, parse_period(period) if period else None)
        n = horizon_periods(horizon, frame.step.total_seconds())
        t0 = time.perf_counter()
        metrics: dict = {}
        if model is not None:
            fc = NeuralForecaster.load(model)
            if fc.horizon < n:
                raise UserError(f"--model {model}: trained for {fc.horizon} periods ahead, asked for {n}")
            model_dir = model
        else:
            if not as_json:
                err.print(f"training on {frame.values.shape[0]} periods x {len(frame.names)} cells ...")
            trained = train(frame, n)
            fc, metrics = trained.model, trained.metrics
            model_dir = out / "model"
            fc.save(model_dir, metrics, extra={"kpi": kpi, "step_s": frame.step.total_seconds()})
        df = forecast_frame(fc, frame, n)
        _write_parquet_atomic(df, out / "forecast.parquet")
        summary = {
            "out": str(out / "forecast.parquet"),
            "model": str(model_dir),
            "kpi": kpi,
            "cells": len(frame.names),
            "horizon_periods": n,
            "step_s": frame.step.total_seconds(),
            "wall_s": round(time.perf_counter() - t0, 3),
            "validation": metrics,
        }
        human = (
            f"[bold green]done[/bold green]: {summary['out']} ({len(df)} rows, {n} periods x "
            f"{len(frame.names)} cells); model {model_dir}"
        )
        if metrics:
            human += (
                f"\n  validation MAE ours {metrics['ours']['mae']:.4g} vs seasonal naive "
                f"{metrics['seasonal_naive']['mae']:.4g}; 80 % interval coverage {metrics['coverage80']:.1%}"
            )
        emit(summary, as_json, human)

    @bench_app.command("forecast")
    def bench_forecast(
        data: Annotated[
            Path | None,
            typer.Option(
                help="Real data root (with barcelona-lte-pdcch/, milan-dgrn/), e.g. ../shared/data. "
                "Default: the twin's dense-urban history (--days)."
            ),
        ] = None,
        kpi: Annotated[str, typer.Option(help="Twin KPI to forecast.")] = "DRB.PdcpSduVolumeDL",
        days: Annotated[
            int,
            typer.Option(
                min=3,
                max=30,
                help="Days of the twin history (the last one is the test day; 8: a full week to fit, "
                "about an hour to simulate on first use).",
            ),
        ] = 8,
        federated: Annotated[bool, typer.Option(help="With --data: FedAvg / pooled / transfer runs.")] = True,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """Ours vs. seasonal naive, ETS and LightGBM: MAE/RMSE/NRMSE, 80 % coverage, latency."""
        from mobileai.ai4net.forecast.bench import run_real_bench, run_twin_bench
        from mobileai.ai4net.forecast.report import format_real, format_twin

        def say(msg: str) -> None:
            err.print(f"[dim]{msg}[/dim]", highlight=False)

        if data is None:
            result = run_twin_bench(kpi, progress=say, days=days)
            emit(result, as_json, format_twin(result))
        else:
            result = run_real_bench(data, progress=say, federated=federated)
            emit(result, as_json, format_real(result))
