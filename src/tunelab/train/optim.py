"""Optimizers and learning-rate schedules from the train section."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from tunelab.config.schema import TrainSection
from tunelab.train.metrics import higher_is_better


def make_optimizer(params: Iterable[Any], cfg: TrainSection, device: torch.device) -> torch.optim.Optimizer:
    """The configured optimizer; Adam/AdamW use the fused kernel where this torch has one."""
    params = list(params)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
        )
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(
            params, lr=cfg.lr, alpha=cfg.alpha, eps=cfg.eps, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    kwargs: dict[str, Any] = {"lr": cfg.lr, "betas": tuple(cfg.betas), "eps": cfg.eps, "weight_decay": cfg.weight_decay}
    try:
        return cls(params, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel for this device/dtype
        return cls(params, **kwargs)


def lr_factor(step: int, total_steps: int, steps_per_epoch: int, cfg: TrainSection) -> float:
    """Multiplier of the base lr after `step` optimizer steps: warmup, then the schedule."""
    warmup = round(cfg.warmup_ratio * total_steps)
    if warmup and step < warmup:
        return (step + 1) / warmup
    if cfg.scheduler == "step":
        return cfg.gamma ** (step // max(1, steps_per_epoch * cfg.step_size))
    span = max(1, total_steps - warmup)
    progress = min(1.0, (step - warmup) / span)
    if cfg.scheduler == "linear":
        return max(0.0, 1.0 - progress)
    if cfg.scheduler == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0


def make_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainSection, total_steps: int, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau | None:
    """None for a constant lr without warmup, so the plain optimizer runs untouched."""
    if cfg.scheduler == "plateau":
        mode = "max" if higher_is_better(cfg.monitor) else "min"
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=mode, factor=cfg.gamma, patience=cfg.plateau_patience
        )
    if cfg.scheduler == "constant" and cfg.warmup_ratio == 0:
        return None
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, steps_per_epoch, cfg)
    )
