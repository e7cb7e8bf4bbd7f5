"""When members of different shapes pay to train in one padded stack (train/mixed.py).

A stack computes every member at the template's widths and depth: its FLOPs are the members x
the template's multiply-adds. `pad_stacks` joins group keys (`grouping.group_key`) that differ
only in their MLP shape (hidden widths, depth, activation, LayerNorm; a frozen encoder head's
max_length, a different embedding of the same rows) while the stack's padded FLOPs stay at most
`PAD_FLOPS_LIMIT` x the members' own and it holds at most `MAX_PLANS` layer plans: members of
another depth, activation or LayerNorm split each layer into one call per run of members, and
with three or more plans those calls cost more than the stack saves (benchmarks/padding.py,
benchmarks/RESULTS.md). Widths and max_lengths add no calls.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Mapping, Sequence

from tunelab.config.model_sections import EncoderHeadModel, MLPModel
from tunelab.models.encoder_head import head_widths
from tunelab.train.mixed import stack_flops

PAD_FLOPS_LIMIT = 1.5  # padded FLOPs / the members' own FLOPs, at most
# A member whose step costs more multiply-adds than this is compute-bound (seed 001's heads at
# batch 32: 3-5 M; California housing MLPs at 256: 0.7 M): its stack gains little over training it
# alone (1.4x, benchmarks/RESULTS.md), so padding there pays only when it wastes almost nothing.
COMPUTE_BOUND_MACS = 2_000_000
PAD_FLOPS_LIMIT_COMPUTE_BOUND = 1.1
MAX_PLANS = 2  # layer plans (depth, activation, LayerNorm) in one stack, at most (benchmarks/padding.py)
MIN_PLAN_MEMBERS = 2  # members of each plan in a stack of several plans, at least (a run of one costs more)
# Model keys that may differ within one padded stack, per family.
SHAPE_KEYS = {
    "mlp": frozenset({"hidden_dims", "hidden_dim", "num_layers", "hidden_dim_ratio", "activation", "layer_norm"}),
    "encoder_head": frozenset({"num_layers", "hidden_dim_ratio", "head_layout", "activation", "layer_norm",
                               "max_length"}),
}


def pad_stacks(members: Mapping[str, int]) -> dict[str, str]:
    """Which exact-shape groups train in one padded stack: maps every group key (with its member
    count) to the key of the stack it joins (its own when it trains unpadded).

    Keys that `pad_key` reads with one base (everything but the MLP shape) are sorted by their
    layer plan, then FLOPs, largest first, and joined greedily into one-plan stacks while they
    fit (`stack_fits`); then neighbouring stacks of different plans join where their union
    fits. Any other key stays itself."""
    out = {key: key for key in members}
    by_base: dict[str, list[tuple[str, int, str]]] = {}
    for key in members:
        parsed = pad_key(key)
        if parsed is not None:
            base, dims, plan = parsed
            by_base.setdefault(base, []).append((plan, -_flops(dims), key))
    for entries in by_base.values():
        stacks: list[list[str]] = []  # first each plan's keys, the largest first (it sets the template)
        last = None
        for plan, _, key in sorted(entries):
            if plan != last or not stack_fits({k: members[k] for k in [*stacks[-1], key]}):
                stacks.append([])
            stacks[-1].append(key)
            last = plan
        merged: list[list[str]] = []  # then stacks of different plans together, where they fit
        for stack in stacks:
            if merged and stack_fits({k: members[k] for k in [*merged[-1], *stack]}):
                merged[-1] += stack
            else:
                merged.append(list(stack))
        for stack in merged:
            for key in stack:
                out[key] = stack[0]
    return out


def stack_fits(members: Mapping[str, int]) -> bool:
    """Whether group keys (with their member counts) pay to train in one padded stack: one base,
    padded FLOPs at most `PAD_FLOPS_LIMIT` x the members' own (`PAD_FLOPS_LIMIT_COMPUTE_BOUND`
    when a member's step is compute-bound: `COMPUTE_BOUND_MACS`), and at most `MAX_PLANS` layer
    plans of at least `MIN_PLAN_MEMBERS` members each (each further depth, activation or
    LayerNorm choice splits a layer into one more call)."""
    if len(members) < 2:
        return True
    parsed = [(n, pad_key(key)) for key, n in members.items()]
    if any(p is None for _, p in parsed) or len({p[0] for _, p in parsed if p}) > 1:
        return False
    per_plan = Counter()
    for n, p in parsed:
        per_plan[p[2]] += n  # type: ignore[index]
    if len(per_plan) > MAX_PLANS or (len(per_plan) > 1 and min(per_plan.values()) < MIN_PLAN_MEMBERS):
        return False
    groups = [(n, p[1]) for n, p in parsed if p]
    own_step = sum(n * _flops(dims) for n, dims in groups) / sum(n for n, _ in groups) * _batch_rows(members)
    limit = PAD_FLOPS_LIMIT if own_step <= COMPUTE_BOUND_MACS else PAD_FLOPS_LIMIT_COMPUTE_BOUND
    return padding_ratio(groups) <= limit


def _batch_rows(members: Mapping[str, int]) -> int:
    """Rows per step of these keys' recipe (their base is one: one batch size)."""
    return key_batch_rows(next(iter(members)))


def key_batch_rows(key: str) -> int:
    """Rows per optimizer step of a group key's recipe (`grouping.group_key`)."""
    parts = json.loads(key)
    rows, batch = int(parts[2]), parts[4].get("batch_size", "full")
    return rows if batch == "full" else min(int(batch), rows)


def padding_ratio(groups: Sequence[tuple[int, Sequence[int]]]) -> float:
    """Padded FLOPs over the members' own, for (members, layer widths [in, hidden..., out]) groups
    (depths may differ: `mixed.stack_flops`)."""
    own = sum(n * _flops(dims) for n, dims in groups)
    return sum(n for n, _ in groups) * stack_flops([dims for _, dims in groups]) / max(own, 1)


def _flops(dims: Sequence[int]) -> int:
    """Multiply-adds of one row through Linear layers of these widths."""
    return sum(a * b for a, b in itertools.pairwise(dims))


def differing(keys: Sequence[str]) -> list[str]:
    """The model knobs in which the group keys of one padded stack differ (for the study log)."""
    models = [json.loads(key)[3] for key in keys]
    return sorted(f"model.{k}" for k in set().union(*models) if len({json.dumps(m.get(k)) for m in models}) > 1)


def pad_key(key: str) -> tuple[str, list[int], str] | None:
    """(the key without its MLP shape, its layer widths [in, hidden..., out], its layer plan:
    depth, activation and LayerNorm) for a group key (`grouping.group_key`) that may pad, else None."""
    try:
        parts = json.loads(key)
        name, data_hash, rows, model, train, io = parts
    except (ValueError, TypeError):
        return None
    family = model.get("family") if isinstance(model, dict) else None
    if family == "mlp":
        hidden = MLPModel.model_validate(model).resolved_hidden_dims()
    elif family == "encoder_head" and model.get("freeze_encoder"):
        hidden = head_widths(EncoderHeadModel.model_validate(model), io[0])
    else:
        return None
    shape = {k: v for k, v in model.items() if k not in SHAPE_KEYS[family]}
    base = json.dumps([name, data_hash, rows, shape, train, io], sort_keys=True)
    plan = json.dumps([len(hidden), model.get("activation"), bool(model.get("layer_norm"))])
    return base, [io[0], *hidden, io[1]], plan
