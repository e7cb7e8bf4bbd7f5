"""Fill the defaults that depend on the data (task, loss, metrics, scaling) so the file on disk is complete."""

from __future__ import annotations

from typing import Any, Protocol

from tunelab.config.schema import Experiment
from tunelab.config.vocabulary import loss_task_problem, resolve_loss, resolve_metrics
from tunelab.errors import ConfigError


class DataFacts(Protocol):
    """What resolving needs to know about the loaded data (a `data.Dataset` has both)."""

    name: str
    task: str


def resolve_experiment(
    exp: Experiment, dataset: DataFacts, *, standardize: bool, standardize_target: bool
) -> Experiment:
    """The experiment with every `auto`/null replaced by what this data set and task actually use."""
    task = dataset.task
    if exp.task.type not in ("auto", task):
        raise ConfigError(f"data set {dataset.name} is {task}, not {exp.task.type}", key="task.type")
    loss = resolve_loss(exp.train.loss, task)
    problem = loss_task_problem(loss, task)
    if problem is not None:
        raise ConfigError(f"{problem}; {dataset.name} is {task}", key="train.loss")
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
