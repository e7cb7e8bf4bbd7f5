"""Names, defaults, availability, missing-file errors and the download hook."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from fixtures import mini_data as mini
from tunelab.config.schema import DataSection, TaskSection
from tunelab.data import BUILTINS, dataset_defaults, list_datasets, load_dataset
from tunelab.data.locate import DEFAULT_ROOTS, data_roots
from tunelab.errors import ConfigError, DataError

AUTO = TaskSection()


def test_unknown_name_lists_the_choices_with_a_hint() -> None:
    with pytest.raises(ConfigError) as err:
        load_dataset(DataSection(name="digitz"), AUTO)
    assert err.value.key == "data.name"
    assert str(err.value) == (
        "data.name: unknown data set 'digitz'; choose one of california_housing, csv, diabetes, digits, "
        "function, house_prices, image_folder, query_wellformedness, toy_2d, usps, wine (did you mean digits?)"
    )


def test_defaults_resolve_without_loading() -> None:
    assert dataset_defaults("california_housing") == {
        "task": "regression",
        "standardize": True,
        "standardize_target": False,
    }
    assert dataset_defaults("digits")["standardize"] is False
    assert dataset_defaults("csv")["task"] == "auto"
    with pytest.raises(ConfigError):
        dataset_defaults("nope")


def test_missing_file_is_one_line_naming_data_set_and_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_dataset(DataSection(name="usps"), AUTO, data_dir=str(tmp_path))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"data set usps: zip.train.gz not found in {tmp_path} (searched: {tmp_path / 'usps'}")
    assert "zip.test.gz" in message and "TUNELAB_DATA_DIR" in message and "data.download: true" in message


def test_folder_order_is_argument_then_config_then_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TUNELAB_DATA_DIR", str(tmp_path / "env"))
    assert data_roots("a", "b") == [Path("a").resolve()]
    assert data_roots(None, "b") == [Path("b").resolve()]
    assert data_roots(None, None) == [tmp_path / "env"]
    monkeypatch.delenv("TUNELAB_DATA_DIR")
    assert data_roots() == [Path(r).expanduser().resolve() for r in DEFAULT_ROOTS]


def test_default_search_never_reaches_outside_the_current_folder_and_the_user_cache(
    tmp_path: Path, monkeypatch, mini_data: Path
) -> None:
    """A sibling folder (`../shared/data`, `../data`) must not silently supply a user's data."""
    monkeypatch.delenv("TUNELAB_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    work = tmp_path / "work" / "project"
    work.mkdir(parents=True)
    shutil.copytree(mini_data, tmp_path / "work" / "shared" / "data")
    shutil.copytree(mini_data, tmp_path / "work" / "data")
    monkeypatch.chdir(work)
    assert data_roots() == [work / "data", tmp_path / "home" / ".cache" / "tunelab" / "data"]
    with pytest.raises(DataError, match=r"^data set usps: zip.train.gz not found \(searched: "):
        load_dataset(DataSection(name="usps"), AUTO)


def test_list_datasets_reports_where_each_one_is(tmp_path: Path, mini_data: Path) -> None:
    shutil.copytree(mini_data / "house_prices", tmp_path / "house_prices")
    status = {s.name: s for s in list_datasets(str(tmp_path))}
    assert set(status) == set(BUILTINS)
    assert status["house_prices"].available and status["house_prices"].where == str(tmp_path / "house_prices")
    assert not status["usps"].available and str(tmp_path) in status["usps"].where
    assert status["digits"].available


def test_download_fills_the_named_folder(tmp_path: Path, mini_data: Path, monkeypatch) -> None:
    def fake_download(dest: Path) -> None:  # stands in for the network
        shutil.copytree(mini_data / "usps", Path(dest) / "usps")

    monkeypatch.setitem(BUILTINS, "usps", dataclasses.replace(BUILTINS["usps"], download=fake_download))
    ds = load_dataset(DataSection(name="usps", download=True, data_dir=str(tmp_path)), AUTO)
    assert len(ds.test) == sum(mini.USPS_TEST_COUNTS) and (tmp_path / "usps" / "zip.train.gz").is_file()


def test_house_prices_download_points_to_kaggle(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"kaggle\.com/competitions/house-prices"):
        load_dataset(DataSection(name="house_prices", download=True), AUTO, data_dir=str(tmp_path))


def test_a_builtin_refuses_the_other_task() -> None:
    with pytest.raises(ConfigError) as err:
        load_dataset(DataSection(name="california_housing"), TaskSection(type="classification"))
    assert err.value.key == "task.type"
