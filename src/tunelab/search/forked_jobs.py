"""`search.n_jobs` trial processes forked from `tune` instead of started as `tunelab worker` commands.

A started worker imports Python, torch, Optuna and tunelab, loads the data and imports
`torch._dynamo` again before its first trial: ~1.8 s on the 2-core machine (10 s under load)
in which the second core trains nothing, while `tune` has already done all of it. A child
forked where `tune` queues the study inherits all of that and starts training at once; it
then runs the worker's own path (`start_study(joining=True)`, `optimize`), with its own
database connections, so the study sees the same kind of trial process as before.

Forked only where that is safe: on CPU (a CUDA context does not survive a fork), one torch
thread per process, set in `tune` before the fork (`tune` built the model on torch's default
threads: a child entering an OpenMP region of another size than its parent's pool hangs on a
futex, as a CNN's conv did; on one thread it enters none), no storage proxy
(gRPC threads), no thread here but the artifact writer, flushed and idle first (a lock another
thread held at the fork would stay locked in the child; the child starts its own writer), and no
text encoder (its tokenizer and allocator threads are native: `NO_FORK_FAMILIES`). Otherwise
`tune` starts `tunelab worker` as before.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
from typing import Any

from tunelab.lifetime import Terminated, die_with_parent
from tunelab.search.local_jobs import TRIAL_PROCESS_ENV
from tunelab.search.study_run import StudyRun, start_study
from tunelab.train.artifacts import flush, is_writer
from tunelab.train.loop import set_threads

log = logging.getLogger(__name__)


def can_fork(run: StudyRun, worker_url: str, threads: int) -> bool:
    """Whether the trial processes of this study may be forked from this process (see above)."""
    from tunelab.devices import resolve_device

    res = run.base.resources
    return ("fork" in multiprocessing.get_all_start_methods() and threads == 1 and worker_url == run.storage_url
            and res.gpus_per_trial <= 0 and resolve_device(run.base.train.device).type == "cpu"
            and all(t is threading.main_thread() or is_writer(t) for t in threading.enumerate())
            and run.base.model.family not in NO_FORK_FAMILIES)


# A text encoder's libraries run native thread pools that Python cannot see or quiesce: seed 001's
# study (frozen sentence encoder) forked a child that hung on a futex before its first trial.
NO_FORK_FAMILIES = frozenset({"encoder_head"})


class ForkedWorker:
    """A forked trial process with the face `tune` uses of a started one (pid, poll, wait, terminate)."""

    def __init__(self, process: Any) -> None:
        self._process = process
        self.pid: int = process.pid

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self) -> int:
        self._process.join()
        return int(self._process.exitcode)

    def terminate(self) -> None:
        self._process.terminate()


def fork_workers(n: int, run: StudyRun, data_dir: str | None) -> list[ForkedWorker]:
    """Fork `n` trial processes on `run`'s study (each one `tunelab worker --no-outputs`)."""
    context = multiprocessing.get_context("fork")
    set_threads(1)  # can_fork: one thread per process; the child then never enters the parent's OpenMP pool
    flush()  # the artifact writer idle: it holds no lock at the fork (the child starts its own)
    workers = []
    for _ in range(n):
        process = context.Process(target=_work, args=(run, data_dir, os.getpid()), daemon=False)
        process.start()
        workers.append(ForkedWorker(process))
    return workers


def _work(parent_run: StudyRun, data_dir: str | None, parent: int) -> None:
    """In the child: the worker's path on fresh connections; the exit code says how it ended."""
    die_with_parent(signal.SIGTERM, parent)
    _leave_parent(parent_run)
    code = 0
    try:
        base = parent_run.base
        run = start_study(base, parent_run.datasets.get(base), parent_run.exp_id, parent_run.layout,
                          parent_run.storage_url, data_dir=data_dir, n_trials=parent_run.n_trials, joining=True)
        try:
            run.optimize()
        finally:
            run.close()
    except KeyboardInterrupt as exc:  # Ctrl-C or tune's SIGTERM: the trials are marked interrupted
        code = 143 if isinstance(exc, Terminated) else 130
    except BaseException as exc:  # its trials are retried by tune; tune says a trial process failed
        log.warning("trial process %d: %s: %s", os.getpid(), type(exc).__name__, exc)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # nothing of the parent's (locks, atexit, connections) is torn down here


def _leave_parent(run: StudyRun) -> None:
    """Drop what the child must not share with `tune`: its database connections (left open for the
    parent, replaced by new ones on first use), its run-folder lock, its stdout (a quiet worker)."""
    from tunelab.runs.lock import release_all
    from tunelab.search.heartbeat import rdb_backend

    backend = rdb_backend(run.study._storage)
    if backend is not None:
        backend.engine.dispose(close=False)
    release_all()  # closes this process's copy of the lock's descriptor; the parent keeps the lock
    os.environ[TRIAL_PROCESS_ENV] = "1"
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
