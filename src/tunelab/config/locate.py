"""Put file:line (or the `--set` that wrote it) on a config error found after validation.

Data, task, metric and search-space errors are raised where the data set or the space is
understood, long after the YAML is gone; they carry the key path, and this module finds the
line that key was written on, so every config error points at what to edit.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tunelab.errors import ConfigError


def locate(exc: ConfigError, path: str | Path | None, overrides: Sequence[str] = ()) -> ConfigError:
    """`exc` with its source filled in from the override or the file line that set its key.

    The located error keeps the class of `exc` (a `DataPathError` stays one). An error that
    already names its source, or has no key, comes back unchanged; so does one
    whose key (or a section above it) was not written anywhere, where defaults are to blame.
    """
    if exc.source or not exc.key:
        return exc
    from tunelab.config.load import parse_override, split_key

    key = split_key(exc.key)
    for item in reversed(overrides):  # the last override of a key is the one that counted
        try:
            over = parse_override(item)[0]
        except ConfigError:
            continue
        if key[: len(over)] == over:
            return type(exc)(exc.message, key=exc.key, source=f"--set {item}")
    if path is None:
        return exc
    try:
        from tunelab.config.yaml_file import read_yaml

        lines = read_yaml(Path(path))[1]
    except ConfigError:
        return exc
    for depth in range(len(key), 0, -1):
        if key[:depth] in lines:
            return type(exc)(exc.message, key=exc.key, source=f"{path}:{lines[key[:depth]]}")
    return exc
