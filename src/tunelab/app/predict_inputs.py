"""What `predict` accepts, as one table: a CSV path, a DataFrame, an array, or a list of rows.

Everything becomes a DataFrame with a name for error lines (`where`), so the feature lookup, the
cell checks and the id pass-through run the same way whatever the caller handed over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import pandas as pd

from tunelab.errors import DataError

# What `tunelab.predict` takes as rows.
Rows = Union[str, Path, pd.DataFrame, np.ndarray, Sequence[Any]]  # noqa: UP007 (a runtime alias)

TEXT_COLUMNS = ("text", "query")


def id_column(frame: pd.DataFrame) -> Any | None:
    """The column passed through to the output: the first one named `id` in any case (House Prices' `Id`).

    A data set's row identifier is never a feature the model saw, but the caller needs it to match
    predictions to rows (a Kaggle submission is `Id,SalePrice`).
    """
    for column in frame.columns:
        if str(column).strip().lower() == "id":
            return column
    return None


def read_csv(path: Path) -> pd.DataFrame:
    """A CSV (or .tsv) file with a header row."""
    if not path.exists():
        raise DataError(f"input file not found: {path}")
    sep = "\t" if path.suffix == ".tsv" else ","
    try:
        return pd.read_csv(path, sep=sep)
    except Exception as exc:
        raise DataError(f"cannot read {path} as CSV: {type(exc).__name__}") from None


def as_frame(rows: Rows, feature_names: list[str], input_shape: Sequence[int]) -> tuple[pd.DataFrame, str]:
    """(the rows as a DataFrame, what to call them in an error line).

    An array or a list of lists holds the feature columns in training order, flat (n, features)
    or shaped like the model's input (n, *input_shape); a list of dicts is read by key.
    """
    if isinstance(rows, str | Path):
        return read_csv(Path(rows)), str(rows)
    if isinstance(rows, pd.DataFrame):
        return rows.reset_index(drop=True), "DataFrame input"
    if isinstance(rows, Sequence) and rows and all(isinstance(r, Mapping) for r in rows):
        return pd.DataFrame(list(rows)), "list input"
    where = "array input" if isinstance(rows, np.ndarray) else "list input"
    try:
        array = np.asarray(rows, dtype=object)
    except ValueError:
        raise DataError(f"{where}: rows of different lengths; give {len(feature_names)} values a row") from None
    if array.ndim == 1 and len(array) == len(feature_names) and len(feature_names) > 1:
        array = array.reshape(1, -1)  # one row
    if array.ndim >= 2 and tuple(array.shape[1:]) == tuple(input_shape):
        array = array.reshape(len(array), -1)
    if array.ndim != 2 or array.shape[1] != len(feature_names):
        raise DataError(
            f"{where}: expected rows of {len(feature_names)} feature values "
            f"({', '.join(feature_names[:5])}{', ...' if len(feature_names) > 5 else ''}), got shape {array.shape}"
        )
    return pd.DataFrame(array, columns=feature_names), where


def read_texts(rows: Rows) -> list[str]:
    """Texts to predict: a list of strings, a .txt file (one a line), or a table with a `text`/`query` column."""
    if isinstance(rows, Sequence) and not isinstance(rows, str) and all(isinstance(r, str) for r in rows):
        return list(rows)
    if isinstance(rows, str | Path):
        path = Path(rows)
        if not path.exists():
            raise DataError(f"input file not found: {path}")
        if path.suffix == ".txt":
            return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        sep = "\t" if path.suffix == ".tsv" else ","
        try:
            frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
        except Exception as exc:
            raise DataError(f"cannot read {path} as CSV: {type(exc).__name__}") from None
        where = str(path)
    elif isinstance(rows, pd.DataFrame):
        frame, where = rows, "DataFrame input"
    else:
        raise DataError("a text run predicts texts: give a list of strings, a .txt/.csv file or a DataFrame")
    by_lower = {str(c).strip().lower(): c for c in frame.columns}
    for name in TEXT_COLUMNS:
        if name in by_lower:
            return frame[by_lower[name]].astype(str).tolist()
    raise DataError(
        f"{where}: no text column; name it text or query in the header, or pass a .txt file with one text a line"
    )
