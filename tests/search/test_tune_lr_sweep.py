"""Seed 004's learning-rate sweep as one command, and a finished study that is not rerun."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "seed004_lr_sweep.yaml"

# Seed 004's table at the last epoch: lr -> (train_eval_loss, val_loss, val_acc), 3 decimals.
SEED_004 = {
    0.001: (0.763, 0.733, 0.450),
    0.01: (0.675, 0.663, 0.533),
    0.1: (0.340, 0.373, 0.967),
    1.0: (0.053, 0.072, 0.983),
    10.0: (0.280, 0.291, 0.883),
}


def last_record(trial_dir: Path) -> dict:
    lines = (trial_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return json.loads(lines[-1])


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    from typer.testing import CliRunner

    from tunelab.cli import app

    out = tmp_path_factory.mktemp("lr_sweep") / "run"
    result = CliRunner().invoke(app, ["tune", str(EXAMPLE), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.stderr
    return out, result


def test_lr_sweep_runs_five_trials_and_reproduces_seed_004_table(sweep):
    out, _ = sweep
    trial_dirs = sorted((out / "trials").iterdir())
    assert len(trial_dirs) == 5
    table = {}
    for trial_dir in trial_dirs:
        params = json.loads((trial_dir / "params.json").read_text(encoding="utf-8"))["params"]
        record = last_record(trial_dir)
        assert record["epoch"] == 40
        table[float(params["train.lr"])] = (
            round(record["train_eval_loss"], 3),
            round(record["val_loss"], 3),
            round(record["val_accuracy"], 3),
        )
    assert table == SEED_004


def test_lr_sweep_names_lr_1_as_best(sweep):
    out, _ = sweep
    history = json.loads((out / "optimization_history.json").read_text(encoding="utf-8"))
    assert history["best_params"] == {"train.lr": 1.0}
    assert history["n_trials"] == 5
    assert all(t["state"] == "complete" for t in history["trials"])


def test_same_finished_tune_again_runs_nothing_and_says_already_finished(sweep, cli):
    out, _ = sweep
    db = f"sqlite:///{out / 'study.db'}"
    before = len(optuna.load_study(study_name="seed004_lr_sweep", storage=db).trials)
    files = {p: p.stat().st_mtime_ns for p in (out / "trials").rglob("*") if p.is_file()}

    result = cli("tune", EXAMPLE, "--out", out, "--quiet")

    assert result.exit_code == 0, result.stderr
    assert "already finished" in result.stdout
    after = optuna.load_study(study_name="seed004_lr_sweep", storage=db).trials
    assert len(after) == before == 5
    now = {p: p.stat().st_mtime_ns for p in (out / "trials").rglob("*") if p.is_file()}
    assert now == files  # no trial folder added, no trial file touched


def test_the_run_folder_records_the_split_the_data_set_brings_and_the_card_states_it(sweep):
    out, _ = sweep
    assert json.loads((out / "split.json").read_text(encoding="utf-8")) == {"train": 180, "val": 60, "test": 0}
    decisions = (out / "decisions.md").read_text(encoding="utf-8")
    assert "180 train / 60 val rows, no test split" in decisions
