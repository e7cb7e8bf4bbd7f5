"""The test split's counter: every scoring on test adds one, in `test_touches.json` of the run folder.

Each look at test numbers that can change a choice (which configuration to ship) spends a little
of the test split's independence; the count says how much was spent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tunelab.runs.layout import RunLayout
from tunelab.runs.records import read_json, write_json_atomic

WHY = ("Every look at test numbers that can change which configuration you pick makes the test score "
       "a little optimistic; one touch (the winner only) keeps it an honest estimate.")


def read_touches(layout: RunLayout) -> dict[str, Any]:
    """`{"count": n, "events": [...]}`; a missing or unreadable file counts as none."""
    try:
        data = read_json(layout.test_touches)
    except (OSError, ValueError):
        return {"count": 0, "events": []}
    return data if isinstance(data, dict) and isinstance(data.get("count"), int) else {"count": 0, "events": []}


def add_touch(layout: RunLayout, *, trial: int | None, folder: str) -> int:
    """Count one scoring on test (the caller holds the run folder's writer lock); returns the new count.
    `trial` is None for a final model that is no study trial (the combined winners)."""
    data = read_touches(layout)
    events = list(data.get("events", []))
    events.append({"trial": trial, "folder": folder, "at": datetime.now(UTC).isoformat(timespec="seconds")})
    count = int(data["count"]) + 1
    write_json_atomic(layout.test_touches, {"count": count, "events": events})
    return count
