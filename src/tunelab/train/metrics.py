"""Reported metrics, independent of the training loss, computed as tensors (no host sync)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from tunelab.config.vocabulary import METRIC_NAMES, higher_is_better

__all__ = ["METRICS", "MetricFn", "higher_is_better"]

MetricFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _r2(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    ss_res = ((y - pred) ** 2).sum(dim=0)
    ss_tot = ((y - y.mean(dim=0)) ** 2).sum(dim=0).clamp_min(1e-12)
    return (1.0 - ss_res / ss_tot).mean()


def _mae(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (pred - y).abs().mean()


def _mse(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((pred - y) ** 2).mean()


def _rmse(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return _mse(pred, y).sqrt()


def _accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(dim=1) == y).float().mean()


def _macro_f1(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    k = logits.shape[1]
    pred = logits.argmax(dim=1)
    pred_1h = torch.nn.functional.one_hot(pred, k).float()
    true_1h = torch.nn.functional.one_hot(y, k).float()
    tp = (pred_1h * true_1h).sum(0)
    denom = pred_1h.sum(0) + true_1h.sum(0)
    present = (denom > 0).float()  # classes seen in labels or predictions
    f1 = 2 * tp / denom.clamp_min(1)
    return (f1 * present).sum() / present.sum().clamp_min(1)


METRICS: dict[str, MetricFn] = {
    "r2": _r2,
    "mae": _mae,
    "rmse": _rmse,
    "mse": _mse,
    "accuracy": _accuracy,
    "f1": _macro_f1,
}
assert tuple(METRICS) == METRIC_NAMES, "every metric of config/vocabulary.py has one function here"
