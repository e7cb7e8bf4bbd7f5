"""Reported metrics, independent of the training loss, and the one list of which ones go up.

The regression metrics, accuracy and f1 are computed as tensors (no host sync). ROC-AUC, log loss,
balanced accuracy, precision and recall are scikit-learn's own implementations, so they agree with
what practitioners compute by hand; they copy the split's outputs to the host once per evaluation.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from tunelab.config.vocabulary import HIGHER_IS_BETTER, METRIC_NAMES, higher_is_better, metric_name

# the direction table lives in config/vocabulary.py; re-exported for callers of train.metrics
__all__ = ["HIGHER_IS_BETTER", "METRICS", "MetricFn", "higher_is_better", "metric_name"]

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


def _host(logits: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities (softmax of the outputs) and labels as float64 numpy arrays."""
    probs = torch.softmax(logits.detach().double(), dim=1).cpu().numpy()
    return probs, y.detach().cpu().numpy()


def _skm() -> Any:
    """scikit-learn's metrics, imported on first use: at import it cost every command ~1-2 s of start-up."""
    from sklearn import metrics

    return metrics


def _sklearn(fn: Callable[[np.ndarray, np.ndarray], float]) -> MetricFn:
    """Wrap a scikit-learn score of (probs, labels) as a MetricFn; undefined (one class only) is NaN."""

    def metric(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        probs, labels = _host(logits, y)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # sklearn warns on ill-defined scores; NaN says it instead
                value = float(fn(probs, labels))
        except ValueError:  # e.g. ROC-AUC on a split holding a single class
            value = math.nan
        return torch.tensor(value, dtype=torch.float32, device=logits.device)

    return metric


def _roc_auc(probs: np.ndarray, labels: np.ndarray) -> float:
    """Binary: AUC of the positive class; more classes: one-vs-rest, macro-averaged."""
    if probs.shape[1] == 2:
        return _skm().roc_auc_score(labels, probs[:, 1])
    return _skm().roc_auc_score(labels, probs, multi_class="ovr", average="macro", labels=np.arange(probs.shape[1]))


def _log_loss(probs: np.ndarray, labels: np.ndarray) -> float:
    return _skm().log_loss(labels, probs, labels=np.arange(probs.shape[1]))


def _balanced_accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return _skm().balanced_accuracy_score(labels, probs.argmax(axis=1))


def _precision(probs: np.ndarray, labels: np.ndarray) -> float:
    return _skm().precision_score(labels, probs.argmax(axis=1), average="macro", zero_division=0)


def _recall(probs: np.ndarray, labels: np.ndarray) -> float:
    return _skm().recall_score(labels, probs.argmax(axis=1), average="macro", zero_division=0)


METRICS: dict[str, MetricFn] = {
    "r2": _r2,
    "mae": _mae,
    "rmse": _rmse,
    "mse": _mse,
    "accuracy": _accuracy,
    "f1": _macro_f1,
    "roc_auc": _sklearn(_roc_auc),
    "log_loss": _sklearn(_log_loss),
    "balanced_accuracy": _sklearn(_balanced_accuracy),
    "precision": _sklearn(_precision),
    "recall": _sklearn(_recall),
}
assert tuple(METRICS) == METRIC_NAMES, "every metric of config/vocabulary.py has one function here"
