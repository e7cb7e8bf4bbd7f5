"""How tunelab's processes end: children die with their parent, SIGTERM ends a command cleanly.

A forked plot renderer (~400 MB) or a trial process outliving a killed `tune` holds memory, the
run folder's lock and, for trial processes, study trials. `die_with_parent` (run in the child)
asks Linux to signal it when its parent dies, whatever killed the parent.

SIGTERM (`kill`, a batch scheduler, a container stop) becomes `Terminated`, a KeyboardInterrupt:
every path that turns Ctrl-C into "this trial was interrupted, retry it on the next run" (not
left RUNNING) does the same for SIGTERM, and the command prints one line.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

PR_SET_PDEATHSIG = 1


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM."""


def _raise_terminated(signum: int, _frame: FrameType | None) -> None:
    signal.signal(signum, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    raise Terminated()


def handle_sigterm() -> None:
    """Turn SIGTERM into `Terminated` in the main thread (a command's entry point calls this)."""
    signal.signal(signal.SIGTERM, _raise_terminated)


def die_with_parent(sig: int = signal.SIGKILL, parent: int | None = None) -> None:
    """In a child process: receive `sig` when the parent dies (Linux; elsewhere nothing).
    `parent`, the parent's pid taken before the fork, catches a parent that died before this call."""
    if not sys.platform.startswith("linux"):
        return
    parent = parent or os.getppid()
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, sig)
    except OSError:
        return
    if os.getppid() != parent:
        os.kill(os.getpid(), sig)
