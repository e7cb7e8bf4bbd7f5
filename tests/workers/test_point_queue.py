"""The explicit points' queue: workers queueing the same grid at the same moment queue each point
once (SQLite and PostgreSQL), twins left in the queue are failed before anyone trains them, and a
round keeps only the trials no other worker started first."""

from __future__ import annotations

import json
import multiprocessing
import threading
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from fixtures.postgres import pg_storage
from tunelab.config.load import load_experiment
from tunelab.config.space import encode_params, grid_points, parse_space
from tunelab.search import study_run
from tunelab.search.point_queue import drop_waiting_twins, enqueue_missing, pop_lock
from tunelab.search.storage import make_storage
from tunelab.search.trial_run import config_key

EXP = load_experiment(raw={"search": {"strategy": "grid", "space": {
    "train.lr": [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03], "train.weight_decay": [0.0, 0.001, 0.01]}}})
KNOBS = parse_space(EXP)
POINTS = grid_points(KNOBS, EXP)


def _queue_from_many_workers(url: str, name: str, n: int) -> list[int]:
    optuna.create_study(study_name=name, storage=make_storage(url))
    studies = [optuna.load_study(study_name=name, storage=make_storage(url)) for _ in range(n)]
    start, added, errors = threading.Barrier(n), [0] * n, []

    def queue(i: int) -> None:
        try:
            start.wait()
            added[i] = enqueue_missing(studies[i], url, KNOBS, POINTS)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=queue, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    for study in studies:
        study._storage._backend.engine.dispose()
    return added


def _waiting_keys(study: optuna.Study) -> list[str]:
    return sorted(t.user_attrs["config_key"] for t in study.get_trials(states=(TrialState.WAITING,)))


def test_workers_queueing_a_grid_at_once_on_sqlite_queue_each_point_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    added = _queue_from_many_workers(url, "queue", 4)
    assert sum(added) == len(POINTS) == 18
    study = optuna.load_study(study_name="queue", storage=url)
    assert _waiting_keys(study) == sorted(config_key(p) for p in POINTS)


def test_workers_queueing_a_grid_at_once_on_postgres_queue_each_point_once(pg_url: str, study_name: str) -> None:
    added = _queue_from_many_workers(pg_url, study_name, 4)
    assert sum(added) == len(POINTS)
    study = optuna.load_study(study_name=study_name, storage=pg_storage(pg_url))
    assert _waiting_keys(study) == sorted(config_key(p) for p in POINTS)


def test_twins_in_the_queue_are_failed_and_a_running_trial_is_left_alone(tmp_path: Path) -> None:
    study = optuna.create_study(study_name="twins", storage=make_storage(f"sqlite:///{tmp_path / 'study.db'}"))
    a, b = (config_key(p) for p in POINTS[:2])
    for key, point in ((a, POINTS[0]), (a, POINTS[0]), (b, POINTS[1]), (b, POINTS[1])):
        study.enqueue_trial(encode_params(KNOBS, point), user_attrs={"config_key": key})
    running = study.ask()  # trial 0 (point a) is taken: both waiting copies of a are now twins
    assert running.number == 0

    assert drop_waiting_twins(study) == 2
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.RUNNING, TrialState.FAIL, TrialState.WAITING, TrialState.FAIL]
    assert [t.user_attrs.get("outcome") for t in trials] == [None, "duplicate", None, "duplicate"]
    assert "queued twice" in trials[1].user_attrs["reason"]


@pytest.mark.parametrize("low_checks_first", [True, False])
def test_of_two_workers_holding_twins_of_one_point_only_the_lower_number_trains(
    tmp_path: Path, low_checks_first: bool
) -> None:
    study = optuna.create_study(study_name="held", storage=make_storage(f"sqlite:///{tmp_path / 'study.db'}"))
    key = config_key(POINTS[0])
    for _ in range(2):  # as two workers racing before the queue lock existed left it
        study.enqueue_trial(encode_params(KNOBS, POINTS[0]), user_attrs={"config_key": key})
    low, high = study.ask(), study.ask()  # both taken before either worker checked for twins
    params = json.loads(key)

    if low_checks_first:  # the order the two workers check in does not matter
        kept_low = study_run._still_ours(study, [(low, params)])
        kept_high = study_run._still_ours(study, [(high, params)])
    else:
        kept_high = study_run._still_ours(study, [(high, params)])
        kept_low = study_run._still_ours(study, [(low, params)])
    assert [t.number for t, _ in kept_low] == [0]
    assert kept_high == []
    failed = study.get_trials()[1]
    assert failed.state == TrialState.FAIL and failed.user_attrs["outcome"] == "duplicate"
    assert failed.user_attrs["reason"] == "configuration already taken by trial 0"


def _pop_all(url: str, out: Any) -> None:
    """A worker process: take queued trials the way `study_run._ask` and the rounds do, until none is left."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name="pops", storage=url)
    taken = []
    while True:
        with pop_lock(study):
            trial_id = study._pop_waiting_trial_id()
        if trial_id is None:
            break
        taken.append(trial_id)
    out.put(taken)


def test_processes_taking_queued_trials_on_sqlite_take_each_one_once(tmp_path: Path) -> None:
    """SQLite ignores Optuna's SELECT ... FOR UPDATE: without the lock, 4 processes popping 150
    queued trials took 175 (25 trials trained twice; the second to finish crashed the study)."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="pops", storage=url)
    for _ in range(120):
        study.add_trial(optuna.trial.create_trial(state=TrialState.WAITING))
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    workers = [ctx.Process(target=_pop_all, args=(url, out)) for _ in range(4)]
    for worker in workers:
        worker.start()
    taken = [trial_id for _ in workers for trial_id in out.get(timeout=120)]
    for worker in workers:
        worker.join(timeout=30)
    assert sorted(taken) == sorted(t._trial_id for t in study.get_trials(deepcopy=False))
    assert all(t.state == TrialState.RUNNING for t in study.get_trials(deepcopy=False))
