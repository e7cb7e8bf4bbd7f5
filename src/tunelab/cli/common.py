"""What every `tunelab` command shares: the typer app, the console, one-line failures, option help."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from tunelab.cli_errors import OneLineErrors
from tunelab.console import make_console
from tunelab.errors import TunelabError

app = typer.Typer(
    name="tunelab",
    help="Hyperparameter tuning for PyTorch: describe an experiment once, search it, read the evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=OneLineErrors,
)
console = make_console()  # never wraps or cuts lines when stdout is a pipe or a file
F = TypeVar("F", bound=Callable[..., Any])

SET_HELP = "Override a key of the experiment, e.g. --set train.lr=0.01 (repeatable)."
DATA_DIR_HELP = "Folder with local copies of file-based data sets (default: $TUNELAB_DATA_DIR)."
QUICK_HELP = "Apply the file's quick: budget (a smoke run in seconds) before any --set."


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("tunelab")
        except PackageNotFoundError:  # running from a source tree that was never installed
            text = "unknown (not installed)"
        sys.stdout.write(f"tunelab {text}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    _version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Hyperparameter tuning for PyTorch: describe an experiment once, search it, read the evidence."""


def fail(message: str, code: int = 2) -> None:
    """One line on stderr, never wrapped, password masked, then exit."""
    from tunelab.masking import mask_secrets

    sys.stderr.write(f"error: {mask_secrets(' '.join(message.split()))}\n")
    raise typer.Exit(code)


def guarded(func: Callable[[], Any], source: Path | None = None, overrides: list[str] | None = None) -> Any:
    """Run a command's work; any error it can explain ends as one line (see docs/reliability.md)."""
    from tunelab.app.errors import locate
    from tunelab.errors import ConfigError, fault_line

    try:
        return func()
    except ConfigError as exc:
        fail(locate(exc, source, overrides or ()).one_line(), exc.exit_code)
    except TunelabError as exc:
        fail(exc.one_line(), exc.exit_code)
    except (OSError, MemoryError, UnicodeDecodeError) as exc:
        if os.environ.get("TUNELAB_TRACEBACK"):
            raise
        fail(fault_line(exc), 2)
    except KeyboardInterrupt as exc:
        from tunelab.lifetime import Terminated

        what, code = ("terminated (SIGTERM)", 143) if isinstance(exc, Terminated) else ("interrupted", 130)
        if not os.environ.get("TUNELAB_TRIAL_PROCESS"):  # a trial process of tune: tune says it once
            sys.stderr.write(f"{what}: finished epochs are saved; run the same command again to resume\n")
        raise typer.Exit(code) from None


def print_study_result(res: Any, as_json: bool) -> None:
    """`tune` and `worker` end the same way: JSON (password masked) or the one-screen summary."""
    if as_json:
        from tunelab.app.summary import study_result_json

        sys.stdout.write(study_result_json(res))
        return
    from tunelab.app.summary import print_tune_summary

    print_tune_summary(console, res)
