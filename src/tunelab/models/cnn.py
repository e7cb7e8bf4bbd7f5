"""Small convolutional networks for image data sets (USPS, digits)."""

from __future__ import annotations

import torch
from torch import nn

from tunelab.config.schema import CNNModel
from tunelab.errors import ConfigError
from tunelab.models.activations import make_activation


def build_cnn(cfg: CNNModel, input_shape: tuple[int, ...], output_dim: int) -> nn.Sequential:
    """Conv blocks then a linear head; the head's width is found by a dry run on a zero image."""
    if len(input_shape) != 3:
        raise ConfigError(
            f"family cnn needs image data (channels, height, width), got rows of shape {input_shape}",
            key="model.family",
        )
    layers: list[nn.Module] = []
    in_channels = input_shape[0]
    padding = cfg.kernel_size // 2 if cfg.padding == "same" else 0
    for out_channels in cfg.resolved_channels():
        layers.append(nn.Conv2d(in_channels, out_channels, cfg.kernel_size, padding=padding))
        if cfg.batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(make_activation(cfg.activation))
        if cfg.pool == "max":
            layers.append(nn.MaxPool2d(cfg.pool_size))
        elif cfg.pool == "avg":
            layers.append(nn.AvgPool2d(cfg.pool_size))
        if cfg.dropout > 0:
            layers.append(nn.Dropout(cfg.dropout))
        in_channels = out_channels
    layers.append(nn.Flatten())
    features = nn.Sequential(*layers)
    with torch.no_grad():
        try:
            width = int(features(torch.zeros(1, *input_shape)).shape[1])
        except RuntimeError:
            raise ConfigError(
                f"the conv stack shrinks a {input_shape[1]}x{input_shape[2]} image to nothing; "
                "use fewer layers, padding same, or pool none",
                key="model.num_layers",
            ) from None
    head: list[nn.Module] = []
    for hidden in cfg.head_dims:
        head += [nn.Linear(width, hidden), make_activation(cfg.activation)]
        width = hidden
    head.append(nn.Linear(width, output_dim))
    return nn.Sequential(*layers, *head)
