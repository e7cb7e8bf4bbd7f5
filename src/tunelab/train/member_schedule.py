"""Each member's training recipe in a vectorized group, as `fit` runs it alone.

Members of one group share the batch size (so the batches of an epoch), nothing else of the
recipe: each has its own learning-rate schedule (scheduler, warmup_ratio, step_size, gamma,
plateau patience), its own number of epochs and its own `gradient_accumulation_steps`. What
`fit` (train/loop.py) does for one model is done here per member:

- accumulation: a member with k steps sums the gradients of k batches of `loss / k` and steps
  after the k-th, and at the last batch of an epoch whatever it has (a shorter window, still
  divided by k), so an epoch has ceil(batches / k) steps;
- the lr of each step is what the member's torch scheduler (`optim.make_scheduler`) sets:
  `base * lambda(steps so far)` for the step-wise schedules (the same lambda, called here
  instead of through `LambdaLR.step`, which would cost a Python scheduler call per member and
  batch), and for `plateau` a real `ReduceLROnPlateau`, stepped at the end of each epoch on the
  monitored value;
- its steps count from the epoch: `epoch x steps per epoch` (resume needs nothing more);
- a checkpoint holds the scheduler state `fit` would save, so `fit` can resume the member alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from tunelab.config.schema import TrainSection
from tunelab.train.batched_optim import BatchedOptimizer
from tunelab.train.optim import make_scheduler

_Plateau = torch.optim.lr_scheduler.ReduceLROnPlateau


class MemberSchedule:
    """One member's lr at each of its optimizer steps and its accumulation window."""

    def __init__(self, cfg: TrainSection, batches_per_epoch: int) -> None:
        """`cfg`: the member's train section with its lr as it trains (a head's multiplied lr)."""
        self.accum = cfg.gradient_accumulation_steps
        self.steps_per_epoch = -(-batches_per_epoch // self.accum)
        self.base = cfg.lr
        # The scheduler `fit` builds, on a stand-in optimizer that holds the member's lr.
        self._holder = torch.optim.SGD([torch.zeros(0)], lr=cfg.lr)
        self.scheduler = make_scheduler(self._holder, cfg, self.steps_per_epoch * cfg.epochs, self.steps_per_epoch)
        self.plateau = isinstance(self.scheduler, _Plateau)
        self.stepwise = self.scheduler is not None and not self.plateau  # a new lr at every step

    def lr(self, steps: int) -> float:
        """The lr of the member's next step after `steps` steps (its torch group's lr then)."""
        if self.scheduler is None:
            return self.base
        if self.plateau:
            return float(self._holder.param_groups[0]["lr"])
        return self.base * self.scheduler.lr_lambdas[0](steps)  # type: ignore[union-attr]

    def steps_at(self, epoch: int) -> int:
        """Optimizer steps taken by the end of `epoch`."""
        return epoch * self.steps_per_epoch

    def end_epoch(self, record: dict[str, Any], monitor: str) -> None:
        """`fit`'s end-of-epoch scheduler step: a plateau schedule judges the monitored value."""
        if self.plateau:
            self.scheduler.step(record.get(monitor, record["train_loss"]))  # type: ignore[union-attr]

    def trainer_state(self, steps: int, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """The scheduler's `state_dict()` as `fit` saves it after `steps` steps; sets the lr (and
        the scheduler's initial_lr) in `optimizer`'s group, as `fit`'s optimizer holds them."""
        group = optimizer.param_groups[0]
        group["lr"] = self.lr(steps)
        if self.scheduler is None:
            return {}
        state = self.scheduler.state_dict()
        if not self.plateau:  # LambdaLR after `steps` calls of step(); it keeps the base lr in the group
            group["initial_lr"] = self.base
            state.update(last_epoch=steps, _step_count=steps + 1, _last_lr=[group["lr"]])
        return state

    def resume(self, state: dict[str, Any]) -> None:
        """Continue after a checkpoint (the plateau schedule's state and lr; step-wise ones need
        only the step count)."""
        if self.plateau and state.get("scheduler"):
            self.scheduler.load_state_dict(state["scheduler"])  # type: ignore[union-attr]
            self._holder.param_groups[0]["lr"] = state["optimizer"]["param_groups"][0]["lr"]


class GroupSchedule:
    """The active members' schedules and accumulation over one (K, P) gradient buffer."""

    def __init__(self, schedules: Sequence[MemberSchedule], batches_per_epoch: int, flat: torch.Tensor) -> None:
        self.schedules = list(schedules)
        self.last = batches_per_epoch - 1
        self._accumulating = any(s.accum > 1 for s in self.schedules)
        self._stepwise = any(s.stepwise for s in self.schedules)
        self._new_epoch = True  # lrs are set at every step, or once an epoch (constant, plateau)
        self._make(flat)

    def _make(self, flat: torch.Tensor) -> None:
        self.buffer = torch.zeros_like(flat) if self._accumulating else None
        accums = [float(s.accum) for s in self.schedules]
        self.divisors = torch.tensor(accums, dtype=flat.dtype, device=flat.device) if self._accumulating else None

    def keep(self, rows: Sequence[int], flat: torch.Tensor) -> None:
        """Keep only these members (at an epoch's end, when every window is closed)."""
        self.schedules = [self.schedules[r] for r in rows]
        self._make(flat)

    def objective(self, losses: torch.Tensor) -> torch.Tensor:
        """What one backward differentiates: the sum of each member's `loss / k` (`fit`'s scaling)."""
        return (losses / self.divisors).sum() if self.divisors is not None else losses.sum()

    def accumulate(self, grad: torch.Tensor, batch: int) -> tuple[torch.Tensor, list[int] | None]:
        """After `batch`'s gradients: the gradient to step on and the members whose window ends
        here (None: every member; [] none)."""
        self._new_epoch = self._new_epoch or batch == 0
        if self.buffer is None:
            return grad, None
        self.buffer.add_(grad)
        if batch == self.last:
            return self.buffer, None
        rows = [r for r, s in enumerate(self.schedules) if (batch + 1) % s.accum == 0]
        return self.buffer, None if len(rows) == len(self.schedules) else rows

    def step(self, opt: BatchedOptimizer, flat: torch.Tensor, grad: torch.Tensor, rows: list[int] | None) -> None:
        """Clip and step the members in `rows` (None: all) at their scheduled lr; their windows restart."""
        if rows == []:
            return
        if self._stepwise or self._new_epoch:
            opt.set_lrs([s.lr(steps) for s, steps in zip(self.schedules, opt.steps, strict=True)])
            self._new_epoch = False
        opt.clip_(grad, rows)
        opt.step(flat, grad, rows)
        if self.buffer is not None:
            if rows is None:
                self.buffer.zero_()
            else:
                self.buffer[rows] = 0
