"""One study shared by many processes: compatibility stamps, retries of dead workers' trials, duplicates.

A trial whose process died (found by its pid on this host, or by a stale heartbeat anywhere) is
failed and its configuration queued again with `retry_dir`, so the retry continues from the dead
trial's last epoch checkpoint in the shared output folder instead of starting over.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections.abc import Sequence
from importlib import resources
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tunelab.errors import ConfigError
from tunelab.runs.outcome import COUNTED, Outcome
from tunelab.search.claims import ownerless
from tunelab.search.heartbeat import Heartbeat, fail_stale

__all__ = ["Heartbeat", "check_compatible", "recover_dead_trials", "retry_trial", "stamp_study"]

log = logging.getLogger(__name__)
MAX_RETRIES = 2


TRAINING_CODE = ("train", "models", "data", "config")


def code_hash() -> str:
    """A hash of the tunelab source that decides what a trial computes (trainer, models, data,
    config), so workers running different training code refuse to share a study."""
    digest = hashlib.sha256()
    root = resources.files("tunelab")
    files = []
    for name in TRAINING_CODE:
        entry = root.joinpath(name)
        files += _py_files(entry, name + "/") if entry.is_dir() else [(name, entry)]
    for rel, path in sorted(files, key=lambda item: item[0]):
        digest.update(rel.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _py_files(root: Any, prefix: str) -> list[tuple[str, Any]]:
    found = []
    for child in root.iterdir():
        if child.is_dir() and child.name != "__pycache__":
            found += _py_files(child, prefix + child.name + "/")
        elif child.name.endswith(".py"):
            found.append((prefix + child.name, child))
    return found


def stamp_study(study: optuna.Study, data_hash: str) -> None:
    """Record the code and data a study was started with (first writer wins)."""
    if "code_hash" not in study.user_attrs:
        study.set_user_attr("code_hash", code_hash())
    if "data_hash" not in study.user_attrs:
        study.set_user_attr("data_hash", data_hash)


def check_compatible(study: optuna.Study, data_hash: str, *, strict_code: bool = True) -> None:
    """A worker whose code or data differ from the study's refuses, in one line.

    `tune` resuming its own study only warns about changed code (a user may fix a bug and go on).
    """
    theirs, ours = study.user_attrs.get("code_hash"), code_hash()
    if theirs and theirs != ours and not strict_code:
        log.warning("training code changed since study %r started (%s -> %s)", study.study_name, theirs, ours)
    elif theirs and theirs != ours:
        raise ConfigError(
            f"study {study.study_name!r} was started with tunelab code {theirs}, this worker runs {ours}; "
            "install the same tunelab version on every worker",
            key="worker",
        )
    theirs = study.user_attrs.get("data_hash")
    if theirs and theirs != data_hash:
        raise ConfigError(
            f"study {study.study_name!r} trains on data {theirs}, this worker loaded {data_hash}; "
            "point every worker at the same data files",
            key="worker",
        )


def retry_trial(study: optuna.Study, trial: FrozenTrial, reason: str) -> bool:
    """Queue a failed trial's configuration again (bounded); the retry reuses its folder."""
    retries = int(trial.user_attrs.get("retries", 0))
    if retries >= MAX_RETRIES:
        log.warning("trial %d failed %d times (%s); not retried again", trial.number, retries + 1, reason)
        return False
    if not trial.params and not trial.user_attrs.get("config_key"):
        return False  # asked but never suggested: nothing to repeat, the sampler asks afresh
    attrs = {"retry_of": trial.number, "retries": retries + 1}
    for key in ("trial_dir", "config_key"):
        if trial.user_attrs.get(key):
            attrs["retry_dir" if key == "trial_dir" else key] = trial.user_attrs[key]
    study.enqueue_trial(dict(trial.params), user_attrs=attrs)
    return True


def _mark_dead(study: optuna.Study, trial: FrozenTrial, reason: str) -> bool:
    """Fail a dead process's trial and queue its retry. Several workers may find the same dead
    trial at once: whoever fails it first retries it; the others find it finished and step back."""
    from tunelab.search.trial_writes import write_trial

    try:
        write_trial(study, trial, {"outcome": Outcome.CRASHED.value, "reason": reason})
        if not study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    retry_trial(study, trial, reason)
    return True


def recover_dead_trials(study: optuna.Study, trials: Sequence[FrozenTrial] | None = None) -> int:
    """Fail and retry RUNNING trials of dead processes: by pid on this host, by heartbeat elsewhere,
    and trials asked by a process that died before it claimed them. Returns how many it failed
    (stale heartbeats included): a view of the study read before the call is then out of date.

    `trials`: the study's trials as the caller just read them, so a round reads the study once
    (None: read them now). The heartbeat check always asks the database itself.
    """
    host, recovered = socket.gethostname(), 0
    if trials is None:
        trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    running = []
    for t in trials:
        pid = t.user_attrs.get("pid")
        if t.state != TrialState.RUNNING:
            continue
        if t.user_attrs.get("host") == host and pid is not None and not _alive(int(pid)):
            recovered += _mark_dead(study, t, f"worker process {pid} died while training; configuration retried")
        else:  # still running as far as this look can tell (one just failed is no longer)
            running.append(t)
    for t in ownerless(study, running):  # killed between ask and claim (search/claims.py)
        reason = "its worker died between asking and starting it (never claimed); configuration retried"
        recovered += _mark_dead(study, t, reason)
    return recovered + fail_stale(study)  # the storage's callback retries them


def _alive(pid: int) -> bool:
    """Whether a local process still runs (a zombie, killed but not yet reaped, counts as dead)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def stale_trial_callback(study: optuna.Study, trial: FrozenTrial) -> None:
    """Optuna calls this for a trial whose heartbeat stopped: record why, and retry it."""
    from tunelab.search.trial_writes import annotate_finished_trial

    annotate_finished_trial(study, trial._trial_id, {
        "outcome": Outcome.CRASHED.value, "reason": "worker stopped sending heartbeats; configuration retried",
    })
    retry_trial(study, trial, "stale heartbeat")


def duplicate_of(
    study: optuna.Study, trial: optuna.trial.Trial, key: str, trials: Sequence[FrozenTrial] | None = None
) -> int | None:
    """Another trial already finished or (with a lower number) running this configuration.

    `trials`: the study's trials read once for a whole round of asks (reading them per ask made a
    round cost O(trials x round size) storage reads); None reads them now.
    """
    for t in study.get_trials(deepcopy=False) if trials is None else trials:
        if t.number == trial.number or t.user_attrs.get("config_key") != key:
            continue
        if t.user_attrs.get("outcome") in COUNTED:
            return t.number
        if t.state == TrialState.RUNNING and t.number < trial.number:
            return t.number
    return None
