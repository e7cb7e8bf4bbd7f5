"""`tunelab continue RUN --best K --epochs N`: the study's best K trials, each trained N epochs further.

Each one goes into its own new folder `continued/<trial folder>-to<E+N>ep/` linked to its parent
(app/continuation.py); the study, its trial folders, summary and final model are left as they are.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from tunelab.app.continuation import continue_trial, parent_epoch
from tunelab.app.final import load_study
from tunelab.app.prepare import prepare
from tunelab.config.space import apply_params
from tunelab.data.folds import fold_experiments, repeats
from tunelab.errors import ConfigError, RunFolderError
from tunelab.runs.claim import load_run_experiment
from tunelab.runs.layout import RunLayout, TrialLayout
from tunelab.runs.lock import hold, writer
from tunelab.runs.records import read_json
from tunelab.search.trial_run import DatasetCache, seeded_experiment
from tunelab.train.hooks import Hook
from tunelab.train.loop import FitResult


@dataclass(frozen=True)
class Continued:
    """One continued trial: which, from what value, where it went, and each seed's fit."""

    number: int
    metric: str
    value: float
    parent: Path
    trial_dir: Path
    results: list[FitResult]
    runs: str = "seeds"  # what the results are: seeds, or folds (data.cv_folds)

    def to_dict(self) -> dict[str, Any]:
        """What `tunelab continue --json` prints for this trial: the parent's value, each seed's
        new best value and epoch, and where it went."""
        return {"trial": self.number, "metric": self.metric, "value_before": self.value,
                "values": [r.best_record.get(self.metric) for r in self.results],
                "best_epochs": [r.best_epoch for r in self.results],
                "epochs_run": [r.epochs_run for r in self.results], "states": [r.state for r in self.results],
                "parent_dir": str(self.parent), "trial_dir": str(self.trial_dir)}

    def line(self) -> str:
        """`trial 3 val_accuracy 0.944 -> 0.951 (best epoch 27 of 30) in RUN/continued/3-...-to30ep`"""
        new = [r.best_record.get(self.metric) for r in self.results]
        shown = f"{statistics.fmean(new):.4g}" if all(isinstance(v, float) for v in new) else "-"
        first = self.results[0]
        seeds = f", mean of {len(new)} {self.runs}" if len(new) > 1 else ""
        return (f"trial {self.number} {self.metric} {self.value:.4g} -> {shown} (best epoch {first.best_epoch} "
                f"of {first.epochs_run}{seeds}) in {self.trial_dir}")


class ContinuedTrials(list[Continued]):
    """What `tunelab continue` returns and prints: a line per continued trial."""

    def __rich__(self) -> str:
        return "\n".join(c.line() for c in self)


def ranked(study: optuna.Study, direction: str) -> list[optuna.trial.FrozenTrial]:
    """Completed trials, best first."""
    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE and t.value is not None]
    return sorted(done, key=lambda t: (-t.value if direction == "maximize" else t.value, t.number))  # type: ignore[operator]


@writer
def continue_best(
    run_dir: str | Path,
    *,
    best: int,
    epochs: int,
    data_dir: str | None = None,
    storage: str | None = None,
    hooks: Sequence[Hook] = (),
) -> ContinuedTrials:
    """Train the study's `best` best trials `epochs` more epochs each, from their last checkpoints."""
    if best < 1 or epochs < 1:
        raise ConfigError(f"--best {best} --epochs {epochs}: both must be at least 1", key="continue")
    layout = RunLayout(Path(run_dir))
    if not layout.experiment_yaml.exists():
        raise RunFolderError(f"{layout.root}: not a run folder (no experiment.yaml)")
    base = load_run_experiment(layout.root)
    seeds = repeats(base)  # data.cv_folds: a trial's runs are its folds, in the seeds' folders
    hold(layout.root)
    study = load_study(layout.root, base, storage)
    chosen = ranked(study, base.search.objective.resolved_direction())[:best]
    if not chosen:
        raise RunFolderError(f"{layout.root}: no completed trial to continue")
    folders = {t.root.name.split("-", 1)[0]: t for t in layout.trial_dirs()}
    parents: list[tuple[optuna.trial.FrozenTrial, TrialLayout, list[int]]] = []
    for trial in chosen:  # every check before anything is trained
        folder = folders.get(str(trial.number))
        if folder is None:
            raise RunFolderError(f"{layout.root}: trial {trial.number} has no folder under trials/")
        parents.append((trial, folder, [parent_epoch(seed) for seed in folder.seeds(seeds)]))
    prepared = prepare(base, data_dir=data_dir)
    datasets = DatasetCache(data_dir, (prepared.experiment, prepared.dataset))
    out = ContinuedTrials()
    for trial, folder, starts in parents:
        child = layout.continuation(folder, starts[0] + epochs)
        results = []
        for i, (parent, into, start) in enumerate(zip(folder.seeds(seeds), child.seeds(seeds), starts, strict=True)):
            params = read_json(parent.params_json).get("params", {})
            config = apply_params(prepared.experiment, params)
            folds = fold_experiments(config)  # as search/trial_run.py runs a trial: its folds, else its seeds
            exp = folds[i] if folds else seeded_experiment(config, i)
            exp = exp.model_copy(update={"train": exp.train.model_copy(update={"epochs": start + epochs})})
            results.append(continue_trial(exp, datasets.get(exp), prepared.exp_id, parent, into,
                                          params={**params, "train.epochs": start + epochs}, hooks=hooks))
        value = float(trial.value)  # type: ignore[arg-type]
        out.append(Continued(trial.number, base.search.objective.metric, value, folder.root, child.root, results,
                             "folds" if base.data.cv_folds else "seeds"))
    return out
