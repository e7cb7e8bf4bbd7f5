"""`data.name: csv`: separators, one-hot features, task inference and label mapping."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tunelab.config.schema import DataSection, TaskSection
from tunelab.data import load_dataset
from tunelab.errors import ConfigError

AUTO = TaskSection()


def _write(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def pets(tmp_path: Path) -> Path:
    rows = ["size,colour,weight,kind"]
    rows += [f"{i % 7},{'red' if i % 2 else 'blue'},{1.5 * i:.2f},{'dog' if i % 3 else 'cat'}" for i in range(30)]
    return _write(tmp_path / "pets.csv", rows)


def test_string_target_is_classification_with_sorted_labels(pets: Path) -> None:
    ds = load_dataset(DataSection(name="csv", path=str(pets), target="kind", shuffle=False, standardize=False), AUTO)
    assert ds.task == "classification" and ds.class_labels == ["cat", "dog"] and ds.output_dim == 2
    assert ds.train.y[:4].tolist() == [0, 1, 1, 0]
    assert ds.feature_names == ["size", "colour=blue", "colour=red", "weight"]
    assert ds.train.x[1].tolist() == [1.0, 0.0, 1.0, 1.5]


def test_relative_path_is_read_from_the_current_directory(pets: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(pets.parent)
    ds = load_dataset(DataSection(name="csv", path="pets.csv", target="weight"), AUTO)
    assert ds.task == "regression" and ds.train.y.shape == (len(ds.train), 1)
    assert ds.source == str(pets)


def test_few_integer_values_are_classes_many_are_regression(pets: Path) -> None:
    small = load_dataset(DataSection(name="csv", path=str(pets), target="size"), AUTO)
    assert small.task == "classification" and small.class_labels == [str(v) for v in range(7)]
    forced = load_dataset(DataSection(name="csv", path=str(pets), target="size"), TaskSection(type="regression"))
    assert forced.task == "regression"


def test_tsv_is_tab_separated_and_gaps_take_the_train_median(tmp_path: Path) -> None:
    rows = ["a\tb\ty"] + [f"{'' if i == 9 else i}\t{i * i}\t{i * 0.5}" for i in range(10)]
    path = _write(tmp_path / "t.tsv", rows)
    cfg = DataSection(
        name="csv",
        path=str(path),
        target="y",
        features=["a"],
        shuffle=False,
        val_fraction=0.1,
        test_fraction=0.1,
        standardize=False,
    )
    ds = load_dataset(cfg, AUTO)
    assert ds.feature_names == ["a"] and ds.task == "regression"
    assert ds.test.x.item() == 3.5  # median of the 8 training rows 0..7
    assert torch.equal(ds.train.y[:, 0], torch.arange(8) * 0.5)


def test_unknown_target_column_names_the_key_with_a_hint(pets: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_dataset(DataSection(name="csv", path=str(pets), target="knd"), AUTO)
    assert err.value.key == "data.target" and "did you mean kind?" in str(err.value)


def test_regression_on_a_text_target_is_a_task_error(pets: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_dataset(DataSection(name="csv", path=str(pets), target="kind"), TaskSection(type="regression"))
    assert err.value.key == "task.type"
