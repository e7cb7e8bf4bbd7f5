"""The words an experiment is written in, each defined once: metrics and their direction, losses,
model families and search strategies. Everything else (the schema's choices, the trainers, the
diagnosis, the report) derives from these tables, so adding one word touches this module only
(plus the module that implements it)."""

from __future__ import annotations

from dataclasses import dataclass

TASKS: tuple[str, ...] = ("regression", "classification")

# --- metrics: every reported metric, its task(s) and its direction
METRIC_NAMES: tuple[str, ...] = (
    "r2", "mae", "rmse", "mse", "accuracy", "f1", "roc_auc", "log_loss", "balanced_accuracy", "precision", "recall"
)
# The one definition of a metric's direction: every other module asks `higher_is_better`.
SCORES: tuple[str, ...] = ("r2", "accuracy", "f1", "roc_auc", "balanced_accuracy", "precision", "recall")
HIGHER_IS_BETTER: frozenset[str] = frozenset(SCORES)
DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    "regression": ("r2", "mae", "rmse"),
    "classification": ("accuracy", "f1"),
}
EXTRA_METRICS: dict[str, tuple[str, ...]] = {
    "regression": ("mse",),
    "classification": ("roc_auc", "log_loss", "balanced_accuracy", "precision", "recall"),
}
CLASSIFICATION_METRICS: tuple[str, ...] = DEFAULT_METRICS["classification"] + EXTRA_METRICS["classification"]
REGRESSION_METRICS: tuple[str, ...] = DEFAULT_METRICS["regression"] + EXTRA_METRICS["regression"]
SPLIT_PREFIXES: tuple[str, ...] = ("train_eval_", "train_", "val_", "test_")


def metric_name(key: str) -> str:
    """The metric of a record key: `val_roc_auc` -> `roc_auc`, `test_loss` -> `loss`."""
    for prefix in SPLIT_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def higher_is_better(key: str) -> bool:
    """Direction of a metric or a record key such as `val_loss`, `val_r2` or `val_balanced_accuracy`."""
    return metric_name(key) in HIGHER_IS_BETTER


def direction_of(key: str) -> str:
    """Optuna's word for the key's direction: `maximize` or `minimize`."""
    return "maximize" if higher_is_better(key) else "minimize"


def resolve_metrics(names: list[str] | None, task: str) -> list[str]:
    """The task's defaults when none are listed; a metric that does not fit the task is an error."""
    if names is None:
        return list(DEFAULT_METRICS[task])
    allowed = set(DEFAULT_METRICS[task]) | set(EXTRA_METRICS[task])
    bad = [n for n in names if n not in allowed]
    if bad:
        raise ValueError(f"metric {bad[0]!r} does not fit a {task} task; choose from {', '.join(sorted(allowed))}")
    return list(names)


# --- losses: name -> the one task it needs (None: any), and how many outputs per target it asks
@dataclass(frozen=True)
class LossInfo:
    task: str | None = None
    outputs_per_target: int = 1


LOSSES: dict[str, LossInfo] = {
    "mse": LossInfo(),
    "huber": LossInfo(),
    "l1": LossInfo(),  # mean absolute error: robust to outlying targets
    "cross_entropy": LossInfo(task="classification"),
    "gaussian_nll": LossInfo(task="regression", outputs_per_target=2),
}
LOSS_NAMES: tuple[str, ...] = tuple(LOSSES)


def resolve_loss(name: str, task: str) -> str:
    """`auto` is cross-entropy for classification and MSE for regression."""
    if name != "auto":
        return name
    return "cross_entropy" if task == "classification" else "mse"


def loss_task_problem(loss: str, task: str) -> str | None:
    """Why `loss` cannot train a `task` model, or None when it can."""
    needs = LOSSES[loss].task if loss in LOSSES else None
    if needs is not None and needs != task:
        return f"{loss} needs a {needs} task"
    return None


# --- model families: name -> whether a group of them can train as one stacked network
MODEL_FAMILIES: dict[str, bool] = {"mlp": True, "cnn": True, "resnet": False, "encoder_head": False, "python": False}
MODEL_FAMILY_NAMES: tuple[str, ...] = tuple(MODEL_FAMILIES)
VECTORIZED_FAMILIES: tuple[str, ...] = tuple(name for name, stacked in MODEL_FAMILIES.items() if stacked)
DROPOUT_FAMILIES: tuple[str, ...] = ("mlp", "cnn")  # families with a `dropout` knob



# --- search strategies
@dataclass(frozen=True)
class StrategyInfo:
    """`sampled`: an Optuna sampler draws the trials (order and budget mean something), not an
    explicit list. `sequential`: a model-based sampler that learns from every result, so it asks
    one trial at a time and runs in one process under `n_jobs: auto`. `enumerated`: the trials are
    the space's points themselves, so every knob needs a finite list of values."""

    sampled: bool = False
    sequential: bool = False
    enumerated: bool = False


STRATEGY_INFO: dict[str, StrategyInfo] = {
    "none": StrategyInfo(),
    "grid": StrategyInfo(enumerated=True),
    "random": StrategyInfo(sampled=True),
    "tpe": StrategyInfo(sampled=True, sequential=True),
    "gp": StrategyInfo(sampled=True, sequential=True),
    "cmaes": StrategyInfo(sampled=True, sequential=True),
    "qmc": StrategyInfo(sampled=True),
    "ablation": StrategyInfo(enumerated=True),
    "lr_sweep": StrategyInfo(),
    "staged": StrategyInfo(),
}
STRATEGY_NAMES: tuple[str, ...] = tuple(STRATEGY_INFO)
SEQUENTIAL_STRATEGIES: tuple[str, ...] = tuple(name for name, s in STRATEGY_INFO.items() if s.sequential)
SAMPLER_STRATEGIES: tuple[str, ...] = tuple(name for name, s in STRATEGY_INFO.items() if s.sampled)
ENUMERATED_STRATEGIES: tuple[str, ...] = tuple(name for name, s in STRATEGY_INFO.items() if s.enumerated)
# Strategies that sample or enumerate the space and so need at least one searched knob.
SEARCHING_STRATEGIES: tuple[str, ...] = tuple(n for n, s in STRATEGY_INFO.items() if s.sampled or s.enumerated)
STAGE_STRATEGIES: tuple[str, ...] = ("grid", "random", "tpe", "gp", "qmc")
