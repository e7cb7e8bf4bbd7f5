"""STRATEGIES: each maps the experiment's search section to a sampler and, for explicit
strategies (grid, ablation, lr_sweep), the exact list of configurations to run."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna

from tunelab.config.schema import Experiment
from tunelab.config.space import Knob, ablation_points, grid_points
from tunelab.config.space_knob import grid_bound
from tunelab.config.space_limits import check_points
from tunelab.errors import ConfigError

DEFAULT_N_TRIALS = 20
DEFAULT_LR_SWEEP_POINTS = 7


@dataclass(frozen=True)
class Plan:
    """How a study picks trials: `points` is the explicit list (or None to let the sampler choose)."""

    sampler: optuna.samplers.BaseSampler
    points: list[dict[str, Any]] | None
    n_trials: int


def _explicit(points: list[dict[str, Any]]) -> Plan:
    # Enqueued trials carry their params; the sampler only fills what an enqueued point lacks.
    return Plan(optuna.samplers.RandomSampler(seed=0), points, len(points))


def _grid(exp: Experiment, knobs: list[Knob]) -> Plan:
    grid_bound(knobs)  # refuses a grid past the point limit before listing it
    return _explicit(grid_points(knobs, exp))


def _ablation(exp: Experiment, knobs: list[Knob]) -> Plan:
    return _explicit(ablation_points(knobs, exp))


def _lr_sweep(exp: Experiment, knobs: list[Knob]) -> Plan:
    searched = [k for k in knobs if k.kind != "fixed"]
    if len(searched) != 1 or searched[0].path != "train.lr":
        raise ConfigError("lr_sweep searches train.lr and nothing else", key="search.space")
    knob = searched[0]
    fixed = {k.path: k.values[0] for k in knobs if k.kind == "fixed" and k.values}
    if knob.kind == "categorical":
        values = list(knob.values or ())
    else:
        count = exp.search.n_trials or DEFAULT_LR_SWEEP_POINTS
        check_points(count, "search.n_trials", "the lr sweep")
        lo, hi = math.log10(float(knob.low)), math.log10(float(knob.high))
        values = [float(f"{10 ** (lo + (hi - lo) * i / max(1, count - 1)):.6g}") for i in range(count)]
    return _explicit([{**fixed, "train.lr": v} for v in values])


def _sampler_plan(factory: Callable[[Experiment], optuna.samplers.BaseSampler]) -> Callable[..., Plan]:
    def build(exp: Experiment, knobs: list[Knob]) -> Plan:
        return Plan(factory(exp), None, exp.search.n_trials or DEFAULT_N_TRIALS)

    return build


def _cmaes(exp: Experiment) -> optuna.samplers.BaseSampler:
    try:
        import cmaes  # noqa: F401
    except ImportError:
        raise ConfigError(
            "strategy cmaes needs the `cmaes` package: pip install cmaes", key="search.strategy"
        ) from None
    return optuna.samplers.CmaEsSampler(seed=exp.search.sampler_seed, warn_independent_sampling=False)


STRATEGIES: dict[str, Callable[[Experiment, list[Knob]], Plan]] = {
    "grid": _grid,
    "ablation": _ablation,
    "lr_sweep": _lr_sweep,
    "random": _sampler_plan(lambda e: optuna.samplers.RandomSampler(seed=e.search.sampler_seed)),
    "tpe": _sampler_plan(
        lambda e: optuna.samplers.TPESampler(seed=e.search.sampler_seed, multivariate=e.search.multivariate)
    ),
    "gp": _sampler_plan(lambda e: optuna.samplers.GPSampler(seed=e.search.sampler_seed)),
    "cmaes": _sampler_plan(_cmaes),
    "qmc": _sampler_plan(
        lambda e: optuna.samplers.QMCSampler(seed=e.search.sampler_seed, warn_independent_sampling=False)
    ),
}


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """Optuna's pruners on the per-epoch validation metric; `none` never prunes."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()
