"""Scenario files: the typed, validated description of a network to simulate.

Every option is documented in ``docs/scenarios.md``. A scenario is YAML; it is parsed into
:class:`Scenario` with pydantic, unknown keys are rejected, and every value is range-checked so a
wrong file fails with a one-line message naming the field, the value and what is allowed.

Defaults follow TR 38.901 V18.0.0 Table 7.2-1 (UMa/UMi) and Table 7.2-3 (RMa) and the
large-scale calibration assumptions of Table 7.8-1.
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mobileai.errors import UserError, format_validation_error
from mobileai.twin.nr import prb_count

#: Carrier-frequency validity of the TR 38.901 path-loss models (Table 7.4.1-1, notes), GHz.
FREQUENCY_RANGE_GHZ: dict[str, tuple[float, float]] = {
    "uma": (0.5, 100.0),
    "umi": (0.5, 100.0),
    "rma": (0.5, 30.0),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RadioConfig(_Strict):
    """Propagation and receiver settings (TR 38.901 clause 7.4; TS 38.101 noise figure)."""

    scenario: Literal["uma", "umi", "rma"] = Field(
        "uma",
        description="TR 38.901 propagation scenario: urban macro, urban micro street canyon, rural macro.",
    )
    carrier_ghz: float = Field(3.5, gt=0, description="Carrier frequency in GHz.")
    bandwidth_mhz: float = Field(100.0, gt=0, description="Channel bandwidth in MHz.")
    subcarrier_spacing_khz: Literal[15, 30, 60, 120] = Field(
        30, description="NR numerology subcarrier spacing, kHz (sets the PRB count, TS 38.101)."
    )
    ue_noise_figure_db: float = Field(9.0, ge=0, le=20, description="UE receiver noise figure, dB.")
    o2i_model: Literal["low", "high", "mixed"] = Field(
        "mixed",
        description="O2I building penetration (TR 38.901 Table 7.4.3-2): low-loss, high-loss, or "
        "a per-UE mix (see o2i_high_loss_fraction).",
    )
    o2i_high_loss_fraction: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of indoor UEs behind high-loss (IRR glass) walls when o2i_model is mixed.",
    )
    shadow_fading: bool = Field(True, description="Draw spatially correlated log-normal shadow fading.")
    los_transition_m: float = Field(
        10.0,
        ge=0,
        le=100,
        description="Soft LOS state (TR 38.901 7.6.3.3): width, in metres walked across a LOS/NLOS "
        "boundary, over which a link's loss moves between its LOS and NLOS values (0: hard switch).",
    )
    rma_building_height_m: float = Field(
        5.0, ge=5, le=50, description="RMa average building height h (Table 7.4.1-1, valid 5..50 m)."
    )
    rma_street_width_m: float = Field(
        20.0, ge=5, le=50, description="RMa average street width W (Table 7.4.1-1, valid 5..50 m)."
    )

    @model_validator(mode="after")
    def _check_ranges(self) -> RadioConfig:
        lo, hi = FREQUENCY_RANGE_GHZ[self.scenario]
        if not lo <= self.carrier_ghz <= hi:
            raise ValueError(
                f"carrier_ghz {self.carrier_ghz} is outside the {self.scenario.upper()} model's "
                f"validity range {lo}..{hi} GHz (TR 38.901 Table 7.4.1-1)"
            )
        prb_count(self.bandwidth_mhz, self.subcarrier_spacing_khz)  # raises with allowed values
        return self


class AntennaConfig(_Strict):
    """BS antenna: the TR 38.901 Table 7.3-1 element, optionally a vertical array with
    electrical down-tilt (clause 7.3, array factor of M co-polarised elements)."""

    pattern: Literal["3gpp", "omni"] = Field(
        "3gpp", description="Element pattern: TR 38.901 Table 7.3-1 or isotropic."
    )
    max_gain_dbi: float = Field(
        8.0, ge=-10, le=30, description="Element maximum directional gain G_E,max, dBi."
    )
    beamwidth_h_deg: float = Field(65.0, gt=0, le=360, description="Horizontal 3 dB beamwidth, degrees.")
    beamwidth_v_deg: float = Field(65.0, gt=0, le=180, description="Vertical 3 dB beamwidth, degrees.")
    front_to_back_db: float = Field(30.0, ge=0, le=60, description="Maximum attenuation A_max, dB.")
    side_lobe_db: float = Field(30.0, ge=0, le=60, description="Vertical side-lobe attenuation SLA_V, dB.")
    elements_vertical: int = Field(10, ge=1, le=64, description="Elements in the vertical column (M).")
    vertical_spacing_wavelengths: float = Field(
        0.5, gt=0, le=2, description="Vertical element spacing d_V in wavelengths."
    )
    electrical_downtilt_deg: float = Field(
        12.0,
        ge=-10,
        le=45,
        description="Electrical down-tilt below the horizon, degrees (12 means zenith 102°).",
    )


class BSConfig(_Strict):
    """Base-station transmit side."""

    tx_power_dbm: float = Field(46.0, ge=0, le=60, description="Total transmit power per cell, dBm.")
    antenna: AntennaConfig = AntennaConfig()


class LayoutConfig(_Strict):
    """Where the cells are: a hexagonal grid or the user's own site/cell list."""

    kind: Literal["hex", "file"] = Field(
        "hex", description="hex: 3GPP hexagonal grid; file: a sites/cells CSV."
    )
    sites: Literal[1, 7, 19, 37] = Field(
        19, description="Hexagonal grid size (rings of sites around the centre)."
    )
    isd_m: float = Field(500.0, gt=0, le=50_000, description="Inter-site distance, m.")
    sectors: Literal[1, 3] = Field(3, description="Sectors per site (3: boresights 30°, 150°, 270°).")
    bs_height_m: float = Field(25.0, gt=0, le=300, description="BS antenna height, m.")
    wrap_around: bool = Field(
        True, description="Wrap-around (19-site torus) so edge cells see full interference."
    )
    file: Path | None = Field(
        None, description="Sites/cells CSV when kind is file (columns in docs/scenarios.md)."
    )

    @model_validator(mode="after")
    def _check_file(self) -> LayoutConfig:
        if self.kind == "file" and self.file is None:
            raise ValueError("kind is file, so layout.file (a CSV path) is required")
        if self.kind == "hex" and self.wrap_around and self.sites != 19:
            raise ValueError(f"wrap_around needs sites=19 (got sites={self.sites})")
        return self


class UEConfig(_Strict):
    """How UEs are dropped (TR 38.901 Table 7.2-1 / 7.8-1)."""

    per_sector: int | None = Field(10, ge=1, le=100_000, description="UEs per cell (calibration uses 10).")
    count: int | None = Field(None, ge=1, le=10_000_000, description="Total UEs; overrides per_sector.")
    indoor_ratio: float = Field(0.8, ge=0, le=1, description="Share of indoor UEs.")
    min_distance_m: float = Field(35.0, ge=0, description="Minimum 2D BS-UE distance, m.")
    outdoor_height_m: float = Field(1.5, ge=1, le=22.5, description="Outdoor UE height, m.")
    indoor_floors: Literal["3gpp", "ground"] = Field(
        "3gpp",
        description="3gpp: floor n_fl ~ U{1..N_fl}, N_fl ~ U{4..8}, h = 3(n_fl-1)+1.5 m; "
        "ground: all at outdoor height.",
    )
    indoor_distance_max_m: float | None = Field(
        None, ge=0, le=100, description="Max of d_2D-in draws (default 25 m UMa/UMi, 10 m RMa)."
    )


class TimeConfig(_Strict):
    """Clock of the dynamic twin: radio step, KPI reporting period, duration, day start."""

    step_ms: float = Field(
        100.0, ge=1, le=5000, description="Radio/scheduling step, ms (above 1000: coarse histories only)."
    )
    report_period_s: float = Field(900.0, ge=1, le=86_400, description="KPI reporting period, s (15 min).")
    duration_s: float = Field(3600.0, gt=0, le=30 * 86_400, description="Simulated time, s.")
    start_hour: float = Field(0.0, ge=0, lt=24, description="Local time of day at t = 0, hours.")
    radio_update_ms: float = Field(
        500.0, ge=1, le=60_000, description="How often UEs are checked for a large-scale gain update."
    )
    radio_update_m: float = Field(
        5.0, gt=0, le=1000, description="A UE's candidate gains are recomputed once it moved this far."
    )
    candidate_refresh_s: float = Field(
        5.0, ge=0.01, le=3600, description="How often each UE re-ranks all cells into its candidate list."
    )

    @model_validator(mode="after")
    def _check_multiples(self) -> TimeConfig:
        ratio = self.report_period_s * 1000.0 / self.step_ms
        if abs(ratio - round(ratio)) > 1e-6:
            raise ValueError(
                f"report_period_s ({self.report_period_s:g}) must be a whole number of steps "
                f"(step_ms {self.step_ms:g})"
            )
        return self


class MobilityConfig(_Strict):
    """UE movement (outdoor UEs; indoor UEs stay put)."""

    model: Literal["static", "random_waypoint", "gauss_markov", "street_grid", "trajectories"] = Field(
        "random_waypoint", description="Mobility model for outdoor UEs."
    )
    speed_mix_kmh: dict[float, float] = Field(
        default_factory=lambda: {3.0: 0.7, 30.0: 0.25, 120.0: 0.05},
        description="Speed class (km/h) -> share of outdoor UEs.",
    )
    gauss_markov_alpha: float = Field(0.85, ge=0, le=1, description="Gauss-Markov memory per second.")
    pause_s: float = Field(30.0, ge=0, le=3600, description="Random-waypoint mean pause at a waypoint, s.")
    street_spacing_m: float = Field(100.0, gt=5, le=2000, description="Street-grid block size, m.")
    trajectories_file: Path | None = Field(
        None, description="CSV ue_id,t_s,x_m,y_m of given trajectories (model trajectories)."
    )

    @field_validator("speed_mix_kmh")
    @classmethod
    def _check_mix(cls, v: dict[float, float]) -> dict[float, float]:
        if not v:
            raise ValueError("needs at least one speed class")
        if any(k < 0 or k > 500 for k in v) or any(w < 0 for w in v.values()):
            raise ValueError("speeds must be 0..500 km/h and shares >= 0")
        if abs(sum(v.values()) - 1.0) > 1e-6:
            raise ValueError(f"shares must sum to 1 (got {sum(v.values()):g})")
        return v

    @model_validator(mode="after")
    def _check_file(self) -> MobilityConfig:
        if self.model == "trajectories" and self.trajectories_file is None:
            raise ValueError("model is trajectories, so trajectories_file is required")
        return self


SERVICES = (
    "embb_video", "embb_web", "full_buffer", "voip", "urllc_control", "mmtc",
    "ai_camera_ul", "ai_agent", "ai_model_download",
)  # fmt: skip
CELL_TYPES = ("office", "residential", "transport_hub", "stadium")


def _shares(v: dict[str, float], allowed: tuple[str, ...], what: str) -> dict[str, float]:
    unknown = sorted(set(v) - set(allowed))
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; allowed: {', '.join(allowed)}")
    if any(w < 0 for w in v.values()) or abs(sum(v.values()) - 1.0) > 1e-6:
        raise ValueError(f"shares must be >= 0 and sum to 1 (got {sum(v.values()):g})")
    return v


class VariabilityConfig(_Strict):
    """Mean-one modulation of each cell's session activity around its diurnal curve: weekly
    (weekend/weekday) factor per cell type, a daily level and an hour-scale AR(1) in log space,
    both spatially correlated. Defaults are calibrated on the Telecom Italia Milan grid
    (docs/models.md, "Traffic variability"; ``benchmarks/traffic_variability.py``)."""

    enabled: bool = Field(True, description="False: the plain diurnal curve (histories before v3).")
    weekend_ratio: dict[str, float] = Field(
        default_factory=lambda: {"office": 0.55, "residential": 0.97, "transport_hub": 0.81, "stadium": 1.0},
        description="Cell type -> weekend / weekday daily volume (Sat, Sun vs Mon-Fri); the week averages 1.",
    )
    daily_sigma: float = Field(0.093, ge=0, le=1, description="Std of the log daily level factor.")
    daily_phi: float = Field(0.63, ge=0, lt=1, description="Day-to-day AR(1) coefficient of the daily level.")
    hourly_sigma: float = Field(0.15, ge=0, le=1, description="Std of the hour-scale log deviation.")
    hourly_phi: float = Field(
        0.58, ge=0, lt=1, description="Hour-to-hour AR(1) coefficient (OU, 1 h sampling)."
    )
    shared_daily: float = Field(
        0.58, ge=0, le=1, description="Variance share of the daily level shared in space (site field)."
    )
    shared_hourly: float = Field(
        0.52, ge=0, le=1, description="Variance share of the hourly deviation shared in space (site field)."
    )
    daily_range_m: float = Field(
        880.0, gt=0, le=100_000, description="Correlation length of the daily field, m."
    )
    hourly_range_m: float = Field(
        400.0, gt=0, le=100_000, description="Correlation length of the hourly field, m."
    )

    @field_validator("weekend_ratio")
    @classmethod
    def _check_ratio(cls, v: dict[str, float]) -> dict[str, float]:
        bad = sorted(set(v) - set(CELL_TYPES))
        if bad:
            raise ValueError(f"unknown cell types {bad}; allowed: {', '.join(CELL_TYPES)}")
        for k, r in v.items():
            if not (0.05 <= r <= 3.5 and math.isfinite(r)):
                raise ValueError(f"weekend_ratio of {k} must be in [0.05, 3.5] (got {r})")
        return {t: float(v.get(t, 1.0)) for t in CELL_TYPES}


class TrafficConfig(_Strict):
    """Per-service traffic with session arrivals following a diurnal curve per cell type."""

    service_mix: dict[str, float] = Field(
        default_factory=lambda: {
            "embb_video": 0.25,
            "embb_web": 0.3,
            "voip": 0.1,
            "urllc_control": 0.03,
            "mmtc": 0.12,
            "ai_camera_ul": 0.05,
            "ai_agent": 0.1,
            "ai_model_download": 0.05,
        },
        description="Service -> share of UEs (each UE runs one service).",
    )
    cell_type_mix: dict[str, float] = Field(
        default_factory=lambda: {"office": 0.3, "residential": 0.45, "transport_hub": 0.2, "stadium": 0.05},
        description="Cell type -> share of sites; sets each cell's diurnal load curve.",
    )
    load_scale: float = Field(1.0, ge=0, le=100, description="Multiplies every session arrival rate.")
    variability: VariabilityConfig = Field(
        default_factory=VariabilityConfig,
        description="Weekly, daily and hour-scale modulation of the diurnal curve (enabled: false = off).",
    )

    @field_validator("service_mix")
    @classmethod
    def _check_services(cls, v: dict[str, float]) -> dict[str, float]:
        return _shares(v, SERVICES, "service")

    @field_validator("cell_type_mix")
    @classmethod
    def _check_types(cls, v: dict[str, float]) -> dict[str, float]:
        return _shares(v, CELL_TYPES, "cell type")


class LayerPriorityConfig(_Strict):
    """Inter-frequency layer priorities (TS 38.304 5.2.4.1 absolute priorities per frequency,
    ``cellReselectionPriority`` 0..7) and the connected-mode handovers operators configure
    with them (TS 38.331 5.5.4.5 event A4, 5.5.4.6 event A5, RSRP trigger quantity).

    Empty ``priorities`` (the default): no priorities, every handover is event A3 (today's
    behaviour). With priorities, a UE's candidate on a *higher*-priority carrier triggers A4
    (``Mn - Hys > a4_threshold_dbm``), on a *lower*-priority carrier A5 (``Mp + Hys <
    a5_threshold1_dbm`` and ``Mn - Hys > a5_threshold2_dbm``), on an equal-priority carrier A3;
    each held for the serving cell's time-to-trigger."""

    priorities: dict[float, int] = Field(
        default_factory=dict,
        description="Carrier GHz -> priority 0..7 (higher preferred); list every carrier of the layout.",
    )
    a4_threshold_dbm: float = Field(
        -98.0, ge=-156, le=-31, description="Event A4 RSRP threshold towards a higher-priority carrier, dBm."
    )
    a5_threshold1_dbm: float = Field(
        -102.0, ge=-156, le=-31, description="Event A5 serving RSRP threshold1 (to lower priority), dBm."
    )
    a5_threshold2_dbm: float = Field(
        -102.0, ge=-156, le=-31, description="Event A5 neighbour RSRP threshold2 (lower priority), dBm."
    )

    @field_validator("priorities")
    @classmethod
    def _check_priorities(cls, v: dict[float, int]) -> dict[float, int]:
        bad = {f: p for f, p in v.items() if not 0 <= p <= 7 or not 0 < f <= 100}
        if bad:
            raise ValueError(f"{bad}: use carrier_ghz in (0, 100] -> priority 0..7 (cellReselectionPriority)")
        return v


class RanConfig(_Strict):
    """RAN procedures: measurements, handover (TS 38.331 5.5), RLF (TS 38.331 5.3.10), scheduling."""

    candidates: int = Field(8, ge=2, le=64, description="Candidate (measured) cells per UE.")
    l3_filter_k: int = Field(
        4, ge=0, le=19, description="L3 filterCoefficient k: a = 1/2^(k/4) (TS 38.331 5.5.3.2)."
    )
    measurement_period_ms: float = Field(
        200.0, ge=1, le=10_000, description="RSRP measurement (and L3 filter update) period, ms."
    )
    a3_offset_db: float = Field(0.0, ge=-15, le=15, description="A3 offset Off, dB.")
    hysteresis_db: float = Field(2.0, ge=0, le=15, description="A3 hysteresis Hys, dB.")
    time_to_trigger_ms: float = Field(320.0, ge=0, le=5120, description="A3 time-to-trigger, ms.")
    ho_interruption_ms: float = Field(
        50.0, ge=0, le=1000, description="User-plane interruption per handover, ms."
    )
    qout_sinr_db: float = Field(-8.0, ge=-20, le=0, description="Out-of-sync threshold Qout (SINR), dB.")
    qin_sinr_db: float = Field(-6.0, ge=-20, le=5, description="In-sync threshold Qin (SINR), dB.")
    t310_ms: float = Field(1000.0, ge=0, le=6000, description="T310: out-of-sync time before RLF, ms.")
    reestablishment_ms: float = Field(
        300.0, ge=0, le=10_000, description="Outage after RLF or HO failure, ms."
    )
    ping_pong_window_s: float = Field(
        2.0, ge=0, le=60, description="Back to the previous cell within this = ping-pong."
    )
    tdd_dl_fraction: float = Field(0.74, gt=0, lt=1, description="DL share of TDD resources (DDDSU: ~0.74).")
    max_layers: int = Field(2, ge=1, le=8, description="Max MIMO layers (rank 2 above 12 dB SINR).")
    control_overhead: float = Field(
        0.14, ge=0, lt=1, description="Share of REs for control/reference signals."
    )
    ue_tx_power_dbm: float = Field(23.0, ge=0, le=33, description="UE max transmit power, dBm.")
    ul_p0_dbm: float = Field(
        -90.0, ge=-130, le=-50, description="UL power control P0 per PRB, dBm (TS 38.213 7.1)."
    )
    ul_alpha: float = Field(0.8, ge=0, le=1, description="UL fractional path-loss compensation alpha.")
    bs_noise_figure_db: float = Field(5.0, ge=0, le=15, description="gNB receiver noise figure, dB.")
    admission_gbr_prb_limit: float = Field(
        0.9,
        gt=0,
        le=1,
        description="Radio admission control: a new GBR session (5QI of GBR type) is blocked while "
        "its cell's GBR flows need this share of the DL or UL PRBs or more. Non-GBR sessions are "
        "not blocked by load (PF shares the PRBs).",
    )
    admission_max_sessions: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="Most UEs in session per cell (a connected-user capacity); default: no cap.",
    )
    layer_priority: LayerPriorityConfig = Field(
        default_factory=LayerPriorityConfig,
        description="Inter-frequency layer priorities and events A4/A5 (default: none, A3 only).",
        # left out of dumps while unset: scenarios without priorities keep their manifests and
        # cache keys (data.twin_history) exactly as before
        exclude_if=lambda v: not v.priorities,
    )


class EnergyConfig(_Strict):
    """Base-station power: EARTH load model with TR 38.864 sleep states."""

    p0_w: float = Field(
        260.0, ge=0, le=5000, description="Per-cell power at zero load, active (EARTH macro, 2 TRX)."
    )
    delta_p: float = Field(4.7, ge=0, le=50, description="EARTH load slope Δp (input W per radiated W).")
    max_tx_w: float | None = Field(
        None, gt=0, le=1000, description="Radiated power at full load; default: bs.tx_power_dbm."
    )
    micro_sleep_rel: float = Field(
        45.0, ge=0, le=100, description="Micro sleep power, % of full-load power (TR 38.864)."
    )
    light_sleep_rel: float = Field(20.0, ge=0, le=100, description="Light sleep power, % of full-load power.")
    deep_sleep_rel: float = Field(1.0, ge=0, le=100, description="Deep sleep power, % of full-load power.")
    light_sleep_transition_ms: float = Field(
        6.0, ge=0, le=10_000, description="Light sleep wake-up time, ms."
    )
    deep_sleep_transition_ms: float = Field(50.0, ge=0, le=10_000, description="Deep sleep wake-up time, ms.")
    light_sleep_transition_energy: float = Field(
        100.0, ge=0, description="Extra energy per light-sleep cycle, relative power x ms."
    )
    deep_sleep_transition_energy: float = Field(
        1000.0, ge=0, description="Extra energy per deep-sleep cycle, relative power x ms."
    )
    switch_on_s: float = Field(2.0, ge=0, le=600, description="Time for a switched-off cell to come back, s.")


FAULT_KINDS = (
    "outage", "power_degradation", "tilt_error", "external_interference",
    "backhaul_congestion", "sleeping_cell", "traffic_surge",
)  # fmt: skip


class FaultSpec(_Strict):
    """One injected fault (ground truth is logged in the events table)."""

    kind: Literal[
        "outage", "power_degradation", "tilt_error", "external_interference",
        "backhaul_congestion", "sleeping_cell", "traffic_surge",
    ]  # fmt: skip
    cell: str | int = Field(description="Cell id or index.")
    start_s: float = Field(ge=0, description="Start time, s.")
    duration_s: float = Field(gt=0, description="Duration, s.")
    magnitude: float | None = Field(
        None,
        description="dB of power loss (power_degradation, default 10), "
        "degrees of extra tilt (tilt_error, 8), "
        "dB of noise rise (external_interference, 15), Mbit/s cap (backhaul_congestion, 20), "
        "load multiplier (traffic_surge, 5).",
    )


class FaultsConfig(_Strict):
    """Faults by schedule and/or at random."""

    schedule: list[FaultSpec] = Field(default_factory=list, description="Faults at given times.")
    random_per_cell_day: float = Field(0.0, ge=0, le=24, description="Random faults per cell per day.")
    random_kinds: list[str] = Field(
        default_factory=lambda: list(FAULT_KINDS), description="Kinds drawn at random."
    )
    random_duration_s: tuple[float, float] = Field(
        (900.0, 7200.0), description="Random fault duration range, s."
    )
    seed: int | None = Field(
        None,
        ge=0,
        le=2**31 - 1,
        description="Seed of the random fault draws (default: derived from the scenario seed). "
        "Another value draws another fault schedule over the same network, UEs and traffic.",
    )

    @field_validator("random_kinds")
    @classmethod
    def _check_kinds(cls, v: list[str]) -> list[str]:
        bad = sorted(set(v) - set(FAULT_KINDS))
        if bad:
            raise ValueError(f"unknown fault kinds {bad}; allowed: {', '.join(FAULT_KINDS)}")
        return v


class Scenario(_Strict):
    """A complete scenario: radio, layout, BS and UE settings plus the seed."""

    name: str = Field("custom", min_length=1, max_length=80)
    description: str = ""
    seed: int = Field(
        0, ge=0, le=2**31 - 1, description="Master seed: same seed, same drop and same results."
    )
    radio: RadioConfig = RadioConfig()
    layout: LayoutConfig = LayoutConfig()
    bs: BSConfig = BSConfig()
    ues: UEConfig = UEConfig()
    time: TimeConfig = TimeConfig()
    mobility: MobilityConfig = MobilityConfig()
    traffic: TrafficConfig = TrafficConfig()
    ran: RanConfig = RanConfig()
    energy: EnergyConfig = EnergyConfig()
    faults: FaultsConfig = FaultsConfig()

    @field_validator("name")
    @classmethod
    def _name_chars(cls, v: str) -> str:
        if not all(ch.isalnum() or ch in "-_." for ch in v):
            raise ValueError("use letters, digits, '-', '_' or '.' only")
        return v

    @property
    def indoor_distance_max_m(self) -> float:
        if self.ues.indoor_distance_max_m is not None:
            return self.ues.indoor_distance_max_m
        return 10.0 if self.radio.scenario == "rma" else 25.0

    def with_updates(self, **sections: dict) -> Scenario:
        """A copy with some sections' fields replaced (validated again). Nested sections merge
        key by key; mapping-valued options (e.g. ``service_mix``) are replaced whole."""
        return Scenario.model_validate(_merge(Scenario, self.model_dump(), sections))


def _merge(model: type[BaseModel], base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        field = model.model_fields.get(k)
        ann = field.annotation if field is not None else None
        if (
            isinstance(v, dict)
            and isinstance(ann, type)
            and issubclass(ann, BaseModel)
            and isinstance(out.get(k), dict)
        ):
            out[k] = _merge(ann, out[k], v)
        else:
            out[k] = v
    return out


def packaged_scenarios() -> list[str]:
    """Names of the scenarios shipped in :mod:`mobileai.scenarios`."""
    root = resources.files("mobileai.scenarios")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def load_scenario(ref: str | Path) -> Scenario:
    """Load a scenario by packaged name (``dense-urban``) or by YAML path.

    Raises :class:`UserError` with a one-line message on any problem.
    """
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise UserError(f"scenario file {path} does not exist")
        text = path.read_text(encoding="utf-8")
        source = str(path)
        base_dir = path.parent
    else:
        names = packaged_scenarios()
        if str(ref) not in names:
            raise UserError(
                f"unknown scenario {ref!r}; packaged scenarios: {', '.join(names)}; or give a .yaml path"
            )
        text = resources.files("mobileai.scenarios").joinpath(f"{ref}.yaml").read_text(encoding="utf-8")
        source = f"scenario {ref}"
        base_dir = Path(str(resources.files("mobileai.scenarios")))  # packaged cells CSVs lie beside
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"{source}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if data is None:
        raise UserError(f"{source}: the file is empty")
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a mapping of sections at the top level")
    return parse_scenario(data, source, base_dir)


def parse_scenario(data: dict, source: str = "scenario", base_dir: Path | None = None) -> Scenario:
    """Validate a scenario mapping; relative ``layout.file`` paths resolve against ``base_dir``."""
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise UserError(format_validation_error(exc, source)) from None
    _reject_nan(scenario, source)
    if scenario.layout.file is not None and base_dir is not None and not scenario.layout.file.is_absolute():
        layout = scenario.layout.model_copy(update={"file": (base_dir / scenario.layout.file)})
        scenario = scenario.model_copy(update={"layout": layout})
    return scenario


def _reject_nan(model: BaseModel, source: str, prefix: str = "") -> None:
    for name, value in model:
        loc = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            _reject_nan(value, source, f"{loc}.")
        elif isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"{source}: {loc}: must be a finite number (got {value})")
