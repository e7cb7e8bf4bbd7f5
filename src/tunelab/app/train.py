"""`tunelab train`: one configuration trained into a run folder, then its evidence written."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelab.app.continuation import check_epochs, continue_trial, folder_epochs, parent_epoch, train_parent
from tunelab.app.evidence import write_evidence
from tunelab.app.prepare import Prepared, default_out, load, prepare
from tunelab.app.trained_model import write_preprocessing
from tunelab.config.load import parse_override
from tunelab.config.schema import Experiment
from tunelab.errors import RunFolderError
from tunelab.runs.claim import claim_run_folder, record_split
from tunelab.runs.layout import RunLayout, TrialLayout
from tunelab.runs.naming import trial_name
from tunelab.runs.records import read_json
from tunelab.text.features import model_inputs
from tunelab.train.data_checks import write_data_checks
from tunelab.train.hooks import Hook
from tunelab.train.loop import FitResult
from tunelab.train.trial import run_trial
from tunelab.train.trial_cost import solo_models, trial_cost


@dataclass(frozen=True)
class TrainResult:
    """What `tunelab train` returns: where it wrote and how the fit ended."""

    run_dir: Path
    trial_dir: Path
    result: FitResult
    experiment: Experiment
    cost: dict[str, Any] = field(default_factory=dict)  # cost.json: parameters, time, memory, latency


def train(
    experiment: str | Path | Experiment | None = None,
    *,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    data_dir: str | None = None,
    hooks: Sequence[Hook] = (),
    quick: bool = False,
    continue_run: bool = False,
) -> TrainResult:
    """Train one configuration into a run folder; the same call again resumes from its checkpoints.

    Args:
        experiment: a YAML file, an `Experiment` (`tunelab.load_experiment`), or None for the defaults.
        overrides: `key.path=value` strings, as the CLI's `--set` (`"train.lr=0.01"`).
        out: the run folder (default `runs/<name>-train`).
        data_dir: folder with the file-based data sets (default: `data.data_dir`, TUNELAB_DATA_DIR).
        hooks: per-epoch callbacks (`train.hooks.Hook`), e.g. a progress bar.
        quick: apply the file's `quick:` budget before `overrides`.
        continue_run: train the run's finished trial (or its newest continuation) on to `train.epochs`
            in a new folder linked to it (app/continuation.py); the experiment may differ from the
            folder's in `train.epochs` only.

    Returns:
        `TrainResult`: the run and trial folders, the fit's outcome and the resolved experiment.

    Raises:
        ConfigError: a bad file or override, located at `file:line` (or the `--set` that wrote it).
    """
    prepared = prepare(load(experiment, overrides, quick=quick), data_dir=data_dir)
    layout = RunLayout(Path(out) if out is not None else default_out(prepared.experiment, "-train"))
    if continue_run:
        return _continue(prepared, layout, overrides, hooks)
    claim_run_folder(layout, prepared.experiment)
    write_data_checks(layout, prepared.dataset)
    ds = prepared.dataset
    record_split(layout, len(ds.train), len(ds.val), len(ds.test) if ds.test is not None else 0)
    params = {}
    for item in overrides:  # the validated value, so `lr=1e-3` is recorded as the number 0.001
        path = parse_override(item)[0]
        params[".".join(path)] = _value_at(prepared.experiment.model_dump(mode="json"), path)
    trial = layout.trial(0, trial_name({k.split(".")[-1]: v for k, v in params.items()}))
    existing = layout.trial_dirs()
    if existing:  # a rerun of the same experiment continues the trial already there
        trial = existing[0]
    result = run_trial(
        prepared.experiment, prepared.dataset, trial, params=params, exp_id=prepared.exp_id, hooks=hooks
    )
    cost = _finish(prepared, layout, trial, result)
    return TrainResult(layout.root, trial.root, result, prepared.experiment, cost)


def _continue(prepared: Prepared, layout: RunLayout, overrides: Sequence[str], hooks: Sequence[Hook]) -> TrainResult:
    exp = prepared.experiment
    done_epochs = folder_epochs(layout.root)
    if done_epochs is None:
        raise RunFolderError(f"{layout.root}: no trained run to continue; run `tunelab train` first (or give --out)")
    # the folder must hold this same experiment but for train.epochs (runs/claim.py says what differs)
    claim_run_folder(layout, exp.model_copy(update={"train": exp.train.model_copy(update={"epochs": done_epochs})}))
    parent = train_parent(layout)
    start = parent_epoch(parent)
    check_epochs(parent, start, exp.train.epochs, "train.epochs")
    child = layout.continuation(parent, exp.train.epochs)
    params = read_json(parent.params_json).get("params", {}) if parent.params_json.exists() else {}
    result = continue_trial(exp, prepared.dataset, prepared.exp_id, parent, child,
                            params={**params, "train.epochs": exp.train.epochs}, hooks=hooks)
    return TrainResult(layout.root, child.root, result, exp, _finish(prepared, layout, child, result))


def _finish(prepared: Prepared, layout: RunLayout, trial: TrialLayout, result: FitResult) -> dict[str, Any]:
    """What every training ends with: the cost columns (the same cost.json a study's trial gets), the
    preprocessing predict needs, and the evidence and report rebuilt over the newest training."""
    exp = prepared.experiment
    data = model_inputs(exp, prepared.dataset)
    cost = trial_cost(solo_models([exp], data), data, exp, [result], trial, alone=True)
    write_preprocessing(layout, data)
    write_evidence(layout.root)
    return cost


def _value_at(data: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        data = data.get(part) if isinstance(data, dict) else None
    return data
