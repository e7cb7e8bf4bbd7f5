"""The Python API the CLI calls: load, resolve and train an experiment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tunelab.config.load import load_experiment, parse_override
from tunelab.config.resolve import resolve_experiment
from tunelab.config.schema import Experiment
from tunelab.data import dataset_defaults, load_dataset
from tunelab.data.checks import write_data_checks
from tunelab.data.dataset import Dataset
from tunelab.errors import RunFolderError
from tunelab.runs.identity import experiment_id
from tunelab.runs.layout import RunLayout, TrialLayout
from tunelab.runs.records import write_text_atomic
from tunelab.train.hooks import Hook
from tunelab.train.loop import FitResult, resolve_device
from tunelab.trial import model_for, run_trial, short_name


@dataclass(frozen=True)
class Prepared:
    """A validated experiment with its data loaded: nothing has been written yet."""

    experiment: Experiment
    dataset: Dataset
    exp_id: str


@dataclass(frozen=True)
class TrainResult:
    """What `tunelab train` returns: where it wrote and how the fit ended."""

    run_dir: Path
    trial_dir: Path
    result: FitResult
    experiment: Experiment


def prepare(exp: Experiment, *, data_dir: str | None = None) -> Prepared:
    """Load the data and resolve every default; also builds the model once to catch shape errors."""
    dataset = load_dataset(exp.data, exp.task, data_dir=data_dir)
    defaults = dataset_defaults(exp.data.name) if exp.data.name not in ("csv", "function") else {}
    standardize = exp.data.standardize if exp.data.standardize is not None else defaults.get("standardize", True)
    std_target = (
        exp.data.standardize_target
        if exp.data.standardize_target is not None
        else defaults.get("standardize_target", False)
    )
    resolved = resolve_experiment(exp, dataset, standardize=bool(standardize), standardize_target=bool(std_target))
    resolve_device(resolved.train.device)  # a missing GPU is a config error, found before anything is written
    model_for(resolved, dataset)  # a model that cannot be built fails here, before any file is written
    return Prepared(resolved, dataset, experiment_id(resolved.model_dump(mode="json")))


def public_dump(exp: Experiment) -> dict[str, Any]:
    """The experiment as plain data with any storage password masked (what run folders keep)."""
    from tunelab.search.storage import mask_url

    data = exp.model_dump(mode="json")
    if data["search"].get("storage"):
        data["search"]["storage"] = mask_url(data["search"]["storage"])
    return data


def experiment_yaml(exp: Experiment) -> str:
    """The resolved experiment as YAML, every default spelled out, no password."""
    header = "# Resolved by tunelab: every default filled in. Rerun with `tunelab train` or `tunelab tune`.\n"
    return header + yaml.safe_dump(public_dump(exp), sort_keys=False, allow_unicode=True)


# How a study runs, not what a trial computes: changing them never blocks resuming a folder.
RUN_SETTINGS = (("search", "n_jobs"), ("search", "vectorize"), ("search", "timeout_s"), ("train", "threads"),
                ("description",))


def claim_run_folder(layout: RunLayout, exp: Experiment) -> None:
    """Write experiment.yaml, or check that the folder already holds this same experiment.

    The folder's file is read through today's schema first, so keys added to tunelab since
    (with their defaults) do not count as a difference; run settings (processes, grouping,
    timeout, threads) may change between runs and are updated in the file.
    """
    text = experiment_yaml(exp)
    if layout.experiment_yaml.exists():
        existing = _comparable(yaml.safe_load(layout.experiment_yaml.read_text(encoding="utf-8")))
        ours = public_dump(exp)
        if _without_run_settings(existing) != _without_run_settings(ours):
            differing = _first_difference(_without_run_settings(existing), _without_run_settings(ours))
            raise RunFolderError(
                f"{layout.root} holds a different experiment (differs at {differing}); "
                "use another --out or remove that folder"
            )
        if existing != ours:
            write_text_atomic(layout.experiment_yaml, text)
        return
    layout.root.mkdir(parents=True, exist_ok=True)
    write_text_atomic(layout.experiment_yaml, text)


def _comparable(data: Any) -> Any:
    """The folder's experiment with today's defaults filled in (as it was, if it no longer validates)."""
    from tunelab.config.load import validate_experiment

    if not isinstance(data, dict):
        return data
    try:
        return public_dump(validate_experiment(data, source="experiment.yaml"))
    except Exception:
        return data


def _without_run_settings(data: Any) -> Any:
    if not isinstance(data, dict):
        return data
    out = {key: dict(value) if isinstance(value, dict) else value for key, value in data.items()}
    for path in RUN_SETTINGS:
        if len(path) == 1:
            out.pop(path[0], None)
        elif isinstance(out.get(path[0]), dict):
            out[path[0]].pop(path[1], None)
    return out


def _value_at(data: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _first_difference(a: Any, b: Any, prefix: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{prefix}.{key}" if prefix else str(key))
    return prefix or "(top level)"


def default_out(exp: Experiment, suffix: str = "") -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in exp.name) or "experiment"
    return Path("runs") / f"{safe}{suffix}"


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

    `quick=True` applies the file's `quick:` budget before `overrides`.
    """
    exp = experiment if isinstance(experiment, Experiment) else load_experiment(experiment, overrides, quick=quick)
    if isinstance(experiment, Experiment) and overrides:
        exp = load_experiment(None, overrides, raw=experiment.model_dump(mode="json"))
    prepared = prepare(exp, data_dir=data_dir)
    layout = RunLayout(Path(out) if out is not None else default_out(prepared.experiment, "-train"))
    claim_run_folder(layout, prepared.experiment)
    write_data_checks(layout, prepared.dataset)
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
    from tunelab.search.runner import write_evidence

    write_evidence(layout.root)
    return TrainResult(layout.root, trial.root, result, prepared.experiment)


def load_trial(path: str | Path) -> TrialLayout:
    return TrialLayout(Path(path))
