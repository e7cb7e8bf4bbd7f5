"""Rules on what the study could tell apart: knobs with no effect, and objectives that tie.

A searched knob the configuration never reads (momentum with adam, step_size without the step
scheduler) spends trials on nothing; so does `head_lr_multiplier` with a frozen encoder, where the
head is all that trains and `train.lr` already scales it. A tie of many trials on the objective
(val_accuracy 1.0 on a few dozen validation rows) means the winner came from the tie-break, not
from the objective: a stricter objective or a larger validation split would rank them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from tunelab.diagnose.advice import override_error, set_text, space_error
from tunelab.diagnose.finding import Finding
from tunelab.diagnose.readings import describe, fmt, is_maximized, num, searched_knobs, setting
from tunelab.diagnose.thresholds import Thresholds
from tunelab.runs.outcome import COUNTED
from tunelab.runs.view import RunView, TrialView

Getter = Callable[[str], Any]

# knob -> (test of the trial's settings that says the knob is read, why it is not read otherwise)
USED_WHEN: dict[str, tuple[Callable[[Getter], bool], str]] = {
    "train.momentum": (lambda g: g("train.optimizer") in ("sgd", "rmsprop"), "only sgd and rmsprop use momentum"),
    "train.betas": (lambda g: g("train.optimizer") in ("adam", "adamw"), "only adam and adamw use betas"),
    "train.alpha": (lambda g: g("train.optimizer") == "rmsprop", "only rmsprop uses alpha"),
    "train.step_size": (lambda g: g("train.scheduler") == "step", "only the step scheduler uses step_size"),
    "train.gamma": (lambda g: g("train.scheduler") in ("step", "plateau"), "only step and plateau use gamma"),
    "train.plateau_patience": (lambda g: g("train.scheduler") == "plateau", "only the plateau scheduler uses it"),
    "train.huber_delta": (lambda g: g("train.loss") == "huber", "only the huber loss uses huber_delta"),
    "train.early_stopping.min_delta": (
        lambda g: g("train.early_stopping.patience") is not None, "min_delta needs early stopping (patience)"
    ),
    "model.head_lr_multiplier": (
        lambda g: g("model.family") != "encoder_head" or g("model.freeze_encoder") is False,
        "with a frozen encoder only the head trains, so head_lr_multiplier scales the same parameters as train.lr",
    ),
}


def dead_paths(run: RunView) -> dict[str, str]:
    """Searched key paths that no finished trial's configuration reads -> why not."""
    trials = [t for t in run.trials if t.state in COUNTED]
    out = {}
    for knob in searched_knobs(run) if trials else []:
        rule = USED_WHEN.get(knob.path)
        if rule is not None and not any(rule[0](_getter(run, t)) for t in trials):
            out[knob.path] = rule[1]
    return out


def dead_knob(run: RunView, th: Thresholds) -> list[Finding]:
    """A searched knob that no trial's configuration reads: fix it and spend the trials elsewhere."""
    findings = []
    dead = dead_paths(run)
    trials = [t for t in run.trials if t.state in COUNTED]
    for knob in searched_knobs(run):
        if knob.path not in dead:
            continue
        why = dead[knob.path]
        default = setting(run, None, knob.path)
        fixed = default if default is not None else (knob.values[0] if knob.values else knob.low)
        space = {knob.path: [fixed]}
        if space_error(run, space):
            continue
        findings.append(
            Finding(
                rule="dead_knob",
                severity="warning",
                scope="study",
                trials=[],
                title=f"{knob.path} has no effect in this study",
                evidence=f"{knob.path} was searched ({describe(knob)}) but {why}, in all {len(trials)} trials",
                next_experiment=(
                    f"fix it (search.space.{knob.path}: {json.dumps(space[knob.path])}) and spend the trials on a "
                    "knob that is read"
                ),
                space=space,
            )
        )
    return findings


def _getter(run: RunView, trial: TrialView) -> Getter:
    return lambda path: setting(run, trial, path)


def objective_ties(run: RunView, th: Thresholds) -> list[Finding]:
    """More than `tie_max` trials tie with the winner on the objective: the objective cannot rank them."""
    history = run.history if isinstance(run.history, Mapping) else {}
    selection = history.get("selection")
    tied = list(selection.get("tied") or []) if isinstance(selection, Mapping) else []
    if len(tied) <= th.tie_max:
        return []
    metric = run.objective[0]
    value = num(history.get("best_value"))
    overrides: dict[str, Any] = {}
    if metric != "val_loss" and not override_error(run, None, {"search.objective.metric": "val_loss"}):
        overrides = {"search.objective.metric": "val_loss"}
    val_fraction = num(setting(run, None, "data.val_fraction"))
    bigger = ""
    if val_fraction is not None and val_fraction < 0.4:
        proposed = round(min(0.4, val_fraction * 2), 2)
        if not override_error(run, None, {"data.val_fraction": proposed}):
            bigger = f", or more validation rows (--set data.val_fraction={proposed:g})"
    stricter = f"a stricter objective ({set_text(overrides)})" if overrides else "a stricter objective"
    score = " (a score on few validation rows moves in coarse steps)" if is_maximized(metric) else ""
    shown = ", ".join(f"#{n}" for n in tied[:8]) + (", ..." if len(tied) > 8 else "")
    return [
        Finding(
            rule="objective_ties",
            severity="warning",
            scope="study",
            trials=tied,
            title=f"{len(tied)} trials tie on {metric}: the validation split cannot rank them",
            evidence=(
                f"{len(tied)} trials ({shown}) reach {metric}={fmt(value)} within ±{fmt(selection.get('tolerance'))}"
                f"{score}; the winner #{tied[0]} was picked by the tie-break ({selection.get('tie_break', '')})"
            ),
            next_experiment=f"use {stricter}{bigger}",
            overrides=overrides,
        )
    ]
