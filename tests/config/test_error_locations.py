"""Every validation error of a file names the line to edit, through the CLI and the Python API alike.

Each case edits one line of a small valid study; the error must be one line, exit 2, carry
`exp.yaml:LINE` of the edited line, and say what is allowed. Errors found late (the search space,
the data set's columns, the metric for the task) are located the same way as schema errors.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import tunelab

BASE = """\
name: located
data:
  name: toy_2d
model:
  family: mlp
  hidden_dims: [4]
train:
  epochs: 1
  lr: 0.1
  loss: cross_entropy
  metrics: [accuracy]
search:
  strategy: grid
  space:
    train.lr: [0.1, 0.01]
  objective:
    metric: val_loss
final:
  enabled: false
"""

# (case id, line to replace (1-based), replacement text, line the error must name, text it must contain)
CASES = [
    ("space_key_typo", 15, "    train.lrr: [0.1, 0.01]", 15, "did you mean train.lr"),
    ("space_section_typo", 15, "    model.hiden_dims: [[4], [8]]", 15, "did you mean model.hidden_dims"),
    ("space_value_negative", 15, "    train.lr: [0.1, -1.0]", 15, "train.lr"),
    ("bad_strategy", 13, "  strategy: gird", 13, "grid"),
    ("negative_lr", 9, "  lr: -0.1", 9, "greater than 0"),
    ("bad_loss", 10, "  loss: crossentropy", 10, "cross_entropy"),
    ("metric_wrong_for_task", 11, "  metrics: [r2]", 11, "accuracy"),
    ("objective_not_logged", 17, "    metric: val_r2", 17, "val_loss"),
    ("unknown_data_set", 3, "  name: toy2d", 3, "did you mean toy_2d"),
    ("unknown_family", 5, "  family: mlpp", 5, "mlp"),
    ("zero_width", 6, "  hidden_dims: [0]", 6, "hidden_dims"),
    ("loss_wrong_for_task", 3, "  name: diabetes", 10, "cross_entropy"),
    ("wrong_target_lists_columns", 3, "  name: csv\n  path: {csv}\n  target: prise", 5, "price, size, rooms"),
    (
        "wrong_feature_column",
        3,
        "  name: csv\n  path: {csv}\n  target: price\n  features: [size, room]",
        6,
        "did you mean rooms",
    ),
    ("missing_csv_file", 3, "  name: csv\n  path: nothere.csv\n  target: price", 4, "nothere.csv not found"),
    ("data_dir_without_the_files", 3, "  name: usps\n  data_dir: {csv}.d", 4, "zip.train.gz not found in"),
    ("missing_image_folder", 3, "  name: image_folder\n  path: {csv}.d", 4, "does not exist or is not a folder"),
]


def _write(tmp_path: Path, line: int, text: str) -> Path:
    csv = tmp_path / "houses.csv"
    csv.write_text("price,size,rooms\n" + "".join(f"{i},{i * 3},{i % 4}\n" for i in range(30)), encoding="utf-8")
    lines = BASE.splitlines()
    lines[line - 1] = text.format(csv=csv)
    path = tmp_path / "exp.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("line", "text", "where", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cli_error_names_the_file_line(tmp_path, cli, line, text, where, expected):
    path = _write(tmp_path, line, text)

    result = cli("tune", path, "--out", tmp_path / "run", "--quiet")

    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert f"{path}:{where}" in result.stderr
    assert expected in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("line", "text", "where", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_api_error_names_the_file_line(tmp_path, line, text, where, expected):
    path = _write(tmp_path, line, text)

    with pytest.raises(tunelab.TunelabError) as caught:
        tunelab.tune(str(path), out=tmp_path / "run")

    message = caught.value.one_line()
    assert caught.value.exit_code == 2
    assert f"{path}:{where}" in message
    assert expected in message
    assert not (tmp_path / "run").exists()


def test_api_error_names_the_override(tmp_path):
    path = _write(tmp_path, 9, "  lr: 0.1")

    with pytest.raises(tunelab.ConfigError) as caught:
        tunelab.tune(path, overrides=["search.space.train.lrr=[0.1]"], out=tmp_path / "run")

    assert "--set search.space.train.lrr=[0.1]" in caught.value.one_line()


def test_api_train_error_names_the_file_line(tmp_path):
    path = _write(tmp_path, 10, "  loss: crossentropy")

    with pytest.raises(tunelab.ConfigError) as caught:
        tunelab.train(path, out=tmp_path / "run")

    assert caught.value.one_line().startswith(f"{path}:10 train.loss: ")
    assert not (tmp_path / "run").exists()


def test_api_missing_data_file_is_a_located_data_error(tmp_path):
    path = _write(tmp_path, 3, "  name: csv\n  path: nothere.csv\n  target: price")

    with pytest.raises(tunelab.DataError) as caught:  # a data error, located like a config error
        tunelab.tune(str(path), out=tmp_path / "run")

    assert caught.value.one_line().startswith(f"{path}:4 data.path: data set csv: file ")
