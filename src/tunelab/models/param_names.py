"""Readable names for a model's parameters, for the gradient-norm records and the report's legends.

`named_parameters()` says `0.weight` or `layers.4.bias`: module indices that shift with every
LayerNorm or Dropout and tell a reader nothing. Here each parameter is named by its role in the
model's structure: `hidden 1 Linear.weight`, `hidden 1 LayerNorm.bias`, `conv 2 Conv2d.weight`,
`block 3 shortcut Conv2d.weight`, `output Linear.bias`. Names keep the `.weight` / `.bias` ending
(the gradient rules tell weights from biases by it) and are unique within a model.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn

CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
Owner = tuple[str, nn.Module]  # (dotted path, a module that holds parameters itself)


def _owners(module: nn.Module, prefix: str = "") -> list[Owner]:
    """Modules holding parameters of their own, in the order `named_parameters` lists them."""
    return [(path, m) for path, m in module.named_modules(prefix=prefix, remove_duplicate=False)
            if next(m.parameters(recurse=False), None) is not None]


def _is_primary(module: nn.Module) -> bool:
    return isinstance(module, (nn.Linear, nn.Embedding, *CONV))


def _role_names(owners: list[Owner], blocks: dict[str, str], output: str | None) -> dict[str, str]:
    """Path of each owner -> its label: `hidden k` / `output` / `conv k` / `embedding k`; a norm or
    other helper takes the label of the layer before it; inside a block, `block k <attribute>`."""
    counts = {"hidden": 0, "conv": 0, "embedding": 0}
    labels: dict[str, str] = {}
    last, in_block = "input", False
    for path, module in owners:
        block = next((b for b in blocks if path.startswith(b + ".")), None)
        if block is not None:
            in_block = True
            inner = [p for p in path[len(block) + 1:].split(".") if not p.isdigit()]
            labels[path] = " ".join([blocks[block], *inner])
            continue
        if path == output:
            last = "output"
        elif _is_primary(module):
            kind = "conv" if isinstance(module, CONV) else "embedding" if isinstance(module, nn.Embedding) else "hidden"
            if kind == "conv" and blocks and not in_block:  # before the residual blocks
                kind = "stem"
                counts.setdefault(kind, 0)
            counts[kind] += 1
            last = f"{kind} {counts[kind]}"
        labels[path] = last
    return labels


def _blocks(part: nn.Module, prefix: str) -> dict[str, str]:
    """Custom modules that are elements of a sequence (a ResNet's residual blocks): path -> `block k`."""
    found: dict[str, str] = {}
    for path, m in part.named_modules(prefix=prefix):
        tail = path.rsplit(".", 1)[-1]
        inside = any(path.startswith(b + ".") for b in found)
        if tail.isdigit() and not inside and not isinstance(m, CONTAINERS) and not _is_primary(m) \
                and len(_owners(m)) > 1:
            found[path] = f"block {len(found) + 1}"
    return found


def _parts(model: nn.Module) -> Iterator[tuple[str, str, nn.Module]]:
    """(label, path prefix, module): the whole model, or a custom model's sub-modules one by one."""
    if isinstance(model, CONTAINERS) or not list(model.children()):
        yield "", "", model
        return
    for name, child in model.named_children():
        if _owners(child):
            yield name, name, child


def param_names(model: nn.Module) -> dict[str, str]:
    """`named_parameters()` name -> readable name, for every parameter of `model`."""
    labels: dict[str, str] = {}
    parts = list(_parts(model))
    last = next(((p, m) for p, m in reversed(_owners(model)) if _is_primary(m)), None)
    output = last[0] if last and isinstance(last[1], nn.Linear) else None  # a plain Linear ends the model
    for label, prefix, part in parts:
        owners = _owners(part, prefix)
        if isinstance(part, CONTAINERS) or not label:
            found = _role_names(owners, _blocks(part, prefix), output)
            holds_output = any(path == output for path, _ in owners)
            lead = "" if holds_output or len(parts) == 1 else f"{label} "
            labels.update({path: lead + text for path, text in found.items()})
        else:  # a custom or pretrained sub-module: its own attribute names are the readable ones
            labels.update({path: " ".join([label, path[len(label) + 1:]]).strip() for path, _ in owners})
    root_own = [name for name, _ in model.named_parameters(recurse=False)]
    names: dict[str, str] = {name: name for name in root_own}
    for path, module in _owners(model):
        if path == "":
            continue
        for pname, _ in module.named_parameters(recurse=False):
            names[f"{path}.{pname}"] = f"{labels.get(path, path)} {type(module).__name__}.{pname}"
    return _unique(names)


def _unique(names: dict[str, str]) -> dict[str, str]:
    """Any clash (two unlabelled helpers after one layer, say) falls back to the raw name in brackets."""
    seen: dict[str, int] = {}
    for text in names.values():
        seen[text] = seen.get(text, 0) + 1
    return {raw: text if seen[text] == 1 else f"{text} [{raw}]" for raw, text in names.items()}
