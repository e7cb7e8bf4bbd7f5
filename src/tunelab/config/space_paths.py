"""Key paths of an experiment for the search space: which exist, their base values, and setting them.

`tunelab.config.space` parses a space on top of these; `apply_params` turns one trial's
`{key path: value}` into a new validated `Experiment`.
"""

from __future__ import annotations

import copy
import difflib
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from tunelab.config.load import validate_experiment
from tunelab.config.model_sections import FAMILY_MODELS
from tunelab.config.schema import DataSection, Experiment, MLPModel, TaskSection, TrainSection

# Only these sections describe one configuration; search/final/name steer the study itself.
SEARCHABLE_SECTIONS: tuple[str, ...] = ("data", "task", "model", "train")
_SECTIONS: dict[str, type[BaseModel]] = {"data": DataSection, "task": TaskSection, "train": TrainSection}


def _section_type(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _is_free_mapping(annotation: Any) -> bool:
    """A `dict[str, Any]` field (python model `params`): any sub-key may be set."""
    return annotation is dict or typing.get_origin(annotation) is dict


def _section_models(section: str, families: Sequence[str]) -> list[type[BaseModel]]:
    if section == "model":
        return [FAMILY_MODELS[f] for f in families if f in FAMILY_MODELS]
    return [_SECTIONS[section]] if section in _SECTIONS else []


def _leaves(model: type[BaseModel], prefix: str) -> Iterable[str]:
    for name, field in model.model_fields.items():
        sub = _section_type(field.annotation)
        if sub is not None:
            yield from _leaves(sub, f"{prefix}.{name}")
        else:
            yield f"{prefix}.{name}"


def leaf_paths(families: Sequence[str]) -> list[str]:
    """Every searchable key path (in schema order) for a model of one of `families`."""
    out: list[str] = []
    for section in SEARCHABLE_SECTIONS:
        for model in _section_models(section, families):
            out.extend(p for p in _leaves(model, section) if p not in out)
    return out


def did_you_mean(path: str, candidates: Sequence[str]) -> str:
    """` (did you mean train.lr?)` for a slip, or an empty string."""
    last = path.split(".")[-1]
    hints = [c for c in candidates if c.split(".")[-1] == last]
    hints += [c for c in difflib.get_close_matches(path, candidates, n=2, cutoff=0.7) if c not in hints]
    if not hints:
        by_last = {c.split(".")[-1]: c for c in candidates}
        hints = [by_last[m] for m in difflib.get_close_matches(last, list(by_last), n=2)]
    return f" (did you mean {' or '.join(hints[:2])}?)" if hints else ""


def path_problem(path: str, families: Sequence[str]) -> str | None:
    """Why `path` cannot be searched for these model families, or None when it can."""
    parts = path.split(".")
    if parts[0] not in SEARCHABLE_SECTIONS or len(parts) < 2 or not all(parts):
        if parts[0] in Experiment.model_fields and parts[0] not in SEARCHABLE_SECTIONS:
            return f"{parts[0]} cannot be searched; search keys of {', '.join(SEARCHABLE_SECTIONS)}"
        if parts[0] in SEARCHABLE_SECTIONS and len(parts) == 1:
            return f"{path} is a section; search one of its keys{did_you_mean(path, leaf_paths(families))}"
        return f"unknown key path{did_you_mean(path, leaf_paths(families))}"
    models = _section_models(parts[0], families)
    if not any(_has_path(model, parts[1:]) for model in models):
        where = (
            f"model family {', '.join(families)} has no key {'.'.join(parts[1:])}"
            if parts[0] == "model"
            else ("unknown key path")
        )
        return f"{where}{did_you_mean(path, leaf_paths(families))}"
    if any(_is_section(model, parts[1:]) for model in models):
        return f"{path} is a section; search one of its keys{did_you_mean(path, leaf_paths(families))}"
    return None


def _has_path(model: type[BaseModel], parts: Sequence[str]) -> bool:
    field = model.model_fields.get(parts[0])
    if field is None:
        return False
    if len(parts) == 1:
        return True
    sub = _section_type(field.annotation)
    if sub is not None:
        return _has_path(sub, parts[1:])
    return _is_free_mapping(field.annotation)


def _is_section(model: type[BaseModel], parts: Sequence[str]) -> bool:
    field = model.model_fields.get(parts[0])
    if field is None:
        return False
    sub = _section_type(field.annotation)
    if len(parts) == 1:
        return sub is not None
    return sub is not None and _is_section(sub, parts[1:])


def families_with(path: str, families: Sequence[str]) -> list[str]:
    """The families among `families` whose model section has this `model.*` path."""
    parts = path.split(".")
    return [f for f in families if _has_path(FAMILY_MODELS[f], parts[1:])]


def read_path(data: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path of dumped experiment data; a missing model key reads its family default."""
    node: Any = data
    parts = path.split(".")
    for part in parts:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
            continue
        if parts[0] == "model" and len(parts) == 2:
            family = data.get("model", {}).get("family", "mlp")
            field = FAMILY_MODELS.get(family, MLPModel).model_fields.get(parts[1])
            if field is not None and not field.is_required():
                return copy.deepcopy(field.get_default(call_default_factory=True))
        return None
    return copy.deepcopy(node)


def set_params(data: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Dumped experiment data with `params` set; a `model.family` change keeps only the new family's keys."""
    family = params.get("model.family")
    model = data.get("model", {})
    if family is not None and family != model.get("family"):
        fields = FAMILY_MODELS[family].model_fields if family in FAMILY_MODELS else {}
        data["model"] = {"family": family, **{k: v for k, v in model.items() if k in fields and k != "family"}}
    for path, value in params.items():
        if path == "model.family":
            continue
        node = data
        parts = path.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = copy.deepcopy(value)
    return data


def apply_params(exp: Experiment, params: Mapping[str, Any]) -> Experiment:
    """A new validated experiment with each dotted key path of `params` set to its value.

    Raises:
        ConfigError: the resulting experiment is invalid (the key names the offending field).
    """
    data = set_params(exp.model_dump(mode="json"), params)
    return validate_experiment(data)
