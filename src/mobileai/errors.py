"""Errors a user can cause and fix, kept apart from internal failures.

The CLI turns a :class:`UserError` into a one-line message and exit code 2; anything else is an
internal error (exit code 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")


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


def load_yaml_model(
    model: type[M], path: Path, what: str, source: str | None = None, empty_ok: bool = False
) -> M:
    """A YAML file validated into ``model``; every problem is one :class:`UserError` line.

    ``what`` names the file kind for a missing file ("mapping file"), ``source`` prefixes the
    other messages (default: the path); ``empty_ok`` reads an empty file as all defaults."""
    import yaml
    from pydantic import ValidationError

    source = source or str(path)
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist") from None
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"{source}: not valid YAML ({exc})") from None
    if data is None and empty_ok:
        data = {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise UserError(format_validation_error(exc, source)) from None
    except UserError as exc:  # raised by a model's own validators
        raise UserError(f"{source}: {exc}") from None
