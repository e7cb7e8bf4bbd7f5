"""How many points a search space may expand to, checked before anything is listed.

A grid over `{low: 1, high: 1e9}` or a float range with step 1e-9 is a few bytes of YAML and
billions of trials; the count is computed from the bounds and refused past a limit the user can
raise with the environment variable `TUNELAB_MAX_POINTS`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import TypeVar

from tunelab.errors import ConfigError

MAX_POINTS_ENV = "TUNELAB_MAX_POINTS"
Limit = TypeVar("Limit", int, float)
DEFAULT_MAX_POINTS = 100_000  # a day of one-second trials; past this a grid is a typo, not a plan


def env_limit(name: str, default: Limit, parse: Callable[[str], Limit], what: str) -> Limit:
    """A limit the user may raise: `$name` when set to a positive, finite `what`, else `default`.

    Raises:
        ConfigError: the variable is set to something else.
    """
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value: Limit | None = parse(text)
    except ValueError:
        value = None
    if value is None or not 0 < value < math.inf:  # NaN fails both comparisons
        raise ConfigError(f"{name} must be {what}, got {text!r}")
    return value


def max_points() -> int:
    """The limit in force: `$TUNELAB_MAX_POINTS` when set to a positive integer, else the default."""
    return env_limit(MAX_POINTS_ENV, DEFAULT_MAX_POINTS, int, "a positive integer")


def range_count(low: float, high: float, step: float, *, integer: bool) -> int:
    """Values of `low, low + step, ... <= high` without listing them."""
    if integer:
        return max(0, (int(high) - int(low)) // int(step) + 1)
    return max(0, math.floor((high - low) / step + 1e-9) + 1)


def check_points(count: int, key: str, what: str) -> None:
    """Refuse a space (or a part of one) that expands to more than the limit.

    Raises:
        ConfigError: `what` expands to `count` points; names the limit and how to raise it.
    """
    limit = max_points()
    if count > limit:
        raise ConfigError(
            f"{what} expands to {count:,} points, over the limit of {limit:,}; list fewer values, "
            f"use a larger step or a sampler strategy, or raise the limit with {MAX_POINTS_ENV}=N",
            key=key,
        )
