"""Built-in data sets: shapes, scaling, native splits; file-based ones read the miniature files.

The miniature files (tests/fixtures/mini_data.py) have the real formats, so the parsing runs on
every machine; the published row counts are checked in test_real_files.py when data is configured.
"""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from fixtures import mini_data as mini
from tunelab.config.schema import DataSection, TaskSection
from tunelab.data import load_dataset
from tunelab.errors import DataError

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
    cfg = DataSection(name="california_housing", shuffle=False, standardize=False).model_copy(
        update={"val_fraction": 0.0, "test_fraction": 0.0}  # every row in train (an experiment refuses this)
    )
    ds = load_dataset(cfg, AUTO)
    assert ds.train.x.shape == (mini.CALIFORNIA_ROWS, 8) and ds.test is None and len(ds.val) == 0
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


def test_california_housing_csv_gives_the_same_numbers_with_gaps(tmp_path, mini_data) -> None:
    (tmp_path / "california_housing").mkdir()
    shutil.copy(mini_data / "california_housing" / "housing.csv", tmp_path / "california_housing")
    cfg = DataSection(name="california_housing", shuffle=False, standardize=False).model_copy(
        update={"val_fraction": 0.0, "test_fraction": 0.0}  # every row in train (an experiment refuses this)
    )
    from_csv = load_dataset(cfg, AUTO, data_dir=str(tmp_path)).train
    from_data = load_dataset(cfg, AUTO).train
    frame = pd.read_csv(mini_data / "california_housing" / "housing.csv")
    gaps = torch.tensor(frame["total_bedrooms"].isna().to_numpy())
    assert gaps.sum() == mini.CALIFORNIA_BLANK_BEDROOMS
    bedrooms = 3  # AveBedrms: the blanked rows take the train median, every other value agrees
    assert torch.allclose(from_csv.x[~gaps], from_data.x[~gaps]) and torch.equal(from_csv.y, from_data.y)
    assert torch.allclose(from_csv.x[gaps, bedrooms], from_data.x[~gaps, bedrooms].median())


def test_california_scaler_is_fitted_on_train_rows_only() -> None:
    ds = load_dataset(DataSection(name="california_housing"), AUTO)
    assert len(ds.train) + len(ds.val) + len(ds.test) == mini.CALIFORNIA_ROWS
    assert torch.allclose(ds.train.x.mean(dim=0), torch.zeros(8), atol=1e-4)
    assert torch.allclose(ds.train.x.std(dim=0, correction=0), torch.ones(8), atol=1e-3)
    assert (ds.val.x.mean(dim=0).abs() > 1e-4).any()
    raw = load_dataset(DataSection(name="california_housing", standardize=False), AUTO)
    assert torch.allclose(ds.feature_scaler.mean, raw.train.x.double().mean(dim=0).float())
    assert ds.target_scaler is None


def test_california_with_eight_columns_is_one_line_data_error(tmp_path) -> None:
    (tmp_path / "california_housing").mkdir()
    (tmp_path / "california_housing" / "cal_housing.data").write_text("1,2,3,4,5,6,7,8\n1,2,3,4,5,6,7,8\n")
    with pytest.raises(DataError, match=r"should have 9 columns, got shape \(2, 8\)"):
        load_dataset(DataSection(name="california_housing"), AUTO, data_dir=str(tmp_path))


def test_usps_keeps_its_native_test_file_and_carves_val_from_train() -> None:
    n_train, n_test = sum(mini.USPS_TRAIN_COUNTS), sum(mini.USPS_TEST_COUNTS)
    ds = load_dataset(DataSection(name="usps", val_fraction=0.25), AUTO)
    assert len(ds.test) == n_test
    assert len(ds.val) == round(n_train * 0.25) and len(ds.train) + len(ds.val) == n_train
    assert ds.input_shape == (1, 16, 16) and ds.train.x.dtype == torch.float32
    assert ds.train.x.min() >= -1.0 and ds.train.x.max() <= 1.0
    assert torch.bincount(ds.test.y).tolist() == list(mini.USPS_TEST_COUNTS)


def test_usps_without_native_splits_pools_all_rows() -> None:
    total = sum(mini.USPS_TRAIN_COUNTS) + sum(mini.USPS_TEST_COUNTS)
    ds = load_dataset(DataSection(name="usps", use_native_splits=False, val_fraction=0.1, test_fraction=0.1), AUTO)
    assert len(ds.train) + len(ds.val) + len(ds.test) == total
    assert len(ds.test) == round(total * 0.1)


def test_usps_row_of_the_wrong_width_is_one_line_data_error(tmp_path, mini_data) -> None:
    shutil.copytree(mini_data / "usps", tmp_path / "usps")
    (tmp_path / "usps" / "zip.test.gz").write_bytes(gzip.compress(b"1.0 -1.0 0.5\n2.0 1.0 0.0\n"))
    with pytest.raises(DataError) as err:
        load_dataset(DataSection(name="usps"), AUTO, data_dir=str(tmp_path))
    bad = tmp_path / "usps" / "zip.test.gz"
    assert str(err.value) == f"data set usps: {bad} should have 257 columns, got shape (2, 3)"


def test_house_prices_default_is_seed_002s_four_features() -> None:
    ds = load_dataset(DataSection(name="house_prices"), AUTO)
    assert ds.feature_names == ["OverallQual", "YearBuilt", "TotalBsmtSF", "GrLivArea"]
    assert ds.input_shape == (4,) and ds.target_names == ["SalePrice"]
    assert ds.target_scaler is not None and len(ds.train) + len(ds.val) + len(ds.test) == mini.HOUSE_TRAIN_ROWS


def test_house_prices_all_one_hot_encodes_and_fills_gaps_with_train_median(mini_data) -> None:
    cfg = DataSection(name="house_prices", features="all", shuffle=False, standardize=False)
    ds = load_dataset(cfg, AUTO)
    assert not any(torch.isnan(s.x).any() for s in (ds.train, ds.val, ds.test))
    assert "Alley=NA" in ds.feature_names and "Alley=Grvl" in ds.feature_names
    assert "Id" not in ds.feature_names and "SalePrice" not in ds.feature_names

    frame = pd.read_csv(mini_data / "house_prices" / "train.csv")
    n_train = len(ds.train)
    median = frame["LotFrontage"][:n_train].median()
    column = ds.feature_names.index("LotFrontage")
    gaps = frame["LotFrontage"].isna().to_numpy()
    assert gaps.any()
    x_all = torch.cat([ds.train.x, ds.val.x, ds.test.x]).numpy()
    assert np.allclose(x_all[gaps, column], median)
    assert ds.train.x[:, ds.feature_names.index("Alley=NA")].sum() == frame["Alley"][:n_train].isna().sum()


def test_house_prices_takes_a_list_of_columns() -> None:
    ds = load_dataset(DataSection(name="house_prices", features=["GrLivArea", "Street"]), AUTO)
    assert ds.feature_names == ["GrLivArea", "Street=Grvl", "Street=Pave"]


def test_house_prices_test_csv_is_refused_for_lack_of_a_target(tmp_path, mini_data) -> None:
    (tmp_path / "house_prices").mkdir()
    shutil.copy(mini_data / "house_prices" / "test.csv", tmp_path / "house_prices" / "train.csv")
    with pytest.raises(DataError, match=r"has no SalePrice column; is it Kaggle's train.csv\?"):
        load_dataset(DataSection(name="house_prices"), AUTO, data_dir=str(tmp_path))


def test_query_wellformedness_is_text_with_native_train_dev_test() -> None:
    n = mini.QUERY_ROWS
    ds = load_dataset(DataSection(name="query_wellformedness"), AUTO)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (n["train.tsv"], n["dev.tsv"], n["test.tsv"])
    assert ds.is_text and len(ds.train.texts) == n["train.tsv"] and len(ds.test.texts) == n["test.tsv"]
    assert ds.train.x.shape == (n["train.tsv"], 0) and ds.input_shape == (0,)
    assert ds.train.y.shape == (n["train.tsv"], 1) and 0.0 <= ds.train.y.min() and ds.train.y.max() <= 1.0
    assert all(isinstance(t, str) and t.endswith(" ?") for t in ds.val.texts)
    assert torch.isclose(ds.train.y, torch.tensor(1 / 6)).any()  # the averaged-over-six ratings parse


def test_query_wellformedness_bad_rating_names_file_and_line(tmp_path, mini_data) -> None:
    shutil.copytree(mini_data / "query_wellformedness", tmp_path / "query_wellformedness")
    dev = tmp_path / "query_wellformedness" / "dev.tsv"
    lines = dev.read_text().splitlines(keepends=True)
    lines[2] = "what is a tab free line\n"
    dev.write_text("".join(lines))
    with pytest.raises(DataError) as err:
        load_dataset(DataSection(name="query_wellformedness"), AUTO, data_dir=str(tmp_path))
    assert str(err.value) == f"data set query_wellformedness: {dev}:3: expected query<TAB>rating"
