"""`search.combine_winners`: after an ablation, train the per-knob winners together against the default.

An ablation changes one knob at a time, so it cannot see interactions: the best learning rate
and the best batch size, each found with the other at its default, may not be best together.
Seed 002 combined its per-knob winners by hand and trusted the result; this step trains that
combination with the study's seeds and says, with mean ± std, whether it really beat the default.
The default's numbers are the ablation's own default row (same seeds, so the same training).
"""

from __future__ import annotations

import statistics
from typing import Any

import optuna

from tunelab.config.schema import Experiment
from tunelab.config.space import apply_params, parse_space
from tunelab.config.space_knob import values_equal
from tunelab.data.dataset import Dataset
from tunelab.data.folds import fold_experiments, repeats
from tunelab.errors import ConfigError
from tunelab.runs.layout import RunLayout
from tunelab.runs.outcome import STOPPED_EARLY
from tunelab.runs.records import read_json, write_json_atomic
from tunelab.search.ablation_tables import ablation_default, knob_winners
from tunelab.search.summary_tables import summary_rows
from tunelab.search.trial_run import DatasetCache, reduce_seeds, seeded_experiment
from tunelab.train.trial import run_trial


def check_combine(exp: Experiment) -> None:
    """Refuse combine_winners outside an ablation, before anything runs.

    Raises:
        ConfigError: naming the strategy and what is allowed.
    """
    if exp.search.combine_winners and exp.search.strategy != "ablation":
        raise ConfigError(
            f"combine_winners needs strategy ablation, got {exp.search.strategy}", key="search.combine_winners"
        )


def _stats(values: list[float]) -> dict[str, Any]:
    mean = statistics.fmean(values) if values else None
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"seed_values": values, "mean": mean, "std": std}


def _matching_row(rows: list[dict[str, Any]], point: dict[str, Any]) -> dict[str, Any] | None:
    for row in rows:
        params = row["params_decoded"]
        if params.keys() == point.keys() and all(values_equal(params[k], point[k]) for k in point):
            return row
    return None


def _row_values(row: dict[str, Any] | None) -> list[float]:
    import json

    return [float(v) for v in json.loads(row["seed_values"])] if row and row.get("seed_values") else []


def combine_winners(
    layout: RunLayout, study: optuna.Study, exp: Experiment, dataset: Dataset, exp_id: str,
    data_dir: str | None = None,
) -> dict[str, Any]:
    """Train the combination (unless the ablation already ran it) and record the comparison in
    ablation_tables.json under `combine`; returns that record."""
    import json

    knobs = parse_space(exp)
    metric = exp.search.objective.metric
    maximize = exp.search.objective.resolved_direction() == "maximize"
    rows = summary_rows(study, exp, knobs, layout.root)
    for row in rows:
        row["params_decoded"] = json.loads(row["params"])
    default = ablation_default(exp, knobs)
    combination = {**default, **knob_winners(rows, exp, knobs)}
    changed = {k: v for k, v in combination.items() if not values_equal(v, default[k])}
    default_values = _row_values(_matching_row(rows, default))
    known = _matching_row(rows, combination)
    state: dict[str, Any] = {}
    if known is not None:  # the default itself, or one knob moved: the ablation already trained it
        combo_values = _row_values(known)
    else:
        combo_values, state = _train(layout, exp, combination, DatasetCache(data_dir, (exp, dataset)), exp_id)
    record = {"default": {"params": default, **_stats(default_values)},
              "combination": {"params": combination, **_stats(combo_values), **state},
              "changed": changed, "seeds": repeats(exp), "metric": metric,
              "unit": "fold" if exp.data.cv_folds else "seed",
              "trained": known is None and bool(changed)}
    record["beat_default"] = _beats(record, maximize)
    record["text"] = _text(record)
    path = layout.ablation_tables
    old = read_json(path) if path.exists() else {}
    write_json_atomic(path, {**old, "combine": record})
    return record


def _train(
    layout: RunLayout, exp: Experiment, combination: dict[str, Any], datasets: DatasetCache, exp_id: str
) -> tuple[list[float], dict[str, Any]]:
    """The combination's seeds, one after another; as in the study, a diverged or failed seed makes
    the configuration diverged (no mean), so a lucky seed cannot stand for an unstable setting."""
    configured = apply_params(exp, combination)  # a data.* winner loads its own copy of the data
    fits, folds = [], fold_experiments(configured)  # with data.cv_folds: the same folds as the default
    for i, seed_layout in enumerate(layout.combined_winners.seeds(repeats(exp))):
        seeded = folds[i] if folds else seeded_experiment(configured, i)
        fits.append(run_trial(seeded, datasets.get(seeded), seed_layout, params=combination, exp_id=exp_id))
        if fits[-1].state in STOPPED_EARLY:
            break
    outcome = reduce_seeds(fits, exp.search.objective.metric)
    state = {"state": outcome.state, "reason": outcome.reason, "best_epochs": [r.best_epoch for r in fits]}
    return outcome.seed_values if outcome.value is not None else [], state


def _beats(record: dict[str, Any], maximize: bool) -> bool | None:
    a, b = record["combination"]["mean"], record["default"]["mean"]
    if b is None:
        return None
    if a is None:  # the combination diverged: it did not beat a default that trained
        return False
    return a > b if maximize else a < b


def _fmt(part: dict[str, Any]) -> str:
    if part["mean"] is None:
        return f"no value ({part.get('state', 'failed')}: {part.get('reason') or 'no finished seed'})"
    return f"{part['mean']:.4f} ± {part['std']:.4f}" if len(part["seed_values"]) > 1 else f"{part['mean']:.4f}"


def _text(record: dict[str, Any]) -> str:
    """One paragraph for summary.md and the report."""
    metric, seeds, unit = record["metric"], record["seeds"], record.get("unit", "seed")
    if not record["changed"]:
        default = _fmt(record["default"])
        return f"The default won every knob: the combination of winners is the default ({metric} {default})."
    changes = ", ".join(f"{k}={v}" for k, v in record["changed"].items())
    verdict = {True: "beat the default", False: "did not beat the default", None: "could not be compared"}
    margin = ""
    if record["beat_default"] is not None:
        if record["combination"]["mean"] is None:
            gap = noise = 0.0
        else:
            gap = abs(record["combination"]["mean"] - record["default"]["mean"])
            noise = max(record["combination"]["std"], record["default"]["std"])
        if seeds > 1 and 0 < gap <= noise:
            margin = f" (the gap {gap:.4g} is inside the {unit}s' spread {noise:.4g})"
        elif seeds == 1:
            margin = " (one seed: no spread to judge the gap; set search.seeds to 3 or more)"
    return (f"Winners combined ({changes}): {metric} {_fmt(record['combination'])} vs the default "
            f"{_fmt(record['default'])} over {seeds} {unit}(s); the combination "
            f"{verdict[record['beat_default']]}{margin}.")


def final_choice(layout: RunLayout, winner: optuna.trial.FrozenTrial, maximize: bool) -> dict[str, Any] | None:
    """Which configuration the final model retrains after a combine_winners check, and why.

    The better validation mean of the study's winner (every ablation row, the default included) and
    the combination, when the combination was trained outside the study; a tie keeps the study's
    winner. None when there is no trained combination to weigh (no check, or the combination was
    an ablation row already). The returned record has `source` ("combination" or "study winner"),
    `why` (one sentence), and for the combination its `params` and `best_epochs`.
    """
    try:
        combine = read_json(layout.ablation_tables).get("combine") if layout.ablation_tables.exists() else None
    except (OSError, ValueError):
        return None
    if not combine or not combine.get("trained"):
        return None
    combo, value = combine["combination"], winner.value
    unit = combine.get("unit", "seed")
    metric = combine["metric"]
    if combo["mean"] is None:
        return {"source": "study winner",
                "why": f"the combined winners gave no value ({combo.get('state', 'failed')}): the final model "
                       f"retrains the study's winner, trial #{winner.number}"}
    better = value is None or (combo["mean"] > value if maximize else combo["mean"] < value)
    told = f"{metric} {_fmt(combo)} over {combine['seeds']} {unit}(s) vs trial #{winner.number}'s {value:.4f}"
    if better:
        return {"source": "combination", "params": combo["params"], "best_epochs": combo.get("best_epochs") or [],
                "why": f"the combined winners beat the study's winner ({told}): the final model retrains "
                       "the combination"}
    return {"source": "study winner",
            "why": f"the study's winner was at least as good as the combined winners ({told}): the final "
                   f"model retrains trial #{winner.number}"}
