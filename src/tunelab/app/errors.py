"""Errors as a command reports them: a config error located at its file:line or --set.

The CLI locates the error it prints (`cli._guarded`); `located` does the same for the Python API,
so `tunelab.tune("exp.yaml")` raises an error that names `exp.yaml:LINE` exactly as the CLI does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tunelab.config.locate import locate
from tunelab.errors import ConfigError

__all__ = ["locate", "located"]

F = TypeVar("F", bound=Callable[..., Any])


def located(func: F) -> F:
    """`func(experiment, *, overrides=...)` whose ConfigError carries the file:line (or `--set`) of its key."""

    @functools.wraps(func)
    def wrapper(experiment: Any = None, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(experiment, *args, **kwargs)
        except ConfigError as exc:
            path = experiment if isinstance(experiment, str | Path) else None
            where = locate(exc, path, kwargs.get("overrides") or ())
            if where is exc:
                raise
            raise where from None

    return wrapper  # type: ignore[return-value]
