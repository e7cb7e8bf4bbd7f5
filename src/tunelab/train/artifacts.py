"""Epoch and best checkpoints written off the training thread.

A checkpoint of a slow epoch (or of a large model) costs a real share of the epoch to write. `fit`
therefore hands those writes to one background writer thread per process: the training thread
serializes the state into bytes (what a copy of the tensors would cost, and no second thread
competing for the interpreter lock while it pickles), and the writer writes the files, links
best.pt and prunes, in submission order. The queue is bounded (`MAX_PENDING` writes), so a slow
disk slows training down instead of filling memory. The per-epoch records are not written here:
`TrialBook` appends them on the training thread (train/epoch_end.py), before the epoch's
checkpoint is queued, so records on disk never run behind a checkpoint on disk: a resume from the
newest checkpoint finds every record up to it (and drops the ones after it).

`flush()` waits for every pending write and re-raises the first write error: `fit` calls it
before it reads a trial folder to resume and before it writes result.json, so the best and the
last checkpoint are always on disk when a trial ends. A kill (SIGKILL, power cut) loses at most
the checkpoints still queued (`MAX_PENDING` at worst), and the trial resumes from the newest
checkpoint that made it to disk, as after any crash (which epochs get a checkpoint at all:
`checkpoints.every`, decided in train/epoch_end.py).

`TUNELAB_SYNC_ARTIFACTS=1` writes the checkpoints on the training thread instead (for debugging and timing).
"""

from __future__ import annotations

import atexit
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tunelab.runs.layout import TrialLayout
from tunelab.train import checkpoint as ckpt

MAX_PENDING = 8  # queued writes; the training thread waits when the writer is this far behind
IDLE_EXIT_S = 2.0  # the writer thread ends after this long without work (a new write restarts it)
Write = tuple[Callable[..., None], tuple[Any, ...]]
WRITER_THREAD = "tunelab-artifacts"


class ArtifactWriter:
    """One background thread that runs submitted writes in order."""

    def __init__(self, max_pending: int = MAX_PENDING) -> None:
        self._max_pending = max_pending
        self.forget_parent()

    def forget_parent(self) -> None:
        """Start empty, with no thread: also in a forked child, where the parent's writer thread (and
        any lock it held at the fork) does not exist; the parent writes its own queued artifacts."""
        self._queue: queue.Queue[Write] = queue.Queue(maxsize=self._max_pending)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        """Queue `fn(*args)`; blocks while `max_pending` writes are already waiting."""
        if os.environ.get("TUNELAB_SYNC_ARTIFACTS") == "1":
            fn(*args)
            return
        with self._lock:  # the thread only takes the lock when the queue is empty, so a full put cannot deadlock
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=WRITER_THREAD, daemon=True)
                self._thread.start()
            self._queue.put((fn, args))

    def flush(self) -> None:
        """Wait until every queued write is done; raise the first write that failed."""
        self._queue.join()
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _run(self) -> None:
        while True:
            try:
                fn, args = self._queue.get(timeout=IDLE_EXIT_S)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            try:
                fn(*args)
            except BaseException as exc:  # kept for flush(): the training thread decides what it means
                self._error = self._error or exc
            finally:
                self._queue.task_done()


WRITER = ArtifactWriter()  # one per process: every fit's writes share one ordered queue
os.register_at_fork(after_in_child=WRITER.forget_parent)  # a forked trial process writes with its own thread
atexit.register(lambda: WRITER.flush() if WRITER._thread is not None else None)


def save_later(
    path: Path, state: dict[str, Any], prune: tuple[TrialLayout, int] | None = None, best: Path | None = None
) -> None:
    """Save a checkpoint of `state` (serialized now) on the writer thread; then make `best` the
    same file (best.pt, when this epoch is the best so far) and keep the newest `prune[1]` epoch
    checkpoints of `prune[0]`."""
    WRITER.submit(_save, path, ckpt.serialize(state), prune, best)


def flush() -> None:
    """Every queued artifact is on disk (call before reading a trial folder or ending a trial)."""
    WRITER.flush()


def is_writer(thread: threading.Thread) -> bool:
    """Whether `thread` is the artifact writer's (idle once `flush` returned)."""
    return thread.name == WRITER_THREAD


def _save(path: Path, data: bytes, prune: tuple[TrialLayout, int] | None, best: Path | None) -> None:
    ckpt.write_checkpoint(path, data)
    if best is not None:
        ckpt.link_checkpoint(path, best)
    if prune is not None:
        ckpt.prune_checkpoints(*prune)
