"""Split layout, train-only scalers, merge_val for the final model, and the data hash."""

from __future__ import annotations

import numpy as np
import torch

from tunelab.config.schema import DataSection, TaskSection
from tunelab.data import describe_split_sizes, load_dataset
from tunelab.data.split import fill_missing, fit_scaler, split_indices

AUTO = TaskSection()


def test_sequential_split_puts_train_first_and_test_last() -> None:
    train, val, test = split_indices(10, 0.2, 0.3, seed=0, shuffle=False)
    assert train.tolist() == [0, 1, 2, 3, 4] and val.tolist() == [5, 6] and test.tolist() == [7, 8, 9]


def test_shuffled_split_follows_default_rng_permutation() -> None:
    train, val, test = split_indices(10, 0.2, 0.2, seed=5, shuffle=True)
    order = np.random.default_rng(5).permutation(10)
    assert np.array_equal(np.concatenate([train, val, test]), order)
    assert (len(train), len(val), len(test)) == (6, 2, 2)


def test_constant_feature_keeps_unit_std() -> None:
    scaler = fit_scaler(torch.tensor([[1.0, 2.0], [1.0, 4.0]]))
    assert scaler.std.tolist() == [1.0, 1.0]  # population std of [2, 4] is 1
    assert scaler.mean.tolist() == [1.0, 3.0]


def test_missing_values_take_the_train_median() -> None:
    x = np.array([[1.0], [3.0], [np.nan], [100.0]])
    assert fill_missing(x, np.array([0, 1])).ravel().tolist() == [1.0, 3.0, 2.0, 100.0]


def test_merge_val_trains_on_train_plus_val_with_an_empty_val() -> None:
    cfg = DataSection(name="diabetes", split_seed=3)
    plain = load_dataset(cfg, AUTO)
    merged = load_dataset(cfg, AUTO, merge_val=True)
    assert len(merged.train) == len(plain.train) + len(plain.val)
    assert merged.val.x.shape == (0, 10) and len(merged.val) == 0
    assert torch.allclose(
        merged.target_scaler.inverse(merged.test.y), plain.target_scaler.inverse(plain.test.y), atol=1e-3
    )
    assert torch.allclose(merged.train.x.mean(dim=0), torch.zeros(10), atol=1e-5)
    assert not torch.allclose(merged.feature_scaler.mean, plain.feature_scaler.mean)


def test_merge_val_keeps_image_shape_of_empty_val() -> None:
    ds = load_dataset(DataSection(name="digits"), AUTO, merge_val=True)
    assert ds.val.x.shape == (0, 1, 8, 8)


def test_data_hash_is_stable_and_follows_the_split_seed() -> None:
    first = load_dataset(DataSection(name="diabetes", split_seed=0), AUTO).data_hash
    again = load_dataset(DataSection(name="diabetes", split_seed=0), AUTO).data_hash
    other = load_dataset(DataSection(name="diabetes", split_seed=1), AUTO).data_hash
    assert first == again and first != other and len(first) == 16


def test_data_hash_covers_texts() -> None:
    a = load_dataset(DataSection(name="query_wellformedness"), AUTO)
    b = load_dataset(DataSection(name="query_wellformedness", use_native_splits=False), AUTO)
    assert a.data_hash != b.data_hash


def test_describe_split_sizes_names_every_split() -> None:
    assert describe_split_sizes(load_dataset(DataSection(name="toy_2d"), AUTO)) == "train 180 / val 60 / test none"
