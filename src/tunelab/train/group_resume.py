"""A vectorized group stopped mid-run resumes as a group, bit-identical to its uninterrupted self.

A member resumed alone with `fit` continues with torch's per-model optimizer and one model's
matmuls instead of the group's batched kernels: equal to float rounding, not to the bit, so its
values drifted from the first epoch after the resume. Resuming the members together, each from
its own checkpoint at one epoch they all have, repeats the group's arithmetic exactly; what a
member needs beyond its weights is restored here:

- its optimizer state, from the torch layout the checkpoint keeps (per parameter) back into the
  group's flat rows, and its step count (members with their own accumulation or epochs count
  their own steps; a step-wise lr schedule follows from it, a plateau's is restored with it);
- its batch-order generator (`rng["data"]`, as `fit` keeps it);
- its own dropout generator (`rng["torch"]`: the member's stream, the one `fit` would draw from
  as the global RNG, so a checkpoint resumes alike with `fit` or with the group);
- its early-stopping and pruning hook states, best epoch, records (truncated after the epoch)
  and training time.

Members whose checkpoints share no epoch (a kill between two members' writes with `keep_last:
1`) cannot resume together; the caller trains them alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch

from tunelab.runs.layout import TrialLayout
from tunelab.train import checkpoint as ckpt


class ResumeRefused(ValueError):
    """These members cannot resume as one group (raised before anything is trained or written)."""


RESUMED = "|resumed"  # appended to a group key: resumed members group only with resumed ones


def resumable(layout: TrialLayout | None) -> bool:
    """Progress to continue: a checkpoint and no result yet."""
    return layout is not None and not layout.result_json.exists() and bool(layout.epoch_checkpoints())


def common_epoch(layouts: Sequence[TrialLayout | None]) -> int | None:
    """The newest epoch every member has a checkpoint of; 0 when none has progress, None when
    some have and they share no epoch (or one has already finished)."""
    if not any(layout is not None and (layout.result_json.exists() or layout.epoch_checkpoints())
               for layout in layouts):
        return 0
    if not all(resumable(layout) for layout in layouts):
        return None
    shared = set.intersection(*({e for e, _ in layout.epoch_checkpoints()} for layout in layouts))  # type: ignore[union-attr]
    return max(shared) if shared else None


def load_states(layouts: Sequence[TrialLayout | None]) -> tuple[int, list[dict[str, Any]]]:
    """The epoch the group resumes after (0: a fresh start) and every member's checkpoint of it."""
    epoch = common_epoch(layouts)
    if epoch is None:
        raise ResumeRefused("members' checkpoints share no epoch (or one has finished); resume them with fit")
    if epoch == 0:
        return 0, []
    try:
        return epoch, [ckpt.load_checkpoint(layout.epoch_checkpoint(epoch)) for layout in layouts]  # type: ignore[union-attr]
    except Exception as exc:  # a damaged checkpoint: `fit` falls back to an older one, alone
        raise ResumeRefused(f"a checkpoint of epoch {epoch} cannot be read ({type(exc).__name__})") from None


def dropout_stream(state: dict[str, Any]) -> torch.Tensor:
    """The member's dropout generator state saved with its checkpoint."""
    return state["rng"]["torch"]


def restore_optimizer(opt: Any, states: Sequence[dict[str, Any]], offsets: Sequence[int],
                      steps: Sequence[int]) -> None:
    """Put each member's optimizer state (torch layout, parameters in `parameters()` order) back
    into the batched optimizer's rows, and its step count (`steps`: each member's steps by the
    checkpoint's epoch, checked against the count Adam saves; SGD saves none)."""
    with torch.no_grad():
        for row, state in enumerate(states):
            per_param = state["optimizer"].get("state", {})
            for index, (a, b) in enumerate(itertools.pairwise(offsets)):
                saved = per_param.get(index, {})
                for name, buffer in opt.state.items():
                    if name in saved:
                        buffer[row, a:b].copy_(saved[name].reshape(-1))
                if "step" in saved and int(float(saved["step"])) != steps[row]:
                    raise ValueError(f"member {row} was saved at optimizer step {int(float(saved['step']))}, "
                                     f"its schedule expects {steps[row]}")
    opt.set_steps(steps)
