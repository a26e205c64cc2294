"""Terminal output shared by every command: messages on stderr, results on stdout.

One home for the CLI conventions of DESIGN.md: ``--json`` prints one JSON object on stdout,
progress bars and messages go to stderr, a user error is one line (see :mod:`mobileai.cli`).
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mobileai.errors import UserError

#: Messages, warnings and progress (stderr).
err = Console(stderr=True)


class Device(StrEnum):
    cpu = "cpu"
    cuda = "cuda"
    auto = "auto"


def progress_bar(enabled: bool = True) -> Progress:
    """A rich progress bar on stderr (silent when ``enabled`` is False)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not enabled,
        transient=True,
        refresh_per_second=2,  # a redraw costs the stepping thread CPU (~0.3 ms per twin step at 10/s)
    )


def check_device(device: Device) -> str:
    """The device name, refusing ``cuda`` where there is none (a user error)."""
    if device == Device.cuda:
        import torch

        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available here; use --device cpu or auto")
    return device.value


def emit(data: dict[str, Any], as_json: bool, human: str | None = None) -> None:
    """Print a command's result: one JSON line (``--json``) or the human text (rich markup)."""
    if as_json:
        sys.stdout.write(json.dumps(data, default=str) + "\n")
    else:
        Console().print(human if human is not None else json.dumps(data, indent=2, default=str))
