"""TR 38.901 large-scale calibration report: the twin vs 3GPP RAN1 vs NVIDIA Sionna.

Runs the clause 7.8.1 calibration (Table 7.8-1 configuration, ``mobileai.twin.calibration``) for
UMa and UMi-Street Canyon at 6 and 30 GHz, runs Sionna (``mobileai.bench.sionna_ref``) on the
same drops, and writes one CDF figure per scenario and carrier (coupling gain and geometry:
the twin, the RAN1 mean curve of R1-165974 at percentiles 5..95, Sionna) plus a markdown table
of p5 / p50 / p95 on stdout.

Reproduce the figures and the table of ``docs/calibration.md``::

    .venv/bin/python benchmarks/calibration_report.py --drops 20 --sionna-drops 10 --out docs/img

Sionna builds a spatial-correlation matrix over all UEs per site for its large-scale parameters
(a few seconds per 570-UE drop on a CPU), so it runs on the first ``--sionna-drops`` of the
twin's drops. ``--no-sionna`` leaves it out (it is an optional dependency:
``pip install '.[reference]'``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mobileai.twin.calibration import PERCENTILES, REFERENCE, CalibrationResult, run_calibration

CONFIGS: tuple[tuple[str, float], ...] = (("uma", 6.0), ("uma", 30.0), ("umi", 6.0), ("umi", 30.0))
METRICS: tuple[tuple[str, str], ...] = (
    ("coupling_gain_db", "Coupling gain (dB)"),
    ("geometry_sinr_db", "Geometry SINR (dB)"),
)
LABEL = {"uma": "UMa", "umi": "UMi-Street Canyon"}
P3 = (5, 50, 95)


def _pcts(values: np.ndarray, pcts: tuple[int, ...] = PERCENTILES) -> np.ndarray:
    return np.percentile(values, pcts)


def _ref(scenario: str, fc: float, metric: str) -> np.ndarray:
    return np.asarray(REFERENCE[(scenario, fc)][metric], dtype=float)


def _fmt3(values: np.ndarray) -> str:
    return " / ".join(f"{v:.1f}" for v in values)


def plot_config(
    path: Path,
    scenario: str,
    fc: float,
    ours: CalibrationResult,
    sionna: CalibrationResult | None,
    spec: str = "16.1",
) -> None:
    """One PNG: coupling-gain and geometry CDFs, written to a temporary file then renamed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), constrained_layout=True)
    for ax, (metric, xlabel) in zip(axes, METRICS, strict=True):
        vals = np.sort(getattr(ours, metric))
        ax.plot(
            vals,
            (np.arange(vals.size) + 0.5) / vals.size,
            color="C0",
            lw=2.0,
            label=f"mobileai twin ({ours.drops} drops, {vals.size} UEs)",
        )
        ax.plot(
            _ref(scenario, fc, metric),
            np.asarray(PERCENTILES) / 100.0,
            "o-",
            color="k",
            ms=4,
            lw=1.0,
            label="3GPP RAN1 mean (R1-165974), p5..p95",
        )
        if sionna is not None:
            sv = np.sort(getattr(sionna, metric))
            ax.plot(
                sv,
                (np.arange(sv.size) + 0.5) / sv.size,
                "--",
                color="C3",
                lw=1.8,
                label=f"Sionna 2.2, v{spec} tables ({sionna.drops} drops, {sv.size} UEs)",
            )
        lo, hi = np.percentile(vals, [0.5, 99.8])
        ax.set_xlim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
        ax.set_xlabel(xlabel)
        ax.set_ylabel("CDF")
        ax.set_ylim(0.0, 1.0)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(f"TR 38.901 7.8.1 large-scale calibration: {LABEL[scenario]}, {fc:g} GHz")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the figure is a normal repo file
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)


def table(rows: list[dict]) -> str:
    """The markdown table of p5 / p50 / p95 and the deviations from the RAN1 curve."""
    head = (
        "| Scenario | Metric | Twin p5 / p50 / p95 | 3GPP p5 / p50 / p95 | Sionna p5 / p50 / p95 "
        "| Twin max abs err vs 3GPP (p5/p50/p95) | Twin max abs err vs 3GPP (p5..p95) "
        "| Sionna max abs err vs 3GPP (p5..p95) |"
    )
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        lines.append(
            f"| {r['config']} | {r['metric']} | {r['ours']} | {r['ref']} | {r['sionna']} "
            f"| {r['err3']:.2f} dB | {r['err19']:.2f} dB | {r['sionna_err19']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--drops", type=int, default=20, help="twin drops per scenario/carrier (570 UEs each)")
    ap.add_argument(
        "--sionna-drops",
        type=int,
        default=10,
        help="Sionna drops (the first N of the twin's drops; at most --drops)",
    )
    ap.add_argument(
        "--sionna",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run NVIDIA Sionna on the same drops (needs pip install '.[reference]')",
    )
    ap.add_argument(
        "--sionna-spec",
        choices=("16.1", "19.2"),
        default="16.1",
        help="TR 38.901 table version for Sionna (16.1 has the V18 formulas the twin follows)",
    )
    ap.add_argument("--out", type=Path, default=Path("docs/img"), help="folder for the PNG figures")
    ap.add_argument("--seed", type=int, default=0, help="seed of the first drop")
    ap.add_argument("--device", default="cpu", help="twin device: cpu, cuda or auto")
    args = ap.parse_args(argv)
    if args.drops < 1 or args.sionna_drops < 1:
        ap.error("--drops and --sionna-drops must be at least 1")
    sionna_drops = min(args.sionna_drops, args.drops)
    run_sionna_calibration = None
    if args.sionna:
        if importlib.util.find_spec("sionna") is None:
            print(
                "error: Sionna is not installed (pip install '.[reference]'); pass --no-sionna",
                file=sys.stderr,
            )
            return 2
        from mobileai.bench.sionna_ref import run_sionna_calibration

    t_start = time.perf_counter()
    rows: list[dict] = []
    timings: list[str] = []
    for scenario, fc in CONFIGS:
        t0 = time.perf_counter()
        ours = run_calibration(scenario, fc, args.drops, seed=args.seed, device=args.device)
        t_ours = time.perf_counter() - t0
        sionna = None
        t_sionna = 0.0
        if run_sionna_calibration is not None:
            t0 = time.perf_counter()
            sionna = run_sionna_calibration(
                scenario, fc, sionna_drops, seed=args.seed, spec_version=args.sionna_spec
            )
            t_sionna = time.perf_counter() - t0
        png = args.out / f"calibration-{scenario}-{fc:g}ghz.png"
        plot_config(png, scenario, fc, ours, sionna, args.sionna_spec)
        timings.append(
            f"- {LABEL[scenario]} {fc:g} GHz: twin {args.drops} drops in {t_ours:.1f} s"
            + (f", Sionna {sionna_drops} drops in {t_sionna:.1f} s" if sionna is not None else "")
            + f" -> {png}"
        )
        for metric, name in METRICS:
            ref = _ref(scenario, fc, metric)
            ours_p = _pcts(getattr(ours, metric))
            idx = [PERCENTILES.index(p) for p in P3]
            row = {
                "config": f"{LABEL[scenario]} {fc:g} GHz",
                "metric": name.split(" (")[0],
                "ours": _fmt3(ours_p[idx]),
                "ref": _fmt3(ref[idx]),
                "sionna": "-",
                "err3": float(np.max(np.abs(ours_p[idx] - ref[idx]))),
                "err19": float(np.max(np.abs(ours_p - ref))),
                "sionna_err19": "-",
            }
            if sionna is not None:
                s_p = _pcts(getattr(sionna, metric))
                row["sionna"] = _fmt3(s_p[idx])
                row["sionna_err19"] = f"{float(np.max(np.abs(s_p - ref))):.2f} dB"
            rows.append(row)

    total = time.perf_counter() - t_start
    print(
        f"TR 38.901 7.8.1 calibration: twin {args.drops} drops x 570 UEs per scenario/carrier "
        f"(seed {args.seed})"
        + (
            f"; Sionna (TR 38.901 v{args.sionna_spec} tables) on the first {sionna_drops} of those "
            "drops (it is slower: a spatial-correlation matrix over all UEs per site)"
            if args.sionna
            else "; Sionna not run (--no-sionna)"
        )
    )
    print()
    print(table(rows))
    print()
    print("\n".join(timings))
    print(f"- total {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
