"""Multi-layer perceptron: the family most of the seeds tune."""

from __future__ import annotations

import math

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
    width = math.prod(input_shape)
    for hidden in cfg.resolved_hidden_dims():
        layers.append(nn.Linear(width, hidden))
        if cfg.layer_norm:
            layers.append(nn.LayerNorm(hidden))
        layers.append(make_activation(cfg.activation))
        if cfg.dropout > 0:
            layers.append(nn.Dropout(cfg.dropout))
        width = hidden
    layers.append(nn.Linear(width, output_dim))
    return nn.Sequential(*layers)
