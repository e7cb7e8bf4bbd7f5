"""The trainer's behaviour on small data: records, checkpoints, divergence, stopping, schedules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import tunelab
from tunelab.runs.records import read_json, read_jsonl

DIGITS = {
    "name": "digits_small",
    "data": {"name": "digits"},
    "model": {"family": "mlp", "hidden_dims": [16]},
    "train": {"epochs": 4, "batch_size": 128, "lr": 0.01, "checkpoints": {"every": 1}},
}
DIABETES = {
    "name": "diabetes_small",
    "data": {"name": "diabetes"},
    "model": {"family": "mlp", "hidden_dims": [16]},
    "train": {"epochs": 4, "batch_size": 64, "lr": 0.01, "checkpoints": {"every": 1}},
}


def _train(tmp_path: Path, base: dict, *overrides: str) -> tunelab.TrainResult:
    exp = tunelab.load_experiment(None, list(overrides), raw=base)
    return tunelab.train(exp, out=tmp_path / "run")


def _trial(res: tunelab.TrainResult) -> Path:
    return res.trial_dir


def test_every_trial_file_is_written_with_one_record_per_epoch(tmp_path: Path) -> None:
    res = _train(tmp_path, DIGITS, "train.eval_train=true")
    trial = _trial(res)
    for name in ("params.json", "metrics.jsonl", "metrics.log", "grad_norms.jsonl", "result.json"):
        assert (trial / name).is_file(), name
    records = read_jsonl(trial / "metrics.jsonl")
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    expected = {"epoch", "train_loss", "val_loss", "val_accuracy", "val_f1", "lr", "epoch_time_s", "is_best",
                "train_eval_loss", "train_eval_accuracy", "identity"}
    assert expected <= set(records[0])
    identity = records[0]["identity"]
    assert {"experiment_id", "git_commit", "data_hash", "seed", "versions"} <= set(identity)
    assert identity["versions"]["torch"].startswith(torch.__version__.split("+")[0])
    norms = read_jsonl(trial / "grad_norms.jsonl")
    readable = {"hidden 1 Linear.weight", "hidden 1 Linear.bias", "output Linear.weight", "output Linear.bias"}
    assert len(norms) == 4 and set(norms[0]["norms"]) == readable
    assert norms[0]["total"] == pytest.approx(sum(v * v for v in norms[0]["norms"].values()) ** 0.5)
    assert (res.run_dir / "experiment.yaml").is_file()
    assert sorted(p.name for p in (trial / "checkpoints").iterdir()) == ["best.pt", "epoch_00003.pt", "epoch_00004.pt"]


def test_no_test_set_number_appears_in_a_trial_folder(tmp_path: Path) -> None:
    res = _train(tmp_path, DIABETES, "train.eval_train=true")
    test_metric = re.compile(r"test_(loss|r2|mae|rmse|mse|accuracy|f1)")
    for path in _trial(res).iterdir():
        if path.is_file():
            assert not test_metric.search(path.read_text()), path.name


def test_metrics_log_names_the_new_best_epoch(tmp_path: Path) -> None:
    res = _train(tmp_path, DIGITS)
    text = (_trial(res) / "metrics.log").read_text()
    assert "Epoch 1:" in text
    assert "New best model at epoch 1 (val_loss=" in text


def test_a_huge_learning_rate_ends_the_trial_as_diverged_with_its_reason(tmp_path: Path) -> None:
    res = _train(tmp_path, DIABETES, "train.optimizer=sgd", "train.lr=1000", "train.epochs=20")
    assert res.result.state == "diverged"
    assert "at epoch" in res.result.reason
    assert res.result.epochs_run < 20
    assert read_json(_trial(res) / "result.json")["state"] == "diverged"


def test_early_stopping_stops_after_patience_epochs_without_improvement(tmp_path: Path) -> None:
    res = _train(tmp_path, DIGITS, "train.lr=0.5", "train.epochs=60", "train.early_stopping.patience=2")
    r = res.result
    assert r.state == "complete"
    assert "early stopping" in r.reason
    assert r.epochs_run == r.best_epoch + 2 or r.epochs_run < 60


def test_rerunning_a_finished_train_does_not_train_again(tmp_path: Path) -> None:
    first = _train(tmp_path, DIGITS)
    lines = (_trial(first) / "metrics.jsonl").read_text()
    second = _train(tmp_path, DIGITS)
    assert (_trial(second) / "metrics.jsonl").read_text() == lines
    assert second.result.epochs_run == first.result.epochs_run


def test_a_truncated_newest_checkpoint_falls_back_to_the_previous_one(tmp_path: Path, caplog) -> None:
    uninterrupted = _train(tmp_path / "a", DIGITS, "train.epochs=6", "train.checkpoints.keep_last=3")
    done = _train(tmp_path / "b", DIGITS, "train.epochs=6", "train.checkpoints.keep_last=3")
    trial = _trial(done)
    # Pretend the run died during epoch 6: drop its result and truncate the epoch-5 checkpoint.
    (trial / "result.json").unlink()
    (trial / "checkpoints" / "epoch_00006.pt").unlink()
    ckpt5 = trial / "checkpoints" / "epoch_00005.pt"
    ckpt5.write_bytes(ckpt5.read_bytes()[:100])
    with caplog.at_level("WARNING"):
        resumed = _train(tmp_path / "b", DIGITS, "train.epochs=6", "train.checkpoints.keep_last=3")
    assert resumed.result.resumed_from_epoch == 4
    assert "could not be loaded" in caplog.text
    assert [r["epoch"] for r in read_jsonl(trial / "metrics.jsonl")] == [1, 2, 3, 4, 5, 6]
    a = torch.load(_trial(uninterrupted) / "checkpoints" / "epoch_00006.pt", weights_only=True)["model"]
    b = torch.load(trial / "checkpoints" / "epoch_00006.pt", weights_only=True)["model"]
    for key in a:
        assert torch.allclose(a[key], b[key])


@pytest.mark.parametrize(
    "overrides",
    [
        ("train.scheduler=cosine", "train.warmup_ratio=0.2"),
        ("train.scheduler=linear",),
        ("train.scheduler=step", "train.step_size=1", "train.gamma=0.5"),
        ("train.scheduler=plateau",),
        ("train.gradient_accumulation_steps=3", "train.max_grad_norm=0.5"),
        ("train.optimizer=sgd", "train.momentum=0.9", "train.nesterov=true"),
        ("train.optimizer=rmsprop",),
        ("train.optimizer=adamw", "train.weight_decay=0.01"),
        ("train.loss=mse",),
        ("train.batch_size=full",),
        ("train.precision=bf16",),
        ("model.layer_norm=true", "model.dropout=0.2", "model.activation=gelu"),
    ],
)
def test_training_options_run_to_completion_with_finite_losses(tmp_path: Path, overrides: tuple[str, ...]) -> None:
    res = _train(tmp_path, DIGITS, *overrides)
    assert res.result.state == "complete"
    assert all(r["val_loss"] is not None for r in read_jsonl(_trial(res) / "metrics.jsonl"))


def test_step_schedule_halves_the_lr_every_epoch(tmp_path: Path) -> None:
    res = _train(tmp_path, DIGITS, "train.scheduler=step", "train.step_size=1", "train.gamma=0.5")
    lrs = [r["lr"] for r in read_jsonl(_trial(res) / "metrics.jsonl")]
    assert lrs == pytest.approx([0.005, 0.0025, 0.00125, 0.000625])


def test_gaussian_nll_trains_a_mean_and_variance_head(tmp_path: Path) -> None:
    res = _train(tmp_path, DIABETES, "train.loss=gaussian_nll", "train.epochs=3")
    assert res.result.state == "complete"
    last = res.result.last_record
    assert "val_r2" in last and "val_loss" in last


def test_regression_metrics_are_reported_in_target_units(tmp_path: Path) -> None:
    res = _train(tmp_path, DIABETES, "data.standardize_target=true", "train.epochs=2")
    # diabetes targets are in the hundreds: an MAE in original units is far above the scaled loss
    assert res.result.last_record["val_mae"] > 10 * res.result.last_record["val_loss"]
