"""The experiment file as pydantic models: every section, every default, every cross-field rule.

Every section inherits `Section`, which forbids unknown keys and freezes the object, so a
typo is an error and a resolved experiment cannot change under a running study.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from tunelab.config.model_sections import ACTIVATIONS as ACTIVATIONS
from tunelab.config.model_sections import MAX_LAYERS as MAX_LAYERS
from tunelab.config.model_sections import MAX_WIDTH as MAX_WIDTH
from tunelab.config.model_sections import RESNET_BLOCKS as RESNET_BLOCKS
from tunelab.config.model_sections import Activation as Activation
from tunelab.config.model_sections import CNNModel as CNNModel
from tunelab.config.model_sections import EncoderHeadModel as EncoderHeadModel
from tunelab.config.model_sections import MLPModel as MLPModel
from tunelab.config.model_sections import ModelSection as ModelSection
from tunelab.config.model_sections import PythonModel as PythonModel
from tunelab.config.model_sections import ResNetModel as ResNetModel
from tunelab.config.model_sections import Section as Section
from tunelab.config.vocabulary import (
    CLASSIFICATION_METRICS,
    DEFAULT_METRICS,
    EXTRA_METRICS,
    LOSS_NAMES,
    METRIC_NAMES,
    STAGE_STRATEGIES,
    STRATEGY_NAMES,
    direction_of,
)

# The schema's choices, derived from config/vocabulary.py (a tuple inside Literal[] unpacks).
Metric = Literal[METRIC_NAMES]  # type: ignore[valid-type]
LossName = Literal[("auto", *LOSS_NAMES)]  # type: ignore[valid-type]
StrategyName = Literal[STRATEGY_NAMES]  # type: ignore[valid-type]
StageStrategyName = Literal[STAGE_STRATEGIES]  # type: ignore[valid-type]
REGRESSION_METRICS: tuple[str, ...] = DEFAULT_METRICS["regression"] + EXTRA_METRICS["regression"]
Beta = Annotated[float, Field(ge=0.0, lt=1.0)]


class Augment(Section):
    """Image augmentation of training batches only (name: image_folder), drawn from the trial's seed."""

    crop_padding: int = Field(
        0, ge=0, le=64, description="Random crop: pad each side by this many pixels, crop back to size (0: off)."
    )
    horizontal_flip: bool = Field(False, description="Flip each training image left-right with probability 1/2.")


class DataSection(Section):
    """Where the rows come from and how they are split and scaled."""

    name: str = Field(
        "digits", description="Built-in data set, `csv` for a CSV/TSV file, `image_folder`, or `function`."
    )
    path: str | None = Field(
        None, description="CSV/TSV file (name: csv), or a folder with one sub-folder per class (name: image_folder)."
    )
    image_size: int = Field(32, ge=4, le=1024, description="image_folder: every image is resized to size x size.")
    grayscale: bool = Field(False, description="image_folder: decode as one grey channel instead of RGB.")
    augment: Augment = Field(default_factory=Augment)
    target: str | None = Field(None, description="Target column of a CSV/TSV file.")
    features: Annotated[list[str], Field(min_length=1)] | Literal["all", "default"] = Field(
        "default", description="Feature columns; `default` lets the data set choose, `all` takes every column."
    )
    function: str | None = Field(None, description="`module:function` returning arrays (name: function).")
    data_dir: str | None = Field(None, description="Folder holding local copies of file-based data sets.")
    download: bool = Field(False, description="Download a missing built-in data set into data_dir.")
    val_fraction: float = Field(
        0.2, gt=0.0, lt=1.0, description="Share of rows for validation (> 0: epochs and trials are picked on it)."
    )
    test_fraction: float = Field(0.2, ge=0.0, lt=1.0, description="Share of rows for test.")
    split_seed: int = Field(0, ge=0, le=2**32 - 1, description="Seed of the row shuffle before splitting.")
    shuffle: bool = Field(True, description="Shuffle rows before splitting (off: the last rows are test).")
    use_native_splits: bool = Field(
        True, description="Use a data set's own validation/test split where it has one (USPS test file)."
    )
    standardize: bool | None = Field(
        None, description="Standardize features with train-only mean/std; null: data set default."
    )
    standardize_target: bool | None = Field(
        None, description="Standardize a regression target with train-only mean/std; null: data set default."
    )
    max_rows: int | None = Field(
        None, ge=2, description="Use a seeded random subset of at most this many rows (each split keeps its share)."
    )

    @model_validator(mode="after")
    def _fractions_leave_training_rows(self) -> DataSection:
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError(
                "test_fraction: val_fraction + test_fraction must be < 1, "
                f"got {self.val_fraction} + {self.test_fraction}"
            )
        if self.name == "csv" and not self.path:
            raise ValueError("path: data set csv needs a file path")
        if self.name == "image_folder" and not self.path:
            raise ValueError("path: data set image_folder needs a folder with one sub-folder per class")
        if self.name != "image_folder" and self.augment != Augment():
            raise ValueError(f"augment: only image_folder data are augmented, got data set {self.name}")
        if self.name == "csv" and not self.target:
            raise ValueError("target: data set csv needs the target column's name")
        if self.name == "function" and not self.function:
            raise ValueError("function: data set function needs module:function")
        if self.function is not None and ":" not in self.function:
            raise ValueError(f"function: must look like module:function, got {self.function!r}")
        return self


# --------------------------------------------------------------------------- task


class TaskSection(Section):
    """Regression or classification; `auto` asks the data set."""

    type: Literal["auto", "regression", "classification"] = Field(
        "auto", description="`auto`: the data set's own task; `task: regression` is short for this key."
    )

    @model_validator(mode="before")
    @classmethod
    def _accept_plain_string(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value


# --------------------------------------------------------------------------- train


class EarlyStopping(Section):
    """Stop when the monitored metric has not improved by min_delta for `patience` epochs."""

    patience: int | None = Field(None, ge=1, description="Epochs without improvement before stopping; null: off.")
    min_delta: float = Field(0.0, ge=0.0, description="Smallest change of the monitored metric that counts.")


class Checkpoints(Section):
    """What `checkpoints/` keeps: the last k epochs and the best epoch."""

    keep_last: int = Field(2, ge=1, description="Epoch checkpoints kept (the newest ones).")
    keep_best: bool = Field(True, description="Also keep the best epoch's checkpoint as best.pt.")
    every: int = Field(1, ge=1, description="Write a checkpoint every this many epochs (and at the last).")


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


# --------------------------------------------------------------------------- search


class Objective(Section):
    """What a study optimises: a record key of the best epoch and a direction."""

    metric: str = Field("val_loss", description="A record key: val_loss or val_<metric> of train.metrics.")
    direction: Literal["minimize", "maximize", "auto"] = Field(
        "auto",
        description="`auto`: maximize r2, accuracy, f1, roc_auc, balanced_accuracy, precision and recall; "
        "minimize losses (log_loss too) and errors.",
    )

    def resolved_direction(self) -> str:
        """`auto` minimises losses and errors and maximises scores."""
        if self.direction != "auto":
            return self.direction
        return direction_of(self.metric)


class StageSpec(Section):
    """One stage of a staged search: a small study over `space` around the previous stages' winners."""

    name: str = Field(..., min_length=1, max_length=60, description="Stage name (its folder: stages/<i>-<name>).")
    space: dict[str, Any] = Field(default_factory=dict, description="This stage's search space (as search.space).")
    strategy: StageStrategyName = Field("grid", description="How this stage searches.")
    n_trials: int | None = Field(None, ge=1, description="Trial budget of a sampler stage; null: 20.")


class RaySettings(Section):
    """Which Ray cluster `search.backend: ray` joins."""

    address: str = Field(
        "auto",
        min_length=1,
        description="`auto`: the cluster started on this machine with `ray start` (or RAY_ADDRESS); "
        "`ray://host:10001`: a remote cluster through Ray Client; `local`: a private one-machine cluster.",
    )


class SearchSection(Section):
    """How configurations are chosen; `space` is validated by `tunelab.config.space`."""

    strategy: StrategyName = Field(
        "none", description="How configurations are chosen (docs/strategies/); `none`: train one configuration.")
    space: dict[str, Any] = Field(default_factory=dict, description="Key path -> values, range or fixed value.")
    n_trials: int | None = Field(
        None, ge=1, description="Trial budget of sampler strategies (null: 20); lr_sweep: points of a range."
    )
    timeout_s: float | None = Field(None, gt=0, description="Stop starting new trials after this many seconds.")
    seeds: int = Field(1, ge=1, le=100, description="Seeds per configuration; the objective is their mean.")
    objective: Objective = Field(default_factory=Objective)
    sampler_seed: int = Field(0, description="Seed of the Optuna sampler.")
    multivariate: bool = Field(False, description="tpe: model the knobs jointly instead of one by one.")
    pruner: Literal["none", "median", "asha", "hyperband"] = Field(
        "none", description="Stop hopeless trials early on the per-epoch objective."
    )
    n_jobs: int | Literal["auto"] = Field(
        "auto",
        description="Trial processes on this machine sharing the study (1 torch thread each); "
        "`auto`: one per core when the study has at least two independent groups of work.",
    )
    storage: str | None = Field(
        None, description="Optuna storage URL (postgresql://... for workers); null: sqlite study.db in the run folder."
    )
    backend: Literal["local", "ray"] = Field(
        "local",
        description="Where trial workers run: `local` processes on this machine, or `ray` tasks placed on a "
        "Ray cluster with `resources` (pip install 'tunelab[ray]'); docs/cluster.md.",
    )
    ray: RaySettings = Field(default_factory=RaySettings)
    storage_proxy: bool = Field(
        False,
        description="Serve `storage` to the workers through Optuna's gRPC storage proxy, so the database "
        "sees one process's connections whatever the worker count (needs grpcio: tunelab[ray]).",
    )
    vectorize: int | Literal["auto", "off"] = Field(
        "auto",
        description="Train same-shape trials (and seeds) as one batched model: `auto` groups of up to 32 "
        "members, K members per group, or `off`.",
    )
    batch_size: int | Literal["auto"] = Field(
        "auto",
        description="tpe, gp, cmaes: trials asked per round and trained together across the trial processes "
        "(pending trials count as running for the sampler); `auto`: enough to fill the machine (members per "
        "group x processes) but at most a quarter of n_trials, and 1 with a pruner; `1`: one trial at a time.",
    )
    stages: Annotated[list[StageSpec], Field(min_length=1)] | None = Field(
        None, description="staged strategy: the stages in order; null: seed 004's default order."
    )

    @field_validator("vectorize", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        """YAML reads a bare `off` / `on` as a boolean."""
        if isinstance(value, bool):
            return "auto" if value else "off"
        return value

    @field_validator("n_jobs", "vectorize", "batch_size")
    @classmethod
    def _bounded_count(cls, value: int | str, info: Any) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 1024:
            allowed = "auto or off" if info.field_name == "vectorize" else "auto"
            raise ValueError(f"{info.field_name} must be 1..1024 or {allowed}, got {value}")
        return value


# --------------------------------------------------------------------------- resources


class ResourcesSection(Section):
    """What one trial worker (a trial process, or a whole vectorized group) needs; placement by
    `tunelab.search.placement`, the same rule for local processes and Ray tasks."""

    cpus_per_trial: float = Field(1.0, gt=0, le=1024, description="CPU cores per trial worker (its torch threads).")
    gpus_per_trial: float = Field(
        0.0,
        ge=0,
        le=64,
        description="GPUs per trial worker: a fraction (0.25: four workers share a device) or a whole number; "
        "0: no GPU is reserved (train.device still picks one when visible).",
    )
    memory_mb_per_trial: int | None = Field(
        None, ge=1, description="Memory reserved per trial worker on a Ray cluster (MiB); null: not declared."
    )

    @field_validator("gpus_per_trial")
    @classmethod
    def _whole_above_one(cls, value: float) -> float:
        if value > 1 and value != int(value):
            raise ValueError(f"gpus_per_trial above 1 must be a whole number of devices, got {value}")
        return value


# --------------------------------------------------------------------------- final


class FinalSection(Section):
    """Retrain the winner on train+val and evaluate it once on test."""

    enabled: bool = Field(True, description="Retrain the best configuration on train+val and score it on test.")
    seeds: int = Field(1, ge=1, le=100, description="Seeds of the final model; test metrics are their mean (± std).")


# --------------------------------------------------------------------------- experiment


class Experiment(Section):
    """One experiment file, resolved: every default filled in."""

    name: str = Field(
        "experiment",
        min_length=1,
        max_length=200,
        description="Study name, a label; the run folder is runs/<name as a safe folder name>.",
    )
    description: str = Field("", description="Free text, kept in experiment.yaml.")
    data: DataSection = Field(default_factory=DataSection)
    task: TaskSection = Field(default_factory=TaskSection)
    model: ModelSection = Field(default_factory=MLPModel)
    train: TrainSection = Field(default_factory=TrainSection)
    search: SearchSection = Field(default_factory=SearchSection)
    resources: ResourcesSection = Field(default_factory=ResourcesSection)
    final: FinalSection = Field(default_factory=FinalSection)

    @field_validator("name")
    @classmethod
    def _printable_name(cls, value: str) -> str:
        if any(ord(ch) < 32 or 0x7F <= ord(ch) <= 0x9F for ch in value):
            raise ValueError("name must not contain control characters")
        return value
