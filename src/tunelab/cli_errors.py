"""Usage errors of the `tunelab` command as one line, exit 2, like every other error.

Typer draws a box with the usage and the error around a wrong option (`--n-trials 0`); a log
or a script wants one greppable line: `error: --n-trials: 0 is not in the range x>=1 (see
tunelab tune --help)`.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from tunelab.masking import mask_secrets


class OneLineErrors(TyperGroup):
    """The app's command group: a usage error prints one line on stderr and exits 2."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            sys.stderr.write("error: aborted\n")
            sys.exit(1)
        except typer.TyperException as exc:  # typer's own click: every usage error derives from this
            if type(exc).__name__ == "NoArgsIsHelpError":
                exc.show()  # `tunelab` alone: the help is what was asked for
                sys.exit(0)
            sys.stderr.write(f"error: {usage_line(exc)}\n")
            sys.exit(getattr(exc, "exit_code", 2))
        sys.exit(code if isinstance(code, int) else 0)


def usage_line(exc: Exception) -> str:
    """The error as one line, naming the command's --help when there is a command."""
    text = " ".join(getattr(exc, "format_message", exc.__str__)().split())
    if text.startswith("Invalid value for '"):
        text = text.replace("Invalid value for ", "").replace("'", "", 2)
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        text += f" (see {ctx.command_path} --help)"
    return mask_secrets(text)


def finite(value: float | None) -> float | None:
    """Option callback: `nan` and `inf` pass a range check (every comparison with nan is false)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"expected a finite number, got {value}")
    return value
