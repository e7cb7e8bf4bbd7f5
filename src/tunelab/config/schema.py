"""The experiment file as pydantic models: every section, every default, every cross-field rule.

Every section inherits `Section`, which forbids unknown keys and freezes the object, so a
typo is an error and a resolved experiment cannot change under a running study. The sections
live by responsibility (`model_sections`, `train_section`, `search_section`; data, task, final and
the whole `Experiment` here) and every name is re-exported, so `config.schema` stays the one import.
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
from tunelab.config.search_section import Objective as Objective
from tunelab.config.search_section import RaySettings as RaySettings
from tunelab.config.search_section import ResourcesSection as ResourcesSection
from tunelab.config.search_section import SearchSection as SearchSection
from tunelab.config.search_section import StageSpec as StageSpec
from tunelab.config.search_section import StageStrategyName as StageStrategyName
from tunelab.config.search_section import StrategyName as StrategyName
from tunelab.config.train_section import Beta as Beta
from tunelab.config.train_section import Checkpoints as Checkpoints
from tunelab.config.train_section import Divergence as Divergence
from tunelab.config.train_section import EarlyStopping as EarlyStopping
from tunelab.config.train_section import LossName as LossName
from tunelab.config.train_section import Metric as Metric
from tunelab.config.train_section import TrainSection as TrainSection


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
    cv_folds: int | None = Field(
        None, ge=2, le=1000, description="k-fold cross-validation over the non-test rows: each configuration "
        "trains k folds, the objective is their mean (std recorded); null: one validation split."
    )
    cv_fold: int | None = Field(None, ge=0, description="Set by tunelab: the fold one run trains on (leave null).")

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
