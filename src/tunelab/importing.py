"""Import `module:function` strings named in an experiment file (documented as running user code)."""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import Any

from tunelab.errors import ConfigError


def import_user_module(module_name: str, *, key: str) -> ModuleType:
    """Import the user's module, with the current directory importable, as a user expects; any
    import-time failure is the user's module, reported in one line."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    except Exception as exc:
        message = f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}"
        raise ConfigError(" ".join(message.split()), key=key) from exc


def import_object(spec: str, *, key: str) -> Any:
    """Import `module:attr` (see `import_user_module`)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"expected module:function, got {spec!r}", key=key)
    module = import_user_module(module_name, key=key)
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise ConfigError(f"module {module_name!r} has no attribute {attr!r}", key=key) from None
    if not callable(obj):
        raise ConfigError(f"{spec} is not callable", key=key)
    return obj
