"""KPI tables of a static drop: one row per UE and one row per cell (documented in docs/kpis.md).

Per UE (from :class:`~mobileai.twin.radio.RadioResult`):

- SS-RSRP of the serving cell, TS 38.215 clause 5.1.1 (power per resource element);
- SS-SINR, TS 38.215 clause 5.1.5 (wideband, large-scale: every other co-channel cell at full
  load, thermal noise over the channel bandwidth, no fast fading);
- geometry and coupling gain, the TR 38.901 clause 7.8.1 calibration metrics;
- wideband CQI from SS-SINR with the 4-bit CQI Table 1 of TS 38.214 Table 5.2.2.1-2 (QPSK to
  64QAM): the highest CQI whose 10 % BLER SINR threshold the UE reaches, as TS 38.214 clause
  5.2.2.1 defines CQI (BLER not above 0.1); the spectral efficiency is that row's efficiency
  column. Table and thresholds are those of :mod:`mobileai.twin.linkadapt` (one source for the
  static drop and the time-stepped engine);
- the strongest cells by SS-RSRP (the UE's neighbour measurements, strongest first).

Per cell, with measurement names of TS 28.552 (as carried by O-RAN E2SM-KPM) where one exists:
``RRC.ConnMean`` (clause 5.1.1.4.1), ``CARR.WBCQIDist.Bin`` (5.1.1.11.1), ``L1M.SS-RSRP.Bin``
(5.1.1.22.1), ``MR.NRScSSSINR.Bin`` (5.1.1.32.1); statistics that TS 28.552 does not define
(percentiles, coverage ratio) are named ``mobileai.*``.

Everything here is numpy/pyarrow on the CPU: result tensors are moved off the device first.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields

import numpy as np
import pyarrow as pa
import torch

from mobileai.twin import linkadapt
from mobileai.twin.layout import Cells
from mobileai.twin.nr import prb_count
from mobileai.twin.radio import RadioModel, RadioResult
from mobileai.twin.ues import UEs

#: A UE counts as covered when its SS-SINR is at least this (dB).
COVERAGE_SINR_DB = -6.0

#: Bin edges of the per-cell distributions (TS 28.552 leaves bins to the implementation).
#: Bin 0 is below the first edge, bin i is [edge[i-1], edge[i]), the last bin is above the last.
RSRP_BIN_EDGES_DBM: tuple[float, ...] = (-140, -130, -120, -110, -100, -90, -80, -70, -60)
SINR_BIN_EDGES_DB: tuple[float, ...] = (-6, 0, 5, 10, 15, 20, 25, 30)

PERCENTILES = (5, 50, 95)


@dataclass(frozen=True)
class ColumnDoc:
    """Unit, definition and the clause a column follows (also in docs/kpis.md)."""

    unit: str
    definition: str
    reference: str


UE_COLUMNS: dict[str, ColumnDoc] = {
    "ue_id": ColumnDoc("-", "UE index in the drop, 0 .. N-1.", "-"),
    "x_m": ColumnDoc("m", "UE position, east.", "TR 38.901 7.2"),
    "y_m": ColumnDoc("m", "UE position, north.", "TR 38.901 7.2"),
    "height_m": ColumnDoc("m", "UE antenna height h_UT.", "TR 38.901 Table 7.2-1"),
    "indoor": ColumnDoc("bool", "Indoor UE (outdoor-to-indoor link).", "TR 38.901 7.4.3"),
    "o2i_high_loss": ColumnDoc(
        "bool", "Indoor UE behind high-loss walls (IRR glass, concrete).", "TR 38.901 Table 7.4.3-2"
    ),
    "serving_cell_id": ColumnDoc(
        "-", "Serving cell: the cell with the largest SS-RSRP (0 dB margin).", "TR 38.901 7.8.1"
    ),
    "serving_cell_index": ColumnDoc("-", "Row of the serving cell in cells.parquet.", "-"),
    "ss_rsrp_dbm": ColumnDoc(
        "dBm",
        "SS-RSRP of the serving cell: P_tx - 10 log10(12 N_RB) + coupling gain, the power of one "
        "resource element (SSS at the average RE power, no fast fading).",
        "TS 38.215 5.1.1",
    ),
    "ss_sinr_db": ColumnDoc(
        "dB",
        "SS-SINR: serving power / (co-channel interference of all other cells at full load + "
        "thermal noise kTB x noise figure over the channel bandwidth); wideband, large-scale.",
        "TS 38.215 5.1.5",
    ),
    "geometry_db": ColumnDoc(
        "dB",
        "Serving power / co-channel interference (no noise): the RAN1 'geometry'.",
        "TR 38.901 7.8.1",
    ),
    "coupling_gain_db": ColumnDoc(
        "dB",
        "Serving link: BS antenna gain - (path loss + shadow fading + O2I loss); UE gain 0 dBi.",
        "TR 38.901 7.8.1",
    ),
    "pathloss_db": ColumnDoc(
        "dB",
        "Serving link: basic path loss + shadow fading + O2I penetration loss.",
        "TR 38.901 7.4.1, 7.4.3",
    ),
    "antenna_gain_db": ColumnDoc(
        "dBi", "BS antenna (element + vertical array) gain towards the UE.", "TR 38.901 7.3"
    ),
    "los": ColumnDoc("bool", "Serving link is line of sight (outdoor part).", "TR 38.901 7.4.2"),
    "distance_2d_m": ColumnDoc(
        "m", "2D distance to the serving cell (nearest wrap-around image).", "TR 38.901 7.4"
    ),
    "cqi": ColumnDoc(
        "-",
        "Wideband CQI 0..15 of 4-bit CQI Table 1: the highest CQI whose 10 % BLER SINR threshold "
        "is at most ss_sinr_db; 0 = out of range.",
        "TS 38.214 5.2.2.1, Table 5.2.2.1-2",
    ),
    "spectral_efficiency": ColumnDoc(
        "bit/s/Hz",
        "Efficiency column of Table 5.2.2.1-2 at the UE's CQI (one layer, before overheads).",
        "TS 38.214 Table 5.2.2.1-2",
    ),
    "candidate_cell_ids": ColumnDoc(
        "-",
        "The K strongest cells by SS-RSRP, strongest first (K = 8 or fewer cells).",
        "TS 38.331 5.5.5 (measurement report)",
    ),
    "candidate_ss_rsrp_dbm": ColumnDoc(
        "dBm", "SS-RSRP of candidate_cell_ids, same order.", "TS 38.215 5.1.1"
    ),
}

_BIN_NOTE = "Bin 0 is below the first edge, bin i is [edge i-1, edge i), the last is above."

CELL_COLUMNS: dict[str, ColumnDoc] = {
    "cell_id": ColumnDoc("-", "Cell identifier (hex layouts: S003-2 is site 3, sector 2).", "-"),
    "cell_index": ColumnDoc("-", "Row index, referenced by ues.serving_cell_index.", "-"),
    "site_index": ColumnDoc("-", "Site (co-located cells share it).", "-"),
    "x_m": ColumnDoc("m", "Cell (antenna) position, east.", "-"),
    "y_m": ColumnDoc("m", "Cell (antenna) position, north.", "-"),
    "height_m": ColumnDoc("m", "BS antenna height.", "TR 38.901 Table 7.2-1"),
    "azimuth_deg": ColumnDoc("deg", "Boresight bearing, clockwise from north.", "-"),
    "downtilt_deg": ColumnDoc("deg", "Electrical down-tilt below the horizon.", "TR 38.901 7.3"),
    "tx_power_dbm": ColumnDoc("dBm", "Total transmit power.", "-"),
    "carrier_ghz": ColumnDoc("GHz", "Carrier frequency.", "-"),
    "bandwidth_mhz": ColumnDoc("MHz", "Channel bandwidth.", "TS 38.101 Table 5.3.2-1"),
    "n_rb": ColumnDoc("-", "PRBs in the channel bandwidth (N_RB).", "TS 38.101 Table 5.3.2-1"),
    "RRC.ConnMean": ColumnDoc(
        "UEs",
        "Mean number of RRC-connected UEs. A static drop is one sample in which every UE is "
        "connected to its serving cell, so this is the number of UEs served.",
        "TS 28.552 5.1.1.4.1",
    ),
    "CARR.WBCQIDist.Bin": ColumnDoc(
        "UEs",
        "Wideband CQI distribution: 16 counts for CQI 0..15 (rank 1, CQI Table 1).",
        "TS 28.552 5.1.1.11.1",
    ),
    "L1M.SS-RSRP.Bin": ColumnDoc(
        "UEs",
        f"Distribution of the served UEs' SS-RSRP; edges {list(RSRP_BIN_EDGES_DBM)} dBm. " + _BIN_NOTE,
        "TS 28.552 5.1.1.22.1",
    ),
    "MR.NRScSSSINR.Bin": ColumnDoc(
        "UEs",
        f"Distribution of the served UEs' SS-SINR; edges {list(SINR_BIN_EDGES_DB)} dB. " + _BIN_NOTE,
        "TS 28.552 5.1.1.32.1",
    ),
    "mobileai.SsRsrp.Mean": ColumnDoc("dBm", "Mean of the served UEs' SS-RSRP (of dBm values).", "-"),
    "mobileai.SsRsrp.P5": ColumnDoc("dBm", "5th percentile of the served UEs' SS-RSRP.", "-"),
    "mobileai.SsRsrp.P50": ColumnDoc("dBm", "Median of the served UEs' SS-RSRP.", "-"),
    "mobileai.SsRsrp.P95": ColumnDoc("dBm", "95th percentile of the served UEs' SS-RSRP.", "-"),
    "mobileai.SinrDl.Mean": ColumnDoc("dB", "Mean of the served UEs' SS-SINR (of dB values).", "-"),
    "mobileai.SinrDl.P5": ColumnDoc("dB", "5th percentile of the served UEs' SS-SINR.", "-"),
    "mobileai.SinrDl.P50": ColumnDoc("dB", "Median of the served UEs' SS-SINR.", "-"),
    "mobileai.SinrDl.P95": ColumnDoc("dB", "95th percentile of the served UEs' SS-SINR.", "-"),
    "mobileai.CoverageRatio": ColumnDoc(
        "ratio", f"Share of the served UEs with SS-SINR >= {COVERAGE_SINR_DB:g} dB.", "-"
    ),
    "mobileai.CqiMean": ColumnDoc("-", "Mean wideband CQI of the served UEs.", "-"),
    "mobileai.SpectralEffMean": ColumnDoc("bit/s/Hz", "Mean CQI spectral efficiency of the served UEs.", "-"),
}


# ---------------------------------------------------------------------------------- link to system
def sinr_to_cqi(sinr_db: np.ndarray) -> np.ndarray:
    """Wideband CQI (0..15, uint8) for SINR values in dB (:func:`linkadapt.sinr_to_cqi`)."""
    sinr = torch.as_tensor(np.asarray(sinr_db, dtype=np.float32))
    return linkadapt.sinr_to_cqi(sinr).numpy().astype(np.uint8)


def cqi_efficiency(cqi: np.ndarray) -> np.ndarray:
    """Table 5.2.2.1-2 efficiency (information bits per resource element, float32) per CQI."""
    return linkadapt.cqi_efficiency(torch.as_tensor(np.asarray(cqi, dtype=np.int64))).numpy()


# ---------------------------------------------------------------------------------- tables
def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _field(name: str, typ: pa.DataType, docs: dict[str, ColumnDoc], **extra: str) -> pa.Field:
    d = docs[name]
    meta = {"unit": d.unit, "definition": d.definition, "reference": d.reference, **extra}
    return pa.field(name, typ, metadata=meta)


def _list_column(values: np.ndarray | pa.Array, width: int) -> pa.ListArray:
    """Rows of ``width`` consecutive values as a list column."""
    flat = values if isinstance(values, pa.Array) else pa.array(values)
    offsets = np.arange(0, len(flat) + 1, max(width, 1), dtype=np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), flat)


def ue_table(result: RadioResult, ues: UEs, cells: Cells) -> pa.Table:
    """One row per UE; see :data:`UE_COLUMNS`."""
    serving = _np(result.serving).astype(np.int32)
    sinr = _np(result.sinr_db).astype(np.float32)
    cqi = sinr_to_cqi(sinr)
    cand = _np(result.candidates).astype(np.int64)
    n, k = cand.shape
    ids = pa.array(list(cells.ids), type=pa.string())
    # cell ids are dictionary-encoded (int32 codes into the cell list): strings for the user,
    # 4 bytes per value in memory; Parquet, DuckDB and pandas read them as plain strings
    cell_id_type = pa.dictionary(pa.int32(), pa.string())
    cols = {
        "ue_id": (pa.int64(), np.arange(n, dtype=np.int64)),
        "x_m": (pa.float64(), _np(ues.x).astype(np.float64)),
        "y_m": (pa.float64(), _np(ues.y).astype(np.float64)),
        "height_m": (pa.float32(), _np(ues.height).astype(np.float32)),
        "indoor": (pa.bool_(), _np(ues.indoor).astype(bool)),
        "o2i_high_loss": (pa.bool_(), _np(ues.o2i_high).astype(bool)),
        "serving_cell_id": (cell_id_type, pa.DictionaryArray.from_arrays(pa.array(serving), ids)),
        "serving_cell_index": (pa.int32(), serving),
        "ss_rsrp_dbm": (pa.float32(), _np(result.rsrp_dbm).astype(np.float32)),
        "ss_sinr_db": (pa.float32(), sinr),
        "geometry_db": (pa.float32(), _np(result.geometry_db).astype(np.float32)),
        "coupling_gain_db": (pa.float32(), _np(result.coupling_gain_db).astype(np.float32)),
        "pathloss_db": (pa.float32(), _np(result.pathloss_db).astype(np.float32)),
        "antenna_gain_db": (pa.float32(), _np(result.antenna_gain_db).astype(np.float32)),
        "los": (pa.bool_(), _np(result.los).astype(bool)),
        "distance_2d_m": (pa.float32(), _np(result.distance_2d_m).astype(np.float32)),
        "cqi": (pa.uint8(), cqi),
        "spectral_efficiency": (pa.float32(), cqi_efficiency(cqi)),
        "candidate_cell_ids": (
            pa.list_(cell_id_type),
            _list_column(pa.DictionaryArray.from_arrays(pa.array(cand.reshape(-1).astype(np.int32)), ids), k),
        ),
        "candidate_ss_rsrp_dbm": (
            pa.list_(pa.float32()),
            _list_column(_np(result.candidate_rsrp_dbm).astype(np.float32).reshape(-1), k),
        ),
    }
    assert list(cols) == list(UE_COLUMNS)
    schema = pa.schema([_field(name, typ, UE_COLUMNS) for name, (typ, _) in cols.items()])
    arrays = [v if isinstance(v, pa.Array) else pa.array(v, type=t) for t, v in cols.values()]
    return pa.Table.from_arrays(arrays, schema=schema).replace_schema_metadata(
        {"mobileai.table": "ues", "mobileai.kpis": "docs/kpis.md"}
    )


def grouped_percentiles(
    values: np.ndarray, groups: np.ndarray, n_groups: int, pcts: tuple[float, ...]
) -> dict[float, np.ndarray]:
    """Per-group percentiles (numpy's linear interpolation), vectorised; NaN for empty groups."""
    order = np.lexsort((values, groups))
    v = values[order].astype(np.float64)
    counts = np.bincount(groups, minlength=n_groups)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    out: dict[float, np.ndarray] = {}
    has = counts > 0
    for p in pcts:
        pos = p / 100.0 * np.maximum(counts - 1, 0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.ceil(pos).astype(np.int64)
        frac = pos - lo
        res = np.full(n_groups, np.nan)
        if v.size:
            i_lo = np.minimum(starts + lo, v.size - 1)
            i_hi = np.minimum(starts + hi, v.size - 1)
            vals = v[i_lo] + (v[i_hi] - v[i_lo]) * frac
            res[has] = vals[has]
        out[p] = res
    return out


def _grouped_mean(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    counts = np.bincount(groups, minlength=n_groups)
    sums = np.bincount(groups, weights=values.astype(np.float64), minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _histogram(values: np.ndarray, groups: np.ndarray, n_groups: int, edges: tuple) -> np.ndarray:
    """[n_groups, len(edges) + 1] counts."""
    nb = len(edges) + 1
    b = np.digitize(values, np.asarray(edges, dtype=np.float64))
    flat = np.bincount(groups.astype(np.int64) * nb + b, minlength=n_groups * nb)
    return flat.reshape(n_groups, nb).astype(np.int32)


def _nullable(values: np.ndarray, typ: pa.DataType) -> pa.Array:
    return pa.array(values, type=typ, mask=np.isnan(values))


def cell_table(ue: pa.Table, cells: Cells, scs_khz: int) -> pa.Table:
    """One row per cell: configuration plus KPIs of the UEs it serves (see :data:`CELL_COLUMNS`)."""
    c = cells.n
    g = ue.column("serving_cell_index").to_numpy().astype(np.int64)
    rsrp = ue.column("ss_rsrp_dbm").to_numpy().astype(np.float64)
    sinr = ue.column("ss_sinr_db").to_numpy().astype(np.float64)
    cqi = ue.column("cqi").to_numpy().astype(np.int64)
    eff = ue.column("spectral_efficiency").to_numpy().astype(np.float64)
    served = np.bincount(g, minlength=c)
    p_rsrp = grouped_percentiles(rsrp, g, c, PERCENTILES)
    p_sinr = grouped_percentiles(sinr, g, c, PERCENTILES)
    covered = _grouped_mean((sinr >= COVERAGE_SINR_DB).astype(np.float64), g, c)
    cqi_hist = np.bincount(g * 16 + cqi, minlength=c * 16).reshape(c, 16).astype(np.int32)
    bore = _np(cells.boresight_deg).astype(np.float64)
    bw = _np(cells.bandwidth_mhz).astype(np.float64)
    f64, f32 = pa.float64(), pa.float32()
    lst = pa.list_(pa.int32())
    cols: dict[str, tuple[pa.DataType, object, dict[str, str]]] = {
        "cell_id": (pa.string(), list(cells.ids), {}),
        "cell_index": (pa.int32(), np.arange(c, dtype=np.int32), {}),
        "site_index": (pa.int32(), _np(cells.site).astype(np.int32), {}),
        "x_m": (f64, _np(cells.x).astype(np.float64), {}),
        "y_m": (f64, _np(cells.y).astype(np.float64), {}),
        "height_m": (f32, _np(cells.height), {}),
        "azimuth_deg": (f32, np.mod(90.0 - bore, 360.0), {}),
        "downtilt_deg": (f32, _np(cells.downtilt_deg), {}),
        "tx_power_dbm": (f32, _np(cells.tx_power_dbm), {}),
        "carrier_ghz": (f32, _np(cells.carrier_ghz), {}),
        "bandwidth_mhz": (f32, bw, {}),
        "n_rb": (pa.int32(), np.array([prb_count(b, scs_khz) for b in bw], dtype=np.int32), {}),
        "RRC.ConnMean": (pa.int32(), served.astype(np.int32), {}),
        "CARR.WBCQIDist.Bin": (lst, _list_column(cqi_hist.reshape(-1), 16), {}),
        "L1M.SS-RSRP.Bin": (
            lst,
            _list_column(_histogram(rsrp, g, c, RSRP_BIN_EDGES_DBM).reshape(-1), len(RSRP_BIN_EDGES_DBM) + 1),
            {"bin_edges": json.dumps(list(RSRP_BIN_EDGES_DBM))},
        ),
        "MR.NRScSSSINR.Bin": (
            lst,
            _list_column(_histogram(sinr, g, c, SINR_BIN_EDGES_DB).reshape(-1), len(SINR_BIN_EDGES_DB) + 1),
            {"bin_edges": json.dumps(list(SINR_BIN_EDGES_DB))},
        ),
        "mobileai.SsRsrp.Mean": (f32, _grouped_mean(rsrp, g, c), {}),
        "mobileai.SsRsrp.P5": (f32, p_rsrp[5], {}),
        "mobileai.SsRsrp.P50": (f32, p_rsrp[50], {}),
        "mobileai.SsRsrp.P95": (f32, p_rsrp[95], {}),
        "mobileai.SinrDl.Mean": (f32, _grouped_mean(sinr, g, c), {}),
        "mobileai.SinrDl.P5": (f32, p_sinr[5], {}),
        "mobileai.SinrDl.P50": (f32, p_sinr[50], {}),
        "mobileai.SinrDl.P95": (f32, p_sinr[95], {}),
        "mobileai.CoverageRatio": (f32, covered, {}),
        "mobileai.CqiMean": (f32, _grouped_mean(cqi.astype(np.float64), g, c), {}),
        "mobileai.SpectralEffMean": (f32, _grouped_mean(eff, g, c), {}),
    }
    assert list(cols) == list(CELL_COLUMNS)
    schema = pa.schema([_field(n, t, CELL_COLUMNS, **m) for n, (t, _, m) in cols.items()])
    arrays = []
    for typ, v, _ in cols.values():
        if isinstance(v, pa.Array):
            arrays.append(v)
        elif isinstance(v, np.ndarray) and v.dtype.kind == "f":
            arrays.append(_nullable(v, typ))
        else:
            arrays.append(pa.array(v, type=typ))
    return pa.Table.from_arrays(arrays, schema=schema).replace_schema_metadata(
        {"mobileai.table": "cells", "mobileai.kpis": "docs/kpis.md"}
    )


def _pcts(values: np.ndarray, digits: int = 2) -> dict[str, float]:
    if values.size == 0:
        return {f"p{p}": math.nan for p in PERCENTILES}
    q = np.percentile(values.astype(np.float64), PERCENTILES)
    return {f"p{p}": round(float(v), digits) for p, v in zip(PERCENTILES, q, strict=True)}


def summarize(ue: pa.Table, cell: pa.Table) -> dict:
    """Drop-level KPIs: percentiles over all UEs, UEs per cell, coverage."""
    sinr = ue.column("ss_sinr_db").to_numpy()
    served = cell.column("RRC.ConnMean").to_numpy()
    cqi = ue.column("cqi").to_numpy()
    return {
        "ues": ue.num_rows,
        "cells": cell.num_rows,
        "sinr_db": _pcts(sinr),
        "rsrp_dbm": _pcts(ue.column("ss_rsrp_dbm").to_numpy()),
        "geometry_db": _pcts(ue.column("geometry_db").to_numpy()),
        "coupling_gain_db": _pcts(ue.column("coupling_gain_db").to_numpy()),
        "coverage_share": round(float(np.mean(sinr >= COVERAGE_SINR_DB)), 4) if sinr.size else 0.0,
        "coverage_sinr_threshold_db": COVERAGE_SINR_DB,
        "ues_per_cell": {
            "min": int(served.min()),
            "mean": round(float(served.mean()), 2),
            "max": int(served.max()),
            "cells_without_ues": int((served == 0).sum()),
        },
        "cqi_mean": round(float(cqi.mean()), 2) if cqi.size else 0.0,
        "spectral_efficiency_mean": round(float(ue.column("spectral_efficiency").to_numpy().mean()), 3)
        if cqi.size
        else 0.0,
        "indoor_share": round(float(ue.column("indoor").to_numpy(zero_copy_only=False).mean()), 4)
        if cqi.size
        else 0.0,
    }


# ---------------------------------------------------------------------------------- probe map
@dataclass(frozen=True)
class ProbeMap:
    """Outdoor probe grid at 1.5 m: best server and SS-SINR per pixel (NaN outside the area).

    ``best_server`` and ``sinr_db`` are [ny, nx]; pixel (i, j) is centred at (x[j], y[i]).
    """

    x: np.ndarray
    y: np.ndarray
    best_server: np.ndarray  # int, -1 outside the area
    sinr_db: np.ndarray
    rsrp_dbm: np.ndarray


def probe_map(model: RadioModel, cells: Cells, pixels: int = 120, chunk: int = 8192) -> ProbeMap:
    """Evaluate the radio on a regular grid of outdoor, ground-level (1.5 m) probe points.

    The same shadowing and LOS fields as the UEs see (they are spatially consistent), so the map
    is the outdoor coverage of this drop's network. Hex layouts: points beyond the cluster of
    site hexagons are left out; file layouts: the whole drop box.
    """
    x0, x1, y0, y1 = cells.drop_box
    n = int(pixels)
    xs = np.linspace(x0, x1, n)
    ys = np.linspace(y0, y1, n)
    gx, gy = np.meshgrid(xs, ys)
    px, py = gx.reshape(-1), gy.reshape(-1)
    sx, sy = _np(cells.site_x), _np(cells.site_y)
    if cells.drop_kind == "hex":
        d = np.hypot(px[:, None] - sx[None, :], py[:, None] - sy[None, :]).min(1)
        inside = d <= cells.isd_m / math.sqrt(3.0)
    else:
        inside = np.ones(px.shape, dtype=bool)
    idx = np.flatnonzero(inside)
    m = idx.size
    f64 = torch.float64
    probes = UEs(
        x=torch.as_tensor(px[idx], dtype=f64),
        y=torch.as_tensor(py[idx], dtype=f64),
        height=torch.full((m,), 1.5, dtype=f64),
        indoor=torch.zeros(m, dtype=torch.bool),
        d2d_in=torch.zeros(m, dtype=f64),
        o2i_high=torch.zeros(m, dtype=torch.bool),
        o2i_dev=torch.zeros(m, dtype=f64),
        u_he=torch.full((m,), 0.5, dtype=f64),
    )
    best = np.full(px.shape, -1, dtype=np.int64)
    sinr = np.full(px.shape, np.nan, dtype=np.float32)
    rsrp = np.full(px.shape, np.nan, dtype=np.float32)
    for a in range(0, m, chunk):
        part = slice_ues(probes, a, min(a + chunk, m))
        r = model.evaluate(part, chunk=chunk, candidates=1)
        sel = idx[a : a + part.n]
        best[sel] = _np(r.serving)
        sinr[sel] = _np(r.sinr_db)
        rsrp[sel] = _np(r.rsrp_dbm)
    shape = (n, n)
    return ProbeMap(xs, ys, best.reshape(shape), sinr.reshape(shape), rsrp.reshape(shape))


def slice_ues(ues: UEs, a: int, b: int) -> UEs:
    """UEs a..b-1 (views, no copy)."""
    return UEs(**{f.name: getattr(ues, f.name)[a:b] for f in fields(ues)})
