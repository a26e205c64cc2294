"""Human approval of high-impact actions.

Actions whose impact reaches the run's ``approval_level`` (see :mod:`mobileai.agent.guardrails`)
are put to an :class:`Approver` before they are applied. Three approvers ship:

- ``console``: asks the operator at the terminal (y/n, with the app's reason and evidence);
- ``reject``: the safe default for unattended runs: nothing high-impact is applied without a
  human, and the audit log records each refusal;
- ``accept``: approves everything (for experiments on the twin, logged as approved by policy).

The HTTP service will add an approver that queues requests for a person (later issue).
"""

from __future__ import annotations

import sys
from typing import Protocol

from rich.console import Console

from mobileai.ai4net.app import Decision
from mobileai.errors import UserError

APPROVERS = ("reject", "accept", "console")


class Approver(Protocol):
    name: str

    def approve(self, app: str, decision: Decision, impact: str) -> tuple[bool, str]:
        """(approved, who/why) for one decision."""
        ...


class PolicyApprover:
    """Approves all (``accept``) or none (``reject``) by a standing policy."""

    def __init__(self, accept: bool) -> None:
        self.accept = accept
        self.name = "accept" if accept else "reject"

    def approve(self, app: str, decision: Decision, impact: str) -> tuple[bool, str]:
        if self.accept:
            return True, "approved by the run's standing policy (--approver accept)"
        return False, "no human approval for a high-impact action (--approver reject)"


class ConsoleApprover:
    """Asks at the terminal; refuses when stdin is not interactive."""

    name = "console"

    def __init__(self) -> None:
        self.console = Console(stderr=True)

    def approve(self, app: str, decision: Decision, impact: str) -> tuple[bool, str]:
        if not sys.stdin.isatty():
            return False, "console approver without a terminal: refused"
        a = decision.action.model_dump(mode="json")
        self.console.print(f"[bold]{app}[/bold] asks for a {impact}-impact action: {a}")
        self.console.print(f"  reason: {decision.reason}")
        answer = self.console.input("  approve? [y/N] ").strip().lower()
        return answer in ("y", "yes"), "operator at the console"


def make_approver(name: str) -> Approver:
    if name == "console":
        return ConsoleApprover()
    if name in ("accept", "reject"):
        return PolicyApprover(name == "accept")
    raise UserError(f"--approver: {name!r} is not allowed; choose one of {', '.join(APPROVERS)}")
