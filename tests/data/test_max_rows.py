"""`data.max_rows`: a seeded subset for quick runs, each split keeping its share of the rows."""

from __future__ import annotations

import numpy as np
import pytest

from tunelab.config.load import load_experiment
from tunelab.config.schema import DataSection, TaskSection
from tunelab.data import load_dataset
from tunelab.data.split import subsample_rows
from tunelab.errors import ConfigError


def test_each_split_keeps_its_share_and_its_order():
    rows = {"train": np.arange(700), "val": np.arange(700, 850), "test": np.arange(850, 1000)}
    out = subsample_rows(rows, 100, seed=0)
    assert {k: len(v) for k, v in out.items()} == {"train": 70, "val": 15, "test": 15}
    assert all(np.all(np.diff(v) > 0) and set(v) <= set(rows[k]) for k, v in out.items())
    assert all(np.array_equal(out[k], subsample_rows(rows, 100, seed=0)[k]) for k in rows)
    assert not np.array_equal(out["train"], subsample_rows(rows, 100, seed=1)["train"])


def test_no_cap_or_a_cap_above_the_size_changes_nothing():
    rows = {"train": np.arange(8), "val": np.arange(8, 10), "test": np.arange(0)}
    assert subsample_rows(rows, None, 0) is rows and subsample_rows(rows, 10, 0) is rows


def test_query_wellformedness_subset_keeps_native_splits():
    # The miniature files hold 200 / 50 / 50 queries: half of them keep the 4:1:1 shares exactly.
    data = load_dataset(DataSection(name="query_wellformedness", max_rows=150), TaskSection())
    assert (len(data.train), len(data.val), len(data.test)) == (100, 25, 25)
    other_hash = load_dataset(DataSection(name="query_wellformedness", max_rows=149), TaskSection()).data_hash
    assert data.data_hash != other_hash


def test_max_rows_below_two_is_one_line_config_error():
    with pytest.raises(ConfigError, match=r"data.max_rows: input should be greater than or equal to 2, got 1"):
        load_experiment(None, raw={"data": {"max_rows": 1}})
