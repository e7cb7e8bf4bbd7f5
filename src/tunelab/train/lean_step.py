"""The optimizer step and gradient reset of `fit`, without the per-step Python around them.

At seed 000's size (an MLP of 4,801 parameters, ~50 to ~390 steps an epoch) `Optimizer.step()`
spends more time in its wrapper (profiler scope, hook checks, grad-mode switch, re-collecting
every parameter's state) than in the fused Adam kernel, and `zero_grad` opens a profiler scope
per call. `LeanStep` runs what `torch.optim.Adam.step` ends in for one batch of same-device,
same-dtype tensors (the step counters + 1, then the fused Adam/AdamW kernel, with the group's own
hyperparameters read at every step, so a scheduler's lr counts), which gives the same numbers bit
for bit (tests/train/test_lean_step.py).

Everything else goes through the optimizer itself: the first step (it creates the state and
tells an lr scheduler that the optimizer has stepped), other optimizers (SGD, RMSprop) and Adam
options the shortcut does not cover (amsgrad, maximize, capturable, differentiable, not fused,
a tensor lr, registered step hooks, a parameter without state yet, mixed devices or dtypes).
"""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch.optim import optimizer as torch_optimizer

Batch = tuple[dict[str, Any], list[torch.Tensor], list[dict[str, Any]]]  # group, its params with a grad, their states
_PLAIN = {"amsgrad": False, "maximize": False, "capturable": False, "differentiable": False, "fused": True}


class LeanStep:
    """`step()` and `zero_grad()` (to None) for one optimizer, taking the short way where it is exact."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self._stepped = False
        self._plan: tuple[list[dict[str, Any]], list[bool], list[Batch]] | None = None

    def zero_grad(self) -> None:
        """What `optimizer.zero_grad(set_to_none=True)` does, without its profiler scope."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """One optimizer step on the current gradients."""
        batches = self._fused_adam_batches() if self._stepped else None
        self._stepped = True
        if batches is None:
            self.optimizer.step()
            return
        with torch.no_grad():  # as Optimizer.step: the update is not recorded by autograd
            for group, params, states in batches:
                steps = [s["step"] for s in states]
                kernel = torch._fused_adamw_ if group["decoupled_weight_decay"] else torch._fused_adam_
                torch._foreach_add_(steps, 1)
                kernel(
                    params,
                    [p.grad for p in params],
                    [s["exp_avg"] for s in states],
                    [s["exp_avg_sq"] for s in states],
                    [],
                    steps,
                    amsgrad=False,
                    lr=group["lr"],
                    beta1=group["betas"][0],
                    beta2=group["betas"][1],
                    weight_decay=group["weight_decay"],
                    eps=group["eps"],
                    maximize=False,
                    grad_scale=None,
                    found_inf=None,
                )

    def _fused_adam_batches(self) -> list[Batch] | None:
        """Per group (group, parameters with a gradient, their states), or None when the step must
        go through the optimizer. The batches are checked once and reused while the optimizer's
        groups and which parameters have a gradient stay the same."""
        opt = self.optimizer
        if _has_step_hooks(opt):
            return None
        groups, plan = opt.param_groups, self._plan
        if any(group.get(key) != value for group in groups for key, value in _PLAIN.items()):
            return None
        if not all(map(_floats, groups)):
            return None
        has_grad = [p.grad is not None for group in groups for p in group["params"]]
        same = plan is not None and len(plan[0]) == len(groups) and all(map(operator.is_, plan[0], groups))
        if plan is None or not same or plan[1] != has_grad:
            batches = self._batches(groups)
            self._plan = (list(groups), has_grad, batches) if batches is not None else None
            return batches
        return plan[2]

    def _batches(self, groups: list[dict[str, Any]]) -> list[Batch] | None:
        opt = self.optimizer
        if type(opt) not in (torch.optim.Adam, torch.optim.AdamW):
            return None
        if getattr(opt, "grad_scale", None) is not None or getattr(opt, "found_inf", None) is not None:
            return None
        batches = []
        for group in groups:
            params = [p for p in group["params"] if p.grad is not None]
            states = [opt.state.get(p) for p in params]
            if not all(states) or not _one_kind(params):
                return None
            if params:
                batches.append((group, params, states))
        return batches


def _floats(group: dict[str, Any]) -> bool:
    """lr and betas as plain numbers (a tensor lr takes another path in torch)."""
    return all(isinstance(v, float | int) for v in (group["lr"], *group["betas"]))


def _one_kind(params: list[torch.Tensor]) -> bool:
    """One device and one real floating dtype for every parameter and gradient: the single batch
    torch's own fused step would make of them."""
    if not params:
        return True
    device, dtype = params[0].device, params[0].dtype
    return dtype.is_floating_point and all(
        p.device == device and p.dtype == dtype and p.grad.device == device and p.grad.dtype == dtype for p in params
    )


def _has_step_hooks(opt: torch.optim.Optimizer) -> bool:
    return bool(
        opt._optimizer_step_pre_hooks
        or opt._optimizer_step_post_hooks
        or torch_optimizer._global_optimizer_pre_hooks
        or torch_optimizer._global_optimizer_post_hooks
    )
