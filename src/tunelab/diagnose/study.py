"""Rules over a whole study (optimization_history.json + search.space): seeds, edges, failures, budget."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping
from itertools import pairwise
from typing import Any

from tunelab.config.space_knob import Knob
from tunelab.diagnose.advice import space_error
from tunelab.diagnose.finding import Finding
from tunelab.diagnose.knobs import dead_paths
from tunelab.diagnose.readings import (
    SAMPLER_STRATEGIES,
    describe,
    fmt,
    knob_numbers,
    num,
    searched_knobs,
    short_names,
)
from tunelab.diagnose.thresholds import Thresholds
from tunelab.runs.outcome import COUNTED, Outcome, outcome_of
from tunelab.runs.view import RunView


def _history_trials(run: RunView) -> list[dict[str, Any]]:
    trials = run.history.get("trials", []) if isinstance(run.history, Mapping) else []
    return [t for t in trials if isinstance(t, Mapping) and isinstance(t.get("number"), int)]


def _completed(run: RunView) -> list[dict[str, Any]]:
    """Complete trials with a finite value, in trial-number order."""
    out = []
    for t in _history_trials(run):
        value = num(t.get("value"))
        if outcome_of(t) == Outcome.COMPLETE and value is not None and math.isfinite(value):
            out.append(t)
    return sorted(out, key=lambda t: t["number"])


def _maximize(run: RunView) -> bool:
    direction = run.history.get("direction") if isinstance(run.history, Mapping) else None
    return (direction or run.objective[1]) == "maximize"


def seed_spread(run: RunView, th: Thresholds) -> list[Finding]:
    """The winner's margin over the runner-up is smaller than the spread between seeds."""
    done = [t for t in _completed(run) if len(t.get("seed_values") or []) >= 2]
    if len(done) < 2:
        return []
    done.sort(key=lambda t: float(t["value"]), reverse=_maximize(run))
    first, second = done[0], done[1]
    margin = abs(float(first["value"]) - float(second["value"]))
    stds = {t["number"]: statistics.stdev(float(v) for v in t["seed_values"]) for t in (first, second)}
    noise = max(stds.values())
    if noise <= th.seed_spread_ratio * margin:
        return []
    metric = run.objective[0]
    seeds = len(first["seed_values"])
    return [
        Finding(
            rule="seed_spread",
            severity="warning",
            scope="study",
            trials=[first["number"], second["number"]],
            title="results change more by seed than between configurations",
            evidence=(
                f"winner #{first['number']} {metric}={fmt(float(first['value']))} ± {fmt(stds[first['number']])} "
                f"beats #{second['number']} ({fmt(float(second['value']))} ± {fmt(stds[second['number']])}) by "
                f"{fmt(margin)}, less than the seed std {fmt(noise)} ({seeds} seeds)"
            ),
            next_experiment=(
                f"rerun the top configurations with more seeds (search.seeds={max(5, seeds + 2)}) and compare "
                "mean ± std before picking"
            ),
        )
    ]


def _edge_side(knob: Knob, best: float, th: Thresholds) -> str:
    """'low', 'high' or '' for where `best` sits in the knob's searched values or range."""
    if knob.is_range:
        low, high = float(knob.low), float(knob.high)  # type: ignore[arg-type]
        if high <= low:
            return ""
        if knob.log and low > 0 and best > 0:
            position = (math.log(best) - math.log(low)) / (math.log(high) - math.log(low))
        else:
            position = (best - low) / (high - low)
        return "low" if position <= th.edge_frac else "high" if position >= 1 - th.edge_frac else ""
    values = knob_numbers(knob)
    if len(values) < th.edge_min_values:
        return ""
    return "low" if math.isclose(best, values[0]) else "high" if math.isclose(best, values[-1]) else ""


def _beyond(knob: Knob, side: str) -> float | int:
    """A value one step past the edge, for the next experiment (an integer for an integer knob)."""
    if knob.is_range:
        low, high = float(knob.low), float(knob.high)  # type: ignore[arg-type]
        integer = isinstance(knob.low, int) and isinstance(knob.high, int)
        if knob.log:
            nxt = low / 10 if side == "low" else high * 10
        else:
            span = high - low
            nxt = low - span / 2 if side == "low" else high + span / 2
        if side == "low" and low > 0 >= nxt:  # a positive knob stays positive: halve instead
            nxt = low / 2
        return round(nxt) if integer else float(f"{nxt:.4g}")
    values = knob_numbers(knob)
    a, b = (values[0], values[1]) if side == "low" else (values[-1], values[-2])
    ratios = [hi / lo for lo, hi in pairwise(values)] if values[0] > 0 else []
    geometric = bool(ratios) and min(ratios) >= 1.5 and max(ratios) / min(ratios) < 1.5
    if geometric or (values[0] > 0 and values[-1] / values[0] >= 10):  # 32, 64, 128 or 1e-3, 1e-2: keep the ratio
        nxt = a * (a / b)
    else:
        nxt = a + (a - b)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in knob.values):
        return round(nxt)
    return float(f"{nxt:.4g}")


def _widened(knob: Knob, side: str, beyond: float | int) -> Any:
    """The knob's search.space entry with `beyond` included."""
    if knob.is_range:
        low, high = (beyond, knob.high) if side == "low" else (knob.low, beyond)
        spec: dict[str, Any] = {"low": low, "high": high}
        if knob.log:
            spec["log"] = True
        return spec
    values = list(knob.values)
    return [beyond, *values] if side == "low" else [*values, beyond]


def edge_knobs(run: RunView, th: Thresholds) -> list[tuple[str, str, float]]:
    """(key path, side, best value) of every numeric knob whose best value sits on an edge."""
    best_params = run.history.get("best_params") if isinstance(run.history, Mapping) else None
    if not isinstance(best_params, Mapping):
        return []
    out = []
    for knob in searched_knobs(run):
        best = num(best_params.get(knob.path))
        if best is None or isinstance(best_params.get(knob.path), bool):
            continue
        side = _edge_side(knob, best, th)
        if side == "low" and best == 0:
            continue  # zero is the natural floor of dropout, weight decay, momentum: nothing to widen
        if side:
            out.append((knob.path, side, best))
    return out


def best_on_edge(run: RunView, th: Thresholds) -> list[Finding]:
    """The best value of a numeric knob is the smallest or largest value searched: widen the range.

    Silent when the winner came out of a large tie (its position is arbitrary) and when one step
    past the edge is a value tunelab refuses (0 accumulation steps, a negative multiplier, dropout
    past 1): that edge is the knob's natural bound.
    """
    selection = run.history.get("selection") if isinstance(run.history, Mapping) else None
    if isinstance(selection, Mapping) and len(selection.get("tied") or []) > th.tie_max:
        return []
    knobs = {k.path: k for k in searched_knobs(run)}
    names = short_names(list(knobs))
    best_trial = run.history.get("best_trial")
    findings = []
    dead = dead_paths(run)  # the best value of a knob nothing reads is arbitrary
    for path, side, best in edge_knobs(run, th):
        if path in dead:
            continue
        knob, name = knobs[path], names[path]
        beyond = _beyond(knob, side)
        if math.isclose(float(beyond), best) or space_error(run, {path: _widened(knob, side, beyond)}):
            continue
        word = "smallest" if side == "low" else "largest"
        space = {path: _widened(knob, side, beyond)}
        findings.append(
            Finding(
                rule="best_on_edge",
                severity="warning",
                scope="study",
                trials=[best_trial] if isinstance(best_trial, int) else [],
                title=f"best {name} sits on the edge of the searched range",
                evidence=f"best {name}={fmt(best)} is the {word} value searched ({name} in {describe(knob)})",
                next_experiment=(
                    f"widen {path} {'below' if side == 'low' else 'beyond'} {fmt(best)} "
                    f"(e.g. include {fmt(beyond)}) and search again: search.space.{path}: {json.dumps(space[path])}"
                ),
                space=space,
            )
        )
    return findings


def failed_share(run: RunView, th: Thresholds) -> list[Finding]:
    """A large share of trials diverged or were pruned: narrow the range to where trials finish."""
    finished = [t for t in _history_trials(run) if outcome_of(t) in COUNTED]
    diverged = [t for t in finished if outcome_of(t) == Outcome.DIVERGED]
    pruned = [t for t in finished if outcome_of(t) == Outcome.PRUNED]
    if not finished or (len(diverged) + len(pruned)) / len(finished) <= th.failed_share_max:
        return []
    bad = diverged + pruned
    share = len(bad) / len(finished)
    complete = [t for t in finished if outcome_of(t) == Outcome.COMPLETE]
    hints = []
    names = short_names([k.path for k in searched_knobs(run)])
    for knob in searched_knobs(run):
        seen = [num((t.get("params") or {}).get(knob.path)) for t in complete]
        seen_f = sorted(v for v in seen if v is not None)
        failed = [num((t.get("params") or {}).get(knob.path)) for t in bad]
        failed_f = [v for v in failed if v is not None]
        if seen_f and failed_f and any(v < seen_f[0] or v > seen_f[-1] for v in failed_f):
            hints.append(f"{names[knob.path]} to {fmt(seen_f[0])}..{fmt(seen_f[-1])}")
    where = f"narrow {', '.join(hints)} (where the finished trials lie)" if hints else "narrow the searched ranges"
    pruner = run.experiment.get("search", {}).get("pruner", "none")
    if pruned and pruner not in (None, "none"):
        where += f", or make the {pruner} pruner less aggressive"
    numbers = [t["number"] for t in sorted(bad, key=lambda t: t["number"])]
    return [
        Finding(
            rule="failed_share",
            severity="warning",
            scope="study",
            trials=numbers,
            title="many trials diverged or were pruned",
            evidence=(
                f"{len(bad)} of {len(finished)} trials ({share:.0%} > {th.failed_share_max:.0%}) "
                f"diverged ({len(diverged)}) or were pruned ({len(pruned)})"
            ),
            next_experiment=where,
        )
    ]


def still_improving(run: RunView, th: Thresholds) -> list[Finding]:
    """A sampler study found its best in the last trials and was still gaining: raise the budget."""
    if run.strategy not in SAMPLER_STRATEGIES:
        return []
    trials = _history_trials(run)
    n = len(trials)
    done = _completed(run)
    if n < th.improving_min_trials or not done:
        return []
    window = max(1, math.ceil(th.improving_window * n))
    start = max(t["number"] for t in trials) - window + 1
    before = [float(t["value"]) for t in done if t["number"] < start]
    inside = [t for t in done if t["number"] >= start]
    if not before or not inside:
        return []
    maximize = _maximize(run)
    best_before = max(before) if maximize else min(before)
    best_in = (max if maximize else min)(inside, key=lambda t: float(t["value"]))
    gain = (float(best_in["value"]) - best_before) * (1 if maximize else -1)
    rel = gain / abs(best_before) if best_before else math.inf if gain > 0 else 0.0
    if rel <= th.improving_rel:
        return []
    metric = run.objective[0]
    budget = 2 * n
    return [
        Finding(
            rule="still_improving",
            severity="warning",
            scope="study",
            trials=[best_in["number"]],
            title="the study was still improving at the end",
            evidence=(
                f"best {metric} went {fmt(best_before)}→{fmt(float(best_in['value']))} ({rel:.1%} better) at trial "
                f"#{best_in['number']}, within the last {window} of {n} trials"
            ),
            next_experiment=f"raise the budget to {budget} trials (tunelab tune ... --n-trials {budget} resumes it)",
        )
    ]


def too_few_trials(run: RunView, th: Thresholds) -> list[Finding]:
    """A sampler study with fewer than `trials_per_knob` trials per searched knob."""
    if run.strategy not in SAMPLER_STRATEGIES or not run.history:
        return []
    knobs = searched_knobs(run)
    if not knobs:
        return []
    n = len(_history_trials(run)) or int(run.history.get("n_trials") or 0)
    need = th.trials_per_knob * len(knobs)
    if n >= need:
        return []
    names = ", ".join(short_names([k.path for k in knobs]).values())
    return [
        Finding(
            rule="too_few_trials",
            severity="warning",
            scope="study",
            trials=[],
            title="too few trials for the size of the space",
            evidence=(
                f"{n} trials for {len(knobs)} searched knobs ({names}): "
                f"fewer than {need} ({th.trials_per_knob} per knob)"
            ),
            next_experiment=f"raise the budget to {need} trials (--n-trials {need}) or search fewer knobs at once",
        )
    ]
