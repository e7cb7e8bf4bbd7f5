"""Say why a run folder cannot take this experiment: which key differs, the folder's value and ours.

A resume must run the experiment the folder already holds; a clash names the first differing
key path with both values, and a folder whose experiment.yaml is not an experiment at all says
so (instead of a diff of garbage against the experiment).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab.errors import RunFolderError

_MAX_VALUE = 60


def read_folder_experiment(path: Path) -> dict[str, Any]:
    """The folder's experiment.yaml as plain data.

    Raises:
        RunFolderError: unreadable, not YAML, or not a mapping.
    """
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RunFolderError(
            f"{path} is damaged ({type(exc).__name__}); remove that folder or use another --out"
        ) from None
    from tunelab.config.schema import Experiment

    if not isinstance(data, dict) or not set(map(str, data)) <= set(Experiment.model_fields):
        raise RunFolderError(
            f"{path} is damaged (not a mapping of experiment sections); remove that folder or use another --out"
        )
    return data


def clash_error(root: Path, existing: dict[str, Any], ours: dict[str, Any]) -> RunFolderError:
    """The one-line error for a folder holding a different experiment: key, folder value, our value."""
    key, old, new = first_difference(existing, ours)
    return RunFolderError(
        f"{root} holds a different experiment: {key} is {_show(old)} there, {_show(new)} here; "
        "use another --out or remove that folder"
    )


_MISSING = object()


def first_difference(a: Any, b: Any, prefix: str = "") -> tuple[str, Any, Any]:
    """(dotted key, value in a, value in b) of the first difference, depth first."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            left, right = a.get(key, _MISSING), b.get(key, _MISSING)
            if left != right:
                return first_difference(left, right, f"{prefix}.{key}" if prefix else str(key))
    return prefix or "(top level)", a, b


def _show(value: Any) -> str:
    if value is _MISSING:
        return "not set"
    text = repr(value)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 3] + "..."
