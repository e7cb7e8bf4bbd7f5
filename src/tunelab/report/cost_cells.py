"""The report's cost cells per configuration (runs/cost_record.py): parameters, time alone, memory, latency.

Estimated numbers carry `~` (a vectorized member's time, CPU memory); the report states what each means.
"""

from __future__ import annotations

from typing import Any

from tunelab.report.runinfo import finite
from tunelab.runs.cost_record import estimated_mark, read_cost
from tunelab.runs.view import TrialView

COST_HEADERS = ["params (n)", "time alone (s)", "memory (MB)", "latency b1 (ms/row)", "latency b256 (ms/row)"]


def _cell(cost: dict[str, Any], key: str, digits: str, kind_key: str = "") -> tuple[str, float | None]:
    value = cost.get(key)
    if not finite(value):
        return "-", None
    return (estimated_mark(cost, kind_key) if kind_key else "") + format(value, digits), float(value)


def cost_row(trial: TrialView) -> list[tuple[str, float | None]]:
    cost = read_cost(trial.root)
    return [
        _cell(cost, "n_params", ","),
        _cell(cost, "train_time_alone_s", ".2f", "train_time_kind"),
        _cell(cost, "config_mem_mb", ".2f", "config_mem_kind"),
        _cell(cost, "latency_ms_b1", ".4f"),
        _cell(cost, "latency_ms_b256", ".5f"),
    ]


def cost_text(trial: TrialView) -> str:
    """A short label for a bar: `85,002 params, ~0.03 s, ~1.57 MB` (empty without cost.json)."""
    cells = cost_row(trial)
    parts = [f"{cells[0][0]} params", f"{cells[1][0]} s", f"{cells[2][0]} MB"]
    return ", ".join(p for p, c in zip(parts, cells, strict=False) if c[1] is not None)
