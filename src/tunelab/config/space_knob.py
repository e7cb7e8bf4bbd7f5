"""A search-space knob and what every consumer of the space asks of it: its values, conditions, encoding."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tunelab.config.schema import Experiment
from tunelab.config.space_limits import check_points, range_count
from tunelab.config.space_paths import read_path, set_params
from tunelab.errors import ConfigError

_PRIMITIVE = (type(None), bool, int, float, str)


@dataclass(frozen=True)
class Knob:
    """One key path of the space: how Optuna samples it (`name`, `kind`) and when it applies."""

    path: str
    name: str
    kind: Literal["categorical", "float", "int", "fixed"]
    values: tuple | None = field(default=None, hash=False)
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    when: dict[str, tuple] = field(default_factory=dict, hash=False)

    @property
    def continuous(self) -> bool:
        """A float range without a step: it cannot be listed."""
        return self.kind == "float" and self.step is None

    @property
    def is_range(self) -> bool:
        """A range {low, high} (float or int) rather than a list of values or a fixed value."""
        return self.kind in ("float", "int")

    @property
    def numeric(self) -> bool:
        """Every value is a finite real number (a range always is): an axis, not categories."""
        return self.is_range or all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in self.values or ()
        )


def short_names(paths: Sequence[str]) -> dict[str, str]:
    """Key path -> the knob's one name (`train.lr` -> `lr`), unless two paths share a last part (then the path)."""
    lasts = [p.split(".")[-1] for p in paths]
    return {p: (p if lasts.count(p.split(".")[-1]) > 1 else p.split(".")[-1]) for p in paths}


def space_key(path: str) -> str:
    """The key a space error names: `search.space.<path>`."""
    return f"search.space.{path}"


def knob_values(knob: Knob) -> tuple:
    """The values a grid lists for this knob (a stepped or int range expanded).

    Raises:
        ConfigError: a float range without a step.
    """
    if knob.kind in ("categorical", "fixed"):
        return tuple(knob.values or ())
    if knob.kind == "float" and knob.step is None:
        raise ConfigError("grid needs a list of values, got a range {low, high}", key=space_key(knob.path))
    count = range_count(knob.low, knob.high, knob.step or 1, integer=knob.kind == "int")
    check_points(count, space_key(knob.path), "this range")  # before listing a billion values
    if knob.kind == "int":
        return tuple(range(int(knob.low), int(knob.high) + 1, int(knob.step or 1)))
    return tuple(round(knob.low + i * knob.step, 12) for i in range(count))


def searched(knobs: Sequence[Knob]) -> list[Knob]:
    """The knobs Optuna samples (everything but fixed values)."""
    return [k for k in knobs if k.kind != "fixed"]


def fixed_params(knobs: Sequence[Knob]) -> dict[str, Any]:
    """Fixed values by key path (those with a condition apply only where it holds)."""
    return {k.path: k.values[0] for k in knobs if k.kind == "fixed" and k.values}


def space_size(knobs: Sequence[Knob], base: Experiment | None = None) -> int | None:
    """The number of grid points, or None when a knob is continuous.

    Conditions on keys outside the space read `base`; without it they count as met.
    """
    if any(k.continuous for k in knobs):
        return None
    bound = grid_bound(knobs)
    if not any(k.when for k in knobs):
        return bound
    data = base.model_dump(mode="json") if base is not None else None
    return sum(1 for _ in walk_grid(list(knobs), 0, {}, data))


def grid_bound(knobs: Sequence[Knob]) -> int:
    """Every combination of the knobs' values (conditions ignored: an upper bound), refused past
    the point limit before any point is listed.

    Raises:
        ConfigError: a float range without a step, or too many points.
    """
    bound = math.prod(len(knob_values(k)) for k in knobs)
    check_points(bound, "search.space", "the grid (every combination of the listed values)")
    return bound


def values_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def is_active(knob: Knob, point: Mapping[str, Any], base: Mapping[str, Any] | None) -> bool:
    """Whether every `when` of the knob holds: knob values from `point`, other keys from `base`."""
    for path, allowed in knob.when.items():
        if path in point:
            value = point[path]
        elif base is None:
            continue
        else:
            value = read_path(base, path)
        if not any(values_equal(value, a) for a in allowed):
            return False
    return True


def base_value(path: str, point: Mapping[str, Any], base: dict[str, Any]) -> Any:
    """The experiment's own value for `path`, read under the model family `point` chose."""
    family = point.get("model.family")
    if path.startswith("model.") and family is not None and family != base["model"]["family"]:
        base = set_params(json.loads(json.dumps(base)), {"model.family": family})
    return read_path(base, path)


def encode_value(value: Any) -> Any:
    """Optuna's categorical choices are None/bool/int/float/str: other values travel as canonical JSON."""
    return value if isinstance(value, _PRIMITIVE) else json.dumps(value, sort_keys=True)


def decode_value(knob: Knob, value: Any) -> Any:
    if knob.kind != "categorical":
        return value
    for choice in knob.values or ():
        encoded = encode_value(choice)
        if encoded == value and isinstance(encoded, bool) == isinstance(value, bool):
            return choice
    return value


def walk_grid(knobs: list[Knob], index: int, point: dict[str, Any], base: dict[str, Any] | None) -> Iterator[dict]:
    if index == len(knobs):
        yield dict(point)
        return
    knob = knobs[index]
    if not is_active(knob, point, base):
        yield from walk_grid(knobs, index + 1, point, base)
        return
    for value in knob_values(knob):
        point[knob.path] = value
        yield from walk_grid(knobs, index + 1, point, base)
    del point[knob.path]
