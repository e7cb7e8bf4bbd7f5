"""A `tunelab train` run is a model: `predict` uses its best epoch with the preprocessing the run saved, and
`train --continue` rebuilds the report and moves `predict` to the continued model."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from tunelab.config.load import load_experiment
from tunelab.data import load_dataset
from tunelab.models import build_model


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    """Three classes from four features far from zero (standardization matters), and a search: block
    (`tunelab init` starters have one) that `train` leaves alone."""
    rng = np.random.default_rng(0)
    x = rng.normal(50.0, 10.0, size=(240, 4))
    y = np.digitize(x[:, 0] - x[:, 1] + rng.normal(0, 2, 240), [-5.0, 5.0])
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"]).assign(kind=[f"k{v}" for v in y])
    frame.to_csv(tmp_path / "rows.csv", index=False)
    raw = {
        "name": "tp",
        "data": {"name": "csv", "path": str(tmp_path / "rows.csv"), "target": "kind"},
        "model": {"family": "mlp", "hidden_dims": [8]},
        "train": {"epochs": 3, "batch_size": 32, "lr": 0.01, "seed": 0},
        "search": {"strategy": "grid", "space": {"train.lr": [0.01, 0.003]}},
    }
    path = tmp_path / "tp.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def expected_probabilities(exp_path: Path, run: Path, weights: Path) -> np.ndarray:
    """The run's network with `weights`, on rows.csv standardized by the train split's own statistics."""
    exp = load_experiment(exp_path)
    train_split = load_dataset(exp.data, exp.task).feature_scaler
    saved = json.loads((run / "preprocessing.json").read_text(encoding="utf-8"))["feature_scaler"]
    assert saved["mean"] == pytest.approx(train_split.mean.flatten().tolist())  # train rows only, not train+val
    x = torch.tensor(pd.read_csv(exp_path.parent / "rows.csv")[["a", "b", "c", "d"]].to_numpy(), dtype=torch.float32)
    x = (x - torch.tensor(saved["mean"])) / torch.tensor(saved["std"])
    model = build_model(exp.model, (4,), 3, seed=0)
    model.load_state_dict(torch.load(weights, weights_only=True)["model"])
    model.eval()
    with torch.no_grad():
        return torch.softmax(model(x), dim=1).double().numpy()


def predicted(cli, run: Path, rows: Path) -> np.ndarray:
    result = cli("predict", run, rows)
    assert result.exit_code == 0, result.stderr
    table = pd.read_csv(io.StringIO(result.stdout))
    assert len(table) == 240 and list(table.columns[:3]) == ["row", "prediction", "probability"]
    return table[["probability_k0", "probability_k1", "probability_k2"]].to_numpy()


def test_predict_uses_a_train_runs_best_epoch_and_its_saved_preprocessing(experiment: Path, cli) -> None:
    run = experiment.parent / "run"
    trained = cli("train", experiment, "--out", run, "--quiet")
    assert trained.exit_code == 0
    # the process's memory is not the model's (the cost line's "memory ~0.0x MB"): the summary says which
    assert "; peak memory of the process " in trained.stdout
    best = run / "trials" / "0-base" / "checkpoints" / "best.pt"
    probs = predicted(cli, run, experiment.parent / "rows.csv")
    np.testing.assert_allclose(probs, expected_probabilities(experiment, run, best), atol=2e-6)


def test_train_continue_rebuilds_the_report_and_predicts_with_the_continued_model(experiment: Path, cli) -> None:
    run = experiment.parent / "run"
    assert cli("train", experiment, "--out", run, "--quiet").exit_code == 0
    page = (run / "report.html").read_text(encoding="utf-8")
    assert "single training run (tunelab train)" in page and "0-base-to" not in page
    curves = (run / "plots" / "learning_curves.png").read_bytes()

    result = cli("train", experiment, "--out", run, "--continue", "--set", "train.epochs=8", "--json")
    assert result.exit_code == 0, result.stderr
    child = run / "continued" / "0-base-to8ep"
    best_epoch = json.loads(result.stdout)["best_epoch"]
    assert best_epoch > 3  # the continuation found a better epoch, so the model predict uses must move too
    page = (run / "report.html").read_text(encoding="utf-8")
    assert "<td>#0 (0-base-to8ep)</td>" in page and "single training run (tunelab train)" in page
    assert (run / "plots" / "learning_curves.png").read_bytes() != curves  # redrawn with the 8 epochs
    assert "of 8 epochs" in (run / "decisions.md").read_text(encoding="utf-8")  # the diagnosis saw them too
    probs = predicted(cli, run, experiment.parent / "rows.csv")
    np.testing.assert_allclose(probs, expected_probabilities(experiment, run, child / "checkpoints" / "best.pt"),
                               atol=2e-6)


def test_a_train_run_without_saved_preprocessing_says_how_to_get_it(experiment: Path, cli) -> None:
    run = experiment.parent / "run"
    assert cli("train", experiment, "--out", run, "--quiet").exit_code == 0
    (run / "preprocessing.json").unlink()  # a folder from before train saved it
    result = cli("predict", run, experiment.parent / "rows.csv")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: {run} has no preprocessing.json to predict with; run its tunelab train command again "
        "(the finished run is kept and the file written)"
    ]
    assert cli("train", experiment, "--out", run, "--quiet").exit_code == 0  # the rerun writes it
    assert cli("predict", run, experiment.parent / "rows.csv").exit_code == 0
