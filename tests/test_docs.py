"""Documentation stays in step with the code."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from mobileai.twin.config import Scenario
from mobileai.twin.layout import _CSV_COLUMNS

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _fields(model: type[BaseModel]) -> set[str]:
    names = set()
    for name, info in model.model_fields.items():
        names.add(name)
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            names |= _fields(ann)
    return names


def test_every_scenario_option_is_documented() -> None:
    text = (DOCS / "scenarios.md").read_text()
    missing = sorted(f for f in _fields(Scenario) if f"`{f}`" not in text)
    assert not missing, f"undocumented scenario options: {missing}"


def test_every_cells_csv_column_is_documented() -> None:
    text = (DOCS / "scenarios.md").read_text()
    assert not sorted(c for c in _CSV_COLUMNS if f"`{c}`" not in text)
