"""`tunelab train`: one configuration trained into a run folder, then its evidence written."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunelab.app.evidence import write_evidence
from tunelab.app.prepare import default_out, load, prepare
from tunelab.config.load import parse_override
from tunelab.config.schema import Experiment
from tunelab.runs.claim import claim_run_folder, record_split
from tunelab.runs.layout import RunLayout
from tunelab.train.data_checks import write_data_checks
from tunelab.train.hooks import Hook
from tunelab.train.loop import FitResult
from tunelab.train.trial import run_trial, short_name


@dataclass(frozen=True)
class TrainResult:
    """What `tunelab train` returns: where it wrote and how the fit ended."""

    run_dir: Path
    trial_dir: Path
    result: FitResult
    experiment: Experiment


def train(
    experiment: str | Path | Experiment | None = None,
    *,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    data_dir: str | None = None,
    hooks: Sequence[Hook] = (),
    quick: bool = False,
) -> TrainResult:
    """Train one configuration into a run folder; the same call again resumes from its checkpoints.

    Args:
        experiment: a YAML file, an `Experiment` (`tunelab.load_experiment`), or None for the defaults.
        overrides: `key.path=value` strings, as the CLI's `--set` (`"train.lr=0.01"`).
        out: the run folder (default `runs/<name>-train`).
        data_dir: folder with the file-based data sets (default: `data.data_dir`, TUNELAB_DATA_DIR).
        hooks: per-epoch callbacks (`train.hooks.Hook`), e.g. a progress bar.
        quick: apply the file's `quick:` budget before `overrides`.

    Returns:
        `TrainResult`: the run and trial folders, the fit's outcome and the resolved experiment.

    Raises:
        ConfigError: a bad file or override, located at `file:line` (or the `--set` that wrote it).
    """
    prepared = prepare(load(experiment, overrides, quick=quick), data_dir=data_dir)
    layout = RunLayout(Path(out) if out is not None else default_out(prepared.experiment, "-train"))
    claim_run_folder(layout, prepared.experiment)
    write_data_checks(layout, prepared.dataset)
    ds = prepared.dataset
    record_split(layout, len(ds.train), len(ds.val), len(ds.test) if ds.test is not None else 0)
    params = {}
    for item in overrides:  # the validated value, so `lr=1e-3` is recorded as the number 0.001
        path = parse_override(item)[0]
        params[".".join(path)] = _value_at(prepared.experiment.model_dump(mode="json"), path)
    trial = layout.trial(0, short_name({k.split(".")[-1]: v for k, v in params.items()}))
    existing = layout.trial_dirs()
    if existing:  # a rerun of the same experiment continues the trial already there
        trial = existing[0]
    result = run_trial(
        prepared.experiment, prepared.dataset, trial, params=params, exp_id=prepared.exp_id, hooks=hooks
    )
    write_evidence(layout.root)
    return TrainResult(layout.root, trial.root, result, prepared.experiment)


def _value_at(data: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        data = data.get(part) if isinstance(data, dict) else None
    return data
