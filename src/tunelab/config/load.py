"""Read an experiment from YAML (plus `--set` overrides) and turn every mistake into one line.

A pydantic error becomes `file:line key.path: what is wrong, got X; what is allowed`, so a
user can fix the file without reading a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from tunelab.config.model_sections import FAMILY_MODELS
from tunelab.config.schema import Experiment
from tunelab.config.vocabulary import MODEL_FAMILY_NAMES
from tunelab.config.yaml_file import read_yaml
from tunelab.errors import ConfigError


def load_experiment(
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    *,
    raw: Mapping[str, Any] | None = None,
    quick: bool = False,
) -> Experiment:
    """Validate an experiment file (or a dict) with `key.path=value` overrides applied.

    The file's top-level `quick:` block (dotted key -> value) is never part of the experiment:
    with `quick=True` its entries are applied first, then `overrides`; otherwise it is ignored.
    `quick=True` on a file without the block is an error rather than a silent full-budget run.

    Raises:
        ConfigError: one line naming the file/line or override, the key path and what is allowed.
    """
    source = str(path) if path is not None else ""
    lines: dict[tuple[str, ...], int] = {}
    if raw is None:
        if path is None:
            data: dict[str, Any] = {}
        else:
            data, lines = read_yaml(Path(path))
    else:
        data = _plain(raw)
    budget = _pop_quick(data, source, lines)
    if quick and not budget and raw is None and path is not None:
        raise ConfigError(NO_QUICK_BLOCK, key="--quick", source=source)
    origin: dict[tuple[str, ...], str] = {}
    for key, value, where in budget if quick else ():
        if _is_text_field(key, data) and not isinstance(value, str):
            value = str(value)
        _set_path(data, key, value, where)
        origin[key] = where
    for item in overrides:
        key, value = parse_override(item)
        if _is_text_field(key, data) and not isinstance(value, str):
            value = item.partition("=")[2]
        _set_path(data, key, value, f"--set {item}")
        origin[key] = f"--set {item}"
    try:
        return validate_experiment(data, source=source, lines=lines, origin=origin)
    except ConfigError as exc:
        if quick and exc.key and any(exc.source == where for _, _, where in budget):
            raise ConfigError(exc.message, key=f"quick.{exc.key}", source=exc.source) from None
        raise


NO_QUICK_BLOCK = (
    "this file has no quick: block, so --quick would silently run the full budget; add one "
    "(e.g. quick: {train.epochs: 2, search.n_trials: 3}) or run without --quick"
)


def _pop_quick(
    data: dict[str, Any], source: str, lines: Mapping[tuple[str, ...], int]
) -> list[tuple[tuple[str, ...], Any, str]]:
    """Take the `quick:` block out of the file's data: (key path, value, where it was written).

    Raises:
        ConfigError: the block is not a mapping of dotted key paths.
    """
    block = data.pop("quick", None)
    if block is None:
        return []
    line = lines.get(("quick",))
    where = f"{source}:{line}" if source and line else (source or "quick")
    if not isinstance(block, dict):
        raise ConfigError(
            f"expected a mapping of key.path: value (e.g. train.epochs: 2), got {_short(block)}",
            key="quick", source=where,
        )
    out = []
    for dotted, value in block.items():
        key = split_key(str(dotted))
        item_line = lines.get(("quick", str(dotted)))
        item_where = f"{source}:{item_line}" if source and item_line else where
        if any(not part for part in key) or key[0] == "quick":
            raise ConfigError(
                "keys must be key paths of the experiment like search.n_trials or train.epochs",
                key=f"quick.{dotted}", source=item_where,
            )
        out.append((key, value, item_where))
    return out


def validate_experiment(
    data: Mapping[str, Any],
    *,
    source: str = "",
    lines: Mapping[tuple[str, ...], int] | None = None,
    origin: Mapping[tuple[str, ...], str] | None = None,
) -> Experiment:
    """Build an `Experiment` from plain data, raising a one-line `ConfigError` on the first problem."""
    data = _with_default_family(data)
    try:
        return Experiment.model_validate(data)
    except ValidationError as exc:
        raise _one_line_error(exc, data, source, lines or {}, origin or {}) from None


def _is_text_field(key: tuple[str, ...], data: Mapping[str, Any]) -> bool:
    """Whether `key` names a plain string field (so `--set name=2024` stays the text '2024')."""
    model: type[BaseModel] | None = Experiment
    for depth, part in enumerate(key):
        if model is None:
            return False
        if part == "model" and depth == 0:
            model = FAMILY_MODELS.get(str(_value_at(data, ("model", "family")) or "mlp"))
            continue
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if depth == len(key) - 1:
            return annotation in (str, str | None)
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return False


def _with_default_family(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """A model section without `family` is an mlp; a section left empty (`train:`) means defaults."""
    if isinstance(data, Mapping):
        data = {k: ({} if v is None and k in _SECTIONS else v) for k, v in data.items()}
    model = data.get("model") if isinstance(data, Mapping) else None
    if isinstance(model, Mapping) and "family" not in model:
        return {**data, "model": {"family": "mlp", **model}}
    return data


def parse_override(item: str) -> tuple[tuple[str, ...], Any]:
    """Split `a.b.c=value`; the value is read as YAML so numbers, lists and booleans keep their type."""
    if "=" not in item:
        raise ConfigError(f"--set {item}: expected key.path=value")
    key, _, text = item.partition("=")
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {item}: expected key.path=value")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    return split_key(key), value


def split_key(dotted: str) -> tuple[str, ...]:
    """`a.b.c` -> ('a', 'b', 'c'); a search-space entry keeps its own dots (`search.space.train.lr`)."""
    parts = tuple(dotted.split("."))
    if parts[:2] == ("search", "space") and len(parts) > 3:
        return (*parts[:2], ".".join(parts[2:]))
    return parts


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _set_path(data: dict[str, Any], key: tuple[str, ...], value: Any, where: str) -> None:
    node: Any = data
    for depth, part in enumerate(key[:-1]):
        child = node.get(part)
        if child is None:
            child = {}
            node[part] = child
        if not isinstance(child, dict):
            raise ConfigError(f"{'.'.join(key[: depth + 1])} is a value, not a section", source=where)
        node = child
    node[key[-1]] = value


def _loc_path(loc: tuple[Any, ...], data: Mapping[str, Any]) -> tuple[str, ...]:
    """Drop pydantic's union tags (`model.mlp.dropout` -> `model.dropout`)."""
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] == "model" and parts[1] in MODEL_FAMILY_NAMES:
        family = data.get("model", {}).get("family", "mlp") if isinstance(data.get("model"), dict) else "mlp"
        if parts[1] == family:
            parts.pop(1)
    # pydantic's validator and union-member locs carry tags (`function-after[...]`, `int`,
    # `constrained-int`, `literal['auto']`); keep real keys only.
    return tuple(p for p in parts if not p.startswith(("function-", "literal[")) and p not in _UNION_MEMBERS)


def _value_at(data: Any, key: tuple[str, ...]) -> Any:
    node = data
    for part in key:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _allowed_keys(key: tuple[str, ...], data: Mapping[str, Any]) -> list[str]:
    """Field names of the section that holds `key` (for unknown-key hints)."""
    model: type[BaseModel] | None = Experiment
    for depth, part in enumerate(key[:-1]):
        if model is None:
            return []
        if part == "model" and depth == 0:
            family = _value_at(data, ("model", "family")) or "mlp"
            model = FAMILY_MODELS.get(str(family))
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return sorted(model.model_fields) if model is not None else []


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_SECTIONS = frozenset({"data", "task", "model", "train", "search", "resources", "final"})
_UNION_MEMBERS = frozenset({"int", "float", "str", "bool", "constrained-int", "constrained-float"})
_BOUND_ERRORS = frozenset(
    {"greater_than", "greater_than_equal", "less_than", "less_than_equal",
     "string_too_short", "string_too_long", "too_short", "too_long"}
)


def _one_line_error(
    exc: ValidationError,
    data: Mapping[str, Any],
    source: str,
    lines: Mapping[tuple[str, ...], int],
    origin: Mapping[tuple[str, ...], str],
) -> ConfigError:
    errors = exc.errors(include_url=False)
    err = errors[0]
    key = _loc_path(tuple(err["loc"]), data)
    dotted = ".".join(key) if key else "(top level)"
    kind = err["type"]
    given = err.get("input")
    msg = str(err.get("msg", "invalid value"))

    if kind == "extra_forbidden":
        allowed = _allowed_keys(key, data)
        hint = difflib.get_close_matches(key[-1], allowed, n=2)
        text = f"unknown key {key[-1]!r}"
        if hint:
            text += f" (did you mean {' or '.join(hint)}?)"
        if allowed:
            text += f"; allowed: {', '.join(allowed)}"
    elif kind == "union_tag_invalid":
        tag = _value_at(data, (*key, "family")) if key else None
        key = (*key, "family")  # the line to edit is the family's, not the section's
        dotted = ".".join(key)
        text = f"unknown family {tag!r}; choose one of {', '.join(MODEL_FAMILY_NAMES)}"
    elif kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        text = f"got {_short(given)}; choose one of {expected.replace(' or ', ', ').replace(chr(39), '')}"
    elif kind in ("int_parsing", "int_type", "int_from_float"):
        words = [e["ctx"]["expected"].replace(chr(39), "") for e in errors[1:]  # `int | Literal[...]`: its words
                 if e["type"] == "literal_error" and _loc_path(tuple(e["loc"]), data) == key]
        text = f"expected an integer{''.join(f' or {w}' for w in words)}, got {_short(given)}"
    elif kind == "finite_number":
        text = f"expected a finite number, got {_short(given)}"
    elif kind in ("float_parsing", "float_type"):
        text = f"expected a number, got {_short(given)}"
    elif kind in ("bool_parsing", "bool_type"):
        text = f"expected true or false, got {_short(given)}"
    elif kind in ("string_type",):
        text = f"expected a string, got {_short(given)}"
    elif kind in ("list_type", "tuple_type"):
        text = f"expected a list, got {_short(given)}"
    elif kind in ("dict_type", "model_type", "model_attributes_type"):
        text = f"expected a mapping of keys, got {_short(given)}"
    elif kind == "missing":
        text = "is required and missing"
    elif kind == "value_error":
        text = msg.removeprefix("Value error, ")
        # Cross-field validators start their message with the field they blame ("nesterov: ...").
        head, sep, rest = text.partition(": ")
        if sep and head.isidentifier() and " " not in head:
            key = (*key, head)
            dotted = ".".join(key)
            text = rest
    elif kind in _BOUND_ERRORS:
        text = f"{msg.lower()}, got {_short(given)}"
    else:
        text = f"{msg}, got {_short(given)}"

    # Union members each complain; keep to the first, but say a union was involved cleanly.
    where = source
    for over_key, over_source in origin.items():
        if key and over_key[: len(key)] == key:
            where = over_source
    # An override replaces the whole value at its key, so it wins over any file line below it.
    blamed = [key[:depth] for depth in range(len(key), 0, -1) if key[:depth] in origin]
    located = [key[:depth] for depth in range(len(key), 0, -1) if key[:depth] in lines]
    if blamed:
        where = origin[blamed[0]]
    elif located:
        where = f"{source}:{lines[located[0]]}"
    return ConfigError(text, key=dotted, source=where)
