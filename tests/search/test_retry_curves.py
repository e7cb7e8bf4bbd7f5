"""A retried trial's learning curve in the study is the whole curve on disk, not only the epochs
its own process trained: a retry that resumes from a checkpoint, and one that finds the trial
already finished (result.json in the folder), both record every epoch of seed 0's metrics.jsonl.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tunelab.app.tune import tune
from tunelab.config.schema import Experiment

EPOCHS = 4


def _experiment(name: str, vectorize: str | int, pruner: str, seeds: int) -> Experiment:
    return Experiment.model_validate({
        "name": name,
        "data": {"name": "diabetes"},
        "model": {"family": "mlp", "hidden_dims": [16]},
        "train": {"epochs": EPOCHS, "batch_size": 64, "checkpoints": {"keep_last": EPOCHS, "every": 1}},
        "final": {"enabled": False},
        "search": {"strategy": "grid", "space": {"train.lr": [0.001, 0.003]}, "seeds": seeds,
                   "pruner": pruner, "vectorize": vectorize, "n_jobs": 1},
    })


def _seed0(trial_dir: Path) -> Path:
    return trial_dir / "seed-0" if (trial_dir / "seed-0").is_dir() else trial_dir


def _curve_on_disk(trial_dir: Path) -> dict[int, float]:
    lines = (_seed0(trial_dir) / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return {r["epoch"]: r["val_loss"] for r in map(json.loads, filter(str.strip, lines))}


def _as_a_dead_worker_left_it(first: Path, again: Path, *, resume_from: int | None) -> None:
    """The trial folders of `first` without its study, as a retry finds them: finished, or (with
    `resume_from`) killed after that epoch's checkpoint."""
    shutil.copytree(first / "trials", again / "trials")
    for trial_dir in (again / "trials").iterdir():
        for seed in trial_dir.glob("seed-*") if (trial_dir / "seed-0").is_dir() else [trial_dir]:
            if resume_from is None:
                continue
            (seed / "result.json").unlink()
            for ckpt in (seed / "checkpoints").glob("epoch_*.pt"):
                if int(ckpt.stem.split("_")[1]) > resume_from:
                    ckpt.unlink()


@pytest.mark.parametrize("vectorize", ["off", 2])
@pytest.mark.parametrize("pruner", ["none", "median"])
@pytest.mark.parametrize("resume_from", [None, 2])
def test_a_retried_trial_records_its_whole_curve_from_disk(tmp_path, vectorize, pruner, resume_from):
    seeds = 2 if vectorize != "off" else 1  # two seeds: a two-member group even for one trial
    first, again = tmp_path / "first", tmp_path / "again"
    tune(_experiment("curves_first", vectorize, pruner, seeds), out=first, write_outputs=False)
    _as_a_dead_worker_left_it(first, again, resume_from=resume_from)
    tune(_experiment("curves_again", vectorize, pruner, seeds), out=again, write_outputs=False)

    study = optuna.load_study(study_name="curves_again", storage=f"sqlite:///{again / 'study.db'}")
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 2
    for t in trials:
        trial_dir = again / t.user_attrs["trial_dir"]
        result = json.loads((_seed0(trial_dir) / "result.json").read_text(encoding="utf-8"))
        assert result["resumed_from_epoch"] == (resume_from or 0)
        disk = _curve_on_disk(trial_dir)
        assert sorted(disk) == list(range(1, EPOCHS + 1))
        assert t.intermediate_values == pytest.approx(disk)
