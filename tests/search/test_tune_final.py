"""`tunelab final` and `tunelab predict` on a digits grid; the test split is untouched until final.

Also the top-level Python API (`tunelab.tune`, `tunelab.load_run`).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import torch

import tunelab
from fixtures.no_report import without_report
from tunelab.config.load import load_experiment

# Keys of the experiment's data section (the split fractions), not measurements on the test split.
CONFIG_KEYS = {"test_fraction", "test_path", "test_file"}


def test_keys(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if str(key).startswith("test_") and key not in CONFIG_KEYS:
                found.add(key)
            found |= test_keys(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= test_keys(inner)
    return found


test_keys.__test__ = False  # a helper, not a test


RAW = {
    "name": "final_digits",
    "data": {"name": "digits"},
    "model": {"family": "mlp", "hidden_dims": [32]},
    "train": {"epochs": 3, "metrics": ["accuracy"]},
    "search": {"strategy": "grid", "space": {"train.lr": [0.01, 0.001]}},
}


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("final") / "run"
    with without_report():  # no test of this module reads the report (fixtures/no_report.py)
        res = tunelab.tune(load_experiment(None, raw=RAW), out=out, run_final=False)
    assert res.finished and res.n_complete == 2
    return out


def test_no_test_metric_anywhere_before_final(grid_run):
    assert not (grid_run / "final").exists()
    files = [p for p in (grid_run / "trials").rglob("*") if p.suffix in (".json", ".jsonl")]
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        records = (
            [json.loads(line) for line in text.splitlines() if line.strip()]
            if path.suffix == ".jsonl"
            else [json.loads(text)]
        )
        assert not test_keys(records), f"{path} mentions the test split"
    for path in (grid_run / "trials").rglob("metrics.log"):
        assert "test_" not in path.read_text(encoding="utf-8")
    assert "test_" not in (grid_run / "summary.csv").read_text(encoding="utf-8").splitlines()[0]
    assert not test_keys(json.loads((grid_run / "optimization_history.json").read_text(encoding="utf-8")))


def test_final_then_predict(grid_run, cli, tmp_path):
    result = cli("final", grid_run)

    assert result.exit_code == 0, result.stderr
    final = grid_run / "final"
    for name in ("model.pt", "params.json", "test_metrics.json", "predictions.csv"):
        assert (final / name).is_file(), name
    metrics = json.loads((final / "test_metrics.json").read_text(encoding="utf-8"))
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert metrics["rows_tested"] > 0
    with (final / "predictions.csv").open(encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == metrics["rows_tested"]
    history = json.loads((grid_run / "optimization_history.json").read_text(encoding="utf-8"))
    assert metrics["trial_number"] == history["best_trial"]

    payload = torch.load(final / "model.pt", map_location="cpu", weights_only=True)
    names = payload["feature_names"]
    assert len(names) == 64
    from sklearn.datasets import load_digits

    digits = load_digits()
    rows = digits.data[:7]
    source = tmp_path / "input.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        writer.writerows(rows.tolist())

    predicted = cli("predict", grid_run, source)

    assert predicted.exit_code == 0, predicted.stderr
    out_rows = list(csv.DictReader(io.StringIO(predicted.stdout)))
    assert len(out_rows) == 7
    labels = set(payload["class_labels"] or [str(i) for i in range(10)])
    assert all(row["prediction"] in labels for row in out_rows)
    assert [int(r["row"]) for r in out_rows] == list(range(7))


def test_top_level_api_exports_tune_and_load_run(grid_run):
    assert callable(tunelab.tune)
    assert callable(tunelab.load_run)
    assert {"tune", "load_run"} <= set(tunelab.__all__)
    view = tunelab.load_run(grid_run)
    assert view.name == "final_digits"
    assert view.strategy == "grid"


def test_predict_on_raw_digits_pixels_matches_the_model_on_the_training_scale(grid_run, cli, tmp_path):
    from sklearn.datasets import load_digits

    from tunelab.app.predict import load_final_model

    if not (grid_run / "final" / "model.pt").exists():
        assert cli("final", grid_run).exit_code == 0
    model, meta = load_final_model(grid_run)
    digits = load_digits()
    rows = digits.data[:20]
    source = tmp_path / "raw.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(meta["feature_names"])
        writer.writerows(rows.tolist())

    with torch.inference_mode():
        x = torch.tensor(rows / 16.0, dtype=torch.float32).reshape(len(rows), *meta["input_shape"])
        probs = torch.softmax(model(x).float(), dim=1)
    expected = probs.max(dim=1).values.double().numpy()
    for given in (source, rows, rows.reshape(-1, 8, 8).reshape(20, 1, 8, 8), rows.tolist()):
        predicted = tunelab.predict(grid_run, given)
        assert predicted["probability"].to_numpy() == pytest.approx(expected, abs=1e-6)
        assert predicted["prediction"].tolist() == [str(int(i)) for i in probs.argmax(dim=1)]


def test_the_same_finished_tune_again_does_not_score_test_again(grid_run, cli):
    if not (grid_run / "final").exists():
        assert cli("final", grid_run).exit_code == 0
    final = (grid_run / "final" / "test_metrics.json").read_text(encoding="utf-8")
    touches = json.loads((grid_run / "test_touches.json").read_text(encoding="utf-8"))["count"]

    again = tunelab.tune(load_experiment(None, raw=RAW), out=grid_run)  # final.enabled: on

    assert again.ran_trials == 0
    assert (grid_run / "final" / "test_metrics.json").read_text(encoding="utf-8") == final  # not retrained
    assert json.loads((grid_run / "test_touches.json").read_text(encoding="utf-8"))["count"] == touches
    assert again.test_metrics == {k: v for k, v in json.loads(final).items() if k.startswith("test_")}


def test_a_new_winner_is_retrained_not_scored_with_the_old_winners_final_weights(tmp_path):
    """`final` ran for the winner of a partial grid (lr 1e-5); the rest of the grid then found a
    better lr of the same shape. The final model must be the new winner's retrain: the old
    winner's finished retrain in final/train was taken as done, and its test score reported
    under the new winner's name."""
    raw = {**RAW, "name": "final_winner_changes", "model": {"family": "mlp", "hidden_dims": [16]},
           "search": {"strategy": "grid", "n_jobs": 1, "space": {"train.lr": [0.00001, 0.01]}}}
    exp = load_experiment(None, raw=raw)
    out = tmp_path / "run"
    with without_report():
        first = tunelab.tune(exp, out=out, n_trials=1, run_final=False)
        assert not first.finished and first.best_params == {"train.lr": 0.00001}
        old = tunelab.final(out)
        done = tunelab.tune(exp, out=out)
    assert done.best_params == {"train.lr": 0.01}
    record = json.loads((out / "final" / "test_metrics.json").read_text())
    lrs = {json.loads(line)["lr"] for line in (out / "final" / "train" / "metrics.jsonl").read_text().splitlines()}
    assert record["params"] == {"train.lr": 0.01} and lrs == {0.01}
    assert record["test_accuracy"] > old["test_accuracy"] + 0.3  # lr 1e-5 barely moves in 3 epochs
    assert done.test_metrics is not None and done.test_metrics["test_accuracy"] == record["test_accuracy"]
