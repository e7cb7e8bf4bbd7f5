"""Adam, AdamW and SGD over a (K, P) parameter buffer with per-member hyperparameters.

On the CPU, given the same gradients, member k's weights after a step are bit for bit what its own torch
optimizer (`make_optimizer`: `Adam`/`AdamW(fused=True)`, plain `SGD`) gives: Adam and AdamW call
torch's fused kernel with the member's own lr, betas, eps and weight decay, once per set of
members that share them, over each member's parameter tensors (views of its row); SGD is
`torch.optim.SGD`'s per-tensor arithmetic with (K, 1) columns. Computing one lr=1 step for all
and scaling it per member (this module until 2026-12-01) moved ~10% of the weights by an ulp at
every step, and hyperparameters kept in float32 moved float64 weights by 1e-8: differences
training can grow (docs/speed.md, "How exact a member is"). Off the CPU (where a launch per
hyperparameter set costs more than the last bit is worth), and without the fused kernel, Adam
falls back to those ways, equal to torch's step to float rounding. `torch_state_dict`
rebuilds one member's state as the torch optimizer's `state_dict()`, so `fit` can resume that
member alone.

Members need not step together: each has its own step count and its lr may change at every
step (`set_lrs`: its schedule, train/member_schedule.py), and `step(rows=...)` updates only the
members whose accumulation window ends at this batch.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import torch
from torch import nn

from tunelab.config.schema import TrainSection

SUPPORTED_OPTIMIZERS = ("adam", "adamw", "sgd")
KERNEL_BLOCK = 64  # elements: a multiple of any CPU vector width (and unroll) an element-wise kernel uses


def kernel_segments(offsets: Sequence[int]) -> list[tuple[int, int]]:
    """A row's parameter tensors (`offsets` = their starts, then the end) merged into as few
    segments as keep each element where a kernel call per tensor puts it: a tensor whose size is
    a multiple of `KERNEL_BLOCK` has no scalar tail, so the next one may follow it in one call."""
    segments, start = [], offsets[0]
    for a, b in itertools.pairwise(offsets):
        if (b - a) % KERNEL_BLOCK or b == offsets[-1]:
            segments.append((start, b))
            start = b
    return segments


class BatchedOptimizer:
    def __init__(self, cfgs: Sequence[TrainSection], flat: torch.Tensor, offsets: Sequence[int] = ()) -> None:
        """`offsets`: where each parameter tensor starts in a row (`StackedNet.offsets`), so the
        fused kernel sees a member's tensors as its torch optimizer does (whole rows without)."""
        self.kind = cfgs[0].optimizer
        if self.kind not in SUPPORTED_OPTIMIZERS:
            raise ValueError(f"optimizer {self.kind!r} is not vectorized")
        self.nesterov = cfgs[0].nesterov

        def column(values: Sequence[float], dtype: torch.dtype = flat.dtype) -> torch.Tensor:
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
        # Each member's hyperparameters as the Python floats its torch optimizer holds: members
        # that share them are updated by one call of torch's own kernel (`_groups`).
        self.scalars = [(c.lr, c.weight_decay, c.betas[0], c.betas[1], c.eps, c.momentum) for c in cfgs]
        self.any_decay = any(c.weight_decay > 0 for c in cfgs)
        fused_fn = "_fused_adam_" if self.kind == "adam" else "_fused_adamw_"
        self.fused = self.kind != "sgd" and hasattr(torch, fused_fn)
        # Off the CPU a kernel launch per hyperparameter set costs more than the last bit is worth
        # (a GPU's stacked matmuls round differently anyway): one lr=1 call for all, scaled per member.
        self.one_call = self.fused and flat.device.type != "cpu" and len({c[2:5] for c in self.scalars}) == 1
        self._direction: torch.Tensor | None = None
        self.any_clip = any(c.max_grad_norm is not None for c in cfgs)
        self.steps = [0] * len(cfgs)  # each member's optimizer steps so far (as its torch optimizer's "step")
        self.state: dict[str, torch.Tensor] = {}
        if self.kind == "sgd":
            self.state["momentum_buffer"] = torch.zeros_like(flat)
        else:
            self.state["exp_avg"] = torch.zeros_like(flat)
            self.state["exp_avg_sq"] = torch.zeros_like(flat)
        self._step_tensor = torch.zeros((), dtype=torch.float32, device=flat.device)
        self._steps_t = torch.zeros(len(cfgs), dtype=torch.float32, device=flat.device)  # as the kernel reads them
        self._step_views = list(self._steps_t.unbind(0))
        self.bounds = kernel_segments(offsets) if offsets else [(0, flat.shape[1])]
        self._views: dict[str, tuple[torch.Tensor, list[list[torch.Tensor]]]] = {}
        self._derive()

    def _derive(self) -> None:
        """The (K, 1) columns the column-op ways read, and the members sharing hyperparameters."""
        h, dtype = self.hyper, self.state[next(iter(self.state))].dtype
        self.one_minus_beta1 = (1 - h["beta1"]).to(dtype)
        self.beta2_col = h["beta2"].to(dtype)
        self.one_minus_beta2 = (1 - h["beta2"]).to(dtype)
        self._lr_columns()
        self._regroup()

    def _lr_columns(self) -> None:
        h, dtype = self.hyper, self.state[next(iter(self.state))].dtype
        self.neg_lr = (-h["lr"]).to(dtype)
        self.decoupled_decay = (1 - h["lr"] * h["weight_decay"].double()).to(dtype)

    def _regroup(self) -> None:
        groups: dict[tuple[float, ...], list[int]] = {}
        for row, scalars in enumerate(self.scalars):
            groups.setdefault(scalars, []).append(row)
        self._groups = list(groups.items())

    def set_lrs(self, lrs: Sequence[float]) -> None:
        """Each member's lr for the next step (its schedule's, the float its torch optimizer's
        group holds); cheap when nothing changed."""
        if all(lr == s[0] for lr, s in zip(lrs, self.scalars, strict=True)):
            return
        self.scalars = [(lr, *s[1:]) for lr, s in zip(lrs, self.scalars, strict=True)]
        self._regroup()
        if self.kind == "sgd" or not self.fused or self.one_call:  # the column-op ways read the lr as a column
            self.hyper["lr"] = torch.tensor(list(lrs), dtype=torch.float64, device=self.neg_lr.device).reshape(-1, 1)
            self._lr_columns()

    def set_steps(self, steps: Sequence[int]) -> None:
        """Each member's step count so far (a resumed group's)."""
        self.steps = list(steps)
        self._steps_t.copy_(torch.tensor(self.steps, dtype=torch.float32))

    def keep(self, rows: torch.Tensor) -> None:
        self.hyper = {k: v.index_select(0, rows) for k, v in self.hyper.items()}
        self.state = {k: v.index_select(0, rows) for k, v in self.state.items()}
        keep = rows.tolist()
        self.scalars = [self.scalars[r] for r in keep]
        self.steps = [self.steps[r] for r in keep]
        self._steps_t = self._steps_t.index_select(0, rows)
        self._step_views = list(self._steps_t.unbind(0))
        self._derive()

    def clip_(self, grad: torch.Tensor, rows: Sequence[int] | None = None) -> None:
        """Per-member `clip_grad_norm_` of the members in `rows` (None: all); members without
        max_grad_norm are left alone."""
        if not self.any_clip:
            return
        limit = self.hyper["max_grad_norm"]
        if rows is not None:
            skip = torch.ones_like(limit, dtype=torch.bool)
            skip[list(rows)] = False
            limit = limit.masked_fill(skip, float("inf"))
        total = grad.norm(dim=1, keepdim=True)
        coef = torch.where(torch.isinf(limit), torch.ones_like(total), (limit / (total + 1e-6)).clamp(max=1.0))
        grad.mul_(coef)

    @torch.no_grad()
    def step(self, param: torch.Tensor, grad: torch.Tensor, rows: Sequence[int] | None = None) -> None:
        """One update of the members in `rows` (None: every member); `grad` may be modified in place."""
        stepping = range(len(self.steps)) if rows is None else rows
        for row in stepping:
            self.steps[row] += 1
        if rows is None:  # torch.optim increments the step, then calls the kernel
            self._steps_t.add_(1)
        else:
            self._steps_t[list(rows)] += 1
        if self.fused and self.kind != "sgd" and not self.one_call:
            self._fused(param, grad, None if rows is None else set(rows))
            return
        if rows is not None and len(rows) < len(self.steps):
            self._only(rows, param, grad)
        elif self.kind == "sgd":
            self._sgd(param, grad)
        elif self.one_call and len(set(self.steps)) == 1:
            self._one_call(param, grad)
        else:
            self._adam(param, grad)

    def _only(self, rows: Sequence[int], param: torch.Tensor, grad: torch.Tensor) -> None:
        """A column-op step of some members: every row is computed, the others put back (their
        weights, states and accumulating gradients, which weight decay and nesterov write into)."""
        others = torch.tensor([r for r in range(len(self.steps)) if r not in set(rows)], device=param.device)
        buffers = [param, grad, *self.state.values()]
        saved = [b.index_select(0, others) for b in buffers]
        self._sgd(param, grad) if self.kind == "sgd" else self._adam(param, grad)
        for buffer, old in zip(buffers, saved, strict=True):
            buffer.index_copy_(0, others, old)

    def _fused(self, param: torch.Tensor, grad: torch.Tensor, only: set[int] | None) -> None:
        """torch's fused Adam/AdamW kernel, called as `torch.optim` calls it: once per set of
        members sharing their hyperparameters, over each member's parameter tensors (merged where
        that changes nothing, `kernel_segments`). Not over whole rows: the kernel's vectorized
        body and scalar tail can round one element apart (seen: 1 element in 12 steps of 4 small
        members), so each element must fall where it falls in the member's own tensors. `only`:
        the members that step now (None: all)."""
        kernel = torch._fused_adam_ if self.kind == "adam" else torch._fused_adamw_
        tensors = [self._tensors(name, t) for name, t in
                   (("param", param), ("grad", grad), ("exp_avg", self.state["exp_avg"]),
                    ("exp_avg_sq", self.state["exp_avg_sq"]))]
        for (lr, weight_decay, beta1, beta2, eps, _), rows in self._groups:
            if only is not None:
                rows = [row for row in rows if row in only]
                if not rows:
                    continue
            steps = [self._step_views[row] for row in rows for _ in self.bounds]
            lists = [[view for row in rows for view in per_row[row]] for per_row in tensors]
            kernel(*lists, [], steps, lr=lr, beta1=beta1, beta2=beta2,
                   weight_decay=weight_decay, eps=eps, amsgrad=False, maximize=False)

    def _tensors(self, name: str, buffer: torch.Tensor) -> list[list[torch.Tensor]]:
        """Each row's parameter tensors as views of `buffer`, kept while `buffer` stays the same
        tensor (the weights and states between `keep`s; the gradient when the caller reuses it)."""
        cached = self._views.get(name)
        if cached is None or cached[0] is not buffer:
            rows = [[row[a:b] for a, b in self.bounds] for row in buffer.unbind(0)]
            self._views[name] = cached = (buffer, rows)
        return cached[1]

    def _one_call(self, param: torch.Tensor, grad: torch.Tensor) -> None:
        """Every member in one call of the fused kernel at lr=1 into a zeroed buffer, then scaled
        by each member's lr (weight decay applied outside): equal to torch's step to float rounding."""
        self._decay(param, grad)
        if self._direction is None or self._direction.shape != param.shape:
            self._direction = torch.zeros_like(param)
        direction = self._direction.zero_()
        _, _, beta1, beta2, eps, _ = self.scalars[0]
        self._step_tensor.fill_(self.steps[0])
        torch._fused_adam_([direction], [grad], [self.state["exp_avg"]], [self.state["exp_avg_sq"]], [],
                           [self._step_tensor], lr=1.0, beta1=beta1, beta2=beta2, weight_decay=0.0, eps=eps,
                           amsgrad=False, maximize=False)
        param.addcmul_(direction, -self.neg_lr)

    def _decay(self, param: torch.Tensor, grad: torch.Tensor) -> None:
        """Adam's L2 term into the gradient, or AdamW's decoupled decay of the weights."""
        if self.any_decay:
            if self.kind == "adam":
                grad.addcmul_(param, self.hyper["weight_decay"])
            else:
                param.mul_(self.decoupled_decay)

    def _adam(self, param: torch.Tensor, grad: torch.Tensor) -> None:
        """Adam/AdamW without torch's fused kernel: the same math with (K, 1) columns."""
        h = self.hyper
        t = torch.tensor(self.steps, dtype=torch.float64, device=param.device).reshape(-1, 1)
        self._decay(param, grad)
        exp_avg, exp_avg_sq = self.state["exp_avg"], self.state["exp_avg_sq"]
        exp_avg.lerp_(grad, self.one_minus_beta1)
        exp_avg_sq.mul_(self.beta2_col).addcmul_(grad * self.one_minus_beta2, grad)
        bias1 = 1 - h["beta1"] ** t
        bias2_sqrt = (1 - h["beta2"] ** t).sqrt()
        step_size = (h["lr"] / bias1).to(param.dtype)
        denom = (exp_avg_sq.sqrt() / bias2_sqrt.to(param.dtype)).add_(h["eps"])
        param.sub_(exp_avg.mul(step_size).div_(denom))

    def _sgd(self, param: torch.Tensor, grad: torch.Tensor) -> None:
        """`torch.optim.SGD`'s per-tensor ops (its CPU default) with (K, 1) columns: `addcmul_` by a
        column rounds as `add_(alpha=)` by the scalar does (one fused multiply-add), `mul_` as `mul_`."""
        h = self.hyper
        if self.any_decay:
            grad.addcmul_(param, h["weight_decay"])
        buf = self.state["momentum_buffer"]
        first = [row for row, t in enumerate(self.steps) if t == 1]  # torch starts the buffer as the gradient
        if len(first) == len(self.steps):
            buf.copy_(grad)
        else:
            buf.mul_(h["momentum"]).add_(grad)
            if first:
                index = torch.tensor(first, device=buf.device)
                buf.index_copy_(0, index, grad.index_select(0, index))
        update = grad.addcmul_(buf, h["momentum"]) if self.nesterov else buf
        param.addcmul_(update, self.neg_lr)

    def torch_state_dict(self, row: int, model: nn.Module, optimizer: torch.optim.Optimizer,
                         piece: Callable[[torch.Tensor, int, int], torch.Tensor]) -> dict:
        """Member `row`'s state as `optimizer.state_dict()` of its own torch optimizer;
        `piece(buffer, row, index)` cuts the member's parameter `index` out of a (K, P) buffer
        (`StackedNet.piece`: a padded member's real block)."""
        optimizer.state.clear()
        for index, p in enumerate(model.parameters()):
            if self.kind == "sgd":
                if self.steps[row] and float(self.hyper["momentum"][row]) != 0:
                    optimizer.state[p] = {"momentum_buffer": piece(self.state["momentum_buffer"], row, index).clone()}
            elif self.steps[row]:
                optimizer.state[p] = {
                    "step": torch.tensor(float(self.steps[row]), dtype=torch.float32, device=p.device),
                    "exp_avg": piece(self.state["exp_avg"], row, index).clone(),
                    "exp_avg_sq": piece(self.state["exp_avg_sq"], row, index).clone(),
                }
        return optimizer.state_dict()
