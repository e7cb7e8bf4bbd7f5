"""Rows to train/val/test indices, train-median fill of gaps, and scalers fitted on train rows only.

Layout: after an optional shuffle (`numpy.random.default_rng(split_seed).permutation`), the first
rows are train, then val, then test at the end; without shuffle the last rows of the file are test.
A data set's own splits (USPS test file, query_wellformedness dev/test, toy_2d) are used as they are
when `use_native_splits` is on; a split it lacks is carved from its training rows.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from tunelab.config.schema import DataSection
from tunelab.data.dataset import Scaler
from tunelab.errors import DataError

# A feature whose train std is below this is constant there: dividing by it would blow it up.
MIN_STD = 1e-8


def split_indices(
    n: int, val_fraction: float, test_fraction: float, seed: int, shuffle: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train, val and test row indices of `n` rows; sizes are the rounded fractions of `n`."""
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    n_val = round(n * val_fraction)
    n_test = round(n * test_fraction)
    n_train = n - n_val - n_test
    if n_train < 1:
        raise DataError(
            f"{n} rows leave no training rows with val_fraction={val_fraction}, test_fraction={test_fraction}"
        )
    return order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]


def plan_splits(n: int, native: dict[str, np.ndarray] | None, cfg: DataSection) -> dict[str, np.ndarray]:
    """Row indices of "train", "val" and "test" (an empty test means: no test split)."""
    seed, shuffle = cfg.split_seed, cfg.shuffle
    if not native or not cfg.use_native_splits:
        train, val, test = split_indices(n, cfg.val_fraction, cfg.test_fraction, seed, shuffle)
        return {"train": train, "val": val, "test": test}
    rows = np.asarray(native["train"])
    val, test = native.get("val"), native.get("test")
    if val is None and test is None:
        tr, va, te = split_indices(len(rows), cfg.val_fraction, cfg.test_fraction, seed, shuffle)
        return {"train": rows[tr], "val": rows[va], "test": rows[te]}
    if val is None:
        tr, va, _ = split_indices(len(rows), cfg.val_fraction, 0.0, seed, shuffle)
        return {"train": rows[tr], "val": rows[va], "test": np.asarray(test)}
    if test is None:
        tr, _, te = split_indices(len(rows), 0.0, cfg.test_fraction, seed, shuffle)
        return {"train": rows[tr], "val": np.asarray(val), "test": rows[te]}
    return {"train": rows, "val": np.asarray(val), "test": np.asarray(test)}


def subsample_rows(rows: dict[str, np.ndarray], max_rows: int | None, seed: int) -> dict[str, np.ndarray]:
    """At most `max_rows` rows in all, each split keeping its share (a quick run on a big data set).

    The draw is seeded by `split_seed` and keeps file order inside each split, so the same
    experiment always sees the same subset; a split that had rows keeps at least one.
    """
    total = sum(len(r) for r in rows.values())
    if max_rows is None or total <= max_rows:
        return rows
    rng = np.random.default_rng(seed)
    out = {}
    for name, idx in rows.items():
        idx = np.asarray(idx)
        keep = min(len(idx), max(1, round(len(idx) * max_rows / total))) if len(idx) else 0
        out[name] = np.sort(rng.choice(idx, size=keep, replace=False)) if keep < len(idx) else idx
    return out


def gap_medians(x: np.ndarray, train_rows: np.ndarray) -> dict[int, float]:
    """Flat column -> the value a gap in it gets: the median over the training rows (0 where train has none).

    Empty when the data have no gap at all. When they have one, every column is listed: a data set
    that ships with gaps (House Prices, Géron's housing.csv) may leave any column empty in new rows
    (Kaggle's test.csv blanks columns train.csv never does), and `predict` fills them as training would.
    """
    if x.dtype.kind != "f" or not np.isnan(x).any():
        return {}
    flat = x.reshape(len(x), -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: handled below
        medians = np.nanmedian(flat[train_rows], axis=0) if len(train_rows) else np.zeros(flat.shape[1])
    return {c: 0.0 if np.isnan(m) else float(m) for c, m in enumerate(medians.tolist())}


def fill_missing(x: np.ndarray, train_rows: np.ndarray) -> np.ndarray:
    """Replace NaN by the column's median over the training rows (0 where train has no value)."""
    fills = gap_medians(x, train_rows)
    if not fills:
        return x
    flat = x.reshape(len(x), -1).copy()
    gaps = np.isnan(flat)
    flat[gaps] = np.take(np.array([fills[c] for c in range(flat.shape[1])]), np.nonzero(gaps)[1])
    return flat.reshape(x.shape)


def fit_scaler(train: torch.Tensor) -> Scaler:
    """Per-feature mean and population std (ddof=0) of the training rows; tiny std -> 1.0.

    Population std matches scikit-learn's StandardScaler, so numbers agree with the seeds' scripts.
    """
    values = train.double()
    if len(values) == 0:
        raise DataError("cannot fit a scaler: the training split has no rows")
    mean = values.mean(dim=0)
    std = values.std(dim=0, correction=0)
    std = torch.where(std < MIN_STD, torch.ones_like(std), std)
    return Scaler(mean=mean.float(), std=std.float())
