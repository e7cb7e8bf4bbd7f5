"""Ablation read the way seed 002 reads it: one small table per knob.

An ablation study's rows are the default configuration plus one change at a time. The flat
summary table mixes every knob; a reader comparing learning rates wants the learning-rate rows
alone, the default among them and marked, with the training-split metric and the cost (parameter
count, train time) beside the validation metric. This module regroups the summary rows by the one
knob each differs in and picks each knob's winner (used by `search.combine_winners`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tunelab.config.schema import Experiment
from tunelab.config.space import Knob, ablation_points
from tunelab.config.space_knob import values_equal
from tunelab.markdown import md_escape
from tunelab.runs.layout import RunLayout, TrialLayout
from tunelab.runs.records import read_json, write_json_atomic
from tunelab.train.checkpoint import load_checkpoint

# state-dict entries that are running statistics, not trained parameters
_BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


def ablation_default(exp: Experiment, knobs: Sequence[Knob]) -> dict[str, Any]:
    """The default point: every knob at the experiment's base value (the first ablation point)."""
    return ablation_points(knobs, exp)[0]


def varied_knob(params: dict[str, Any], default: dict[str, Any]) -> str | None:
    """The one knob path where `params` differs from the default; "" for the default itself,
    None when it differs in several (not an ablation point)."""
    changed = [p for p, v in params.items() if p in default and not values_equal(v, default[p])]
    if not changed:
        return ""
    return changed[0] if len(changed) == 1 else None


def count_parameters(root: Path | None, trial_dir: str) -> int | None:
    """Trained parameters of a trial, counted in its first seed's best checkpoint (None if absent)."""
    if root is None or not trial_dir:
        return None
    layout = TrialLayout(root / trial_dir)
    for sub in (layout, *layout.seeds(2)):
        path = sub.best_checkpoint
        if path.exists():
            try:
                state = load_checkpoint(path).get("model") or {}
            except (OSError, ValueError, RuntimeError):
                return None
            return sum(int(t.numel()) for k, t in state.items()
                       if hasattr(t, "numel") and not k.endswith(_BUFFER_SUFFIXES))
    return None


def knob_groups(
    rows: Sequence[dict[str, Any]], exp: Experiment, knobs: Sequence[Knob]
) -> list[tuple[Knob, list[tuple[Any, dict[str, Any]]]]]:
    """Per searched knob: (value, row) for the default and each single change, in the knob's listed order."""
    default = ablation_default(exp, knobs)
    parsed = [(json.loads(r["params"]) if isinstance(r["params"], str) else r["params"], r) for r in rows]
    base_rows = [r for p, r in parsed if varied_knob(p, default) == ""]
    groups = []
    for knob in knobs:
        if knob.kind == "fixed" or knob.path not in default:
            continue
        entries = [(default[knob.path], r) for r in base_rows[:1]]
        entries += [(p[knob.path], r) for p, r in parsed if varied_knob(p, default) == knob.path]
        order = [str(v) for v in (knob.values or ())]
        entries.sort(key=lambda e: order.index(str(e[0])) if str(e[0]) in order else len(order))
        groups.append((knob, entries))
    return groups


def _mean(row: dict[str, Any], metric: str) -> float | None:
    value = row.get(f"{metric}_mean")
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def knob_winners(
    rows: Sequence[dict[str, Any]], exp: Experiment, knobs: Sequence[Knob]
) -> dict[str, Any]:
    """Each knob's best value by the objective (the default's value on a tie or when nothing beat it)."""
    metric = exp.search.objective.metric
    sign = -1.0 if exp.search.objective.resolved_direction() == "maximize" else 1.0
    default = ablation_default(exp, knobs)
    winners: dict[str, Any] = {}
    for knob, entries in knob_groups(rows, exp, knobs):
        best_value, best_score = default[knob.path], math.inf
        for value, row in entries:
            mean = _mean(row, metric)
            is_default = values_equal(value, default[knob.path])
            if mean is not None and (sign * mean < best_score or (sign * mean == best_score and is_default)):
                best_value, best_score = value, sign * mean
        winners[knob.path] = best_value
    return winners


def _cell(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return "-" if value is None else str(value)


def knob_tables(
    rows: Sequence[dict[str, Any]], exp: Experiment, knobs: Sequence[Knob], root: Path | None,
    train_key: str | None, param_counts: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """One table per knob as plain data (cells are text): `headers`, `rows`, and the indexes of the
    default's row and the winner's row. summary.md and report.html both render these.

    `param_counts` (trial folder -> parameters) is read and filled, so a checkpoint is opened once
    per trial, not after every trial of the study."""
    counts = param_counts if param_counts is not None else {}
    metric = exp.search.objective.metric
    default = ablation_default(exp, knobs)
    winners = knob_winners(rows, exp, knobs)
    tables = []
    for knob, entries in knob_groups(rows, exp, knobs):
        headers = ["value", metric, *([train_key] if train_key else []), "params", "train time (s)", "state"]
        cells, default_row, winner_row = [], None, None
        for i, (value, row) in enumerate(entries):
            if values_equal(value, default[knob.path]):
                default_row = i if default_row is None else default_row
            if values_equal(value, winners[knob.path]):
                winner_row = i if winner_row is None else winner_row
            trial_dir = row.get("trial_dir") or (f"trials/{row['name']}" if row.get("name") else "")
            cells.append([value if isinstance(value, str) else json.dumps(value), _cell(row.get(metric)),
                          *([_cell(row.get(train_key))] if train_key else []),
                          _cell(_count(counts, root, trial_dir)), _cell(row.get("train_time_s"), 3),
                          _cell(row.get("state"))])
        tables.append({"knob": knob.path, "headers": headers, "rows": cells,
                       "default_row": default_row, "winner_row": winner_row})
    return tables


TABLES_NOTE = ("Each table varies one knob with the others at the default; \"(default)\" marks the default value, "
               "**bold** the knob's best value by the objective. Params: trained parameters (first seed's "
               "checkpoint); train time summed over seeds.")


def _count(counts: dict[str, int], root: Path | None, trial_dir: str) -> int | None:
    if trial_dir not in counts:
        found = count_parameters(root, trial_dir)
        if found is None:
            return None
        counts[trial_dir] = found
    return counts[trial_dir]


def knob_tables_markdown(tables: Sequence[dict[str, Any]]) -> str:
    """The per-knob section of summary.md."""
    lines = ["## One table per knob", "", TABLES_NOTE, ""]
    for table in tables:
        headers = [table["knob"], *table["headers"][1:]]
        lines += [f"### {md_escape(table['knob'])}", "", "| " + " | ".join(md_escape(h) for h in headers) + " |",
                  "|" + "---|" * len(headers)]
        for i, cells in enumerate(table["rows"]):
            label = md_escape(cells[0]) + (" (default)" if i == table["default_row"] else "")
            label = f"**{label}**" if i == table["winner_row"] else label
            lines.append("| " + " | ".join([label, *(md_escape(c) for c in cells[1:])]) + " |")
        lines.append("")
    return "\n".join(lines)


def write_knob_tables(
    layout: RunLayout, rows: Sequence[dict[str, Any]], exp: Experiment, knobs: Sequence[Knob],
    train_key: str | None,
) -> str:
    """Write ablation_tables.json (kept: a combine_winners result already there) and return the
    Markdown section for summary.md."""
    record = _read(layout.ablation_tables)
    counts = dict(record.get("param_counts") or {})
    tables = knob_tables(rows, exp, knobs, layout.root, train_key, counts)
    write_json_atomic(layout.ablation_tables, {**record, "note": TABLES_NOTE, "knobs": tables,
                                               "param_counts": counts})
    return knob_tables_markdown(tables) + combine_markdown(record.get("combine"), _final_choice(layout))


def _read(path: Path) -> dict[str, Any]:
    try:
        return read_json(path) if path.exists() else {}
    except (OSError, ValueError):
        return {}


def combine_markdown(combine: dict[str, Any] | None, final_choice: str | None = None) -> str:
    """The combine_winners section: default vs the per-knob winners together, mean ± std over seeds,
    and which of the two the final model retrained (when it ran)."""
    if not combine:
        return ""
    lines = ["", "## Per-knob winners combined", "", combine["text"]]
    if final_choice:
        lines += ["", f"Final model: {final_choice}."]
    return "\n".join([*lines, ""])


def _final_choice(layout: RunLayout) -> str | None:
    """final/test_metrics.json's `choice`: which configuration the final model retrained, and why."""
    record = _read(layout.final_of().test_metrics)
    return record.get("choice") if isinstance(record.get("choice"), str) else None
