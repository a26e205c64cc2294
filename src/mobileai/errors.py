"""Errors a user can cause and fix, kept apart from internal failures.

The CLI turns a :class:`UserError` into a one-line message and exit code 2; anything else is an
internal error (exit code 1).
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: a scenario file, a site list, an option value."""


def format_validation_error(exc: Exception, source: str) -> str:
    """One line naming the field, the value and what is allowed, from a pydantic error."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return f"{source}: {exc}"
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        value = err.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        parts.append(f"{loc}: {msg}{shown}")
    return f"{source}: " + "; ".join(parts)
