"""PostgreSQL faults: three workers starting together on a fresh database, and a server that
keeps dropping the workers' connections (`pg_terminate_backend`) while they train."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa
import yaml

from fixtures.postgres import pg_storage

GRID = {
    "name": "pg_faults",
    "data": {"name": "diabetes"},
    "model": {"family": "mlp", "hidden_dims": [8]},
    "train": {"epochs": 20, "batch_size": 8, "lr": 0.001},  # long enough to meet several faults
    "search": {"strategy": "grid", "vectorize": "off", "n_jobs": 1,
               "space": {"train.lr": [0.0003, 0.001, 0.003, 0.01, 0.03, 0.1]}},
    "final": {"enabled": False},
}
LRS = [0.0003, 0.001, 0.003, 0.01, 0.03, 0.1]


@pytest.fixture
def fresh_db(pg_url: str) -> Iterator[str]:
    """A database of its own, made empty for this test and dropped after it."""
    name = f"test_runtime_fresh_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    yield str(sa.engine.make_url(pg_url).set(database=name).render_as_string(hide_password=False))
    with admin.connect() as conn:
        conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
    admin.dispose()


def _workers(tmp_path: Path, url: str, n: int, epochs: int = 20) -> list[subprocess.Popen[str]]:
    exp = tmp_path / "grid.yaml"
    exp.write_text(yaml.safe_dump({**GRID, "train": {**GRID["train"], "epochs": epochs}}))
    cmd = [sys.executable, "-m", "tunelab", "worker", str(exp), "--storage", url, "--out", str(tmp_path / "run"),
           "--quiet"]
    return [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(n)]


def _every_point_once(url: str) -> None:
    trials = optuna.load_study(study_name="pg_faults", storage=pg_storage(url)).get_trials(deepcopy=False)
    done = sorted(json.loads(t.user_attrs["config_key"])["train.lr"] for t in trials
                  if t.user_attrs.get("outcome") == "complete")
    assert done == LRS
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]


def test_three_workers_started_at_once_on_a_fresh_database_all_finish(tmp_path, fresh_db):
    workers = _workers(tmp_path, fresh_db, 3, epochs=2)  # the race is at start-up: short trials suffice
    errors = [w.communicate(timeout=300)[1] for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0], errors
    assert not any(errors), errors
    _every_point_once(fresh_db)


def _terminate_backends(url: str, stop: threading.Event, kills: list[int]) -> None:
    """Drop every other connection to the test database, again and again, while workers run."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    query = sa.text("select count(pg_terminate_backend(pid)) from pg_stat_activity "
                    "where datname = current_database() and pid <> pg_backend_pid()")
    while not stop.is_set() and len(kills) < 6:
        with engine.connect() as conn:
            killed = conn.execute(query).scalar() or 0
        if killed:
            kills.append(killed)
        stop.wait(0.2)  # the pace of the faults (a short study still meets several); nothing waits on it
    engine.dispose()


def test_workers_survive_repeated_pg_terminate_backend_and_finish_the_study(tmp_path, fresh_db):
    workers = _workers(tmp_path, fresh_db, 2, epochs=40)  # ~1 s a trial on a quiet machine: long enough
    stop, kills = threading.Event(), []
    chaos = threading.Thread(target=_terminate_backends, args=(fresh_db, stop, kills))
    chaos.start()
    try:
        errors = [w.communicate(timeout=300)[1] for w in workers]
    finally:
        stop.set()
        chaos.join()
    assert [w.returncode for w in workers] == [0, 0], errors
    assert not any("Traceback" in e for e in errors), errors
    assert len(kills) >= 3, f"only {len(kills)} rounds of terminations reached the workers"
    _every_point_once(fresh_db)
