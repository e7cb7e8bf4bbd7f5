"""Training losses, picked by name; `gaussian_nll` makes the model predict a mean and a variance."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from tunelab.config.vocabulary import LOSS_NAMES, LOSSES, resolve_loss

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
__all__ = ["LOSS_NAMES", "make_loss", "model_output_dim", "point_prediction", "resolve_loss"]


def model_output_dim(loss: str, task: str, output_dim: int) -> int:
    """How many numbers the network must emit per row for this loss."""
    info = LOSSES.get(loss)
    return (info.outputs_per_target if info is not None else 1) * output_dim


def point_prediction(outputs: torch.Tensor, loss: str) -> torch.Tensor:
    """The part of the network's output that metrics and predictions use (the mean for gaussian_nll)."""
    if loss == "gaussian_nll":
        return outputs[:, : outputs.shape[1] // 2]
    return outputs


def make_loss(name: str, task: str, huber_delta: float = 1.0) -> LossFn:
    """A mean-reduced loss over (outputs, targets) as the trainer stores them.

    Classification targets are class indices; `mse` and `huber` then compare the raw outputs
    with one-hot targets (as seed 002 does), `gaussian_nll` is regression only.
    """
    if name == "cross_entropy":
        if task != "classification":
            raise ValueError("cross_entropy needs a classification task")
        return F.cross_entropy
    if name in ELEMENTWISE:
        base = elementwise_loss(name, huber_delta, reduction="mean")
        if task == "classification":
            return lambda out, y: base(out, F.one_hot(y, out.shape[1]).to(out.dtype))
        return base
    if name == "gaussian_nll":
        if task != "regression":
            raise ValueError("gaussian_nll needs a regression task")
        return _gaussian_nll
    raise ValueError(f"unknown loss {name!r}")


# Losses computed element by element between outputs and (one-hot, for classification) targets.
# Both trainers use this table (`fit` reduced to the mean, `fit_group` per member), so a new
# elementwise loss is one line here plus its name in config/vocabulary.py.
ELEMENTWISE: dict[str, Callable[..., torch.Tensor]] = {
    "mse": F.mse_loss,
    "huber": F.huber_loss,
    "l1": F.l1_loss,
}


def elementwise_loss(name: str, huber_delta: float = 1.0, *, reduction: str = "mean") -> LossFn:
    """The elementwise loss `name` with the given reduction (`none` keeps every element)."""
    fn = ELEMENTWISE[name]
    if name == "huber":
        return lambda out, y: fn(out, y, reduction=reduction, delta=huber_delta)
    return lambda out, y: fn(out, y, reduction=reduction)


def _gaussian_nll(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    k = out.shape[1] // 2
    mean, raw_var = out[:, :k], out[:, k:]
    var = F.softplus(raw_var) + 1e-6
    return F.gaussian_nll_loss(mean, y, var)
