"""Network layout: where the cells are and where UEs may be dropped.

Two sources:

- the 3GPP hexagonal grid (TR 38.901 Table 7.2-1 / 7.8-1): 1, 7, 19 or 37 sites at the
  inter-site distance, 3 sectors with boresights 30°, 150°, 270°, and for 19 sites the
  wrap-around torus (each UE sees every cell at its nearest of 7 images);
- the user's own site/cell list (CSV, see ``docs/scenarios.md``), with x/y in metres or
  WGS84 lat/lon (projected to a local east/north plane around the centroid). When its sites are
  exactly the 19-site grid at ``layout.isd_m`` and ``layout.wrap_around`` is on, the file layout
  keeps the wrap-around and the per-sector drop of the hex grid (several carriers per sector,
  e.g. a coverage + capacity layer, TR 38.913 6.1.2);
- optional per-cell power-model columns (``p0_w``, ``delta_p``, ``max_tx_w``,
  ``micro_sleep_rel``, ``light_sleep_rel``, ``deep_sleep_rel``: the EARTH / TR 38.864 parameters
  of :mod:`mobileai.twin.energy`) for networks mixing radio-unit types; unset cells use the
  scenario's ``energy`` section.

Cells are struct-of-arrays tensors: no per-cell Python objects on the hot path.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, fields, replace
from pathlib import Path

import torch

from mobileai.errors import UserError
from mobileai.twin.config import FREQUENCY_RANGE_GHZ, Scenario
from mobileai.twin.nr import prb_count

EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class Cells:
    """Cells as tensors of shape [C]; sites as tensors of shape [S]."""

    ids: tuple[str, ...]
    site: torch.Tensor  # int64 [C], index into site_x/site_y
    x: torch.Tensor
    y: torch.Tensor
    height: torch.Tensor
    boresight_deg: torch.Tensor  # azimuth of boresight, mathematical convention (0 = east, CCW)
    downtilt_deg: torch.Tensor
    tx_power_dbm: torch.Tensor
    carrier_ghz: torch.Tensor
    bandwidth_mhz: torch.Tensor
    site_x: torch.Tensor
    site_y: torch.Tensor
    wrap_shifts: torch.Tensor  # [K, 2] translations of the wrap-around images (K=1: none)
    drop_kind: str  # "hex" (drop within sector rhombi) or "box"
    drop_box: tuple[float, float, float, float]  # xmin, xmax, ymin, ymax
    isd_m: float
    #: per-cell power-model parameters [C, len(POWER_COLUMNS)] (NaN: the scenario's ``energy``
    #: section); None when no cell sets any
    power: torch.Tensor | None = None

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def n_sites(self) -> int:
        return int(self.site_x.shape[0])

    def to(self, device: torch.device | str) -> Cells:
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        return replace(self, **moved)


def hex_site_positions(n_sites: int, isd_m: float) -> torch.Tensor:
    """Site centres of a hexagonal grid, centre first then ring by ring, [S, 2] metres."""
    rings = {1: 0, 7: 1, 19: 2, 37: 3}[n_sites]
    pts = [(0.0, 0.0)]
    # neighbours at 0°, 60°, ...: the site hexagons are pointy-top, with corners at 30° + k·60°,
    # where the 3GPP sector boresights (30°, 150°, 270°) point.
    dirs = [(math.cos(math.radians(60 * k)), math.sin(math.radians(60 * k))) for k in range(6)]
    for r in range(1, rings + 1):
        x, y = r * isd_m * dirs[4][0], r * isd_m * dirs[4][1]
        for side in range(6):
            for _ in range(r):
                pts.append((x, y))
                x, y = x + isd_m * dirs[side][0], y + isd_m * dirs[side][1]
    return torch.tensor(pts, dtype=torch.float64)


def wrap_around_shifts(isd_m: float) -> torch.Tensor:
    """The identity and the 6 translations that tile the plane with 19-site clusters, [7, 2].

    The 19-hexagon cluster repeats along (i, j) = (3, 2) steps of the site lattice
    (3·a1 + 2·a2 with a1 at 0° and a2 at 60°, length ISD·√19) and its six rotations; a test
    checks that the images of all sites form a perfect lattice with no coincident sites.
    """
    base = (isd_m * (3.0 + 2.0 * 0.5), isd_m * (2.0 * math.sqrt(3.0) / 2.0))
    shifts = [(0.0, 0.0)]
    ang0 = math.atan2(base[1], base[0])
    rad = math.hypot(*base)
    for k in range(6):
        a = ang0 + k * math.pi / 3
        shifts.append((rad * math.cos(a), rad * math.sin(a)))
    return torch.tensor(shifts, dtype=torch.float64)


def hex_layout(sc: Scenario) -> Cells:
    """The 3GPP hexagonal layout of a scenario."""
    lay = sc.layout
    sites = hex_site_positions(lay.sites, lay.isd_m)
    n_sites = sites.shape[0]
    bores = [30.0, 150.0, 270.0] if lay.sectors == 3 else [0.0]
    n = n_sites * len(bores)
    site_idx = torch.arange(n_sites).repeat_interleave(len(bores))
    boresight = torch.tensor(bores * n_sites, dtype=torch.float64)
    ids = tuple(f"S{s:03d}-{k + 1}" for s in range(n_sites) for k in range(len(bores)))
    full = torch.ones(n, dtype=torch.float64)
    radius = lay.isd_m / math.sqrt(3.0)
    ext = float(sites.abs().max()) + radius
    shifts = wrap_around_shifts(lay.isd_m) if lay.wrap_around else torch.zeros(1, 2, dtype=torch.float64)
    return Cells(
        ids=ids,
        site=site_idx,
        x=sites[site_idx, 0].clone(),
        y=sites[site_idx, 1].clone(),
        height=full * lay.bs_height_m,
        boresight_deg=boresight,
        downtilt_deg=full * sc.bs.antenna.electrical_downtilt_deg,
        tx_power_dbm=full * sc.bs.tx_power_dbm,
        carrier_ghz=full * sc.radio.carrier_ghz,
        bandwidth_mhz=full * sc.radio.bandwidth_mhz,
        site_x=sites[:, 0].clone(),
        site_y=sites[:, 1].clone(),
        wrap_shifts=shifts,
        drop_kind="hex",
        drop_box=(-ext, ext, -ext, ext),
        isd_m=lay.isd_m,
    )


#: optional per-cell power-model columns of the cells CSV, in the order of ``Cells.power``,
#: with their allowed ranges (those of ``EnergyConfig``)
POWER_COLUMNS: dict[str, tuple[float, float, str]] = {
    "p0_w": (0.0, 5000.0, "W"),
    "delta_p": (0.0, 50.0, "(input W per radiated W)"),
    "max_tx_w": (1e-3, 1000.0, "W"),
    "micro_sleep_rel": (0.0, 100.0, "% of full-load power"),
    "light_sleep_rel": (0.0, 100.0, "% of full-load power"),
    "deep_sleep_rel": (0.0, 100.0, "% of full-load power"),
}

_CSV_COLUMNS = {
    "cell_id",
    "site_id",
    "x_m",
    "y_m",
    "lat",
    "lon",
    "azimuth_deg",
    "tilt_deg",
    "height_m",
    "tx_power_dbm",
    "carrier_ghz",
    "bandwidth_mhz",
    *POWER_COLUMNS,
}


def _num(value: str, col: str, row: int, src: str, lo: float, hi: float, unit: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise UserError(f"{src}: row {row}, column {col}: {value!r} is not a number") from None
    if not math.isfinite(v):
        raise UserError(f"{src}: row {row}, column {col}: {value!r} is not a finite number")
    if not lo <= v <= hi:
        raise UserError(
            f"{src}: row {row}, column {col}: {v:g} is out of range; allowed {lo:g}..{hi:g} {unit}"
        )
    return v


def load_cells_csv(path: Path, sc: Scenario) -> Cells:
    """Read the user's site/cell list. One row per cell; see docs/scenarios.md for columns."""
    src = f"sites file {path}"
    if not path.is_file():
        raise UserError(f"{src}: does not exist")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        rows = list(reader)
    if not header:
        raise UserError(f"{src}: the file is empty; expected a header row and one row per cell")
    unknown = [h for h in header if h not in _CSV_COLUMNS]
    if unknown:
        raise UserError(
            f"{src}: unknown column(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_CSV_COLUMNS))}"
        )
    if not rows:
        raise UserError(f"{src}: no cells (only a header row)")
    has_xy = {"x_m", "y_m"} <= set(header)
    has_ll = {"lat", "lon"} <= set(header)
    if not (has_xy or has_ll):
        raise UserError(f"{src}: needs either x_m and y_m columns or lat and lon columns")
    for col in ("cell_id", "azimuth_deg"):
        if col not in header:
            raise UserError(f"{src}: missing required column {col}")
    lo_f, hi_f = FREQUENCY_RANGE_GHZ[sc.radio.scenario]
    ids: list[str] = []
    site_keys: list[str] = []
    xs: list[float] = []
    ys: list[float] = []
    cols: dict[str, list[float]] = {k: [] for k in ("az", "tilt", "h", "p", "f", "bw")}
    power: list[list[float]] = []
    for i, raw in enumerate(rows, start=2):
        r = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        cid = r.get("cell_id", "")
        if not cid:
            raise UserError(f"{src}: row {i}, column cell_id: empty")
        if cid in ids:
            raise UserError(f"{src}: row {i}, column cell_id: duplicate id {cid!r}")
        ids.append(cid)
        if has_xy:
            xs.append(_num(r["x_m"], "x_m", i, src, -1e6, 1e6, "m"))
            ys.append(_num(r["y_m"], "y_m", i, src, -1e6, 1e6, "m"))
        else:
            ys.append(_num(r["lat"], "lat", i, src, -90, 90, "degrees"))
            xs.append(_num(r["lon"], "lon", i, src, -180, 180, "degrees"))
        cols["az"].append(_num(r["azimuth_deg"], "azimuth_deg", i, src, 0, 360, "degrees (compass bearing)"))

        def opt(col: str, default: float, lo: float, hi: float, unit: str, _r=r, _i=i) -> float:
            v = _r.get(col, "")
            return default if v == "" else _num(v, col, _i, src, lo, hi, unit)

        cols["tilt"].append(
            opt("tilt_deg", sc.bs.antenna.electrical_downtilt_deg, -10, 45, "degrees down-tilt")
        )
        cols["h"].append(opt("height_m", sc.layout.bs_height_m, 1, 300, "m"))
        cols["p"].append(opt("tx_power_dbm", sc.bs.tx_power_dbm, 0, 60, "dBm"))
        cols["f"].append(
            opt(
                "carrier_ghz", sc.radio.carrier_ghz, lo_f, hi_f, f"GHz ({sc.radio.scenario.upper()} validity)"
            )
        )
        bw = opt("bandwidth_mhz", sc.radio.bandwidth_mhz, 1, 400, "MHz")
        try:
            prb_count(bw, sc.radio.subcarrier_spacing_khz)
        except ValueError as exc:
            raise UserError(f"{src}: row {i}, column bandwidth_mhz: {exc}") from None
        cols["bw"].append(bw)
        power.append([opt(col, math.nan, lo, hi, unit) for col, (lo, hi, unit) in POWER_COLUMNS.items()])
        site_keys.append(r.get("site_id") or f"{xs[-1]:.6f},{ys[-1]:.6f}")
    if has_ll:
        lat0 = sum(ys) / len(ys)
        lon0 = sum(xs) / len(xs)
        k = math.cos(math.radians(lat0))
        xs = [math.radians(lon - lon0) * EARTH_RADIUS_M * k for lon in xs]
        ys = [math.radians(lat - lat0) * EARTH_RADIUS_M for lat in ys]
    site_order: dict[str, int] = {}
    for key in site_keys:
        site_order.setdefault(key, len(site_order))
    site_idx = torch.tensor([site_order[k] for k in site_keys], dtype=torch.int64)
    x = torch.tensor(xs, dtype=torch.float64)
    y = torch.tensor(ys, dtype=torch.float64)
    n_sites = len(site_order)
    count = torch.bincount(site_idx, minlength=n_sites).double()
    sx = torch.zeros(n_sites, dtype=torch.float64).index_add_(0, site_idx, x) / count
    sy = torch.zeros(n_sites, dtype=torch.float64).index_add_(0, site_idx, y) / count
    spacing = _typical_spacing(sx, sy)
    margin = spacing / 2.0
    power_t = torch.tensor(power, dtype=torch.float64)
    cells = Cells(
        ids=tuple(ids),
        site=site_idx,
        x=x,
        y=y,
        height=torch.tensor(cols["h"], dtype=torch.float64),
        boresight_deg=90.0 - torch.tensor(cols["az"], dtype=torch.float64),
        downtilt_deg=torch.tensor(cols["tilt"], dtype=torch.float64),
        tx_power_dbm=torch.tensor(cols["p"], dtype=torch.float64),
        carrier_ghz=torch.tensor(cols["f"], dtype=torch.float64),
        bandwidth_mhz=torch.tensor(cols["bw"], dtype=torch.float64),
        site_x=sx,
        site_y=sy,
        wrap_shifts=torch.zeros(1, 2, dtype=torch.float64),
        drop_kind="box",
        drop_box=(
            float(sx.min()) - margin,
            float(sx.max()) + margin,
            float(sy.min()) - margin,
            float(sy.max()) + margin,
        ),
        isd_m=spacing,
        power=power_t if bool(torch.isfinite(power_t).any()) else None,
    )
    if sc.layout.wrap_around and _is_hex19(sx, sy, sc.layout.isd_m):
        grid = hex_site_positions(19, sc.layout.isd_m)
        ext = float(grid.abs().max()) + sc.layout.isd_m / math.sqrt(3.0)
        cells = replace(
            cells,
            wrap_shifts=wrap_around_shifts(sc.layout.isd_m),
            drop_kind="hex",
            drop_box=(-ext, ext, -ext, ext),
            isd_m=sc.layout.isd_m,
        )
    return cells


def _is_hex19(sx: torch.Tensor, sy: torch.Tensor, isd_m: float) -> bool:
    """The file's sites are the 3GPP 19-site grid at ``isd_m`` (any order, within 1 m)."""
    if sx.numel() != 19:
        return False
    grid = hex_site_positions(19, isd_m)
    d = torch.cdist(torch.stack([sx, sy], 1), grid)
    return bool((d.min(1).values < 1.0).all()) and bool((d.min(0).values < 1.0).all())


def _typical_spacing(sx: torch.Tensor, sy: torch.Tensor) -> float:
    """Median nearest-neighbour distance between sites (500 m for a single site)."""
    if sx.numel() < 2:
        return 500.0
    d = torch.cdist(torch.stack([sx, sy], 1), torch.stack([sx, sy], 1))
    d.fill_diagonal_(float("inf"))
    return float(d.min(1).values.median())


def replicate(cells: Cells, copies: int) -> Cells:
    """``copies`` independent instances of a layout in one index space: copy b owns cells
    [b·C, (b+1)·C) and sites [b·S, (b+1)·S) at the same positions (batched twins, vector envs)."""
    if copies == 1:
        return cells
    n_s = cells.n_sites

    def rep(t: torch.Tensor) -> torch.Tensor:
        return t.repeat(copies)

    return replace(
        cells,
        ids=tuple(f"{b}/{cid}" for b in range(copies) for cid in cells.ids),
        site=torch.cat([cells.site + b * n_s for b in range(copies)]),
        x=rep(cells.x),
        y=rep(cells.y),
        height=rep(cells.height),
        boresight_deg=rep(cells.boresight_deg),
        downtilt_deg=rep(cells.downtilt_deg),
        tx_power_dbm=rep(cells.tx_power_dbm),
        carrier_ghz=rep(cells.carrier_ghz),
        bandwidth_mhz=rep(cells.bandwidth_mhz),
        site_x=rep(cells.site_x),
        site_y=rep(cells.site_y),
        power=None if cells.power is None else cells.power.repeat(copies, 1),
    )


def build_layout(sc: Scenario) -> Cells:
    """Cells of a scenario, from the hex grid or the user's file."""
    if sc.layout.kind == "file":
        assert sc.layout.file is not None
        return load_cells_csv(Path(sc.layout.file), sc)
    return hex_layout(sc)
