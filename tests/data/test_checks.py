"""Data checks: duplicates across splits, class counts, constant and empty columns, single-feature leaks."""

from __future__ import annotations

import numpy as np
import torch

from tunelab.data.checks import check_data
from tunelab.data.dataset import Dataset, Split


def _dataset(train_x, train_y, val_x, val_y, test=None, task="classification", **extra) -> Dataset:
    t = lambda a, dt=torch.float32: torch.as_tensor(np.asarray(a), dtype=dt)  # noqa: E731
    ydt = torch.int64 if task == "classification" else torch.float32
    test_split = Split(t(test[0]), t(test[1], ydt)) if test else None
    x = np.asarray(train_x)
    return Dataset(
        name="t", task=task, train=Split(t(train_x), t(train_y, ydt)), val=Split(t(val_x), t(val_y, ydt)),
        test=test_split, input_shape=(x.shape[1],), output_dim=3 if task == "classification" else 1,
        feature_names=[f"f{i}" for i in range(x.shape[1])], data_hash="h", **extra,
    )


def test_rows_repeated_in_later_splits_are_counted_with_their_indices() -> None:
    train = [[0, 0], [1, 1], [2, 2], [2, 2]]
    val = [[5, 5], [1, 1], [7, 7]]
    test = ([[1, 1], [7, 7], [9, 9]], [0, 0, 0])
    checks = check_data(_dataset(train, [0, 1, 2, 2], val, [0, 1, 2], test))
    dups = checks["duplicates"]
    assert dups["train_val"] == {"rows": 1, "of": 3, "examples": [1]}
    assert dups["train_test"] == {"rows": 1, "of": 3, "examples": [0]}
    assert dups["val_test"] == {"rows": 2, "of": 3, "examples": [0, 1]}
    assert dups["within_train"] == 1


def test_class_counts_per_split_use_the_class_labels() -> None:
    ds = _dataset([[0.0]] * 6, [0, 0, 0, 0, 1, 2], [[1.0]] * 2, [0, 2], class_labels=["a", "b", "c"])
    assert check_data(ds)["class_balance"] == {"train": {"a": 4, "b": 1, "c": 1}, "val": {"a": 1, "b": 0, "c": 1}}


def test_constant_and_all_missing_columns_are_named() -> None:
    rng = np.random.default_rng(0)
    x = np.c_[rng.normal(size=40), np.ones(40), np.zeros(40)]
    ds = _dataset(x, rng.integers(0, 3, 40), x[:10], rng.integers(0, 3, 10),
                  missing_per_feature=(0, 0, 50), rows_loaded=50)
    cols = check_data(ds)["columns"]
    assert cols["constant_in_train"] == ["f1", "f2"]
    assert cols["all_missing"] == ["f2"]
    assert cols["missing_values"] == {"f2": 50}


def test_a_feature_that_encodes_the_class_is_the_leak_and_noise_is_not() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    x = np.c_[rng.normal(size=300), y * 10 + rng.normal(scale=0.5, size=300), rng.normal(size=300)]
    leak = check_data(_dataset(x[:200], y[:200], x[200:], y[200:]))["leakage"]
    assert leak["best_feature"] == "f1" and leak["best_score"] == 1.0 and leak["score"] == "val_accuracy"
    assert leak["top"][1][1] < 0.6  # the noise features predict about chance
    assert 0.2 < leak["baseline"] < 0.5


def test_regression_leak_is_scored_as_validation_r2() -> None:
    rng = np.random.default_rng(2)
    target = rng.normal(size=400)
    x = np.c_[rng.normal(size=400), np.exp(target)]  # monotone, not linear: still a leak
    leak = check_data(_dataset(x[:300], target[:300, None], x[300:], target[300:, None], task="regression"))["leakage"]
    assert leak["best_feature"] == "f1" and leak["best_score"] > 0.98 and leak["score"] == "val_r2"
    assert dict(leak["top"])["f0"] < 0.1


def test_wide_inputs_skip_the_leak_search_and_say_why() -> None:
    x = np.zeros((8, 600))
    leak = check_data(_dataset(x, [0, 1] * 4, x[:2], [0, 1]))["leakage"]
    assert leak == {"skipped": "600 features (more than 512)"}
