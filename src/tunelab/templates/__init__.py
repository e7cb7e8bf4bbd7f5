"""Starter experiment files for `tunelab init`, shipped inside the package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from tunelab.runs.records import write_text_atomic

TEMPLATES: dict[str, str] = {
    "digits": "digits.yaml",
    "toy": "toy.yaml",
    "regression": "regression.yaml",
}


def template_text(name: str) -> str:
    return resources.files("tunelab.templates").joinpath(TEMPLATES[name]).read_text(encoding="utf-8")


def write_template(name: str, path: Path) -> None:
    write_text_atomic(path, template_text(name))
