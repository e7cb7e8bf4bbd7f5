"""Loaders of the built-in data sets: packaged (digits, diabetes), generated (toy_2d), local files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tunelab.config.schema import DataSection
from tunelab.data.raw import RawData
from tunelab.errors import DataError

DIGIT_LABELS = [str(d) for d in range(10)]
DIGITS_PIXEL_MAX = 16.0  # sklearn's digits count ink in 0..16; the loader (and predict) divide by it


def _pixel_names(side: int) -> list[str]:
    return [f"pixel_{r}_{c}" for r in range(side) for c in range(side)]


def load_digits(cfg: DataSection, path: Path | None = None) -> RawData:
    """scikit-learn's 8x8 digits as (n, 1, 8, 8) images scaled from 0..16 to [0, 1]."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = (bunch.data.astype(np.float64) / DIGITS_PIXEL_MAX).reshape(-1, 1, 8, 8)
    return RawData(
        x=x,
        y=bunch.target.astype(np.int64),
        task="classification",
        source="sklearn digits",
        feature_names=_pixel_names(8),
        target_names=["digit"],
        class_labels=DIGIT_LABELS,
    )


def load_diabetes(cfg: DataSection, path: Path | None = None) -> RawData:
    """scikit-learn's diabetes regression (442 rows, 10 features, disease progression)."""
    from sklearn.datasets import load_diabetes as sk_diabetes

    bunch = sk_diabetes()
    return RawData(
        x=bunch.data.astype(np.float64),
        y=bunch.target.astype(np.float64),
        task="regression",
        source="sklearn diabetes",
        feature_names=list(bunch.feature_names),
        target_names=["progression"],
    )


def load_wine(cfg: DataSection, path: Path | None = None) -> RawData:
    """scikit-learn's wine: 178 rows, 13 chemical measurements, 3 cultivars (small data: cv_folds)."""
    from sklearn.datasets import load_wine as sk_wine

    bunch = sk_wine()
    return RawData(
        x=bunch.data.astype(np.float64),
        y=bunch.target.astype(np.int64),
        task="classification",
        source="sklearn wine",
        feature_names=list(bunch.feature_names),
        target_names=["cultivar"],
        class_labels=[str(c) for c in bunch.target_names],
    )


def toy_2d_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed 240-row generator: same numbers as `torch.manual_seed(11); torch.randn(240, 2)`.

    A private Generator gives bit-identical draws without touching the global torch RNG.
    """
    generator = torch.Generator().manual_seed(11)
    x = torch.randn(240, 2, generator=generator)
    y = ((x[:, 0] * 0.8 + x[:, 1] * -0.5) > 0).long()
    return x, y


def load_toy_2d(cfg: DataSection, path: Path | None = None) -> RawData:
    """Two Gaussian features, a linear boundary; native split: first 180 train, last 60 val, no test."""
    x, y = toy_2d_tensors()
    native = {"train": np.arange(180), "val": np.arange(180, 240), "test": np.arange(0)}
    return RawData(
        x=x.numpy().astype(np.float64),
        y=y.numpy(),
        task="classification",
        source="generated toy_2d",
        feature_names=["x0", "x1"],
        target_names=["label"],
        native=native,
        class_labels=["0", "1"],
    )


CALIFORNIA_FEATURES = [
    "MedInc",
    "HouseAge",
    "AveRooms",
    "AveBedrms",
    "Population",
    "AveOccup",
    "Latitude",
    "Longitude",
]


# The StatLib file's first eight columns, in order (Géron's housing.csv names them the same way).
CALIFORNIA_RAW_COLUMNS = [
    "longitude",
    "latitude",
    "housing_median_age",
    "total_rooms",
    "total_bedrooms",
    "population",
    "households",
    "median_income",
]


def california_features(raw: np.ndarray) -> np.ndarray:
    """scikit-learn's eight derived features from the file's eight raw columns (CALIFORNIA_RAW_COLUMNS order).

    The loader and `predict` both call this, so a row as the file holds it predicts as it trained.
    """
    lon, lat, age, rooms, bedrooms, population, households, income = np.asarray(raw, dtype=np.float64).T
    return np.stack(
        [income, age, rooms / households, bedrooms / households, population, population / households, lat, lon],
        axis=1,
    )


def load_california_housing(cfg: DataSection, path: Path) -> RawData:
    """The StatLib block groups with scikit-learn's eight derived features; target in $100,000.

    `housing.csv` (Géron's copy) has the same numbers but blanks 207 total_bedrooms; those rows get
    NaN in AveBedrms, filled later with the train median.
    """
    if path.name == "housing.csv":
        import pandas as pd

        frame = pd.read_csv(path)
        raw = frame[[*CALIFORNIA_RAW_COLUMNS, "median_house_value"]].to_numpy(dtype=np.float64)
    else:
        raw = np.loadtxt(path, delimiter=",", dtype=np.float64)
    if raw.ndim != 2 or raw.shape[1] != 9:
        raise DataError(f"data set california_housing: {path} should have 9 columns, got shape {raw.shape}")
    x = california_features(raw[:, :8])
    value = raw[:, 8]
    return RawData(
        x=x,
        y=value / 100_000.0,
        task="regression",
        source=str(path),
        feature_names=list(CALIFORNIA_FEATURES),
        target_names=["MedHouseVal"],
    )


def load_usps(cfg: DataSection, path: Path) -> RawData:
    """ESL's USPS digits: zip.train.gz (7291) plus its native test file zip.test.gz (2007), in [-1, 1]."""
    parts = []
    for name in ("zip.train.gz", "zip.test.gz"):
        try:
            table = np.loadtxt(path.parent / name, dtype=np.float64)
        except (OSError, ValueError) as exc:
            raise DataError(f"data set usps: cannot read {path.parent / name}: {' '.join(str(exc).split())}") from exc
        if table.ndim != 2 or table.shape[1] != 257:
            raise DataError(f"data set usps: {path.parent / name} should have 257 columns, got shape {table.shape}")
        parts.append(table)
    train = parts[0]
    both = np.concatenate(parts)
    native = {"train": np.arange(len(train)), "test": np.arange(len(train), len(both))}
    return RawData(
        x=both[:, 1:].reshape(-1, 1, 16, 16),
        y=both[:, 0].astype(np.int64),
        task="classification",
        source=str(path.parent),
        feature_names=_pixel_names(16),
        target_names=["digit"],
        native=native,
        class_labels=DIGIT_LABELS,
    )


def load_query_wellformedness(cfg: DataSection, path: Path) -> RawData:
    """Google's query well-formedness ratings (mean of 5 judgements, 0..1); native train/dev/test."""
    texts: list[str] = []
    ratings: list[float] = []
    native: dict[str, np.ndarray] = {}
    for split, name in (("train", "train.tsv"), ("val", "dev.tsv"), ("test", "test.tsv")):
        start = len(texts)
        file = path.parent / name
        with file.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                line = line.rstrip("\n")
                if not line:
                    continue
                query, sep, rating = line.rpartition("\t")
                try:
                    ratings.append(float(rating))
                except ValueError:
                    raise DataError(
                        f"data set query_wellformedness: {file}:{number}: expected query<TAB>rating"
                    ) from None
                texts.append(query if sep else "")
        native[split] = np.arange(start, len(texts))
    n = len(texts)
    return RawData(
        x=np.zeros((n, 0)),
        y=np.asarray(ratings, dtype=np.float64),
        task="regression",
        source=str(path.parent),
        target_names=["rating"],
        texts=texts,
        native=native,
    )
