"""Tables to feature arrays: column choice, one-hot encoding of text columns; CSV/TSV and house_prices.

pandas is imported when a table is read (~0.4 s of a command's start-up): a study on a built-in
array data set (california_housing's cal_housing.data, digits) never needs it.
"""

from __future__ import annotations

import csv
import difflib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tunelab.config.schema import DataSection
from tunelab.data.raw import RawData
from tunelab.errors import ConfigError, DataError, DataPathError

if TYPE_CHECKING:
    import pandas as pd

# Seed 002's four house-price features.
HOUSE_PRICES_DEFAULT_FEATURES: tuple[str, ...] = ("OverallQual", "YearBuilt", "TotalBsmtSF", "GrLivArea")
MISSING_CATEGORY = "NA"


def encode_frame(frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Numeric columns as they are (NaN kept for a train-median fill), text columns one-hot.

    A missing value in a text column becomes its own category "NA": in house_prices `NA` means
    "none" (no alley, no pool), which is information, not a gap.
    """
    import pandas as pd

    blocks: list[np.ndarray] = []
    names: list[str] = []
    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
            blocks.append(series.to_numpy(dtype=np.float64, na_value=np.nan)[:, None])
            names.append(str(column))
            continue
        text = series.astype(object).where(series.notna(), MISSING_CATEGORY).astype(str)
        categories = sorted(text.unique())
        blocks.append((text.to_numpy()[:, None] == np.array(categories)[None, :]).astype(np.float64))
        names.extend(f"{column}={c}" for c in categories)
    if not blocks:
        return np.zeros((len(frame), 0), dtype=np.float64), names
    return np.concatenate(blocks, axis=1), names


def column_list(frame: pd.DataFrame, limit: int = 30) -> str:
    """The frame's column names for an error line (the first `limit`, then how many more)."""
    names = [str(c) for c in frame.columns]
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def choose_columns(
    frame: pd.DataFrame, cfg: DataSection, target: str, default: list[str], exclude: list[str]
) -> list[str]:
    """Resolve `data.features`: a list, `all` (all but target/excluded), or the data set's default."""
    if cfg.features == "all" or (cfg.features == "default" and not default):
        return [c for c in frame.columns if c != target and c not in exclude]
    wanted = list(default) if cfg.features == "default" else list(cfg.features)
    for column in wanted:
        if column not in frame.columns:
            hint = difflib.get_close_matches(column, [str(c) for c in frame.columns], n=1)
            extra = f" (did you mean {hint[0]}?)" if hint else ""
            raise ConfigError(
                f"no column {column!r} in the data{extra}; columns: {column_list(frame)}", key="data.features"
            )
        if column == target:
            raise ConfigError(f"column {column!r} is the target, not a feature", key="data.features")
    return wanted


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or TSV with a header row; `.tsv`/`.tab` are tab separated, others sniffed (comma default)."""
    import pandas as pd

    if path.suffix.lower() in (".tsv", ".tab"):
        sep = "\t"
    else:
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            sample = handle.read(64 * 1024)
        try:
            sep = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
        except csv.Error:
            sep = ","
    try:
        return pd.read_csv(path, sep=sep)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read {path}: {' '.join(str(exc).split())}") from exc


def load_csv(cfg: DataSection, path: Path | None = None) -> RawData:
    """`data.name: csv`: the file at `data.path` (relative to the current directory)."""
    file = Path(cfg.path or "").expanduser()
    given = "" if file.is_absolute() else f" (given as {cfg.path!r}, relative to the current folder)"
    if not file.is_absolute():
        file = Path.cwd() / file
    if not file.is_file():
        raise DataPathError(f"data set csv: file {file} not found{given}")
    frame = read_table(file)
    target = cfg.target or ""
    if target not in frame.columns:
        hint = difflib.get_close_matches(target, [str(c) for c in frame.columns], n=1)
        extra = f" (did you mean {hint[0]}?)" if hint else ""
        raise ConfigError(f"no column {target!r} in {file}{extra}; columns: {column_list(frame)}", key="data.target")
    columns = choose_columns(frame, cfg, target, default=[], exclude=[])
    x, names = encode_frame(frame[columns])
    y_series = frame[target]
    if y_series.isna().any():
        raise DataError(f"data set csv: target column {target!r} has {int(y_series.isna().sum())} missing values")
    y = y_series.to_numpy()
    if y.dtype == object:
        y = y.astype(str)
    return RawData(x=x, y=y, source=str(file), feature_names=names, target_names=[target])


def load_house_prices(cfg: DataSection, path: Path) -> RawData:
    """Kaggle's Ames train.csv; its test.csv has no SalePrice, so rows are split by fractions."""
    frame = read_table(path)
    if "SalePrice" not in frame.columns:
        raise DataError(f"data set house_prices: {path} has no SalePrice column; is it Kaggle's train.csv?")
    columns = choose_columns(frame, cfg, "SalePrice", list(HOUSE_PRICES_DEFAULT_FEATURES), exclude=["Id"])
    x, names = encode_frame(frame[columns])
    y = frame["SalePrice"].to_numpy(dtype=np.float64)
    return RawData(x=x, y=y, task="regression", source=str(path), feature_names=names, target_names=["SalePrice"])
