"""A trial's cost columns (train/cost.py) from its seeds' fits, written beside its results.

A configuration's cost is its own: the first seed's model gives parameters, memory and latency;
training time is summed over seeds like `train_time_s`, each seed measured when it trained alone
and estimated from the solo calibration when it trained in a vectorized group.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from tunelab.config.schema import Experiment
from tunelab.data.dataset import Dataset
from tunelab.runs.layout import TrialLayout
from tunelab.runs.records import write_json_atomic
from tunelab.train.cost import measure_cost
from tunelab.train.loop import FitResult
from tunelab.train.trial import model_for


def trial_cost(
    models: Sequence[nn.Module],
    data: Dataset,
    exp: Experiment,
    results: Sequence[FitResult],
    layout: TrialLayout,
    *,
    alone: bool,
) -> dict[str, Any]:
    """The cost of one configuration from its seeds' trained models; written to `cost.json`.

    A failure to measure leaves the trial's verdict alone: the cost is then `{}`.
    """
    if not models or not results:
        return {}
    try:
        per_seed = [
            measure_cost(model, data, exp.train, loss_name=exp.train.loss, epochs_run=result.epochs_run,
                         measured_time_s=result.train_time_s if alone else None, latency=i == 0)
            for i, (model, result) in enumerate(zip(models, results, strict=False))
        ]
    except (RuntimeError, ValueError) as exc:
        return {"cost_error": str(exc).splitlines()[0][:200]}
    cost = {**per_seed[0], "train_time_alone_s": round(sum(c["train_time_alone_s"] for c in per_seed), 4)}
    layout.root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(layout.cost_json, cost)
    return cost


def solo_models(exps: Sequence[Experiment], data: Dataset) -> list[nn.Module]:
    """The networks of a trial that trained alone, one per seed, as `measure_cost` needs them: their
    shapes, not their weights (parameters, memory and timings do not depend on the weights), so no
    checkpoint is loaded (a `torch.load` of weights and optimizer state per seed, for nothing)."""
    return [model_for(exp, data) for exp in exps]
