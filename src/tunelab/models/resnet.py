"""ResNet-18/34-style networks of basic blocks (He et al. 2016), written here so no torchvision is needed.

Each basic block is conv3x3 -> BN -> ReLU -> conv3x3 -> BN, added to a shortcut (identity, or a
1x1 conv + BN when the block changes width or stride), then ReLU. The small stem (one 3x3 conv)
suits 16-64 px images such as USPS or CIFAR; the large stem is the ImageNet one.
"""

from __future__ import annotations

import torch
from torch import nn

from tunelab.config.schema import ResNetModel
from tunelab.errors import ConfigError


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual shortcut; `stride` 2 halves the map."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


def build_resnet(cfg: ResNetModel, input_shape: tuple[int, ...], output_dim: int) -> nn.Sequential:
    """Stem, stages of basic blocks (width x 2^i channels), global average pool, Linear."""
    if len(input_shape) != 3:
        raise ConfigError(
            f"family resnet needs image data (channels, height, width), got rows of shape {input_shape}",
            key="model.family",
        )
    width = cfg.width
    if cfg.stem == "small":
        stem: list[nn.Module] = [nn.Conv2d(input_shape[0], width, 3, padding=1, bias=False)]
    else:
        stem = [nn.Conv2d(input_shape[0], width, 7, stride=2, padding=3, bias=False)]
    stem += [nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
    if cfg.stem == "large":
        stem.append(nn.MaxPool2d(3, stride=2, padding=1))
    stages: list[nn.Module] = []
    in_channels = width
    for i, count in enumerate(cfg.resolved_blocks()):
        out_channels = width * 2**i
        for j in range(count):
            stages.append(BasicBlock(in_channels, out_channels, stride=2 if i > 0 and j == 0 else 1))
            in_channels = out_channels
    head: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if cfg.dropout > 0:
        head.append(nn.Dropout(cfg.dropout))
    head.append(nn.Linear(in_channels, output_dim))
    model = nn.Sequential(*stem, *stages, *head)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    return model
