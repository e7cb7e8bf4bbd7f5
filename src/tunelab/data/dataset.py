"""The in-memory data a trial trains on: tensors per split plus what it took to make them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

Task = Literal["regression", "classification"]


@dataclass(frozen=True)
class Scaler:
    """Mean/std fitted on the training rows only; applied to every split and at predict time."""

    mean: torch.Tensor
    std: torch.Tensor

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.flatten().tolist(), "std": self.std.flatten().tolist()}


@dataclass(frozen=True)
class Split:
    """One split. `x` is float32 (n, *input_shape); `y` is int64 (n,) or float32 (n, targets).

    Text data sets keep the raw strings in `texts` and an empty (n, 0) `x` until an encoder fills it.
    """

    x: torch.Tensor
    y: torch.Tensor
    texts: list[str] | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class Dataset:
    """Everything the trainer and the reports need to know about the data actually used."""

    name: str
    task: Task
    train: Split
    val: Split
    test: Split | None
    input_shape: tuple[int, ...]
    output_dim: int
    feature_names: list[str] = field(default_factory=list)
    target_names: list[str] = field(default_factory=list)
    class_labels: list[str] | None = None
    feature_scaler: Scaler | None = None
    target_scaler: Scaler | None = None
    data_hash: str = ""
    source: str = ""
    # Before the train-median fill: empty values per feature column, over `rows_loaded` rows (data checks).
    missing_per_feature: tuple[int, ...] = ()
    rows_loaded: int = 0
    # Feature name -> its train median, when the data have gaps (predict fills empty cells alike); else empty.
    fill_values: dict[str, float] = field(default_factory=dict)

    @property
    def is_text(self) -> bool:
        return self.train.texts is not None

    @property
    def is_image(self) -> bool:
        """uint8 images (image_folder): batches become float, and are augmented, inside the model."""
        return self.train.x.dtype == torch.uint8
