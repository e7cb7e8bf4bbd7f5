"""One writer per run folder: `tune`, `final` and `report` hold an exclusive lock on
`<run>/.tunelab.lock` for as long as they run.

Two commands writing the same folder used to retrain `final/` into the same records, or fail on
a misleading database error. The lock is `fcntl.flock` on an open file, so the kernel releases it
when the holder exits in any way (SIGKILL included): a stale lock file never blocks a later run.
The second command gets one line and exit 2.

Workers on a shared study write only their own trial folders (the study keeps them apart) and
are not writers of the folder's summary: `tunelab worker` never waits for the lock and writes
the summary files only when no `tune` holds it (`try_hold`).

Within one process the lock is re-entrant (`tune` runs `final` and `report` itself), and every
lock taken inside a `@writer` call is released when the outermost such call returns, so a
Python session can call `tunelab.tune` and then run the CLI on the same folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from tunelab.errors import RunFolderError

LOCK_NAME = ".tunelab.lock"
F = TypeVar("F", bound=Callable[..., Any])
_held: dict[Path, int] = {}  # resolved run folder -> open file descriptor holding the lock
_depth = 0


def _acquire(root: Path) -> bool:
    """Take the folder's lock without waiting; False when another process holds it."""
    key = root.resolve()
    if key in _held:
        return True
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(key / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # a read-only or missing folder: one line, like every other fault
        raise RunFolderError(f"cannot write in {root}: {exc.strerror or type(exc).__name__}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _held[key] = fd
    return True


def _holder(root: Path) -> str:
    try:
        pid = (root / LOCK_NAME).read_text(encoding="ascii").strip()
    except OSError:
        return "another tunelab command"
    return f"another tunelab command (pid {pid})" if pid.isdigit() else "another tunelab command"


def hold(root: Path) -> None:
    """Become the folder's only writer, or raise one line (exit 2) naming who is."""
    if not _acquire(root):
        raise RunFolderError(
            f"{root} is in use by {_holder(root)}; wait for it to finish or use another --out"
        )


def try_hold(root: Path) -> bool:
    """The lock if it is free (a standalone worker writing the summary), else False."""
    return _acquire(root)


def release_all() -> None:
    """Close every lock this process holds."""
    for key in list(_held):
        fd = _held.pop(key)
        with contextlib.suppress(OSError):
            os.close(fd)


@contextlib.contextmanager
def _scope() -> Iterator[None]:
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            release_all()


def writer(func: F) -> F:
    """Release the run folder locks this call took when the outermost writer call returns."""

    @functools.wraps(func)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with _scope():
            return func(*args, **kwargs)

    return wrapped  # type: ignore[return-value]
