"""AI workloads: what a user describes in a YAML file, validated with pydantic.

A workload is a list of *task classes*. Each class names a profiled model
(:mod:`mobileai.compute.profiles`), the device class that runs it (:data:`DEVICE_CLASSES`),
which of the twin's UEs carry it (by twin service, e.g. ``ai_camera_ul``, optionally only the
UEs of a speed class such as the 30 / 120 km/h classes of TR 38.913 Table 6.1-1, and a share of
them),
the arrival process per UE (periodic frames or Poisson requests, active a ``duty`` share of the
time in on/off periods), the deadline, the accuracy needed, the privacy class, and optional
side flows (control, audio, video) that share the UE's uplink with the AI tensors.

Privacy classes (the raw input is the privacy-sensitive object, as in split-inference privacy
work, e.g. Osia et al., "A hybrid deep learning architecture for privacy-preserving mobile
analytics", IEEE IoT-J 2020):

- ``public``: raw data may leave the device (full offload allowed);
- ``features_only``: raw data stays on the device; intermediate features after block
  ``min_split`` (default 1) may leave it (split inference);
- ``on_device``: nothing leaves the device.

A wrong value is a :class:`~mobileai.errors.UserError` naming the field, the value and what is
allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mobileai.compute.nodes import DEVICE_CLASSES, EdgeConfig
from mobileai.compute.profiles import available_models, load_profile
from mobileai.errors import UserError, format_validation_error

PRIVACY_CLASSES = ("public", "features_only", "on_device")
AI_SERVICES = ("ai_camera_ul", "ai_agent", "ai_model_download")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Arrival(_Strict):
    """Task arrivals of one UE: periodic frames or Poisson requests, in on/off activity periods."""

    kind: Literal["periodic", "poisson"] = Field(description="periodic (frames) or poisson (requests).")
    rate_hz: float = Field(gt=0, le=1000, description="Frames or requests per second while active.")
    duty: float = Field(1.0, gt=0, le=1, description="Share of time the UE is active (on/off periods).")
    mean_on_s: float = Field(60.0, gt=0, le=86_400, description="Mean length of an active period, s.")


class SideFlows(_Strict):
    """Other modalities of the same AI service on the UE's uplink, bit/s (TS 23.501 5QI mapping
    in :mod:`mobileai.net4ai.qos`)."""

    control_bps: float = Field(0.0, ge=0, le=1e8, description="Control/telemetry flow, bit/s.")
    audio_bps: float = Field(0.0, ge=0, le=1e8, description="Audio flow, bit/s.")
    video_bps: float = Field(0.0, ge=0, le=1e9, description="Video (live uplink stream), bit/s.")


class TaskClass(_Strict):
    """One kind of AI task run by a group of UEs."""

    name: str = Field(min_length=1, max_length=60)
    model: str = Field(description="Profiled model name (mobileai.compute.profiles).")
    device: str = Field(description="Device class: " + ", ".join(DEVICE_CLASSES))
    ue_services: list[str] = Field(
        default_factory=lambda: ["ai_camera_ul"], description="Twin services whose UEs run this class."
    )
    ue_share: float = Field(1.0, gt=0, le=1, description="Share of those UEs that run this class.")
    ue_min_speed_kmh: float = Field(
        0.0,
        ge=0,
        le=500,
        description="Only UEs moving at least this fast (the twin's speed classes, e.g. 30 or 120 "
        "km/h: vehicles, drones, passengers); 0 takes every UE of the services.",
    )
    arrival: Arrival
    deadline_ms: float = Field(gt=0, le=60_000, description="End-to-end deadline per task, ms.")
    min_accuracy: float = Field(0.0, ge=0, le=1, description="Accuracy the application needs.")
    privacy: Literal["public", "features_only", "on_device"] = "public"
    min_split: int = Field(1, ge=1, description="features_only: first block boundary allowed to leave.")
    input_bytes: int | None = Field(None, gt=0, le=10**9, description="Raw input sent on full offload.")
    max_uplink_ms: float | None = Field(
        None, gt=0, le=60_000, description="Uplink requirement per task (e.g. TS 22.261 7.10: 15 ms)."
    )
    flows: SideFlows = SideFlows()

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str) -> str:
        if v not in available_models():
            raise ValueError(f"unknown model {v!r}; profiled models: {', '.join(available_models())}")
        return v

    @field_validator("device")
    @classmethod
    def _known_device(cls, v: str) -> str:
        if v not in DEVICE_CLASSES:
            raise ValueError(f"unknown device class {v!r}; allowed: {', '.join(DEVICE_CLASSES)}")
        return v

    @field_validator("ue_services")
    @classmethod
    def _known_services(cls, v: list[str]) -> list[str]:
        from mobileai.twin.config import SERVICES

        bad = sorted(set(v) - set(SERVICES))
        if bad or not v:
            raise ValueError(f"unknown twin services {bad}; allowed: {', '.join(SERVICES)}")
        return v

    @model_validator(mode="after")
    def _check_split(self) -> TaskClass:
        n = load_profile(self.model).n_blocks
        if self.min_split >= n:
            raise ValueError(f"min_split {self.min_split} must be below the model's {n} blocks")
        acc = load_profile(self.model).accuracy
        if self.min_accuracy > acc:
            raise ValueError(
                f"min_accuracy {self.min_accuracy} is above what {self.model} reaches ({acc:g}); "
                "choose another model or lower min_accuracy"
            )
        return self

    def upload_allowed(self) -> np.ndarray:
        """[n_blocks + 1] bool: may split point s send its data off the device?"""
        n = load_profile(self.model).n_blocks
        s = np.arange(n + 1)
        if self.privacy == "on_device":
            return s == n
        if self.privacy == "features_only":
            return s >= self.min_split
        return np.ones(n + 1, dtype=bool)


class Workload(_Strict):
    """A user's AI workload over the twin."""

    name: str = Field("workload", min_length=1, max_length=80)
    description: str = ""
    seed: int = Field(0, ge=0, le=2**31 - 1)
    classes: list[TaskClass] = Field(min_length=1, max_length=32)
    edge: EdgeConfig = EdgeConfig()

    @model_validator(mode="after")
    def _unique(self) -> Workload:
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            raise ValueError(f"class names must be unique (got {names})")
        return self


def parse_workload(data: object, source: str = "workload") -> Workload:
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a mapping at the top level")
    try:
        return Workload.model_validate(data)
    except ValidationError as exc:
        raise UserError(format_validation_error(exc, source)) from None


def load_workload(path: str | Path) -> Workload:
    """Read and validate a workload YAML; raises :class:`UserError` with one line on any problem."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"workload file {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if data is None:
        raise UserError(f"{p}: the file is empty")
    return parse_workload(data, str(p))


class ArrivalProcess:
    """Vectorised task arrivals for UEs of one class: on/off activity (exponential periods with
    the class's duty cycle) and, while on, periodic frames (random phase) or Poisson requests."""

    def __init__(self, arrival: Arrival, n: int, rng: np.random.Generator) -> None:
        self.a, self.n, self.rng = arrival, n, rng
        self.on = rng.random(n) < arrival.duty
        self.next_t = np.where(
            arrival.kind == "periodic",
            rng.uniform(0, 1 / arrival.rate_hz, n),
            rng.exponential(1 / arrival.rate_hz, n),
        )
        self.started = False

    def step(self, t0: float, dt: float) -> tuple[np.ndarray, np.ndarray]:
        """Arrivals in [t0, t0 + dt): (member index, time), sorted by time."""
        a = self.a
        if a.duty < 1.0:
            mean_off = a.mean_on_s * (1 - a.duty) / a.duty
            p_end = 1 - np.exp(-dt / np.where(self.on, a.mean_on_s, mean_off))
            flip = self.rng.random(self.n) < p_end
            self.on ^= flip
        idx_all, t_all = [], []
        t_end = t0 + dt
        if not self.started:
            # the random phases (and Poisson first gaps) count from the first step, so that the
            # UEs' frames are not all aligned to its start
            self.next_t += t0
            self.started = True
        self.next_t = np.maximum(self.next_t, t0)
        while True:
            due = self.next_t < t_end
            if not due.any():
                break
            idx = np.flatnonzero(due)
            active = self.on[idx]
            idx_all.append(idx[active])
            t_all.append(self.next_t[idx][active])
            step = (
                np.full(len(idx), 1 / a.rate_hz)
                if a.kind == "periodic"
                else self.rng.exponential(1 / a.rate_hz, len(idx))
            )
            self.next_t[idx] += step
        if not idx_all:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        i, t = np.concatenate(idx_all), np.concatenate(t_all)
        order = np.argsort(t, kind="stable")
        return i[order], t[order]
