"""Commands of the energy-saving app: ``mobileai energy fit``, ``mobileai energy plan`` (open
loop on a KPI export) and ``mobileai bench energy`` (closed loop on the twin, threshold rule vs
the forecast-driven optimiser vs always-on, savings scored with the fitted power model).

``--json`` prints one JSON object on stdout; progress goes to stderr; bad input is a
:class:`~mobileai.errors.UserError` (one line, exit code 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mobileai.console import emit, err
from mobileai.errors import UserError

energy_app = typer.Typer(
    help="Energy saving: power-model fit, sleep planning (TR 38.864).", no_args_is_help=True
)
DATA_HELP = "ITU 5G energy data folder (ECdata.csv, CLdata.csv, BSinfo.csv)."


def _default_data() -> Path:
    from mobileai.ai4net.energy.power_fit import DEFAULT_DATA

    return DEFAULT_DATA


@energy_app.command("fit")
def fit_cmd(
    data: Annotated[Path | None, typer.Option("--data", help=DATA_HELP)] = None,
    split: Annotated[str, typer.Option(help="random_hours, last_hours or unseen_bs.")] = "random_hours",
    out: Annotated[Path, typer.Option(help="Where to save the fit (JSON).")] = Path("energy-fit.json"),
    reference: Annotated[bool, typer.Option(help="Also score the LightGBM reference.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Fit the twin's EARTH + TR 38.864 power model to measured energy; report WMAPE on held-out hours."""
    from mobileai.ai4net.energy import power_fit as pf
    from mobileai.twin.config import load_scenario

    if split not in pf.SPLITS:
        raise UserError(f"--split: {split!r} not allowed; allowed: {', '.join(pf.SPLITS)}")
    err.print(f"fitting the power model on {data or _default_data()} ({split}) ...")
    d = pf.load_itu_energy(data or _default_data())
    fit = pf.fit_power_model(d, split)  # type: ignore[arg-type]
    ref = pf.fit_lightgbm_reference(d, split) if reference else {}  # type: ignore[arg-type]
    pf.save_fit(fit, out, {"lightgbm": ref} if ref else None)
    override = pf.energy_override(fit, load_scenario("dense-urban"))
    obj = {
        "split": split,
        "wmape_test": {"physical": fit.metrics["wmape_test"], "lightgbm": ref.get("wmape_test")},
        "challenge_winner_wmape": 0.0435,
        "n_test_hours": fit.metrics["n_test_hours"],
        "energy_override_dense_urban": override,
        "saved": str(out),
    }
    lgb = f"{ref['wmape_test']:.4f}" if ref else "not run"
    emit(
        obj,
        as_json,
        f"WMAPE (held-out): physical {fit.metrics['wmape_test']:.4f}, LightGBM {lgb}; saved {out}",
    )


def bench_energy(
    scenario: Annotated[str, typer.Option(help="Packaged scenario name or YAML path.")] = "dense-urban",
    hours: Annotated[float, typer.Option(help="Network time per policy, hours (a day: 24).")] = 24.0,
    start_hour: Annotated[
        float | None, typer.Option(help="Local time at t = 0 (default: scenario's).")
    ] = None,
    data: Annotated[Path | None, typer.Option("--data", help=DATA_HELP)] = None,
    fit: Annotated[Path | None, typer.Option(help="Saved power fit (default: fit on --data now).")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for results.json and the decision logs.")] = None,
    step_ms: Annotated[
        float, typer.Option(help="Radio step, ms (5000: a day in minutes; handover/RLF timers coarse).")
    ] = 5000.0,
    rl_model: Annotated[
        Path | None, typer.Option(help="Saved RL policy (.zip; default: train one first).")
    ] = None,
    policies: Annotated[
        str, typer.Option(help="Comma list of threshold, ours, rl, ours_app.")
    ] = "threshold,ours,rl",
    rule_off: Annotated[
        float | None,
        typer.Option(help="Rule: switch off below this load, % (carrier shutdown: combined, coverage PRBs)."),
    ] = None,
    rule_on: Annotated[
        float | None,
        typer.Option(help="Rule: back on above this load, % (carrier shutdown: the coverage cell's)."),
    ] = None,
    rule_sweep: Annotated[
        str | None,
        typer.Option(
            help="More rule settings off:on,... (e.g. 20:50,30:60), each run once; equal-QoS comparison."
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Master seed (default: the scenario's; develop on another than the benchmark's)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Closed loop on the twin: always-on vs the threshold rule vs the forecast-driven optimiser vs PPO."""
    from mobileai.ai4net.energy.run import benchmark, parse_sweep, rule_config

    if not 100 <= step_ms <= 5000:
        raise UserError(f"--step-ms: {step_ms:g} not allowed; use 100..5000")
    if seed is not None and not 0 <= seed <= 2**31 - 1:
        raise UserError(f"--seed: {seed} not allowed; use 0..2147483647")
    if (rule_off is None) != (rule_on is None):
        raise UserError("--rule-off and --rule-on: give both or neither")
    rule = None if rule_off is None or rule_on is None else (rule_off, rule_on)
    sweep = parse_sweep(rule_sweep)
    for setting in (rule, *sweep):
        if setting is not None:
            rule_config(True, setting)  # range check before any run (the same bounds either way)
    which = tuple(p.strip() for p in policies.split(",") if p.strip())
    res = benchmark(
        scenario, hours, start_hour, data or _default_data(), fit, out, not as_json, step_ms, rl_model, which,
        rule, sweep, seed,
    )  # fmt: skip
    human = "; ".join(
        f"{name}: energy saved {c['energy_saved']:.1%}, traffic loss {c['traffic_loss']:.2%}, "
        f"p5 throughput loss {c['p5_tput_loss']:.2%}"
        for name, c in res["details"].items()
    )
    emit(res, as_json, human)


@energy_app.command("train-rl")
def train_rl_cmd(
    out: Annotated[Path, typer.Option(help="Where to save the policy (.zip; its .json goes beside).")] = Path(
        "rl-policy.zip"
    ),
    scenario: Annotated[str, typer.Option(help="Packaged scenario name or YAML path.")] = "dense-urban",
    decisions: Annotated[int, typer.Option(help="Training budget in 15-min decisions.")] = 190,
    seed: Annotated[int, typer.Option(help="Training seed (keep apart from the benchmark's).")] = 1000,
    data: Annotated[Path | None, typer.Option("--data", help=DATA_HELP)] = None,
    fit: Annotated[Path | None, typer.Option(help="Saved power fit (default: fit on --data now).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Train the PPO sleep policy (one policy shared by all cells) on the twin and save it."""
    from pydantic import ValidationError

    from mobileai.ai4net.energy import power_fit as pf
    from mobileai.ai4net.energy import rl
    from mobileai.errors import format_validation_error
    from mobileai.twin.config import load_scenario

    if out.suffix != ".zip":
        raise UserError(f"--out: {out} must end in .zip")
    try:
        cfg = rl.RLConfig(decisions=decisions, seed=seed)
    except ValidationError as exc:
        raise UserError(format_validation_error(exc, "train-rl options")) from None
    pfit = (
        pf.load_fit(fit)
        if fit is not None
        else pf.fit_power_model(pf.load_itu_energy(data or _default_data()))
    )
    sc = pf.apply_fit(rl.training_scenario(load_scenario(scenario), cfg), pfit)
    err.print(f"training PPO for {decisions} decisions x {sc.ues.count} UEs (seed {seed}) ...")
    pol = rl.train(sc, cfg)
    pol.save(out)
    emit(
        {**pol.metrics, "saved": str(out)},
        as_json,
        f"trained in {pol.metrics['train_wall_s']:.0f} s; saved {out}",
    )


@energy_app.command("plan")
def plan_cmd(
    kpis: Annotated[
        Path, typer.Option(help="Per-cell KPI table (.parquet/.csv): period_start, cell_id, RRU.PrbUsedDl.")
    ],
    cells: Annotated[Path, typer.Option(help="Cells table (.parquet/.csv): cell_id, x_m, y_m, azimuth_deg.")],
    policy: Annotated[str, typer.Option(help="optimiser or threshold.")] = "optimiser",
    fit: Annotated[Path | None, typer.Option(help="Saved power fit for the energy estimate.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the decision log here (JSON).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Open loop on a KPI export: log the decisions and score them against what would have happened."""
    from mobileai.ai4net.energy.run import open_loop

    res = open_loop(kpis, cells, policy, fit, out)
    emit(
        res,
        as_json,
        f"{policy}: estimated energy saved {res['energy_saved_estimate']:.1%}, "
        f"cell-periods over capacity {res['cell_periods_over_capacity']:.2%}, "
        f"{int(res['decisions'])} decisions",
    )


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``mobileai energy ...`` and ``mobileai bench energy``."""
    app.add_typer(energy_app, name="energy")
    bench_app.command("energy")(bench_energy)
