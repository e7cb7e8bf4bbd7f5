"""An RDB storage that survives a dropped connection and a first start shared by many workers.

Two faults used to end workers with long tracebacks:

- Several workers started at once on a fresh PostgreSQL database all create Optuna's tables,
  and all but one die on a unique violation. Schema creation now runs under a PostgreSQL
  advisory lock, one worker after another; the later ones find the tables made.
- A connection the server drops (`pg_terminate_backend`, a restart, a failover, SQLite's
  "database is locked" past its busy timeout) broke the storage call that was using it. Every
  storage call now runs again on a fresh connection (`pool_pre_ping` throws out dead pooled
  ones) after a short, growing pause, a bounded number of times. Each Optuna storage call is
  one transaction, so a call that failed left nothing half-written; one whose commit reached
  the server just before the drop may run twice, which for `create_new_trial` leaves a spare
  RUNNING trial without an owner, failed later like any unclaimed trial (search/claims.py).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any, TypeVar

import optuna

log = logging.getLogger(__name__)
T = TypeVar("T")
ATTEMPTS = 8  # pauses 0.25 s doubling to 4 s: about 16 s of outage survived per call
FIRST_PAUSE_S = 0.25
MAX_PAUSE_S = 4.0
_local = threading.local()
TRANSIENT = (  # lower-case fragments of the drivers' messages for a dropped or busy connection
    "database is locked", "database table is locked", "terminating connection", "server closed the connection",
    "connection is lost", "connection already closed", "connection is closed", "ssl connection has been closed",
    "could not receive data", "connection reset", "connection refused", "connection failed",
    "the database system is shutting down", "the database system is starting up", "consuming input failed",
)

# Optuna's storage calls, each one transaction (the `_without_commit` helpers run inside a
# caller's transaction and are left alone).
RETRIED = (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
    "get_study_id_from_name", "get_study_name_from_id", "get_study_directions", "get_study_user_attrs",
    "get_study_system_attrs", "get_trial_user_attrs", "get_trial_system_attrs", "get_all_studies",
    "create_new_trial", "_create_new_trial", "set_trial_param", "_set_trial_param", "get_trial_param",
    "set_trial_state_values", "set_trial_intermediate_value", "set_trial_user_attr", "set_trial_system_attr",
    "get_trial_id_from_study_id_trial_number", "get_trial", "get_all_trials", "_get_trials", "get_best_trial",
    "_get_best_trial_id", "record_heartbeat", "_get_stale_trial_ids",
)


def is_disconnect(exc: BaseException) -> bool:
    """A lost connection or a busy database (worth a retry), found anywhere in the exception's
    chain; anything else (a missing table, a constraint, a bad value, a full disk) is not, so
    real faults still end at once with their own message."""
    import sqlalchemy.exc as sa_exc

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            text = str(current).lower()
            return any(sign in text for sign in TRANSIENT)
        current = current.__cause__ or current.__context__
    return False


def _dropped(exc: BaseException) -> bool:
    """A connection that was made and then lost (not one refused: an unreachable server at the
    start is a setting to fix, said at once)."""
    return is_disconnect(exc) and not any(s in t for t in _messages(exc) for s in ("refused", "connection failed"))


def _messages(exc: BaseException) -> list[str]:
    """The lower-case messages of an exception and of what caused it (ten at most)."""
    texts: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(texts) < 10:
        texts.append(str(current).lower())
        current = current.__cause__ or current.__context__
    return texts


def retry_disconnects(
    call: Callable[[], T], what: str, should_retry: Callable[[BaseException], bool] = is_disconnect
) -> T:
    """Run `call`, again after a pause when the connection was lost (bounded); nested calls
    (a retried call that calls another) are retried once, by the outermost."""
    if getattr(_local, "active", False):
        return call()
    _local.active = True
    try:
        pause = FIRST_PAUSE_S
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return call()
            except Exception as exc:
                if attempt == ATTEMPTS or not should_retry(exc):
                    raise
                log.debug("storage connection lost in %s (%s); retry %d", what, type(exc).__name__, attempt)
                time.sleep(pause)
                pause = min(pause * 2, MAX_PAUSE_S)
        raise AssertionError("unreachable")
    finally:
        _local.active = False


class ResilientRDBStorage(optuna.storages.RDBStorage):
    """Optuna's RDB storage whose calls outlive a dropped connection (see the module docstring)."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        def build() -> None:
            with advisory_lock(url, SCHEMA_LOCK, (kwargs.get("engine_kwargs") or {}).get("connect_args", {})):
                super(ResilientRDBStorage, self).__init__(url, **kwargs)

        retry_disconnects(build, "opening the storage", lambda exc: _dropped(exc) or _schema_race(exc))


def _schema_race(exc: BaseException) -> bool:
    """Two workers created Optuna's tables at once (the server dropped the schema lock's
    connection, which released the lock): the second finds them made when it tries again."""
    signs = ("duplicate key value violates unique constraint", "already exists")
    return any(sign in t for t in _messages(exc) for sign in signs)


def _retrying(name: str) -> Callable[..., Any]:
    method = getattr(optuna.storages.RDBStorage, name)

    @functools.wraps(method)
    def wrapped(self: ResilientRDBStorage, *args: Any, **kwargs: Any) -> Any:
        return retry_disconnects(lambda: method(self, *args, **kwargs), name)

    return wrapped


for _name in RETRIED:
    setattr(ResilientRDBStorage, _name, _retrying(_name))


class advisory_lock:
    """A PostgreSQL advisory lock on `key` (per database), held for the `with` block: Optuna's
    table creation, or the queueing of a study's explicit points; nothing for other databases.
    A lock whose connection the server drops is released with it: the locked step must still be
    safe to run twice (both are)."""

    def __init__(self, url: str, key: int, connect_args: dict[str, Any] | None = None) -> None:
        self.url, self.key, self.conn, self.engine = url, key, None, None
        self.connect_args = connect_args or {}

    def __enter__(self) -> None:
        if not self.url.startswith("postgresql"):
            return
        import sqlalchemy as sa

        self.engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool, connect_args=self.connect_args)
        try:
            self.conn = self.engine.connect()
            self.conn.execute(sa.text("select pg_advisory_lock(:k)"), {"k": self.key})
        except BaseException:
            self.__exit__()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            if self.conn is not None:
                self.conn.close()  # ending the session releases its advisory lock
        except Exception as exc:  # the server dropped it: the lock went with it
            if not is_disconnect(exc):
                raise
        finally:
            if self.engine is not None:
                self.engine.dispose()
            self.conn = self.engine = None


SCHEMA_LOCK = zlib.crc32(b"tunelab optuna schema")  # any fixed 32-bit number, shared by every worker
