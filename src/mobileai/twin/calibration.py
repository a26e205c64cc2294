"""The 3GPP large-scale calibration (TR 38.901 V18.0.0 clause 7.8.1, Table 7.8-1).

Configuration: 19 sites x 3 sectors with wrap-around, 10 UEs per sector, 80% indoor (50% of them
behind high-loss walls), indoor heights by floor, minimum 2D distance 35 m (UMa) / 10 m (UMi) /
35 m (RMa), BS heights 25 / 10 / 35 m, ISD 500 / 200 / 1732 m, a 10-element vertical column
(0.5 λ) with 12° electrical down-tilt and 8 dBi elements, omni 0 dBi UEs, serving cell by
largest coupling gain (handover margin 0 dB), no fast fading.

Metrics: coupling gain of the serving link and geometry = serving power over the sum of the
other cells' powers (interference-limited, as in the RAN1 calibration).

Reference curves: the mean of the companies' calibration CDFs in R1-165974 ("Summary of
calibration results", RAN1 #86, Aug 2016), percentiles 5, 10, ..., 95, for UMi-Street Canyon and
UMa at 6 and 30 GHz. RMa has no RAN1 large-scale reference; it runs with Table 7.2-3 defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from mobileai.twin.config import Scenario
from mobileai.twin.layout import build_layout
from mobileai.twin.radio import RadioModel
from mobileai.twin.ues import drop_ues

PERCENTILES = tuple(range(5, 100, 5))

# fmt: off
#: R1-165974 mean calibration CDFs at PERCENTILES: (scenario, GHz) -> metric -> 19 values, dB.
REFERENCE: dict[tuple[str, float], dict[str, tuple[float, ...]]] = {
    ("umi", 6.0): {
        "coupling_gain_db": (-142.3, -136.4, -132.4, -128.9, -125.8, -122.9, -120.3, -117.6, -115.0, -112.2,
                             -109.5, -106.4, -103.2, -99.9, -96.2, -92.2, -87.6, -82.0, -74.8),
        "geometry_sinr_db": (-1.7, -0.5, 0.4, 1.2, 2.1, 3.0, 4.0, 5.0, 6.1, 7.3, 8.6, 9.9, 11.4, 13.0, 14.9,
                             17.0, 19.4, 22.1, 24.9),
    },
    ("umi", 30.0): {
        "coupling_gain_db": (-164.6, -158.5, -154.1, -150.3, -147.1, -144.0, -141.1, -138.2, -135.3, -132.4,
                             -129.4, -126.2, -122.5, -118.3, -113.7, -108.9, -103.5, -97.1, -89.3),
        "geometry_sinr_db": (-1.6, -0.4, 0.4, 1.3, 2.2, 3.1, 4.1, 5.2, 6.3, 7.5, 8.8, 10.2, 11.7, 13.3, 15.1,
                             17.2, 19.6, 22.2, 24.9),
    },
    ("uma", 6.0): {
        "coupling_gain_db": (-150.4, -144.7, -140.6, -137.0, -133.9, -131.1, -128.4, -125.8, -123.1, -120.3,
                             -117.5, -114.7, -111.8, -109.1, -106.1, -102.8, -98.8, -93.7, -86.0),
        "geometry_sinr_db": (-1.0, 0.1, 1.1, 2.0, 2.9, 3.9, 5.0, 6.0, 7.2, 8.6, 9.9, 11.3, 12.9, 14.7, 16.5,
                             18.6, 20.9, 23.4, 25.6),
    },
    ("uma", 30.0): {
        "coupling_gain_db": (-172.0, -166.3, -161.8, -157.9, -154.5, -151.4, -148.5, -145.7, -142.9, -140.1,
                             -137.0, -133.6, -130.0, -126.6, -123.1, -119.5, -115.4, -110.1, -102.0),
        "geometry_sinr_db": (-1.0, 0.2, 1.1, 2.0, 3.0, 4.0, 5.0, 6.1, 7.3, 8.6, 9.9, 11.3, 13.0, 14.7, 16.5,
                             18.6, 20.9, 23.4, 25.6),
    },
}
# fmt: on

_GEOMETRY = {
    "uma": {"isd_m": 500.0, "bs_height_m": 25.0, "min_distance_m": 35.0, "indoor_ratio": 0.8},
    "umi": {"isd_m": 200.0, "bs_height_m": 10.0, "min_distance_m": 10.0, "indoor_ratio": 0.8},
    "rma": {"isd_m": 1732.0, "bs_height_m": 35.0, "min_distance_m": 35.0, "indoor_ratio": 0.5},
}


def calibration_scenario(scenario: str, carrier_ghz: float, seed: int = 0) -> Scenario:
    """The Table 7.8-1 configuration as a :class:`Scenario` (validated like any user file)."""
    geo = _GEOMETRY[scenario]
    fr1 = carrier_ghz <= 7.125
    return Scenario.model_validate(
        {
            "name": f"calibration-{scenario}-{carrier_ghz:g}ghz",
            "seed": seed,
            "radio": {
                "scenario": scenario,
                "carrier_ghz": carrier_ghz,
                "bandwidth_mhz": 20.0 if fr1 else 100.0,
                "subcarrier_spacing_khz": 15 if fr1 else 120,
                "o2i_model": "low" if scenario == "rma" else "mixed",
                "o2i_high_loss_fraction": 0.5,
                "los_transition_m": 0.0,  # Table 7.8-1 drops use the hard LOS state of 7.4.2
            },
            "layout": {
                "kind": "hex",
                "sites": 19,
                "isd_m": geo["isd_m"],
                "sectors": 3,
                "bs_height_m": geo["bs_height_m"],
                "wrap_around": True,
            },
            "bs": {
                "tx_power_dbm": 44.0 if fr1 else 35.0,
                "antenna": {
                    "pattern": "3gpp",
                    "max_gain_dbi": 8.0,
                    "elements_vertical": 10,
                    "vertical_spacing_wavelengths": 0.5,
                    "electrical_downtilt_deg": 12.0,
                },
            },
            "ues": {
                "per_sector": 10,
                "indoor_ratio": geo["indoor_ratio"],
                "min_distance_m": geo["min_distance_m"],
                "indoor_floors": "3gpp",
            },
        }
    )


@dataclass(frozen=True)
class CalibrationResult:
    scenario: str
    carrier_ghz: float
    drops: int
    coupling_gain_db: np.ndarray
    geometry_sinr_db: np.ndarray

    def percentiles(self, metric: str, pcts: tuple[int, ...] = (5, 50, 95)) -> dict[str, float]:
        values = getattr(self, metric)
        return {f"p{p}": round(float(np.percentile(values, p)), 2) for p in pcts}

    def reference(self) -> dict[str, tuple[float, ...]] | None:
        return REFERENCE.get((self.scenario, float(self.carrier_ghz)))

    def summary(self) -> dict:
        """The JSON the ``calibrate`` command prints, with the reference and the deviation."""
        out: dict = {
            "scenario": self.scenario,
            "carrier_ghz": self.carrier_ghz,
            "drops": self.drops,
            "ues": int(self.coupling_gain_db.size),
            "coupling_gain_db": self.percentiles("coupling_gain_db"),
            "geometry_sinr_db": self.percentiles("geometry_sinr_db"),
        }
        ref = self.reference()
        if ref is not None:
            idx = {5: 0, 50: 9, 95: 18}
            out["reference"] = {
                m: {f"p{p}": ref[m][i] for p, i in idx.items()}
                for m in ("coupling_gain_db", "geometry_sinr_db")
            }
            out["max_abs_error_db"] = round(
                max(abs(out[m][f"p{p}"] - ref[m][i]) for m in ref for p, i in idx.items()), 2
            )
        return out


def run_calibration(
    scenario: str,
    carrier_ghz: float,
    drops: int,
    seed: int = 0,
    device: str = "cpu",
    on_drop: Callable[[int], None] | None = None,
) -> CalibrationResult:
    """Run ``drops`` independent drops (new UEs and new shadowing each) and pool the UEs."""
    cg: list[torch.Tensor] = []
    geo: list[torch.Tensor] = []
    for d in range(drops):
        sc = calibration_scenario(scenario, carrier_ghz, seed=seed + d)
        cells = build_layout(sc)
        ues = drop_ues(sc, cells, torch.Generator().manual_seed(sc.seed))
        res = RadioModel(sc, cells, device=device).evaluate(ues)
        cg.append(res.coupling_gain_db.cpu())
        geo.append(res.geometry_db.cpu())
        if on_drop is not None:
            on_drop(d)
    return CalibrationResult(
        scenario=scenario,
        carrier_ghz=carrier_ghz,
        drops=drops,
        coupling_gain_db=torch.cat(cg).double().numpy(),
        geometry_sinr_db=torch.cat(geo).double().numpy(),
    )
