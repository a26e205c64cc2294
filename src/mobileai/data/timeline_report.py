"""The HTML report of a dynamic run: the network over the day, in plots and KPI tables.

Same form as the static report (:mod:`mobileai.data.report`, whose helpers it uses): one
self-contained HTML file with the PNGs embedded, and the PNGs as separate files. Plots, all
against UTC clock time of the run (2026-01-01 + ``time.start_hour``), one value per KPI
reporting period (TS 28.552 granularity period):

- ``load.png``: network DL/UL volume per period, and the mean PRB use per cell type;
- ``handover.png``: handover attempts and successes; failures, ping-pongs and radio link failures;
- ``energy.png``: network input power (kW) and the share of time cells sleep (TR 38.864);
- ``faults.png``: the ground-truth fault events as a Gantt chart (cell x time, colour = kind),
  with applied actions as markers;
- ``fault_cells.png`` (when there are faults): each affected cell's key KPI for the fault kind
  around the fault, against the median over all cells;
- ``ue_throughput.png``: per-UE DL throughput, each cell's 5th and 50th percentile over its UEs,
  summarised over cells.

Tables: headline totals, every KPI over the run (total or mean, with the spread over
cell-periods), KPIs per cell type, the events, the scenario and what reproduces the run.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from mobileai.data.report import _CSS, _e, _fmt, _img, _mpl, _png, _table, reproduce_sections
from mobileai.twin.config import CELL_TYPES, FAULT_KINDS
from mobileai.twin.timeline import Timeline, day_kpis, kpi_doc

#: The KPI that shows each fault kind best, for the affected-cell panels.
FAULT_KPI = {
    "outage": "RRC.ConnMean",
    "power_degradation": "RRC.ConnMean",
    "tilt_error": "RRC.ConnMean",
    # a noise rise shows on the uplink first: a loaded macro DL is interference-limited
    "external_interference": "DRB.UEThpUl",
    "backhaul_congestion": "DRB.CellThpDl",
    "sleeping_cell": "DRB.CellThpDl",
    "traffic_surge": "RRU.PrbUsedDl",
}
#: Affected-cell panels drawn at most (the first faults by start time).
MAX_FAULT_PANELS = 6
#: Cells shown at most in the Gantt chart.
MAX_GANTT_ROWS = 40

_TYPE_COLOURS = {
    "office": "tab:blue",
    "residential": "tab:green",
    "transport_hub": "tab:orange",
    "stadium": "tab:red",
}
_KIND_COLOURS = dict(
    zip(
        FAULT_KINDS,
        ("tab:red", "tab:orange", "tab:purple", "tab:pink", "tab:brown", "tab:gray", "tab:olive"),
        strict=True,
    )
)


@dataclass
class TimelineReportData:
    """Everything the dynamic report shows."""

    title: str
    description: str
    scenario: dict
    timeline: Timeline
    events: pa.Table
    totals: dict
    facts: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    platform: dict = field(default_factory=dict)
    timings_s: dict = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------- helpers
def _edges(tl: Timeline) -> np.ndarray:
    """Period boundaries as datetime64 [P + 1]."""
    return np.append(tl.start_times(), tl.end_times()[-1:])


def _stairs(ax, tl: Timeline, y: np.ndarray, **kw):
    """A per-period value as a step line over the period boundaries."""
    x = _edges(tl)
    yy = np.append(y, y[-1:]) if y.size else y
    return ax.step(x, yy, where="post", **kw)


def _time_axis(ax, tl: Timeline) -> None:
    import matplotlib.dates as mdates

    loc = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc, show_offset=True))
    e = _edges(tl)
    if e.size:
        ax.set_xlim(e[0], e[-1])
    ax.grid(True, alpha=0.3)


def _period_label(tl: Timeline) -> str:
    if not tl.n_periods:
        return "period"
    p = float(tl.end_s[0] - tl.start_s[0])
    return f"{p / 60:g} min period" if p >= 60 else f"{p:g} s period"


def _nanquantile(v: np.ndarray, q: float) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanquantile(v, q, axis=1) if v.size else np.zeros(0)


def _headroom(ax, *series: np.ndarray, factor: float = 1.3) -> None:
    """y from 0 to ``factor`` x the largest value, leaving room for the legend at the top."""
    top = max((float(np.nanmax(v)) for v in series if v.size and np.isfinite(v).any()), default=0.0)
    ax.set_ylim(0, top * factor if top > 0 else 1.0)


def _no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=10, color="0.35")
    ax.set_yticks([])


# ---------------------------------------------------------------------------------- plots
def plot_load(d: TimelineReportData) -> bytes:
    plt = _mpl()
    tl = d.timeline
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(11.0, 7.2), sharex=True, layout="constrained")
    dl = tl.network("DRB.PdcpSduVolumeDL") / 8e3  # Mbit -> GB
    ul = tl.network("DRB.PdcpSduVolumeUL") / 8e3
    _stairs(a1, tl, dl, color="tab:blue", lw=1.8, label="DL")
    _stairs(a1, tl, ul, color="tab:orange", lw=1.8, label="UL")
    a1.set_ylabel(f"GB per {_period_label(tl)}")
    _headroom(a1, dl, ul)
    a1.set_title(f"Network data volume per period (PDCP SDU volume, {tl.n_cells} cells)")
    a1.legend(loc="upper left", fontsize=9)
    prb = tl.kpis["RRU.PrbUsedDl"]
    types = tl.cell_type
    drawn = []
    for i, name in enumerate(CELL_TYPES):
        sel = types == i
        if sel.any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                drawn.append(np.nanmean(prb[:, sel], axis=1))
            _stairs(
                a2, tl, drawn[-1], color=_TYPE_COLOURS[name], lw=1.8, label=f"{name} ({int(sel.sum())} cells)"
            )
    _stairs(a2, tl, tl.network("RRU.PrbUsedDl", "mean"), color="black", lw=1.2, ls="--", label="all cells")
    _headroom(a2, *drawn, factor=1.35)
    a2.set_ylim(top=min(100.0, max(5.0, a2.get_ylim()[1])))
    a2.set_ylabel("mean DL PRB use (%)")
    a2.set_title("DL PRB use per cell type (RRU.PrbUsedDl, mean over the type's cells)")
    a2.legend(loc="upper left", fontsize=9, ncol=2)
    _time_axis(a1, tl)
    _time_axis(a2, tl)
    a2.set_xlabel("time (UTC)")
    fig.suptitle(f"{d.title}: load over the run", fontsize=12)
    return _png(fig)


def plot_handover(d: TimelineReportData) -> bytes:
    plt = _mpl()
    tl = d.timeline
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(11.0, 7.0), sharex=True, layout="constrained")
    req = tl.network("MM.HoExeIntraReq")
    _stairs(a1, tl, req, color="tab:blue", lw=1.8, label="attempts (MM.HoExeIntraReq)")
    _stairs(
        a1,
        tl,
        tl.network("MM.HoExeIntraSucc"),
        color="tab:green",
        lw=1.2,
        ls="--",
        label="successes (MM.HoExeIntraSucc)",
    )
    a1.set_ylabel(f"handovers per {_period_label(tl)}")
    _headroom(a1, req)
    a1.set_title("Handover executions, all cells")
    a1.legend(loc="upper left", fontsize=9)
    problems = []
    for name, colour, label in (
        ("mobileai.HoFail", "tab:red", "HO failures"),
        ("mobileai.HoPingPong", "tab:orange", "ping-pongs"),
        ("mobileai.Rlf", "tab:purple", "radio link failures (T310 expiry)"),
    ):
        problems.append(tl.network(name))
        _stairs(a2, tl, problems[-1], color=colour, lw=1.8, label=f"{label} ({name})")
    a2.set_ylabel(f"events per {_period_label(tl)}")
    peaks = [float(np.nanmax(v)) for v in problems if v.size and np.nanmax(v) > 0]
    if peaks and max(peaks) > 20 * min(peaks):  # very different sizes: log scale
        lowest = min(float(np.nanmin(v)) for v in problems if v.size)
        if lowest > 0:
            a2.set_yscale("log")
            a2.set_ylim(lowest / 3, max(peaks) * 8)
            a2.set_ylabel(f"events per {_period_label(tl)} (log)")
        else:  # zeros: linear up to 1, log above
            a2.set_yscale("symlog", linthresh=1.0)
            a2.set_ylim(0, max(peaks) * 8)
            a2.set_ylabel(f"events per {_period_label(tl)} (log above 1)")
    else:
        _headroom(a2, *problems, factor=1.45)
    a2.set_title("Mobility problems, all cells")
    a2.legend(loc="upper left", fontsize=9)
    _time_axis(a1, tl)
    _time_axis(a2, tl)
    a2.set_xlabel("time (UTC)")
    fig.suptitle(f"{d.title}: handovers and radio link failures", fontsize=12)
    return _png(fig)


def plot_energy(d: TimelineReportData) -> bytes:
    plt = _mpl()
    tl = d.timeline
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(11.0, 6.6), sharex=True, layout="constrained")
    kw = tl.network("PEE.AvgPower") / 1e3
    _stairs(a1, tl, kw, color="tab:red", lw=1.8, label="input power (sum of PEE.AvgPower)")
    a1.set_ylabel("network power (kW)")
    lo = float(np.nanmin(kw)) if kw.size else 0.0
    hi = float(np.nanmax(kw)) if kw.size else 1.0
    pad = max(0.05 * (hi - lo), 0.02 * hi, 1e-3)
    a1.set_ylim(max(0.0, lo - pad), hi + 3 * pad)
    a1.set_title(f"Network input power ({tl.n_cells} cells), mean over each period")
    a1.legend(loc="upper left", fontsize=9)
    sleep = 100.0 * tl.network("mobileai.SleepRatio", "mean")
    _stairs(a2, tl, sleep, color="tab:green", lw=1.8, label="mean over cells (mobileai.SleepRatio)")
    a2.set_ylabel("time asleep (%)")
    _headroom(a2, sleep)
    a2.set_ylim(top=min(100.0, max(5.0, a2.get_ylim()[1])))
    if sleep.size and not np.nanmax(sleep) > 0:
        a2.text(0.5, 0.5, "no cell slept in this run (no energy-saving actions were applied)",
                ha="center", va="center", transform=a2.transAxes, color="0.35")  # fmt: skip
    a2.set_title("Share of time cells spend in light/deep sleep or off (TR 38.864)")
    a2.legend(loc="upper left", fontsize=9)
    _time_axis(a1, tl)
    _time_axis(a2, tl)
    a2.set_xlabel("time (UTC)")
    fig.suptitle(f"{d.title}: energy", fontsize=12)
    return _png(fig)


def _events(d: TimelineReportData) -> dict[str, list]:
    return d.events.to_pydict()


def plot_faults(d: TimelineReportData) -> bytes:
    import matplotlib.dates as mdates
    from matplotlib.patches import Patch

    plt = _mpl()
    tl = d.timeline
    ev = _events(d)
    faults = [i for i, c in enumerate(ev["category"]) if c == "fault"]
    actions = [i for i, c in enumerate(ev["category"]) if c == "action"]
    cells: list[str] = []
    for i in faults + actions:
        if ev["cell_id"][i] is not None and ev["cell_id"][i] not in cells:
            cells.append(ev["cell_id"][i])
    hidden = max(0, len(cells) - MAX_GANTT_ROWS)
    cells = cells[:MAX_GANTT_ROWS]
    row = {c: k for k, c in enumerate(cells)}
    height = 2.4 if not cells else min(3.0 + 0.32 * len(cells), 14.0)
    fig, ax = plt.subplots(figsize=(11.0, height), layout="constrained")
    t_end = _edges(tl)[-1] if tl.n_periods else None
    kinds_seen: list[str] = []
    for i in faults:
        c = ev["cell_id"][i]
        if c not in row:
            continue
        s = np.datetime64(ev["start"][i].replace(tzinfo=None), "ms")
        e = np.datetime64(ev["end"][i].replace(tzinfo=None), "ms")
        if t_end is not None:
            e = min(e, t_end)
        k = ev["kind"][i]
        if k not in kinds_seen:
            kinds_seen.append(k)
        x0 = mdates.date2num(s)
        ax.broken_barh(
            [(x0, mdates.date2num(e) - x0)],
            (row[c] - 0.38, 0.76),
            facecolors=_KIND_COLOURS.get(k, "tab:gray"),
            edgecolors="black",
            linewidth=0.5,
        )
    for i in actions:
        c = ev["cell_id"][i]
        if c in row:
            s = np.datetime64(ev["start"][i].replace(tzinfo=None), "ms")
            ax.plot([s], [row[c]], marker="v", color="black", ms=7, ls="none")
    _time_axis(ax, tl)
    ax.set_xlabel("time (UTC)")
    if not cells:
        _no_data(
            ax,
            "no fault events and no actions in this run\n"
            "(faults.schedule and faults.random_per_cell_day are empty)",
        )
        ax.set_title(f"{d.title}: fault timeline")
        return _png(fig)
    ax.set_yticks(range(len(cells)))
    ax.set_yticklabels(cells, fontsize=8 if len(cells) > 20 else 9)
    ax.set_ylim(len(cells) - 0.5, -0.5)
    ax.set_ylabel("cell")
    handles = [
        Patch(facecolor=_KIND_COLOURS.get(k, "tab:gray"), edgecolor="black", label=k) for k in kinds_seen
    ]
    if actions:
        handles.append(
            plt.Line2D([], [], marker="v", color="black", ls="none", label=f"action ({len(actions)})")
        )
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    extra = f", {hidden} more cells not shown" if hidden else ""
    ax.set_title(f"{d.title}: ground-truth fault events ({len(faults)} faults{extra})")
    return _png(fig)


def plot_fault_cells(d: TimelineReportData) -> bytes | None:
    plt = _mpl()
    tl = d.timeline
    ev = _events(d)
    faults = [i for i, c in enumerate(ev["category"]) if c == "fault"][:MAX_FAULT_PANELS]
    if not faults or not tl.n_periods:
        return None
    index = {c: k for k, c in enumerate(tl.cell_ids)}
    n = len(faults)
    cols = 1 if n == 1 else 2
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(11.0 if cols == 2 else 9.0, 3.1 * rows + 0.6),
        layout="constrained",
        squeeze=False,
    )
    run0, run1 = float(tl.start_s[0]), float(tl.end_s[-1])
    period = float(tl.end_s[0] - tl.start_s[0])
    for ax, i in zip(axes.ravel(), faults, strict=False):
        kind, cell = ev["kind"][i], ev["cell_id"][i]
        kpi = FAULT_KPI.get(kind, "RRU.PrbUsedDl")
        v = tl.kpis[kpi]
        s0, s1 = float(ev["start_s"][i]), float(ev["end_s"][i])
        pad = max(3 * period, 0.5 * (s1 - s0))
        w0, w1 = max(run0, s0 - pad), min(run1, s1 + pad)
        sel = (tl.end_s > w0) & (tl.start_s < w1)
        sub = Timeline(
            tl.start_s[sel], tl.end_s[sel], tl.start_hour, tl.cell_ids, tl.site, tl.cell_type,
            {kpi: v[sel]},
        )  # fmt: skip
        colour = _KIND_COLOURS.get(kind, "tab:gray")
        ax.axvspan(
            np.datetime64(ev["start"][i].replace(tzinfo=None), "ms"),
            np.datetime64(ev["end"][i].replace(tzinfo=None), "ms"),
            color=colour,
            alpha=0.18,
            lw=0,
            label=f"{kind} (magnitude {ev['magnitude'][i]:g})",
        )
        _stairs(ax, sub, v[sel, index[cell]], color=colour, lw=2.0, label=f"cell {cell}")
        _stairs(
            ax, sub, sub.network(kpi, "median"), color="0.3", lw=1.2, ls="--", label="median of all cells"
        )
        _time_axis(ax, sub)
        doc = kpi_doc(kpi)
        ax.set_ylabel(f"{kpi} ({doc.unit})", fontsize=9)
        ax.set_title(f"{cell}: {kind}", fontsize=10)
        ax.legend(loc="best", fontsize=8)
        ax.set_ylim(bottom=min(0.0, float(np.nanmin(v[sel])) if np.isfinite(v[sel]).any() else 0.0))
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    fig.suptitle(f"{d.title}: the affected cells' key KPI around each fault (shaded)", fontsize=12)
    return _png(fig)


def plot_ue_throughput(d: TimelineReportData) -> bytes:
    plt = _mpl()
    tl = d.timeline
    fig, ax = plt.subplots(figsize=(11.0, 5.2), layout="constrained")
    drawn = False
    for name, colour, label, hatch in (
        ("DRB.UEThpDl.P50", "tab:blue", "median UE of a cell (DRB.UEThpDl.P50)", None),
        ("DRB.UEThpDl.P5", "tab:red", "5th-percentile UE of a cell (DRB.UEThpDl.P5)", "///"),
    ):
        v = tl.kpis[name] / 1e3  # kbit/s -> Mbit/s
        v = np.where(v > 0, v, np.nan)
        mid = _nanquantile(v, 0.5)
        lo, hi = _nanquantile(v, 0.25), _nanquantile(v, 0.75)
        if not np.isfinite(mid).any():
            continue
        drawn = True
        x = _edges(tl)
        band = {"step": "post", "lw": 0}
        if hatch is None:
            band.update(color=colour, alpha=0.15)
        else:  # hatched, so the overlap with the other band stays readable
            band.update(facecolor="none", edgecolor=colour, hatch=hatch, alpha=0.35)
        ax.fill_between(x, np.append(lo, lo[-1:]), np.append(hi, hi[-1:]), **band)
        _stairs(ax, tl, mid, color=colour, lw=2.0, label=f"{label}: median over cells, band 25-75 % of cells")
    _time_axis(ax, tl)
    ax.set_xlabel("time (UTC)")
    if drawn:
        ax.set_yscale("log")
        ax.set_ylabel("per-UE DL throughput (Mbit/s, log)")
        ax.legend(loc="lower left", fontsize=9)
        ax.grid(True, which="minor", alpha=0.12)
    else:
        _no_data(ax, "no UE had downlink data in any period")
    ax.set_title(f"{d.title}: per-UE DL throughput (volume / active time), per cell over its UEs with data")
    return _png(fig)


# ---------------------------------------------------------------------------------- tables
def _totals_table(t: dict, tl: Timeline) -> str:
    hours = t["reported_s"] / 3600.0 if t["reported_s"] else math.nan
    vol = t["dl_volume_gb"] + t["ul_volume_gb"]
    ee = vol * 8e3 / t["energy_kwh"] if t["energy_kwh"] else math.nan  # Mbit per kWh

    def rate(a: float, b: float) -> str:
        return f"{a / b:.2%}" if b else "-"

    ho_rate = "-" if t["ho_success_rate"] is None else f"{t['ho_success_rate']:.2%}"
    rows = [
        ["Simulated time with KPIs", f"{hours:,.2f} h ({tl.n_periods} periods x {tl.n_cells} cells)"],
        ["DL / UL data volume", f"{_fmt(t['dl_volume_gb'], 2)} / {_fmt(t['ul_volume_gb'], 2)} GB"],
        ["Energy (input)", f"{_fmt(t['energy_kwh'], 2)} kWh, mean {_fmt(t['mean_power_kw'], 2)} kW"],
        ["Energy efficiency (DL+UL volume / energy, as TS 28.554 EE)", f"{_fmt(ee, 1)} Mbit/kWh"],
        [
            "Handover attempts (success rate)",
            f"{t['ho_attempts']:,} ({ho_rate})",
        ],
        ["HO failures / ping-pongs", f"{t['ho_failures']:,} / {t['ping_pongs']:,}"],
        ["Radio link failures", f"{t['rlfs']:,}"],
        [
            "Sessions (blocked, dropped)",
            f"{t['sessions']:,} ({rate(t['sessions_blocked'], t['sessions'])} blocked, "
            f"{rate(t['sessions_dropped'], t['sessions'])} dropped)",
        ],
        ["Faults injected / actions applied", f"{t['faults']:,} / {t['actions']:,}"],
    ]
    return _table(["total over the run", "value"], rows)


def _kpi_table(tl: Timeline) -> str:
    rows = []
    for r in day_kpis(tl):
        dg = 3 if r["unit"] in ("0..1",) else 2 if abs(r["value"] or 0) < 100 else 1
        rows.append(
            [
                r["kpi"],
                r["unit"],
                r["aggregate"],
                _fmt(r["value"], dg),
                _fmt(r["p5"], dg),
                _fmt(r["p95"], dg),
                r["reference"],
            ]
        )
    return _table(
        ["KPI", "unit", "over the run", "value", "p5 (cell-periods)", "p95 (cell-periods)", "clause"],
        rows,
        left=3,
    )


def _cell_type_table(tl: Timeline) -> str:
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for i, name in enumerate(CELL_TYPES):
            sel = tl.cell_type == i
            if not sel.any():
                continue
            k = {n: v[:, sel] for n, v in tl.kpis.items()}
            prb = np.nanmean(k["RRU.PrbUsedDl"], axis=1)
            rows.append(
                [
                    name,
                    int(sel.sum()),
                    _fmt(float(np.nansum(k["DRB.PdcpSduVolumeDL"])) / 8e3, 2),
                    _fmt(float(np.nanmean(prb)), 1),
                    _fmt(float(np.nanmax(prb)), 1),
                    _fmt(float(np.nansum(k["PEE.Energy"])), 2),
                    _fmt(100.0 * float(np.nanmean(k["mobileai.SleepRatio"])), 1),
                    _fmt(float(np.nanmedian(k["DRB.UEThpDl.P50"])) / 1e3, 2),
                ]
            )
    return _table(
        [
            "cell type",
            "cells",
            "DL GB",
            "mean DL PRB %",
            "busiest period DL PRB %",
            "energy kWh",
            "asleep %",
            "median UE DL Mbit/s",
        ],
        rows,
    )


def _events_rows(events: pa.Table, limit: int = 200) -> str:
    ev = events.to_pydict()
    rows = []
    for i in range(min(events.num_rows, limit)):
        end = ev["end"][i]
        rows.append(
            [
                ev["category"][i],
                ev["kind"][i],
                ev["cell_id"][i] or "-",
                ev["start"][i].strftime("%Y-%m-%d %H:%M:%S"),
                "-" if end is None else end.strftime("%Y-%m-%d %H:%M:%S"),
                _fmt(ev["magnitude"][i], 1),
                ev["source"][i],
                ev["previous"][i] or "-",
            ]
        )
    more = (
        f"<p>... and {events.num_rows - limit} more in events.parquet.</p>" if events.num_rows > limit else ""
    )
    return (
        _table(
            ["category", "kind", "cell", "start (UTC)", "end (UTC)", "magnitude", "source", "previous"],
            rows,
            left=3,
        )
        + more
    )


# ---------------------------------------------------------------------------------- HTML
def build_timeline_report(d: TimelineReportData) -> tuple[str, dict[str, bytes]]:
    """The HTML text and the PNG figures (name -> bytes) of a dynamic run."""
    tl = d.timeline
    figs: dict[str, bytes] = {
        "load.png": plot_load(d),
        "handover.png": plot_handover(d),
        "energy.png": plot_energy(d),
        "faults.png": plot_faults(d),
    }
    fc = plot_fault_cells(d)
    if fc is not None:
        figs["fault_cells.png"] = fc
    figs["ue_throughput.png"] = plot_ue_throughput(d)
    period = _period_label(tl)
    captions = {
        "load.png": f"Top: data volume delivered by all cells per {period} (TS 28.552 "
        "DRB.PdcpSduVolumeDL/UL). Bottom: mean DL PRB use of each cell type's cells, which follow "
        "their own diurnal curves (offices by day, residential in the evening).",
        "handover.png": "Handover executions out of all cells per period (top) and what went wrong "
        "(bottom): failures (target below Qout at execution), ping-pongs (back to the previous cell "
        "within the window) and radio link failures (T310 expiry, TS 38.331 5.3.10).",
        "energy.png": "Input power of all cells (EARTH load model with TR 38.864 sleep states) and "
        "the share of time cells were asleep or off.",
        "faults.png": "Ground-truth fault events (events.parquet, label = true): one row per "
        "affected cell, bars from start to end, colour by kind; triangles are applied actions.",
        "fault_cells.png": "For each fault (at most the first six), the affected cell's KPI that "
        "shows the fault kind best, per period around the fault (shaded), against the median "
        "over all cells (dashed).",
        "ue_throughput.png": "Per-UE DL throughput (TS 28.552 5.1.1.3.1: volume / time with "
        "data buffered). Each cell reports the 5th and 50th percentile over its UEs with data; "
        "lines are the median over cells, bands the interquartile range over cells (cells "
        "without data excluded). With few UEs per cell the per-cell percentiles are noisy.",
    }
    facts = [[k, _fmt(v)] for k, v in d.facts.items()]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>mobileai dynamic run: {_e(d.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(d.title)}</h1><p class='sub'>{_e(d.description)}</p>",
        _table(["run", ""], facts),
        "<h2>KPI summary</h2>",
        _totals_table(d.totals, tl),
        "<p>Per-cell KPIs per reporting period are in <code>kpis.parquet</code> (and the "
        "<code>kpis</code> table of <code>catalog.duckdb</code>); definitions, units and clauses in "
        "<code>docs/kpis.md</code>.</p>",
    ]

    def fig(name: str) -> None:
        if name in figs:
            parts.append(_img(name, figs[name], captions[name]) + f"<p>{_e(captions[name])}</p>")

    parts.append("<h2>Load</h2>")
    fig("load.png")
    parts.append("<h2>Per-UE throughput</h2>")
    fig("ue_throughput.png")
    parts.append("<h2>Mobility</h2>")
    fig("handover.png")
    parts.append("<h2>Energy</h2>")
    fig("energy.png")
    parts.append("<h2>Faults and actions</h2>")
    fig("faults.png")
    fig("fault_cells.png")
    if d.events.num_rows:
        parts.append(
            f"<details><summary>Events ({d.events.num_rows})</summary>{_events_rows(d.events)}</details>"
        )
    parts.append("<h2>KPIs per cell type</h2>")
    parts.append(_cell_type_table(tl))
    parts.append("<h2>Every KPI over the run</h2>")
    parts.append(
        "<p>Counts, volumes and energy are totals over cells and periods; the other KPIs are "
        "means over cell-periods (idle cells without UEs excluded where the KPI is undefined).</p>"
    )
    parts.append(_kpi_table(tl))
    parts.extend(reproduce_sections(d.scenario, d.timings_s, d.versions, d.platform, d.files))
    parts.append("</body></html>\n")
    return "\n".join(parts), figs
