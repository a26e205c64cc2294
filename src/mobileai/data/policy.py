"""Access policy of the store: roles -> which tables and columns they read, what is pseudonymised
or coarsened on the way out, and who may write.

Role-based access control in the sense of NIST RBAC (Sandhu, Ferraiolo & Kuhn, "The NIST model for
role-based access control", 2000): permissions belong to roles, a store opened with a role gets
that role's permissions. The column-level rules follow the data-minimisation principle of GDPR
Art. 5(1)(c) and the NWDAF data-access authorisation of 3GPP TS 23.288 6.2.8 / TS 33.521: a
consumer sees only the data it is authorised for. :class:`~mobileai.data.store.Store` enforces
it in ``query`` and ``append``; a policy is YAML validated by pydantic, e.g.::

    roles:
      analyst:
        tables:
          kpis: {columns: "*"}
          ues: {deny: [imsi], pseudonymise: [ue_id], coarsen: {x_m: 250, y_m: 250}}
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mobileai.errors import UserError, load_yaml_model


class AccessDenied(UserError):  # noqa: N818 (reads as the refusal it is)
    """The role may not read or write what was asked."""


class TableRule(BaseModel):
    """What one role sees of one table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: Literal["*"] | list[str] = Field("*", description="Readable columns ('*': all).")
    deny: list[str] = Field(default_factory=list, description="Columns never readable.")
    pseudonymise: list[str] = Field(default_factory=list, description="Columns replaced by HMAC pseudonyms.")
    coarsen: dict[str, float] = Field(
        default_factory=dict, description="Column -> grid step (metres, degrees or seconds)."
    )
    quasi_identifiers: list[str] = Field(
        default_factory=list, description="Columns that k-anonymity is checked over on export."
    )
    k: int | None = Field(None, ge=2, description="Minimum group size on export (k-anonymity).")

    @field_validator("coarsen")
    @classmethod
    def _positive(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {c: s for c, s in v.items() if not s > 0}
        if bad:
            raise ValueError(f"coarsening steps must be > 0, got {bad}")
        return v

    def readable(self, name: str) -> bool:
        return name not in self.deny and (self.columns == "*" or name in self.columns)


class Role(BaseModel):
    """A role: readable tables and whether it may append."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    write: bool = False
    tables: dict[str, TableRule] = Field(default_factory=dict)


class AccessPolicy(BaseModel):
    """Roles by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    roles: dict[str, Role]

    @classmethod
    def load(cls, path: Path) -> AccessPolicy:
        """Read and validate a YAML policy file."""
        return load_yaml_model(cls, path, "policy file")

    def role(self, name: str) -> Role:
        if name not in self.roles:
            raise UserError(
                f"role {name!r} is not in the access policy; roles: {', '.join(sorted(self.roles))}"
            )
        return self.roles[name]

    def rule(self, role: str, table: str) -> TableRule:
        """The role's rule for ``table``; :class:`AccessDenied` if it may not read it."""
        r = self.role(role)
        if table not in r.tables:
            raise AccessDenied(
                f"role {role!r} may not read table {table!r}; "
                f"it may read: {', '.join(sorted(r.tables)) or 'none'}"
            )
        return r.tables[table]

    def check_write(self, role: str) -> None:
        if not self.role(role).write:
            raise AccessDenied(f"role {role!r} may not write to the store")


_UE_IDS = ["ue_id", "imsi", "supi", "gpsi", "msisdn", "imei"]

#: The default policy (``mobileai data export --role ...`` without ``--policy``):
#: ``operator`` reads and writes everything; ``analyst`` reads KPIs and events, and UE-level
#: tables with identifiers pseudonymised and positions on a 250 m grid; ``partner`` (an external
#: consumer) reads per-cell KPIs only, with the cell's site and type withheld, and UE-level data
#: with 1 km positions, hourly times and k = 5 over (cell, hour).
DEFAULT_POLICY = AccessPolicy(
    roles={
        "operator": Role(
            description="network operations: full access, may write",
            write=True,
            tables={t: TableRule() for t in ("kpis", "events", "actions", "ues", "cells")},
        ),
        "analyst": Role(
            description="internal data science: identifiers pseudonymised, positions on a 250 m grid",
            tables={
                "kpis": TableRule(),
                "events": TableRule(),
                "actions": TableRule(),
                "cells": TableRule(),
                "ues": TableRule(
                    pseudonymise=[c for c in _UE_IDS if c != "imei"],
                    deny=["imei"],
                    coarsen={"x_m": 250.0, "y_m": 250.0, "lat": 0.0025, "lon": 0.0025},
                ),
            },
        ),
        "partner": Role(
            description="external consumer: cell KPIs without site data; k-anonymous UE data",
            tables={
                "kpis": TableRule(deny=["site", "cell_type"]),
                "ues": TableRule(
                    pseudonymise=[c for c in _UE_IDS if c != "imei"],
                    deny=["imei"],
                    coarsen={"x_m": 1000.0, "y_m": 1000.0, "lat": 0.01, "lon": 0.01, "time": 3600.0},
                    quasi_identifiers=["cell_id", "time"],
                    k=5,
                ),
            },
        ),
    }
)
