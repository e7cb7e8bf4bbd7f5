"""Write docs/experiment-reference.md from the pydantic models of `tunelab.config.schema`.

Every section, key, type, default, bound or choice and description comes from the models, so
the page cannot drift from what the loader accepts. Regenerate it with:

    python -m tunelab.docs_reference > docs/experiment-reference.md
"""

from __future__ import annotations

import sys
import types
import typing
from collections.abc import Iterator
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from tunelab.config import schema
from tunelab.config.model_sections import FAMILY_MODELS
from tunelab.config.vocabulary import MODEL_FAMILY_NAMES

REGENERATE = "python -m tunelab.docs_reference > docs/experiment-reference.md"

_INTRO = f"""\
# Experiment file reference

<!-- Generated from src/tunelab/config/schema.py; do not edit by hand. Regenerate with:
     {REGENERATE} -->

An experiment file is YAML with the sections below; every key is optional and takes the
default shown. Unknown keys, wrong types, out-of-range values and cross-field mistakes are each
a one-line error naming the file, line and key path (exit code 2, nothing written). Any key can
be overridden from the command line with `--set key.path=value`; the value is read as YAML.

`tunelab tune`/`train` write the resolved file, every default filled in, to the run folder's
`experiment.yaml`.
"""

_QUICK = """\
## `quick` (not part of the experiment)

A top-level mapping of `key.path: value` overrides, applied by `tunelab tune EXP --quick`
(`tunelab train EXP --quick`, `tunelab.tune(..., quick=True)`) before any `--set`. Without
`--quick` it is ignored and never reaches `experiment.yaml`. A search-space entry keeps its own
dots: `search.space.train.epochs: [1, 2]` replaces the space entry `train.epochs`. A bad key or
value is reported as `file:line quick.<key>: ...`.

```yaml
quick:
  train.epochs: 2
  search.n_trials: 3
  search.seeds: 1
```
"""


def _literal_choices(annotation: Any) -> list[Any] | None:
    if get_origin(annotation) is Literal:
        return list(get_args(annotation))
    return None


def _bounds(metadata: list[Any]) -> list[str]:
    out = []
    for item in metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            value = getattr(item, attr, None)
            if isinstance(item, annotated_types.BaseMetadata) and value is not None:
                out.append(f"{sign} {_plain(value)}")
        if isinstance(item, annotated_types.MinLen) and item.min_length:
            out.append(f"length ≥ {item.min_length}")
        if isinstance(item, annotated_types.MaxLen):
            out.append(f"length ≤ {item.max_length}")
    return out


def _plain(value: Any) -> str:
    """A value as it is written in YAML."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1e5:
        return f"{value:.0e}".replace("e+0", "e").replace("e+", "e")
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{}" if not value else "{" + ", ".join(f"{k}: {_plain(v)}" for k, v in value.items()) + "}"
    return str(value)


def _type_text(annotation: Any) -> str:
    """A type as a reader of YAML thinks of it: `int`, `list of int (≥ 1)`, `int or full`."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *meta = get_args(annotation)
        bounds = [b for m in meta for b in _bounds(list(getattr(m, "metadata", [])) or [m])]
        return _type_text(base) + (f" ({', '.join(bounds)})" if bounds else "")
    if origin is Literal:
        choices = get_args(annotation)
        text = " / ".join(f"`{_plain(v)}`" for v in choices)
        return f"({text})" if len(choices) > 2 else text
    if origin in (Union, types.UnionType):
        args = get_args(annotation)
        parts = [_type_text(a) for a in args if a is not type(None)]
        return " or ".join(parts) + (" or null" if type(None) in args else "")
    if origin is list:
        (item,) = get_args(annotation)
        return f"list of {_type_text(item)}"
    if origin is tuple:
        return "[" + ", ".join(_type_text(a) for a in get_args(annotation)) + "]"
    if origin is dict:
        return "mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    if annotation is typing.Any:
        return "any"
    return getattr(annotation, "__name__", str(annotation))


def _default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(section)"
    return f"`{_plain(value)}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _section_table(model: type[BaseModel], prefix: str) -> Iterator[str]:
    yield "| key | type | default | allowed | description |"
    yield "|---|---|---|---|---|"
    for name, field in model.model_fields.items():
        annotation = field.annotation
        choices = _literal_choices(annotation)
        allowed = _bounds(list(field.metadata))
        if choices is not None:
            type_text = "choice"
            allowed = [", ".join(f"`{_plain(c)}`" for c in choices)]
        else:
            type_text = _type_text(annotation)
        nested = _nested_model(annotation)
        description = field.description or ""
        if nested is not None:
            description = (description + f" See `{_child_prefix(prefix, name, annotation)[:-1]}` below.").strip()
        row = [f"`{prefix}{name}`", type_text, _default_text(field), ", ".join(allowed), description]
        yield "| " + " | ".join(_cell(c) for c in row) + " |"


def _child_prefix(prefix: str, name: str, annotation: Any) -> str:
    """`search.stages[].` for a list of sections, `train.early_stopping.` for one section."""
    return f"{prefix}{name}[]." if _is_list(annotation) else f"{prefix}{name}."


def _is_list(annotation: Any) -> bool:
    return get_origin(annotation) is list or any(_is_list(a) for a in get_args(annotation))


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def _doc(model: type[BaseModel]) -> str:
    return " ".join((model.__doc__ or "").split())


def _model_families() -> list[type[BaseModel]]:
    """The members of the `model` tagged union, in the order of MODEL_FAMILY_NAMES."""
    return [FAMILY_MODELS[name] for name in MODEL_FAMILY_NAMES if name in FAMILY_MODELS]


def _render_model(model: type[BaseModel], title: str, prefix: str, level: int) -> Iterator[str]:
    yield f"{'#' * level} {title}"
    yield ""
    if _doc(model):
        yield _doc(model)
        yield ""
    yield from _section_table(model, prefix)
    yield ""
    for name, field in model.model_fields.items():
        nested = _nested_model(field.annotation)
        if nested is not None:
            child = _child_prefix(prefix, name, field.annotation)
            yield from _render_model(nested, f"`{child[:-1]}`", child, level + 1)


def render_reference() -> str:
    """The whole reference page as Markdown."""
    lines = [_INTRO]
    top = schema.Experiment
    lines.append("## Top level")
    lines.append("")
    lines.append(_doc(top))
    lines.append("")
    lines.append("| key | type | default | allowed | description |")
    lines.append("|---|---|---|---|---|")
    scalars = {n: f for n, f in top.model_fields.items() if n not in ("model",) and _nested_model(f.annotation) is None}
    for name, field in scalars.items():
        allowed = ", ".join(_bounds(list(field.metadata)))
        row = [f"`{name}`", _type_text(field.annotation), _default_text(field), allowed, field.description or ""]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    lines.append("")
    for name, field in top.model_fields.items():
        if name == "model":
            lines.append("## `model`")
            lines.append("")
            families = ", ".join(f"`{n}`" for n in MODEL_FAMILY_NAMES)
            lines.append(
                f"One of several families, chosen by `model.family` ({families}; default `mlp`); "
                "each family accepts only its own keys."
            )
            lines.append("")
            for family in _model_families():
                tag = family.model_fields["family"].default
                lines.extend(_render_model(family, f"`model.family: {tag}`", "model.", 3))
            continue
        nested = _nested_model(field.annotation)
        if nested is not None:
            lines.extend(_render_model(nested, f"`{name}`", f"{name}.", 2))
    lines.append(_QUICK)
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> None:
    sys.stdout.write(render_reference())


if __name__ == "__main__":
    main()
