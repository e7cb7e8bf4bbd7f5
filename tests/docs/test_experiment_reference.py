"""docs/experiment-reference.md is generated from the schema and must match it exactly."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from tunelab.config.schema import Experiment
from tunelab.config.vocabulary import MODEL_FAMILY_NAMES
from tunelab.docs_reference import REGENERATE, render_reference

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "experiment-reference.md"


def test_committed_reference_matches_the_schema() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == render_reference(), (
        f"{REFERENCE.name} is stale (the schema changed); regenerate it from the repository root with: "
        f".venv/bin/{REGENERATE}"
    )


def test_reference_names_every_section_key_and_model_family() -> None:
    text = render_reference()
    for name, field in Experiment.model_fields.items():
        assert f"`{name}" in text, name
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for key in annotation.model_fields:
                assert f"`{name}.{key}`" in text, f"{name}.{key}"
    for family in MODEL_FAMILY_NAMES:
        assert f"`model.family: {family}`" in text
    assert "| `train.lr` | float | `0.001` | > 0.0 |" in text
    assert "`quick`" in text
