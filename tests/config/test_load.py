"""load_experiment: YAML plus `--set` overrides to one frozen Experiment, or one error line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from tunelab.app import train as api
from tunelab.config.load import load_experiment, parse_override
from tunelab.config.schema import CNNModel, Experiment, MLPModel
from tunelab.errors import ConfigError

BASE = """\
name: base
data:
  name: toy_2d
train:
  epochs: 3
  lr: 0.1
  early_stopping:
    patience: 5
"""


@pytest.fixture
def base_file(tmp_path: Path) -> Path:
    path = tmp_path / "experiment.yaml"
    path.write_text(BASE, encoding="utf-8")
    return path


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path | None, overrides: list[str] = ()) -> str:
    with pytest.raises(ConfigError) as info:
        load_experiment(path, overrides)
    return info.value.one_line()


# --------------------------------------------------------------------------- --set parsing


@pytest.mark.parametrize(
    ("item", "key", "value"),
    [
        ("train.epochs=7", ("train", "epochs"), 7),
        ("train.lr=0.05", ("train", "lr"), 0.05),
        ("train.eval_train=true", ("train", "eval_train"), True),
        ("model.hidden_dims=[32, 16]", ("model", "hidden_dims"), [32, 16]),
        ("train.optimizer=sgd", ("train", "optimizer"), "sgd"),
        ("description=hello world", ("description",), "hello world"),
        ("train.max_grad_norm=null", ("train", "max_grad_norm"), None),
    ],
)
def test_override_value_is_read_as_yaml(item, key, value):
    assert parse_override(item) == (key, value)


def test_override_values_arrive_as_the_fields_types(base_file):
    exp = load_experiment(
        base_file,
        [
            "train.epochs=7",
            "train.lr=0.05",
            "train.eval_train=true",
            "model.hidden_dims=[32,16]",
            "train.optimizer=sgd",
            "train.batch_size=full",
            "train.metrics=[accuracy]",
        ],
    )
    assert type(exp.train.epochs) is int and exp.train.epochs == 7
    assert type(exp.train.lr) is float and exp.train.lr == 0.05
    assert exp.train.eval_train is True
    assert exp.model.hidden_dims == [32, 16]
    assert exp.train.optimizer == "sgd"
    assert exp.train.batch_size == "full"
    assert exp.train.metrics == ["accuracy"]


def test_override_lr_in_exponent_notation_is_a_float(base_file):
    # YAML 1.1 reads `1e-3` as a string; the schema still has to end with the number.
    assert load_experiment(base_file, ["train.lr=1e-3"]).train.lr == pytest.approx(0.001)


def test_override_replaces_one_nested_key_and_keeps_its_siblings(base_file):
    exp = load_experiment(base_file, ["train.lr=0.5", "train.early_stopping.patience=2"])
    assert exp.train.lr == 0.5
    assert exp.train.early_stopping.patience == 2
    assert exp.train.epochs == 3
    assert exp.data.name == "toy_2d"


def test_override_creates_a_section_the_file_does_not_have(base_file):
    exp = load_experiment(base_file, ["model.dropout=0.25"])
    assert isinstance(exp.model, MLPModel)
    assert exp.model.dropout == 0.25


def test_later_override_of_the_same_key_wins(base_file):
    assert load_experiment(base_file, ["train.epochs=4", "train.epochs=9"]).train.epochs == 9


def test_override_can_switch_the_model_family(base_file):
    exp = load_experiment(base_file, ["model.family=cnn", "model.channels=[4]"])
    assert isinstance(exp.model, CNNModel)
    assert exp.model.channels == [4]


def test_override_with_a_word_for_an_integer_names_the_override_exactly(base_file):
    assert error_of(base_file, ["train.epochs=ten"]) == "--set train.epochs=ten: expected an integer, got 'ten'"


def test_override_with_a_bad_value_names_the_override_not_the_file_line(base_file):
    assert error_of(base_file, ["train.lr=0"]) == "--set train.lr=0: input should be greater than 0, got 0"


def test_override_without_equals_sign_is_rejected():
    message = error_of(None, ["train.epochs"])
    assert message.startswith("--set")
    assert message == "--set train.epochs: expected key.path=value"


def test_override_below_a_plain_value_is_rejected(base_file):
    assert error_of(base_file, ["train.lr.x=1"]) == "--set train.lr.x=1: train.lr is a value, not a section"


def test_override_of_a_string_field_with_digits_keeps_them_as_a_string(base_file):
    assert load_experiment(base_file, ["name=2024"]).name == "2024"


def test_override_of_an_unknown_section_names_the_override(base_file):
    assert error_of(base_file, ["trian.lr=0.1"]).startswith("--set trian.lr=0.1: unknown key 'trian'")


# --------------------------------------------------------------------------- file:line


def test_bad_value_in_file_names_file_line_and_key_path(tmp_path):
    path = write(tmp_path, "name: x\ntrain:\n  epochs: 3\n  lr: 0\n")
    assert error_of(path) == f"{path}:4 train.lr: input should be greater than 0, got 0"


def test_bad_value_three_levels_deep_names_its_own_line(tmp_path):
    path = write(tmp_path, "train:\n  epochs: 3\n  early_stopping:\n    min_delta: 0.1\n    patience: 0\n")
    assert error_of(path) == (
        f"{path}:5 train.early_stopping.patience: input should be greater than or equal to 1, got 0"
    )


def test_bad_list_item_names_its_index_and_line(tmp_path):
    path = write(tmp_path, "model:\n  hidden_dims:\n    - 8\n    - 0\n")
    assert error_of(path) == f"{path}:4 model.hidden_dims.1: input should be greater than or equal to 1, got 0"


def test_unknown_key_in_file_suggests_the_near_name_and_lists_the_allowed(tmp_path):
    path = write(tmp_path, "train:\n  epoch: 3\n")
    message = error_of(path)
    assert message.startswith(f"{path}:2 train.epoch: unknown key 'epoch' (did you mean epochs?); allowed: ")
    assert "lr" in message.split("allowed: ")[1].split(", ")


def test_missing_experiment_file_is_one_line(tmp_path):
    path = tmp_path / "nope.yaml"
    assert error_of(path) == f"experiment file not found: {path}"


def test_empty_file_is_the_all_defaults_experiment(tmp_path):
    assert load_experiment(write(tmp_path, "")) == Experiment()


# --------------------------------------------------------------------------- defaults


def test_model_section_without_family_is_an_mlp(tmp_path):
    exp = load_experiment(write(tmp_path, "model:\n  hidden_dims: [8]\n  dropout: 0.1\n"))
    assert isinstance(exp.model, MLPModel)
    assert exp.model.family == "mlp"
    assert exp.model.hidden_dims == [8]


def test_missing_model_section_is_the_default_mlp(tmp_path):
    exp = load_experiment(write(tmp_path, "name: x\n"))
    assert exp.model == MLPModel()


def test_experiment_is_frozen(base_file):
    exp = load_experiment(base_file)
    with pytest.raises(ValidationError):
        exp.train.epochs = 5  # type: ignore[misc]


# --------------------------------------------------------------------------- resolved experiment.yaml


@pytest.mark.parametrize(
    ("data_name", "task", "loss", "metrics", "standardize", "standardize_target"),
    [
        ("toy_2d", "classification", "cross_entropy", ["accuracy", "f1"], False, False),
        ("diabetes", "regression", "mse", ["r2", "mae", "rmse"], True, True),
    ],
)
def test_experiment_yaml_in_run_folder_has_every_default_filled_and_reloads_equal(
    tmp_path, data_name, task, loss, metrics, standardize, standardize_target
):
    path = write(tmp_path, f"name: resolved\ndata:\n  name: {data_name}\ntrain:\n  epochs: 1\n  batch_size: full\n")
    out = tmp_path / "run"

    res = api.train(path, out=out)

    written = out / "experiment.yaml"
    raw = yaml.safe_load(written.read_text(encoding="utf-8"))
    assert raw["task"] == {"type": task}
    assert raw["train"]["loss"] == loss
    assert raw["train"]["metrics"] == metrics
    assert raw["data"]["standardize"] is standardize
    assert raw["data"]["standardize_target"] is standardize_target
    assert raw["model"]["family"] == "mlp"
    assert set(raw) == set(Experiment.model_fields)
    assert load_experiment(written) == res.experiment
