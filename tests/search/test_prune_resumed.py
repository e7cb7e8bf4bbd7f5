"""A resumed attempt with a pruner reports the epochs trained before its resume before it goes on."""

from __future__ import annotations

import optuna
from torch import nn

from tunelab.runs.layout import TrialLayout
from tunelab.runs.records import append_jsonl
from tunelab.search.trial_run import OptunaPruning
from tunelab.train.hooks import FitContext


def _killed_attempt(tmp_path, epochs: int) -> TrialLayout:
    layout = TrialLayout(tmp_path / "trial")
    layout.root.mkdir(parents=True)
    for epoch in range(1, epochs + 1):
        append_jsonl(layout.metrics_jsonl, {"epoch": epoch, "val_loss": 1.0 / epoch})
    return layout


def test_a_resumed_attempt_reports_its_earlier_epochs_up_to_the_checkpoint(tmp_path) -> None:
    layout = _killed_attempt(tmp_path, 5)  # records to epoch 5, checkpoint at epoch 3
    study = optuna.create_study(pruner=optuna.pruners.SuccessiveHalvingPruner())
    trial = study.ask()
    hook = OptunaPruning(trial, "val_loss", seed0=layout)
    ctx = FitContext(model=nn.Linear(1, 1), epochs=10, epoch=3)
    hook.on_train_start(ctx)
    assert study.trials[0].intermediate_values == {1: 1.0, 2: 0.5, 3: 1.0 / 3}
    hook.on_epoch_end(ctx, {"epoch": 4, "val_loss": 0.2})  # epoch 4 trained again: its new value
    assert study.trials[0].intermediate_values[4] == 0.2
    assert hook.unreported(layout) == {5: 0.2}  # only the dead attempt's epoch 5 was never reported


def test_a_fresh_attempt_or_no_pruner_reports_nothing_at_the_start(tmp_path) -> None:
    layout = _killed_attempt(tmp_path, 3)
    study = optuna.create_study()
    for prune, epoch in ((True, 0), (False, 3)):
        trial = study.ask()
        OptunaPruning(trial, "val_loss", prune=prune, seed0=layout).on_train_start(
            FitContext(model=nn.Linear(1, 1), epochs=10, epoch=epoch))
        assert study.trials[trial.number].intermediate_values == {}
