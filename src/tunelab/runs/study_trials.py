"""A finished study's complete trials as Optuna stored them, rebuilt from the run folder's files.

optimization_history.json keeps every trial's state, value and params (as key paths, decoded);
experiment.yaml's space gives the Optuna names and distributions back. Readers that need the
trials (the report's importance plot) take them from here instead of opening study.db, whose
first read costs a process SQLAlchemy's engine and ORM set-up.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from tunelab.config.load import validate_experiment
from tunelab.config.space import distributions, encode_params, parse_space

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.trial import FrozenTrial

    from tunelab.config.space_knob import Knob
    from tunelab.runs.view import RunView

log = logging.getLogger(__name__)


def complete_trials(view: RunView) -> list[FrozenTrial] | None:
    """The history's complete trials with Optuna's params, distributions and values; None when the
    folder cannot give them exactly (no history, an experiment that no longer validates, a param
    outside the space, a trial without a value): read study.db then."""
    rows = [t for t in view.history.get("trials", []) if t.get("state") == "complete"]
    if not rows or not view.experiment:
        return None
    try:
        knobs = parse_space(validate_experiment(view.experiment))
        spaces = distributions(knobs)
        return [_frozen(row, knobs, spaces) for row in rows]
    except Exception:  # any surprise in an old or edited folder: the caller reads study.db instead
        log.debug("trials not rebuilt from the history", exc_info=True)
        return None


def _frozen(row: dict[str, Any], knobs: list[Knob], spaces: dict[str, BaseDistribution]) -> FrozenTrial:
    """One complete trial as Optuna stored it; raises on anything the space cannot encode."""
    import optuna

    paths = row.get("params") or {}
    unknown = set(paths) - {knob.path for knob in knobs}
    if unknown:
        raise KeyError(f"trial {row.get('number')}: {sorted(unknown)} not in the space")
    params = encode_params(knobs, paths)
    value = row.get("value")
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"trial {row.get('number')}: value {value!r}")
    return optuna.trial.create_trial(params=params, distributions={name: spaces[name] for name in params},
                                     value=float(value))
