"""Errors a user can act on: each renders as one line (what, where, what is allowed)."""

from __future__ import annotations


class TunelabError(Exception):
    """Base class for every error tunelab reports to a user instead of a traceback."""

    exit_code = 2

    def one_line(self) -> str:
        """The message as a single line, whatever the caller put in it, with any password masked."""
        from tunelab.masking import mask_secrets

        return mask_secrets(" ".join(str(self).split()))


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


class DataPathError(ConfigError, DataError):
    """A file or folder the experiment names (`data.path`, `data.data_dir`) that is missing or not what
    the data set needs: a data error (`except DataError` catches it) located, like a config error, at
    the line of that key in the experiment file."""

    def __init__(self, message: str, *, key: str | None = "data.path", source: str | None = None) -> None:
        super().__init__(message, key=key, source=source)


class RunFolderError(TunelabError):
    """A run folder that is missing, foreign or damaged."""


def fault_line(exc: BaseException) -> str:
    """A fault of the machine, not of the input (disk full, read-only folder, unreadable bytes),
    as one line: what failed, on which file, and that finished work is kept."""
    import errno

    if isinstance(exc, UnicodeDecodeError):
        return f"cannot read a file: it is not UTF-8 text ({exc.reason} at byte {exc.start})"
    if isinstance(exc, MemoryError):
        return "out of memory; use smaller models, batches or data (finished trials are kept)"
    assert isinstance(exc, OSError)
    what = exc.strerror or str(exc) or type(exc).__name__
    where = f" {exc.filename}" if exc.filename else ""
    hint = {
        errno.ENOSPC: "; free some space and run the same command again (finished work is kept)",
        errno.EROFS: "; choose a writable folder with --out",
        errno.EACCES: "; check the folder's permissions or choose another with --out",
        errno.EEXIST: "; choose another --out",
        errno.ENOTDIR: "; a file stands where a folder is needed: choose another --out",
    }.get(exc.errno or 0, "")
    return f"cannot access{where}: {what}{hint}"
