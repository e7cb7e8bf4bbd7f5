"""A trial's user attributes and learning curve in one storage transaction.

Optuna writes each `set_user_attr` and `report` as its own transaction: on PostgreSQL or SQLite
that is a round trip (and for SQLite an fsync) each, about 5 ms, so a trial's dozen attributes
and fifteen epoch values cost more than a small model's training. With an RDB storage this
module writes them all in one session (Optuna's own per-row helpers, one commit); with any
other storage it falls back to the public calls, one by one.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import TrialState

from tunelab.search.resilient_storage import retry_disconnects

log = logging.getLogger(__name__)
ROWS_PER_STATEMENT = 200  # of at most 4 columns: far below SQLite's 32766 bound variables


def _rdb_backend(study: optuna.Study) -> Any | None:
    storage = study._storage
    backend = getattr(storage, "_backend", storage)
    if not isinstance(backend, optuna.storages.RDBStorage):
        return None
    needed = ("scoped_session", "_set_trial_attr_without_commit", "_set_trial_intermediate_value_without_commit")
    return backend if all(hasattr(backend, name) for name in needed) else None


def write_trial(
    study: optuna.Study,
    trial: optuna.trial.Trial | optuna.trial.FrozenTrial,
    attrs: Mapping[str, Any],
    intermediate: Mapping[int, float] | None = None,
) -> None:
    """Set `attrs` as user attributes and `intermediate` as reported values of a running trial.

    Raises optuna's UpdateFinishedTrialError when the trial has finished meanwhile (another
    worker got there first)."""
    intermediate = intermediate or {}
    backend = _rdb_backend(study)
    if backend is None:
        for step, value in intermediate.items():
            study._storage.set_trial_intermediate_value(trial._trial_id, int(step), float(value))
        for key, value in attrs.items():
            study._storage.set_trial_user_attr(trial._trial_id, key, value)
        _update_cached(trial, attrs, intermediate)
        return
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    trial_id = trial._trial_id
    insert = _upsert_insert(backend)

    def write() -> None:
        with _create_scoped_session(backend.scoped_session, True) as session:
            if insert is not None and (attrs or intermediate):
                row = models.TrialModel.find_or_raise_by_id(trial_id, session)
                backend.check_trial_is_updatable(trial_id, row.state)
                _upsert_rows(session, insert, trial_id, attrs, intermediate)
                return
            for step, value in intermediate.items():
                backend._set_trial_intermediate_value_without_commit(session, trial_id, int(step), float(value))
            for key, value in attrs.items():
                backend._set_trial_attr_without_commit(session, models.TrialUserAttributeModel, trial_id, key, value)

    retry_disconnects(write, "write_trial")  # one transaction: a retry after a dropped connection is whole
    _update_cached(trial, attrs, intermediate)


def _upsert_insert(backend: Any) -> Any | None:
    """The dialect's INSERT with ON CONFLICT (SQLite >= 3.24, PostgreSQL), else None.

    Optuna's per-row helpers read the trial row again for every attribute and every epoch value:
    a trial's result (~20 attributes and 15 epoch values) was ~70 statements, ~50 ms each under
    load. The same rows go in as one statement per table, with the same upsert Optuna uses."""
    if backend.engine.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert

        return insert
    if backend.engine.name == "sqlite" and sqlite3.sqlite_version_info >= (3, 24, 0):
        from sqlalchemy.dialects.sqlite import insert

        return insert
    return None


def _upsert_rows(
    session: Any, insert: Any, trial_id: int, attrs: Mapping[str, Any], intermediate: Mapping[int, float]
) -> None:
    """Every attribute and epoch value of one trial, one upsert statement per table."""
    from optuna.storages._rdb import models

    steps = models.TrialIntermediateValueModel
    rows = []
    for step, value in intermediate.items():
        stored, kind = steps.intermediate_value_to_stored_repr(float(value))
        rows.append({"trial_id": trial_id, "step": int(step), "intermediate_value": stored,
                     "intermediate_value_type": kind})
    _upsert(session, insert(steps), rows, [steps.trial_id, steps.step],
            ("intermediate_value", "intermediate_value_type"))
    named = models.TrialUserAttributeModel
    rows = [{"trial_id": trial_id, "key": key, "value_json": json.dumps(value)} for key, value in attrs.items()]
    _upsert(session, insert(named), rows, [named.trial_id, named.key], ("value_json",))


def _upsert(session: Any, insert: Any, rows: list[dict[str, Any]], index: list[Any], columns: tuple[str, ...]) -> None:
    for at in range(0, len(rows), ROWS_PER_STATEMENT):
        stmt = insert.values(rows[at : at + ROWS_PER_STATEMENT])
        session.execute(stmt.on_conflict_do_update(index_elements=index,
                                                   set_={name: stmt.excluded[name] for name in columns}))


def _update_cached(trial: Any, attrs: Mapping[str, Any], intermediate: Mapping[int, float]) -> None:
    cached = getattr(trial, "_cached_frozen_trial", None)
    if cached is not None:
        cached.user_attrs.update(attrs)
        cached.intermediate_values.update({int(s): float(v) for s, v in intermediate.items()})


def annotate_finished_trial(study: optuna.Study, trial_id: int, attrs: Mapping[str, Any]) -> None:
    """User attributes on a trial that has already finished (Optuna refuses those updates): why a
    trial failed stale, written after Optuna's heartbeat check failed it. RDB storages only."""
    backend = _rdb_backend(study)
    if backend is None:
        log.warning("trial %d: cannot annotate a finished trial in this storage (%s)", trial_id, dict(attrs))
        return
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    model = models.TrialUserAttributeModel

    def write() -> None:
        with _create_scoped_session(backend.scoped_session, True) as session:
            for key, value in attrs.items():
                row = session.query(model).filter(model.trial_id == trial_id).filter(model.key == key).one_or_none()
                if row is None:
                    session.add(model(trial_id=trial_id, key=key, value_json=json.dumps(value)))
                else:
                    row.value_json = json.dumps(value)

    retry_disconnects(write, "annotate_finished_trial")


def fail_if_waiting(study: optuna.Study, trial_id: int, attrs: Mapping[str, Any]) -> int:
    """Fail a WAITING trial with `attrs`, in one transaction that first locks its row; a trial that
    another process has taken meanwhile is left alone. Returns 1 when it was failed. RDB
    storages only (elsewhere nothing is changed and 0 returned)."""
    backend = _rdb_backend(study)
    if backend is None:
        return 0
    import datetime

    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    def fail() -> int:
        with _create_scoped_session(backend.scoped_session, True) as session:
            row = models.TrialModel.find_or_raise_by_id(trial_id, session, for_update=True)
            if row.state != TrialState.WAITING:
                return 0
            for key, value in attrs.items():
                backend._set_trial_attr_without_commit(session, models.TrialUserAttributeModel, trial_id, key, value)
            row.state = TrialState.FAIL
            row.datetime_complete = datetime.datetime.now()
            return 1

    return retry_disconnects(fail, "fail_if_waiting")
