"""ROC-AUC, log loss, balanced accuracy, precision and recall: values, records, direction, objective."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

import tunelab
from tunelab.app.tune import tune
from tunelab.config.load import load_experiment
from tunelab.config.schema import Objective
from tunelab.errors import ConfigError
from tunelab.runs.records import read_jsonl
from tunelab.train.metrics import METRICS, higher_is_better

NEW = ["roc_auc", "log_loss", "balanced_accuracy", "precision", "recall"]


def _logits_and_labels(k: int, n: int = 60, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    logits = torch.randn(n, k, generator=gen) + 1.5 * torch.nn.functional.one_hot(y, k)  # informative, not perfect
    return logits, y


@pytest.mark.parametrize("k", [2, 4])
def test_each_metric_equals_scikit_learn_on_softmax_probabilities(k: int) -> None:
    logits, y = _logits_and_labels(k)
    probs = torch.softmax(logits.double(), dim=1).numpy()
    pred = probs.argmax(axis=1)
    auc = skm.roc_auc_score(y, probs[:, 1]) if k == 2 else skm.roc_auc_score(y, probs, multi_class="ovr")
    expected = {
        "roc_auc": auc,
        "log_loss": skm.log_loss(y, probs),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, average="macro"),
        "recall": skm.recall_score(y, pred, average="macro"),
    }
    for name, value in expected.items():
        assert float(METRICS[name](logits, y)) == pytest.approx(value, abs=1e-6), name
    assert 0.5 < expected["roc_auc"] < 1.0  # the fixture is neither random nor perfect


def test_perfect_separation_gives_auc_one_and_small_log_loss() -> None:
    y = torch.tensor([0, 1, 0, 1, 1, 0])
    logits = torch.nn.functional.one_hot(y, 2).float() * 20
    assert float(METRICS["roc_auc"](logits, y)) == 1.0
    assert float(METRICS["log_loss"](logits, y)) < 1e-6
    assert float(METRICS["balanced_accuracy"](logits, y)) == 1.0


def test_auc_on_a_split_with_one_class_is_nan_not_a_crash() -> None:
    y = torch.zeros(8, dtype=torch.long)
    assert math.isnan(float(METRICS["roc_auc"](torch.randn(8, 2), y)))


def test_direction_of_each_new_metric() -> None:
    for name in ("roc_auc", "balanced_accuracy", "precision", "recall"):
        assert higher_is_better(f"val_{name}"), name
        assert Objective(metric=f"val_{name}").resolved_direction() == "maximize"
    assert not higher_is_better("val_log_loss")
    assert Objective(metric="val_log_loss").resolved_direction() == "minimize"
    assert Objective(metric="val_loss").resolved_direction() == "minimize"


def test_selected_metrics_are_logged_per_epoch_as_val_keys(tmp_path: Path) -> None:
    raw = {
        "name": "metrics",
        "data": {"name": "digits"},
        "model": {"family": "mlp", "hidden_dims": [16]},
        "train": {"epochs": 3, "batch_size": 128, "lr": 0.01, "metrics": ["accuracy", *NEW],
                  "monitor": "val_roc_auc"},
    }
    res = tunelab.train(load_experiment(None, raw=raw), out=tmp_path / "run")
    records = read_jsonl(res.trial_dir / "metrics.jsonl")
    assert len(records) == 3
    for record in records:
        for name in NEW:
            assert math.isfinite(record[f"val_{name}"]), name
        assert 0.5 < record["val_roc_auc"] <= 1.0
        assert 0.0 <= record["val_balanced_accuracy"] <= 1.0
    # monitor val_roc_auc: the best epoch is the one with the highest AUC
    best = max(records, key=lambda r: r["val_roc_auc"])
    assert [r["epoch"] for r in records if r["is_best"]][-1] == best["epoch"]


def test_a_regression_task_rejects_classification_metrics(tmp_path: Path) -> None:
    raw = {"data": {"name": "diabetes"}, "train": {"epochs": 1, "metrics": ["roc_auc"]}}
    with pytest.raises(ConfigError, match="metric 'roc_auc' does not fit a regression task"):
        tunelab.train(load_experiment(None, raw=raw), out=tmp_path / "run")


@pytest.mark.parametrize("vectorize", ["off", "auto"])
@pytest.mark.usefixtures("no_report")  # asserts nothing about the report (fixtures/no_report.py)
def test_roc_auc_as_objective_is_maximised(tmp_path: Path, vectorize: str) -> None:
    raw = {
        "name": "auc",
        "data": {"name": "toy_2d"},
        "model": {"family": "mlp", "hidden_dims": [8]},
        "train": {"epochs": 2, "batch_size": 32, "metrics": ["accuracy", "roc_auc", "log_loss"]},
        "search": {"strategy": "grid", "space": {"train.lr": [0.0001, 0.05]}, "vectorize": vectorize,
                   "n_jobs": 1, "objective": {"metric": "val_roc_auc"}},
        "final": {"enabled": False},
    }
    out = tmp_path / "run"
    tune(load_experiment(None, raw=raw), out=out, run_final=False)
    history = json.loads((out / "optimization_history.json").read_text(encoding="utf-8"))
    assert history["direction"] == "maximize"
    values = [t["value"] for t in history["trials"]]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert history["best_value"] == pytest.approx(max(values))
    assert np.isfinite(values).all()
