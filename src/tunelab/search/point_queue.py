"""The explicit points' queue (grid, random, qmc, ablation, lr_sweep): each point queued once,
whatever the number of workers starting together and whatever the database drops.

Queueing reads the study ("which points are taken?") and then writes to it. Two workers doing
that at once each queued the whole grid, and a connection dropped just after a commit made
Optuna's retried `enqueue_trial` queue a point twice; both copies were then trained by different
workers. Now the read and the writes run under a lock per study (a PostgreSQL advisory lock, or
an exclusive `flock` on the SQLite file's folder), and twins still left in the queue (a dropped
lock, a retried write) are failed as duplicates before anyone takes them. Storages without a
lock (a journal file, the gRPC proxy) rely on the per-round duplicate check in study_run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import optuna
from optuna.trial import TrialState

from tunelab.config.space import Knob, encode_params
from tunelab.runs.outcome import COUNTED, Outcome
from tunelab.search.heartbeat import rdb_backend
from tunelab.search.resilient_storage import advisory_lock, retry_disconnects
from tunelab.search.trial_run import config_key
from tunelab.search.trial_writes import fail_if_waiting


@contextlib.contextmanager
def queue_lock(url: str, study_name: str) -> Iterator[None]:
    """Hold the study's queue lock for the block (other processes queueing points wait)."""
    if url.startswith("postgresql"):
        key = zlib.crc32(f"tunelab queue {study_name}".encode())
        lock = advisory_lock(url, key)
        retry_disconnects(lock.__enter__, "taking the queue lock")
        try:
            yield
        finally:
            lock.__exit__()
        return
    folder = _sqlite_folder(url)
    if folder is None:
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a BSD lock: independent of SQLite's own POSIX locks
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def shared_queue_lock(study: optuna.Study) -> Iterator[None]:
    """The study's queue lock where processes on other machines share it (a PostgreSQL study);
    nothing elsewhere: a SQLite study's processes share one folder and its file locks, and a
    journal file or the gRPC proxy has no lock to offer (their twins are failed as duplicates)."""
    backend = rdb_backend(study._storage)
    url = backend.engine.url.render_as_string(hide_password=False) if backend is not None else ""
    if not url.startswith("postgresql"):
        yield
        return
    with queue_lock(url, study.study_name):
        yield


@contextlib.contextmanager
def pop_lock(study: optuna.Study) -> Iterator[None]:
    """Hold the study's queue lock while taking a WAITING trial, where the database cannot do it.

    Optuna moves a queued trial to RUNNING after a `SELECT ... FOR UPDATE`; PostgreSQL locks the
    row, SQLite ignores `FOR UPDATE` (and pysqlite opens its transaction only at the UPDATE), so
    two processes reading the same WAITING trial both moved it to RUNNING and both trained it: the
    second to finish then failed the whole study with `UpdateFinishedTrialError` (met in
    benchmarks/bayes.py). On SQLite the pop runs under the same folder lock as queueing.
    """
    backend = rdb_backend(study._storage)
    url = str(backend.engine.url) if backend is not None else ""
    if _sqlite_folder(url) is None:
        yield
        return
    with queue_lock(url, study.study_name):
        yield


def take(study: optuna.Study, trial_id: int) -> bool:
    """Move a queued trial to RUNNING (call under `pop_lock`); False when another process took (or
    finished) it first."""
    try:
        return bool(study._storage.set_trial_state_values(trial_id, state=TrialState.RUNNING))
    except optuna.exceptions.UpdateFinishedTrialError:
        return False


def pop_queued(study: optuna.Study, queue: Iterator[optuna.trial.FrozenTrial]) -> optuna.trial.Trial | None:
    """The next trial of `queue` (WAITING trials by number, as read once for the round) that is still
    waiting, now RUNNING: what Optuna's `ask` pops, without its read of every unfinished trial. The
    trials others took meanwhile are passed by; None when none is left (nothing new is created)."""
    with pop_lock(study):
        for queued in queue:
            if take(study, queued._trial_id):
                return optuna.trial.Trial(study, queued._trial_id)
    return None


def _sqlite_folder(url: str) -> str | None:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or ":memory:" in url:
        return None
    folder = os.path.dirname(os.path.abspath(url[len(prefix):])) or "."
    return folder if os.path.isdir(folder) else None


def enqueue_missing(study: optuna.Study, url: str, knobs: Sequence[Knob], points: Sequence[dict[str, Any]]) -> int:
    """Queue every explicit point not yet finished, waiting or running (exactly once across
    workers and resumes); returns how many were queued here."""
    with queue_lock(url, study.study_name):
        trials = study.get_trials(deepcopy=False)
        taken = {t.user_attrs.get("config_key") for t in trials if _holds_point(t)}
        added = 0
        for point in points:
            key = config_key(point)
            if key in taken:
                continue
            study.enqueue_trial(encode_params(knobs, point), user_attrs={"config_key": key})
            taken.add(key)
            added += 1
        drop_waiting_twins(study)
    return added


def _holds_point(t: optuna.trial.FrozenTrial) -> bool:
    return t.user_attrs.get("outcome") in COUNTED or t.state in (TrialState.WAITING, TrialState.RUNNING)


def drop_waiting_twins(study: optuna.Study) -> int:
    """Fail every waiting trial whose point is already finished, running, or waiting under a lower
    number (a trial another worker takes meanwhile is left alone); returns how many."""
    trials = study.get_trials(deepcopy=False)
    held = {t.user_attrs.get("config_key") for t in trials
            if t.user_attrs.get("outcome") in COUNTED or t.state == TrialState.RUNNING}
    seen: set[str] = set()
    dropped = 0
    for t in sorted((t for t in trials if t.state == TrialState.WAITING), key=lambda t: t.number):
        key = t.user_attrs.get("config_key")
        if not key:
            continue
        if key in held or key in seen:
            reason = "the same point was queued twice; the other copy trains it"
            dropped += fail_if_waiting(study, t._trial_id, {"outcome": Outcome.DUPLICATE.value, "reason": reason})
        seen.add(key)
    return dropped
