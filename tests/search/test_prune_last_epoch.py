"""A trial is never pruned at its last epoch: the compute is spent, so it counts as complete."""

from __future__ import annotations

import optuna
from torch import nn

from tunelab.search.trial_run import OptunaPruning
from tunelab.train.hooks import FitContext


class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


def test_the_pruner_is_asked_before_the_last_epoch_and_not_at_it() -> None:
    study = optuna.create_study(pruner=_AlwaysPrune())
    stopped_at = {}
    for last in (False, True):
        trial = study.ask()
        hook, ctx = OptunaPruning(trial, "val_loss"), FitContext(model=nn.Linear(1, 1), epochs=4)
        hook.on_epoch_end(ctx, {"epoch": 4 if last else 3, "val_loss": 0.5})
        stopped_at[last] = ctx.stop
        assert trial.number in {t.number for t in study.trials} and 3 + last in hook.reported
    assert stopped_at == {False: True, True: False}
