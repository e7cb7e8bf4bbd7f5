"""Turning knobs into trials: Optuna distributions and suggestions, and explicit grid and ablation points."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from tunelab.config.schema import Experiment
from tunelab.config.space_knob import (
    Knob,
    base_value,
    decode_value,
    encode_value,
    is_active,
    knob_values,
    searched,
    values_equal,
    walk_grid,
)


def distributions(knobs: Sequence[Knob]) -> dict[str, BaseDistribution]:
    """Optuna distribution per param name (fixed knobs have none)."""
    out: dict[str, BaseDistribution] = {}
    for knob in searched(knobs):
        if knob.kind == "categorical":
            out[knob.name] = CategoricalDistribution([encode_value(v) for v in knob.values or ()])
        elif knob.kind == "float":
            out[knob.name] = FloatDistribution(knob.low, knob.high, log=knob.log, step=knob.step)
        else:
            out[knob.name] = IntDistribution(int(knob.low), int(knob.high), log=knob.log, step=int(knob.step or 1))
    return out


def grid_search_space(knobs: Sequence[Knob]) -> dict[str, list]:
    """Param name -> encoded values, for `optuna.samplers.GridSampler` (which ignores `when`: prefer `grid_points`)."""
    return {k.name: [encode_value(v) for v in knob_values(k)] for k in searched(knobs)}


def encode_params(knobs: Sequence[Knob], params_by_path: Mapping[str, Any]) -> dict[str, Any]:
    """Key-path values -> Optuna params (for `study.enqueue_trial`); fixed knobs are not Optuna params."""
    return {k.name: encode_value(params_by_path[k.path]) for k in searched(knobs) if k.path in params_by_path}


def decode_params(
    knobs: Sequence[Knob], optuna_params: Mapping[str, Any], base: Experiment | None = None
) -> dict[str, Any]:
    """Optuna params (`trial.params`) -> key-path values, fixed knobs included where their condition holds."""
    data = base.model_dump(mode="json") if base is not None else None
    out: dict[str, Any] = {}
    for knob in knobs:
        if knob.kind == "fixed":
            if is_active(knob, out, data):
                out[knob.path] = knob.values[0]
        elif knob.name in optuna_params:
            out[knob.path] = decode_value(knob, optuna_params[knob.name])
    return out


def suggest(trial: optuna.trial.BaseTrial, knobs: Sequence[Knob], base: Experiment) -> dict[str, Any]:
    """Sample one configuration: key path -> value, skipping knobs whose `when` does not hold."""
    data = base.model_dump(mode="json")
    out: dict[str, Any] = {}
    for knob in knobs:
        if not is_active(knob, out, data):
            continue
        if knob.kind == "fixed":
            out[knob.path] = knob.values[0]
        elif knob.kind == "categorical":
            choice = trial.suggest_categorical(knob.name, [encode_value(v) for v in knob.values or ()])
            out[knob.path] = decode_value(knob, choice)
        elif knob.kind == "float":
            out[knob.path] = trial.suggest_float(knob.name, knob.low, knob.high, step=knob.step, log=knob.log)
        else:
            step = int(knob.step or 1)
            out[knob.path] = trial.suggest_int(knob.name, int(knob.low), int(knob.high), step=step, log=knob.log)
    return out


def grid_points(knobs: Sequence[Knob], base: Experiment) -> list[dict[str, Any]]:
    """Every combination of listed values, first knob slowest; a conditional knob only where its `when` holds.

    Raises:
        ConfigError: a float range without a step.
    """
    return list(walk_grid(list(knobs), 0, {}, base.model_dump(mode="json")))


def ablation_points(knobs: Sequence[Knob], base: Experiment) -> list[dict[str, Any]]:
    """The default configuration, then one knob at a time at each of its other listed values.

    The default sets every knob to the experiment's base value (fixed knobs applied). Each
    point varies one knob; the others stay at the default (a knob a change switches on, say
    momentum once optimizer is sgd, takes its base value). With k knobs whose n_i values
    include the base value this is 1 + sum(n_i - 1) points; a knob whose base value is not
    listed runs all n_i values. A conditional knob whose `when` fails in the default
    configuration is not varied.
    """
    data = base.model_dump(mode="json")
    default = _complete(knobs, {}, data)
    points = [default]
    for knob in knobs:
        if knob.kind == "fixed" or knob.path not in default:
            continue
        for value in knob_values(knob):
            if not values_equal(value, default[knob.path]):
                points.append(_complete(knobs, {knob.path: value}, data))
    return points


def _complete(knobs: Sequence[Knob], changed: Mapping[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    point: dict[str, Any] = {}
    for knob in knobs:
        if not is_active(knob, point, base):
            continue
        if knob.path in changed:
            point[knob.path] = changed[knob.path]
        elif knob.kind == "fixed":
            point[knob.path] = knob.values[0]
        else:
            point[knob.path] = base_value(knob.path, point, base)
    return point
