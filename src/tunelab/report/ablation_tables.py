"""The ablation study's per-knob tables in report.html, read from ablation_tables.json.

`search.ablation_tables` writes the tables as plain text cells (the same ones summary.md shows);
the report only renders them, so the two can never disagree.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from tunelab.report.runinfo import ReportRun
from tunelab.report.tables import Table
from tunelab.runs.records import read_json


def ablation_html(run: ReportRun, render: Callable[..., str]) -> str:
    """One small table per knob (default and winner rows highlighted) and the combine_winners check;
    "" for a run without ablation_tables.json."""
    path = run.view.layout.ablation_tables
    try:
        record = read_json(path) if path.exists() else {}
    except (OSError, ValueError):
        return ""
    parts = []
    for table in record.get("knobs", []):
        rows = [[(cell, None) for cell in cells] for cells in table.get("rows", [])]
        classes = ["best" if i == table.get("winner_row") else "" for i in range(len(rows))]
        for i, row in enumerate(rows):
            if i == table.get("default_row"):
                row[0] = (f"{row[0][0]} (default)", None)
        headers = [table.get("knob", "value"), *table.get("headers", [])[1:]]
        title = html.escape(str(table.get("knob", "")))
        parts.append(f"<h4>{title}</h4>" + render(Table(headers, rows), False, classes))
    if not parts:
        return ""
    out = ("<h3>One table per knob</h3><p>Each table varies one knob with the others at the default. The "
           "highlighted row is the knob's best value by the objective; params are the trained parameters "
           "(first seed's checkpoint); train time is summed over seeds.</p>" + "".join(parts))
    combine = record.get("combine")
    if combine:
        out += f"<h3>Per-knob winners combined</h3><p>{html.escape(str(combine.get('text', '')))}</p>"
    return out
