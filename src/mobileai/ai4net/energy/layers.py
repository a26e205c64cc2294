"""Coverage and capacity layers: which carrier can be switched off over which.

3GPP TR 38.864 clause 5 (network energy saving techniques, cell/carrier switch-off): a
*capacity* carrier co-sited with a *coverage* carrier of the same sector can be switched off
while the coverage carrier carries its users; the coverage carrier itself stays on (it keeps the
area covered). TR 38.913 6.1.2 describes dense urban as such a multi-layer deployment.

:class:`CarrierLayers` derives the layers from the cells table (``cell_id``, ``x_m``, ``y_m``,
``azimuth_deg``, ``carrier_ghz``, ``n_rb``; :func:`mobileai.twin.timeline.cell_config_table`):
two cells are co-sector when they stand within 1 m and point within 1 degree of each other; the
co-sector cell on the lowest carrier is the sector's coverage cell (``host``), every other
co-sector cell is a capacity cell hosted by it. A cell alone in its sector (a single-layer
network) has no host, and the policies treat it as before (cell sleep over neighbours).

:func:`dense_urban_two_layer_rows` writes the packaged ``dense-urban-2layer`` cells CSV: the
``dense-urban`` 19 x 3 sectors each with a 3.5 GHz n78 capacity cell and a 2.1 GHz n1 coverage
cell, with per-RU-type power parameters from the fitted ITU model (:mod:`.power_fit`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from mobileai.ai4net.energy.power_fit import PowerFit
from mobileai.errors import UserError
from mobileai.twin.layout import hex_site_positions

LAYER_COLUMNS = ("cell_id", "x_m", "y_m", "azimuth_deg", "carrier_ghz", "n_rb")
#: optional cells-table columns of the per-cell power model (mobileai.twin.layout.POWER_COLUMNS)
POWER_MODEL_COLUMNS = ("p0_w", "delta_p", "max_tx_w")


@dataclass(frozen=True)
class CarrierLayers:
    """Per cell (in ``cell_ids`` order): its coverage host (index, -1: none), its PRB count and,
    when known, its power model (EARTH form P = P_0 + Δp·P_max·load, Auer et al. 2011, the
    twin's :class:`~mobileai.twin.energy.EnergyModel`): ``p0_w`` the static input power of an
    awake cell (W; a switched-off cell draws none) and ``w_per_pct`` the input power per % of
    DL PRB load (Δp·P_max/100, W)."""

    cell_ids: tuple[str, ...]
    host: np.ndarray  # int [C]; -1: a coverage cell or a single-layer cell
    n_rb: np.ndarray  # float [C]
    p0_w: np.ndarray | None = None  # float [C]
    w_per_pct: np.ndarray | None = None  # float [C]

    @property
    def priced(self) -> bool:
        """Whether the per-cell power model is known (the optimiser then prices each switch-off)."""
        return self.p0_w is not None and self.w_per_pct is not None

    def with_power(self, p0_w: np.ndarray, w_per_pct: np.ndarray) -> CarrierLayers:
        """These layers with the per-cell power model (arrays in ``cell_ids`` order)."""
        p0, slope = np.asarray(p0_w, dtype=float), np.asarray(w_per_pct, dtype=float)
        if p0.shape != self.host.shape or slope.shape != self.host.shape:
            raise UserError(f"cell power: need {len(self.cell_ids)} values per column, got {p0.shape}")
        if not (np.isfinite(p0).all() and np.isfinite(slope).all()) or (p0 < 0).any() or (slope < 0).any():
            raise UserError("cell power: p0_w and the load slope must be finite and >= 0")
        return replace(self, p0_w=p0, w_per_pct=slope)

    @property
    def capacity(self) -> np.ndarray:
        """Indices of the capacity cells (those with a co-sector coverage host)."""
        return np.flatnonzero(self.host >= 0)

    @property
    def multi_layer(self) -> bool:
        return bool((self.host >= 0).any())

    def to_host_prb(self, i: int, prb_pct: float) -> float:
        """``prb_pct`` % of cell ``i``'s PRBs, as % of its host's PRBs (same PRB demand)."""
        h = int(self.host[i])
        return prb_pct * self.n_rb[i] / self.n_rb[h]

    @classmethod
    def from_cells(cls, cells: pd.DataFrame, cell_ids: tuple[str, ...] | None = None) -> CarrierLayers:
        """Layers of a cells table, ordered as ``cell_ids`` (default: the table's order)."""
        missing = [c for c in LAYER_COLUMNS if c not in cells.columns]
        if missing:
            raise UserError(
                f"cells table: missing column(s) {missing}; carrier layers need {list(LAYER_COLUMNS)}"
            )
        t = cells.drop_duplicates("cell_id").set_index("cell_id")
        ids = tuple(cell_ids) if cell_ids is not None else tuple(str(c) for c in t.index)
        unknown = [c for c in ids if c not in t.index]
        if unknown:
            raise UserError(f"cells table: cell {unknown[0]!r} is missing")
        t = t.loc[list(ids)]
        xy = t[["x_m", "y_m"]].to_numpy(float)
        az = t["azimuth_deg"].to_numpy(float)
        f = t["carrier_ghz"].to_numpy(float)
        n_rb = t["n_rb"].to_numpy(float)
        near = np.linalg.norm(xy[:, None, :] - xy[None, :, :], axis=-1) < 1.0
        daz = np.abs((az[:, None] - az[None, :] + 180.0) % 360.0 - 180.0)
        same = near & (daz < 1.0)
        host = np.full(len(ids), -1, dtype=int)
        for i in range(len(ids)):
            group = np.flatnonzero(same[i])
            low = group[np.argmin(f[group])]
            if f[low] < f[i] - 1e-6:
                host[i] = int(low)
        out = cls(ids, host, n_rb)
        if all(c in t.columns for c in POWER_MODEL_COLUMNS):
            pw = t[list(POWER_MODEL_COLUMNS)].apply(pd.to_numeric, errors="coerce").to_numpy(float)
            if np.isfinite(pw).all():  # a partial power table prices nothing (no guessing)
                out = out.with_power(pw[:, 0], pw[:, 1] * pw[:, 2] / 100.0)
        return out


# ------------------------------------------------------------------ the packaged 2-layer scenario
#: radio-unit types of the ITU data (``BSinfo.csv``) standing for the two layers: Type12 is the
#: data's 64-antenna unit (a 64T64R massive-MIMO AAU), Type1 its most common unit (2-4 antennas,
#: a low-band RRU)
CAPACITY_RU = "Type12"
COVERAGE_RU = "Type1"
#: reference full-load input power of the coverage RU type at its reference radiated power:
#: EARTH macro, 2 TRX, P0 = 2 x 130 W, Δp = 4.7, 40 W radiated (Auer et al., IEEE Wireless
#: Commun. 2011), the packaged dense-urban cell
COVERAGE_REF_FULL_W = 260.0 + 4.7 * 40.0
COVERAGE_REF_TX_W = 40.0
#: the coverage cell radiates 43 dBm (20 W over 20 MHz): the twin associates by RSRP alone (no
#: TS 38.304 5.2.4 reselection priorities or inter-frequency offsets), so the n1 cell radiates
#: just below the level at which deep-indoor UEs would prefer it over the n78 cell; the n78
#: carrier then serves every UE it covers, as operators configure with n78 as the highest
#: priority, and n1 takes the UEs of a sleeping n78 cell
COVERAGE_TX_DBM = 43.0
#: capacity cell radiated power: 200 W (53 dBm), the usual rating of a 64T64R n78 AAU
CAPACITY_MAX_TX_W = 200.0
#: the capacity cell's ``tx_power_dbm`` in the twin: 53 dBm conducted plus 7 dB of horizontal
#: array gain that the twin's one-column TR 38.901 antenna pattern does not model (8 columns of
#: a 64T64R panel give up to 10·log10(8) = 9 dB), capped at the CSV's 60 dBm
CAPACITY_TX_DBM = 60.0


def layer_power(
    fit: PowerFit, ru_type: str, ref_full_w: float, ref_tx_w: float, max_tx_w: float
) -> dict[str, float]:
    """Power-model columns of one layer. The fitted form per cell is P = a + b·P_tx·load
    (:mod:`.power_fit`): the static share f0 = a/(a + b·P_tx) of ``ru_type`` splits
    ``ref_full_w`` (full load at ``ref_tx_w`` radiated) into P_0 and Δp·P_tx, and the cell
    radiating ``max_tx_w`` draws P_0 + Δp·max_tx_w at full load. An idle active cell draws P_0
    (``micro_sleep_rel``: the hourly data has no separate DTX state); the deepest and shallowest
    fitted ES modes (relative to P_0) are deep and light sleep (as
    :func:`.power_fit.energy_override`). Relative powers are % of the cell's full-load power."""
    _, f0 = fit.static_share(ru_type)
    fitted = [r for m, r in fit.es_rel.items() if fit.es_hours.get(m, 0.0) >= 50.0]
    deep, light = (min(fitted), max(fitted)) if fitted else (1.0, 1.0)
    p0 = f0 * ref_full_w
    delta_p = (1.0 - f0) * ref_full_w / ref_tx_w
    full = p0 + delta_p * max_tx_w
    return {
        "p0_w": round(p0, 3),
        "delta_p": round(delta_p, 4),
        "max_tx_w": max_tx_w,
        "micro_sleep_rel": round(100.0 * p0 / full, 3),
        "light_sleep_rel": round(100.0 * p0 / full * light, 3),
        "deep_sleep_rel": round(100.0 * p0 / full * deep, 3),
    }


def full_load_ratio(fit: PowerFit, a: str, b: str) -> float:
    """Full-load input power of RU type ``a`` over type ``b`` in the fitted data (same units)."""

    def full(t: str) -> float:
        return fit.ru_static[t] + fit.ru_slope[t] * fit.ru_tx_lin[t]

    for t in (a, b):
        if t not in fit.ru_static:
            raise UserError(f"RU type {t!r} is not in the fit; fitted: {', '.join(sorted(fit.ru_static))}")
    return full(a) / full(b)


def dense_urban_two_layer_rows(fit: PowerFit, isd_m: float = 300.0) -> list[dict[str, object]]:
    """Rows of the ``dense-urban-2layer`` cells CSV (19 sites x 3 sectors x 2 carriers)."""
    cap_full = COVERAGE_REF_FULL_W * full_load_ratio(fit, CAPACITY_RU, COVERAGE_RU)
    cap = layer_power(fit, CAPACITY_RU, cap_full, CAPACITY_MAX_TX_W, CAPACITY_MAX_TX_W)
    cov_tx_w = round(10 ** ((COVERAGE_TX_DBM - 30.0) / 10.0), 3)
    cov = layer_power(fit, COVERAGE_RU, COVERAGE_REF_FULL_W, COVERAGE_REF_TX_W, cov_tx_w)
    rows: list[dict[str, object]] = []
    for s, (x, y) in enumerate(hex_site_positions(19, isd_m).tolist()):
        for k, bore in enumerate((30.0, 150.0, 270.0)):
            az = (90.0 - bore) % 360.0
            base = {"site_id": f"S{s:03d}", "x_m": round(x, 3), "y_m": round(y, 3), "azimuth_deg": az}
            rows.append(
                {"cell_id": f"S{s:03d}-{k + 1}", **base, "tx_power_dbm": CAPACITY_TX_DBM,
                 "carrier_ghz": 3.5, "bandwidth_mhz": 100, **cap}
            )  # fmt: skip
            rows.append(
                {"cell_id": f"S{s:03d}-{k + 1}L", **base, "tx_power_dbm": COVERAGE_TX_DBM,
                 "carrier_ghz": 2.1, "bandwidth_mhz": 20, **cov}
            )  # fmt: skip
    return rows


def write_cells_csv(rows: list[dict[str, object]], path: Path) -> None:
    """Write cells rows as CSV (atomically: a temporary file renamed)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)
