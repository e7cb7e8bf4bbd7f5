"""How a queued round is handed out: lone trials one at a time, longest first; groups in fair shares."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import optuna
from optuna.trial import TrialState

from tunelab.config.schema import Experiment
from tunelab.config.space import parse_space
from tunelab.runs.layout import RunLayout
from tunelab.search.rounds import SHAPE_ATTR, SLOT_ATTR, rounds_for, share_processes

ROWS = 640
SPACE = {
    "train.lr": {"low": 1e-4, "high": 1e-1, "log": True},
    "train.batch_size": [8, 64],
    "train.epochs": {"low": 1, "high": 9},
}


class Rows:
    """A data-set cache whose every data set has ROWS training rows (no file is read)."""

    def get(self, exp: Experiment) -> SimpleNamespace:
        return SimpleNamespace(train=range(ROWS))


def planners(tmp_path: Path, processes: int, shape: str = "") -> tuple[optuna.Study, list]:
    exp = Experiment.model_validate({
        "name": "shares", "data": {"name": "diabetes"}, "model": {"family": "mlp", "hidden_dims": [8]},
        "train": {"epochs": 3, "batch_size": 64}, "final": {"enabled": False},
        "search": {"strategy": "tpe", "n_trials": 12, "batch_size": 6, "sampler_seed": 1, "space": SPACE},
    })
    study = optuna.create_study()
    found = [rounds_for(study, exp, parse_space(exp), 12, Rows(), RunLayout(tmp_path)) for _ in range(processes)]
    for planner in found:
        planner.shape_of = lambda params: shape  # shapes need real data; the hand-out only reads the label
    share_processes(study, processes)
    return study, found


def steps(trial: optuna.trial.FrozenTrial) -> int:
    params = trial.system_attrs["fixed_params"]  # a queued trial's values (no params until it is popped)
    return params["epochs"] * -(-ROWS // params["batch_size"])


def test_lone_trials_go_out_one_at_a_time_longest_first(tmp_path: Path) -> None:
    study, (first, second) = planners(tmp_path, 2)
    got = [first.ask(study, 0), second.ask(study, 0), first.ask(study, 0)]
    assert [len(items) for items in got] == [1, 1, 1]  # a free process takes the next, not a fixed half
    queued = sorted(study.get_trials(), key=lambda t: t.user_attrs[SLOT_ATTR])
    assert len(queued) == 6 and not any(SHAPE_ATTR in t.user_attrs for t in queued)
    costs = [steps(t) for t in queued]
    assert costs == sorted(costs, reverse=True) and costs[0] > costs[-1]
    assert [items[0][0].number for items in got] == [t.number for t in queued[:3]]  # handed out in slot order


def test_a_lone_process_takes_the_whole_round(tmp_path: Path) -> None:
    study, (only,) = planners(tmp_path, 1)
    assert len(only.ask(study, 0)) == 6


def test_a_same_shape_group_is_shared_fairly_between_processes(tmp_path: Path) -> None:
    study, (first, second) = planners(tmp_path, 2, shape="one shape")
    a, b = first.ask(study, 0), second.ask(study, 0)
    assert (len(a), len(b)) == (3, 3)
    assert first.ask(study, 0) == []  # the round is out; wait for it to finish
    assert len({t.user_attrs[SHAPE_ATTR] for t in study.get_trials()}) == 1
    for trial, _ in a + b:
        study.tell(trial, 1.0)
    assert len(first.ask(study, 6)) == 3  # round two
    assert {t.state for t in study.get_trials()} == {TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING}


def test_a_small_group_is_not_split_into_lone_trials(tmp_path: Path) -> None:
    """Three trials of one shape and two processes: one process takes all three (shares of 2 and
    1 would train one of them alone, which gains nothing from the group)."""
    study, (first, second) = planners(tmp_path, 2)
    shapes = iter(["trio"] * 3 + [""] * 3)  # the round's asks in order: three of one shape, three alone
    first.shape_of = lambda params: next(shapes)
    a, b = first.ask(study, 0), second.ask(study, 0)
    shapes_of = [study._storage.get_trial_user_attrs(t._trial_id).get(SHAPE_ATTR) for t, _ in a + b]
    assert len(a) == 3 and shapes_of[0] is not None and shapes_of[:3] == [shapes_of[0]] * 3
    assert len(b) == 1 and shapes_of[3] is None  # the other process goes on with a lone trial
