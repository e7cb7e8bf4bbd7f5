"""Multi-layer perceptron: the family most of the seeds tune."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from tunelab.config.schema import MLPModel
from tunelab.models.activations import make_activation


def build_mlp(cfg: MLPModel, input_shape: tuple[int, ...], output_dim: int) -> nn.Sequential:
    """Linear -> [LayerNorm] -> activation -> [Dropout] per hidden layer, then a Linear head.

    Layers are created in forward order and parameter-free modules (activations, Dropout with
    p=0 is skipped) use no random numbers, so `hidden_dims: [8]` on 2 inputs builds exactly
    `nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))` under the same seed.
    """
    layers: list[nn.Module] = []
    if len(input_shape) > 1:
        layers.append(nn.Flatten())
    layers += hidden_stack(math.prod(input_shape), cfg.resolved_hidden_dims(), output_dim,
                           layer_norm=cfg.layer_norm, activation=cfg.activation, dropout=cfg.dropout)
    return nn.Sequential(*layers)


def hidden_stack(
    width: int, hidden_dims: Sequence[int], output_dim: int, *, layer_norm: bool, activation: str, dropout: float
) -> list[nn.Module]:
    """Linear -> [LayerNorm] -> activation -> [Dropout] per hidden width, then the output Linear,
    created in forward order (so the same seed gives the same weights in every family using it)."""
    layers: list[nn.Module] = []
    for hidden in hidden_dims:
        layers.append(nn.Linear(width, hidden))
        if layer_norm:
            layers.append(nn.LayerNorm(hidden))
        layers.append(make_activation(activation))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = hidden
    layers.append(nn.Linear(width, output_dim))
    return layers
