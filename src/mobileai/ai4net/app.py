"""The ``App`` protocol and the app registry.

An app is one closed-loop function of the white paper's loop (perception - analysis - decision -
execution), with the explanation the audit log and the reports need:

1. :meth:`App.observe` receives each reporting period's :class:`~mobileai.data.network.Observation`;
2. :meth:`App.analyse` turns what it has seen into :class:`Finding` s (a forecast, a detected
   anomaly, an overloaded cell ...);
3. :meth:`App.decide` turns findings into :class:`Decision` s: a typed action
   (:mod:`mobileai.twin.actions`) with its reason and the evidence it relied on;
4. :meth:`App.explain` summarises the app's current belief for the run report.

Apps do not apply anything: the loop (:mod:`mobileai.agent.loop`) passes decisions through the
guardrails, approval and audit, and tells the app what happened (:meth:`App.outcome`). The same
app runs on the twin (closed loop) or on recorded data (open loop).

Apps register by name; built-in apps are looked up lazily (``module:Class``), so listing them
imports nothing heavy.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import pyarrow as pa
from pydantic import ValidationError

from mobileai.data.network import Observation
from mobileai.errors import UserError, format_validation_error
from mobileai.twin.actions import Action, ActionResult

Impact = Literal["low", "medium", "high"]
IMPACT_LEVELS: tuple[Impact, ...] = ("low", "medium", "high")


@dataclass(frozen=True)
class Finding:
    """Something an app concluded from the KPIs: ``kind`` on ``cell`` with a ``score``."""

    cell: str
    kind: str
    score: float
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """An action an app proposes, with why: ``reason`` in words, ``evidence`` as the numbers
    it relied on (KPI values, forecast, feature attributions), and the app's own impact class."""

    action: Action
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)
    impact: Impact = "low"


@runtime_checkable
class App(Protocol):
    """A closed-loop app. ``priority`` resolves conflicts (higher wins; see guardrails)."""

    name: ClassVar[str]
    priority: ClassVar[int]

    def observe(self, obs: Observation) -> None: ...

    def analyse(self) -> list[Finding]: ...

    def decide(self, findings: list[Finding]) -> list[Decision]: ...

    def explain(self) -> dict[str, Any]: ...

    def outcome(self, decision: Decision, result: ActionResult, note: str) -> None: ...


#: An app factory takes the cells table (topology) and the app's options.
AppFactory = Callable[..., App]

#: Built-in apps, imported on first use.
BUILTIN_APPS: dict[str, str] = {
    "mro-rule": "mobileai.ai4net.mobility:MroRule",
    "energy-saver": "mobileai.ai4net.energy.app:EnergySaver",
    "energy-threshold": "mobileai.ai4net.energy.app:EnergyThreshold",
    "anomaly-healer": "mobileai.ai4net.anomaly.app:AnomalyHealer",
}
_REGISTRY: dict[str, AppFactory] = {}


def register_app(name: str, factory: AppFactory) -> None:
    """Register an app factory ``factory(cells: pa.Table, **options) -> App`` under ``name``."""
    if name in _REGISTRY or name in BUILTIN_APPS:
        raise ValueError(f"app {name!r} is already registered")
    _REGISTRY[name] = factory


def parse_app_options(items: list[str] | None) -> dict[str, dict[str, Any]]:
    """``["energy-saver.max_sleep_share=0.3", ...]`` -> ``{"energy-saver": {"max_sleep_share": 0.3}}``
    (values parsed as YAML scalars)."""
    import yaml

    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        head, sep, value = item.partition("=")
        app, dot, key = head.partition(".")
        if not sep or not dot or not app or not key:
            raise UserError(f"--app-opt {item!r}: use APP.KEY=VALUE, e.g. anomaly-healer.model=runs/model")
        try:
            out.setdefault(app, {})[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            out.setdefault(app, {})[key] = value
    return out


def app_names() -> list[str]:
    return sorted({*BUILTIN_APPS, *_REGISTRY})


def make_app(name: str, cells: pa.Table, **options: Any) -> App:
    """Build a registered app; an unknown name is a user error naming the known ones."""
    if name in _REGISTRY:
        factory = _REGISTRY[name]
    elif name in BUILTIN_APPS:
        module, attr = BUILTIN_APPS[name].split(":")
        factory = getattr(importlib.import_module(module), attr)
    else:
        raise UserError(f"--apps: unknown app {name!r}; known apps: {', '.join(app_names())}")
    try:
        app = factory(cells, **options)
    except ValidationError as exc:
        raise UserError(format_validation_error(exc, f"--app-opt {name}")) from exc
    if not isinstance(app, App):
        raise TypeError(f"app {name!r} does not implement the App protocol")
    return app
