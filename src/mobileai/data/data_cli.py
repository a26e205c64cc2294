"""``mobileai data ...`` commands (ingest, query, quality, export) and ``mobileai bench store``.

Registered by :func:`register` from ``mobileai.cli``. Conventions of ``mobileai.cli``: ``--json``
prints machine-readable JSON on stdout, messages go to stderr, a user error is a
:class:`~mobileai.errors.UserError` (one line, exit code 2).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from mobileai.console import emit, err
from mobileai.errors import UserError

STORE_OPT = typer.Option("--store", help="Store root folder (created by ingest).")
RUN_OPT = typer.Option("--run", help="Run name inside the store.")
JSON_OPT = typer.Option("--json", help="Machine-readable output.")


def _open(store: Path, run: str, *, write: bool = False, policy: Path | None = None, role: str | None = None):
    from mobileai.data.policy import DEFAULT_POLICY, AccessPolicy
    from mobileai.data.store import Store

    if not write and not (store / "kpis").exists() and not any(store.glob(f"*/run={run}")):
        raise UserError(f"--store {store}: no store there (run `mobileai data ingest` first)")
    pol = None
    if role is not None:
        pol = AccessPolicy.load(policy) if policy else DEFAULT_POLICY
    return Store(store, run, read_only=not write, policy=pol, role=role)


def _write_table(table, out: Path) -> None:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".tmp-{os.getpid()}-{out.name}")
    if out.suffix.lower() == ".csv":
        pcsv.write_csv(table, tmp)
    elif out.suffix.lower() == ".parquet":
        pq.write_table(table, tmp, compression="zstd")
    else:
        raise UserError(f"--out {out}: use a .parquet or .csv file name")
    os.replace(tmp, out)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``mobileai data`` and ``mobileai bench store``."""
    data_app = typer.Typer(
        help="Data plane: ingest your KPI exports, query, quality, private export.", no_args_is_help=True
    )
    app.add_typer(data_app, name="data")

    @data_app.command("ingest")
    def ingest_cmd(
        files: Annotated[list[Path], typer.Argument(help="CSV or Parquet KPI export(s).")],
        mapping: Annotated[
            Path, typer.Option("--mapping", help="Column-mapping YAML (examples/kpi-export/).")
        ],
        store: Annotated[Path, STORE_OPT],
        run: Annotated[str, RUN_OPT] = "default",
        cell: Annotated[
            str | None, typer.Option("--cell", help="Cell id of every row (overrides cell.value).")
        ] = None,
        report: Annotated[
            Path | None, typer.Option("--report", help="Report folder (default under the store).")
        ] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Validate and report only; store nothing.")
        ] = False,
        as_json: Annotated[bool, JSON_OPT] = False,
    ) -> None:
        """Validate KPI exports through a mapping and append the accepted rows to the store;
        rejected rows go to rejected.csv with the check and reason, counts to summary.json."""
        from mobileai.data.ingest import ingest
        from mobileai.data.mapping import Mapping
        from mobileai.data.store import Store

        m = Mapping.load(mapping)
        if cell is not None:
            m = m.model_copy(update={"cell": m.cell.model_copy(update={"value": cell, "column": None})})
        st = None if dry_run else Store(store, run)
        results = []
        try:
            for i, f in enumerate(files):
                rdir = (
                    None
                    if report is None
                    else (report if len(files) == 1 else report / f"{i}-{Path(f).stem}")
                )
                results.append(ingest(f, m, st, report_dir=rdir))
        finally:
            if st is not None:
                st.close()
        lines = []
        for s in results:
            checks = ", ".join(f"{k} {v:,}" for k, v in s["rejected_by_check"].items()) or "none"
            lines.append(
                f"[bold]{s['file']}[/bold]: {s['rows_read']:,} rows, "
                f"[green]{s['accepted']:,} accepted[/green], "
                f"[{'red' if s['rejected'] else 'green'}]{s['rejected']:,} rejected[/] ({checks})"
            )
            if s["null_values"]:
                lines.append(f"  missing values kept as null: {s['null_values']}")
            if s["unmapped_columns"]:
                lines.append(
                    f"  [yellow]unmapped columns (not loaded)[/yellow]: {', '.join(s['unmapped_columns'])}"
                )
            lines.append(
                f"  {s['cells']} cells, {s['start']} .. {s['end']}; report {Path(s['summary_json']).parent}"
            )
        emit({"files": results}, as_json, "\n".join(lines))

    @data_app.command("query")
    def query_cmd(
        store: Annotated[Path, STORE_OPT],
        run: Annotated[str, RUN_OPT] = "default",
        table: Annotated[str, typer.Option(help="Table: kpis, events, actions ...")] = "kpis",
        cell: Annotated[list[str] | None, typer.Option("--cell", help="Cell id (repeatable).")] = None,
        kpi: Annotated[list[str] | None, typer.Option("--kpi", help="KPI column (repeatable).")] = None,
        start: Annotated[
            str | None, typer.Option(help="From (ISO 8601, UTC if no offset), inclusive.")
        ] = None,
        end: Annotated[str | None, typer.Option(help="To (ISO 8601), exclusive.")] = None,
        role: Annotated[str | None, typer.Option(help="Query as this role of the access policy.")] = None,
        policy: Annotated[Path | None, typer.Option(help="Access policy YAML (default: built-in).")] = None,
        out: Annotated[Path | None, typer.Option(help="Write the rows to a .parquet or .csv file.")] = None,
        limit: Annotated[int, typer.Option(min=0, help="Rows printed (the file gets all).")] = 20,
        as_json: Annotated[bool, JSON_OPT] = False,
    ) -> None:
        """Rows of a stored table by time range, cell and KPI."""
        import time

        st = _open(store, run, policy=policy, role=role)
        t0 = time.perf_counter()
        tab = st.query(start=start, end=end, cells=cell, kpis=kpi, table=table)
        ms = (time.perf_counter() - t0) * 1000
        if out is not None:
            _write_table(tab, out)
        head = tab.slice(0, limit).to_pylist()
        data = {"rows": tab.num_rows, "columns": tab.column_names, "query_ms": round(ms, 2), "head": head}
        if out is not None:
            data["out"] = str(out)
        human = f"{tab.num_rows:,} rows ({ms:.1f} ms)" + (f" -> {out}" if out else "")
        if tab.num_rows:
            human += "\n" + tab.slice(0, limit).to_pandas().to_string(max_cols=12)
        emit(data, as_json, human)

    @data_app.command("quality")
    def quality_cmd(
        store: Annotated[Path, STORE_OPT],
        run: Annotated[str, RUN_OPT] = "default",
        kpi: Annotated[
            list[str] | None, typer.Option("--kpi", help="KPI column (repeatable; default all).")
        ] = None,
        start: Annotated[str | None, typer.Option(help="From (ISO 8601).")] = None,
        end: Annotated[str | None, typer.Option(help="To (ISO 8601).")] = None,
        holdout: Annotated[
            float, typer.Option(min=0.01, max=0.5, help="Share of known values hidden to score imputation.")
        ] = 0.1,
        methods: Annotated[
            str, typer.Option(help="Imputation methods, comma-separated.")
        ] = "linear,profile,lightgbm",
        seed: Annotated[int, typer.Option(min=0)] = 0,
        as_json: Annotated[bool, JSON_OPT] = False,
    ) -> None:
        """Gaps, outliers (modified z-score) and imputation scores (MAE on hidden values)."""
        from mobileai.data import quality as q

        st = _open(store, run)
        tab = st.query(start=start, end=end, kpis=kpi)
        if tab.num_rows == 0:
            raise UserError(f"run {run!r} has no KPI rows in that range")
        meths = tuple(m.strip() for m in methods.split(",") if m.strip())
        bad = [m for m in meths if m not in q.METHODS]
        if bad:
            raise UserError(f"--methods: {bad} not known; methods: {', '.join(q.METHODS)}")
        kpis = kpi or [c for c in tab.column_names if tab.schema.field(c).type == "double"]
        gaps = q.find_gaps(tab)
        outl = q.find_outliers(tab, kpis)
        scores = q.score_imputation(tab, kpis, holdout=holdout, seed=seed, methods=meths)
        nulls = {k: tab[k].null_count for k in kpis if tab[k].null_count}
        data = {
            "rows": tab.num_rows,
            "cells": len(set(tab["cell_id"].to_pylist())),
            "gaps": {
                "runs": len(gaps),
                "missing_periods": int(gaps["missing_periods"].sum()) if len(gaps) else 0,
            },
            "null_values": nulls,
            "outliers": {
                "total": len(outl),
                "by_kpi": outl.groupby("kpi").size().to_dict() if len(outl) else {},
            },
            "imputation": scores,
        }
        lines = [
            f"{data['rows']:,} rows, {data['cells']} cells; gaps: {data['gaps']['runs']} runs, "
            f"{data['gaps']['missing_periods']:,} missing periods; null values: {sum(nulls.values()):,}",
            f"outliers (modified z > {q.MODIFIED_Z}): {len(outl):,}",
            "imputation, MAE on hidden values (normalised by mean |value|):",
        ]
        for r in scores:
            lines.append(
                f"  {r['kpi']:24s} {r['method']:9s} MAE {r['mae']:12.4g}  nMAE {r['nmae']:.3f}  "
                f"{r['seconds']:.2f} s"
            )
        emit(data, as_json, "\n".join(lines))

    @data_app.command("export")
    def export_cmd(
        store: Annotated[Path, STORE_OPT],
        out: Annotated[Path, typer.Option(help="Output .parquet or .csv file.")],
        role: Annotated[str, typer.Option(help="Role of the access policy the export is for.")],
        run: Annotated[str, RUN_OPT] = "default",
        table: Annotated[str, typer.Option(help="Table to export.")] = "kpis",
        policy: Annotated[Path | None, typer.Option(help="Access policy YAML (default: built-in).")] = None,
        k: Annotated[
            int | None,
            typer.Option(min=2, help="k-anonymity over the quasi-identifiers (default: the role's)."),
        ] = None,
        quasi: Annotated[
            str | None, typer.Option(help="Quasi-identifier columns, comma-separated (default: the role's).")
        ] = None,
        suppress: Annotated[
            bool, typer.Option(help="Drop rows of groups smaller than k (counted) instead of failing.")
        ] = False,
        start: Annotated[str | None, typer.Option(help="From (ISO 8601).")] = None,
        end: Annotated[str | None, typer.Option(help="To (ISO 8601).")] = None,
        as_json: Annotated[bool, JSON_OPT] = False,
    ) -> None:
        """Export a table as a role sees it (columns, pseudonyms, coarsened locations), checked
        for k-anonymity; identifiers are pseudonymised with $MOBILEAI_PSEUDONYM_KEY."""
        from mobileai.data.privacy import k_anonymity, suppress_small_groups

        st = _open(store, run, policy=policy, role=role)
        tab = st.query(start=start, end=end, table=table)
        rule = st.policy.rule(role, table)
        qi = [c.strip() for c in quasi.split(",")] if quasi else list(rule.quasi_identifiers)
        kk = k if k is not None else rule.k
        data: dict = {"table": table, "role": role, "rows": tab.num_rows, "columns": tab.column_names}
        if kk is not None and qi:
            rep = k_anonymity(tab, qi, kk)
            data["k_anonymity"] = rep.to_dict()
            if not rep.ok:
                if not suppress:
                    raise UserError(
                        f"export is not {kk}-anonymous over {qi}: {rep.violating_rows:,} rows in "
                        f"{rep.violating_groups:,} groups smaller than {kk} (smallest {rep.smallest_group}); "
                        "coarsen more, choose other quasi-identifiers, or pass --suppress"
                    )
                tab, dropped = suppress_small_groups(tab, qi, kk)
                data["suppressed_rows"] = dropped.num_rows
                data["rows"] = tab.num_rows
        elif kk is not None or qi:
            raise UserError("k-anonymity needs both --k and --quasi (or a role that sets them)")
        _write_table(tab, out)
        data["out"] = str(out)
        human = f"{data['rows']:,} rows -> {out} (role {role})"
        if "k_anonymity" in data:
            human += f"; {kk}-anonymous over {qi}" + (
                f", {data['suppressed_rows']:,} rows suppressed" if data.get("suppressed_rows") else ""
            )
        emit(data, as_json, human)

    @bench_app.command("store")
    def bench_store_cmd(
        cells: Annotated[
            str, typer.Option(help="Rows per append (cells per period), comma-separated.")
        ] = "57,5700,57000",
        seconds: Annotated[
            float, typer.Option(min=0.5, max=600, help="Wall seconds of ingest per size.")
        ] = 5.0,
        days: Annotated[
            int, typer.Option(min=1, max=60, help="Days of 57-cell history for the query test.")
        ] = 7,
        data: Annotated[Path | None, typer.Option(help="Real data folder (default ../shared/data).")] = None,
        imputation: Annotated[bool, typer.Option(help="Also score imputation on real data.")] = True,
        as_json: Annotated[bool, JSON_OPT] = False,
    ) -> None:
        """Bus + store ingest rows/s, per-cell one-day query latency, imputation on real data."""
        from mobileai.bench.store import format_store_bench, run_store_bench

        sizes = []
        for s in cells.split(","):
            try:
                sizes.append(int(s))
            except ValueError:
                raise UserError(f"--cells: expected comma-separated integers, got {cells!r}") from None
        if not sizes or any(s < 1 for s in sizes):
            raise UserError(f"--cells: expected positive integers, got {cells!r}")
        result = run_store_bench(
            sizes, seconds=seconds, days=days, data=data, imputation=imputation,
            progress=None if as_json else (lambda msg: err.print(msg, highlight=False)),
        )  # fmt: skip
        emit(result, as_json, format_store_bench(result))
