"""One Optuna trial -> one configuration trained with k seeds into its trial folder."""

from __future__ import annotations

import json
import os
import socket
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna

from tunelab.config.schema import Experiment
from tunelab.config.space import Knob, apply_params, encode_params
from tunelab.data import load_dataset
from tunelab.data.dataset import Dataset
from tunelab.data.folds import fold_experiments, repeats
from tunelab.runs.layout import RunLayout, TrialLayout
from tunelab.runs.naming import trial_name
from tunelab.runs.outcome import STOPPED_EARLY, Outcome
from tunelab.runs.records import read_jsonl
from tunelab.search.selection import tie_attrs
from tunelab.search.trial_writes import write_trial
from tunelab.text.features import model_inputs
from tunelab.train.hooks import FitContext, Hook
from tunelab.train.loop import FitResult
from tunelab.train.trial import run_trial
from tunelab.train.trial_cost import solo_models, trial_cost


def config_key(params: Mapping[str, Any]) -> str:
    """A canonical text for a configuration, so a grid point is recognised across resumes."""
    return json.dumps({k: params[k] for k in sorted(params)}, sort_keys=True, default=str)


class OptunaPruning(Hook):
    """The objective's learning curve for the study and, with a pruner, Optuna's verdict.

    With a pruner every epoch is reported as it ends (the pruner needs it). The rest of the curve
    is read from seed 0's records on disk when the trial ends (`unreported`) and written with the
    trial's other attributes in one transaction: without a pruner all of it. With a pruner and
    `seed0` (the folder whose records are the curve), a resumed attempt first reports the epochs
    trained before its resume, so the pruner judges its later epochs on the whole curve (ASHA's
    rungs, Hyperband's brackets) rather than on a curve that starts mid-way. `group` (shared by
    one configuration's seeds) carries a pruning verdict to the sibling seeds that train beside
    it in a vectorized group.
    """

    name = "optuna_pruning"

    def __init__(
        self, trial: optuna.trial.Trial, key: str, prune: bool = True, group: dict[str, str] | None = None,
        seed0: TrialLayout | None = None,
    ) -> None:
        self.trial, self.key, self.prune, self.seed0 = trial, key, prune, seed0
        self.reported: set[int] = set()
        self.group = group if group is not None else {}

    def on_train_start(self, ctx: FitContext) -> None:
        if not self.prune or self.seed0 is None or ctx.epoch <= 0:
            return
        for epoch, value in sorted(self.unreported(self.seed0).items()):
            if epoch <= ctx.epoch:  # records past the resumed checkpoint are trained again
                self.trial.report(value, epoch)
                self.reported.add(epoch)

    def on_epoch_end(self, ctx: FitContext, record: dict[str, Any]) -> None:
        value = record.get(self.key)
        if not self.prune or value is None or value != value:
            return
        self.trial.report(float(value), record["epoch"])
        self.reported.add(int(record["epoch"]))
        if record["epoch"] < ctx.epochs and self.trial.should_prune():  # its last epoch saves nothing: complete
            reason = f"pruned at epoch {record['epoch']} ({self.key}={value:.4g})"
            self.group["pruned"] = reason
            ctx.request_stop(Outcome.PRUNED.value, reason)

    def unreported(self, seed0: TrialLayout) -> dict[int, float]:
        """The curve in seed 0's metrics.jsonl less the epochs reported live. The records on disk
        hold every epoch of the trial: those a killed earlier attempt trained before this one
        resumed, and those of a finished result a retry reuses without training."""
        curve = {}
        for record in read_jsonl(seed0.metrics_jsonl):
            value, epoch = record.get(self.key), record.get("epoch")
            if epoch is not None and value is not None and value == value and int(epoch) not in self.reported:
                curve[int(epoch)] = float(value)
        return curve


class FollowPruning(Hook):
    """A configuration's other seeds stop when its first seed, the one reporting to the trial, is
    pruned (vectorized groups: the seeds train beside it, and leave the stack with it)."""

    name = "follow_pruning"

    def __init__(self, group: dict[str, str]) -> None:
        self.group = group

    def on_epoch_end(self, ctx: FitContext, record: dict[str, Any]) -> None:
        if "pruned" in self.group:
            ctx.request_stop(Outcome.PRUNED.value, self.group["pruned"])


@dataclass
class TrialOutcome:
    """What one configuration reached over its seeds."""

    state: str  # an Outcome value: complete | pruned | diverged
    value: float | None
    seed_values: list[float] = field(default_factory=list)
    reason: str = ""
    results: list[FitResult] = field(default_factory=list)


def trial_layouts(root: TrialLayout, seeds: int) -> list[TrialLayout]:
    """One seed: the trial folder itself; k seeds: `seed-<i>/` inside it, each a full trial folder."""
    return root.seeds(seeds)


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


@dataclass
class StudyTrials:
    """What every trial of one study run shares: the study, its base experiment and knobs, the run
    folder, the data sets, and the experiment id each trial's params.json records."""

    study: optuna.Study
    base: Experiment
    knobs: list[Knob]
    layout: RunLayout
    datasets: DatasetCache
    exp_id: str


def train_alone(
    trials: StudyTrials,
    trial: optuna.trial.Trial,
    exp: Experiment,
    layout: TrialLayout,
    params: Mapping[str, Any],
    *,
    epoch_hooks: Sequence[Hook] = (),
    on_seed_start: Callable[[int], None] | None = None,
) -> TrialOutcome:
    """One started trial's seeds, one `fit` after another (each resumes from its checkpoints)."""
    base, datasets, exp_id = trials.base, trials.datasets, trials.exp_id
    metric = base.search.objective.metric
    pruning = OptunaPruning(trial, metric, prune=base.search.pruner != "none",
                            seed0=trial_layouts(layout, repeats(base))[0])
    results = []
    folds = fold_experiments(exp)  # data.cv_folds: the folds take the seeds' place
    for i, seed_layout in enumerate(trial_layouts(layout, repeats(base))):
        if on_seed_start is not None:
            on_seed_start(i)
        seeded = folds[i] if folds else seeded_experiment(exp, i)
        hooks: list[Hook] = [pruning, *epoch_hooks] if i == 0 else list(epoch_hooks)
        result = run_trial(
            seeded, datasets.get(seeded), seed_layout, params=params, exp_id=exp_id, hooks=hooks
        )
        results.append(result)
        if result.state in STOPPED_EARLY:
            break
    outcome = reduce_seeds(results, metric)
    seeds = [seeded_experiment(exp, i) for i in range(len(results))]
    data = model_inputs(exp, datasets.get(exp))
    models = solo_models(seeds, data)
    cost = trial_cost(models, data, exp, results, layout, alone=True)
    curve = pruning.unreported(trial_layouts(layout, repeats(base))[0])
    record_outcome(trial.study, trial, outcome, curve, cost)
    return outcome


def seeded_experiment(exp: Experiment, i: int) -> Experiment:
    """Seed repeat `i` of a configuration: the same experiment with train.seed + i."""
    return exp.model_copy(update={"train": exp.train.model_copy(update={"seed": exp.train.seed + i})})


def start_trial(
    trials: StudyTrials, trial: optuna.trial.Trial, params: Mapping[str, Any]
) -> tuple[Experiment, TrialLayout]:
    """The trial's experiment and folder; its folder, configuration and process go to the study
    at once (one write), so a dead worker's trial can be found and retried."""
    study, run = trials.study, trials.layout
    exp = apply_params(trials.base, dict(params))
    by_name = {k.name: params[k.path] for k in trials.knobs if k.path in params and k.kind != "fixed"}
    layout = run.trial(trial.number, trial_name(by_name))
    _adopt_retried_folder(trial, run, layout)
    write_trial(study, trial, {
        "trial_dir": str(layout.root.relative_to(run.root)),
        "config_key": config_key(params),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    })
    return exp, layout


def reduce_seeds(results: Sequence[FitResult], metric: str) -> TrialOutcome:
    """The configuration's verdict from its seeds' fits (in seed order): the first pruned or
    diverged seed decides; otherwise the objective is the mean of the seeds' best values."""
    outcome = TrialOutcome(state=Outcome.COMPLETE.value, value=None)
    for result in results:
        outcome.results.append(result)
        if result.state in STOPPED_EARLY:
            outcome.state, outcome.reason = result.state, result.reason
            break
        value = result.best_record.get(metric)
        if value is None:
            outcome.state, outcome.reason = Outcome.DIVERGED.value, f"no {metric} at the best epoch"
            break
        outcome.seed_values.append(float(value))
    if outcome.state == Outcome.COMPLETE:
        outcome.value = statistics.fmean(outcome.seed_values)
    return outcome


def record_outcome(
    study: optuna.Study,
    trial: optuna.trial.Trial,
    outcome: TrialOutcome,
    curve: Mapping[int, float],
    cost: Mapping[str, Any] | None = None,
) -> None:
    """Every result attribute and the learning curve not reported live (`OptunaPruning.unreported`) in one write."""
    results = outcome.results
    attrs: dict[str, Any] = {
        "outcome": outcome.state,
        "reason": outcome.reason,
        "seed_values": outcome.seed_values,
        "value_std": statistics.stdev(outcome.seed_values) if len(outcome.seed_values) > 1 else 0.0,
        "best_epochs": [r.best_epoch for r in results],
        "epochs_run": [r.epochs_run for r in results],
        "train_time_s": round(sum(r.train_time_s for r in results), 4),
        "peak_mem_mb": max((r.peak_mem_mb for r in results), default=0.0),
        **tie_attrs(r.best_record for r in results),
        **(cost or {}),  # the configuration alone (train/cost.py): time, memory, latency, parameters
    }
    if outcome.state == Outcome.PRUNED and results:
        attrs["pruned_at_epoch"] = results[-1].epochs_run
    write_trial(study, trial, attrs, curve)


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
