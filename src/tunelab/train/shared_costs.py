"""Cost timings shared by the trial processes of one `tune` on one host (train/cost.py's caches).

`train/cost.py` times a solo step, an evaluation pass and the latencies once per shape per process
(~0.2 s a shape on a quiet 2-core host, 0.6 s loaded). With `n_jobs: 2` both trial processes train
part of every same-shape group, so both timed every shape (seed 000's grid: 6 shapes each, dropout
or not, ~1 s of each process) while every core was training. A shape's timings depend on the shape
and the host, not on the process that takes them (search/cost_ahead.py already adopts a helper's):
the first process to time a shape leaves them in the run folder and the others read them there.

`tune` opens the folder (`shared_timings`) before it starts its trial processes: the folder's path
travels in the environment, so forked and started trial processes on this host find it, and
workers on other machines (another environment, maybe another CPU) do not. It is emptied when
opened and removed when `tune` ends, so only this run's processes share it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tunelab.runs.records import write_json_atomic

SHARED_COSTS_ENV = "TUNELAB_SHARED_COSTS"  # the folder this run's processes share their timings in


@contextmanager
def shared_timings(folder: Path) -> Iterator[None]:
    """This process and the trial processes it starts share cost timings under `folder` until the block ends."""
    shutil.rmtree(folder, ignore_errors=True)  # a crashed run's timings: another run, maybe another load
    before = os.environ.get(SHARED_COSTS_ENV)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only place: each process times its own shapes, as before
        yield
        return
    os.environ[SHARED_COSTS_ENV] = str(folder)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(SHARED_COSTS_ENV, None)
        else:
            os.environ[SHARED_COSTS_ENV] = before
        shutil.rmtree(folder, ignore_errors=True)


def _path(kind: str, key: Any) -> Path | None:
    folder = os.environ.get(SHARED_COSTS_ENV)
    if not folder:
        return None
    return Path(folder) / f"{kind}-{hashlib.sha256(repr(key).encode()).hexdigest()[:24]}.json"


def read(kind: str, key: Any) -> Any | None:
    """The `kind` timing of `key` another process of this run measured; None when none did (yet)."""
    path = _path(kind, key)
    if path is None:
        return None
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found["value"] if isinstance(found, dict) and found.get("key") == repr(key) else None


def write(kind: str, key: Any, value: Any) -> None:
    """Leave a timing this process measured for the others (atomically: a reader sees all or nothing)."""
    path = _path(kind, key)
    if path is None or not path.parent.is_dir():  # the run ended: not made again
        return
    with contextlib.suppress(OSError):  # the folder went away (the run ended): the others time it themselves
        write_json_atomic(path, {"key": repr(key), "value": value})
