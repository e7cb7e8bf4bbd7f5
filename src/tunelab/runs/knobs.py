"""A run folder's `search.space` as the one knob type, `config.space_knob.Knob`, read leniently.

`config.space.parse_space` checks a space strictly before a study starts; a run folder may be old,
copied or hand-made, so this reader keeps what it can read and skips the rest (a range whose bounds
are not numbers, an empty list). Everything above `runs/` (the rules, the report) takes its knobs
from `RunView.knobs`, so there is one knob type in the package.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tunelab.config.space_knob import Knob, base_value, short_names, values_equal
from tunelab.runs.records import read_number

__all__ = ["Knob", "read_knobs", "short_names"]  # re-exported for the report, which reaches config only here


def read_knobs(space: Mapping[Any, Any], ablation_base: Mapping[str, Any] | None = None) -> list[Knob]:
    """The knobs of a recorded space, in its order: lists of two or more values (categorical), ranges
    {low, high, log} (int when both bounds are ints) and fixed values (a scalar or a one-value list).

    `ablation_base`: the experiment of an ablation, which also runs every listed knob at its base
    value (as `config.space.parse_space` does): that value joins the list, so `dropout: [0.3]`
    there is searched (0.3 against the base's 0), not fixed at 0.3."""
    names = short_names([str(p) for p in space])
    knobs = []
    for key, spec in space.items():
        path = str(key)
        if isinstance(spec, Mapping) and "values" in spec:
            spec = spec["values"]
        if isinstance(spec, Mapping):
            low, high = read_number(spec.get("low")), read_number(spec.get("high"))
            if low is None or high is None:
                continue
            integer = isinstance(low, int) and isinstance(high, int)
            kind = "int" if integer else "float"
            low, high = (low, high) if integer else (float(low), float(high))
            knobs.append(Knob(path, names[path], kind, low=low, high=high, log=bool(spec.get("log", False))))
        elif isinstance(spec, list | tuple):
            spec = _with_base(path, list(spec), ablation_base) if ablation_base is not None and spec else spec
            if len(spec) > 1:
                knobs.append(Knob(path, names[path], "categorical", values=tuple(spec)))
            elif spec:
                knobs.append(Knob(path, names[path], "fixed", values=(spec[0],)))
        else:
            knobs.append(Knob(path, names[path], "fixed", values=(spec,)))
    return knobs


def _with_base(path: str, values: list[Any], base: Mapping[str, Any]) -> list[Any]:
    try:
        default = base_value(path, {}, dict(base))
    except Exception:  # a hand-made or old folder without that key: the list as recorded
        return values
    return values if any(values_equal(default, v) for v in values) else [*values, default]
