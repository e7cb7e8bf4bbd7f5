"""The search space: `search.space` parsed into knobs, sampled through Optuna, or enumerated as grid/ablation points.

Syntax (keys are experiment key paths):
    train.lr: [0.01, 0.001]                               list: categorical / grid values
    model.dropout: {low: 0.0, high: 0.6, step: 0.3}       float range (step optional)
    train.batch_size: {low: 16, high: 128, log: true}     int range when low/high are ints
    train.momentum: {values: [0.0, 0.9], when: {train.optimizer: sgd}}   conditional knob
    train.weight_decay: 0.01                              fixed value, applied to every trial

A `when` gives one value or a list of allowed values per key path; to allow a list value
itself write it inside a list (`when: {model.hidden_dims: [[64, 64]]}`). While `model.family`
is searched, a model knob that only some families have is conditioned on those families.

This module parses; `tunelab.config.space_knob` (Knob, values, conditions), `space_points`
(Optuna, grid, ablation) and `space_paths` (key paths, apply_params) do the rest, re-exported here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from tunelab.config.model_sections import OVERRIDDEN_BY
from tunelab.config.schema import Experiment
from tunelab.config.space_knob import (
    Knob,
    base_value,
    encode_value,
    fixed_params,
    knob_values,
    searched,
    short_names,
    space_key,
    space_size,
    values_equal,
)
from tunelab.config.space_paths import apply_params, did_you_mean, families_with, path_problem
from tunelab.config.space_points import (
    ablation_points,
    decode_params,
    distributions,
    encode_params,
    grid_points,
    grid_search_space,
    suggest,
)
from tunelab.config.vocabulary import ENUMERATED_STRATEGIES, MODEL_FAMILY_NAMES, SEARCHING_STRATEGIES
from tunelab.errors import ConfigError

__all__ = [
    "Knob",
    "ablation_points",
    "apply_params",
    "decode_params",
    "distributions",
    "encode_params",
    "fixed_params",
    "grid_points",
    "grid_search_space",
    "knob_values",
    "parse_space",
    "searched",
    "space_size",
    "suggest",
]

SPEC_KEYS: tuple[str, ...] = ("high", "log", "low", "step", "values", "when")
# PyYAML (YAML 1.1) reads `1e-4` as a string; a space full of learning rates means a number.
_SCIENTIFIC = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")
_PRIMITIVE = (type(None), bool, int, float, str)


# --------------------------------------------------------------------------- parsing


def parse_space(exp: Experiment) -> list[Knob]:
    """The knobs of `exp.search.space`, checked against the schema and the strategy.

    Knobs keep the file's order, except that a knob comes after the knobs its `when` names.
    For strategy `ablation` every searched knob becomes categorical over its listed values plus
    the experiment's base value (so the default configuration can be enqueued).

    Raises:
        ConfigError: one line naming `search.space.<path>` and what is allowed.
    """
    space = exp.search.space
    strategy = exp.search.strategy
    base = exp.model_dump(mode="json")
    families = [base["model"]["family"]]
    if "model.family" in space:
        families = _searched_families(space["model.family"])
    drafts = [_parse_spec(str(path), spec, families) for path, spec in space.items()]
    names = short_names([d["path"] for d in drafts])
    knobs = [Knob(name=names[d["path"]], **d) for d in drafts]
    knobs = [_with_family_condition(k, families) if "model.family" in space else k for k in knobs]
    for knob in knobs:
        _check_when(knob, knobs, families)
    knobs = _order_by_conditions(knobs)
    for knob in knobs:
        if strategy in ENUMERATED_STRATEGIES and knob.continuous:
            raise ConfigError(f"{strategy} needs a list of values, got a range {{low, high}}", key=space_key(knob.path))
    if strategy in SEARCHING_STRATEGIES and not searched(knobs):
        raise ConfigError(
            f"strategy {strategy} needs at least one list or range to search, got only fixed values",
            key="search.space",
        )
    _check_values(exp, knobs)
    if "model.family" not in space:
        _check_not_overridden(exp, knobs)
    if strategy == "ablation":
        knobs = [_with_base_value(k, knobs, base) for k in knobs]
    return knobs


def _searched_families(spec: Any) -> list[str]:
    values = spec.get("values") if isinstance(spec, Mapping) else spec
    values = values if isinstance(values, list | tuple) else [values]
    for value in values:
        if value not in MODEL_FAMILY_NAMES:
            raise ConfigError(
                f"unknown family {value!r}; choose one of {', '.join(MODEL_FAMILY_NAMES)}",
                key=space_key("model.family"),
            )
    return list(dict.fromkeys(values)) or ["mlp"]


def _check_not_overridden(exp: Experiment, knobs: Sequence[Knob]) -> None:
    """A searched knob that a set list field overrides (hidden_dim under hidden_dims) would change
    nothing in any trial: say so before the study spends a trial on it."""
    by_path = {k.path: k for k in knobs}
    for (family, field), fields in OVERRIDDEN_BY.items():
        over = by_path.get(f"model.{field}")
        if family != exp.model.family or (over is not None and over.kind not in ("categorical", "fixed")):
            continue
        values = (over.values or ()) if over is not None else (getattr(exp.model, field, None),)
        if not values or any(v is None for v in values):
            continue
        where = "searched" if over is not None else "set in the model section"
        for name in fields:
            knob = by_path.get(f"model.{name}")
            if knob is not None and knob.kind != "fixed" and not knob.when:
                raise ConfigError(
                    f"searching model.{name} changes nothing: model.{field} ({where}) overrides it; "
                    f"search one of them, or set model.{field}: null", key=space_key(knob.path))


def _number(value: Any) -> Any:
    return float(value) if isinstance(value, str) and _SCIENTIFIC.match(value) else value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _parse_spec(path: str, spec: Any, families: Sequence[str]) -> dict[str, Any]:
    key = space_key(path)
    problem = path_problem(path, families)
    if problem is not None:
        raise ConfigError(problem, key=key)
    when: Any = {}
    if isinstance(spec, Mapping):
        unknown = [str(k) for k in spec if k not in SPEC_KEYS]
        if unknown:
            hint = did_you_mean(unknown[0], SPEC_KEYS)
            raise ConfigError(f"unknown key {unknown[0]!r}{hint}; allowed: {', '.join(SPEC_KEYS)}", key=key)
        when = spec.get("when", {})
        if "values" in spec:
            if any(k in spec for k in ("low", "high", "log", "step")):
                raise ConfigError("give either values or low/high, not both", key=key)
            spec = spec["values"]
            if not isinstance(spec, list | tuple):
                raise ConfigError(f"values must be a list, got {spec!r}", key=key)
        elif "low" not in spec or "high" not in spec:
            raise ConfigError(f"a range needs low and high, got {{{', '.join(map(str, spec))}}}", key=key)
        else:
            return {"path": path, "when": _parse_when(path, when), **_parse_range(spec, key)}
    if isinstance(spec, list | tuple):
        if not spec:
            raise ConfigError("empty list; give at least one value", key=key)
        values = tuple(_number(v) for v in spec)
        _check_distinct(values, key)
        return {"path": path, "kind": "categorical", "values": values, "when": _parse_when(path, when)}
    return {"path": path, "kind": "fixed", "values": (_number(spec),)}


def _parse_range(spec: Mapping[str, Any], key: str) -> dict[str, Any]:
    low, high, step, log = (_number(spec.get(k)) for k in ("low", "high", "step", "log"))
    for name, value in (("low", low), ("high", high)) + ((("step", step),) if step is not None else ()):
        if not _is_number(value):
            raise ConfigError(f"{name} must be a number, got {name}={value!r}", key=key)
    log = False if log is None else log
    if not isinstance(log, bool):
        raise ConfigError(f"log must be true or false, got log={log!r}", key=key)
    if low > high:
        raise ConfigError(f"low must be <= high, got low={low}, high={high}", key=key)
    if step is not None and step <= 0:
        raise ConfigError(f"step must be > 0, got step={step}", key=key)
    if log and step is not None:
        raise ConfigError(f"log and step cannot be combined, got log=true, step={step}; drop one", key=key)
    if log and low <= 0:
        raise ConfigError(f"log scale needs low > 0, got low={low}", key=key)
    if all(isinstance(v, int) for v in (low, high)) and (step is None or isinstance(step, int)):
        return {"kind": "int", "low": low, "high": high, "log": log, "step": step}
    return {"kind": "float", "low": float(low), "high": float(high), "log": log, "step": _float(step)}


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _check_distinct(values: Sequence[Any], key: str) -> None:
    seen: list[tuple[bool, Any]] = []
    for value in values:
        encoded = encode_value(value)
        marker = (isinstance(encoded, bool), encoded)
        if marker in seen:
            raise ConfigError(f"value {value!r} is listed twice", key=key)
        seen.append(marker)


def _parse_when(path: str, when: Any) -> dict[str, tuple]:
    if not isinstance(when, Mapping):
        raise ConfigError(f"when must map key paths to allowed values, got {when!r}", key=space_key(path))
    return {
        str(k): tuple(_number(x) for x in v) if isinstance(v, list | tuple) else (_number(v),) for k, v in when.items()
    }


def _with_family_condition(knob: Knob, families: Sequence[str]) -> Knob:
    """A model knob that only some searched families have applies only to those families."""
    if not knob.path.startswith("model.") or knob.path == "model.family":
        return knob
    having = families_with(knob.path, families)
    if len(having) == len(families):
        return knob
    allowed = knob.when.get("model.family")
    if allowed is None:
        return replace(knob, when={**knob.when, "model.family": tuple(having)})
    lacking = [f for f in allowed if f not in having]
    if lacking:
        raise ConfigError(
            f"model family {lacking[0]} has no key {knob.path.removeprefix('model.')}; "
            f"limit when: model.family to {', '.join(having)}",
            key=space_key(knob.path),
        )
    return knob


def _check_when(knob: Knob, knobs: Sequence[Knob], families: Sequence[str]) -> None:
    by_path = {k.path: k for k in knobs}
    for path, allowed in knob.when.items():
        if path == knob.path:
            raise ConfigError("when cannot name the knob itself", key=space_key(knob.path))
        target = by_path.get(path)
        if target is None:
            problem = path_problem(path, families)
            if problem is not None:
                raise ConfigError(f"when names {path}: {problem}", key=space_key(knob.path))
            continue
        if not allowed:
            raise ConfigError(f"when {path}: give at least one allowed value", key=space_key(knob.path))
        if target.kind == "int":
            possible = any(_is_number(a) and target.low <= a <= target.high for a in allowed)
        else:
            possible = target.continuous or any(values_equal(a, v) for a in allowed for v in knob_values(target))
        if not possible:
            shown = ", ".join(map(repr, allowed))
            raise ConfigError(
                f"when {path}: {shown} is never searched, so this knob never applies", key=space_key(knob.path)
            )


def _order_by_conditions(knobs: list[Knob]) -> list[Knob]:
    """File order, but each knob after the knobs its condition reads (so they are sampled first)."""
    paths = {k.path for k in knobs}
    pending, placed, ordered = list(knobs), set(), []
    while pending:
        for knob in pending:
            if all(p in placed for p in knob.when if p in paths):
                ordered.append(knob)
                placed.add(knob.path)
                pending.remove(knob)
                break
        else:
            knob = pending[0]
            raise ConfigError(f"when conditions form a cycle through {', '.join(knob.when)}", key=space_key(knob.path))
    return ordered


def _check_values(exp: Experiment, knobs: Sequence[Knob]) -> None:
    """Apply every candidate value to the experiment and validate it, so a bad value fails now, not in trial 40."""
    fixed: dict[str, Any] = {}
    for knob in knobs:
        if knob.kind == "fixed" and not knob.when:
            _validate(exp, {**fixed, knob.path: knob.values[0]}, knob, knob.values[0])
            fixed[knob.path] = knob.values[0]
    for knob in knobs:
        if knob.kind == "fixed" and not knob.when:
            continue
        context = {**fixed, **_condition_context(knob, knobs)}
        for value in _candidates(knob):
            _validate(exp, {**context, knob.path: value}, knob, value)


def _condition_context(knob: Knob, knobs: Sequence[Knob], depth: int = 0) -> dict[str, Any]:
    """Values that make `knob`'s condition hold (the first allowed one per path), recursively."""
    by_path = {k.path: k for k in knobs}
    context: dict[str, Any] = {}
    for path, allowed in knob.when.items():
        if path in by_path and depth < len(knobs):
            context.update(_condition_context(by_path[path], knobs, depth + 1))
        context[path] = allowed[0]
    return context


def _candidates(knob: Knob) -> tuple:
    if knob.kind in ("categorical", "fixed"):
        return knob.values or ()
    if knob.kind == "float" and knob.step is None and knob.low != knob.high:
        # A fractional inner value catches a float range on an integer key.
        return (knob.low, knob.high, knob.low + (knob.high - knob.low) * 0.371)
    if knob.kind == "float" and knob.step is not None and knob.low + knob.step <= knob.high:
        # So does the first step: {low: 8, high: 64, step: 0.5} on an integer key draws 8.5.
        return (knob.low, knob.high, knob.low + knob.step)
    return (knob.low, knob.high)


def _validate(exp: Experiment, params: dict[str, Any], knob: Knob, value: Any) -> None:
    try:
        apply_params(exp, params)
    except ConfigError as err:
        where = "" if err.key == knob.path else f"{err.key}: "
        hint = ""
        if err.message.startswith("expected a list") and knob.kind == "categorical":
            hint = " (a list is one choice inside the list of choices, e.g. [[32, 32], [64, 64]])"
        message = f"value {value!r} is invalid: {where}{err.message}{hint}"
        raise ConfigError(message, key=space_key(knob.path)) from None


def _with_base_value(knob: Knob, knobs: Sequence[Knob], base: dict[str, Any]) -> Knob:
    if knob.kind == "fixed":
        return knob
    values = knob_values(knob)
    default = base_value(knob.path, _condition_context(knob, knobs), base)
    if not any(values_equal(default, v) for v in values):
        values = (*values, default)
    return replace(knob, kind="categorical", values=values, low=None, high=None, log=False, step=None)
