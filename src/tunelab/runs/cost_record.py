"""Reading a trial's `cost.json` (written by train/trial_cost.py): what the configuration costs alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab.runs.layout import TrialLayout
from tunelab.runs.records import read_json


def read_cost(trial_root: Path) -> dict[str, Any]:
    """The trial's cost columns, or {} when it has none (an older run, or a trial still training)."""
    path = TrialLayout(trial_root).cost_json
    try:
        data = read_json(path) if path.exists() else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def estimated_mark(cost: dict[str, Any], kind_key: str) -> str:
    """`~` before a number that was estimated rather than measured (the docs and tables say so)."""
    return "~" if cost.get(kind_key) == "estimated" else ""
