"""One Optuna trial -> one configuration trained with k seeds into its trial folder."""

from __future__ import annotations

import json
import os
import socket
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from tunelab.config.schema import Experiment
from tunelab.config.space import Knob, apply_params, encode_params
from tunelab.data import load_dataset
from tunelab.data.dataset import Dataset
from tunelab.runs.layout import RunLayout, TrialLayout
from tunelab.train.hooks import FitContext, Hook
from tunelab.train.loop import FitResult
from tunelab.trial import run_trial, short_name


def config_key(params: Mapping[str, Any]) -> str:
    """A canonical text for a configuration, so a grid point is recognised across resumes."""
    return json.dumps({k: params[k] for k in sorted(params)}, sort_keys=True, default=str)


class OptunaPruning(Hook):
    """Reports the objective every epoch (learning curves in the study) and, with a pruner,
    stops the fit when Optuna says so."""

    name = "optuna_pruning"

    def __init__(self, trial: optuna.trial.Trial, key: str, prune: bool = True) -> None:
        self.trial, self.key, self.prune = trial, key, prune

    def on_epoch_end(self, ctx: FitContext, record: dict[str, Any]) -> None:
        value = record.get(self.key)
        if value is None or value != value:
            return
        self.trial.report(float(value), record["epoch"])
        if self.prune and self.trial.should_prune():
            ctx.request_stop("pruned", f"pruned at epoch {record['epoch']} ({self.key}={value:.4g})")


@dataclass
class TrialOutcome:
    """What one configuration reached over its seeds."""

    state: str  # complete | pruned | diverged
    value: float | None
    seed_values: list[float] = field(default_factory=list)
    reason: str = ""
    results: list[FitResult] = field(default_factory=list)


def trial_layouts(root: TrialLayout, seeds: int) -> list[TrialLayout]:
    """One seed: the trial folder itself; k seeds: `seed-<i>/` inside it, each a full trial folder."""
    if seeds == 1:
        return [root]
    return [TrialLayout(root.root / f"seed-{i}") for i in range(seeds)]


class DatasetCache:
    """Loads a data section once; knobs under `data.` get their own cached copy."""

    def __init__(self, data_dir: str | None, first: tuple[Experiment, Dataset]) -> None:
        self.data_dir = data_dir
        self._cache = {self._key(first[0]): first[1]}

    @staticmethod
    def _key(exp: Experiment) -> str:
        return json.dumps(exp.model_dump(mode="json", include={"data", "task"}), sort_keys=True)

    def get(self, exp: Experiment) -> Dataset:
        key = self._key(exp)
        if key not in self._cache:
            self._cache[key] = load_dataset(exp.data, exp.task, data_dir=self.data_dir)
        return self._cache[key]


def run_configuration(
    trial: optuna.trial.Trial,
    params: Mapping[str, Any],
    knobs: Sequence[Knob],
    base: Experiment,
    run: RunLayout,
    datasets: DatasetCache,
    exp_id: str,
    *,
    epoch_hooks: Sequence[Hook] = (),
    on_seed_start: Callable[[int], None] | None = None,
) -> TrialOutcome:
    """Train the configuration with every seed and reduce to the objective (the mean over seeds)."""
    exp = apply_params(base, dict(params))
    by_name = {k.name: params[k.path] for k in knobs if k.path in params and k.kind != "fixed"}
    layout = run.trial(trial.number, short_name(by_name))
    _adopt_retried_folder(trial, run, layout)
    trial.set_user_attr("trial_dir", str(layout.root.relative_to(run.root)))
    trial.set_user_attr("config_key", config_key(params))
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())
    metric = base.search.objective.metric
    seeds = base.search.seeds
    outcome = TrialOutcome(state="complete", value=None)
    for i, seed_layout in enumerate(trial_layouts(layout, seeds)):
        if on_seed_start is not None:
            on_seed_start(i)
        seeded = exp.model_copy(update={"train": exp.train.model_copy(update={"seed": exp.train.seed + i})})
        hooks: list[Hook] = list(epoch_hooks)
        if i == 0:
            hooks.insert(0, OptunaPruning(trial, metric, prune=base.search.pruner != "none"))
        result = run_trial(
            seeded, datasets.get(seeded), seed_layout, params=params, exp_id=exp_id, hooks=hooks
        )
        outcome.results.append(result)
        if result.state in ("diverged", "pruned"):
            outcome.state, outcome.reason = result.state, result.reason
            break
        value = result.best_record.get(metric)
        if value is None:
            outcome.state, outcome.reason = "diverged", f"no {metric} at the best epoch"
            break
        outcome.seed_values.append(float(value))
    if outcome.state == "complete":
        outcome.value = statistics.fmean(outcome.seed_values)
    _record(trial, outcome)
    return outcome


def _record(trial: optuna.trial.Trial, outcome: TrialOutcome) -> None:
    results = outcome.results
    trial.set_user_attr("outcome", outcome.state)
    trial.set_user_attr("reason", outcome.reason)
    trial.set_user_attr("seed_values", outcome.seed_values)
    trial.set_user_attr(
        "value_std", statistics.stdev(outcome.seed_values) if len(outcome.seed_values) > 1 else 0.0
    )
    trial.set_user_attr("best_epochs", [r.best_epoch for r in results])
    trial.set_user_attr("epochs_run", [r.epochs_run for r in results])
    trial.set_user_attr("train_time_s", round(sum(r.train_time_s for r in results), 4))
    trial.set_user_attr("peak_mem_mb", max((r.peak_mem_mb for r in results), default=0.0))
    if outcome.state == "pruned" and results:
        trial.set_user_attr("pruned_at_epoch", results[-1].epochs_run)


def _adopt_retried_folder(trial: optuna.trial.Trial, run: RunLayout, layout: TrialLayout) -> None:
    """A retry of a crashed trial continues in the crashed trial's folder (its checkpoints)."""
    old = trial.user_attrs.get("retry_dir")
    if not old:
        return
    old_path = run.root / old
    if old_path.is_dir() and not layout.root.exists():
        old_path.rename(layout.root)


def encoded_choices(knobs: Sequence[Knob], points: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Per knob name, every encoded value the explicit points use (the categorical choices)."""
    choices: dict[str, list[Any]] = {}
    for point in points:
        for name, value in encode_params(knobs, point).items():
            bucket = choices.setdefault(name, [])
            if value not in bucket:
                bucket.append(value)
    return choices


def relative_dir(path: Path, root: Path) -> str:
    return str(path.relative_to(root))
