"""Advice that tunelab accepts, and findings that do not contradict each other.

A rule's next experiment is a set of `--set` overrides (`Finding.overrides`) or a change of the
search space (`Finding.space`). `valid_overrides` and `valid_space` apply them through the real
config loader (the schema's bounds, integer knobs, the model family's keys), so a rule never
advises what `tunelab tune --set ...` would refuse. `reconcile` then drops the weaker of two
findings that pull one lever (lr, epochs) in opposite directions on the same trials, and keeps
the reason on the finding that stays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from tunelab.diagnose.finding import Finding, severity_rank
from tunelab.errors import ConfigError
from tunelab.runs.view import RunView, TrialView


def _base(run: RunView, trial: TrialView | None) -> Any:
    """The trial's validated experiment (the run's with the trial's searched values), or None."""
    from tunelab.config.load import validate_experiment
    from tunelab.config.space import apply_params

    cache: dict[Any, Any] = run.__dict__.setdefault("_advice_bases", {})
    key = trial.number if trial is not None else None
    if key in cache:
        return cache[key]
    try:
        exp = validate_experiment(run.experiment, source="experiment.yaml")
        if trial is not None and trial.params:
            exp = apply_params(exp, {str(k): v for k, v in trial.params.items() if "." in str(k)})
    except (ConfigError, ValueError, TypeError):
        exp = None
    cache[key] = exp
    return exp


def override_error(run: RunView, trial: TrialView | None, overrides: Mapping[str, Any]) -> str:
    """'' when `--set` of every override is accepted for this trial's experiment, else why not."""
    from tunelab.config.space import apply_params

    exp = _base(run, trial)
    if exp is None:
        return "the run's experiment.yaml does not validate"
    try:
        apply_params(exp, dict(overrides))
    except (ConfigError, ValueError, TypeError) as exc:
        return str(getattr(exc, "message", exc))
    return ""


def valid_overrides(run: RunView, trial: TrialView | None, overrides: Mapping[str, Any]) -> bool:
    return not override_error(run, trial, overrides)


def space_error(run: RunView, space: Mapping[str, Any]) -> str:
    """'' when the search space with `space` merged in parses for this experiment, else why not."""
    from tunelab.config.space import parse_space

    exp = _base(run, None)
    if exp is None:
        return "the run's experiment.yaml does not validate"
    merged = {**exp.search.space, **dict(space)}
    try:
        new = exp.model_copy(update={"search": exp.search.model_copy(update={"space": merged})})
        parse_space(new)
        for path, spec in space.items():  # every end of a widened range must be a value the schema takes
            ends = [spec.get("low"), spec.get("high")] if isinstance(spec, Mapping) else list(spec)
            for value in ends:
                error = override_error(run, None, {path: value})
                if error:
                    return error
    except (ConfigError, ValueError, TypeError) as exc:
        return str(getattr(exc, "message", exc))
    return ""


def set_text(overrides: Mapping[str, Any]) -> str:
    """`--set train.lr=0.01 --set train.epochs=40`: the overrides as tunelab's command-line flags."""
    return " ".join(f"--set {k}={_value(v)}" for k, v in overrides.items())


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "null"
    return str(value).replace(" ", "")


# Rules whose advice moves a lever; grad_norm_range says "lower" or "raise" depending on its title.
LEVERS: dict[str, tuple[str, int]] = {
    "loss_exploding": ("lr", -1),
    "loss_bouncing": ("lr", -1),
    "train_loss_flat": ("lr", +1),
    "overfitting": ("epochs", -1),
    "best_epoch_early": ("epochs", -1),
    "under_trained": ("epochs", +1),
    "lowest_lr_still_learning": ("epochs", +1),
}


def lever(finding: Finding) -> tuple[str, int] | None:
    """(knob, direction) the finding's advice pushes, or None when it pushes none."""
    if finding.rule == "grad_norm_range":
        return ("lr", -1) if "large" in finding.title else ("lr", +1)
    return LEVERS.get(finding.rule)


def _strength(finding: Finding, order: Mapping[str, int]) -> tuple[int, int]:
    return (severity_rank(finding.severity), order.get(finding.rule, len(order)))


def reconcile(findings: Sequence[Finding], rule_order: Sequence[str] = ()) -> list[Finding]:
    """Drop the weaker of two findings that push one lever both ways on a shared trial (or, for two
    trial findings, the same way: one piece of advice per trial and lever).

    The stronger one (higher severity, then earlier in the rule order) stays and carries the
    reason in `reconciled`. Per trial, a finding listing several trials only loses those trials.
    """
    order = {name: i for i, name in enumerate(rule_order)}
    ranked = sorted(findings, key=lambda f: _strength(f, order))
    kept: list[Finding] = []
    for finding in ranked:
        pull = lever(finding)
        if pull is None:
            kept.append(finding)
            continue
        trials = list(finding.trials)
        for i, other in enumerate(kept):
            theirs = lever(other)
            if theirs is None or theirs[0] != pull[0]:
                continue
            if theirs[1] == pull[1] and not (finding.scope == other.scope == "trial"):
                continue  # the same advice at study and trial level says different things: keep both
            shared = [n for n in trials if n in other.trials] if trials and other.trials else trials
            if not shared and (trials or other.trials):
                continue
            where = ", ".join(f"#{n}" for n in shared) or "the study"
            how = "the same" if theirs[1] == pull[1] else "the opposite"
            reason = f"dropped {finding.rule} on {where} (it advised {how} {pull[0]} change): {finding.title}"
            kept[i] = other = replace(other, reconciled=[*other.reconciled, reason])
            trials = [n for n in trials if n not in shared]
            if not trials:
                break
        else:
            kept.append(replace(finding, trials=trials) if trials != list(finding.trials) else finding)
    return kept
