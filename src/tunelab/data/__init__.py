"""Data sets: built-ins, CSV/TSV files and user functions, split and scaled on training rows only."""

from __future__ import annotations

from tunelab.data.dataset import Dataset, Scaler, Split
from tunelab.data.registry import BUILTINS, BuiltinSpec, DatasetStatus, dataset_defaults, list_datasets
from tunelab.data.sources import describe_split_sizes, load_dataset

__all__ = [
    "BUILTINS",
    "BuiltinSpec",
    "Dataset",
    "DatasetStatus",
    "Scaler",
    "Split",
    "dataset_defaults",
    "describe_split_sizes",
    "list_datasets",
    "load_dataset",
]
