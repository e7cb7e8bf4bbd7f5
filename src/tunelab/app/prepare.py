"""What every command does first: load the experiment, load its data, resolve every default.

Nothing here writes a file; a bad experiment or a missing data set fails before any run folder exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tunelab.config.load import load_experiment
from tunelab.config.resolve import resolve_experiment
from tunelab.config.schema import Experiment
from tunelab.data import dataset_defaults, load_dataset
from tunelab.data.dataset import Dataset
from tunelab.devices import resolve_device
from tunelab.runs.identity import experiment_id
from tunelab.runs.layout import default_run_dir
from tunelab.train.trial import model_for


@dataclass(frozen=True)
class Prepared:
    """A validated experiment with its data loaded: nothing has been written yet."""

    experiment: Experiment
    dataset: Dataset
    exp_id: str


def load(
    experiment: str | Path | Experiment | None, overrides: Sequence[str] = (), *, quick: bool = False
) -> Experiment:
    """The experiment a command runs: a file (with its `quick:` budget when asked) or an object,
    then the `--set` overrides."""
    if not isinstance(experiment, Experiment):
        return load_experiment(experiment, overrides, quick=quick)
    if overrides:
        return load_experiment(None, overrides, raw=experiment.model_dump(mode="json"))
    return experiment


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


def default_out(exp: Experiment, suffix: str = "") -> Path:
    """`runs/<name><suffix>`, the name made safe for a folder."""
    return default_run_dir(exp.name, suffix)
