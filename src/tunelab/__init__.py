"""tunelab: hyperparameter tuning for PyTorch. Public API only."""

from __future__ import annotations

from tunelab.api import TrainResult, prepare, train
from tunelab.config.load import load_experiment
from tunelab.config.schema import Experiment
from tunelab.errors import ConfigError, DataError, TunelabError

__all__ = [
    "ConfigError",
    "DataError",
    "Experiment",
    "TrainResult",
    "TunelabError",
    "load_experiment",
    "prepare",
    "train",
]
__version__ = "0.1.0"
