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
        """A copy with some sections' fields replaced (validated again)."""
        data = self.model_dump()
        for key, value in sections.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = _deep_merge(data[key], value)
            else:
                data[key] = value
        return Scenario.model_validate(data)


def _deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
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
        base_dir = None
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
