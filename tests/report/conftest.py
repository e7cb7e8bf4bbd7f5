"""Tiny run folders for the report tests: toy_2d, 8-hidden-unit MLP, a few epochs, CPU, seconds."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tunelab.cli import app

XSS_NAME = "<script>alert(1)</script>"


def _experiment(name: str, search: dict | None = None, epochs: int = 4) -> dict:
    exp = {
        "name": name,
        "data": {"name": "toy_2d"},
        "model": {"family": "mlp", "hidden_dims": [8]},
        "train": {"epochs": epochs, "batch_size": "full", "optimizer": "sgd", "lr": 0.5,
                  "loss": "cross_entropy", "metrics": ["accuracy"], "seed": 1},
        "final": {"enabled": False},
    }
    if search:
        exp["search"] = search
    return exp


def _run(folder: Path, command: str, exp: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "experiment_in.yaml"
    path.write_text(yaml.safe_dump(exp), encoding="utf-8")
    out = folder / "run"
    result = CliRunner().invoke(app, [command, str(path), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def lr_sweep_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    search = {"strategy": "lr_sweep", "space": {"train.lr": [0.01, 0.1, 1.0]}}
    return _run(tmp_path_factory.mktemp("sweep"), "tune", _experiment("toy_sweep", search))


@pytest.fixture(scope="session")
def grid_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    search = {"strategy": "grid", "space": {"train.lr": [0.1, 1.0], "train.momentum": [0.0, 0.9]}}
    return _run(tmp_path_factory.mktemp("grid"), "tune", _experiment("toy_grid", search, epochs=3))


@pytest.fixture(scope="session")
def ablation_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    search = {"strategy": "ablation", "seeds": 2,
              "space": {"train.lr": [0.5, 0.05], "train.momentum": [0.0, 0.9]}}
    return _run(tmp_path_factory.mktemp("ablation"), "tune", _experiment("toy_ablation", search, epochs=3))


@pytest.fixture(scope="session")
def train_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run(tmp_path_factory.mktemp("train"), "train", _experiment("toy_train"))


@pytest.fixture(scope="session")
def xss_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    search = {"strategy": "grid", "space": {"train.lr": [0.1, 1.0]}}
    return _run(tmp_path_factory.mktemp("xss"), "tune", _experiment(XSS_NAME, search, epochs=2))


@pytest.fixture(scope="session")
def wide_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Many knobs with long names and list values: the summary table's and the titles' worst case."""
    search = {"strategy": "ablation", "seeds": 2, "space": {
        "train.lr": [0.5, 0.05], "train.momentum": [0.0, 0.9], "train.weight_decay": [0.0, 0.001],
        "model.hidden_dims": [[16], [8], [8, 4]], "model.dropout": [0.0, 0.1], "model.activation": ["relu", "gelu"],
        "train.optimizer": ["sgd", "adam"], "train.epochs": [2, 3]}}
    exp = _experiment("a_rather_long_experiment_name_wide", search, 2)
    exp["final"] = {"enabled": True}  # the test column too
    return _run(tmp_path_factory.mktemp("wide"), "tune", exp)
