"""Rows as a loader hands them over, before splitting and scaling: numpy arrays plus metadata."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Targets with at most this many distinct integer values are read as class labels.
MAX_INFERRED_CLASSES = 20


@dataclass
class RawData:
    """All rows of a data set, with the data set's own splits (if any) as row indices.

    `x` is float (n, *input_shape) and may hold NaN (filled later with the train median);
    `y` is (n,) labels of any dtype for classification, or float (n,) / (n, k) for regression.
    `native` maps "train"/"val"/"test" to row indices; a native split with zero rows means
    "this data set has none" (toy_2d has no test split).
    """

    x: np.ndarray
    y: np.ndarray
    task: str | None = None  # "regression", "classification", or None: infer from y
    source: str = ""
    feature_names: list[str] = field(default_factory=list)
    target_names: list[str] = field(default_factory=list)
    texts: list[str] | None = None
    native: dict[str, np.ndarray] | None = None
    class_labels: list[str] | None = None  # fixed label set (digits: "0".."9"); None: from y


def infer_task(y: np.ndarray) -> str:
    """Strings/bools, or few distinct integer values, are classes; anything else is regression."""
    if y.ndim == 2 and y.shape[1] > 1:
        return "regression"
    values = y.reshape(-1)
    if values.dtype.kind not in "fiu":
        return "classification"
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        return "regression"
    integral = values.dtype.kind in "iu" or bool(np.all(np.mod(values, 1) == 0))
    if integral and len(np.unique(values)) <= MAX_INFERRED_CLASSES:
        return "classification"
    return "regression"


def encode_labels(y: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Map labels to 0..k-1 in sorted order; keep the original values as strings."""
    values = y.reshape(-1)
    if values.dtype.kind in "fiub":
        uniques = np.unique(values)
        codes = np.searchsorted(uniques, values)
        labels = [_label_text(v) for v in uniques]
    else:
        as_text = np.array([str(v) for v in values], dtype=object)
        uniques = np.array(sorted(set(as_text.tolist())), dtype=object)
        index = {v: i for i, v in enumerate(uniques.tolist())}
        codes = np.array([index[v] for v in as_text], dtype=np.int64)
        labels = [str(v) for v in uniques]
    return codes.astype(np.int64), labels


def _label_text(value: object) -> str:
    """3.0 -> "3", so integer labels stored as floats read naturally."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value.item() if isinstance(value, np.generic) else value)
