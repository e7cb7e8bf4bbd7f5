"""Fit one configuration: the lean training loop every trial runs.

The data stay on the device as tensors; an epoch is one permutation and slices of it (no
DataLoader), losses accumulate on the device, and the host syncs once per epoch to log.
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from tunelab.config.schema import TrainSection
from tunelab.data.dataset import Dataset, Scaler
from tunelab.devices import resolve_device
from tunelab.models.param_names import param_names
from tunelab.runs.layout import TrialLayout
from tunelab.train import artifacts
from tunelab.train import checkpoint as ckpt
from tunelab.train.epoch_end import FitResult, TrialBook
from tunelab.train.hooks import Hook
from tunelab.train.lean_step import LeanStep
from tunelab.train.losses import make_loss, point_prediction
from tunelab.train.metrics import METRICS
from tunelab.train.optim import make_optimizer, make_scheduler

EVAL_CHUNK_ROWS = 16384
IMAGE_EVAL_CHUNK_ROWS = 256  # uint8 images become float (and conv activations) per chunk


def set_threads(threads: int | str) -> None:
    """Small models run fastest on one thread per process; `auto` gives this process every core."""
    count = os.cpu_count() or 1 if threads == "auto" else int(threads)
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    if precision != "bf16":
        return contextlib.nullcontext()
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    loss_fn: Any,
    loss_name: str,
    metrics: Sequence[str],
    target_scaler: Scaler | None,
    precision: str = "fp32",
) -> dict[str, torch.Tensor]:
    """Loss and metrics over a whole split in eval mode, as 0-dim tensors (the caller syncs once)."""
    was_training = model.training
    model.eval()
    with _autocast(x.device, precision):
        rows = IMAGE_EVAL_CHUNK_ROWS if x.dtype == torch.uint8 else EVAL_CHUNK_ROWS
        outputs = torch.cat([model(x[i : i + rows]) for i in range(0, len(x), rows)])
    outputs = outputs.float()
    out = {"loss": loss_fn(outputs, y)}
    pred, target = point_prediction(outputs, loss_name), y
    if target_scaler is not None:  # report regression metrics in the target's own units
        pred, target = target_scaler.inverse(pred), target_scaler.inverse(target)
    for name in metrics:
        out[name] = METRICS[name](pred, target)
    model.train(was_training)
    return out


def fit(
    model: nn.Module,
    data: Dataset,
    cfg: TrainSection,
    *,
    loss_name: str,
    metrics: Sequence[str],
    layout: TrialLayout | None = None,
    identity: dict[str, Any] | None = None,
    hooks: Sequence[Hook] = (),
    resume: bool = True,
) -> FitResult:
    """Train `model` on `data.train`, validating on `data.val` after every epoch.

    Writes the trial folder through `layout` when given (records, grad norms, checkpoints) and,
    with `resume`, continues from the newest loadable checkpoint found there.
    """
    set_threads(cfg.threads)
    device = resolve_device(cfg.device)
    model.to(device)
    task = data.task
    loss_fn = make_loss(loss_name, task, cfg.huber_delta)
    x_train, y_train = data.train.x.to(device), data.train.y.to(device)
    x_val, y_val = data.val.x.to(device), data.val.y.to(device)
    has_val = len(y_val) > 0
    n = len(y_train)
    batch_size = n if cfg.batch_size == "full" else min(int(cfg.batch_size), n)
    full_batch = cfg.batch_size == "full"
    steps_per_epoch = -(-((n + batch_size - 1) // batch_size) // cfg.gradient_accumulation_steps)
    # A model with its own learning rates (encoder_head: the head at lr x head_lr_multiplier) says so.
    groups = model.param_groups(cfg.lr) if hasattr(model, "param_groups") else model.parameters()
    optimizer = make_optimizer(groups, cfg, device)
    scheduler = make_scheduler(optimizer, cfg, steps_per_epoch * cfg.epochs, steps_per_epoch)
    generator = torch.Generator().manual_seed(cfg.seed)
    book = TrialBook(model, cfg, has_val=has_val, layout=layout, identity=identity, hooks=hooks)
    readable = param_names(model)  # "hidden 1 Linear.weight", not "0.weight" (models/param_names.py)
    named_params = [(readable[name], p) for name, p in model.named_parameters() if p.requires_grad]

    start_epoch = 0
    artifacts.flush()  # earlier trials' queued writes land before this folder is read or written
    if layout is not None and resume:
        finished = book.finished_result()
        if finished is not None:
            state = ckpt.load_latest(layout)
            if state is not None:
                model.load_state_dict(state["model"])
            return finished
        state = ckpt.load_latest(layout)
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None and state.get("scheduler"):
                scheduler.load_state_dict(state["scheduler"])
            ckpt.restore_rng(state["rng"], generator)
            book.resume(state)
            start_epoch = book.resumed_from
        book.truncate_after(start_epoch)

    def trainer_state() -> dict[str, Any]:
        return {"optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else {},
                "rng": ckpt.rng_state(generator)}

    stepper = LeanStep(optimizer)  # optimizer.step() and zero_grad(set_to_none=True), same numbers
    book.start()
    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        book.ctx.epoch = epoch
        t0 = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), device=device)
        norms: list[torch.Tensor] = []
        norm_names: list[str] = []
        if full_batch:
            batches = [(x_train, y_train)]
        else:
            # One gather per epoch, then contiguous slices: cheaper than a gather per batch.
            order = torch.randperm(n, generator=generator).to(device)
            if x_train.dtype == torch.uint8:  # images, maybe memory-mapped: gather per batch, not the split
                batches = ((x_train.index_select(0, i), y_train.index_select(0, i)) for i in order.split(batch_size))
            else:
                x_epoch, y_epoch = x_train.index_select(0, order), y_train.index_select(0, order)
                batches = list(zip(x_epoch.split(batch_size), y_epoch.split(batch_size), strict=True))
        accum = cfg.gradient_accumulation_steps
        last = -(-n // batch_size) - 1
        for i, (xb, yb) in enumerate(batches):
            with _autocast(device, cfg.precision):
                out = model(xb)
            loss = loss_fn(out if out.dtype == torch.float64 else out.float(), yb)  # bf16 up, float64 kept
            (loss / accum if accum > 1 else loss).backward()
            loss_sum.add_(loss.detach(), alpha=len(yb))
            if (i + 1) % accum == 0 or i == last:
                if i == last:  # one sample of gradient norms per epoch, from its final step
                    with_grad = [(name, p.grad) for name, p in named_params if p.grad is not None]
                    norm_names = [name for name, _ in with_grad]
                    norms = [g.detach().norm() for _, g in with_grad]
                if cfg.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                stepper.step()
                stepper.zero_grad()
                if scheduler is not None and not isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    scheduler.step()

        ev_args = {"loss_fn": loss_fn, "loss_name": loss_name, "metrics": metrics,
                   "target_scaler": data.target_scaler, "precision": cfg.precision}
        keys, values = ["train_loss"], [loss_sum / n]
        if has_val:
            for k, v in evaluate(model, x_val, y_val, **ev_args).items():
                keys.append(f"val_{k}")
                values.append(v)
        if cfg.eval_train:
            for k, v in evaluate(model, x_train, y_train, **ev_args).items():
                keys.append(f"train_eval_{k}")
                values.append(v)
        synced = torch.stack([v.float() for v in values + norms]).tolist()  # the epoch's one host sync
        record = {"epoch": epoch, **dict(zip(keys, synced[: len(keys)], strict=True))}
        grad_norms = synced[len(keys) :]
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(record.get(book.monitor, record["train_loss"]))
        record["lr"] = optimizer.param_groups[0]["lr"]
        grads = dict(zip(norm_names, grad_norms, strict=True))
        if book.end_epoch(record, grads, time.perf_counter() - t0, trainer_state):
            break
    return book.finish(peak_memory_mb(device))

