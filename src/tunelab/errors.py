"""Errors a user can act on: each renders as one line (what, where, what is allowed)."""

from __future__ import annotations


class TunelabError(Exception):
    """Base class for every error tunelab reports to a user instead of a traceback."""

    exit_code = 2

    def one_line(self) -> str:
        """The message as a single line, whatever the caller put in it."""
        return " ".join(str(self).split())


class ConfigError(TunelabError):
    """A bad experiment file or override: carries the key path and, when known, file:line."""

    def __init__(self, message: str, *, key: str | None = None, source: str | None = None) -> None:
        self.key = key
        self.source = source
        self.message = message
        if source and source.startswith("--set "):
            where = f"{source}: "  # the override already names the key
        else:
            where = f"{source} " if source else ""
            where += f"{key}: " if key else ""
        super().__init__(f"{where}{message}")


class DataError(TunelabError):
    """A data set that cannot be found or read; the message says where we looked and what to do."""


class RunFolderError(TunelabError):
    """A run folder that is missing, foreign or damaged."""
