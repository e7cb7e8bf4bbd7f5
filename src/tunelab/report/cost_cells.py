"""The report's cost cells per configuration (runs/cost_record.py): parameters, time alone, memory, latency.

Estimated numbers carry `~` (a vectorized member's time, CPU memory); the report states what each means.
"""

from __future__ import annotations

from typing import Any

from tunelab.report.runinfo import finite
from tunelab.runs.cost_record import estimated_mark, read_cost
from tunelab.runs.view import TrialView

# The page's cost columns; summary.csv also keeps the group's shared clock, the process's peak memory
# and the latency at batch 256 (too many columns for a 1400 px window).
COST_HEADERS = ["params", "time alone (s)", "memory (MB)", "latency (ms/row)"]
COST_NOTE = (
    "Cost columns are each configuration on its own: time alone is measured when the trial trained alone "
    "and marked ~ when estimated from a solo calibration (a vectorized group's shared clock says nothing "
    "about one member); memory is ~ weights + gradients + optimizer state + one batch's activations on CPU; "
    "latency is the trained model's forward pass per row at batch 1 (batch 256 in summary.csv)."
)


def _cell(cost: dict[str, Any], key: str, digits: str, kind_key: str = "") -> tuple[str, float | None]:
    value = cost.get(key)
    if not finite(value):
        return "-", None
    return (estimated_mark(cost, kind_key) if kind_key else "") + format(value, digits), float(value)


def cost_row(trial: TrialView) -> list[tuple[str, float | None]]:
    """The cells under COST_HEADERS (latency at batch 1, the serving case)."""
    cost = read_cost(trial.root)
    return [
        _cell(cost, "n_params", ","),
        _cell(cost, "train_time_alone_s", ".3g", "train_time_kind"),
        _cell(cost, "config_mem_mb", ".3g", "config_mem_kind"),
        _cell(cost, "latency_ms_b1", ".3g"),
    ]


def cost_text(trial: TrialView) -> str:
    """A short label for a bar: `85,002 params, ~0.03 s, ~1.57 MB` (empty without cost.json)."""
    cells = cost_row(trial)
    parts = [f"{cells[0][0]} params", f"{cells[1][0]} s", f"{cells[2][0]} MB"]
    return ", ".join(p for p, c in zip(parts, cells, strict=False) if c[1] is not None)
