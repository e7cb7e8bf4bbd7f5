"""tunelab: hyperparameter tuning for PyTorch. Public API only; the CLI calls these same functions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.api import TrainResult, prepare, train
from tunelab.config.load import load_experiment
from tunelab.config.schema import Experiment
from tunelab.errors import ConfigError, DataError, RunFolderError, TunelabError

if TYPE_CHECKING:
    from tunelab.runs.view import RunView
    from tunelab.search.runner import TuneResult

__all__ = [
    "ConfigError",
    "DataError",
    "Experiment",
    "RunFolderError",
    "TrainResult",
    "TuneResult",
    "TunelabError",
    "final",
    "load_experiment",
    "load_run",
    "predict",
    "prepare",
    "train",
    "tune",
]
__version__ = "0.1.0"


def tune(experiment: str | Path | Experiment | None = None, *, quick: bool = False, **kwargs: Any) -> TuneResult:
    """Run or resume a search (same keywords as `tunelab.search.runner.tune`).

    `quick=True` applies the experiment file's `quick:` budget before `overrides`.
    """
    from tunelab.search.runner import tune as _tune

    if quick and not isinstance(experiment, Experiment):
        experiment = load_experiment(experiment, kwargs.pop("overrides", ()), quick=True)
    return _tune(experiment, **kwargs)


def load_run(run_dir: str | Path) -> RunView:
    """Read a run folder (experiment, trials, records, history, final metrics) without retraining."""
    from tunelab.runs.view import RunView

    return RunView(run_dir)


def final(run_dir: str | Path, **kwargs: Any) -> dict[str, Any]:
    """Retrain the best configuration on train+val and score it once on test."""
    from tunelab.search.final import run_final

    return run_final(run_dir, **kwargs)


def predict(run_dir: str | Path, input_path: str | Path) -> str:
    """Predictions of the final model for a CSV, as CSV text."""
    from tunelab.search.predict import predict_file

    return predict_file(run_dir, input_path)


def __getattr__(name: str) -> Any:
    if name == "TuneResult":
        from tunelab.search.runner import TuneResult

        return TuneResult
    raise AttributeError(name)
