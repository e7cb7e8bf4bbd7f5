"""Workers on two machines share a PostgreSQL study asked in rounds: one of them queues each round.

Each machine's processes lock a file in their own run folder while they queue a round; that file
is nothing to the other machine. Both found the study without a pending trial at once, both
asked the same round (same sampler seed, same history) and queued it twice.
"""

from __future__ import annotations

import threading
import time

import optuna
import sqlalchemy as sa

from fixtures.postgres import pg_storage
from tunelab.config.schema import Experiment
from tunelab.config.space import parse_space
from tunelab.runs.layout import RunLayout
from tunelab.search.rounds import ROUND_ATTR, rounds_for, share_processes

EXP = {
    "data": {"name": "diabetes"},
    "model": {"family": "mlp", "hidden_dims": [8]},
    "train": {"epochs": 2, "batch_size": 64, "lr": 0.003},
    "search": {"strategy": "tpe", "n_trials": 8, "batch_size": 4, "sampler_seed": 1,
               "space": {"train.lr": {"low": 1e-4, "high": 1e-1, "log": True},
                         "model.dropout": {"low": 0.0, "high": 0.5}}},
    "final": {"enabled": False},
}


def _waiting_on_an_advisory_lock(url: str) -> bool:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        query = "select count(*) from pg_locks where locktype = 'advisory' and not granted"
        return bool(conn.execute(sa.text(query)).scalar())


def test_two_machines_queue_one_round_between_them(tmp_path, pg_url, study_name):
    exp = Experiment.model_validate({"name": study_name, **EXP})
    knobs = parse_space(exp)
    study = optuna.create_study(study_name=study_name, storage=pg_storage(pg_url))
    share_processes(study, 2)
    here, there = (rounds_for(study, exp, knobs, 8, None, RunLayout(tmp_path / m)) for m in ("here", "there"))
    assert here is not None and there is not None and here.lock_path != there.lock_path
    other: list = []
    askers: list[threading.Thread] = []
    queue = here._queue_round

    def queue_while_the_other_machine_asks(*args):
        # the other machine asks while this one is about to queue: it must wait for the round
        asker = threading.Thread(target=lambda: other.append(there.ask(study, 0)))
        asker.start()
        askers.append(asker)
        deadline = time.monotonic() + 60
        while asker.is_alive() and not _waiting_on_an_advisory_lock(pg_url) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert asker.is_alive(), f"the other machine did not wait: it took {other}"
        return queue(*args)

    here._queue_round = queue_while_the_other_machine_asks
    mine = here.ask(study, 0)
    askers[0].join(timeout=60)
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 4 and {t.user_attrs[ROUND_ATTR] for t in trials} == {1}, "one round, queued once"
    taken = [trial.number for trial, _ in mine] + [trial.number for trial, _ in other[0] or []]
    assert sorted(taken) == sorted(set(taken)) and taken, "the round's parcels split between the machines"
