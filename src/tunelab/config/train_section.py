"""The `train:` section of the experiment file: the training recipe of one configuration.

Split from `config/schema.py` (which re-exports every name), so each file holds one section's rules.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from tunelab.config.model_sections import Section
from tunelab.config.vocabulary import CLASSIFICATION_METRICS, LOSS_NAMES, METRIC_NAMES, REGRESSION_METRICS

# The section's choices, derived from config/vocabulary.py (a tuple inside Literal[] unpacks).
Metric = Literal[METRIC_NAMES]  # type: ignore[valid-type]
LossName = Literal[("auto", *LOSS_NAMES)]  # type: ignore[valid-type]
Beta = Annotated[float, Field(ge=0.0, lt=1.0)]
# `checkpoints.every: auto`: an epoch checkpoint once this many seconds of training have passed since
# the last one (and always at the last epoch and when a trial stops). A kill loses at most this much.
AUTO_CHECKPOINT_S = 1.0


class EarlyStopping(Section):
    """Stop when the monitored metric has not improved by min_delta for `patience` epochs."""

    patience: int | None = Field(None, ge=1, description="Epochs without improvement before stopping; null: off.")
    min_delta: float = Field(0.0, ge=0.0, description="Smallest change of the monitored metric that counts.")


class Checkpoints(Section):
    """What `checkpoints/` keeps: the last k epochs and the best epoch."""

    keep_last: int = Field(2, ge=1, description="Epoch checkpoints kept (the newest ones).")
    keep_best: bool = Field(True, description="Also keep the best epoch's checkpoint as best.pt.")
    every: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        "auto", description=f"Write an epoch checkpoint every this many epochs; `auto`: once {AUTO_CHECKPOINT_S:g} s "
        "of training have passed since the last one (every epoch when epochs are slower). Always at the last "
        "epoch and when a trial stops; best.pt is written with the next epoch checkpoint.")


class Divergence(Section):
    """When a trial counts as diverged: a non-finite loss, or a loss above `max_loss`."""

    max_loss: float = Field(1e6, gt=0.0, description="A train or val loss above this ends the trial as diverged.")


class TrainSection(Section):
    """The training recipe of one configuration."""

    epochs: int = Field(20, ge=1, le=100_000, description="Passes over the training rows.")
    batch_size: int | Literal["full"] = Field(64, description="Rows per step, or `full` for full-batch training.")
    optimizer: Literal["sgd", "adam", "adamw", "rmsprop"] = Field("adam", description="torch.optim optimizer.")
    lr: float = Field(1e-3, gt=0.0, description="Learning rate (the peak, with a scheduler).")
    weight_decay: float = Field(0.0, ge=0.0, description="L2 penalty (decoupled for adamw).")
    momentum: float = Field(0.0, ge=0.0, lt=1.0, description="sgd and rmsprop.")
    nesterov: bool = Field(False, description="sgd only; needs momentum > 0.")
    betas: tuple[Beta, Beta] = Field((0.9, 0.999), description="adam/adamw: each in [0, 1).")
    eps: float = Field(1e-8, gt=0.0, description="adam/adamw/rmsprop denominator term.")
    alpha: float = Field(0.99, gt=0.0, lt=1.0, description="rmsprop smoothing constant.")
    scheduler: Literal["constant", "linear", "cosine", "step", "plateau"] = Field(
        "constant", description="Learning-rate schedule; linear and cosine decay to 0 over the run."
    )
    warmup_ratio: float = Field(0.0, ge=0.0, lt=1.0, description="Share of steps with a linear warmup.")
    step_size: int = Field(10, ge=1, description="step scheduler: epochs between decays.")
    gamma: float = Field(0.1, gt=0.0, le=1.0, description="step/plateau scheduler: decay factor.")
    plateau_patience: int = Field(3, ge=0, description="plateau scheduler: flat epochs before a decay.")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Batches whose gradients add up to one step.")
    max_grad_norm: float | None = Field(None, gt=0.0, description="Clip the total gradient norm; null: off.")
    loss: LossName = Field(
        "auto",
        description="`auto`: cross_entropy for classification, mse for regression; l1 is the mean absolute error; "
        "mse/huber/l1 on a classification "
        "task compare outputs with one-hot targets; gaussian_nll (regression) predicts a mean and a variance.",
    )
    huber_delta: float = Field(1.0, gt=0.0, description="huber: where the loss turns from quadratic to linear.")
    metrics: list[Metric] | None = Field(None, description="Reported metrics; null: the task's defaults.")
    monitor: str = Field(
        "auto",
        description="Record key that picks the best epoch (val_loss, val_r2, ...); `auto`: the objective's "
        "metric (search.objective.metric), ties between epochs going to the lower val_loss.",
    )
    early_stopping: EarlyStopping = Field(default_factory=EarlyStopping)
    checkpoints: Checkpoints = Field(default_factory=Checkpoints)
    divergence: Divergence = Field(default_factory=Divergence)
    eval_train: bool = Field(False, description="Also measure train loss/metrics in eval mode after each epoch.")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seed of weights and batch order; seed i of k uses seed + i.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="`auto`: cuda when available, else cpu.")
    precision: Literal["fp32", "bf16"] = Field("fp32", description="bf16: autocast where the device supports it.")
    threads: int | Literal["auto"] = Field(1, description="torch threads for this process; `auto`: all cores.")

    @field_validator("threads")
    @classmethod
    def _positive_threads(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 1024:
            raise ValueError(f"threads must be 1..1024 or auto, got {value}")
        return value

    @field_validator("batch_size")
    @classmethod
    def _positive_batch(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError(f"batch_size must be >= 1 or full, got {value}")
        return value

    @field_validator("monitor")
    @classmethod
    def _monitor_names_a_record_key(cls, value: str) -> str:
        allowed = {"val_loss"} | {f"val_{m}" for m in REGRESSION_METRICS + CLASSIFICATION_METRICS}
        if value != "auto" and value not in allowed:
            raise ValueError(f"monitor must be one of {', '.join(sorted(allowed))} or auto, got {value!r}")
        return value

    @model_validator(mode="after")
    def _knobs_fit_the_optimizer(self) -> TrainSection:
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            raise ValueError("nesterov: needs optimizer sgd and momentum > 0")
        if self.scheduler == "plateau" and self.warmup_ratio > 0:
            raise ValueError("warmup_ratio: not supported with scheduler plateau; use linear or cosine")
        return self
