"""Fill the defaults that depend on the data (task, loss, metrics, scaling) so the file on disk is complete."""

from __future__ import annotations

from typing import Any

from tunelab.config.schema import Experiment
from tunelab.data.dataset import Dataset
from tunelab.errors import ConfigError
from tunelab.train.losses import resolve_loss
from tunelab.train.metrics import resolve_metrics


def resolve_experiment(exp: Experiment, dataset: Dataset, *, standardize: bool, standardize_target: bool) -> Experiment:
    """The experiment with every `auto`/null replaced by what this data set and task actually use."""
    task = dataset.task
    if exp.task.type not in ("auto", task):
        raise ConfigError(f"data set {dataset.name} is {task}, not {exp.task.type}", key="task.type")
    loss = resolve_loss(exp.train.loss, task)
    if loss == "cross_entropy" and task != "classification":
        raise ConfigError(f"cross_entropy needs a classification task; {dataset.name} is {task}", key="train.loss")
    if loss == "gaussian_nll" and task != "regression":
        raise ConfigError(f"gaussian_nll needs a regression task; {dataset.name} is {task}", key="train.loss")
    try:
        metrics = resolve_metrics(exp.train.metrics, task)
    except ValueError as exc:
        raise ConfigError(str(exc), key="train.metrics") from None
    monitor = resolve_monitor(exp.train.monitor, exp.search.objective.metric, metrics)
    monitor_metric = monitor.removeprefix("val_")
    if monitor_metric != "loss" and monitor_metric not in metrics:
        raise ConfigError(
            f"monitor {monitor} needs {monitor_metric} in train.metrics ({', '.join(metrics)})",
            key="train.monitor",
        )
    updates: dict[str, Any] = {
        "task": exp.task.model_copy(update={"type": task}),
        "train": exp.train.model_copy(update={"loss": loss, "metrics": metrics, "monitor": monitor}),
        "data": exp.data.model_copy(update={"standardize": standardize, "standardize_target": standardize_target}),
    }
    return exp.model_copy(update=updates)


def resolve_monitor(monitor: str, objective: str, metrics: list[str]) -> str:
    """`auto`: the best epoch follows the objective when it is a validation record key, else val_loss."""
    if monitor != "auto":
        return monitor
    if objective == "val_loss" or (objective.startswith("val_") and objective[4:] in metrics):
        return objective
    return "val_loss"
