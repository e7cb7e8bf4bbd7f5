"""`data_checks.json`: the prepared data's hygiene checks (`data/checks.py`), written once per run folder.

Here rather than under `data/`, which writes no run records: every command that trains into a run
folder (`tunelab train`, a study) calls this right after claiming the folder.
"""

from __future__ import annotations

from pathlib import Path

from tunelab.data.checks import check_data
from tunelab.data.dataset import Dataset
from tunelab.runs.layout import RunLayout
from tunelab.runs.records import read_json, write_json_atomic


def write_data_checks(layout: RunLayout, data: Dataset) -> Path:
    """Measure and write `data_checks.json` once per run folder (kept when its data hash still matches)."""
    path = layout.data_checks
    if path.exists():
        try:
            if read_json(path).get("data_hash") == data.data_hash:
                return path
        except (OSError, ValueError, AttributeError):
            pass  # damaged: measured again
    write_json_atomic(path, check_data(data))
    return path
