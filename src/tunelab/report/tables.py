"""The report's tables as plain data: summary rows, the best configuration, the final test metrics.

A cell is (text, sort key); `html.py` escapes and renders them.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from tunelab.report.cost_cells import COST_HEADERS, cost_row
from tunelab.report.runinfo import Knob, ReportRun, finite, fmt, position
from tunelab.runs.test_touches import WHY as TEST_TOUCH_WHY
from tunelab.runs.test_touches import read_touches
from tunelab.runs.view import TrialView

Cell = tuple[str, float | str | None]


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[Cell]]
    numbers: list[int] = field(default_factory=list)  # each row's trial number, where rows are trials


def _num(value: Any, digits: str = ".4f") -> Cell:
    return (format(value, digits), float(value)) if finite(value) else ("-", None)


def _value_cell(run: ReportRun, trial: TrialView) -> Cell:
    value = run.value(trial)
    if value is None:
        return "-", None
    seeds = run.seed_values(trial)
    if len(seeds) > 1:
        return f"{value:.4f} ± {statistics.pstdev(seeds):.4f}", value
    return f"{value:.4f}", value


def _seed_stats(trial: TrialView) -> tuple[Cell, Cell, Cell]:
    results = [s.result for s in trial.seeds if s.result]
    epochs = [r.get("best_epoch") for r in results if finite(r.get("best_epoch"))]
    times = [r.get("train_time_s") for r in results if finite(r.get("train_time_s"))]
    mems = [r.get("peak_mem_mb") for r in results if finite(r.get("peak_mem_mb"))]
    epoch_text = ", ".join(str(e) for e in epochs) if epochs else "-"
    return (
        (epoch_text, float(epochs[0]) if epochs else None),
        _num(sum(times), ".2f") if times else ("-", None),
        _num(max(mems), ".0f") if mems else ("-", None),
    )


def _sorted_trials(run: ReportRun) -> list[TrialView]:
    def key(t: TrialView) -> tuple[bool, float]:
        v = run.value(t)
        return v is None, (-(v or 0.0) if run.maximize else (v or 0.0))

    return sorted(run.trials, key=key)


SUMMARY_WRAP = ("trial", "state", "test (final model)")  # the columns that wrap; numbers and values never do


def summary_table(run: ReportRun) -> Table:
    """One row per configuration, best first (like summary.csv): the key columns first (rank, trial,
    objective), then the searched values, then cost; the test metrics, in one wrapping column, only on
    the final model's row (summary.csv keeps one column each)."""
    final = run.view.final
    test_keys = [k for k in final if k.startswith("test_") and not k.endswith("_std")]
    # the seed count is the page's heading line (`N seed(s) per configuration`), not a column
    headers = ["rank", "trial", run.metric, *[k.name for k in run.knobs], "best epoch", *COST_HEADERS, "state"]
    headers += ["test (final model)"] if test_keys else []
    rows, numbers = [], []
    for rank, t in enumerate(_sorted_trials(run), start=1):
        params = [(fmt(t.params.get(k.path, "-")), _knob_sort(k, t.params.get(k.path))) for k in run.knobs]
        is_final = final.get("trial_number") == t.number
        tests = [", ".join(f"{k.removeprefix('test_')} {fmt(final.get(k))}" for k in test_keys) if is_final else ""]
        tests = [(tests[0], tests[0] or None)] if test_keys else []
        state = f"{t.state}: {t.reason}" if t.reason else t.state
        name = t.name if t.name.startswith(f"{t.number}-") else f"#{t.number} {t.name}"
        rows.append([(str(rank), float(rank)), (name, float(t.number)), _value_cell(run, t),
                     *params, _seed_stats(t)[0], *cost_row(t),
                     (state, t.state), *tests])
        numbers.append(t.number)
    return Table(headers, rows, numbers)


def _knob_sort(knob: Knob, value: Any) -> float | str | None:
    """A number sorts by value; a category by its place in the knob's natural order ([64] before [128])."""
    if value is None:
        return None
    if finite(value):
        return float(value)
    place = position(knob, value)
    return place if place is not None else fmt(value)


def best_table(run: ReportRun) -> Table | None:
    """The winning configuration: every searched value (full key path), its objective and folder."""
    best = run.best()
    if best is None:
        return None
    rows: list[list[Cell]] = [[("trial", None), (f"#{best.number} ({best.name})", None)]]
    for path, value in best.params.items():
        rows.append([(path, None), (fmt(value), None)])
    text, _ = _value_cell(run, best)
    direction = "maximize" if run.maximize else "minimize"
    rows.append([(f"{run.metric} ({direction})", None), (text, None)])
    epochs, _, _ = _seed_stats(best)
    rows.append([("best epoch", None), epochs])
    rows.append([("state", None), (best.state, None)])
    return Table(["", "value"], rows)


def final_table(run: ReportRun) -> Table | None:
    """final/test_metrics.json: the winner retrained on train+val, scored once on test."""
    final = run.view.final
    if not final:
        return None
    rows = [[(k, None), (fmt(v), None)] for k, v in final.items() if k.startswith("test_")]
    for key in ("trial_number", "source", "choice", "epochs", "seeds", "rows_trained", "rows_tested", "rule"):
        if key in final:
            rows.append([(key, None), (fmt(final[key]), None)])
    params = final.get("params") or {}
    rows += [[(f"params: {k}", None), (fmt(v), None)] for k, v in params.items()]
    touches = read_touches(run.view.layout)["count"]
    if touches:  # runs/test_touches.py: every scoring on test, winner or runner-up
        rows.append([("times test was scored", None), (f"{touches}. {TEST_TOUCH_WHY}", None)])
    return Table(["", "value"], rows)


def identity_table(run: ReportRun) -> Table | None:
    """Experiment id, code and data versions, as recorded with the best (or first) trial."""
    trial = run.best() or (run.trials[0] if run.trials else None)
    ident = trial.first.result.get("identity", {}) if trial and trial.first else {}
    if not ident:
        return None
    rows = [[(k, None), (fmt(v), None)] for k, v in ident.items() if k != "versions"]
    rows += [[(f"version: {k}", None), (fmt(v), None)] for k, v in (ident.get("versions") or {}).items()]
    return Table(["", "value"], rows)
