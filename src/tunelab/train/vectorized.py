"""Vectorized trials: K same-shape configurations trained together as one batched model.

`fit_group` trains K members (same architecture, data, batch size, loss and optimizer type;
any lr / weight decay / betas / eps / momentum / max_grad_norm / dropout / seed / init, and each
its own lr schedule, epochs and gradient accumulation: train/member_schedule.py) in one loop.
Each member keeps its own initial weights (the caller builds them with
`model_for` under the member's seed), its own data order (the same seeded `randperm` per epoch
as `fit`), its own optimizer state and hyperparameters, its own records, checkpoints, early
stopping, hooks and divergence verdict. A member's records and weights equal `fit` of that
member alone up to the summation order of the matmuls (in float64 to ~1e-13 over 15 epochs;
float32 training can grow an ulp: docs/speed.md, "How exact a member is"); with dropout this
needs each member's RNG state after its model was built (`rng_states`), else the masks come from
one stream shared by the group (statistically alike, not equal).

Members may also train on data of their own (`member_data`: one cross-validation fold each,
data/folds.py): the same feature and target shapes and the same numbers of training and
validation rows (folds of one size), stacked (K, n, ...) so each member draws its own batches
from its own rows and is validated on its own rows with its own target scaler; still exact.

Members of different shapes (MLPs, frozen encoder heads: hidden widths, depth, activation,
LayerNorm) train in one template stack of zero-padded layers with masked units (train/mixed.py),
each still exact; their checkpoints, records and written-back weights hold only the member's
own layers and widths. Frozen heads on embeddings of different `max_length`s are members with
data of their own (`member_data`, the same rows in another embedding).

A member that finishes early (diverged, early-stopped, pruned, or its last epoch reached while
others train on) is written back to its module and dropped from the stack at the end of that
epoch, so it stops costing compute. Members' arithmetic never mixes (batched matmuls and
grouped convolutions keep them apart; the per-member losses are summed only so one backward
serves all, and d(sum)/d(loss_k) = 1, or 1/k for a member accumulating k batches, as `fit`
scales its loss), so a member's NaN cannot reach another member.

Differences from `fit`, by design:
  - resume is all or nothing: every member continues from its checkpoint of one epoch they
    all have (train/group_resume.py), or the group is refused and they resume with `fit`;
  - `epoch_time_s` (and so `train_time_s`) is the group's epoch wall time divided by the
    number of members trained that epoch: each member's share of the cost;
  - a checkpoint's `rng["torch"]` is the member's own dropout stream (with `rng_states`), the
    state `fit` would hold as its global RNG; without `rng_states`, the global state.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from tunelab.config.schema import TrainSection
from tunelab.data.dataset import Dataset
from tunelab.devices import resolve_device
from tunelab.models.param_names import param_names
from tunelab.runs.layout import TrialLayout
from tunelab.train import checkpoint as ckpt
from tunelab.train.batched_model import (
    StackedNet,
    batched_loss,
    head_lr,
    layer_signature,
    stackable,
)
from tunelab.train.batched_optim import BatchedOptimizer
from tunelab.train.epoch_end import FitResult, TrialBook
from tunelab.train.group_resume import ResumeRefused, dropout_stream, load_states, restore_optimizer
from tunelab.train.grouping import vectorize_error
from tunelab.train.hooks import Hook
from tunelab.train.loop import EVAL_CHUNK_ROWS, peak_memory_mb, set_threads
from tunelab.train.losses import make_loss, point_prediction, resolve_loss
from tunelab.train.member_data import OwnData, member_data_error
from tunelab.train.member_schedule import GroupSchedule, MemberSchedule
from tunelab.train.metrics import METRICS
from tunelab.train.mixed import pad_models, stack_order
from tunelab.train.optim import make_optimizer


@dataclass
class _Member:
    """One member: its model, its trial bookkeeping (as `fit` keeps it), its batch order."""

    model: nn.Module
    cfg: TrainSection
    book: TrialBook
    generator: torch.Generator
    schedule: MemberSchedule
    optimizer: torch.optim.Optimizer | None = None  # the torch layout its checkpoints are saved in
    result: FitResult | None = None


def fit_group(
    models: Sequence[nn.Module],
    data: Dataset,
    cfgs: Sequence[TrainSection],
    *,
    loss_name: str,
    metrics: Sequence[str],
    layouts: Sequence[TrialLayout | None],
    identities: Sequence[dict[str, Any]],
    hooks: Sequence[Sequence[Hook]] = (),
    rng_states: Sequence[torch.Tensor | None] = (),
    member_data: Sequence[Dataset] = (),
) -> list[FitResult]:
    """Train K members together; returns each member's `FitResult` (as `fit` would, in order).

    Each model's weights are updated in place to the member's final weights. `rng_states`: each
    member's global RNG state right after its model was built (`torch.get_rng_state()`); with
    them, dropout masks equal `fit`'s, so members with dropout are exact too. `member_data`: each
    member's own data set (cross-validation folds, embeddings of its own max_length), in place
    of `data` for all. Members of different shapes train in the order `mixed.stack_order` gives
    (one depth and activation side by side), which changes nothing but the speed.
    """
    error = vectorize_error(cfgs, models) or member_data_error(data, member_data, len(models))
    if error:
        raise ValueError(f"cannot vectorize: {error}")
    order = stack_order([stackable(model) for model in models])
    models, cfgs, layouts, identities, hooks, rng_states, member_data = (
        [values[i] for i in order] if values else values
        for values in (models, cfgs, layouts, identities, hooks, rng_states, member_data))
    cfgs = [head_lr(model, cfg) for model, cfg in zip(models, cfgs, strict=True)]
    k = len(models)
    layouts = list(layouts) if layouts else [None] * k
    identities = list(identities) if identities else [{} for _ in range(k)]
    member_hooks = list(hooks) if hooks else [() for _ in range(k)]
    start, saved = load_states(layouts)  # ResumeRefused: resume these members with fit
    stacks = [stackable(model) for model in models]
    signature = layer_signature(stacks[0])
    padded = pad_models(stacks) if any(layer_signature(s) != signature for s in stacks[1:]) else None
    if padded is not None and saved:
        raise ResumeRefused("members of different shapes resume one by one (a padded group does not resume)")
    for model, state in zip(models, saved, strict=False):
        model.load_state_dict(state["model"])
    if saved:
        rng_states = [dropout_stream(state) for state in saved]
    cfg0 = cfgs[0]
    set_threads(cfg0.threads)
    device = resolve_device(cfg0.device)
    for model in models:
        model.to(device)
    loss_name = resolve_loss(loss_name, data.task)
    loss_fn = make_loss(loss_name, data.task, cfg0.huber_delta)
    train_loss = batched_loss(loss_name, data.task, cfg0.huber_delta)
    own = OwnData(member_data, device) if member_data else None  # per-member rows: (K, n, ...)
    x_train, y_train = data.train.x.to(device), data.train.y.to(device)
    x_val, y_val = data.val.x.to(device), data.val.y.to(device)
    has_val = len(y_val) > 0
    n = len(y_train)
    full_batch = cfg0.batch_size == "full"
    batch_size = n if full_batch else min(int(cfg0.batch_size), n)
    batches = -(-n // batch_size)

    members = []
    for i, (model, cfg) in enumerate(zip(models, cfgs, strict=True)):
        book = TrialBook(model, cfg, has_val=has_val, layout=layouts[i], identity=identities[i],
                         hooks=member_hooks[i])
        book.truncate_after(start)  # records past the checkpoint are written again
        member = _Member(
            model=model, cfg=cfg, book=book, generator=torch.Generator().manual_seed(cfg.seed),
            schedule=MemberSchedule(cfg, batches),
            optimizer=make_optimizer(model.parameters(), cfg, device) if layouts[i] is not None else None,
        )
        members.append(member)
        if saved:
            member.generator.set_state(saved[i]["rng"]["data"])
            book.resume(saved[i])
            member.schedule.resume(saved[i])
        book.start()

    net = StackedNet(padded.models if padded else stacks, device, rng_states, padded)
    opt = BatchedOptimizer(cfgs, net.flat, net.offsets)
    if saved:
        restore_optimizer(opt, saved, net.offsets, [m.schedule.steps_at(start) for m in members])
    recipe = GroupSchedule([m.schedule for m in members], batches, net.flat)
    active = list(members)
    active_rows = list(range(k))  # each active member's index in `models` (and `member_data`)
    ev = _Evaluator(loss_fn, loss_name, metrics, data, own)
    for epoch in range(start + 1, max(cfg.epochs for cfg in cfgs) + 1):
        kk = len(active)
        t0 = time.perf_counter()
        for m in active:
            m.book.ctx.epoch = epoch
        loss_sum = torch.zeros(kk, device=device)
        if own is not None:
            xs, ys = own.batches(active_rows, [m.generator for m in active], None if full_batch else batch_size, net)
        elif full_batch:
            xs, ys = [net.shared_input(x_train)], [y_train.unsqueeze(0).expand(kk, *y_train.shape)]
        else:
            orders = torch.stack([torch.randperm(n, generator=m.generator) for m in active]).to(device)
            ys = list(y_train[orders].split(batch_size, dim=1))
            if net.conv_input:  # (n, K, C, H, W): a batch is a slice, (B, K*C, H, W) a free view
                x_epoch = x_train[orders.t()]
                xs = [xb.reshape(xb.shape[0], -1, *xb.shape[3:]) for xb in x_epoch.split(batch_size)]
            else:
                xs = list(x_train[orders].split(batch_size, dim=1))
        norms = torch.zeros(0, kk, device=device)
        last = len(xs) - 1
        flat_grad = torch.empty_like(net.flat)  # one buffer per epoch: the optimizer keeps its views
        grad_views = net.split(flat_grad)
        for i, (xb, yb) in enumerate(zip(xs, ys, strict=True)):
            losses = train_loss(net.forward(xb, train=True), yb)
            # materialize: a template layer that only members who left the stack had gets zeros
            grads = torch.autograd.grad(recipe.objective(losses), net.views, materialize_grads=bool(net.runs))
            for view, g in zip(grad_views, grads, strict=True):
                view.copy_(g)
            loss_sum.add_(losses.detach(), alpha=yb.shape[1])
            grad, stepping = recipe.accumulate(flat_grad, i)
            if i == last:  # every member steps at an epoch's last batch
                norms = net.grad_norms(grad)
            recipe.step(opt, net.flat, grad, stepping)

        keys, per_member = ["train_loss"], [loss_sum / n]
        if has_val:
            for key, values in ev(net, *own.split("val", active_rows) if own else (x_val, y_val)).items():
                keys.append(f"val_{key}")
                per_member.append(values)
        if cfg0.eval_train:
            for key, values in ev(net, *own.split("train", active_rows) if own else (x_train, y_train)).items():
                keys.append(f"train_eval_{key}")
                per_member.append(values)
        synced = torch.cat([torch.stack(per_member).float(), norms.float()]).tolist()  # the epoch's one sync
        epoch_time = (time.perf_counter() - t0) / kk
        finished = [_end_epoch(m, r, epoch, keys, synced, net, opt, epoch_time) for r, m in enumerate(active)]
        if any(finished):
            rows = [r for r, done in enumerate(finished) if not done]
            if rows:
                index = torch.tensor(rows, device=device)
                net.keep(index)
                opt.keep(index)
                recipe.keep(rows, net.flat)
            active = [active[r] for r in rows]
            active_rows = [active_rows[r] for r in rows]
        if not active:
            break
    for r, m in enumerate(active):
        net.write_back(r, m.model)
        m.result = m.book.finish(peak_memory_mb(device))
    results: list[FitResult] = [None] * k  # type: ignore[list-item]
    for m, i in zip(members, order, strict=True):
        results[i] = m.result  # type: ignore[assignment]
    return results


class _Evaluator:
    """Every member's loss and metrics on one split, as `evaluate` computes them per model."""

    def __init__(self, loss_fn: Any, loss_name: str, metrics: Sequence[str], data: Dataset,
                 own: OwnData | None = None) -> None:
        self.loss_fn, self.loss_name, self.metrics, self.scaler = loss_fn, loss_name, list(metrics), data.target_scaler
        self.own = own

    @torch.no_grad()
    def __call__(self, net: StackedNet, x: torch.Tensor, y: torch.Tensor,
                 rows: Sequence[int] = ()) -> dict[str, torch.Tensor]:
        """Shared rows `x` (B, ...), or with `rows` (the active members' data indices) each
        member's own rows `x` (K, B, ...) and targets `y` (K, B, ...)."""
        if rows:
            chunks = [net.forward(net.input(x[:, i : i + EVAL_CHUNK_ROWS]), train=False)
                      for i in range(0, x.shape[1], EVAL_CHUNK_ROWS)]
        else:
            chunks = [net.forward(net.shared_input(x[i : i + EVAL_CHUNK_ROWS]), train=False)
                      for i in range(0, len(x), EVAL_CHUNK_ROWS)]
        outputs = torch.cat(chunks, dim=1).float()
        out: dict[str, list[torch.Tensor]] = {"loss": []}
        out.update({name: [] for name in self.metrics})
        for r, row in enumerate(outputs):
            target_y = y[r] if rows else y
            scaler = self.own.scalers[rows[r]] if rows and self.own is not None else self.scaler
            target = scaler.inverse(target_y) if scaler is not None else target_y
            out["loss"].append(self.loss_fn(row, target_y))
            pred = point_prediction(row, self.loss_name)
            if scaler is not None:
                pred = scaler.inverse(pred)
            for name in self.metrics:
                out[name].append(METRICS[name](pred, target))
        return {key: torch.stack(values) for key, values in out.items()}


def _end_epoch(m: _Member, row: int, epoch: int, keys: list[str], synced: list[list[float]],
               net: StackedNet, opt: BatchedOptimizer, epoch_time: float) -> bool:
    """`fit`'s end-of-epoch for one member (train/epoch_end.py). True when it is done."""
    record: dict[str, Any] = {"epoch": epoch, **{key: synced[j][row] for j, key in enumerate(keys)}}
    readable = param_names(m.model)  # the member's own names (dropout shifts them), made readable
    names = [readable[name] for name, _ in m.model.named_parameters()]
    grad_norms = dict(zip(names, net.own_norms(synced[len(keys):], row), strict=True))
    m.schedule.end_epoch(record, m.book.monitor)
    record["lr"] = m.schedule.lr(opt.steps[row])
    net.write_back(row, m.model)  # hooks and checkpoints see the member's current weights

    def trainer_state() -> dict[str, Any]:
        scheduler = m.schedule.trainer_state(opt.steps[row], m.optimizer)  # type: ignore[arg-type]
        return {"optimizer": opt.torch_state_dict(row, m.model, m.optimizer, net.piece),  # type: ignore[arg-type]
                "scheduler": scheduler, "rng": _rng(m, net, row)}

    if m.book.end_epoch(record, grad_norms, epoch_time, trainer_state) or epoch >= m.cfg.epochs:
        m.result = m.book.finish(peak_memory_mb(net.device))
        return True
    return False


def _rng(m: _Member, net: StackedNet, row: int) -> dict[str, torch.Tensor]:
    """The member's batch order and, when it has its own, its dropout stream."""
    state = ckpt.rng_state(m.generator)
    if net.generators is not None:
        state["torch"] = net.generators[row].get_state()
    return state
