"""docs/diagnosis.md stays in sync with the code: the thresholds table and every rule."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from tunelab.diagnose import RULES, Thresholds
from tunelab.diagnose.thresholds import thresholds_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "diagnosis.md"


def test_threshold_table_is_the_generated_one():
    text = DOC.read_text(encoding="utf-8")
    table = text.split("<!-- thresholds:start -->\n", 1)[1].split("<!-- thresholds:end -->", 1)[0]
    assert table == thresholds_markdown(), "regenerate with tunelab.diagnose.thresholds.thresholds_markdown()"


def test_every_threshold_and_rule_is_documented():
    text = DOC.read_text(encoding="utf-8")
    for field in fields(Thresholds):
        assert f"`{field.name}`" in text
        assert field.metadata.get("doc"), f"{field.name} has no description"
    for name in RULES:
        assert f"| `{name}` |" in text
