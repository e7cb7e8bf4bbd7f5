"""Pruning inside a vectorized group: each member reports to its own trial, and a pruned member
leaves the group's stack at once while the others train on exactly as they would alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from optuna.trial import TrialState

from tunelab.app.tune import tune
from tunelab.config.schema import Experiment
from tunelab.runs.layout import TrialLayout
from tunelab.search import storage
from tunelab.train.batched_model import StackedNet

PRUNED_LR = 0.01


class PruneOneLr(optuna.pruners.BasePruner):
    """Prunes the trial with lr == PRUNED_LR once it has reported epoch 2; no other."""

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return PRUNED_LR in trial.params.values() and (trial.last_step or 0) >= 2


def _study(out: Path, name: str, vectorize: Any) -> optuna.Study:
    exp = Experiment.model_validate({
        "name": name,
        "data": {"name": "diabetes"},
        "model": {"family": "mlp", "hidden_dims": [16]},
        "train": {"epochs": 5, "batch_size": 32, "loss": "huber", "metrics": ["r2"]},
        "final": {"enabled": False},
        "search": {"strategy": "grid", "space": {"train.lr": [0.001, PRUNED_LR, 0.003]},
                   "pruner": "median", "vectorize": vectorize, "n_jobs": 1},
    })
    tune(exp, out=out, write_outputs=False)
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'study.db'}")


def _last_weights(out: Path, trial: optuna.trial.FrozenTrial) -> dict[str, torch.Tensor]:
    epoch, newest = TrialLayout(out / trial.user_attrs["trial_dir"]).epoch_checkpoints()[0]
    assert epoch == 5
    return torch.load(newest, weights_only=False)["model"]


def test_a_pruned_member_leaves_its_group_and_the_others_equal_solo_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "make_pruner", lambda name: PruneOneLr())
    kept: list[int] = []
    keep = StackedNet.keep

    def recording_keep(self: StackedNet, rows: torch.Tensor) -> None:
        kept.append(len(rows))
        keep(self, rows)

    monkeypatch.setattr(StackedNet, "keep", recording_keep)
    grouped = _study(tmp_path / "on", "group_prune", 3)
    assert kept == [2]  # after epoch 2 the stack holds the two surviving members
    kept.clear()
    alone = _study(tmp_path / "off", "solo_prune", "off")
    assert kept == []

    by_key = {t.user_attrs["config_key"]: t for t in alone.trials}
    pruned = [t for t in grouped.trials if t.state == TrialState.PRUNED]
    assert len(pruned) == 1 and pruned[0].params["lr"] == PRUNED_LR
    assert sorted(pruned[0].intermediate_values) == [1, 2]  # its own two reports, then it left
    assert pruned[0].user_attrs["pruned_at_epoch"] == 2
    complete = [t for t in grouped.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 2
    for t in complete:
        solo = by_key[t.user_attrs["config_key"]]
        assert solo.state == TrialState.COMPLETE and sorted(t.intermediate_values) == [1, 2, 3, 4, 5]
        assert t.value == pytest.approx(solo.value, rel=1e-5, abs=1e-6)
        ours, theirs = _last_weights(tmp_path / "on", t), _last_weights(tmp_path / "off", solo)
        assert ours.keys() == theirs.keys()
        for name in ours:
            torch.testing.assert_close(ours[name], theirs[name], rtol=1e-5, atol=1e-6)
