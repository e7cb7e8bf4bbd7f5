"""Which storage errors are retried (a dropped or busy connection) and which end at once."""

from __future__ import annotations

import optuna
import pytest
import sqlalchemy.exc as sa_exc

from tunelab.search import resilient_storage
from tunelab.search.resilient_storage import is_disconnect, retry_disconnects


def _wrapped(message: str) -> optuna.exceptions.StorageInternalError:
    """As Optuna raises it: its own error caused by SQLAlchemy's."""
    try:
        try:
            raise sa_exc.OperationalError("select 1", {}, Exception(message))
        except sa_exc.OperationalError as inner:
            raise optuna.exceptions.StorageInternalError("commit failed") from inner
    except optuna.exceptions.StorageInternalError as outer:
        return outer


@pytest.mark.parametrize("message", [
    "terminating connection due to administrator command",
    "server closed the connection unexpectedly",
    "database is locked",
])
def test_a_dropped_or_busy_connection_is_retried(message: str) -> None:
    assert is_disconnect(_wrapped(message))


@pytest.mark.parametrize("message", ["no such table: trials", "disk I/O error", "value too long"])
def test_a_real_fault_is_not_retried(message: str) -> None:
    assert not is_disconnect(_wrapped(message))
    assert not is_disconnect(ValueError(message))


def test_retries_are_bounded_and_a_recovered_call_returns_its_value(monkeypatch) -> None:
    monkeypatch.setattr(resilient_storage, "FIRST_PAUSE_S", 0.0)
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise _wrapped("terminating connection due to administrator command")
        return "ok"

    assert retry_disconnects(flaky, "test") == "ok" and len(calls) == 3

    def down() -> None:
        calls.append(1)
        raise _wrapped("server closed the connection unexpectedly")

    calls.clear()
    with pytest.raises(optuna.exceptions.StorageInternalError):
        retry_disconnects(down, "test")
    assert len(calls) == resilient_storage.ATTEMPTS

    def broken() -> None:
        calls.append(1)
        raise _wrapped("no such table: trials")

    calls.clear()
    with pytest.raises(optuna.exceptions.StorageInternalError):
        retry_disconnects(broken, "test")
    assert len(calls) == 1


def test_a_server_that_refuses_at_the_start_fails_at_once(tmp_path) -> None:
    """Opening is retried only for a connection that was dropped, not one refused."""
    from tunelab.errors import ConfigError
    from tunelab.search.storage import make_storage

    with pytest.raises(ConfigError, match="cannot open study storage"):
        make_storage("postgresql://postgres@127.0.0.1:1/nothing")  # nothing listens on port 1


def test_two_workers_creating_the_tables_at_once_is_retried_and_other_faults_are_not() -> None:
    race = 'duplicate key value violates unique constraint "pg_type_typname_nsp_index"'
    assert resilient_storage._schema_race(_wrapped(race))
    assert resilient_storage._schema_race(_wrapped('relation "studies" already exists'))
    assert not resilient_storage._schema_race(_wrapped("permission denied for schema public"))
