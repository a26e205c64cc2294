"""NR numerology facts the link budget needs.

- Maximum transmission bandwidth N_RB per channel bandwidth and subcarrier spacing:
  TS 38.101-1 V18 Table 5.3.2-1 (FR1) and TS 38.101-2 V18 Table 5.3.2-1 (FR2).
- Thermal noise density kT at T0 = 290 K.
"""

from __future__ import annotations

import math

#: (subcarrier spacing kHz) -> {channel bandwidth MHz: N_RB}. FR1 and FR2 merged; FR2 is 60/120 kHz
#: at 50 MHz and above.
_N_RB: dict[int, dict[float, int]] = {
    15: {5: 25, 10: 52, 15: 79, 20: 106, 25: 133, 30: 160, 35: 188, 40: 216, 45: 242, 50: 270},
    30: {
        5: 11,
        10: 24,
        15: 38,
        20: 51,
        25: 65,
        30: 78,
        35: 92,
        40: 106,
        45: 119,
        50: 133,
        60: 162,
        70: 189,
        80: 217,
        90: 245,
        100: 273,
    },
    60: {
        10: 11,
        15: 18,
        20: 24,
        25: 31,
        30: 38,
        35: 44,
        40: 51,
        45: 58,
        50: 65,
        60: 79,
        70: 93,
        80: 107,
        90: 121,
        100: 135,
        200: 264,
    },
    120: {50: 32, 100: 66, 200: 132, 400: 264},
}

#: Boltzmann constant times T0 = 290 K, in dBm/Hz (-173.98).
THERMAL_NOISE_DBM_PER_HZ = 10.0 * math.log10(1.380649e-23 * 290.0 * 1e3)


def prb_count(bandwidth_mhz: float, scs_khz: int) -> int:
    """Number of PRBs (N_RB) for a channel bandwidth and subcarrier spacing.

    Raises ``ValueError`` listing the allowed bandwidths when the pair is not in the tables.
    """
    table = _N_RB.get(int(scs_khz))
    if table is None:
        raise ValueError(f"subcarrier spacing {scs_khz} kHz not supported; allowed: {sorted(_N_RB)}")
    for bw, n in table.items():
        if abs(bw - bandwidth_mhz) < 1e-9:
            return n
    allowed = ", ".join(f"{b:g}" for b in table)
    raise ValueError(
        f"bandwidth_mhz {bandwidth_mhz:g} is not an NR channel bandwidth for {scs_khz} kHz SCS "
        f"(TS 38.101 Table 5.3.2-1); allowed: {allowed}"
    )


def resource_elements(bandwidth_mhz: float, scs_khz: int) -> int:
    """Subcarriers (resource elements per OFDM symbol) in the transmission bandwidth: 12 N_RB."""
    return 12 * prb_count(bandwidth_mhz, scs_khz)


def noise_power_dbm(bandwidth_hz: float, noise_figure_db: float) -> float:
    """Thermal noise plus receiver noise figure over a bandwidth, dBm."""
    return THERMAL_NOISE_DBM_PER_HZ + 10.0 * math.log10(bandwidth_hz) + noise_figure_db
