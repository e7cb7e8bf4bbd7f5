"""Continuing a finished run (`tunelab train --continue`, `tunelab continue RUN --best K --epochs N`):
the new folder starts where the parent stopped, optimizer state included, and the parent is untouched."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
import yaml

EXPERIMENT = {
    "name": "cont",
    "data": {"name": "digits", "val_fraction": 0.2, "test_fraction": 0.2, "split_seed": 0},
    "model": {"family": "mlp", "hidden_dims": [16], "dropout": 0.1},  # dropout: the RNG state must carry over too
    "train": {"epochs": 3, "batch_size": 64, "optimizer": "adam", "lr": 0.003, "loss": "cross_entropy",
              "metrics": ["accuracy"], "seed": 0},
}


def _experiment(tmp_path: Path, **search: object) -> Path:
    raw = dict(EXPERIMENT)
    if search:
        raw["search"] = search
    path = tmp_path / "cont.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def _records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _weights(folder: Path, epoch: int) -> dict[str, torch.Tensor]:
    return torch.load(folder / "checkpoints" / f"epoch_{epoch:05d}.pt", weights_only=True)


def test_continue_equals_training_at_once_and_leaves_the_parent_alone(tmp_path: Path, cli) -> None:
    exp, run = _experiment(tmp_path), tmp_path / "run"
    assert cli("train", exp, "--out", run, "--quiet").exit_code == 0
    parent = run / "trials" / "0-base"
    before = _digest(parent)

    result = cli("train", exp, "--out", run, "--continue", "--set", "train.epochs=6", "--json")

    assert result.exit_code == 0, result.stderr
    child = Path(json.loads(result.stdout)["trial_dir"])
    assert child == run / "continued" / "0-base-to6ep"
    assert _digest(parent) == before
    cost = json.loads(result.stdout)["cost"]  # the continued trial has its cost columns too
    assert cost == json.loads((child / "cost.json").read_text()) and cost["n_params"] > 0
    records = _records(child)
    assert [r["epoch"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert records[:3] == _records(parent)
    assert records[3]["continued_from"] == {"trial": str(parent.resolve()), "epoch": 3}
    assert not any("continued_from" in r for r in records[4:])
    assert json.loads((child / "params.json").read_text())["parent"]["epoch"] == 3
    assert "Continued from" in (child / "metrics.log").read_text()

    once = cli("train", exp, "--out", tmp_path / "once", "--set", "train.epochs=6", "--json")
    assert once.exit_code == 0, once.stderr
    alone = Path(json.loads(once.stdout)["trial_dir"])
    assert [r["val_loss"] for r in _records(child)] == [r["val_loss"] for r in _records(alone)]
    a, b = _weights(child, 6), _weights(alone, 6)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    steps = [s["step"] for s in a["optimizer"]["state"].values()]  # Adam's step count went on from 3 epochs
    assert steps and all(float(s) == float(b["optimizer"]["state"][0]["step"]) for s in steps)

    again = cli("train", exp, "--out", run, "--continue", "--set", "train.epochs=8", "--json")  # a chain
    assert again.exit_code == 0, again.stderr
    grandchild = Path(json.loads(again.stdout)["trial_dir"])
    assert grandchild.name == "0-base-to8ep" and _records(grandchild)[6]["continued_from"]["epoch"] == 6


@pytest.mark.parametrize("epochs", [3, 2])
def test_continue_to_no_more_epochs_is_a_one_line_error(tmp_path: Path, cli, epochs: int) -> None:
    exp, run = _experiment(tmp_path), tmp_path / "run"
    assert cli("train", exp, "--out", run, "--quiet").exit_code == 0
    result = cli("train", exp, "--out", run, "--continue", "--set", f"train.epochs={epochs}")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "not larger than the 3 epochs" in result.stderr
    assert not (run / "continued").exists()


def test_continue_without_checkpoints_or_run_is_a_one_line_error(tmp_path: Path, cli) -> None:
    exp, run = _experiment(tmp_path), tmp_path / "run"
    nothing = cli("train", exp, "--out", run, "--continue", "--set", "train.epochs=6")
    assert nothing.exit_code == 2 and "no trained run to continue" in nothing.stderr
    assert cli("train", exp, "--out", run, "--quiet").exit_code == 0
    for ckpt in (run / "trials" / "0-base" / "checkpoints").glob("epoch_*.pt"):
        ckpt.unlink()
    result = cli("train", exp, "--out", run, "--continue", "--set", "train.epochs=6")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "no epoch checkpoint to continue from" in result.stderr
    other = cli("train", exp, "--out", run, "--continue", "--set", "train.epochs=6", "--set", "train.lr=0.1")
    assert other.exit_code == 2 and "train" in other.stderr  # only train.epochs may differ


@pytest.mark.usefixtures("no_report")  # asserts nothing about the report (fixtures/no_report.py)
def test_continue_best_trials_of_a_study(tmp_path: Path, cli) -> None:
    exp = _experiment(tmp_path, strategy="grid", space={"train.lr": [0.01, 0.003, 0.001]},
                      objective={"metric": "val_accuracy"})
    run = tmp_path / "study"
    assert cli("tune", exp, "--out", run, "--quiet", "--no-final").exit_code == 0
    trials = {p.name: _digest(p) for p in (run / "trials").iterdir()}

    result = cli("continue", run, "--best", "2", "--epochs", "2")

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    by_value = sorted(trials, key=lambda name: -json.loads((run / "trials" / name / "result.json").read_text())[
        "best_record"]["val_accuracy"])
    assert [ln.split()[1] for ln in lines] == [name.split("-", 1)[0] for name in by_value[:2]]  # best first
    for line, name in zip(lines, by_value[:2], strict=True):
        child = Path(line.rsplit(" in ", 1)[1])
        assert child == run / "continued" / f"{name}-to5ep"
        records = _records(child)
        assert [r["epoch"] for r in records] == [1, 2, 3, 4, 5]
        assert records[:3] == _records(run / "trials" / name)
        assert records[3]["continued_from"]["epoch"] == 3
        parent = json.loads((child / "params.json").read_text())["parent"]
        assert parent["trial"] == str((run / "trials" / name).resolve())
    assert {p.name: _digest(p) for p in (run / "trials").iterdir()} == trials
    assert cli("continue", run / "trials", "--epochs", "2").exit_code == 2


@pytest.mark.usefixtures("no_report")  # asserts nothing about the report (fixtures/no_report.py)
def test_continue_a_trial_of_several_seeds_continues_each_seed(tmp_path: Path, cli) -> None:
    exp = _experiment(tmp_path, strategy="grid", space={"train.lr": [0.01, 0.003]}, seeds=2)
    run = tmp_path / "study"
    assert cli("tune", exp, "--out", run, "--quiet", "--no-final").exit_code == 0

    result = cli("continue", run, "--epochs", "1")

    assert result.exit_code == 0, result.stderr
    assert "mean of 2 seeds" in result.stdout
    child = Path(result.stdout.strip().rsplit(" in ", 1)[1])
    parent = run / "trials" / child.name.removesuffix("-to4ep")
    for seed in ("seed-0", "seed-1"):
        records = _records(child / seed)
        assert [r["epoch"] for r in records] == [1, 2, 3, 4]
        assert records[:3] == _records(parent / seed)
        assert records[3]["continued_from"]["trial"] == str((parent / seed).resolve())


@pytest.mark.usefixtures("no_report")  # asserts nothing about the report (fixtures/no_report.py)
def test_continue_json_prints_one_object_per_continued_trial(tmp_path: Path, cli) -> None:
    exp = _experiment(tmp_path, strategy="grid", space={"train.lr": [0.01, 0.003, 0.001]}, seeds=2,
                      objective={"metric": "val_accuracy"})
    run = tmp_path / "study"
    assert cli("tune", exp, "--out", run, "--quiet", "--no-final").exit_code == 0

    result = cli("continue", run, "--best", "2", "--epochs", "1", "--json")

    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 2 and rows[0]["value_before"] >= rows[1]["value_before"]  # best first
    for row in rows:
        child = Path(row["trial_dir"])
        assert child.parent == run / "continued" and child.name.endswith("-to4ep")
        assert row["epochs_run"] == [4, 4] and row["metric"] == "val_accuracy"
        for i, seed in enumerate(("seed-0", "seed-1")):
            best = max(r["val_accuracy"] for r in _records(child / seed))
            assert row["values"][i] == pytest.approx(best)
        assert Path(row["parent_dir"]) == run / "trials" / child.name.removesuffix("-to4ep")


@pytest.mark.usefixtures("no_report")  # asserts nothing about the report (fixtures/no_report.py)
def test_continue_a_cross_validated_trial_continues_each_fold_on_its_own_rows(tmp_path: Path, cli) -> None:
    """With data.cv_folds a trial's runs are its folds (`seed-<i>/`, each on its own rows), not
    seeds: `continue` said the finished trial 'has not finished' and looked for one folder."""
    raw = {**EXPERIMENT, "data": {**EXPERIMENT["data"], "cv_folds": 3},
           "search": {"strategy": "grid", "space": {"train.lr": [0.01, 0.003]}}}
    exp = tmp_path / "cv.yaml"
    exp.write_text(yaml.safe_dump(raw), encoding="utf-8")
    run = tmp_path / "study"
    assert cli("tune", exp, "--out", run, "--quiet", "--no-final").exit_code == 0

    result = cli("continue", run, "--epochs", "1")

    assert result.exit_code == 0, result.stderr
    assert "mean of 3 folds" in result.stdout
    child = Path(result.stdout.strip().rsplit(" in ", 1)[1])
    parent = run / "trials" / child.name.removesuffix("-to4ep")
    for fold in range(3):
        records = _records(child / f"seed-{fold}")
        assert [r["epoch"] for r in records] == [1, 2, 3, 4]
        assert records[:3] == _records(parent / f"seed-{fold}")
        config = json.loads((child / f"seed-{fold}" / "params.json").read_text())["config"]
        assert config["data"]["cv_fold"] == fold and config["train"]["seed"] == 0
