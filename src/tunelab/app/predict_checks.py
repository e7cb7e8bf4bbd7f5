"""Check `predict` input cell by cell, so a bad value is named by row and column, not a nan.

A value past float32's range overflows to inf in the network and comes out as a `nan`
probability; an empty or non-numeric cell does the same. Refusing the first such cell, with
the row number `predict` prints and the column name, tells the user what to fix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tunelab.errors import DataError

FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_feature_values(numeric: pd.DataFrame, raw: pd.DataFrame, input_path: str | Path) -> None:
    """Raise on the first cell that is missing, non-numeric, infinite or too large for float32.

    `numeric` holds the feature columns as float64 (non-numbers coerced to NaN); `raw` is the
    file as read, for quoting the offending text.

    Raises:
        DataError: `<file>: row R, column C: <what>, got '<text>'`.
    """
    values = numeric.to_numpy(dtype="float64")
    bad = ~np.isfinite(values) | (np.abs(np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)) > FLOAT32_MAX)
    if not bad.any():
        return
    row, col = (int(i) for i in np.argwhere(bad)[0])
    name = str(numeric.columns[col])
    source = name.partition("=")[0] if name not in raw.columns else name
    text = raw[source].iloc[row] if source in raw.columns else values[row, col]
    value = values[row, col]
    if np.isnan(value):
        what = "empty or not a number"
    elif np.isinf(value) and not _looks_infinite(text):
        what = "too large for float32"
    elif np.isinf(value):
        what = "not a finite number"
    else:
        what = f"too large for float32 (|x| <= {FLOAT32_MAX:.4g})"
    raise DataError(f"{input_path}: row {row}, column {name}: {what}, got {str(text)[:40]!r}")


def _looks_infinite(text: object) -> bool:
    return str(text).strip().lower().lstrip("+-") in ("inf", "infinity")
