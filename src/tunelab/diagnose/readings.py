"""Small readers the rules share: numbers from records (NaN/inf as logged), knob names, a trial's settings.

Built on `RunView`, which stays the only reader of the run folder itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tunelab.config.space_knob import Knob, short_names
from tunelab.config.vocabulary import SAMPLER_STRATEGIES, higher_is_better
from tunelab.diagnose.finding import Finding
from tunelab.runs.records import read_number
from tunelab.runs.view import RunView, SeedRun, TrialView

# re-exported for the rules: strategies an Optuna sampler draws, and the one short-name rule of knobs
__all__ = ["SAMPLER_STRATEGIES", "short_names"]


def num(value: Any) -> float | None:
    """A logged number as float: NaN is written as null and infinities as strings; None when absent."""
    number = read_number(value)
    return None if number is None else float(number)


def curve(run: SeedRun, key: str) -> list[tuple[int, float]]:
    """(epoch, value) of one record key; a key logged as null (NaN) reads as NaN, a missing key is skipped."""
    points = []
    for record in run.records:
        if not isinstance(record, Mapping) or key not in record or not isinstance(record.get("epoch"), int):
            continue
        value = num(record[key])
        points.append((record["epoch"], math.nan if value is None else value))
    return points


def finite(points: Sequence[tuple[int, float]]) -> bool:
    return all(math.isfinite(v) for _, v in points)


def fmt(value: Any) -> str:
    """A number for evidence text: 4 significant digits."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def is_maximized(metric: str) -> bool:
    """Scores (R², accuracy, F1, ROC-AUC, ...) go up; losses and errors go down."""
    return higher_is_better(metric)


def searched_knobs(run: RunView) -> list[Knob]:
    """Knobs the study changed: lists with two or more values and ranges; fixed values are left out."""
    return [k for k in run.knobs if k.kind != "fixed"]


def knob_numbers(knob: Knob) -> list[float]:
    """The distinct numeric values of a list knob, sorted (empty when any value is not a number)."""
    values = knob.values or ()
    if any(num(v) is None for v in values):
        return []
    return sorted({float(v) for v in values})


def describe(knob: Knob) -> str:
    """What the study searched, for evidence text: `0.001..0.1 (log)` or `[16, 32, 64]`."""
    if knob.is_range:
        return f"{fmt(knob.low)}..{fmt(knob.high)}" + (" (log)" if knob.log else "")
    return "[" + ", ".join(fmt(v) for v in knob.values or ()) + "]"


def fixed_space_values(run: RunView) -> dict[str, Any]:
    """Knobs `search.space` pins to one value for every trial."""
    return {k.path: k.values[0] for k in run.knobs if k.kind == "fixed" and k.values}


def setting(run: RunView, trial: TrialView | None, path: str, default: Any = None) -> Any:
    """A setting of the trial: its searched value, its configuration (params.json), else the experiment's."""
    if trial is not None and isinstance(trial.params, Mapping) and trial.params.get(path) is not None:
        return trial.params[path]
    sources: list[Any] = []
    if trial is not None and trial.first is not None:
        sources.append(trial.first.params.get("config", {}))
    sources.append(run.experiment)
    for source in sources:
        node = source
        for part in path.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is not None:
            return node
    return default


def monitor_of(run: RunView, seed: SeedRun) -> str:
    """The record key the trial picked its best epoch by."""
    monitor = seed.result.get("monitor") if isinstance(seed.result, Mapping) else None
    return str(monitor or run.experiment.get("train", {}).get("monitor") or "val_loss")


def best_record(run: RunView, seed: SeedRun) -> dict[str, Any]:
    """The record of the trial's best epoch: result.json's, else the last record flagged is_best."""
    record = seed.result.get("best_record") if isinstance(seed.result, Mapping) else None
    if isinstance(record, Mapping) and record:
        return dict(record)
    flagged = [r for r in seed.records if isinstance(r, Mapping) and r.get("is_best")]
    return dict(flagged[-1]) if flagged else {}


def per_trial(
    run: RunView, check: Callable[[TrialView, SeedRun], Finding | None]
) -> list[Finding]:
    """Run `check` on each seed run of each trial; keep the first finding per trial, naming the seed."""
    findings = []
    for trial in run.trials:
        for i, seed in enumerate(trial.seeds):
            found = check(trial, seed)
            if found is None:
                continue
            if len(trial.seeds) > 1:
                found = _with_prefix(found, f"seed {i + 1} of {len(trial.seeds)}: ")
            findings.append(found)
            break
    return findings


def _with_prefix(found: Finding, prefix: str) -> Finding:
    from dataclasses import replace

    return replace(found, evidence=prefix + found.evidence)


def near_best(run: RunView, trial: TrialView, rel: float) -> bool:
    """The trial's objective is within `rel` (relative) of the study's best: a good trial, not a sick one."""
    best = num(run.history.get("best_value")) if isinstance(run.history, Mapping) else None
    value = num(trial.value)
    if best is None or value is None or not math.isfinite(best) or not math.isfinite(value):
        return False
    return abs(value - best) <= rel * max(abs(best), 1e-12)


def converged(points: Sequence[tuple[int, float]], frac: float) -> bool:
    """The loss ended below `frac` of its first value: near its floor, where tiny gradients are normal."""
    if len(points) < 2 or not finite(points) or points[0][1] <= 0:
        return False
    return points[-1][1] < frac * points[0][1]


def scaled(value: Any, factor: float) -> float | None:
    """A numeric setting times `factor`, rounded to 3 significant digits (for advice)."""
    number = num(value)
    return float(f"{number * factor:.3g}") if number is not None else None
