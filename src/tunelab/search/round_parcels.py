"""How a queued round is shared among the trial processes: parcels balanced by estimated cost,
handed out largest first.

Every process waits at a round's end, so the round lasts as long as its busiest process. Shares
counted in trials left one process with most of the round's costly members: on seed 000's TPE
study (benchmarks/bayes.py, 2 processes) a process idled up to 8 s of a 32 s round while the
other trained six 128-wide members against its two 128-wide and three narrow ones.

A parcel is what one process pops at once and trains: a piece of a vectorized group, or a lone
trial. A group splits into at most one piece per process, two members at least each (a lone
member gains nothing from the group), and never so that a piece's own stacking (`pad_stacks`
over its members) leaves a member alone: alone, a member trains with `fit`'s lone kernels, whose
float32 rounding differs from a stack's, so its value would change with the number of processes
(in a stack a member's bits do not depend on its stack-mates, nor on seed 000's template widths,
32-128; other widths can move a few bits: benchmarks/packing.py). Its members are sorted
costliest first and cut where the two pieces' estimated costs are closest (a narrow piece pads
to its own widths, not the widest member's), unless another cut (or none) makes the round
shorter with the round's other parcels.
The parcels then go out largest first to whichever process is free (longest processing time
first), so the small ones fill the gaps at the round's end.

A parcel's cost is estimated as the trial process will train it (`padding.pad_stacks` over its
own members, as `group_run` does): per step, a fixed overhead plus, per member, the stack
template's multiply-adds per row x rows per step and an overhead per Linear layer. At seed 000's
sizes (64-row steps, widths 32-128) the layers' overheads weigh as much as the multiply-adds:
fitted on the 2-core VM's quietest run of bayes.py, per 2,900 steps, a stack costs ~0.4 s plus
~0.25 s per member and Linear layer plus ~0.25 s per million multiply-adds of a member's step
(a 2-layer 128-wide member alone ~1 s, two 3-layer 128-wide ones ~3.7 s, five 2-layer ~5.4 s).
Keys that `padding.pad_key` cannot read cost as a lone 2-layer member. The parcels change who
trains what, never which trials a round asks.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from tunelab.train.mixed import stack_flops, stack_widths
from tunelab.train.padding import key_batch_rows, pad_key, pad_stacks

STEP_OVERHEAD_MACS = 1_600_000  # a stack's per-step cost beyond its members' layers, in multiply-adds
LAYER_OVERHEAD_MACS = 1_000_000  # each member's per-step cost per Linear layer beyond its multiply-adds
UNKNOWN_MEMBER_MACS = 3 * LAYER_OVERHEAD_MACS  # a member whose key `pad_key` cannot read


@dataclass(frozen=True)
class Member:
    """One asked trial of a round: its round-level stack ("" when it trains alone), its group key
    (`grouping.group_key`, "" when none) and its optimizer steps."""

    stack: str
    key: str
    steps: float


def parcels(members: Sequence[Member], processes: int) -> list[int]:
    """Each member's parcel number; parcel 0 is the costliest and goes out first.

    Each group's cut is chosen, one group at a time (twice over), for the shortest round when
    the parcels go out costliest first to whichever process is free; a group cut where its two
    pieces are closest can leave the other units unable to even the processes out."""
    lone = [[i] for i, m in enumerate(members) if not m.stack]
    by_stack: dict[str, list[int]] = {}
    for i, m in enumerate(members):
        if m.stack:
            by_stack.setdefault(m.stack, []).append(i)
    options = [_cuts(members, group, processes) for group in by_stack.values()]
    priced: dict[tuple[int, ...], float] = {}

    def price(unit: Sequence[int]) -> float:
        if tuple(unit) not in priced:
            priced[tuple(unit)] = cost([members[i] for i in unit])
        return priced[tuple(unit)]

    def units_of(pick: Sequence[int]) -> list[list[int]]:
        return lone + [piece for g, o in enumerate(pick) for piece in options[g][o]]

    pick = [0] * len(options)
    if processes > 1:
        for _ in range(2):
            for g in range(len(options)):
                def span(o: int, g: int = g) -> float:
                    return _makespan([price(u) for u in units_of([*pick[:g], o, *pick[g + 1:]])], processes)

                pick[g] = min(range(len(options[g])), key=lambda o: (span(o), o))
    units = units_of(pick)
    order = sorted(range(len(units)), key=lambda u: (-price(units[u]), min(units[u])))
    out = [0] * len(members)
    for rank, u in enumerate(order):
        for i in units[u]:
            out[i] = rank
    return out


def _makespan(costs: Sequence[float], processes: int) -> float:
    """The busiest process's load when the units go out costliest first to the least loaded."""
    loads = [0.0] * processes
    for c in sorted(costs, reverse=True):
        loads[loads.index(min(loads))] += c
    return max(loads)


def _cuts(members: Sequence[Member], index: Sequence[int], processes: int) -> list[list[list[int]]]:
    """The ways to cut a group into pieces of two members or more, the default first: with two
    processes and costs known, cut costliest first where the pieces' costs are closest, then at
    every other place, then whole; else equal counts, at most one piece per process, cut in
    order or dealt in turn (then fewer pieces, the closest halves, whole). A cut that would
    leave a member alone in its piece (`_stacked`) is never offered."""
    group = [members[i] for i in index]
    count = min(processes, len(group) // 2)
    if count <= 1:
        return [[list(index)]]
    order = sorted(range(len(group)), key=lambda i: (-_alone(group[i].key), i))
    halves: list[list[list[int]]] = []
    if all(pad_key(m.key) is not None for m in group):
        def worst(cut: int) -> tuple[float, int]:
            a, b = [group[i] for i in order[:cut]], [group[i] for i in order[cut:]]
            return max(cost(a), cost(b)), abs(len(a) - len(b))

        halves = [[[index[i] for i in order[:cut]], [index[i] for i in order[cut:]]]
                  for cut in sorted(range(2, len(group) - 1), key=worst)
                  if _stacked(group, order[:cut]) and _stacked(group, order[cut:])]
    if count == 2 and halves:
        return [*halves, [list(index)]]
    options = []
    for n in range(count, 1, -1):  # n pieces, sizes one apart: cut in order, or dealt in turn
        ends = [0, *(len(group) * (k + 1) // n for k in range(n))]
        for pieces in ([order[a:b] for a, b in itertools.pairwise(ends)], [order[k::n] for k in range(n)]):
            if all(_stacked(group, piece) for piece in pieces):  # a narrow member with wide ones may stack
                options.append([[index[i] for i in piece] for piece in pieces])
    return [*options, *halves[:1], [list(index)]]


def _stacked(group: Sequence[Member], piece: Sequence[int]) -> bool:
    """Whether every member of `group[piece]` trains in a stack of two or more when its process
    plans the piece (`padding.pad_stacks` over the piece's keys, as `group_run` does). A member
    left alone trains with `fit`'s lone matmul kernels, whose float32 rounding differs from a
    stack's, so its value would change with the number of processes."""
    counts = Counter(group[i].key for i in piece)
    stack_of = pad_stacks(counts)
    sizes: Counter[str] = Counter()
    for key, n in counts.items():
        sizes[stack_of[key]] += n
    return all(n > 1 for n in sizes.values())


def cost(members: Sequence[Member]) -> float:
    """Estimated cost of training `members` in one process, stacked as `group_run` stacks them."""
    known = [m for m in members if m.key and pad_key(m.key) is not None]
    total = sum(m.steps * (STEP_OVERHEAD_MACS + UNKNOWN_MEMBER_MACS) for m in members
                if not m.key or pad_key(m.key) is None)
    counts = Counter(m.key for m in known)
    stacks: dict[str, list[Member]] = {}
    stack_of = pad_stacks(counts)
    for m in known:
        stacks.setdefault(stack_of[m.key], []).append(m)
    for chunk in stacks.values():
        dims = [pad_key(key)[1] for key in {m.key for m in chunk}]  # type: ignore[index]
        total += max(m.steps for m in chunk) * (STEP_OVERHEAD_MACS + len(chunk) * _member_macs(dims, chunk[0].key))
    return total


def _member_macs(dims: Sequence[Sequence[int]], key: str) -> float:
    """A member's cost per step in a stack of members of these widths: the template's
    multiply-adds per row x rows per step, and its Linear layers' overhead."""
    return float(stack_flops(dims) * key_batch_rows(key) + LAYER_OVERHEAD_MACS * (len(stack_widths(dims)) - 1))


def _alone(key: str) -> float:
    """A member's cost per step alone (0 for a key `pad_key` cannot read)."""
    parsed = pad_key(key) if key else None
    return 0.0 if parsed is None else _member_macs([parsed[1]], key)


def parcels_text(numbers: Sequence[int]) -> str:
    """The round's parcels by size, in the order they go out (for the study log)."""
    sizes = Counter(numbers)
    return " ".join(str(sizes[n]) for n in sorted(sizes))
