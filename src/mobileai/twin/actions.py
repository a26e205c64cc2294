"""Typed, validated, reversible actions: the surface AI apps drive.

Every action names its target and new value; :meth:`Twin.apply` validates it against the
network (cell exists, value in range), applies it, and returns an :class:`ActionResult` that
records what it replaced, so :meth:`Twin.revert` can undo it. Parameters follow their 3GPP
homes: cell sleep / switch-off (TR 38.864 network energy saving), transmit power and electrical
tilt (coverage and capacity optimisation, TS 28.313), cell individual offset per neighbour pair
and hysteresis / time-to-trigger (mobility robustness optimisation, TS 38.331 5.5.4.4), PRB share
per slice (TS 28.541 RRMPolicyRatio) and the TDD DL/UL split (TS 38.213 11.1).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from mobileai.twin.traffic import SLICES


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def target_key(self) -> tuple:
        """(parameter, target) an action touches, for conflict detection."""
        raise NotImplementedError


class SetCellState(_Action):
    """Put a cell to sleep, switch it off, or wake it (TR 38.864)."""

    kind: Literal["cell_state"] = "cell_state"
    cell: str | int
    state: Literal["active", "light_sleep", "deep_sleep", "off"]

    def target_key(self) -> tuple:
        return ("cell_state", self.cell)


class SetTxPower(_Action):
    """Cell transmit power, dBm."""

    kind: Literal["tx_power"] = "tx_power"
    cell: str | int
    tx_power_dbm: float = Field(ge=0, le=60)

    def target_key(self) -> tuple:
        return ("tx_power", self.cell)


class SetTilt(_Action):
    """Electrical down-tilt, degrees below the horizon."""

    kind: Literal["tilt"] = "tilt"
    cell: str | int
    downtilt_deg: float = Field(ge=-10, le=45)

    def target_key(self) -> tuple:
        return ("tilt", self.cell)


class SetCIO(_Action):
    """Cell individual offset Ocn that ``source``'s UEs apply to ``target`` in event A3, dB."""

    kind: Literal["cio"] = "cio"
    source: str | int
    target: str | int
    cio_db: float = Field(ge=-24, le=24)

    def target_key(self) -> tuple:
        return ("cio", self.source, self.target)


class SetHandoverParams(_Action):
    """A3 hysteresis and time-to-trigger for UEs served by ``cell``."""

    kind: Literal["ho_params"] = "ho_params"
    cell: str | int
    hysteresis_db: float = Field(ge=0, le=15)
    time_to_trigger_ms: float = Field(ge=0, le=5120)

    def target_key(self) -> tuple:
        return ("ho_params", self.cell)


class SetSliceShare(_Action):
    """Share of the cell's PRBs each slice may use (RRMPolicyRatio-like maximum ratios)."""

    kind: Literal["slice_share"] = "slice_share"
    cell: str | int
    shares: dict[str, float]

    @model_validator(mode="after")
    def _check(self) -> SetSliceShare:
        bad = sorted(set(self.shares) - set(SLICES))
        if bad:
            raise ValueError(f"unknown slice(s) {bad}; allowed: {', '.join(SLICES)}")
        if any(not 0 <= v <= 1 for v in self.shares.values()):
            raise ValueError("each share must be within 0..1")
        return self

    def target_key(self) -> tuple:
        return ("slice_share", self.cell)


class SetTdd(_Action):
    """Downlink share of the cell's TDD pattern (the rest is uplink)."""

    kind: Literal["tdd"] = "tdd"
    cell: str | int
    dl_fraction: float = Field(ge=0.1, le=0.9)

    def target_key(self) -> tuple:
        return ("tdd", self.cell)


Action = Annotated[
    SetCellState | SetTxPower | SetTilt | SetCIO | SetHandoverParams | SetSliceShare | SetTdd,
    Field(discriminator="kind"),
]
ACTION_ADAPTER: TypeAdapter[Action] = TypeAdapter(Action)


def parse_action(data: dict[str, Any]) -> Action:
    """Validate a plain dict (e.g. from JSON) into an action."""
    return ACTION_ADAPTER.validate_python(data)


class ActionResult(BaseModel):
    """What happened to one action, with what it replaced (for rollback)."""

    model_config = ConfigDict(frozen=True)

    action: Action
    applied: bool
    t_s: float
    previous: Any = None
    reason: str = ""

    def inverse(self) -> Action | None:
        """The action that restores the previous value (None if nothing was applied)."""
        if not self.applied or self.previous is None:
            return None
        a = self.action
        prev = self.previous
        if isinstance(a, SetCellState):
            return a.model_copy(update={"state": prev})
        if isinstance(a, SetTxPower):
            return a.model_copy(update={"tx_power_dbm": prev})
        if isinstance(a, SetTilt):
            return a.model_copy(update={"downtilt_deg": prev})
        if isinstance(a, SetCIO):
            return a.model_copy(update={"cio_db": prev})
        if isinstance(a, SetHandoverParams):
            return a.model_copy(update={"hysteresis_db": prev[0], "time_to_trigger_ms": prev[1]})
        if isinstance(a, SetSliceShare):
            return a.model_copy(update={"shares": prev})
        if isinstance(a, SetTdd):
            return a.model_copy(update={"dl_fraction": prev})
        raise TypeError(f"unknown action {a!r}")
