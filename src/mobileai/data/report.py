"""The HTML report of a run: plots (matplotlib, Agg) and KPI tables in one self-contained file.

Figures are PNGs embedded as base64 (the HTML opens anywhere, offline, and can be mailed) and
also returned as separate files for slides. Plots:

- UE map coloured by SS-SINR, with sites, sector boresights (and site hexagons on hex grids);
- outdoor probe map: best server per pixel and SS-SINR, with the coverage edge
  (SS-SINR = -6 dB) drawn as a contour;
- CDFs of SS-SINR (and geometry), SS-RSRP and coupling gain over all UEs;
- UEs served and coverage ratio per cell.

Tables: drop-level KPI summary (p5/p50/p95), per-cell KPIs, the validated scenario, and what
is needed to reproduce the run (seed, versions, platform, command, timings).
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from mobileai.twin.kpis import COVERAGE_SINR_DB, ProbeMap
from mobileai.twin.layout import Cells

SINR_RANGE_DB = (-10.0, 30.0)


@dataclass
class ReportData:
    """Everything the report shows."""

    title: str
    description: str
    scenario: dict
    summary: dict
    ue: pa.Table
    cell: pa.Table
    cells: Cells
    probe: ProbeMap | None = None
    facts: dict = field(default_factory=dict)  # seed, device, created, command ...
    versions: dict = field(default_factory=dict)
    platform: dict = field(default_factory=dict)
    timings_s: dict = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------- plots
def _mpl():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.size": 10,
            "axes.titlesize": 11,
            "axes.grid": False,
            "figure.dpi": 110,
            "savefig.bbox": "tight",
        }
    )
    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _draw_sites(ax, cells: Cells, hexagons: bool = True) -> None:
    sx, sy = cells.site_x.cpu().numpy(), cells.site_y.cpu().numpy()
    if hexagons and cells.drop_kind == "hex":
        r = cells.isd_m / math.sqrt(3.0)
        ang = np.deg2rad(30.0 + 60.0 * np.arange(7))
        for x, y in zip(sx, sy, strict=True):
            ax.plot(x + r * np.cos(ang), y + r * np.sin(ang), color="0.55", lw=0.6, zorder=2)
    cx, cy = cells.x.cpu().numpy(), cells.y.cpu().numpy()
    bore = np.deg2rad(cells.boresight_deg.cpu().numpy())
    length = 0.3 * cells.isd_m
    sectored = cells.n > cells.n_sites
    if sectored:
        for x, y, b in zip(cx, cy, bore, strict=True):
            ax.plot(
                [x, x + length * np.cos(b)],
                [y, y + length * np.sin(b)],
                color="black",
                lw=1.3,
                zorder=4,
                solid_capstyle="round",
            )
    ax.scatter(
        sx,
        sy,
        marker="^",
        s=36,
        c="white",
        edgecolors="black",
        linewidths=1.0,
        zorder=5,
        label="site" + (" (lines: sector boresights)" if sectored else ""),
    )


def _map_axes(ax, cells: Cells) -> None:
    x0, x1, y0, y1 = cells.drop_box
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m, east)")
    ax.set_ylabel("y (m, north)")


def plot_ue_sinr_map(d: ReportData) -> bytes:
    plt = _mpl()
    x = d.ue.column("x_m").to_numpy()
    y = d.ue.column("y_m").to_numpy()
    sinr = d.ue.column("ss_sinr_db").to_numpy()
    fig, ax = plt.subplots(figsize=(8.0, 7.0))
    size = float(np.clip(20000.0 / max(len(x), 1), 2.0, 10.0))
    order = np.argsort(-sinr)  # draw the worst UEs last (on top)
    sc = ax.scatter(
        x[order],
        y[order],
        c=sinr[order],
        s=size,
        cmap="turbo",
        vmin=SINR_RANGE_DB[0],
        vmax=SINR_RANGE_DB[1],
        linewidths=0,
        rasterized=True,
        zorder=3,
    )
    _draw_sites(ax, d.cells)
    _map_axes(ax, d.cells)
    cb = fig.colorbar(sc, ax=ax, shrink=0.85, extend="both")
    cb.set_label("SS-SINR (dB)")
    ax.set_title(f"{d.title}: {len(x):,} UEs coloured by SS-SINR")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.09), fontsize=8, frameon=False)
    return _png(fig)


def _server_colours(n: int):
    from matplotlib.colors import ListedColormap

    base = np.vstack([_cmap("tab20")(np.linspace(0, 1, 20)), _cmap("tab20b")(np.linspace(0, 1, 20))])
    # neighbouring cell indices (sectors of one site, adjacent sites) get distant colours
    perm = (np.arange(n) * 7) % len(base)
    return ListedColormap(base[perm])


def _cmap(name: str):
    import matplotlib

    return matplotlib.colormaps[name]


def plot_probe_map(d: ReportData) -> bytes | None:
    if d.probe is None:
        return None
    plt = _mpl()
    p = d.probe
    fig, axes = plt.subplots(1, 2, figsize=(14.5, 6.6), layout="constrained")
    ext = (p.x[0], p.x[-1], p.y[0], p.y[-1])
    best = np.ma.masked_less(p.best_server, 0)
    n = d.cells.n
    axes[0].imshow(
        best,
        origin="lower",
        extent=ext,
        cmap=_server_colours(n),
        vmin=-0.5,
        vmax=n - 0.5,
        interpolation="nearest",
        zorder=1,
    )
    sinr = np.ma.masked_invalid(p.sinr_db)
    im = axes[1].imshow(
        sinr,
        origin="lower",
        extent=ext,
        cmap="turbo",
        vmin=SINR_RANGE_DB[0],
        vmax=SINR_RANGE_DB[1],
        interpolation="nearest",
        zorder=1,
    )
    holes = float(np.mean(p.sinr_db[np.isfinite(p.sinr_db)] < COVERAGE_SINR_DB))
    for ax in axes:
        if np.isfinite(p.sinr_db).any() and np.nanmin(p.sinr_db) < COVERAGE_SINR_DB:
            ax.contour(
                p.x,
                p.y,
                np.nan_to_num(p.sinr_db, nan=99.0),
                levels=[COVERAGE_SINR_DB],
                colors="black",
                linewidths=1.0,
                linestyles="--",
                zorder=3,
            )
        _draw_sites(ax, d.cells, hexagons=False)
        _map_axes(ax, d.cells)
    axes[0].set_title("Best server (colour = serving cell)")
    axes[1].set_title(f"SS-SINR ({holes:.1%} of the area below {COVERAGE_SINR_DB:g} dB)")
    cb = fig.colorbar(im, ax=list(axes), shrink=0.85, extend="both", pad=0.02)
    cb.set_label("SS-SINR (dB), right panel")
    fig.suptitle(
        f"{d.title}: outdoor probe map at 1.5 m, {p.x.size} x {p.y.size} grid "
        f"(dashed line: SS-SINR = {COVERAGE_SINR_DB:g} dB)",
        fontsize=12,
    )
    fig.get_layout_engine().set(h_pad=0.15)
    return _png(fig)


def _cdf(ax, values: np.ndarray, label: str, **kw) -> None:
    v = np.sort(values[np.isfinite(values)])
    if v.size == 0:
        return
    ax.plot(v, np.arange(1, v.size + 1) / v.size, label=label, **kw)


def plot_cdfs(d: ReportData) -> bytes:
    plt = _mpl()
    fig, axes = plt.subplots(1, 3, figsize=(15.0, 4.6))
    sinr = d.ue.column("ss_sinr_db").to_numpy()
    geo = d.ue.column("geometry_db").to_numpy()
    rsrp = d.ue.column("ss_rsrp_dbm").to_numpy()
    cg = d.ue.column("coupling_gain_db").to_numpy()
    _cdf(axes[0], sinr, "SS-SINR (interference + noise)", lw=2)
    _cdf(axes[0], geo, "geometry (interference only)", lw=1.5, ls="--")
    axes[0].axvline(
        COVERAGE_SINR_DB, color="red", lw=1, ls=":", label=f"coverage threshold {COVERAGE_SINR_DB:g} dB"
    )
    axes[0].set_xlabel("dB")
    axes[0].set_title("SS-SINR")
    _cdf(axes[1], rsrp, "SS-RSRP (serving cell)", lw=2, color="tab:green")
    axes[1].set_xlabel("dBm per resource element")
    axes[1].set_title("SS-RSRP")
    _cdf(axes[2], cg, "coupling gain (serving link)", lw=2, color="tab:purple")
    axes[2].set_xlabel("dB")
    axes[2].set_title("Coupling gain")
    for ax, v in zip(axes, (sinr, rsrp, cg), strict=True):
        ax.set_ylim(0, 1)
        ax.set_ylabel("CDF (share of UEs)")
        ax.grid(True, alpha=0.35)
        for p in (5, 50, 95):
            ax.axhline(p / 100, color="0.6", lw=0.6)
        if v.size:
            q = np.percentile(v, (5, 50, 95))
            ax.text(
                0.98,
                0.04,
                "p5 {:.1f}\np50 {:.1f}\np95 {:.1f}".format(*q),
                ha="right",
                va="bottom",
                transform=ax.transAxes,
                fontsize=9,
                bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "0.7"},
            )
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(f"{d.title}: distributions over {len(sinr):,} UEs", fontsize=11)
    fig.tight_layout()
    return _png(fig)


def plot_cells(d: ReportData) -> bytes:
    plt = _mpl()
    served = d.cell.column("RRC.ConnMean").to_numpy()
    cov = d.cell.column("mobileai.CoverageRatio").to_numpy(zero_copy_only=False)
    cov = np.array([np.nan if v is None else v for v in cov], dtype=float)
    ids = d.cell.column("cell_id").to_pylist()
    n = len(ids)
    fig, ax = plt.subplots(figsize=(max(8.0, min(0.2 * n, 18.0)), 4.2))
    idx = np.arange(n)
    ax.bar(idx, served, color="tab:blue", alpha=0.8, label="UEs served (RRC.ConnMean)")
    ax.set_ylabel("UEs served")
    ax.set_xlabel("cell")
    step = max(1, math.ceil(n / 40))
    ax.set_xticks(idx[::step])
    ax.set_xticklabels(ids[::step], rotation=90, fontsize=7)
    ax.set_xlim(-0.8, n - 0.2)
    ax2 = ax.twinx()
    ax2.plot(
        idx, cov, "o", color="tab:red", ms=3.5, label=f"coverage ratio (SS-SINR >= {COVERAGE_SINR_DB:g} dB)"
    )
    ax2.set_ylim(0, 1.05)
    ax2.set_ylabel("coverage ratio", color="tab:red")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(
        h1 + h2, l1 + l2, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False
    )
    ax.set_title("Load and coverage per cell", pad=22)
    fig.tight_layout()
    return _png(fig)


# ---------------------------------------------------------------------------------- HTML
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;
color:#222;padding:0 1rem}
h1{margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
.sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .6rem;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}
img{max-width:100%;border:1px solid #eee;margin:.5rem 0}
code{background:#f4f4f4;padding:0 .25rem}
details{margin:.5rem 0}
"""


def _e(v: object) -> str:
    return html.escape(str(v))


def _fmt(v: object, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        return f"{v:,.{digits}f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def _table(header: list[str], rows: Iterable[list[object]], left: int = 1) -> str:
    h = "".join(f'<th class="{"l" if i < left else ""}">{_e(c)}</th>' for i, c in enumerate(header))
    body = []
    for row in rows:
        tds = "".join(f'<td class="{"l" if i < left else ""}">{_e(c)}</td>' for i, c in enumerate(row))
        body.append(f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{h}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _flatten(d: dict, prefix: str = "") -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.extend(_flatten(v, f"{key}."))
        else:
            out.append((key, v))
    return out


def _img(name: str, png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}" title="{_e(name)}">'


def _summary_table(s: dict) -> str:
    rows = []
    for key, label, unit in (
        ("sinr_db", "SS-SINR", "dB"),
        ("geometry_db", "Geometry", "dB"),
        ("rsrp_dbm", "SS-RSRP", "dBm"),
        ("coupling_gain_db", "Coupling gain", "dB"),
    ):
        q = s[key]
        rows.append([label, unit, _fmt(q["p5"]), _fmt(q["p50"]), _fmt(q["p95"])])
    t1 = _table(["KPI (all UEs)", "unit", "p5", "p50", "p95"], rows, left=2)
    upc = s["ues_per_cell"]
    rows2 = [
        ["UEs / cells", f"{s['ues']:,} / {s['cells']:,}"],
        [
            f"Coverage: UEs with SS-SINR >= {s['coverage_sinr_threshold_db']:g} dB",
            f"{s['coverage_share']:.1%}",
        ],
        ["UEs per cell (min / mean / max)", f"{upc['min']} / {upc['mean']:.1f} / {upc['max']}"],
        ["Cells serving no UE", str(upc["cells_without_ues"])],
        ["Mean wideband CQI (TS 38.214 Table 5.2.2.1-2)", f"{s['cqi_mean']:.2f}"],
        ["Mean CQI spectral efficiency (bit/s/Hz)", f"{s['spectral_efficiency_mean']:.3f}"],
        ["Indoor UEs", f"{s['indoor_share']:.1%}"],
    ]
    return t1 + _table(["KPI", "value"], rows2)


def _cell_rows(cell: pa.Table) -> str:
    cols = [
        ("cell_id", "cell", 0),
        ("azimuth_deg", "azimuth °", 0),
        ("downtilt_deg", "tilt °", 1),
        ("tx_power_dbm", "P_tx dBm", 1),
        ("RRC.ConnMean", "UEs", 0),
        ("mobileai.SinrDl.P5", "SINR p5", 1),
        ("mobileai.SinrDl.P50", "SINR p50", 1),
        ("mobileai.SinrDl.P95", "SINR p95", 1),
        ("mobileai.SsRsrp.P50", "RSRP p50", 1),
        ("mobileai.CoverageRatio", "coverage", 3),
        ("mobileai.CqiMean", "CQI mean", 2),
    ]
    data = {c: cell.column(c).to_pylist() for c, _, _ in cols}
    rows = []
    for i in range(cell.num_rows):
        rows.append(
            [_fmt(data[c][i], dg) if isinstance(data[c][i], float) else _fmt(data[c][i]) for c, _, dg in cols]
        )
    return _table([h for _, h, _ in cols], rows)


def reproduce_sections(
    scenario: dict, timings_s: dict[str, float], versions: dict, platform: dict, files: list[str]
) -> list[str]:
    """The closing "Scenario" and "Reproduce" sections every run report carries."""
    parts = ["<h2>Scenario</h2>"]
    parts.append(_table(["parameter", "value"], ([k, _fmt(v)] for k, v in _flatten(scenario))))
    parts.append("<h2>Reproduce</h2>")
    if timings_s:
        parts.append(_table(["stage", "seconds"], ([k, f"{v:.3f}"] for k, v in timings_s.items())))
    parts.append(_table(["package", "version"], ([k, v] for k, v in versions.items())))
    parts.append(_table(["platform", ""], ([k, v] for k, v in platform.items())))
    if files:
        links = " ".join(f"<a href='{_e(f)}'>{_e(f)}</a>" for f in files)
        parts.append(f"<p>Files: {links} and <a href='run.json'>run.json</a></p>")
    return parts


def build_report(d: ReportData) -> tuple[str, dict[str, bytes]]:
    """The HTML text and the PNG figures (name -> bytes) of a run."""
    figs: dict[str, bytes] = {"ue_sinr_map.png": plot_ue_sinr_map(d)}
    probe = plot_probe_map(d)
    if probe is not None:
        figs["probe_map.png"] = probe
    figs["cdfs.png"] = plot_cdfs(d)
    figs["cells.png"] = plot_cells(d)
    captions = {
        "ue_sinr_map.png": "UEs coloured by their SS-SINR; triangles are sites, black lines the "
        "sector boresights. Indoor UEs (most of them) see O2I loss, so neighbouring UEs can differ.",
        "probe_map.png": "A grid of outdoor probe UEs at 1.5 m in the same shadowing and LOS fields "
        "as the UEs: left the best server, right the SS-SINR; the dashed line is the coverage "
        "edge. Outdoor only: indoor UEs add the O2I penetration loss (TR 38.901 7.4.3), so their "
        "SS-SINR (map above, CDFs below) is lower where noise matters.",
        "cdfs.png": "CDFs over all UEs; horizontal lines at 5 %, 50 % and 95 %.",
        "cells.png": "UEs served per cell (bars) and the share of them with SS-SINR at or above "
        f"{COVERAGE_SINR_DB:g} dB (dots).",
    }
    facts = [[k, _fmt(v)] for k, v in d.facts.items()]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>mobileai run: {_e(d.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(d.title)}</h1><p class='sub'>{_e(d.description)}</p>",
        _table(["run", ""], facts),
        "<h2>KPI summary</h2>",
        _summary_table(d.summary),
        "<p>Definitions, units and the 3GPP clauses: <code>docs/kpis.md</code>; the same data is "
        "in <code>ues.parquet</code>, <code>cells.parquet</code> and <code>catalog.duckdb</code>."
        "</p>",
        "<h2>Maps</h2>",
    ]
    for name in ("ue_sinr_map.png", "probe_map.png"):
        if name in figs:
            parts.append(_img(name, figs[name], captions[name]) + f"<p>{_e(captions[name])}</p>")
    parts.append("<h2>Distributions</h2>")
    parts.append(_img("cdfs.png", figs["cdfs.png"], captions["cdfs.png"]))
    parts.append(f"<p>{_e(captions['cdfs.png'])}</p>")
    parts.append("<h2>Cells</h2>")
    parts.append(_img("cells.png", figs["cells.png"], captions["cells.png"]))
    parts.append(f"<p>{_e(captions['cells.png'])}</p>")
    parts.append(f"<details><summary>Per-cell KPIs ({d.cell.num_rows} cells)</summary>")
    parts.append(_cell_rows(d.cell) + "</details>")
    parts.extend(reproduce_sections(d.scenario, d.timings_s, d.versions, d.platform, d.files))
    parts.append("</body></html>\n")
    return "\n".join(parts), figs
