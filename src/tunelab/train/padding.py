"""MLPs of one depth but different hidden widths in one vectorized stack, each member exact.

Every member is copied into zero-padded layers of the group's widest width per layer. The
stacked forward multiplies each padded Linear's input by the member's unit mask (1 for its real
units, 0 for the padding), so a padded unit never reaches the output, and its incoming and
outgoing weights get exactly zero gradients, whatever the activation gives at 0. Zero weights
with zero gradients stay zero under Adam, AdamW (decay of a zero is zero), SGD with momentum and
gradient clipping (zeros add nothing to a norm), so a member follows its own trajectory: its
losses and weights equal the member trained alone to float rounding (sums over more, zero,
terms). Dropout masks are drawn at the member's real width from its own generator, as alone.

What pads: only nn.Linear widths; LayerNorm (its statistics would include the padding) and
convolutions refuse. When it pays is `pad_stacks`' rule: a stack's padded FLOPs (members x the
widest widths' multiply-adds) at most `PAD_FLOPS_LIMIT` x the members' own.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from tunelab.config.model_sections import MLPModel

PAD_FLOPS_LIMIT = 1.5  # padded FLOPs / the members' own FLOPs, at most: the one threshold
_WIDTH_KEYS = ("hidden_dims", "hidden_dim", "num_layers", "hidden_dim_ratio")


@dataclass
class Padded:
    """Zero-padded copies of K members plus what the stack needs to keep them exact."""

    models: list[nn.Sequential]  # one per member, every layer at the group's widest width
    real_shapes: list[list[tuple[int, ...]]]  # each member's own parameter shapes
    in_masks: dict[int, torch.Tensor]  # Linear position -> (K, 1, in_features) 0/1 unit mask
    widths: dict[int, list[int]]  # position -> each member's real feature count after that layer


def _plain(model: nn.Module) -> list[nn.Module]:
    return [layer for layer in model if not isinstance(layer, nn.Dropout)]  # type: ignore[attr-defined]


def pad_error(models: Sequence[nn.Module]) -> str | None:
    """None when these Sequentials differ only in their Linear widths (same depth, same layers,
    same input and output), so `pad_models` can stack them; else why not."""
    ref = _plain(models[0])
    for i, model in enumerate(models[1:], start=1):
        layers = _plain(model)
        if len(layers) != len(ref):
            return f"member {i}: different depth (padding needs the same layers)"
        for a, b in zip(ref, layers, strict=True):
            if type(a) is not type(b):
                return f"member {i}: different layers"
            if isinstance(a, (nn.LayerNorm, nn.Conv2d)):
                return f"member {i}: different widths pad only without LayerNorm and convolutions"
            if isinstance(a, nn.Linear):
                if (a.bias is None) != (b.bias is None) or a.weight.dtype != b.weight.dtype:
                    return f"member {i}: different Linear layers"
            elif repr(a) != repr(b):
                return f"member {i}: different layers"
        linears, ref_linears = _linears(layers), _linears(ref)
        if not ref_linears or linears[0].in_features != ref_linears[0].in_features \
                or linears[-1].out_features != ref_linears[-1].out_features:
            return f"member {i}: different input or output width"
    return None


def _linears(layers: Sequence[nn.Module]) -> list[nn.Linear]:
    return [layer for layer in layers if isinstance(layer, nn.Linear)]


def pad_models(models: Sequence[nn.Module]) -> Padded:
    """Zero-padded copies of `models` (checked by `pad_error`), sharing no tensor with them.

    The copies are made without drawing random numbers, so the members' dropout streams and
    the global RNG are untouched."""
    plains = [_plain(m) for m in models]
    positions = [j for j, layer in enumerate(plains[0]) if isinstance(layer, nn.Linear)]
    widest = {j: (max(p[j].in_features for p in plains), max(p[j].out_features for p in plains)) for j in positions}
    padded, real_shapes = [], []
    for model in models:
        plain = _plain(model)
        own = [_pad_linear(plain[j], *widest[j]) for j in positions]
        out, at = [], 0
        for layer in model:  # type: ignore[attr-defined]
            if isinstance(layer, nn.Linear):
                out.append(own[at])
                at += 1
            else:
                out.append(layer)
        padded.append(nn.Sequential(*out))
        real_shapes.append([tuple(p.shape) for p in model.parameters()])
    in_masks: dict[int, torch.Tensor] = {}
    widths: dict[int, list[int]] = {}
    current = [0] * len(models)
    for j, layer in enumerate(plains[0]):
        if isinstance(layer, nn.Linear):
            ins = [p[j].in_features for p in plains]
            if min(ins) < widest[j][0]:
                in_masks[j] = torch.stack([_units(n, widest[j][0]) for n in ins]).unsqueeze(1)
            current = [p[j].out_features for p in plains]
        if min(current, default=0) and min(current) < max(current):
            widths[j] = list(current)
    return Padded(padded, real_shapes, in_masks, widths)


def _units(n: int, width: int) -> torch.Tensor:
    mask = torch.zeros(width)
    mask[:n] = 1.0
    return mask


def _pad_linear(layer: nn.Linear, width_in: int, width_out: int) -> nn.Linear:
    wide = nn.utils.skip_init(nn.Linear, width_in, width_out, bias=layer.bias is not None, dtype=layer.weight.dtype)
    with torch.no_grad():
        wide.weight.zero_()
        wide.weight[: layer.out_features, : layer.in_features] = layer.weight
        if layer.bias is not None:
            wide.bias.zero_()
            wide.bias[: layer.out_features] = layer.bias
    return wide


def real_part(padded: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """The member's own block of one padded parameter (a view)."""
    return padded[tuple(slice(0, n) for n in shape)]


def pad_stacks(members: Mapping[str, int]) -> dict[str, str]:
    """Which exact-shape groups train in one padded stack: maps every group key (with its member
    count) to the key of the stack it joins (its own when it trains unpadded).

    Keys that `pad_key` reads (mlp without LayerNorm) of one depth and one recipe are sorted by
    their FLOPs and joined greedily while the stack's padded FLOPs stay within `PAD_FLOPS_LIMIT`
    x the members' own; any other key stays itself."""
    out = {key: key for key in members}
    by_base: dict[str, list[tuple[int, str, list[int]]]] = {}
    for key in members:
        parsed = pad_key(key)
        if parsed is not None:
            base, dims = parsed
            by_base.setdefault(base, []).append((_flops(dims), key, dims))
    for entries in by_base.values():
        stack: list[tuple[str, list[int]]] = []
        for _, key, dims in sorted(entries):
            if stack and padding_ratio([(members[k], d) for k, d in [*stack, (key, dims)]]) > PAD_FLOPS_LIMIT:
                stack = []
            stack.append((key, dims))
            out[key] = stack[0][0]
    return out


def keys_ratio(members: Mapping[str, int]) -> float:
    """`padding_ratio` of group keys (with their member counts) that `pad_key` reads; 1.0 for
    one key, infinity when one of several keys cannot pad."""
    if len(members) < 2:
        return 1.0
    parsed = [(n, pad_key(key)) for key, n in members.items()]
    if any(p is None for _, p in parsed) or len({p[0] for _, p in parsed if p}) > 1:
        return math.inf
    return padding_ratio([(n, p[1]) for n, p in parsed if p])


def padding_ratio(groups: Sequence[tuple[int, Sequence[int]]]) -> float:
    """Padded FLOPs over the members' own, for (members, layer widths [in, hidden..., out]) groups."""
    widest = [max(dims[i] for _, dims in groups) for i in range(len(groups[0][1]))]
    own = sum(n * _flops(dims) for n, dims in groups)
    return sum(n for n, _ in groups) * _flops(widest) / max(own, 1)


def _flops(dims: Sequence[int]) -> int:
    """Multiply-adds of one row through Linear layers of these widths."""
    return sum(a * b for a, b in itertools.pairwise(dims))


def pad_key(key: str) -> tuple[str, list[int]] | None:
    """(the key without its widths, its layer widths [in, hidden..., out]) for a group key
    (`grouping.group_key`) that may pad, else None."""
    try:
        parts = json.loads(key)
        name, data_hash, rows, model, train, io = parts
    except (ValueError, TypeError):
        return None
    if not isinstance(model, dict) or model.get("family") != "mlp" or model.get("layer_norm"):
        return None
    hidden = MLPModel.model_validate(model).resolved_hidden_dims()
    shape = {k: v for k, v in model.items() if k not in _WIDTH_KEYS}
    base = json.dumps([name, data_hash, rows, shape, train, io, len(hidden)], sort_keys=True)
    return base, [io[0], *hidden, io[1]]
