"""The published files themselves: row counts and class counts from the data folder's README.

These need the real data sets (TUNELAB_DATA_DIR); without them they skip, and under CI=true fail.
The same parsing runs on miniature files everywhere in test_builtins.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fixtures.real_data import real_data_dir
from tunelab.config.schema import DataSection, TaskSection
from tunelab.data import load_dataset

AUTO = TaskSection()
WHOLE = {"shuffle": False, "standardize": False}
NO_SPLIT = {"val_fraction": 0.0, "test_fraction": 0.0}  # every row in train (an experiment refuses it)


@pytest.fixture(autouse=True)
def real_data(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Overrides the folder's miniature data with the configured real one."""
    folder = real_data_dir()
    monkeypatch.setenv("TUNELAB_DATA_DIR", str(folder))
    return folder


def test_california_has_20640_block_groups_starting_with_statlibs_first() -> None:
    ds = load_dataset(DataSection(name="california_housing", **WHOLE).model_copy(update=NO_SPLIT), AUTO)
    assert ds.train.x.shape == (20640, 8)
    assert ds.train.x[0, 0].item() == pytest.approx(8.3252) and ds.train.y[0].item() == pytest.approx(4.526)


def test_usps_has_esls_7291_train_and_2007_test_digits() -> None:
    ds = load_dataset(DataSection(name="usps", val_fraction=0.25), AUTO)
    assert len(ds.train) + len(ds.val) == 7291 and len(ds.test) == 2007
    assert torch.bincount(ds.test.y).tolist() == [359, 264, 198, 166, 200, 160, 170, 147, 166, 177]


def test_house_prices_has_1460_rows() -> None:
    ds = load_dataset(DataSection(name="house_prices", features="all"), AUTO)
    assert len(ds.train) + len(ds.val) + len(ds.test) == 1460 and "Alley=NA" in ds.feature_names


def test_query_wellformedness_has_17500_3750_3850_queries() -> None:
    ds = load_dataset(DataSection(name="query_wellformedness"), AUTO)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (17500, 3750, 3850)
