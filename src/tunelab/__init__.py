"""tunelab: hyperparameter tuning for PyTorch. Public API only; the CLI calls these same functions.

result = tunelab.tune("exp.yaml", overrides=["train.epochs=5"], n_trials=20)
result.best_params        # {"train.lr": 0.003, ...}, keyed by key path
result.test_metrics       # the final model on the test split (None when no final ran)
tunelab.predict(result.run_dir, frame)  # a DataFrame of predictions
"""

from __future__ import annotations

from tunelab.app import train as _train
from tunelab.app import tune as _tune
from tunelab.app.errors import located as _located
from tunelab.app.final import run_final as final
from tunelab.app.predict import predict
from tunelab.app.prepare import prepare
from tunelab.app.train import TrainResult
from tunelab.app.work import work
from tunelab.config.load import load_experiment
from tunelab.config.schema import Experiment
from tunelab.errors import ConfigError, DataError, RunFolderError, TunelabError
from tunelab.runs.view import RunView
from tunelab.runs.view import RunView as load_run
from tunelab.search.results import TuneResult

__all__ = [
    "ConfigError",
    "DataError",
    "Experiment",
    "RunFolderError",
    "RunView",
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

# A ConfigError from a file names its file:line, as the CLI prints it.
tune = _located(_tune.tune)
train = _located(_train.train)


def __dir__() -> list[str]:
    """`dir(tunelab)` lists the public API, not the subpackages importing it loads (`app`, `config`, ...)."""
    return sorted([*__all__, "__version__"])
