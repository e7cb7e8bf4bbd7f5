"""Rows as a built-in data set's own files hold them, turned into the features its loader made.

`predict` takes new rows the way the data set ships them (digits pixels 0..16, California's raw
block-group columns); the model trained on what the loader produced from such rows. Each built-in
whose loader changes feature values names that change here, using the loader's own function, so
training and prediction cannot drift apart. Data sets missing from `RAW_INPUTS` load their
features unchanged (USPS is already in [-1, 1] in its files; House Prices' categories are one-hot
encoded by column name; diabetes comes as scikit-learn ships it).
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from tunelab.data.builtins import CALIFORNIA_FEATURES, CALIFORNIA_RAW_COLUMNS, DIGITS_PIXEL_MAX, california_features


def _digits(frame: pd.DataFrame, feature_names: list[str]) -> pd.DataFrame:
    """Pixel counts 0..16 divided by 16, as `load_digits` does; other columns pass through."""
    out = frame.copy()
    pixels = [name for name in feature_names if name in out.columns]
    out[pixels] = out[pixels].apply(pd.to_numeric, errors="coerce") / DIGITS_PIXEL_MAX
    return out


def _california(frame: pd.DataFrame, feature_names: list[str]) -> pd.DataFrame:
    """The file's raw columns (longitude ... median_income) to the eight derived features.

    Rows that already carry the derived features (`MedInc`, ...) are taken as they are.
    """
    if all(name in frame.columns for name in CALIFORNIA_FEATURES) or not all(
        name in frame.columns for name in CALIFORNIA_RAW_COLUMNS
    ):
        return frame
    raw = frame[CALIFORNIA_RAW_COLUMNS].apply(pd.to_numeric, errors="coerce").to_numpy(dtype="float64")
    derived = pd.DataFrame(california_features(raw), columns=CALIFORNIA_FEATURES, index=frame.index)
    return pd.concat([frame, derived], axis=1)


RAW_INPUTS: dict[str, Callable[[pd.DataFrame, list[str]], pd.DataFrame]] = {
    "digits": _digits,
    "california_housing": _california,
}


def as_loaded(data_name: str, frame: pd.DataFrame, feature_names: list[str]) -> pd.DataFrame:
    """`frame` with the loader's value changes of data set `data_name` applied (unchanged if it has none)."""
    convert = RAW_INPUTS.get(data_name)
    return convert(frame, feature_names) if convert else frame
