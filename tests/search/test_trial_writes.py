"""A trial's attributes and learning curve written in one transaction (search/trial_writes.py) read back
exactly as Optuna's own per-row calls would leave them, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import os
from pathlib import Path

import optuna
import pytest
from optuna.exceptions import UpdateFinishedTrialError
from sqlalchemy import event

from tunelab.search.storage import make_storage
from tunelab.search.trial_writes import write_trial

ATTRS = {"outcome": "complete", "seed_values": [0.5, 0.25], "best_epochs": [3], "nested": {"a": [1, None]},
         "reason": "", "value_std": 0.0}
CURVE = {1: 0.9, 2: float("nan"), 3: float("inf"), 4: float("-inf"), 5: 0.1}


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _check(url: str, name: str) -> None:
    study = optuna.create_study(study_name=name, storage=make_storage(url))
    trial = study.ask()
    study._storage.set_trial_user_attr(trial._trial_id, "outcome", "running")  # an attribute already there
    study._storage.set_trial_intermediate_value(trial._trial_id, 1, 5.0)  # and an epoch reported live
    write_trial(study, trial, ATTRS, CURVE)
    write_trial(study, trial, {"late": 1})  # attributes alone, no curve
    frozen = optuna.load_study(study_name=name, storage=url).trials[0]
    assert frozen.user_attrs == {**ATTRS, "late": 1}
    assert frozen.intermediate_values.keys() == CURVE.keys()
    assert all(_same(frozen.intermediate_values[k], v) for k, v in CURVE.items())
    study.tell(trial, 1.0)
    with pytest.raises(UpdateFinishedTrialError):
        write_trial(study, trial, {"after": 1})


def test_sqlite_rows_read_back_as_optuna_writes_them(tmp_path: Path) -> None:
    _check(f"sqlite:///{tmp_path / 'study.db'}", "writes")


def test_a_trial_result_is_a_few_statements_not_one_per_value(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="count", storage=make_storage(url))
    trial = study.ask()
    statements: list[str] = []
    engine = study._storage._backend.engine
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    write_trial(study, trial, {f"attr_{i}": i for i in range(20)}, {e: 1.0 / e for e in range(1, 16)})
    writes = [s for s in statements if s.lstrip().upper().startswith("INSERT")]
    assert len(writes) == 2 and len(statements) <= 4  # the trial's row, one upsert per table


def test_postgresql_rows_read_back_as_optuna_writes_them(pg_url: str) -> None:
    """On the real server (CI has one: tests/fixtures/postgres.py fails there instead of skipping)."""
    name = f"trial_writes_{os.getpid()}"
    try:
        _check(pg_url, name)
    finally:
        optuna.delete_study(study_name=name, storage=pg_url)
