"""Built-in data sets read from the shared local copies: shapes, scaling, native splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from tunelab.config.schema import DataSection, TaskSection
from tunelab.data import load_dataset

AUTO = TaskSection()


def test_toy_2d_is_bit_identical_to_the_seed_generator_and_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    ds = load_dataset(DataSection(name="toy_2d"), AUTO)
    assert torch.equal(torch.random.get_rng_state(), before)

    torch.manual_seed(11)
    x = torch.randn(240, 2)
    y = ((x[:, 0] * 0.8 + x[:, 1] * -0.5) > 0).long()
    assert torch.equal(ds.train.x, x[:180]) and torch.equal(ds.train.y, y[:180])
    assert torch.equal(ds.val.x, x[180:]) and torch.equal(ds.val.y, y[180:])
    assert ds.test is None
    assert ds.feature_scaler is None and ds.task == "classification" and ds.output_dim == 2


def test_toy_2d_keeps_its_fixed_rows_whatever_the_fractions() -> None:
    ds = load_dataset(DataSection(name="toy_2d", val_fraction=0.5, test_fraction=0.3, split_seed=7), AUTO)
    assert (len(ds.train), len(ds.val), ds.test) == (180, 60, None)


def test_digits_are_1x8x8_images_scaled_to_unit_range() -> None:
    ds = load_dataset(DataSection(name="digits"), AUTO)
    assert ds.input_shape == (1, 8, 8) and ds.train.x.shape[1:] == (1, 8, 8)
    assert ds.train.x.min() >= 0.0 and ds.train.x.max() <= 1.0
    assert ds.output_dim == 10 and ds.class_labels == [str(d) for d in range(10)]
    assert ds.train.y.dtype == torch.int64
    assert len(ds.train) + len(ds.val) + len(ds.test) == 1797


def test_diabetes_standardizes_features_and_target_by_default() -> None:
    ds = load_dataset(DataSection(name="diabetes"), AUTO)
    assert ds.feature_scaler is not None and ds.target_scaler is not None
    assert ds.train.y.shape == (len(ds.train), 1)
    assert torch.allclose(ds.train.y.mean(), torch.tensor(0.0), atol=1e-5)


def test_california_has_sklearn_features_and_target_in_100k() -> None:
    cfg = DataSection(name="california_housing", shuffle=False, val_fraction=0.0, test_fraction=0.0, standardize=False)
    ds = load_dataset(cfg, AUTO)
    assert ds.train.x.shape == (20640, 8) and ds.test is None and len(ds.val) == 0
    assert ds.feature_names == [
        "MedInc",
        "HouseAge",
        "AveRooms",
        "AveBedrms",
        "Population",
        "AveOccup",
        "Latitude",
        "Longitude",
    ]
    # First block group of the StatLib file: 880 rooms, 129 bedrooms, 322 people, 126 households.
    expected = torch.tensor([8.3252, 41.0, 880 / 126, 129 / 126, 322.0, 322 / 126, 37.88, -122.23])
    assert torch.allclose(ds.train.x[0], expected)
    assert ds.train.y[0].item() == pytest.approx(4.526)


def test_california_scaler_is_fitted_on_train_rows_only() -> None:
    ds = load_dataset(DataSection(name="california_housing"), AUTO)
    assert len(ds.train) + len(ds.val) + len(ds.test) == 20640
    assert torch.allclose(ds.train.x.mean(dim=0), torch.zeros(8), atol=1e-4)
    assert torch.allclose(ds.train.x.std(dim=0, correction=0), torch.ones(8), atol=1e-3)
    assert (ds.val.x.mean(dim=0).abs() > 1e-4).any()
    raw = load_dataset(DataSection(name="california_housing", standardize=False), AUTO)
    assert torch.allclose(ds.feature_scaler.mean, raw.train.x.double().mean(dim=0).float())
    assert ds.target_scaler is None


def test_usps_keeps_its_native_test_file_and_carves_val_from_train() -> None:
    ds = load_dataset(DataSection(name="usps", val_fraction=0.25), AUTO)
    assert len(ds.test) == 2007
    assert len(ds.val) == round(7291 * 0.25) and len(ds.train) + len(ds.val) == 7291
    assert ds.input_shape == (1, 16, 16) and ds.train.x.dtype == torch.float32
    assert ds.train.x.min() >= -1.0 and ds.train.x.max() <= 1.0
    assert torch.bincount(ds.test.y).tolist() == [359, 264, 198, 166, 200, 160, 170, 147, 166, 177]


def test_usps_without_native_splits_pools_all_rows() -> None:
    ds = load_dataset(DataSection(name="usps", use_native_splits=False, val_fraction=0.1, test_fraction=0.1), AUTO)
    assert len(ds.train) + len(ds.val) + len(ds.test) == 9298
    assert len(ds.test) == round(9298 * 0.1)


def test_house_prices_default_is_seed_002s_four_features() -> None:
    ds = load_dataset(DataSection(name="house_prices"), AUTO)
    assert ds.feature_names == ["OverallQual", "YearBuilt", "TotalBsmtSF", "GrLivArea"]
    assert ds.input_shape == (4,) and ds.target_names == ["SalePrice"]
    assert ds.target_scaler is not None and len(ds.train) + len(ds.val) + len(ds.test) == 1460


def test_house_prices_all_one_hot_encodes_and_fills_gaps_with_train_median(shared_data_dir) -> None:
    cfg = DataSection(name="house_prices", features="all", shuffle=False, standardize=False)
    ds = load_dataset(cfg, AUTO)
    assert not any(torch.isnan(s.x).any() for s in (ds.train, ds.val, ds.test))
    assert "Alley=NA" in ds.feature_names and "Alley=Grvl" in ds.feature_names
    assert "Id" not in ds.feature_names and "SalePrice" not in ds.feature_names

    frame = pd.read_csv(shared_data_dir / "house_prices" / "train.csv")
    n_train = len(ds.train)
    median = frame["LotFrontage"][:n_train].median()
    column = ds.feature_names.index("LotFrontage")
    gaps = frame["LotFrontage"].isna().to_numpy()
    x_all = torch.cat([ds.train.x, ds.val.x, ds.test.x]).numpy()
    assert np.allclose(x_all[gaps, column], median)
    assert ds.train.x[:, ds.feature_names.index("Alley=NA")].sum() == frame["Alley"][:n_train].isna().sum()


def test_house_prices_takes_a_list_of_columns() -> None:
    ds = load_dataset(DataSection(name="house_prices", features=["GrLivArea", "Street"]), AUTO)
    assert ds.feature_names == ["GrLivArea", "Street=Grvl", "Street=Pave"]


def test_query_wellformedness_is_text_with_native_train_dev_test() -> None:
    ds = load_dataset(DataSection(name="query_wellformedness"), AUTO)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (17500, 3750, 3850)
    assert ds.is_text and len(ds.train.texts) == 17500 and len(ds.test.texts) == 3850
    assert ds.train.x.shape == (17500, 0) and ds.input_shape == (0,)
    assert ds.train.y.shape == (17500, 1) and 0.0 <= ds.train.y.min() and ds.train.y.max() <= 1.0
    assert all(isinstance(t, str) and t for t in ds.val.texts[:50])
