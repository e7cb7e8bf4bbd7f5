"""k-fold cross-validation on small data (`data.cv_folds: k`).

With 36 validation rows (wine), one validation split decides trials by a row or two: the
objective is noise. Cross-validation trains each configuration k times, each time validating on
a different k-th of the non-test rows (the folds partition them: every row is validated exactly
once), and the objective is the mean over folds with its std. The test rows stay untouched and
the final model retrains on all non-test rows, as without folds.

A fold is an experiment of its own: `data.cv_fold: i` (set by tunelab, not by hand), so the data
cache, params.json and the records all say which fold a run trained on.
"""

from __future__ import annotations

import numpy as np

from tunelab.config.schema import Experiment
from tunelab.errors import ConfigError


def check_cv(exp: Experiment) -> None:
    """Refuse settings folds cannot serve, before anything runs.

    Raises:
        ConfigError: folds with several seeds, an image folder, or a hand-set `data.cv_fold`.
    """
    folds = exp.data.cv_folds
    if folds is None:
        if exp.data.cv_fold is not None:
            raise ConfigError("cv_fold is set by tunelab for each fold; set data.cv_folds instead", key="data.cv_fold")
        return
    if exp.search.seeds > 1:
        raise ConfigError(
            f"cv_folds trains {folds} folds in place of seeds; set search.seeds to 1, got {exp.search.seeds}",
            key="data.cv_folds",
        )
    if exp.data.name == "image_folder":
        raise ConfigError("cv_folds is not available for image_folder data; use val_fraction", key="data.cv_folds")


def fold_rows(train: np.ndarray, val: np.ndarray, folds: int, fold: int, seed: int) -> dict[str, np.ndarray]:
    """Fold `fold` of `folds` over the non-test rows (train then val): a seeded shuffle cut into
    `folds` near-equal parts; that part is val, the others train.

    Raises:
        ConfigError: more folds than non-test rows, or a fold index out of range.
    """
    rows = np.concatenate([np.asarray(train), np.asarray(val)])
    if folds > len(rows):
        raise ConfigError(
            f"{folds} folds need at least {folds} non-test rows, got {len(rows)}; use 2..{len(rows)}",
            key="data.cv_folds",
        )
    if not 0 <= fold < folds:
        raise ConfigError(f"cv_fold must be 0..{folds - 1}, got {fold}", key="data.cv_fold")
    order = rows[np.random.default_rng(seed).permutation(len(rows))]
    parts = np.array_split(order, folds)
    train_rows = np.concatenate([p for i, p in enumerate(parts) if i != fold])
    return {"train": np.sort(train_rows), "val": np.sort(parts[fold])}


def fold_experiments(exp: Experiment) -> list[Experiment]:
    """The k experiments of a cross-validated configuration: the same settings with data.cv_fold i."""
    folds = exp.data.cv_folds or 0
    return [exp.model_copy(update={"data": exp.data.model_copy(update={"cv_fold": i})}) for i in range(folds)]


def repeats(exp: Experiment) -> int:
    """Runs per configuration: its folds with cv_folds, else its seeds."""
    return exp.data.cv_folds or exp.search.seeds
