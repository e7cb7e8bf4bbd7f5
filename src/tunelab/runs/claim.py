"""Claiming a run folder: `experiment.yaml` is written once, a rerun must hold the same experiment, and
`load_run_experiment` reads it back (validated) for `final`, `worker` and `continue`.

The run folder belongs to `runs/`; the storage URL it records never carries a password.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tunelab.config.load import validate_experiment
from tunelab.config.schema import Experiment
from tunelab.errors import RunFolderError
from tunelab.masking import mask_secrets
from tunelab.runs.clash import clash_error, read_folder_experiment
from tunelab.runs.layout import RunLayout, not_a_run_folder
from tunelab.runs.records import read_json, write_json_atomic, write_text_atomic

# How a study runs, not what a trial computes: changing them never blocks resuming a folder.
RUN_SETTINGS = (("search", "n_jobs"), ("search", "vectorize"), ("search", "timeout_s"), ("train", "threads"),
                ("search", "backend"), ("search", "ray"), ("search", "storage_proxy"), ("resources",),
                ("description",))


def mask_url(url: str) -> str:
    """The storage URL with any password replaced, safe for logs, run folders and reports."""
    return mask_secrets(url)


def public_dump(exp: Experiment) -> dict[str, Any]:
    """The experiment as plain data with any storage password masked (what run folders keep)."""
    data = exp.model_dump(mode="json")
    if data["search"].get("storage"):
        data["search"]["storage"] = mask_url(data["search"]["storage"])
    return data


def experiment_yaml(exp: Experiment) -> str:
    """The resolved experiment as YAML, every default spelled out, no password."""
    header = "# Resolved by tunelab: every default filled in. Rerun with `tunelab train` or `tunelab tune`.\n"
    return header + yaml.safe_dump(public_dump(exp), sort_keys=False, allow_unicode=True)


def load_run_experiment(run_dir: Path) -> Experiment:
    """The resolved experiment a run folder was made with."""
    path = RunLayout(run_dir).experiment_yaml
    if not path.exists():
        raise RunFolderError(not_a_run_folder(run_dir))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RunFolderError(f"{path} is damaged: {str(exc).splitlines()[0]}") from None
    return validate_experiment(data, source=str(path))


def claim_run_folder(layout: RunLayout, exp: Experiment) -> None:
    """Write experiment.yaml, or check that the folder already holds this same experiment.

    The folder's file is read through today's schema first, so keys added to tunelab since
    (with their defaults) do not count as a difference; run settings (processes, grouping,
    timeout, threads) may change between runs and are updated in the file.
    """
    text = experiment_yaml(exp)
    if layout.experiment_yaml.exists():
        existing = _comparable(read_folder_experiment(layout.experiment_yaml))
        ours = public_dump(exp)
        if _without_run_settings(existing) != _without_run_settings(ours):
            raise clash_error(layout.root, _without_run_settings(existing), _without_run_settings(ours))
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


def record_split(layout: RunLayout, train: int, val: int, test: int) -> None:
    """Write `split.json` (rows per split) once the data is loaded: decision cards state the real split."""
    record = {"train": train, "val": val, "test": test}
    if not layout.split_json.exists() or read_json(layout.split_json) != record:
        write_json_atomic(layout.split_json, record)
