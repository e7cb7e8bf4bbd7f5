"""Dead workers' trials: found by two workers at once, or failed by Optuna's heartbeat check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
from optuna.trial import TrialState

from tunelab.search.shared_study import _mark_dead, stale_trial_callback
from tunelab.search.storage import make_storage


def _study(tmp_path: Path) -> optuna.Study:
    return optuna.create_study(study_name="races", storage=make_storage(f"sqlite:///{tmp_path / 'study.db'}"))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_two_workers_failing_the_same_dead_trial_retry_it_once(tmp_path: Path) -> None:
    study = _study(tmp_path)
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    trial.set_user_attr("pid", _dead_pid())
    trial.set_user_attr("trial_dir", "trials/0-x")
    snapshot = study.get_trials(deepcopy=True)[0]  # what both workers read before either acted

    first = _mark_dead(study, snapshot, "worker died")
    second = _mark_dead(study, snapshot, "worker died")  # finds it finished: steps back, no error

    assert (first, second) == (True, False)
    fresh = optuna.load_study(study_name="races", storage=make_storage(f"sqlite:///{tmp_path / 'study.db'}"))
    dead = fresh.trials[0]
    assert dead.state == TrialState.FAIL and dead.user_attrs["outcome"] == "crashed"
    retries = [t for t in fresh.trials if t.state == TrialState.WAITING]
    assert len(retries) == 1 and retries[0].user_attrs["retry_of"] == 0
    assert retries[0].user_attrs["retry_dir"] == "trials/0-x"


def test_a_trial_failed_for_a_stale_heartbeat_says_why_and_is_retried(tmp_path: Path) -> None:
    study = _study(tmp_path)
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    trial.set_user_attr("trial_dir", "trials/0-x")
    # what optuna.storages.fail_stale_trials does before it calls the callback
    study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
    stale_trial_callback(study, study._storage.get_trial(trial._trial_id))

    fresh = optuna.load_study(study_name="races", storage=make_storage(f"sqlite:///{tmp_path / 'study.db'}"))
    dead = fresh.trials[0]
    assert dead.user_attrs["outcome"] == "crashed" and "heartbeats" in dead.user_attrs["reason"]
    retries = [t for t in fresh.trials if t.state == TrialState.WAITING]
    assert len(retries) == 1 and retries[0].user_attrs["retry_of"] == 0
