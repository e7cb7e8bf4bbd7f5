"""Adam, AdamW and SGD over a (K, P) parameter buffer with per-member hyperparameters.

The update is the element-wise math of `torch.optim.Adam(fused=True)` / `AdamW(fused=True)` /
`SGD` written with (K, 1) hyperparameter columns, so member k follows the same trajectory as
its own torch optimizer (to float rounding). `torch_state_dict` rebuilds one member's state
as the torch optimizer's `state_dict()`, so `fit` can resume that member alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from tunelab.config.schema import TrainSection

SUPPORTED_OPTIMIZERS = ("adam", "adamw", "sgd")


class BatchedOptimizer:
    def __init__(self, cfgs: Sequence[TrainSection], flat: torch.Tensor) -> None:
        self.kind = cfgs[0].optimizer
        if self.kind not in SUPPORTED_OPTIMIZERS:
            raise ValueError(f"optimizer {self.kind!r} is not vectorized")
        self.nesterov = cfgs[0].nesterov

        def column(values: Sequence[float], dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.tensor(values, dtype=dtype, device=flat.device).reshape(-1, 1)

        self.hyper = {
            "lr": column([c.lr for c in cfgs], torch.float64),
            "weight_decay": column([c.weight_decay for c in cfgs]),
            "beta1": column([c.betas[0] for c in cfgs], torch.float64),
            "beta2": column([c.betas[1] for c in cfgs], torch.float64),
            "eps": column([c.eps for c in cfgs]),
            "momentum": column([c.momentum for c in cfgs]),
            "max_grad_norm": column([c.max_grad_norm or float("inf") for c in cfgs]),
        }
        self.any_decay = any(c.weight_decay > 0 for c in cfgs)
        # One call of torch's fused Adam kernel serves every member when betas and eps are shared:
        # it computes the lr=1 step into a zeroed buffer, scaled per member afterwards.
        self.shared = {(c.betas[0], c.betas[1], c.eps) for c in cfgs}
        self.fused = self.kind != "sgd" and len(self.shared) == 1 and hasattr(torch, "_fused_adam_")
        self.any_clip = any(c.max_grad_norm is not None for c in cfgs)
        self.step_count = 0
        self.state: dict[str, torch.Tensor] = {}
        if self.kind == "sgd":
            self.state["momentum_buffer"] = torch.zeros_like(flat)
        else:
            self.state["exp_avg"] = torch.zeros_like(flat)
            self.state["exp_avg_sq"] = torch.zeros_like(flat)
        self._step_tensor = torch.zeros((), dtype=torch.float32, device=flat.device)
        self._direction = torch.zeros_like(flat)
        self._derive()

    def _derive(self) -> None:
        h = self.hyper
        self.lr32 = h["lr"].float()
        self.one_minus_beta1 = (1 - h["beta1"]).float()
        self.beta2_32 = h["beta2"].float()
        self.one_minus_beta2 = (1 - h["beta2"]).float()
        self.decoupled_decay = (1 - h["lr"] * h["weight_decay"].double()).float()

    def keep(self, rows: torch.Tensor) -> None:
        self.hyper = {k: v.index_select(0, rows) for k, v in self.hyper.items()}
        self.state = {k: v.index_select(0, rows) for k, v in self.state.items()}
        if self.kind != "sgd":
            self._direction = self._direction.index_select(0, rows)
        self._derive()

    def clip_(self, grad: torch.Tensor) -> None:
        """Per-member `clip_grad_norm_`: members without max_grad_norm are left alone."""
        if not self.any_clip:
            return
        limit = self.hyper["max_grad_norm"]
        total = grad.norm(dim=1, keepdim=True)
        coef = torch.where(torch.isinf(limit), torch.ones_like(total), (limit / (total + 1e-6)).clamp(max=1.0))
        grad.mul_(coef)

    @torch.no_grad()
    def step(self, param: torch.Tensor, grad: torch.Tensor) -> None:
        """One update of every member; `grad` may be modified in place."""
        self.step_count += 1
        if self.kind == "sgd":
            self._sgd(param, grad)
        else:
            self._adam(param, grad)

    def _adam(self, param: torch.Tensor, grad: torch.Tensor) -> None:
        h, t = self.hyper, self.step_count
        if self.any_decay:
            if self.kind == "adam":
                grad.addcmul_(param, h["weight_decay"])
            else:
                param.mul_(self.decoupled_decay)
        exp_avg, exp_avg_sq = self.state["exp_avg"], self.state["exp_avg_sq"]
        if self.fused:
            beta1, beta2, eps = next(iter(self.shared))
            direction = self._direction.zero_()
            self._step_tensor.fill_(t)  # the kernel reads the step; torch.optim increments it first
            torch._fused_adam_(
                [direction], [grad], [exp_avg], [exp_avg_sq], [], [self._step_tensor], lr=1.0, beta1=beta1,
                beta2=beta2, weight_decay=0.0, eps=eps, amsgrad=False, maximize=False,
            )
            param.addcmul_(direction, self.lr32)
            return
        exp_avg.lerp_(grad, self.one_minus_beta1)
        exp_avg_sq.mul_(self.beta2_32).addcmul_(grad * self.one_minus_beta2, grad)
        bias1 = 1 - h["beta1"] ** t
        bias2_sqrt = (1 - h["beta2"] ** t).sqrt()
        step_size = (h["lr"] / bias1).float()
        denom = (exp_avg_sq.sqrt() / bias2_sqrt.float()).add_(h["eps"])
        param.sub_(exp_avg.mul(step_size).div_(denom))

    def _sgd(self, param: torch.Tensor, grad: torch.Tensor) -> None:
        h = self.hyper
        if self.any_decay:
            grad.addcmul_(param, h["weight_decay"])
        buf = self.state["momentum_buffer"]
        if self.step_count == 1:
            buf.copy_(grad)
        else:
            buf.mul_(h["momentum"]).add_(grad)
        update = grad.addcmul_(buf, h["momentum"]) if self.nesterov else buf
        param.sub_(update * self.lr32)

    def torch_state_dict(self, row: int, model: nn.Module, optimizer: torch.optim.Optimizer,
                         piece: Callable[[torch.Tensor, int, int], torch.Tensor]) -> dict:
        """Member `row`'s state as `optimizer.state_dict()` of its own torch optimizer;
        `piece(buffer, row, index)` cuts the member's parameter `index` out of a (K, P) buffer
        (`StackedNet.piece`: a padded member's real block)."""
        optimizer.state.clear()
        for index, p in enumerate(model.parameters()):
            if self.kind == "sgd":
                if self.step_count and float(self.hyper["momentum"][row]) != 0:
                    optimizer.state[p] = {"momentum_buffer": piece(self.state["momentum_buffer"], row, index).clone()}
            elif self.step_count:
                optimizer.state[p] = {
                    "step": torch.tensor(float(self.step_count), dtype=torch.float32, device=p.device),
                    "exp_avg": piece(self.state["exp_avg"], row, index).clone(),
                    "exp_avg_sq": piece(self.state["exp_avg_sq"], row, index).clone(),
                }
        return optimizer.state_dict()
