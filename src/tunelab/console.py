"""The console the CLI prints through: wrapped for a person at a terminal, never for a pipe or file.

Rich wraps and crops to the terminal width (80 columns when it cannot tell), which splits table
rows and long paths across lines in logs and makes them ungreppable. Output that is not a terminal
gets a width no line reaches and soft wrapping, so every line arrives whole.
"""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console

UNBOUNDED_WIDTH = 100_000


def make_console(file: TextIO | None = None) -> Console:
    """A Console for `file` (default stdout): unbounded and unwrapped unless it is a terminal."""
    stream = file or sys.stdout
    if stream.isatty():
        return Console(file=file)
    return Console(file=file, width=UNBOUNDED_WIDTH, soft_wrap=True)
