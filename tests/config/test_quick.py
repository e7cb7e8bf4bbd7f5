"""The `quick:` block: dotted-key overrides applied by --quick before --set, ignored otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunelab.config.load import load_experiment
from tunelab.errors import ConfigError

EXPERIMENT = """\
name: quick_demo
data:
  name: digits
train:
  epochs: 20
search:
  strategy: grid
  space:
    train.lr: [0.01, 0.001]
quick:
  train.epochs: 2
  search.space.train.lr: [0.01]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "experiment.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_without_quick_the_block_is_ignored(tmp_path: Path) -> None:
    exp = load_experiment(_write(tmp_path, EXPERIMENT))
    assert exp.train.epochs == 20
    assert exp.search.space == {"train.lr": [0.01, 0.001]}
    assert "quick" not in exp.model_dump()


def test_quick_applies_its_keys_including_a_search_space_entry(tmp_path: Path) -> None:
    exp = load_experiment(_write(tmp_path, EXPERIMENT), quick=True)
    assert exp.train.epochs == 2
    assert exp.search.space == {"train.lr": [0.01]}


def test_set_wins_over_quick(tmp_path: Path) -> None:
    exp = load_experiment(_write(tmp_path, EXPERIMENT), ["train.epochs=3"], quick=True)
    assert exp.train.epochs == 3


def test_a_misspelt_quick_key_names_its_line_and_the_allowed_keys(tmp_path: Path) -> None:
    path = _write(tmp_path, EXPERIMENT + "  train.epoch: 2\n")
    with pytest.raises(ConfigError) as info:
        load_experiment(path, quick=True)
    message = info.value.one_line()
    assert message.startswith(f"{path}:13 quick.train.epoch: unknown key 'epoch' (did you mean epochs?)")


def test_a_badly_typed_quick_value_names_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, EXPERIMENT.replace("train.epochs: 2", "train.epochs: two"))
    with pytest.raises(ConfigError) as info:
        load_experiment(path, quick=True)
    assert info.value.one_line() == f"{path}:11 quick.train.epochs: expected an integer, got 'two'"


def test_a_quick_block_that_is_not_a_mapping_is_rejected_even_without_quick(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: x\nquick: [train.epochs]\n")
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    assert info.value.one_line() == (
        f"{path}:2 quick: expected a mapping of key.path: value (e.g. train.epochs: 2), got ['train.epochs']"
    )


def test_cli_quick_error_is_one_line_and_exit_2(tmp_path: Path, cli) -> None:
    path = _write(tmp_path, EXPERIMENT + "  train.epoch: 2\n")
    result = cli("tune", path, "--quick", "--out", tmp_path / "run")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path}:13 quick.train.epoch: unknown key")
    assert not (tmp_path / "run").exists()


@pytest.mark.usefixtures("no_report")  # asserts nothing about the report (fixtures/no_report.py)
def test_cli_tune_quick_runs_the_small_budget(tmp_path: Path, cli) -> None:
    path = _write(tmp_path, EXPERIMENT)
    result = cli("tune", path, "--quick", "--out", tmp_path / "run", "--quiet", "--no-final")
    assert result.exit_code == 0, result.stderr
    trials = sorted(p.name for p in (tmp_path / "run" / "trials").iterdir())
    assert trials == ["0-lr0.01"]
