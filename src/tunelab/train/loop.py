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
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from tunelab.config.schema import TrainSection
from tunelab.config.vocabulary import higher_is_better
from tunelab.data.dataset import Dataset, Scaler
from tunelab.devices import resolve_device
from tunelab.models.param_names import param_names
from tunelab.runs.layout import TrialLayout
from tunelab.runs.recorder import TrialRecorder
from tunelab.train import artifacts
from tunelab.train import checkpoint as ckpt
from tunelab.train.hooks import EarlyStopping, FitContext, Hook
from tunelab.train.losses import make_loss, point_prediction
from tunelab.train.metrics import METRICS
from tunelab.train.optim import make_optimizer, make_scheduler

EVAL_CHUNK_ROWS = 16384
IMAGE_EVAL_CHUNK_ROWS = 256  # uint8 images become float (and conv activations) per chunk


@dataclass
class FitResult:
    """How a fit ended and what it reached; also written as `result.json`."""

    state: str  # complete | diverged | pruned | interrupted
    reason: str
    epochs_run: int
    best_epoch: int
    best_value: float | None
    monitor: str
    best_record: dict[str, Any] = field(default_factory=dict)
    last_record: dict[str, Any] = field(default_factory=dict)
    train_time_s: float = 0.0
    peak_mem_mb: float = 0.0
    resumed_from_epoch: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


class _Best:
    """The best epoch so far by the monitored key."""

    def __init__(self, monitor: str) -> None:
        self.monitor, self.maximize = monitor, higher_is_better(monitor)
        self.value: float | None = None
        self.epoch = 0
        self.record: dict[str, Any] = {}

    def update(self, record: dict[str, Any]) -> bool:
        value = record.get(self.monitor)
        if value is None or value != value:  # missing or NaN never counts as best
            return False
        better = self.value is None or (value > self.value if self.maximize else value < self.value)
        if better or (value == self.value and _lower_loss(record, self.record)):
            self.value, self.epoch, self.record = value, record["epoch"], dict(record)
            return True
        return False


def _lower_loss(record: dict[str, Any], best: dict[str, Any]) -> bool:
    """A tie on a coarse monitor (val_accuracy) goes to the epoch with the lower val_loss."""
    new, old = record.get("val_loss"), best.get("val_loss")
    return isinstance(new, int | float) and isinstance(old, int | float) and new < old


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
    monitor = (cfg.monitor if cfg.monitor != "auto" else "val_loss") if has_val else "train_loss"
    generator = torch.Generator().manual_seed(cfg.seed)
    all_hooks: list[Hook] = list(hooks)
    if cfg.early_stopping.patience is not None and has_val:
        all_hooks.insert(0, EarlyStopping(monitor, cfg.early_stopping.patience, cfg.early_stopping.min_delta))
    ctx = FitContext(model=model, epochs=cfg.epochs)
    best = _Best(monitor)
    recorder = TrialRecorder(layout, identity or {}, monitor) if layout is not None else None
    readable = param_names(model)  # "hidden 1 Linear.weight", not "0.weight" (models/param_names.py)
    named_params = [(readable[name], p) for name, p in model.named_parameters() if p.requires_grad]

    start_epoch, train_time = 0, 0.0
    artifacts.flush()  # earlier trials' queued writes land before this folder is read or written
    if recorder is not None and resume:
        finished = recorder.finished_result()
        if finished is not None:
            state = ckpt.load_latest(layout)  # type: ignore[arg-type]
            if state is not None:
                model.load_state_dict(state["model"])
            return FitResult(**finished)
        state = ckpt.load_latest(layout)  # type: ignore[arg-type]
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None and state.get("scheduler"):
                scheduler.load_state_dict(state["scheduler"])
            ckpt.restore_rng(state["rng"], generator)
            for hook in all_hooks:
                hook.load_state_dict(state["hooks"].get(hook.name, {}))
            best.value, best.epoch = state["best"]["value"], state["best"]["epoch"]
            best.record = recorder.record_at(best.epoch)
            start_epoch, train_time = int(state["epoch"]), float(state["train_time_s"])
        recorder.truncate_after(start_epoch)

    for hook in all_hooks:
        hook.on_train_start(ctx)
    state_name, reason, record = "complete", "", {}
    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        ctx.epoch = epoch
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
            loss = loss_fn(out.float(), yb)
            (loss / accum if accum > 1 else loss).backward()
            loss_sum.add_(loss.detach(), alpha=len(yb))
            if (i + 1) % accum == 0 or i == last:
                if i == last:  # one sample of gradient norms per epoch, from its final step
                    with_grad = [(name, p.grad) for name, p in named_params if p.grad is not None]
                    norm_names = [name for name, _ in with_grad]
                    norms = [g.detach().norm() for _, g in with_grad]
                if cfg.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
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
            scheduler.step(record.get(monitor, record["train_loss"]))
        record["lr"] = optimizer.param_groups[0]["lr"]
        epoch_time = time.perf_counter() - t0
        train_time += epoch_time
        record["epoch_time_s"] = round(epoch_time, 6)
        diverged = _divergence(record, cfg.divergence.max_loss)
        record["is_best"] = False if diverged else best.update(record)

        if recorder is not None:
            artifacts.write_later(recorder.epoch, dict(record), dict(zip(norm_names, grad_norms, strict=True)))
        if diverged:
            state_name, reason = "diverged", f"{diverged} at epoch {epoch}"
            ctx.request_stop("diverged", reason)
        for hook in all_hooks:
            hook.on_epoch_end(ctx, record)
        if ctx.stop and not diverged:
            state_name, reason = ctx.stop_state, ctx.stop_reason
        if recorder is not None and not diverged:
            if record["is_best"] and cfg.checkpoints.keep_best:
                artifacts.save_later(layout.best_checkpoint, {"epoch": epoch, "model": model.state_dict()})  # type: ignore[union-attr]
            if epoch % cfg.checkpoints.every == 0 or epoch == cfg.epochs or ctx.stop:
                artifacts.save_later(
                    layout.epoch_checkpoint(epoch),  # type: ignore[union-attr]
                    {
                        "epoch": epoch,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict() if scheduler is not None else {},
                        "rng": ckpt.rng_state(generator),
                        "hooks": {h.name: h.state_dict() for h in all_hooks},
                        "best": {"value": best.value, "epoch": best.epoch},
                        "train_time_s": train_time,
                    },
                    prune=(layout, cfg.checkpoints.keep_last),  # type: ignore[arg-type]
                )
        if ctx.stop:
            break

    result = FitResult(
        state=state_name,
        reason=reason,
        epochs_run=ctx.epoch if ctx.epoch else start_epoch,
        best_epoch=best.epoch,
        best_value=best.value,
        monitor=monitor,
        best_record=_without_identity(best.record),
        last_record=_without_identity(record),
        train_time_s=round(train_time, 4),
        peak_mem_mb=round(peak_memory_mb(device), 1),
        resumed_from_epoch=start_epoch,
    )
    if recorder is not None:
        artifacts.flush()  # best and last checkpoints and every record are on disk before result.json
        recorder.finish(result.to_dict())
    for hook in all_hooks:
        hook.on_train_end(ctx, result)
    return result


def _divergence(record: dict[str, Any], max_loss: float) -> str:
    """Why this epoch counts as diverged, or '' when it does not."""
    for key in ("train_loss", "val_loss"):
        value = record.get(key)
        if value is None:
            continue
        if value != value or value in (float("inf"), float("-inf")):
            return f"{key}={value}"
        if value > max_loss:
            return f"{key}={value:.4g} above divergence.max_loss={max_loss:g}"
    return ""


def _without_identity(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "identity"}
