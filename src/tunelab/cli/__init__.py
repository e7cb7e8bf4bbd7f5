"""The `tunelab` command: parse, call the API, print, set the exit code (2 for a user's mistake).

The commands live in `run_commands` (train, tune, ...) and `tool_commands` (init, report, ...);
importing them registers them on the one typer `app` of `common`.
"""

from __future__ import annotations

import logging
import os
import sys

from tunelab.cli import run_commands, tool_commands  # noqa: F401  (registers the commands, in this order)
from tunelab.cli.common import app

__all__ = ["app", "main"]


def main() -> None:
    """The console script. A study leaves many small objects (tensors, figures, trial
    records) to tear down; every file is already written and closed, so the process ends at
    once instead of spending a second freeing them."""
    from tunelab.lifetime import handle_sigterm

    handle_sigterm()
    try:
        app()
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if isinstance(done.code, str):
            print(done.code, file=sys.stderr)
    else:
        code = 0
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
