"""tunelab: hyperparameter tuning for PyTorch. Public API only; the CLI calls these same functions.

result = tunelab.tune("exp.yaml", overrides=["train.epochs=5"], n_trials=20)
result.best_params        # {"train.lr": 0.003, ...}, keyed by key path
result.test_metrics       # the final model on the test split (None when no final ran)
tunelab.predict(result.run_dir, frame)  # a DataFrame of predictions

The names below are imported on first use (PEP 562 `__getattr__`), not at `import tunelab`: every
entry point (`tunelab --help`, a worker process, `python -m tunelab`) imports this package first, and
importing the API eagerly pulled in torch, sklearn, pandas, matplotlib and optuna (~15 s on a
loaded 2-core machine) before a single argument was parsed.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunelab.app.final import run_final as final
    from tunelab.app.predict import predict
    from tunelab.app.prepare import prepare
    from tunelab.app.train import TrainResult, train
    from tunelab.app.tune import tune
    from tunelab.app.work import work
    from tunelab.config.load import load_experiment
    from tunelab.config.schema import Experiment
    from tunelab.errors import ConfigError, DataError, RunFolderError, TunelabError
    from tunelab.runs.view import RunView
    from tunelab.runs.view import RunView as load_run
    from tunelab.search.results import TuneResult

# public name -> (module, attribute): the one place the API is bound
_API: dict[str, tuple[str, str]] = {
    "ConfigError": ("tunelab.errors", "ConfigError"),
    "DataError": ("tunelab.errors", "DataError"),
    "Experiment": ("tunelab.config.schema", "Experiment"),
    "RunFolderError": ("tunelab.errors", "RunFolderError"),
    "RunView": ("tunelab.runs.view", "RunView"),
    "TrainResult": ("tunelab.app.train", "TrainResult"),
    "TuneResult": ("tunelab.search.results", "TuneResult"),
    "TunelabError": ("tunelab.errors", "TunelabError"),
    "final": ("tunelab.app.final", "run_final"),
    "load_experiment": ("tunelab.config.load", "load_experiment"),
    "load_run": ("tunelab.runs.view", "RunView"),
    "predict": ("tunelab.app.predict", "predict"),
    "prepare": ("tunelab.app.prepare", "prepare"),
    "train": ("tunelab.app.train", "train"),
    "tune": ("tunelab.app.tune", "tune"),
    "work": ("tunelab.app.work", "work"),
}

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


def __getattr__(name: str) -> Any:
    """Import a public name on first access and cache it on the package."""
    if name not in _API:
        raise AttributeError(f"module 'tunelab' has no attribute {name!r}")
    module_name, attr = _API[name]
    value = getattr(importlib.import_module(module_name), attr)
    if name in _LOCATED:  # a ConfigError from a file names its file:line, as the CLI prints it
        from tunelab.app.errors import located

        value = located(value)
    globals()[name] = value
    return value


_LOCATED = ("tune", "train")


def __dir__() -> list[str]:
    """`dir(tunelab)` lists the public API, not the subpackages importing it loads (`app`, `config`, ...)."""
    return sorted([*__all__, "__version__"])


class _Package(types.ModuleType):
    """Keeps the API function `tunelab.train` from being replaced by the subpackage `tunelab.train`.

    Importing a submodule binds it on its parent; eagerly, the API import ran last and won. Lazily,
    `import tunelab.train.loop` would bind the subpackage over the not-yet-imported function.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
