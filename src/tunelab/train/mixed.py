"""MLP-like members of different shapes in one vectorized stack, each member exact.

Members built as Linear -> [LayerNorm] -> activation -> [Dropout] per hidden layer, then an
output Linear (`mlp`, a frozen `encoder_head`'s head) may differ in hidden widths, depth,
activation and LayerNorm. Each is copied into a template of the group's deepest shape: layer b
of the template holds every member's hidden layer b, zero-padded to the widest width there.

- Widths: the stacked forward multiplies each padded Linear's input by the member's unit mask
  (1 for its real units, 0 for the padding), so a padded unit never reaches the output and its
  incoming and outgoing weights get exactly zero gradients, whatever the activation gives at 0.
  A LayerNorm whose members differ in width takes its mean and variance over each member's real
  units only and zeroes the rest before its (padded) affine parameters.
- Activations: each member's own, applied to runs of members that share it.
- Depth: a member with fewer hidden layers has its output Linear right after its last hidden
  layer (the template holds one output Linear per depth present) and passes its output through
  the deeper layers (and a member without LayerNorm its input through the LayerNorms)
  untouched: the stack copies its input past the layer (the layer runs only on the members that
  have it), so no float changes; those layers' weights for the member are zeros that get zero
  gradients and are never part of the member's own parameters. `stack_order` puts members of
  one depth, activation and LayerNorm next to each other, so each layer runs as few calls.

Zero weights with zero gradients stay zero under Adam, AdamW (decay of a zero is zero), SGD with
momentum and gradient clipping (zeros add nothing to a norm), so a member follows its own
trajectory: its losses and weights equal the member trained alone to float rounding (sums over
more, zero, terms). Dropout masks are drawn at the member's real width from its own generator, as
alone. Its checkpoints, records and written-back weights hold only its own parameters (`own`).
When packing pays is train/padding.py's rule.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from tunelab.models.activations import ACTIVATION_MODULES

_ACTIVATIONS = tuple(ACTIVATION_MODULES.values())
Slot = tuple[str, int]  # ("flatten" | "linear" | "norm" | "act" | "head", hidden layer)
INPUT: Slot = ("input", -1)  # dropout on the input itself (an encoder head's pooled vector)


@dataclass
class Padded:
    """Template-shaped copies of K members plus what the stack needs to keep them exact."""

    models: list[nn.Sequential]  # one per member, every layer at the template's width
    own: list[list[int]]  # member -> the template parameter index of each of its own parameters
    real_shapes: list[list[tuple[int, ...]]]  # member -> its own parameter shapes (order of `own`)
    in_masks: dict[int, torch.Tensor] = field(default_factory=dict)  # Linear position -> (K, 1, width) 0/1
    widths: dict[int, list[int]] = field(default_factory=dict)  # position -> each member's real width after it
    skip: dict[int, list[bool]] = field(default_factory=dict)  # position -> members it leaves untouched
    acts: dict[int, list[nn.Module]] = field(default_factory=dict)  # position -> each member's activation
    widen: dict[int, int] = field(default_factory=dict)  # a shallower member's output Linear -> the width after it


@dataclass
class _Shape:
    """One member read as an MLP: its layers by slot and its dropout rates by the slot they follow."""

    layers: dict[Slot, nn.Module]
    depth: int
    drops: dict[Slot, float]


def _read(model: nn.Module) -> _Shape | str:
    """The member's layers by slot, or why it is not an MLP-like Sequential."""
    layers: dict[Slot, nn.Module] = {}
    drops: dict[Slot, float] = {}
    last, depth = INPUT, 0
    plain = [layer for layer in model if not isinstance(layer, nn.Dropout)]  # type: ignore[attr-defined]
    for i, layer in enumerate(model):  # type: ignore[attr-defined]
        if isinstance(layer, nn.Dropout):
            drops[last] = float(layer.p)
            continue
        is_head = layer is plain[-1]
        if isinstance(layer, nn.Flatten) and last == INPUT:
            slot: Slot = ("flatten", -1)
        elif isinstance(layer, nn.Linear):
            slot = ("head", depth - 1) if is_head else ("linear", depth)
            depth += 0 if is_head else 1
        elif isinstance(layer, nn.LayerNorm) and last[0] == "linear":
            slot = ("norm", depth - 1)
        elif isinstance(layer, _ACTIVATIONS) and last[0] in ("linear", "norm"):
            slot = ("act", depth - 1)
        else:
            return f"layer {i} ({type(layer).__name__}) is not Linear -> [LayerNorm] -> activation"
        layers[slot], last = layer, slot
    if last != ("head", depth - 1) or any(("act", b) not in layers for b in range(depth)):
        return "not Linear -> [LayerNorm] -> activation per hidden layer, then a Linear"
    return _Shape(layers, depth, drops)


def pad_error(models: Sequence[nn.Module]) -> str | None:
    """None when these Sequentials are MLPs of one input and output that `pad_models` can stack
    (widths, depth, activation and LayerNorm may differ); else why not."""
    shapes = [_read(m) for m in models]
    for i, shape in enumerate(shapes):
        if isinstance(shape, str):
            return f"member {i}: different shapes stack only as MLPs: {shape}"
    ref = shapes[0]
    assert isinstance(ref, _Shape)
    for i, shape in enumerate(shapes[1:], start=1):
        assert isinstance(shape, _Shape)
        if (("flatten", -1) in shape.layers) != (("flatten", -1) in ref.layers):
            return f"member {i}: different input layers"
        linears = [(x.in_features, x.bias is None, x.weight.dtype) for x in _of(shape, nn.Linear)]
        ref_linears = [(x.in_features, x.bias is None, x.weight.dtype) for x in _of(ref, nn.Linear)]
        if linears[0] != ref_linears[0] or {x[1:] for x in linears} != {ref_linears[0][1:]}:
            return f"member {i}: different input width or Linear layers"
        if _head(shape).out_features != _head(ref).out_features:
            return f"member {i}: different output width"
        norms = {(n.eps, n.elementwise_affine, n.bias is not None) for s in (ref, shape) for n in _of(s, nn.LayerNorm)}
        if len(norms) > 1 or any(not affine or not bias for _, affine, bias in norms):
            return f"member {i}: LayerNorms differ (or lack affine parameters)"
    shallow = min(s.depth for s in shapes)  # type: ignore[union-attr]
    if shallow == 0 and ref_linears[0][0] < _head(ref).out_features:
        return "a linear member (no hidden layer) pads only with an input at least as wide as the output"
    return None


def _head(shape: _Shape) -> nn.Linear:
    return shape.layers[("head", shape.depth - 1)]  # type: ignore[return-value]


def _of(shape: _Shape, kind: type) -> list:
    return [layer for layer in shape.layers.values() if isinstance(layer, kind)]


def stack_order(models: Sequence[nn.Module]) -> list[int]:
    """An order of the members that keeps those of one depth, activation and LayerNorm next to
    each other (deepest first), so the stack applies each layer to few runs of members; the
    given order when they cannot pad."""
    shapes = [_read(m) for m in models]
    if any(isinstance(s, str) for s in shapes):
        return list(range(len(models)))

    def key(i: int) -> tuple:
        shape: _Shape = shapes[i]  # type: ignore[assignment]
        acts = [repr(shape.layers[("act", b)]) for b in range(shape.depth)]
        return (-shape.depth, acts, [("norm", b) in shape.layers for b in range(shape.depth)], i)

    return sorted(range(len(models)), key=key)


def stack_widths(dims: Sequence[Sequence[int]]) -> list[int]:
    """The template's widths [in, hidden..., out] for members' widths [in, hidden..., out]:
    hidden layer b is as wide as the widest member that has it. A shallower member's output
    Linear follows its own last hidden layer, and its output (at least `out` wide) passes
    through the deeper layers untouched."""
    depth = max(len(d) - 2 for d in dims)
    out = dims[0][-1]
    carry = out if min(len(d) - 2 for d in dims) < depth else 1
    hidden = [max([d[1 + b] for d in dims if len(d) - 2 > b] + [carry]) for b in range(depth)]
    return [dims[0][0], *hidden, out]


def stack_flops(dims: Sequence[Sequence[int]]) -> int:
    """Multiply-adds of one row through the template of members of these widths: its hidden
    Linears, and one output Linear after each depth a member has."""
    widths = stack_widths(dims)
    hidden = sum(a * b for a, b in itertools.pairwise(widths[:-1]))
    return hidden + sum(widths[depth] * widths[-1] for depth in {len(d) - 2 for d in dims})


def pad_models(models: Sequence[nn.Module]) -> Padded:
    """Template-shaped copies of `models` (checked by `pad_error`), sharing no tensor with them.

    The copies are made without drawing random numbers, so the members' dropout streams and
    the global RNG are untouched."""
    shapes: list[_Shape] = [_read(m) for m in models]  # type: ignore[misc]
    dims = [[s.layers[("linear", 0) if s.depth else ("head", -1)].in_features]  # type: ignore[union-attr]
            + [s.layers[("linear", b)].out_features for b in range(s.depth)]  # type: ignore[union-attr]
            + [_head(s).out_features] for s in shapes]
    widths = stack_widths(dims)
    depth = len(widths) - 2
    depths = {s.depth for s in shapes}
    slots: list[Slot] = [("flatten", -1)] if ("flatten", -1) in shapes[0].layers else []
    slots += [("head", -1)] if 0 in depths else []
    for b in range(depth):
        norm: list[Slot] = [("norm", b)] if any(("norm", b) in s.layers for s in shapes) else []
        slots += [("linear", b), *norm, ("act", b)] + ([("head", b)] if b + 1 in depths else [])
    padded = Padded([], [], [])
    template: list[str] = []  # parameter names in template order: "<position>.weight"
    for j, slot in enumerate(slots):
        layer = _template_layer(slot, shapes, widths)
        template += [f"{j}.{name}" for name, _ in layer.named_parameters()]
    current = [d[0] for d in dims]
    for j, slot in enumerate(slots):
        kind, b = slot
        active = [slot in s.layers for s in shapes]
        if not all(active) and kind != "flatten":
            padded.skip[j] = [not a for a in active]
        if kind in ("linear", "head"):
            width = widths[b if kind == "linear" else b + 1]
            if min(current) < width:
                padded.in_masks[j] = unit_masks(current, width)[0]
            out = widths[b + 1] if kind == "linear" else widths[-1]
            if kind == "head" and b < depth - 1:  # a shallower member's output: deeper members go on
                out = padded.widen[j] = widths[b + 1]
            current = [s.layers[slot].out_features if on else c  # type: ignore[union-attr]
                       for s, on, c in zip(shapes, active, current, strict=True)]
            if min(current) < out:
                padded.widths[j] = list(current)
        elif kind == "norm" and min(current) < widths[b + 1]:
            padded.widths[j] = list(current)
        elif kind == "act":
            own = [repr(s.layers[slot]) for s, on in zip(shapes, active, strict=True) if on]
            if len(set(own)) > 1:
                first = next(s.layers[slot] for s in shapes if slot in s.layers)
                padded.acts[j] = [s.layers.get(slot, first) for s in shapes]
            if min(current) < widths[b + 1]:
                padded.widths[j] = list(current)
    for shape in shapes:
        model, own = _member_copy(shape, [_template_layer(slot, shapes, widths) for slot in slots], slots, template)
        padded.models.append(model)
        padded.own.append(own)
        padded.real_shapes.append([tuple(p.shape) for slot in slots if slot in shape.layers
                                   for p in shape.layers[slot].parameters()])
    return padded


def _template_layer(slot: Slot, shapes: Sequence[_Shape], widths: Sequence[int]) -> nn.Module:
    kind, b = slot
    first = next(s.layers[slot] for s in shapes if slot in s.layers)
    if kind == "linear":
        return _zeros_linear(first, widths[b], widths[b + 1])  # type: ignore[arg-type]
    if kind == "head":
        return _zeros_linear(first, widths[b + 1], widths[-1])  # type: ignore[arg-type]
    if kind == "norm":
        norm = nn.LayerNorm(widths[b + 1], eps=first.eps, dtype=first.weight.dtype)  # type: ignore[union-attr]
        with torch.no_grad():
            norm.weight.zero_()
            norm.bias.zero_()
        return norm
    return first


def _member_copy(shape: _Shape, layers: Sequence[nn.Module], slots: Sequence[Slot],
                 template: Sequence[str]) -> tuple[nn.Sequential, list[int]]:
    """The member in fresh template `layers` (its own weights in the top-left block of each,
    zeros elsewhere; its own activation), with its dropouts after the slots it has them; and
    where its parameters went."""
    out: list[nn.Module] = [nn.Dropout(shape.drops[INPUT])] if INPUT in shape.drops else []
    own: list[int] = []
    for j, (slot, layer) in enumerate(zip(slots, layers, strict=True)):
        mine = shape.layers.get(slot)
        if mine is not None and slot[0] in ("act", "flatten"):
            layer = mine
        elif mine is not None:
            with torch.no_grad():
                for name, param in layer.named_parameters():
                    value = getattr(mine, name)
                    param[tuple(slice(0, n) for n in value.shape)] = value
                    own.append(template.index(f"{j}.{name}"))
        out.append(layer)
        if slot in shape.drops:
            out.append(nn.Dropout(shape.drops[slot]))
    return nn.Sequential(*out), own


def _zeros_linear(like: nn.Linear, width_in: int, width_out: int) -> nn.Linear:
    wide = nn.utils.skip_init(nn.Linear, width_in, width_out, bias=like.bias is not None, dtype=like.weight.dtype)
    with torch.no_grad():
        wide.weight.zero_()
        if wide.bias is not None:
            wide.bias.zero_()
    return wide


def unit_masks(widths: Sequence[int], width: int, device: torch.device | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, 1, width) 0/1 masks of each member's first `widths[k]` units, and (K, 1, 1) counts."""
    mask = (torch.arange(width).unsqueeze(0) < torch.tensor(widths).unsqueeze(1)).float().unsqueeze(1)
    return mask.to(device), torch.tensor(widths, dtype=torch.float32, device=device).view(-1, 1, 1)


def real_part(padded: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """The member's own block of one padded parameter (a view)."""
    return padded[tuple(slice(0, n) for n in shape)]


def fit_width(h: torch.Tensor, width: int) -> torch.Tensor:
    """`h` cut or zero-padded to `width` features (a member's real units always fit)."""
    if h.shape[-1] >= width:
        return h[..., :width]
    return F.pad(h, (0, width - h.shape[-1]))


def masked_layer_norm(h: torch.Tensor, mask: torch.Tensor, count: torch.Tensor, eps: float) -> torch.Tensor:
    """Layer norm (no affine) of (K, B, width) over each member's real units (`unit_masks`),
    zeros beyond: what `F.layer_norm` gives the member alone, padded."""
    mask, count = mask.to(h.dtype), count.to(h.dtype)
    mean = (h * mask).sum(-1, keepdim=True) / count
    centred = (h - mean) * mask
    var = (centred * centred).sum(-1, keepdim=True) / count
    return centred * torch.rsqrt(var + eps)
