"""Heartbeats that reach the database, so a worker that died on another machine is noticed.

`optuna.load_study`/`create_study` wrap an RDB storage in Optuna's cached storage, which offers
`record_heartbeat` and `get_heartbeat_interval()` but has no `heartbeat_interval` attribute: a
heartbeat object that looked for that attribute on the wrapper never wrote a single row. Here
every write goes to the RDB storage underneath the wrapper (SQLite and PostgreSQL alike), and
the stale-trial check asks the wrapper through Optuna's own `is_heartbeat_enabled`.

Optuna 5's journal storage has no heartbeats: there, only a dead process's pid on the same host
and an ownerless claim (search/claims.py) recover a trial.

The interval and grace are seconds, `TUNELAB_HEARTBEAT_INTERVAL_S` (default 5) and
`TUNELAB_HEARTBEAT_GRACE_S` (default 20) in the environment: a slow shared file system may need
a longer grace, and tests a shorter one.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Sequence
from typing import Any

import optuna

log = logging.getLogger(__name__)


def _seconds(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        value = int(raw) if raw else default
    except ValueError:
        value = 0
    if value <= 0:
        log.warning("%s=%r is not a positive whole number of seconds; using %d", name, raw, default)
        return default
    return value


def interval_s() -> int:
    """Seconds between two heartbeats of a running trial."""
    return _seconds("TUNELAB_HEARTBEAT_INTERVAL_S", 5)


def grace_s() -> int:
    """Seconds without a heartbeat (or, for an ownerless claim, since its start) before a
    RUNNING trial counts as dead; at least two intervals."""
    return max(_seconds("TUNELAB_HEARTBEAT_GRACE_S", 20), 2 * interval_s())


def rdb_backend(storage: Any) -> optuna.storages.RDBStorage | None:
    """The RDB storage itself, whether given bare or inside Optuna's cached wrapper."""
    backend = getattr(storage, "_backend", storage)
    return backend if isinstance(backend, optuna.storages.RDBStorage) else None


def _writer(storage: Any) -> Any | None:
    """Whoever writes heartbeats for this storage (None: it keeps no heartbeats)."""
    backend = rdb_backend(storage)
    if backend is not None:
        return backend if backend.heartbeat_interval else None
    enabled = optuna.storages._heartbeat.is_heartbeat_enabled(storage)
    return storage if enabled else None


def keeps_heartbeats(storage: Any) -> bool:
    """Whether this storage records heartbeats (every live trial then has a row within
    milliseconds of its ask)."""
    return _writer(storage) is not None


def beat(storage: Any, trial_ids: Sequence[int]) -> None:
    """One heartbeat for each trial now (nothing when the storage keeps none)."""
    writer = _writer(storage)
    if writer is not None:
        for trial_id in trial_ids:
            writer.record_heartbeat(trial_id)


def fail_stale(study: optuna.Study) -> int:
    """Optuna's check: RUNNING trials whose heartbeat stopped are failed and handed to the
    storage's stale-trial callback (which retries them). Returns how many were stale (the caller's
    view of the study is then out of date); Optuna's check runs only when some are."""
    storage = study._storage
    if _writer(storage) is None:
        return 0
    stale = len(storage._get_stale_trial_ids(study._study_id))  # the one query Optuna's check starts with
    if stale:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # heartbeats are marked experimental in Optuna
            optuna.storages.fail_stale_trials(study)
    return stale


class Heartbeat:
    """Records the heartbeat of one trial (or of every trial of a batch) from one background
    thread while they train; the first beat is written before training starts."""

    def __init__(self, study: optuna.Study, trial: optuna.trial.Trial | Sequence[optuna.trial.Trial]) -> None:
        self._storage = study._storage
        trials = list(trial) if isinstance(trial, Sequence) else [trial]
        self._trial_ids = [t._trial_id for t in trials]
        self._enabled = _writer(self._storage) is not None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        if self._enabled and self._trial_ids:
            beat(self._storage, self._trial_ids)
            self._thread = threading.Thread(target=self._beat, daemon=True, name="tunelab-heartbeat")
            self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(interval_s()):
            try:
                beat(self._storage, self._trial_ids)
            except Exception as exc:  # a flaky connection must not kill the training thread
                log.warning("heartbeat for trials %s failed: %s", self._trial_ids, type(exc).__name__)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
