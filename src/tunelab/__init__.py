"""tunelab: hyperparameter tuning for PyTorch. Public API only; the CLI calls these same functions."""

from __future__ import annotations

from tunelab.app.final import run_final as final
from tunelab.app.predict import predict_file as predict
from tunelab.app.prepare import prepare
from tunelab.app.train import TrainResult, train
from tunelab.app.tune import tune
from tunelab.app.work import work
from tunelab.config.load import load_experiment
from tunelab.config.schema import Experiment
from tunelab.errors import ConfigError, DataError, RunFolderError, TunelabError
from tunelab.runs.view import RunView as load_run
from tunelab.search.results import TuneResult

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
    "work",
]
__version__ = "0.1.0"

