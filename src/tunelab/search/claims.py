"""Who owns a RUNNING trial, and what happens to a trial nobody owns.

Optuna's `ask` moves a trial to RUNNING in its own transaction; the owner (host, pid) and the
first heartbeat are written right after it (`claim`). A process killed in between leaves a
RUNNING trial with no owner or no heartbeat: no pid check and no heartbeat check can ever find
it dead, and every later run used to wait for it forever. `ownerless` finds those trials once
they are older than the heartbeat grace (a live claimer writes both within milliseconds of the
ask), so the caller fails and retries them like any dead trial.
"""

from __future__ import annotations

import datetime
import os
import socket
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tunelab.search.heartbeat import beat, grace_s, keeps_heartbeats, rdb_backend
from tunelab.search.resilient_storage import retry_disconnects


def claim(study: optuna.Study, trial: optuna.trial.Trial, attrs: Mapping[str, Any] | None = None) -> None:
    """Mark a just-asked trial as this process's: host and pid (with `attrs`), then its first heartbeat."""
    from tunelab.search.trial_writes import write_trial

    write_trial(study, trial, {"host": socket.gethostname(), "pid": os.getpid(), **(attrs or {})})
    beat(study._storage, [trial._trial_id])


def ownerless(study: optuna.Study, trials: Sequence[FrozenTrial] | None = None) -> list[FrozenTrial]:
    """RUNNING trials started longer than the grace ago with no heartbeat and, where the storage
    keeps no heartbeats, no owner either (a claim cut between its two writes counts too).
    `trials`: the study's trials as the caller just read them (None: read them now)."""
    limit = datetime.datetime.now() - datetime.timedelta(seconds=grace_s())
    beats = keeps_heartbeats(study._storage)
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) if trials is None else trials
    found = [
        t for t in running
        if t.state == TrialState.RUNNING and (beats or "pid" not in t.user_attrs)
        and t.datetime_start is not None and t.datetime_start < limit
    ]
    if not found:
        return []
    beating = _with_heartbeat(study, [t._trial_id for t in found])
    return [t for t in found if t._trial_id not in beating]


def _with_heartbeat(study: optuna.Study, trial_ids: list[int]) -> set[int]:
    """Which of these trials have a heartbeat row (Optuna's stale check takes care of those)."""
    backend = rdb_backend(study._storage)
    if backend is None:
        return set()
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    model = models.TrialHeartbeatModel

    def read() -> set[int]:
        with _create_scoped_session(backend.scoped_session) as session:
            return {row[0] for row in session.query(model.trial_id).filter(model.trial_id.in_(trial_ids)).all()}

    return retry_disconnects(read, "heartbeat rows")
